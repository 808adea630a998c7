//! DeleteRecords, DescribeLogDirs and DescribeProducers against the real binary.

mod broker_support;

use broker_support::*;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::*;
use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordToEncode};

const UNKNOWN_TOPIC: i16 = 3;
const OFFSET_OUT_OF_RANGE: i16 = 1;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// DeleteRecords v2 on partition 0 of `topic`: (error code, low watermark).
fn delete_records(conn: &mut Conn, topic: &str, offset: i64) -> (i16, i64) {
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(offset)])]);
    let response: DeleteRecordsResponse = conn.call(ApiKey::DeleteRecords, 2, &request);
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

#[test]
fn given_records_when_deleted_before_offset_should_move_log_start_durably() {
    let mut broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "trim", 1, &[("segment.bytes", "2048")]);
    for i in 0..20 {
        assert_eq!(
            produce(&mut conn, "trim", 0, batch(&format!("b{i}"), 5, now_ms())).0,
            0
        );
    }
    assert_eq!(delete_records(&mut conn, "trim", 42), (0, 42));
    assert_eq!(list_offset(&mut conn, "trim", 0, -2).1, 42);
    assert_eq!(fetch(&mut conn, "trim", 0, 10).0, OFFSET_OUT_OF_RANGE);
    let (code, _, records) = fetch(&mut conn, "trim", 0, 42);
    assert_eq!(code, 0);
    assert!(decode_values(&records)
        .iter()
        .any(|(offset, _)| *offset == 42));
    // Beyond the high watermark: refused; lower than the start: no change.
    assert_eq!(
        delete_records(&mut conn, "trim", 101).0,
        OFFSET_OUT_OF_RANGE
    );
    assert_eq!(delete_records(&mut conn, "trim", 5), (0, 42));
    assert_eq!(delete_records(&mut conn, "nope", 5).0, UNKNOWN_TOPIC);
    // Survives a restart.
    let (data_dir, port) = (broker.data_dir.clone(), broker.addr.port());
    broker.kill();
    let broker = TestBroker::start_in(&data_dir, port, &[]);
    let mut conn = broker.connect();
    assert_eq!(list_offset(&mut conn, "trim", 0, -2).1, 42);
    // -1 = the high watermark: everything goes, producing continues at the end.
    assert_eq!(delete_records(&mut conn, "trim", -1), (0, 100));
    assert_eq!(
        produce(&mut conn, "trim", 0, batch("after", 1, now_ms())),
        (0, 100)
    );
}

#[test]
fn given_partitions_when_log_dirs_described_should_report_sizes() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "sized", 2, &[]);
    assert_eq!(
        produce(&mut conn, "sized", 0, batch("x", 10, now_ms())).0,
        0
    );
    let all: DescribeLogDirsResponse = conn.call(
        ApiKey::DescribeLogDirs,
        4,
        &DescribeLogDirsRequest::default().with_topics(None),
    );
    assert_eq!(all.results.len(), 1);
    let dir = &all.results[0];
    assert_eq!(dir.error_code, 0);
    assert!(dir.total_bytes > 0 && dir.usable_bytes > 0);
    let topic = dir
        .topics
        .iter()
        .find(|t| t.name.0.as_str() == "sized")
        .expect("topic");
    let size_of = |index: i32| {
        topic
            .partitions
            .iter()
            .find(|p| p.partition_index == index)
            .expect("partition")
            .partition_size
    };
    assert!(size_of(0) > 0);
    assert_eq!(size_of(1), 0);
    let some: DescribeLogDirsResponse = conn.call(
        ApiKey::DescribeLogDirs,
        1,
        &DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(topic_name("sized"))
                .with_partitions(vec![1]),
        ])),
    );
    let topics = &some.results[0].topics;
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].partitions.len(), 1);
    assert_eq!(topics[0].partitions[0].partition_index, 1);
}

#[test]
fn given_idempotent_producer_when_producers_described_should_show_its_sequence() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "idem", 1, &[]);
    let init: InitProducerIdResponse = conn.call(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(init.error_code, 0);
    let producer_id = init.producer_id.0;
    for sequence in [0, 3] {
        let records: Vec<RecordToEncode> = (0..3)
            .map(|i| RecordToEncode {
                key: Some(bytes::Bytes::from(format!("k{i}"))),
                value: Some(bytes::Bytes::from_static(b"v")),
                headers: vec![],
                timestamp_ms: now_ms(),
            })
            .collect();
        let blob = encode_batch(
            &records,
            &BatchBuilderOptions {
                producer_id,
                producer_epoch: init.producer_epoch,
                base_sequence: sequence,
                ..Default::default()
            },
        )
        .expect("encode");
        assert_eq!(produce(&mut conn, "idem", 0, blob).0, 0);
    }
    let response: DescribeProducersResponse = conn.call(
        ApiKey::DescribeProducers,
        0,
        &DescribeProducersRequest::default().with_topics(vec![
            TopicRequest::default()
                .with_name(topic_name("idem"))
                .with_partition_indexes(vec![0, 7]),
            TopicRequest::default()
                .with_name(topic_name("nope"))
                .with_partition_indexes(vec![0]),
        ]),
    );
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    assert_eq!(partition.active_producers.len(), 1);
    let state = &partition.active_producers[0];
    assert_eq!(state.producer_id.0, producer_id);
    assert_eq!(state.producer_epoch, init.producer_epoch as i32);
    assert_eq!(state.last_sequence, 5);
    assert_eq!(response.topics[0].partitions[1].error_code, UNKNOWN_TOPIC);
    assert_eq!(response.topics[1].partitions[0].error_code, UNKNOWN_TOPIC);
}

#[test]
fn given_manual_assignment_when_partitions_created_should_place_them_or_refuse_unknown_brokers() {
    use kafka_protocol::messages::create_partitions_request::{
        CreatePartitionsAssignment, CreatePartitionsTopic,
    };
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "grow", 1, &[]);
    let request = |count: i32, brokers: Vec<Vec<i32>>| {
        CreatePartitionsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name("grow"))
                .with_count(count)
                .with_assignments(Some(
                    brokers
                        .into_iter()
                        .map(|ids| {
                            CreatePartitionsAssignment::default()
                                .with_broker_ids(ids.into_iter().map(BrokerId).collect())
                        })
                        .collect(),
                ))])
    };
    let refused: CreatePartitionsResponse =
        conn.call(ApiKey::CreatePartitions, 3, &request(2, vec![vec![7]]));
    assert_eq!(
        refused.results[0].error_code, 39,
        "INVALID_REPLICA_ASSIGNMENT"
    );
    let created: CreatePartitionsResponse = conn.call(
        ApiKey::CreatePartitions,
        3,
        &request(3, vec![vec![1], vec![1]]),
    );
    assert_eq!(
        created.results[0].error_code, 0,
        "{:?}",
        created.results[0].error_message
    );
    assert_eq!(produce(&mut conn, "grow", 2, batch("p2", 1, now_ms())).0, 0);
}
