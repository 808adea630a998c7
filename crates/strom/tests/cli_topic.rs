//! `strom topic ...` and `strom cluster describe` against a real broker.

mod cli_support;

use cli_support::{stderr, Broker};

#[test]
fn given_broker_when_topic_created_listed_described_deleted_should_round_trip() {
    let broker = Broker::start();

    let created = broker.json(&[
        "topic",
        "create",
        "orders",
        "--partitions",
        "3",
        "--replication-factor",
        "1",
        "--config",
        "retention.ms=123456",
        "--json",
    ]);
    assert_eq!(created["topic"], "orders");
    assert_eq!(created["created"], true);
    assert_eq!(created["partitions"], 3);

    let listed = broker.json(&["topic", "list", "--json"]);
    let orders: Vec<_> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter(|t| t["topic"] == "orders")
        .collect();
    assert_eq!(orders.len(), 1, "{listed}");
    assert_eq!(orders[0]["partitions"], 3);
    let table = broker.ok(&["topic", "list"]);
    assert!(table.starts_with("TOPIC"), "{table}");
    assert!(table
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["orders", "3", "1"]));

    let described = broker.json(&["topic", "describe", "orders", "--json"]);
    let partitions = described["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 3);
    for (index, partition) in partitions.iter().enumerate() {
        assert_eq!(partition["partition"], index as i64);
        assert!(partition["leader"].as_i64().expect("leader") >= 0);
        assert_eq!(partition["replicas"].as_array().expect("replicas").len(), 1);
        assert_eq!(partition["isr"], partition["replicas"]);
        assert_eq!(partition["log_start_offset"], 0);
        assert_eq!(partition["log_end_offset"], 0);
    }
    let retention = described["configs"]
        .as_array()
        .expect("configs")
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .expect("retention.ms listed");
    assert_eq!(retention["value"], "123456");
    let human = broker.ok(&["topic", "describe", "orders"]);
    assert!(
        human.contains("PARTITION") && human.contains("LOG-END"),
        "{human}"
    );

    broker.ok(&["topic", "delete", "orders"]);
    let after = broker.strom(&["topic", "describe", "orders"]);
    assert_eq!(after.status.code(), Some(1));
    assert!(
        stderr(&after).contains("does not exist"),
        "{}",
        stderr(&after)
    );
}

#[test]
fn given_existing_topic_when_created_again_should_fail_unless_if_not_exists() {
    let broker = Broker::start();
    broker.ok(&["topic", "create", "dup", "--partitions", "1"]);

    let again = broker.strom(&["topic", "create", "dup", "--partitions", "1"]);
    assert_eq!(again.status.code(), Some(1));
    let message = stderr(&again);
    assert!(message.contains("TOPIC_ALREADY_EXISTS"), "{message}");
    assert!(message.contains("--if-not-exists"), "{message}");
    assert_eq!(
        message.trim().lines().count(),
        1,
        "one-line error: {message}"
    );

    let accepted = broker.json(&["topic", "create", "dup", "--if-not-exists", "--json"]);
    assert_eq!(accepted["already_existed"], true);
}

#[test]
fn given_validate_only_when_creating_should_not_create_topic() {
    let broker = Broker::start();
    let checked = broker.json(&[
        "topic",
        "create",
        "dry",
        "--partitions",
        "2",
        "--validate-only",
        "--json",
    ]);
    assert_eq!(checked["created"], false);
    let listed = broker.json(&["topic", "list", "--json"]);
    assert!(
        listed
            .as_array()
            .expect("array")
            .iter()
            .all(|t| t["topic"] != "dry"),
        "{listed}"
    );
}

#[test]
fn given_topic_when_config_altered_should_show_in_describe() {
    let broker = Broker::start();
    broker.ok(&["topic", "create", "conf", "--partitions", "1"]);
    broker.ok(&[
        "topic",
        "alter-config",
        "conf",
        "--set",
        "retention.ms=4242",
    ]);
    let retention = |broker: &Broker| {
        let described = broker.json(&["topic", "describe", "conf", "--json"]);
        described["configs"]
            .as_array()
            .expect("configs")
            .iter()
            .find(|c| c["name"] == "retention.ms")
            .expect("retention.ms")["value"]
            .clone()
    };
    assert_eq!(retention(&broker), "4242");
    broker.ok(&["topic", "alter-config", "conf", "--delete", "retention.ms"]);
    assert_ne!(
        retention(&broker),
        "4242",
        "deleting the override restores the default"
    );
}

#[test]
fn given_broker_when_cluster_described_should_list_it() {
    let broker = Broker::start();
    let cluster = broker.json(&["cluster", "describe", "--json"]);
    let brokers = cluster["brokers"].as_array().expect("brokers");
    assert_eq!(brokers.len(), 1);
    let port: u16 = broker
        .address
        .rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("port");
    assert_eq!(brokers[0]["port"], port);
    assert!(cluster["controller_id"].as_i64().is_some());

    let with_configs = broker.strom(&["cluster", "describe", "--configs", "--json"]);
    if with_configs.status.success() {
        let value: serde_json::Value = serde_json::from_slice(&with_configs.stdout).expect("json");
        let configs = value["brokers"][0]["configs"].as_array().expect("configs");
        assert!(!configs.is_empty(), "a broker has configs: {value}");
    } else {
        // A broker that cannot describe its configs fails in one line, naming the broker.
        assert!(
            stderr(&with_configs).contains("broker"),
            "{}",
            stderr(&with_configs)
        );
    }
}
