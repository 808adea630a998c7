//! AlterReplicaLogDirs against the real binary: Strom has one log directory per broker, so a
//! replica asked into it answers NONE (what kafka-reassign-partitions needs to execute the
//! rollback file it prints, which names each replica's directory), any other directory
//! LOG_DIR_NOT_FOUND, unknown partitions UNKNOWN_TOPIC_OR_PARTITION; a malformed request
//! closes only its connection.

mod broker_support;

use broker_support::*;
use kafka_protocol::messages::alter_replica_log_dirs_request::{
    AlterReplicaLogDir, AlterReplicaLogDirTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const LOG_DIR_NOT_FOUND: i16 = 57;

fn request(dirs: &[(&str, &[(&str, &[i32])])]) -> AlterReplicaLogDirsRequest {
    AlterReplicaLogDirsRequest::default().with_dirs(
        dirs.iter()
            .map(|(path, topics)| {
                AlterReplicaLogDir::default()
                    .with_path(StrBytes::from_string(path.to_string()))
                    .with_topics(
                        topics
                            .iter()
                            .map(|(name, partitions)| {
                                AlterReplicaLogDirTopic::default()
                                    .with_name(topic_name(name))
                                    .with_partitions(partitions.to_vec())
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

/// (topic, partition, error code) of every answer, in order.
fn answers(response: &AlterReplicaLogDirsResponse) -> Vec<(String, i32, i16)> {
    response
        .results
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.topic_name.0.to_string(), p.partition_index, p.error_code))
        })
        .collect()
}

#[test]
fn given_the_brokers_own_log_dir_should_answer_none_and_other_dirs_not_found() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "placed", 2, &[]);
    let own = std::fs::canonicalize(&broker.data_dir).unwrap();
    let own = own.to_str().unwrap();
    let elsewhere = broker.data_dir.join("not-a-log-dir");

    for version in [1, 2] {
        let response: AlterReplicaLogDirsResponse = conn.call(
            ApiKey::AlterReplicaLogDirs,
            version,
            &request(&[
                (own, &[("placed", &[0, 1, 7]), ("missing", &[0])]),
                (elsewhere.to_str().unwrap(), &[("placed", &[0])]),
            ]),
        );
        assert_eq!(
            answers(&response),
            vec![
                ("placed".to_string(), 0, 0),
                ("placed".to_string(), 1, 0),
                ("placed".to_string(), 7, UNKNOWN_TOPIC_OR_PARTITION),
                ("missing".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION),
                ("placed".to_string(), 0, LOG_DIR_NOT_FOUND),
            ],
            "v{version}"
        );
    }

    // Truncated bodies close that connection only; the broker goes on answering.
    let body = request(&[(own, &[("placed", &[0])])]);
    for cut in [1, 3, 6] {
        let mut bad = broker.connect();
        bad.send_raw(&truncated_frame(ApiKey::AlterReplicaLogDirs, 2, &body, cut))
            .unwrap();
        assert!(bad.is_closed_by_broker(), "cut {cut}");
    }
    let response: AlterReplicaLogDirsResponse =
        broker.connect().call(ApiKey::AlterReplicaLogDirs, 2, &body);
    assert_eq!(answers(&response), vec![("placed".to_string(), 0, 0)]);
}
