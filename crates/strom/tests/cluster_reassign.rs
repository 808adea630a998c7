//! Partition reassignment (KIP-455) on real processes: a three-node cluster moves a
//! partition with data from brokers [1, 2] to [2, 3] (broker 3 down at first, so the move
//! is seen in progress), broker 3 catches up when it returns, the move completes, broker
//! 1's copy is deleted and every record is readable from the new leader. Also: a single
//! node refuses another broker set, and truncated frames close only their connection.

mod broker_support;
mod cli_support;
mod cluster_support;

use std::time::{Duration, Instant};

use cluster_support::*;

use broker_support::{batch, produce_request, topic_name, truncated_frame, Conn, TestBroker};
use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn strom(address: &str, args: &[&str]) -> std::process::Output {
    cli_support::run_strom(args, b"", address)
}

fn ids(brokers: &[BrokerId]) -> Vec<i32> {
    brokers.iter().map(|b| b.0).collect()
}

fn reassign(
    conn: &mut Conn,
    version: i16,
    topic: &str,
    partition: i32,
    target: Option<&[i32]>,
) -> AlterPartitionReassignmentsResponse {
    let mut request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(partition)
                .with_replicas(
                    target.map(|t| t.iter().copied().map(BrokerId).collect()),
                )])]);
    if version >= 1 {
        request.allow_replication_factor_change = true;
    }
    conn.call(ApiKey::AlterPartitionReassignments, version, &request)
}

fn reassign_code(response: &AlterPartitionReassignmentsResponse) -> i16 {
    assert_eq!(response.responses.len(), 1, "{response:?}");
    assert_eq!(response.responses[0].partitions.len(), 1, "{response:?}");
    response.responses[0].partitions[0].error_code
}

/// (topic, partition, replicas, adding, removing) of every move in progress.
type Moving = Vec<(String, i32, Vec<i32>, Vec<i32>, Vec<i32>)>;

fn list(conn: &mut Conn, only: Option<(&str, &[i32])>) -> Moving {
    let request = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(only.map(|(topic, partitions)| {
            vec![ListPartitionReassignmentsTopics::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(partitions.to_vec())]
        }));
    let response: ListPartitionReassignmentsResponse =
        conn.call(ApiKey::ListPartitionReassignments, 0, &request);
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                )
            })
        })
        .collect()
}

#[test]
fn given_rf2_partition_on_brokers_1_2_when_reassigned_to_2_3_should_move_data_and_delete_the_old_copy(
) {
    let mut cluster = Cluster::start();
    let topic = "moving";
    let created: CreateTopicsResponse = cluster.node(1).connect().call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(topic))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(vec![CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![BrokerId(1), BrokerId(2)])])]),
    );
    assert_eq!(
        created.topics[0].error_code, 0,
        "{:?}",
        created.topics[0].error_message
    );
    cluster.wait_for_on(&[1], |m| {
        partition_of(m, topic, 0).is_some_and(|p| p.leader_id.0 == 1 && p.isr_nodes.len() == 2)
    });
    let mut expected = Vec::new();
    let mut produce = |cluster: &Cluster, prefix: &str, count: usize| {
        let response: ProduceResponse = cluster.node(1).connect().call(
            ApiKey::Produce,
            9,
            &produce_request(topic, 0, batch(prefix, count, now_ms()), -1),
        );
        let p = &response.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "{:?}", p.error_message);
        expected.extend((0..count).map(|i| format!("{prefix}-{i}")));
    };
    produce(&cluster, "before", 50);
    let old_copy = cluster.data_dir(1).join(format!("{topic}-0"));
    assert!(old_copy.is_dir(), "{old_copy:?}");

    // Broker 3 goes down first, so the move waits for it and is seen in progress.
    cluster.kill(3);
    cluster.wait_for_on(&[1, 2], |m| !live_brokers(m).contains(&3));

    // Nothing to cancel yet; an unknown partition; a broker that does not exist.
    let mut conn = cluster.node(2).connect();
    let cancel = reassign(&mut conn, 1, topic, 0, None);
    assert_eq!(reassign_code(&cancel), NO_REASSIGNMENT_IN_PROGRESS);
    let unknown = reassign(&mut conn, 0, topic, 9, Some(&[2, 3]));
    assert_eq!(reassign_code(&unknown), UNKNOWN_TOPIC_OR_PARTITION);
    let ghost = reassign(&mut conn, 1, topic, 0, Some(&[2, 7]));
    assert_eq!(reassign_code(&ghost), INVALID_REPLICA_ASSIGNMENT);
    assert!(list(&mut conn, None).is_empty());

    // Through node 2 (whichever node leads the controller quorum decides it).
    let started = reassign(&mut conn, 1, topic, 0, Some(&[2, 3]));
    assert_eq!(reassign_code(&started), 0, "{started:?}");
    assert_eq!(started.error_code, 0);
    let moving = list(&mut conn, None);
    assert_eq!(
        moving,
        vec![(topic.to_string(), 0, vec![2, 3, 1], vec![3], vec![1])]
    );
    assert_eq!(list(&mut conn, Some((topic, &[0]))), moving);
    assert!(list(&mut conn, Some((topic, &[5]))).is_empty());
    assert!(list(&mut conn, Some(("ghost", &[0]))).is_empty());
    let listed = cli_support::run_strom_json(
        &cluster.address(1),
        &["topic", "reassignments", "--topic", topic, "--json"],
    );
    assert_eq!(
        listed["reassignments"],
        serde_json::json!([{"topic": topic, "partition": 0, "replicas": [2, 3, 1],
            "adding": [3], "removing": [1]}]),
        "{listed}"
    );
    let during = cluster.wait_for_on(&[2], |m| {
        partition_of(m, topic, 0).is_some_and(|p| ids(&p.replica_nodes) == vec![2, 3, 1])
    });
    assert_eq!(partition_of(&during, topic, 0).unwrap().leader_id.0, 1);
    // Writes go on while the partition moves.
    cluster.wait_for_on(&[1], |m| {
        partition_of(m, topic, 0).is_some_and(|p| ids(&p.replica_nodes) == vec![2, 3, 1])
    });
    produce(&cluster, "during", 30);

    // Broker 3 returns, catches up, joins the ISR: the move completes by itself.
    cluster.restart(3);
    let done = cluster.wait_for_on(&[1, 2, 3], |m| {
        partition_of(m, topic, 0).is_some_and(|p| ids(&p.replica_nodes) == vec![2, 3])
    });
    let done = partition_of(&done, topic, 0).unwrap().clone();
    assert_eq!(done.leader_id.0, 2, "{done:?}");
    let mut isr = ids(&done.isr_nodes);
    isr.sort_unstable();
    assert_eq!(isr, vec![2, 3]);
    assert!(list(&mut cluster.node(3).connect(), None).is_empty());

    // Broker 1 deletes its copy once it is no longer a replica.
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    while old_copy.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!old_copy.exists(), "broker 1 kept {old_copy:?}");

    // Every record is readable from the new leader; broker 3 holds a copy.
    cluster.wait_for_on(&[2], |m| {
        partition_of(m, topic, 0).is_some_and(|p| p.leader_id.0 == 2)
    });
    // A new leader re-learns its high watermark from the followers' next fetches: poll
    // until every record is below it, then require exactly the records written.
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    let mut read = read_all(&mut cluster.node(2).connect(), topic, 0);
    while read.len() < expected.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        read = read_all(&mut cluster.node(2).connect(), topic, 0);
    }
    assert_eq!(read, expected, "{}", cluster.logs());
    let new_copy = cluster.data_dir(3).join(format!("{topic}-0"));
    assert!(new_copy.is_dir(), "{new_copy:?}");

    // A cancel now finds nothing in progress.
    let cancel = reassign(&mut cluster.node(1).connect(), 1, topic, 0, None);
    assert_eq!(reassign_code(&cancel), NO_REASSIGNMENT_IN_PROGRESS);
}

#[test]
fn given_a_single_node_when_reassigned_should_accept_only_its_own_replica_list() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    broker_support::create_topic(&mut conn, "solo", 1, &[]);
    let same = reassign(&mut conn, 1, "solo", 0, Some(&[1]));
    assert_eq!(reassign_code(&same), 0, "{same:?}");
    for version in 0..=1 {
        let other = reassign(&mut conn, version, "solo", 0, Some(&[2]));
        assert_eq!(
            reassign_code(&other),
            INVALID_REPLICA_ASSIGNMENT,
            "v{version}"
        );
        assert!(other.responses[0].partitions[0].error_message.is_some());
    }
    // KIP-860: without allow_replication_factor_change another replica count is refused.
    let strict = |target: Vec<i32>| {
        AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(10_000)
            .with_allow_replication_factor_change(false)
            .with_topics(vec![ReassignableTopic::default()
                .with_name(topic_name("solo"))
                .with_partitions(vec![ReassignablePartition::default()
                    .with_partition_index(0)
                    .with_replicas(Some(
                        target.into_iter().map(BrokerId).collect(),
                    ))])])
    };
    let grown: AlterPartitionReassignmentsResponse =
        conn.call(ApiKey::AlterPartitionReassignments, 1, &strict(vec![1, 2]));
    assert_eq!(reassign_code(&grown), INVALID_REPLICATION_FACTOR);
    assert!(!grown.allow_replication_factor_change);
    let kept: AlterPartitionReassignmentsResponse =
        conn.call(ApiKey::AlterPartitionReassignments, 1, &strict(vec![1]));
    assert_eq!(reassign_code(&kept), 0);
    let empty = reassign(&mut conn, 1, "solo", 0, Some(&[]));
    assert_eq!(reassign_code(&empty), INVALID_REPLICA_ASSIGNMENT);
    let cancel = reassign(&mut conn, 1, "solo", 0, None);
    assert_eq!(reassign_code(&cancel), NO_REASSIGNMENT_IN_PROGRESS);
    let unknown = reassign(&mut conn, 1, "ghost", 0, Some(&[1]));
    assert_eq!(reassign_code(&unknown), UNKNOWN_TOPIC_OR_PARTITION);
    assert!(list(&mut conn, None).is_empty());
    assert!(list(&mut conn, Some(("solo", &[0]))).is_empty());

    // The CLI: the same list is a no-op; another broker fails with exit code 1 and says
    // what to check.
    let address = broker.addr.to_string();
    let output = strom(&address, &["topic", "reassign", "solo", "--replicas", "1"]);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("started"));
    let output = strom(
        &address,
        &["topic", "reassign", "solo", "--replicas", "1,2"],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("INVALID_REPLICA_ASSIGNMENT"), "{stderr}");
    let output = strom(&address, &["topic", "reassign", "solo", "--cancel"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let output = strom(
        &address,
        &["topic", "reassign", "solo", "--partition", "4", "--cancel"],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let output = strom(&address, &["topic", "reassignments"]);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("No partition reassignments"));
    let listed = cli_support::run_strom_json(&address, &["topic", "reassignments", "--json"]);
    assert_eq!(listed["reassignments"], serde_json::json!([]));
}

#[test]
fn given_truncated_reassignment_requests_should_close_only_that_connection() {
    let broker = TestBroker::start(&[]);
    let mut healthy = broker.connect();
    broker_support::create_topic(&mut healthy, "cut", 1, &[]);
    let alter = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(1_000)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(topic_name("cut"))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(0)
                .with_replicas(Some(vec![BrokerId(1), BrokerId(2)]))])]);
    let list_body = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(1_000)
        .with_topics(Some(vec![ListPartitionReassignmentsTopics::default()
            .with_name(topic_name("cut"))
            .with_partition_indexes(vec![0, 1, 2])]));
    let mut frames = Vec::new();
    for cut_bytes in [1, 3, 6] {
        for version in 0..=1 {
            frames.push((
                format!("AlterPartitionReassignments v{version} cut {cut_bytes}"),
                truncated_frame(
                    ApiKey::AlterPartitionReassignments,
                    version,
                    &alter,
                    cut_bytes,
                ),
            ));
        }
        frames.push((
            format!("ListPartitionReassignments cut {cut_bytes}"),
            truncated_frame(ApiKey::ListPartitionReassignments, 0, &list_body, cut_bytes),
        ));
    }
    for (name, frame) in frames {
        let mut conn = broker.connect();
        conn.send_raw(&frame).expect("send");
        assert!(
            conn.is_closed_by_broker(),
            "{name}: the connection stays open"
        );
    }
    // A topic count far beyond the bytes that follow is refused before allocating.
    for api_key in [
        ApiKey::AlterPartitionReassignments,
        ApiKey::ListPartitionReassignments,
    ] {
        let mut frame = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(0)
            .with_correlation_id(2)
            .with_client_id(Some(s("bad")))
            .encode(&mut frame, api_key.request_header_version(0))
            .unwrap();
        frame.put_i32(1_000); // timeout_ms
                              // A compact array length (varint) of about 16 million entries.
        frame.extend_from_slice(&[0xff, 0xff, 0xff, 0x07]);
        let mut raw = BytesMut::new();
        raw.put_i32(frame.len() as i32);
        raw.extend_from_slice(&frame);
        let mut conn = broker.connect();
        conn.send_raw(&raw).expect("send");
        assert!(
            conn.is_closed_by_broker(),
            "{api_key:?}: huge count accepted"
        );
    }
    // The broker still answers on the healthy connection.
    let same = reassign(&mut healthy, 1, "cut", 0, Some(&[1]));
    assert_eq!(reassign_code(&same), 0);
    assert!(list(&mut healthy, None).is_empty());
}
