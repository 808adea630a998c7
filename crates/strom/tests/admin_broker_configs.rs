//! Dynamic broker configs against the real binary (issue 18): AlterConfigs and
//! IncrementalAlterConfigs on a BROKER resource (the node id, or "" for the cluster-wide
//! default) are stored in the metadata log, described with Kafka's sources and synonym
//! order, kept across a restart, refused as Kafka refuses them, and applied without a
//! restart where Strom implements them (message.max.bytes, min.insync.replicas,
//! log.retention.ms).

mod broker_support;
mod cli_support;
mod cluster_support;

use std::time::{Duration, Instant};

use broker_support::*;
use cluster_support::Cluster;
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::incremental_alter_configs_request as incremental;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const BROKER: i8 = 4;
const TOPIC: i8 = 2;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
const MESSAGE_TOO_LARGE: i16 = 10;
const NOT_ENOUGH_REPLICAS: i16 = 19;
/// Kafka's DescribeConfigs config sources.
const TOPIC_CONFIG: i8 = 1;
const DYNAMIC_BROKER: i8 = 2;
const DYNAMIC_DEFAULT: i8 = 3;
const STATIC_BROKER: i8 = 4;
const DEFAULT: i8 = 5;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn incremental(
    conn: &mut Conn,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, String) {
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![incremental::AlterConfigsResource::default()
            .with_resource_type(BROKER)
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
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// Legacy AlterConfigs (replaces the whole level) on a broker resource.
fn alter(conn: &mut Conn, name: &str, configs: &[(&str, &str)]) -> (i16, String) {
    let request =
        AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(BROKER)
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
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// DescribeConfigs v4 with synonyms: every entry of one resource.
fn describe(conn: &mut Conn, resource_type: i8, name: &str) -> Vec<DescribeConfigsResourceResult> {
    let request = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configuration_keys(None)]);
    let response: DescribeConfigsResponse = conn.call(ApiKey::DescribeConfigs, 4, &request);
    let result = &response.results[0];
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    result.configs.clone()
}

/// (value, source, [(synonym value, source)]) of `key`, or None when not described.
#[allow(clippy::type_complexity)]
fn entry(
    entries: &[DescribeConfigsResourceResult],
    key: &str,
) -> Option<(String, i8, Vec<(String, i8)>, bool)> {
    let e = entries.iter().find(|e| e.name.as_str() == key)?;
    Some((
        e.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
        e.config_source,
        e.synonyms
            .iter()
            .map(|s| {
                (
                    s.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                    s.source,
                )
            })
            .collect(),
        e.read_only,
    ))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("gave up waiting for {what}");
}

#[test]
fn given_dynamic_broker_configs_when_altered_should_describe_sources_and_survive_restart() {
    let mut broker = TestBroker::start(&["log.retention.ms=300000"]);
    let mut conn = broker.connect();

    // Cluster default and per-broker values of the same key.
    assert_eq!(
        incremental(
            &mut conn,
            "",
            &[("log.retention.ms", SET, Some("200000"))],
            false
        ),
        (0, String::new())
    );
    assert_eq!(
        incremental(
            &mut conn,
            "1",
            &[
                ("log.retention.ms", SET, Some("100000")),
                ("num.io.threads", SET, Some("16")),
            ],
            false
        ),
        (0, String::new())
    );
    // validate_only checks and changes nothing.
    assert_eq!(
        incremental(
            &mut conn,
            "1",
            &[("message.max.bytes", SET, Some("2000"))],
            true
        )
        .0,
        0
    );

    let check = |conn: &mut Conn| {
        let entries = describe(conn, BROKER, "1");
        let (value, source, synonyms, read_only) = entry(&entries, "log.retention.ms").unwrap();
        assert_eq!(
            (value.as_str(), source, read_only),
            ("100000", DYNAMIC_BROKER, false)
        );
        assert_eq!(
            synonyms,
            vec![
                ("100000".to_string(), DYNAMIC_BROKER),
                ("200000".to_string(), DYNAMIC_DEFAULT),
                ("300000".to_string(), STATIC_BROKER),
                ("604800000".to_string(), DEFAULT),
            ]
        );
        // A Kafka config Strom has no key for is stored and described.
        let (value, source, _, _) = entry(&entries, "num.io.threads").unwrap();
        assert_eq!((value.as_str(), source), ("16", DYNAMIC_BROKER));
        // validate_only left message.max.bytes alone; read-only keys say so.
        let (value, source, _, _) = entry(&entries, "message.max.bytes").unwrap();
        assert_eq!((value.as_str(), source), ("1048588", DEFAULT));
        assert!(
            entry(&entries, "log.dirs").unwrap().3,
            "log.dirs is read-only"
        );
        // The cluster-default resource describes the dynamic defaults alone.
        let defaults = describe(conn, BROKER, "");
        assert_eq!(defaults.len(), 1, "only log.retention.ms is a default");
        let (value, source, synonyms, _) = entry(&defaults, "log.retention.ms").unwrap();
        assert_eq!((value.as_str(), source), ("200000", DYNAMIC_DEFAULT));
        assert_eq!(synonyms, vec![("200000".to_string(), DYNAMIC_DEFAULT)]);
        // A topic's broker default follows the same order below its own override.
        let topic = describe(conn, TOPIC, "t");
        let (value, source, synonyms, _) = entry(&topic, "retention.ms").unwrap();
        assert_eq!((value.as_str(), source), ("100000", DYNAMIC_BROKER));
        assert_eq!(synonyms.len(), 4);
        let (_, source, synonyms, _) = entry(&topic, "segment.bytes").unwrap();
        assert_eq!((source, synonyms[0].1), (TOPIC_CONFIG, TOPIC_CONFIG));
    };
    create_topic(&mut conn, "t", 1, &[("segment.bytes", "1048576")]);
    check(&mut conn);

    // Stored in the metadata log: a restart keeps them.
    let (data_dir, port) = (broker.data_dir.clone(), broker.addr.port());
    broker.stop();
    let mut broker = TestBroker::start_in(&data_dir, port, &["log.retention.ms=300000"]);
    let mut conn = broker.connect();
    check(&mut conn);

    // DELETE goes back a level; the legacy call replaces the whole level.
    assert_eq!(
        incremental(&mut conn, "1", &[("log.retention.ms", DELETE, None)], false).0,
        0
    );
    let entries = describe(&mut conn, BROKER, "1");
    assert_eq!(
        entry(&entries, "log.retention.ms").unwrap().1,
        DYNAMIC_DEFAULT
    );
    assert_eq!(alter(&mut conn, "1", &[("background.threads", "4")]).0, 0);
    let entries = describe(&mut conn, BROKER, "1");
    assert!(entry(&entries, "num.io.threads").is_none(), "replaced away");
    assert_eq!(
        entry(&entries, "background.threads").unwrap().1,
        DYNAMIC_BROKER
    );
    // APPEND starts from the current value of a list config.
    assert_eq!(
        incremental(
            &mut conn,
            "",
            &[("log.cleanup.policy", APPEND, Some("compact"))],
            false
        )
        .0,
        0
    );
    let entries = describe(&mut conn, BROKER, "1");
    assert_eq!(
        entry(&entries, "log.cleanup.policy").unwrap().0,
        "delete,compact"
    );
    broker.stop();
}

#[test]
fn given_refused_broker_configs_when_altered_should_answer_kafkas_codes() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    // Read-only: Kafka's INVALID_REQUEST and message.
    assert_eq!(
        incremental(
            &mut conn,
            "1",
            &[("log.dirs", SET, Some("elsewhere"))],
            false
        ),
        (
            INVALID_REQUEST,
            "Cannot update these configs dynamically: Set(log.dirs)".to_string()
        )
    );
    assert_eq!(
        alter(&mut conn, "", &[("log.retention.hours", "1")]).0,
        INVALID_REQUEST
    );
    // Per-broker configs are refused at the cluster level.
    let (code, message) = incremental(
        &mut conn,
        "",
        &[("listener.name.plaintext.ssl.client.auth", SET, Some("none"))],
        false,
    );
    assert_eq!(code, INVALID_REQUEST);
    assert!(message.contains("broker id must be specified"), "{message}");
    // Keystores only with a listener prefix.
    let (code, message) = incremental(
        &mut conn,
        "1",
        &[("ssl.keystore.location", SET, Some("k.pem"))],
        false,
    );
    assert_eq!(code, INVALID_REQUEST);
    assert!(message.contains("listener prefix"), "{message}");
    // Malformed values and unknown names: INVALID_CONFIG naming the key.
    for (key, value) in [
        ("log.retention.ms", "soon"),
        ("message.max.bytes", "-5"),
        ("log.cleaner.min.cleanable.ratio", "two"),
        ("num.io.threads", "0"),
        ("log.message.timestamp.type", "Yesterday"),
        ("no.such.config", "1"),
    ] {
        let (code, message) = incremental(&mut conn, "", &[(key, SET, Some(value))], false);
        assert_eq!(code, INVALID_CONFIG, "{key}={value}: {message}");
        assert!(message.contains(key), "{key}: {message}");
    }
    // Bad resource names and operations.
    assert_eq!(
        incremental(
            &mut conn,
            "one",
            &[("log.retention.ms", SET, Some("1"))],
            false
        )
        .0,
        INVALID_REQUEST
    );
    assert_eq!(
        incremental(
            &mut conn,
            "7",
            &[("log.retention.ms", SET, Some("1"))],
            false
        )
        .0,
        INVALID_REQUEST
    );
    assert_eq!(
        incremental(&mut conn, "1", &[("log.retention.ms", 9, Some("1"))], false).0,
        INVALID_REQUEST
    );
    assert_eq!(
        incremental(
            &mut conn,
            "1",
            &[("num.io.threads", APPEND, Some("1"))],
            false
        )
        .0,
        INVALID_CONFIG
    );
    // One bad change fails the resource: nothing was stored.
    assert_eq!(
        incremental(
            &mut conn,
            "1",
            &[
                ("log.retention.ms", SET, Some("1000")),
                ("log.dirs", SET, Some("x")),
            ],
            false
        )
        .0,
        INVALID_REQUEST
    );
    let entries = describe(&mut conn, BROKER, "1");
    assert_eq!(entry(&entries, "log.retention.ms").unwrap().1, DEFAULT);
    assert!(describe(&mut conn, BROKER, "").is_empty());
    // Describing another broker's configs here is refused, as in Kafka.
    for name in ["7", "one"] {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(BROKER)
                .with_resource_name(s(name))
                .with_configuration_keys(None),
        ]);
        let response: DescribeConfigsResponse = conn.call(ApiKey::DescribeConfigs, 4, &request);
        assert_eq!(response.results[0].error_code, INVALID_REQUEST, "{name}");
    }
}

#[test]
fn given_dynamic_message_max_bytes_and_min_isr_when_set_should_refuse_produce_without_restart() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "big", 1, &[]);
    let records = batch("a-rather-long-value-to-fill-the-batch", 40, now_ms());
    assert!(records.len() > 600, "batch of {} bytes", records.len());
    assert_eq!(produce(&mut conn, "big", 0, records.clone()).0, 0);
    assert_eq!(
        incremental(
            &mut conn,
            "1",
            &[("message.max.bytes", SET, Some("512"))],
            false
        )
        .0,
        0
    );
    assert_eq!(
        produce(&mut conn, "big", 0, records.clone()).0,
        MESSAGE_TOO_LARGE
    );
    // A topic's own max.message.bytes still wins over the broker default.
    create_topic(&mut conn, "own", 1, &[("max.message.bytes", "100000")]);
    assert_eq!(produce(&mut conn, "own", 0, records.clone()).0, 0);
    // Removing the dynamic value restores the static one.
    assert_eq!(
        incremental(
            &mut conn,
            "1",
            &[("message.max.bytes", DELETE, None)],
            false
        )
        .0,
        0
    );
    assert_eq!(produce(&mut conn, "big", 0, records).0, 0);

    // min.insync.replicas for acks=all: one replica is too few for a default of 2.
    let acks_all = |conn: &mut Conn| {
        let response: ProduceResponse = conn.call(
            ApiKey::Produce,
            9,
            &produce_request("big", 0, batch("all", 1, now_ms()), -1),
        );
        response.responses[0].partition_responses[0].error_code
    };
    assert_eq!(acks_all(&mut conn), 0);
    assert_eq!(
        incremental(
            &mut conn,
            "",
            &[("min.insync.replicas", SET, Some("2"))],
            false
        )
        .0,
        0
    );
    assert_eq!(acks_all(&mut conn), NOT_ENOUGH_REPLICAS);
}

#[test]
fn given_dynamic_default_retention_when_set_should_delete_old_segments_of_topics_without_override()
{
    let broker = TestBroker::start(&["log.retention.check.interval.ms=100"]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "old", 1, &[("segment.bytes", "1024")]);
    create_topic(
        &mut conn,
        "kept",
        1,
        &[("segment.bytes", "1024"), ("retention.ms", "-1")],
    );
    let hour_ago = now_ms() - 3_600_000;
    for i in 0..30 {
        for topic in ["old", "kept"] {
            let (code, _) = produce(&mut conn, topic, 0, batch(&format!("r{i}"), 5, hour_ago));
            assert_eq!(code, 0);
        }
    }
    // The static default (7 days) keeps everything.
    assert_eq!(list_offset(&mut conn, "old", 0, -2).1, 0);
    assert_eq!(
        incremental(
            &mut conn,
            "",
            &[("log.retention.ms", SET, Some("60000"))],
            false
        )
        .0,
        0
    );
    wait_for(
        "the dynamic retention default to delete old segments",
        || list_offset(&mut conn, "old", 0, -2).1 > 0,
    );
    // The topic with its own retention.ms keeps its records: the override wins. Retention
    // ran at least once more after deleting from "old" (every 100 ms), so a wrong default
    // would show here.
    let start = list_offset(&mut conn, "old", 0, -2).1;
    wait_for("another retention pass", || {
        assert_eq!(
            produce(&mut conn, "old", 0, batch("more", 5, hour_ago)).0,
            0
        );
        list_offset(&mut conn, "old", 0, -2).1 > start
    });
    assert_eq!(list_offset(&mut conn, "kept", 0, -2).1, 0);
}

#[test]
fn given_cluster_when_broker_configs_altered_on_one_node_should_reach_every_broker() {
    let cluster = Cluster::start();
    let mut first = cluster.node(1).connect();
    assert_eq!(
        incremental(
            &mut first,
            "",
            &[("message.max.bytes", SET, Some("4096"))],
            false
        )
        .0,
        0
    );
    let mut second = cluster.node(2).connect();
    assert_eq!(
        incremental(
            &mut second,
            "2",
            &[("log.retention.ms", SET, Some("1000"))],
            false
        )
        .0,
        0
    );
    // Another broker's id is refused: clients send a broker's changes to that broker.
    assert_eq!(
        incremental(
            &mut first,
            "2",
            &[("log.retention.ms", SET, Some("1"))],
            false
        )
        .0,
        INVALID_REQUEST
    );
    for node in [1, 2, 3] {
        let mut conn = cluster.node(node).connect();
        wait_for(
            "the metadata log to bring the configs to every broker",
            || {
                let entries = describe(&mut conn, BROKER, &node.to_string());
                let max = entry(&entries, "message.max.bytes").unwrap();
                let retention = entry(&entries, "log.retention.ms").unwrap();
                let want_retention = if node == 2 {
                    ("1000".to_string(), DYNAMIC_BROKER)
                } else {
                    ("604800000".to_string(), DEFAULT)
                };
                (max.0.as_str(), max.1) == ("4096", DYNAMIC_DEFAULT)
                    && (retention.0, retention.1) == want_retention
            },
        );
    }
}

#[test]
fn given_dynamic_max_connections_per_ip_when_set_should_refuse_further_connections() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    assert_eq!(
        incremental(
            &mut conn,
            "1",
            &[("max.connections.per.ip", SET, Some("3"))],
            false
        )
        .0,
        0
    );
    // This connection and two more are admitted; a fourth from 127.0.0.1 is closed.
    let mut held: Vec<Conn> = (0..2).map(|_| broker.connect()).collect();
    assert!(held.iter_mut().all(Conn::answers));
    let mut extra = broker.connect();
    assert!(
        extra.is_closed_by_broker(),
        "the fourth connection is refused"
    );
    assert_eq!(
        incremental(
            &mut conn,
            "1",
            &[("max.connections.per.ip", DELETE, None)],
            false
        )
        .0,
        0
    );
    let mut after = broker.connect();
    assert!(after.answers(), "the static limit (1000) is back");
}
