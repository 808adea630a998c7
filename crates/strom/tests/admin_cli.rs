//! `strom config describe|alter|delete-records|log-dirs|producers` against a real broker.

mod cli_support;

use cli_support::{stderr, Broker};

#[test]
fn given_topic_when_configs_altered_through_cli_should_show_them_and_refuse_bad_values() {
    let broker = Broker::start();
    broker.ok(&[
        "topic",
        "create",
        "cfg-cli",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);

    let altered = broker.ok(&[
        "config",
        "alter",
        "--topic",
        "cfg-cli",
        "--set",
        "retention.ms=3600000",
        "--append",
        "cleanup.policy=compact",
    ]);
    assert!(altered.contains("Updated topic 'cfg-cli'"), "{altered}");
    let described = broker.json(&["config", "describe", "--topic", "cfg-cli", "--json"]);
    let configs = described["configs"].as_array().expect("configs");
    let value_of = |name: &str| {
        configs
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| (c["value"].clone(), c["source"].clone()))
    };
    assert_eq!(
        value_of("retention.ms"),
        Some(("3600000".into(), "DYNAMIC_TOPIC_CONFIG".into()))
    );
    assert_eq!(
        value_of("cleanup.policy").map(|v| v.0),
        Some("delete,compact".into())
    );
    assert_eq!(value_of("segment.bytes"), None, "defaults only with --all");
    let table = broker.ok(&["config", "describe", "--topic", "cfg-cli", "--all"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("segment.bytes"), "{table}");

    let refused = broker.strom(&[
        "config",
        "alter",
        "--topic",
        "cfg-cli",
        "--set",
        "retention.ms=-9",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("retention.ms"),
        "{}",
        stderr(&refused)
    );
    let missing = broker.strom(&[
        "config",
        "alter",
        "--topic",
        "nope",
        "--set",
        "retention.ms=1",
    ]);
    assert_eq!(missing.status.code(), Some(1));
    let broker_key = broker.strom(&[
        "config",
        "alter",
        "--broker",
        "1",
        "--set",
        "num.partitions=3",
    ]);
    assert_eq!(broker_key.status.code(), Some(1));
    assert!(
        stderr(&broker_key).contains("num.partitions"),
        "{}",
        stderr(&broker_key)
    );
    let broker_configs = broker.json(&["config", "describe", "--broker", "1", "--all", "--json"]);
    assert!(broker_configs["configs"]
        .as_array()
        .expect("configs")
        .iter()
        .any(|c| c["name"] == "log.cleaner.enable"));
}

#[test]
fn given_records_when_deleted_through_cli_should_report_low_watermark_and_sizes() {
    let broker = Broker::start();
    broker.ok(&[
        "topic",
        "create",
        "trim-cli",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    let lines: String = (0..10).map(|i| format!("line-{i}\n")).collect();
    broker.ok_with_stdin(&["produce", "trim-cli"], lines.as_bytes());

    let deleted = broker.json(&[
        "config",
        "delete-records",
        "--topic",
        "trim-cli",
        "--partition",
        "0=4",
        "--json",
    ]);
    assert_eq!(deleted["partitions"][0]["low_watermark"], 4, "{deleted}");
    let beyond = broker.strom(&[
        "config",
        "delete-records",
        "--topic",
        "trim-cli",
        "--partition",
        "0=99",
    ]);
    assert_eq!(beyond.status.code(), Some(1));

    let dirs = broker.json(&["config", "log-dirs", "--json"]);
    let partitions = dirs[0]["partitions"].as_array().expect("partitions");
    let ours = partitions
        .iter()
        .find(|p| p["topic"] == "trim-cli")
        .expect("our partition");
    assert!(ours["size_bytes"].as_i64().expect("size") > 0);

    let producers = broker.json(&["config", "producers", "--topic", "trim-cli", "--json"]);
    assert!(producers["producers"].is_array());
}

#[test]
fn given_broker_configs_when_altered_through_cli_should_describe_dynamic_sources() {
    let broker = Broker::start();
    let altered = broker.ok(&[
        "config",
        "alter",
        "--broker-defaults",
        "--add-config",
        "log.retention.ms=7200000",
    ]);
    assert!(altered.contains("Updated the broker defaults"), "{altered}");
    broker.ok(&[
        "config",
        "alter",
        "--broker",
        "1",
        "--set",
        "log.retention.bytes=1000000",
    ]);
    let source = |described: &serde_json::Value, name: &str| {
        described["configs"]
            .as_array()
            .expect("configs")
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| (c["value"].clone(), c["source"].clone()))
    };
    let own = broker.json(&["config", "describe", "--broker", "1", "--json"]);
    assert_eq!(
        source(&own, "log.retention.ms"),
        Some((
            serde_json::json!("7200000"),
            serde_json::json!("DYNAMIC_DEFAULT_BROKER_CONFIG")
        ))
    );
    assert_eq!(
        source(&own, "log.retention.bytes"),
        Some((
            serde_json::json!("1000000"),
            serde_json::json!("DYNAMIC_BROKER_CONFIG")
        ))
    );
    let defaults = broker.json(&["config", "describe", "--broker-defaults", "--json"]);
    assert_eq!(defaults["configs"].as_array().map(Vec::len), Some(1));
    broker.ok(&[
        "config",
        "alter",
        "--broker-defaults",
        "--delete-config",
        "log.retention.ms",
    ]);
    let own = broker.json(&["config", "describe", "--broker", "1", "--json"]);
    assert_eq!(
        source(&own, "log.retention.ms"),
        None,
        "back to the default"
    );
    // Read-only keys are refused with Kafka's message; two resources at once are refused.
    let refused = broker.strom(&[
        "config",
        "alter",
        "--broker-defaults",
        "--set",
        "log.dirs=elsewhere",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("Cannot update these configs dynamically"),
        "{}",
        stderr(&refused)
    );
    let both = broker.strom(&["config", "describe", "--broker", "1", "--broker-defaults"]);
    assert_ne!(both.status.code(), Some(0));
}
