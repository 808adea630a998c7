//! Edge cases other Kafka-compatible brokers get wrong, each against the real binary.

mod broker_support;

use std::time::{Duration, Instant};

use broker_support::*;
use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

#[test]
fn given_multi_record_batch_when_listing_latest_should_be_last_offset_plus_one() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "latest", 1, &[]);
    assert_eq!(
        produce(&mut conn, "latest", 0, batch("a", 7, 1_000)),
        (0, 0)
    );
    assert_eq!(
        produce(&mut conn, "latest", 0, batch("b", 3, 2_000)),
        (0, 7)
    );
    let (error, latest, _) = list_offset(&mut conn, "latest", 0, -1);
    assert_eq!((error, latest), (0, 10), "latest = last record offset + 1");
    let (error, earliest, _) = list_offset(&mut conn, "latest", 0, -2);
    assert_eq!((error, earliest), (0, 0));
    let (_, high_watermark, _) = fetch(&mut conn, "latest", 0, 10);
    assert_eq!(high_watermark, 10);
}

#[test]
fn given_fetch_from_middle_of_batch_should_return_that_batch_once_and_never_repeat() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "middle", 1, &[]);
    for round in 0..3 {
        produce(
            &mut conn,
            "middle",
            0,
            batch(&format!("r{round}"), 5, 1_000),
        );
    }
    // Offset 7 lies inside the second batch (5..=9).
    let (error, _, records) = fetch(&mut conn, "middle", 0, 7);
    assert_eq!(error, 0);
    let values = decode_values(&records);
    let offsets: Vec<i64> = values.iter().map(|(o, _)| *o).collect();
    assert_eq!(
        offsets,
        (5..15).collect::<Vec<_>>(),
        "whole containing batch, then the rest, once"
    );
    // A consumer continues from its position: it must never see offsets again.
    let next = offsets.last().unwrap() + 1;
    let (_, _, rest) = fetch(&mut conn, "middle", 0, next);
    assert!(rest.is_empty(), "nothing after the end");
}

#[test]
fn given_long_poll_when_data_arrives_should_answer_before_max_wait() {
    let broker = TestBroker::start(&[]);
    let mut setup = broker.connect();
    create_topic(&mut setup, "poll", 1, &[]);
    let mut waiting = broker.connect();
    let max_wait_ms = 15_000;
    let started = Instant::now();
    waiting.send(
        ApiKey::Fetch,
        11,
        &fetch_request("poll", 0, 0, max_wait_ms, 1),
    );
    std::thread::sleep(Duration::from_millis(300));
    produce(&mut setup, "poll", 0, batch("late", 2, 1_000));
    let frame = waiting.read_frame().expect("fetch answered");
    let elapsed = started.elapsed();
    let mut body = frame;
    let _header =
        <ResponseHeader as kafka_protocol::protocol::Decodable>::decode(&mut body, 0).unwrap();
    let response =
        <FetchResponse as kafka_protocol::protocol::Decodable>::decode(&mut body, 11).unwrap();
    let records = response.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    assert_eq!(
        decode_values(&records).len(),
        2,
        "the fetch carries the new records"
    );
    // Correctness, not speed: it answered because data arrived, not because max_wait passed.
    assert!(
        elapsed < Duration::from_millis(max_wait_ms as u64),
        "answered after {elapsed:?}"
    );
}

#[test]
fn given_long_poll_without_data_when_max_wait_passes_should_answer_empty() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "idle", 1, &[]);
    let started = Instant::now();
    let response: FetchResponse =
        conn.call(ApiKey::Fetch, 11, &fetch_request("idle", 0, 0, 400, 1));
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "waited for max_wait"
    );
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    assert!(response.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default()
        .is_empty());
}

#[test]
fn given_acks0_writes_when_client_disconnects_at_once_should_keep_every_message() {
    let broker = TestBroker::start(&[]);
    let mut setup = broker.connect();
    create_topic(&mut setup, "fire", 1, &[]);
    let count = 200;
    {
        let mut conn = broker.connect();
        for i in 0..count {
            conn.send(
                ApiKey::Produce,
                9,
                &produce_request("fire", 0, batch(&format!("m{i}"), 1, 1_000), 0),
            );
        }
        // Dropped here: the socket closes right after the last write.
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut latest = 0;
    while Instant::now() < deadline {
        latest = list_offset(&mut setup, "fire", 0, -1).1;
        if latest == count {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        latest, count,
        "every acks=0 message written before the disconnect is kept"
    );
}

#[test]
fn given_flexible_responses_should_leave_out_default_tagged_fields() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    // ApiVersions v3 carries only the finalized features (transaction.version, see
    // txn_version2.rs); zk_migration_ready and the supported features with minimum 0 stay
    // out, as Kafka 4.4 leaves them out.
    conn.send(
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(kafka_protocol::protocol::StrBytes::from_static_str("t"))
            .with_client_software_version(kafka_protocol::protocol::StrBytes::from_static_str("1")),
    );
    let frame = conn.read_frame().expect("answer");
    let response = ApiVersionsResponse::decode(&mut frame.slice(4..), 3).expect("decodes");
    assert!(response.supported_features.is_empty());
    assert!(!response.zk_migration_ready);
    assert!(response.unknown_tagged_fields.is_empty());
    // Metadata v12 for an existing topic: every struct ends with an empty tag section.
    create_topic(&mut conn, "tags", 1, &[]);
    let response: MetadataResponse = conn.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(topic_name("tags"))),
        ])),
    );
    assert!(response.unknown_tagged_fields.is_empty());
    assert!(response.topics[0].unknown_tagged_fields.is_empty());
}

#[test]
fn given_metadata_by_topic_id_with_empty_name_should_answer_by_id() {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "by-id", 2, &[]);
    let by_name: MetadataResponse = conn.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name("by-id")))
        ])),
    );
    let id = by_name.topics[0].topic_id;
    assert!(!id.is_nil());

    // The Java client's request by id: name "" (the field's default), topic_id set.
    let unknown = uuid::Uuid::from_u128(0x5eed);
    let response: MetadataResponse = conn.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default()
                .with_name(Some(topic_name("")))
                .with_topic_id(id),
            MetadataRequestTopic::default()
                .with_name(Some(topic_name("")))
                .with_topic_id(unknown),
            MetadataRequestTopic::default().with_name(Some(topic_name(""))),
        ])),
    );
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(
        response.topics[0].name.as_ref().map(|n| n.0.to_string()),
        Some("by-id".to_string())
    );
    assert_eq!(response.topics[0].topic_id, id);
    assert_eq!(response.topics[0].partitions.len(), 2);
    assert_eq!(response.topics[1].error_code, 100, "UNKNOWN_TOPIC_ID");
    assert_eq!(response.topics[1].topic_id, unknown);
    assert_eq!(
        response.topics[2].error_code, 17,
        "no id and an empty name: INVALID_TOPIC_EXCEPTION"
    );
}

#[test]
fn given_timestamps_when_listing_by_time_should_return_first_offset_at_or_after() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "times", 1, &[]);
    produce(&mut conn, "times", 0, batch("a", 5, 10_000)); // offsets 0..5 at 10000..10004
    produce(&mut conn, "times", 0, batch("b", 5, 20_000)); // offsets 5..10 at 20000..20004
    assert_eq!(list_offset(&mut conn, "times", 0, 10_003), (0, 3, 10_003));
    assert_eq!(list_offset(&mut conn, "times", 0, 15_000), (0, 5, 20_000));
    assert_eq!(list_offset(&mut conn, "times", 0, 99_999), (0, -1, -1));
    assert_eq!(
        list_offset(&mut conn, "times", 0, -3),
        (0, 9, 20_004),
        "max timestamp"
    );
}

#[test]
fn given_restart_should_keep_topics_data_and_offsets() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let port = broker_support::ephemeral_port();
    {
        let mut broker = TestBroker::start_in(&data, port, &[]);
        let mut conn = broker.connect();
        create_topic(&mut conn, "durable", 2, &[("retention.ms", "-1")]);
        produce(&mut conn, "durable", 1, batch("x", 4, 1_000));
        broker.stop();
    }
    let broker = TestBroker::start_in(&data, port, &[]);
    let mut conn = broker.connect();
    let (error, high_watermark, records) = fetch(&mut conn, "durable", 1, 0);
    assert_eq!((error, high_watermark), (0, 4));
    let values: Vec<String> = decode_values(&records)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values, vec!["x-0", "x-1", "x-2", "x-3"]);
    // New writes continue the offsets.
    assert_eq!(
        produce(&mut conn, "durable", 1, batch("y", 1, 2_000)),
        (0, 4)
    );
}

/// Reads the partition's recovery-point checkpoint (8-byte offset + CRC), if written.
fn recovery_point(partition_dir: &std::path::Path) -> Option<i64> {
    let bytes = std::fs::read(partition_dir.join("recovery-point-offset-checkpoint")).ok()?;
    Some(i64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

#[test]
fn given_rolled_segments_should_be_synced_in_background_and_survive_kill() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let port = broker_support::ephemeral_port();
    let written = 40;
    {
        let mut broker = TestBroker::start_in(&data, port, &[]);
        let mut conn = broker.connect();
        create_topic(
            &mut conn,
            "rolling",
            1,
            &[("segment.bytes", "1024"), ("retention.ms", "-1")],
        );
        for i in 0..written {
            let (error, offset) = produce(&mut conn, "rolling", 0, batch("r", 10, 1_000 + i));
            assert_eq!((error, offset), (0, i * 10));
        }
        // The roll left the fsync to the background task, which moves the recovery
        // point past the sealed segments within a few of its 1 s ticks.
        let partition_dir = data.join("rolling-0");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let point = recovery_point(&partition_dir).unwrap_or(0);
            if point > 0 {
                assert!(
                    point <= written * 10,
                    "recovery point {point} past the log end"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the recovery point never moved past the rolled segments"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        broker.kill();
    }
    let broker = TestBroker::start_in(&data, port, &[]);
    let mut conn = broker.connect();
    let mut offset = 0;
    while offset < written * 10 {
        let (error, high_watermark, records) = fetch(&mut conn, "rolling", 0, offset);
        assert_eq!((error, high_watermark), (0, written * 10));
        let batch_values = decode_values(&records);
        assert!(!batch_values.is_empty(), "nothing read at offset {offset}");
        for (record_offset, value) in batch_values {
            if record_offset < offset {
                continue;
            }
            assert_eq!(record_offset, offset, "a gap after kill -9");
            assert_eq!(value, format!("r-{}", offset % 10));
            offset += 1;
        }
    }
}

#[test]
fn given_bad_requests_should_get_kafka_error_codes() {
    let broker = TestBroker::start(&["auto.create.topics.enable=false", "message.max.bytes=2000"]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "errs", 1, &[]);
    // Unknown topic with auto-create off.
    assert_eq!(
        produce(&mut conn, "nope", 0, batch("a", 1, 1)).0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    // Unknown partition.
    assert_eq!(produce(&mut conn, "errs", 5, batch("a", 1, 1)).0, 3);
    // Batch larger than message.max.bytes.
    let mut big = BytesMut::new();
    big.put_slice(&batch(&"z".repeat(3000), 1, 1));
    assert_eq!(
        produce(&mut conn, "errs", 0, big.freeze()).0,
        10,
        "MESSAGE_TOO_LARGE"
    );
    // Fetch beyond the end.
    assert_eq!(fetch(&mut conn, "errs", 0, 42).0, 1, "OFFSET_OUT_OF_RANGE");
    // Invalid topic name on create.
    let response: CreateTopicsResponse = conn.call(
        ApiKey::CreateTopics,
        5,
        &CreateTopicsRequest::default().with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(topic_name("bad/name"))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]),
    );
    assert_eq!(response.topics[0].error_code, 17, "INVALID_TOPIC_EXCEPTION");
    // Metadata for an unknown topic with auto-create off.
    let response: MetadataResponse = conn.call(
        ApiKey::Metadata,
        9,
        &MetadataRequest::default()
            .with_allow_auto_topic_creation(true)
            .with_topics(Some(vec![
                kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(topic_name("ghost"))),
            ])),
    );
    assert_eq!(response.topics[0].error_code, 3);
    // Invalid acks.
    let response: ProduceResponse = conn.call(
        ApiKey::Produce,
        9,
        &produce_request("errs", 0, batch("a", 1, 1), 2),
    );
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 21,
        "INVALID_REQUIRED_ACKS"
    );
}
