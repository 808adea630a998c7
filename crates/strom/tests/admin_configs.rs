//! AlterConfigs / IncrementalAlterConfigs against the real binary: persisted, described with
//! the topic source, validated (INVALID_CONFIG naming the key), unknown topics refused,
//! read-only broker keys refused, and changes that take effect live (retention deletes segments,
//! a topic switched to compact gets compacted and refuses keyless records).

mod broker_support;

use std::time::{Duration, Instant};

use broker_support::*;
use bytes::Bytes;
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request as incremental;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordToEncode};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
const UNKNOWN_TOPIC: i16 = 3;
const INVALID_RECORD: i16 = 87;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// IncrementalAlterConfigs v1 on one resource; returns (error code, message).
fn incremental(
    conn: &mut Conn,
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![incremental::AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(
                ops.iter()
                    .map(|(key, op, value)| {
                        incremental::AlterableConfig::default()
                            .with_name(s(key))
                            .with_config_operation(*op)
                            .with_value(value.map(s))
                    })
                    .collect(),
            )]);
    let response: IncrementalAlterConfigsResponse =
        conn.call(ApiKey::IncrementalAlterConfigs, 1, &request);
    let r = &response.responses[0];
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// AlterConfigs v1 (full replace) on one topic.
fn alter(conn: &mut Conn, name: &str, configs: &[(&str, &str)]) -> (i16, Option<String>) {
    let request =
        AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(s(name))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        AlterableConfig::default()
                            .with_name(s(k))
                            .with_value(Some(s(v)))
                    })
                    .collect(),
            )]);
    let response: AlterConfigsResponse = conn.call(ApiKey::AlterConfigs, 1, &request);
    let r = &response.responses[0];
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// DescribeConfigs v4: (value, source) of `key` on topic `name`.
fn describe(conn: &mut Conn, name: &str, key: &str) -> (String, i8) {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(s(name))
            .with_configuration_keys(Some(vec![s(key)]))]);
    let response: DescribeConfigsResponse = conn.call(ApiKey::DescribeConfigs, 4, &request);
    let result = &response.results[0];
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    let entry = &result.configs[0];
    (
        entry
            .value
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default(),
        entry.config_source,
    )
}

#[test]
fn given_topic_when_configs_altered_should_persist_validate_and_describe() {
    let mut broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "cfg", 1, &[]);

    assert_eq!(
        incremental(
            &mut conn,
            TOPIC,
            "cfg",
            &[("retention.ms", SET, Some("3600000"))],
            false
        ),
        (0, None)
    );
    assert_eq!(
        describe(&mut conn, "cfg", "retention.ms"),
        ("3600000".into(), 1)
    );

    // validate_only changes nothing.
    assert_eq!(
        incremental(
            &mut conn,
            TOPIC,
            "cfg",
            &[("retention.ms", SET, Some("5"))],
            true
        )
        .0,
        0
    );
    assert_eq!(describe(&mut conn, "cfg", "retention.ms").0, "3600000");

    // Invalid values and unknown keys: INVALID_CONFIG naming the key; nothing applied.
    let (code, message) = incremental(
        &mut conn,
        TOPIC,
        "cfg",
        &[
            ("segment.ms", SET, Some("1000")),
            ("retention.ms", SET, Some("-5")),
        ],
        false,
    );
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.unwrap().contains("retention.ms"));
    assert_eq!(
        describe(&mut conn, "cfg", "segment.ms").1,
        5,
        "all or nothing"
    );
    let (code, message) = incremental(
        &mut conn,
        TOPIC,
        "cfg",
        &[("retention.msec", SET, Some("1"))],
        false,
    );
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.unwrap().contains("retention.msec"));
    let (code, _) = incremental(
        &mut conn,
        TOPIC,
        "cfg",
        &[("cleanup.policy", SET, Some("archive"))],
        false,
    );
    assert_eq!(code, INVALID_CONFIG);

    // Unknown topic.
    assert_eq!(
        incremental(
            &mut conn,
            TOPIC,
            "nope",
            &[("retention.ms", SET, Some("1"))],
            false
        )
        .0,
        UNKNOWN_TOPIC
    );
    assert_eq!(
        alter(&mut conn, "nope", &[("retention.ms", "1")]).0,
        UNKNOWN_TOPIC
    );

    // APPEND / SUBTRACT on a list config start from the default; not on a non-list one.
    assert_eq!(
        incremental(
            &mut conn,
            TOPIC,
            "cfg",
            &[("cleanup.policy", APPEND, Some("compact"))],
            false
        )
        .0,
        0
    );
    assert_eq!(
        describe(&mut conn, "cfg", "cleanup.policy").0,
        "delete,compact"
    );
    assert_eq!(
        incremental(
            &mut conn,
            TOPIC,
            "cfg",
            &[("cleanup.policy", SUBTRACT, Some("delete"))],
            false
        )
        .0,
        0
    );
    assert_eq!(describe(&mut conn, "cfg", "cleanup.policy").0, "compact");
    let (code, message) = incremental(
        &mut conn,
        TOPIC,
        "cfg",
        &[("retention.ms", APPEND, Some("1"))],
        false,
    );
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.unwrap().contains("retention.ms"));

    // DELETE goes back to the default.
    assert_eq!(
        incremental(
            &mut conn,
            TOPIC,
            "cfg",
            &[("cleanup.policy", DELETE, None)],
            false
        )
        .0,
        0
    );
    assert_eq!(
        describe(&mut conn, "cfg", "cleanup.policy"),
        ("delete".into(), 5)
    );

    // AlterConfigs replaces the whole set: retention.ms (set above) is removed.
    assert_eq!(
        alter(&mut conn, "cfg", &[("segment.bytes", "1048576")]),
        (0, None)
    );
    assert_eq!(
        describe(&mut conn, "cfg", "segment.bytes"),
        ("1048576".into(), 1)
    );
    assert_eq!(describe(&mut conn, "cfg", "retention.ms").1, 5);
    let (code, message) = alter(&mut conn, "cfg", &[("max.message.bytes", "-1")]);
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.unwrap().contains("max.message.bytes"));

    // Read-only broker keys are refused with a message; unknown broker keys are invalid
    // (dynamic broker configs: admin_broker_configs.rs).
    let (code, message) = incremental(
        &mut conn,
        BROKER,
        "1",
        &[("num.partitions", SET, Some("3"))],
        false,
    );
    assert_eq!(code, INVALID_REQUEST);
    assert!(message.unwrap().contains("num.partitions"));
    assert_eq!(
        incremental(
            &mut conn,
            BROKER,
            "1",
            &[("no.such.key", SET, Some("3"))],
            false
        )
        .0,
        INVALID_CONFIG
    );

    // Deleting broker overrides that cannot exist succeeds (kafka-reassign-partitions
    // --verify clears the throttle rates on every broker); a SET beside one still fails the
    // whole resource.
    let clear_throttles = [
        ("leader.replication.throttled.rate", DELETE, None),
        ("follower.replication.throttled.rate", DELETE, None),
        (
            "replica.alter.log.dirs.io.max.bytes.per.second",
            DELETE,
            None,
        ),
    ];
    assert_eq!(
        incremental(&mut conn, BROKER, "1", &clear_throttles, false),
        (0, None)
    );
    assert_eq!(
        incremental(&mut conn, BROKER, "", &clear_throttles, true),
        (0, None)
    );
    let (code, message) = incremental(
        &mut conn,
        BROKER,
        "1",
        &[
            ("leader.replication.throttled.rate", DELETE, None),
            ("num.partitions", SET, Some("3")),
        ],
        false,
    );
    assert_eq!(code, INVALID_REQUEST);
    assert!(message.unwrap().contains("num.partitions"));
    // Another broker's resource is still refused, deletions or not.
    assert_eq!(
        incremental(&mut conn, BROKER, "7", &clear_throttles, false).0,
        INVALID_REQUEST
    );
    // An unknown operation on a broker resource is not mistaken for a deletion (Kafka:
    // INVALID_REQUEST, "Unknown operations type").
    assert_eq!(
        incremental(
            &mut conn,
            BROKER,
            "1",
            &[("leader.replication.throttled.rate", 9, None)],
            false
        )
        .0,
        INVALID_REQUEST
    );

    // Persisted in the metadata log: survives a restart.
    let (data_dir, port) = (broker.data_dir.clone(), broker.addr.port());
    broker.stop();
    let broker = TestBroker::start_in(&data_dir, port, &[]);
    let mut conn = broker.connect();
    assert_eq!(
        describe(&mut conn, "cfg", "segment.bytes"),
        ("1048576".into(), 1)
    );
}

/// Fetches the whole partition from `from`, batch range by batch range.
fn fetch_all(conn: &mut Conn, topic: &str, from: i64) -> Vec<(i64, Option<String>, String)> {
    let mut out = Vec::new();
    let mut offset = from;
    for _ in 0..10_000 {
        let (code, high_watermark, records) = fetch(conn, topic, 0, offset);
        assert_eq!(code, 0);
        if records.is_empty() {
            if offset >= high_watermark {
                break;
            }
            panic!("no records at {offset} below the high watermark {high_watermark}");
        }
        for batch in strom_protocol::batch::BatchIter::new(&records) {
            let batch = batch.expect("batch");
            offset = batch.last_offset() + 1;
            for record in strom_protocol::record::decode_batch(&batch).expect("decode") {
                if record.offset < from {
                    continue;
                }
                out.push((
                    record.offset,
                    record.key.map(|k| String::from_utf8(k.to_vec()).unwrap()),
                    String::from_utf8(record.value.unwrap_or_default().to_vec()).unwrap(),
                ));
            }
        }
    }
    out
}

fn keyed(records: &[(Option<&str>, &str)]) -> Bytes {
    let records: Vec<RecordToEncode> = records
        .iter()
        .map(|(key, value)| RecordToEncode {
            key: key.map(|k| Bytes::from(k.to_string())),
            value: Some(Bytes::from(value.to_string())),
            headers: vec![],
            timestamp_ms: now_ms(),
        })
        .collect();
    encode_batch(&records, &BatchBuilderOptions::default()).expect("encode")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn given_lower_retention_bytes_when_altered_should_delete_old_segments() {
    let broker = TestBroker::start(&["log.retention.check.interval.ms=200"]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "shrink", 1, &[("segment.bytes", "2048")]);
    for i in 0..60 {
        assert_eq!(
            produce(&mut conn, "shrink", 0, batch(&format!("r{i}"), 5, now_ms())).0,
            0
        );
    }
    assert_eq!(
        list_offset(&mut conn, "shrink", 0, -2).1,
        0,
        "nothing deleted yet"
    );
    assert_eq!(
        incremental(
            &mut conn,
            TOPIC,
            "shrink",
            &[("retention.bytes", SET, Some("4096"))],
            false
        )
        .0,
        0
    );
    wait_for("retention to delete segments", || {
        list_offset(&mut conn, "shrink", 0, -2).1 > 0
    });
    let start = list_offset(&mut conn, "shrink", 0, -2).1;
    let records = fetch_all(&mut conn, "shrink", start);
    assert_eq!(records.last().unwrap().0, 299, "the newest records stay");
}

#[test]
fn given_topic_switched_to_compact_when_cleaner_runs_should_keep_latest_per_key() {
    let broker = TestBroker::start(&["log.cleaner.backoff.ms=100"]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "table", 1, &[("segment.bytes", "1024")]);
    // Keyless records are fine while the policy is delete.
    assert_eq!(
        produce(&mut conn, "table", 0, keyed(&[(None, "loose")])).0,
        0
    );
    for round in 0..40 {
        let values: Vec<String> = (0..4).map(|k| format!("k{k}=v{round}")).collect();
        let records: Vec<(Option<&str>, &str)> = (0..4)
            .map(|k| (Some(["k0", "k1", "k2", "k3"][k]), values[k].as_str()))
            .collect();
        assert_eq!(produce(&mut conn, "table", 0, keyed(&records)).0, 0);
    }
    let before = fetch_all(&mut conn, "table", 0);
    assert_eq!(before.len(), 161);
    assert_eq!(
        incremental(
            &mut conn,
            TOPIC,
            "table",
            &[
                ("cleanup.policy", SET, Some("compact")),
                ("min.cleanable.dirty.ratio", SET, Some("0.01")),
            ],
            false
        )
        .0,
        0
    );
    // Now keyless records are refused with Kafka's error.
    let response: ProduceResponse = conn.call(
        ApiKey::Produce,
        9,
        &produce_request("table", 0, keyed(&[(None, "loose")]), 1),
    );
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, INVALID_RECORD);
    assert!(partition
        .error_message
        .as_ref()
        .is_some_and(|m| m.contains("without key")));

    wait_for("the cleaner to compact the sealed segments", || {
        fetch_all(&mut conn, "table", 0).len() < 40
    });
    let after = fetch_all(&mut conn, "table", 0);
    // Every key still reads its latest value, at its original offset.
    for key in ["k0", "k1", "k2", "k3"] {
        let latest_before = before
            .iter()
            .filter(|r| r.1.as_deref() == Some(key))
            .last()
            .unwrap();
        let latest_after = after
            .iter()
            .filter(|r| r.1.as_deref() == Some(key))
            .last()
            .unwrap();
        assert_eq!(latest_before, latest_after);
    }
    for record in &after {
        assert!(
            before.contains(record),
            "{record:?} was never written at that offset"
        );
    }
    assert!(
        after.iter().all(|r| r.1.is_some()),
        "keyless records are cleaned away"
    );
    assert_eq!(
        list_offset(&mut conn, "table", 0, -1).1,
        161,
        "the log end does not move"
    );
}
