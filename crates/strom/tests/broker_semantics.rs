//! Semantics users rely on: idempotent producers, retention, LogAppendTime, and the admin
//! calls (DescribeConfigs, CreatePartitions, DeleteTopics), against the real binary.

mod broker_support;

use std::time::{Duration, Instant};

use broker_support::*;
use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordToEncode};

fn idempotent_batch(producer_id: i64, epoch: i16, base_sequence: i32, count: usize) -> Bytes {
    let records: Vec<RecordToEncode> = (0..count)
        .map(|i| RecordToEncode {
            key: None,
            value: Some(Bytes::from(format!("seq-{}", base_sequence as usize + i))),
            headers: vec![],
            timestamp_ms: 1_000,
        })
        .collect();
    encode_batch(
        &records,
        &BatchBuilderOptions {
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            ..Default::default()
        },
    )
    .unwrap()
}

fn init_producer_id(conn: &mut Conn) -> (i64, i16) {
    let response: InitProducerIdResponse = conn.call(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(response.error_code, 0);
    (response.producer_id.0, response.producer_epoch)
}

#[test]
fn given_idempotent_producer_retry_should_not_duplicate_even_after_restart() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let port = broker_support::ephemeral_port();
    let (producer_id, epoch);
    {
        let mut broker = TestBroker::start_in(&data, port, &[]);
        let mut conn = broker.connect();
        // Timestamps here are from 1970: keep time retention from deleting them.
        create_topic(&mut conn, "idem", 1, &[("retention.ms", "-1")]);
        (producer_id, epoch) = init_producer_id(&mut conn);
        let (second_id, _) = init_producer_id(&mut conn);
        assert_ne!(producer_id, second_id, "each producer gets its own id");
        assert_eq!(
            produce(
                &mut conn,
                "idem",
                0,
                idempotent_batch(producer_id, epoch, 0, 3)
            ),
            (0, 0)
        );
        assert_eq!(
            produce(
                &mut conn,
                "idem",
                0,
                idempotent_batch(producer_id, epoch, 3, 2)
            ),
            (0, 3)
        );
        // A retry of the first batch: acknowledged with its original offset, not appended.
        assert_eq!(
            produce(
                &mut conn,
                "idem",
                0,
                idempotent_batch(producer_id, epoch, 0, 3)
            ),
            (0, 0)
        );
        // A gap in the sequence.
        assert_eq!(
            produce(
                &mut conn,
                "idem",
                0,
                idempotent_batch(producer_id, epoch, 9, 1)
            )
            .0,
            45,
            "OUT_OF_ORDER_SEQUENCE_NUMBER"
        );
        broker.kill();
    }
    let broker = TestBroker::start_in(&data, port, &[]);
    let mut conn = broker.connect();
    // The producer state survived kill -9: the retry is still recognised.
    assert_eq!(
        produce(
            &mut conn,
            "idem",
            0,
            idempotent_batch(producer_id, epoch, 3, 2)
        ),
        (0, 3)
    );
    assert_eq!(
        produce(
            &mut conn,
            "idem",
            0,
            idempotent_batch(producer_id, epoch, 5, 1)
        ),
        (0, 5)
    );
    let (error, high_watermark, records) = fetch(&mut conn, "idem", 0, 0);
    assert_eq!(error, 0);
    assert_eq!(high_watermark, 6);
    let values: Vec<String> = decode_values(&records)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        values,
        (0..6).map(|i| format!("seq-{i}")).collect::<Vec<_>>()
    );
    // A fresh id after restart never repeats an old one.
    let (after_restart, _) = init_producer_id(&mut conn);
    assert!(after_restart > producer_id);
}

#[test]
fn given_small_retention_bytes_should_delete_old_segments_and_move_log_start() {
    let broker = TestBroker::start(&["log.retention.check.interval.ms=100"]);
    let mut conn = broker.connect();
    create_topic(
        &mut conn,
        "short",
        1,
        &[
            ("segment.bytes", "1024"),
            ("retention.bytes", "2048"),
            ("retention.ms", "-1"),
        ],
    );
    for round in 0..40 {
        assert_eq!(
            produce(&mut conn, "short", 0, batch(&format!("r{round}"), 4, 1_000)).0,
            0
        );
    }
    // Retention runs every 100 ms, also while producing: wait until the log start is
    // above 0 and has stopped moving.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log_start = 0;
    while Instant::now() < deadline {
        let before = list_offset(&mut conn, "short", 0, -2).1;
        std::thread::sleep(Duration::from_millis(400));
        log_start = list_offset(&mut conn, "short", 0, -2).1;
        if log_start > 0 && log_start == before {
            break;
        }
    }
    assert!(
        log_start > 0,
        "retention moved the log start; log:\n{}",
        broker.log()
    );
    assert_eq!(
        list_offset(&mut conn, "short", 0, -1).1,
        160,
        "log end unchanged"
    );
    assert_eq!(
        fetch(&mut conn, "short", 0, 0).0,
        1,
        "below log start: OFFSET_OUT_OF_RANGE"
    );
    let (error, _, records) = fetch(&mut conn, "short", 0, log_start);
    assert_eq!(error, 0);
    assert_eq!(decode_values(&records)[0].0, log_start);
}

#[test]
fn given_log_append_time_topic_should_stamp_broker_time() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(
        &mut conn,
        "stamped",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let response: ProduceResponse = conn.call(
        ApiKey::Produce,
        9,
        &produce_request("stamped", 0, batch("t", 3, 5), 1),
    );
    let append_time = response.responses[0].partition_responses[0].log_append_time_ms;
    assert!(
        append_time >= before,
        "log_append_time_ms {append_time} is the broker's clock"
    );
    let (_, _, records) = fetch(&mut conn, "stamped", 0, 0);
    let view = strom_protocol::batch::BatchView::parse(&records).unwrap();
    view.verify_crc().expect("CRC recomputed after stamping");
    for record in strom_protocol::record::decode_batch(&view).unwrap() {
        assert!(record.log_append_time);
        assert_eq!(record.timestamp_ms, append_time);
    }
}

#[test]
fn given_topic_override_when_describing_configs_should_show_value_source_and_synonyms() {
    let broker = TestBroker::start(&["log.retention.ms=1234567"]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "conf", 1, &[("retention.bytes", "99999")]);
    let request = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("conf"))
                .with_configuration_keys(None),
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_static_str("1"))
                .with_configuration_keys(Some(vec![StrBytes::from_static_str("num.partitions")])),
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("missing"))
                .with_configuration_keys(None),
        ]);
    let response: DescribeConfigsResponse = conn.call(ApiKey::DescribeConfigs, 4, &request);
    let topic = &response.results[0];
    assert_eq!(topic.error_code, 0);
    let find = |name: &str| {
        topic
            .configs
            .iter()
            .find(|c| c.name.as_str() == name)
            .unwrap()
    };
    let bytes = find("retention.bytes");
    assert_eq!(bytes.value.as_deref(), Some("99999"));
    assert_eq!(bytes.config_source, 1, "TOPIC_CONFIG");
    let ms = find("retention.ms");
    assert_eq!(ms.value.as_deref(), Some("1234567"));
    assert_eq!(ms.config_source, 4, "STATIC_BROKER_CONFIG");
    assert_eq!(ms.synonyms[0].name.as_str(), "log.retention.ms");
    let policy = find("cleanup.policy");
    assert_eq!(
        (policy.value.as_deref(), policy.config_source),
        (Some("delete"), 5)
    );
    let broker_result = &response.results[1];
    assert_eq!(broker_result.configs.len(), 1);
    assert_eq!(broker_result.configs[0].value.as_deref(), Some("1"));
    assert_eq!(response.results[2].error_code, 3, "unknown topic");
}

#[test]
fn given_create_partitions_and_delete_should_change_metadata() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "grow", 2, &[]);
    let grow = |count: i32| {
        CreatePartitionsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(topic_name("grow"))
                    .with_count(count)
                    .with_assignments(None),
            ])
    };
    let response: CreatePartitionsResponse = conn.call(ApiKey::CreatePartitions, 3, &grow(5));
    assert_eq!(response.results[0].error_code, 0);
    let response: CreatePartitionsResponse = conn.call(ApiKey::CreatePartitions, 3, &grow(3));
    assert_eq!(
        response.results[0].error_code, 37,
        "INVALID_PARTITIONS when shrinking"
    );
    assert_eq!(produce(&mut conn, "grow", 4, batch("new", 1, 1)), (0, 0));

    let response: DeleteTopicsResponse = conn.call(
        ApiKey::DeleteTopics,
        6,
        &DeleteTopicsRequest::default().with_topics(vec![
            delete_topics_request::DeleteTopicState::default().with_name(Some(topic_name("grow"))),
            delete_topics_request::DeleteTopicState::default().with_name(Some(topic_name("never"))),
        ]),
    );
    assert_eq!(response.responses[0].error_code, 0);
    assert_eq!(response.responses[1].error_code, 3);
    assert_eq!(produce(&mut conn, "grow", 0, batch("gone", 1, 1)).0, 3);
    // Recreating the name gives a fresh, empty topic.
    create_topic(&mut conn, "grow", 1, &[]);
    assert_eq!(list_offset(&mut conn, "grow", 0, -1).1, 0);
}

#[test]
fn given_cluster_when_described_should_name_this_broker_and_epoch_end_offsets() {
    let broker = TestBroker::start(&["node.id=7"]);
    let mut conn = broker.connect();
    let response: DescribeClusterResponse = conn.call(
        ApiKey::DescribeCluster,
        1,
        &DescribeClusterRequest::default().with_endpoint_type(1),
    );
    assert_eq!(response.error_code, 0);
    assert_eq!(response.controller_id.0, 7);
    assert_eq!(response.brokers.len(), 1);
    assert_eq!(response.brokers[0].port, broker.addr.port() as i32);
    assert!(!response.cluster_id.is_empty());

    create_topic(&mut conn, "epochs", 1, &[]);
    produce(&mut conn, "epochs", 0, batch("e", 3, 1));
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(topic_name("epochs"))
                .with_partitions(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(-1)
                        .with_leader_epoch(0),
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_partition(3)
                        .with_current_leader_epoch(-1)
                        .with_leader_epoch(0),
                ]),
        ]);
    let response: OffsetForLeaderEpochResponse =
        conn.call(ApiKey::OffsetForLeaderEpoch, 4, &request);
    let partitions = &response.topics[0].partitions;
    assert_eq!(
        (
            partitions[0].error_code,
            partitions[0].leader_epoch,
            partitions[0].end_offset
        ),
        (0, 0, 3),
        "epoch 0 ends at the log end"
    );
    assert_eq!(partitions[1].error_code, 3, "unknown partition");
}
