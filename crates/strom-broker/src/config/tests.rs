//! Tests of the broker config (sources, precedence, validation, README table).

use super::*;

#[test]
fn given_defaults_when_parsed_should_match_embedded_default() {
    let config = BrokerConfig::from_raw(RawConfig::new()).expect("defaults valid");
    assert_eq!(config.listeners[0].bind, "127.0.0.1:9092".parse().unwrap());
    assert!(config.tls.is_none());
    assert_eq!(config.log_dirs, PathBuf::from("./strom-data"));
    assert!(config.auto_create_topics);
    assert_eq!(config.num_partitions, 1);
}

#[test]
fn given_file_set_and_env_when_layered_should_rise_in_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strom.toml");
    std::fs::write(
        &path,
        "num.partitions = 2\n\"log.retention.ms\" = 1000\n[auto.create.topics]\nenable = false\n",
    )
    .unwrap();
    let mut raw = RawConfig::new();
    raw.load_file(&path).unwrap();
    raw.apply_overrides(&["num.partitions=3".to_string()])
        .unwrap();
    raw.apply_env(|name| (name == "STROM_NUM_PARTITIONS").then(|| "4".to_string()))
        .unwrap();
    let config = BrokerConfig::from_raw(raw).unwrap();
    assert_eq!(config.num_partitions, 4);
    assert_eq!(config.log.retention_ms, 1000);
    assert!(!config.auto_create_topics);
    assert_eq!(
        config.describe("num.partitions"),
        Some(("4".to_string(), ConfigSource::StaticBroker))
    );
}

#[test]
fn given_bad_values_when_parsed_should_name_key_and_range() {
    let mut raw = RawConfig::new();
    raw.set("num.partitions", "zero").unwrap();
    let error = BrokerConfig::from_raw(raw).unwrap_err().to_string();
    assert!(
        error.contains("num.partitions") && error.contains("1..=10000"),
        "{error}"
    );

    let mut raw = RawConfig::new();
    let error = raw.set("num.partition", "1").unwrap_err().to_string();
    assert!(error.contains("did you mean `num.partitions`"), "{error}");

    let mut raw = RawConfig::new();
    raw.set("listeners", "SSL://127.0.0.1:9093").unwrap(); // SSL without a keystore
    assert!(BrokerConfig::from_raw(raw)
        .unwrap_err()
        .to_string()
        .contains("ssl.keystore.location"));
}

#[test]
fn given_topic_overrides_when_resolved_should_override_broker_defaults() {
    let config = BrokerConfig::from_raw(RawConfig::new()).unwrap();
    let mut topic = BTreeMap::new();
    topic.insert("retention.ms".to_string(), "5000".to_string());
    topic.insert(
        "message.timestamp.type".to_string(),
        "LogAppendTime".to_string(),
    );
    let log = log_config_for_topic(&config, &topic);
    assert_eq!(log.retention_ms, 5000);
    assert_eq!(log.message_timestamp_type, TimestampType::LogAppendTime);
    assert_eq!(log.segment_bytes, config.log.segment_bytes);
}

#[test]
fn given_http_listener_when_parsed_should_default_on_and_turn_off_when_empty() {
    let config = BrokerConfig::from_raw(RawConfig::new()).unwrap();
    assert_eq!(
        config.http_listener,
        Some("127.0.0.1:9644".parse().unwrap())
    );
    let mut raw = RawConfig::new();
    raw.set("http.listener", "").unwrap();
    assert_eq!(BrokerConfig::from_raw(raw).unwrap().http_listener, None);
    let mut raw = RawConfig::new();
    raw.set("http.listener", "nowhere").unwrap();
    let error = BrokerConfig::from_raw(raw).unwrap_err().to_string();
    assert!(error.contains("http.listener"), "{error}");
}

#[test]
fn every_key_has_an_env_name() {
    assert_eq!(env_name("num.partitions"), "STROM_NUM_PARTITIONS");
    for key in BROKER_CONFIG_KEYS {
        assert!(!key.doc.is_empty());
    }
}

#[test]
fn every_key_is_documented_in_the_readme() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md at the repository root");
    for key in BROKER_CONFIG_KEYS {
        assert!(
            readme.contains(&format!("| `{}` |", key.name)),
            "README.md's configuration table lacks `{}`",
            key.name
        );
    }
}

fn with(settings: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
    let mut raw = RawConfig::new();
    for (key, value) in settings {
        raw.set(key, value).unwrap();
    }
    BrokerConfig::from_raw(raw)
}

const VOTERS: &str = "1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293";

#[test]
fn given_process_roles_when_unset_should_derive_them_from_the_voter_list() {
    let single = with(&[]).unwrap();
    assert_eq!(single.cluster.roles, ProcessRoles::COMBINED);
    let voter = with(&[("node.id", "2"), ("controller.quorum.voters", VOTERS)]).unwrap();
    assert_eq!(voter.cluster.roles, ProcessRoles::COMBINED);
    assert_eq!(voter.cluster.metadata_listener, None);
    let observer = with(&[
        ("node.id", "4"),
        ("controller.quorum.voters", VOTERS),
        ("metadata.listener", "127.0.0.1:0"),
    ])
    .unwrap();
    assert!(observer.cluster.roles.is_broker_only());
    assert_eq!(
        observer.cluster.metadata_listener.as_deref(),
        Some("127.0.0.1:0")
    );
    let controller = with(&[
        ("node.id", "3"),
        ("controller.quorum.voters", VOTERS),
        ("process.roles", "controller"),
    ])
    .unwrap();
    assert!(controller.cluster.roles.is_controller_only());
    assert_eq!(controller.cluster.roles.to_string(), "controller");
}

#[test]
fn given_inconsistent_process_roles_when_parsed_should_name_the_key_and_the_fix() {
    for (settings, key, hint) in [
        (
            vec![("process.roles", "broker")],
            "process.roles",
            "needs controller.quorum.voters",
        ),
        (
            vec![("process.roles", "leader")],
            "process.roles",
            "broker, controller or broker,controller",
        ),
        (
            vec![
                ("node.id", "7"),
                ("controller.quorum.voters", VOTERS),
                ("process.roles", "controller"),
            ],
            "process.roles",
            "node.id 7 is not in controller.quorum.voters",
        ),
        (
            vec![
                ("node.id", "1"),
                ("controller.quorum.voters", VOTERS),
                ("process.roles", "broker"),
            ],
            "process.roles",
            "must be a controller",
        ),
        (
            vec![("node.id", "4"), ("controller.quorum.voters", VOTERS)],
            "metadata.listener",
            "host:port where the controllers reach",
        ),
        (
            vec![
                ("node.id", "4"),
                ("controller.quorum.voters", VOTERS),
                ("metadata.listener", "0.0.0.0:9194"),
            ],
            "metadata.listener",
            "not 0.0.0.0",
        ),
        (
            vec![("node.id", "4"), ("controller.quorum.voters", "1@host")],
            "controller.quorum.voters",
            "id@host:port",
        ),
    ] {
        let error = with(&settings).unwrap_err().to_string();
        assert!(
            error.contains(key) && error.contains(hint),
            "{settings:?}: {error}"
        );
    }
}

#[test]
fn given_secured_inter_broker_listener_when_its_client_settings_are_missing_should_name_them() {
    let ssl = [
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:9092,INTERNAL://127.0.0.1:9093",
        ),
        (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,INTERNAL:SSL",
        ),
        ("inter.broker.listener.name", "INTERNAL"),
        ("ssl.keystore.location", "broker.pem"),
    ];
    let error = with(&ssl).unwrap_err().to_string();
    assert!(error.contains("ssl.truststore.location"), "{error}");
    let mut trusted = ssl.to_vec();
    trusted.push(("ssl.truststore.location", "ca.pem"));
    let config = with(&trusted).unwrap();
    assert_eq!(config.inter_broker_listener, "INTERNAL");
    assert_eq!(
        config.inter_broker.truststore,
        Some(PathBuf::from("ca.pem"))
    );
    assert_eq!(
        config.inter_broker.keystore,
        Some(PathBuf::from("broker.pem"))
    );
    assert!(config.inter_broker.verify_hostname);
    assert!(config.inter_broker.sasl.is_none());

    let sasl = [
        ("listeners", "SASL_PLAINTEXT://127.0.0.1:9092"),
        ("inter.broker.sasl.username", "broker"),
    ];
    let error = with(&sasl).unwrap_err().to_string();
    assert!(error.contains("inter.broker.sasl.username"), "{error}");
    let mut complete = sasl.to_vec();
    complete.push(("inter.broker.sasl.password", "secret"));
    complete.push(("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512"));
    let config = with(&complete).unwrap();
    assert_eq!(
        config.inter_broker.sasl,
        Some(("SCRAM-SHA-512".into(), "broker".into(), "secret".into()))
    );
    let mut bad = complete.clone();
    bad.push(("sasl.mechanism.inter.broker.protocol", "GSSAPI"));
    assert!(with(&bad)
        .unwrap_err()
        .to_string()
        .contains("sasl.mechanism.inter.broker.protocol"));
    let unknown = [("inter.broker.listener.name", "NOPE")];
    let error = with(&unknown).unwrap_err().to_string();
    assert!(
        error.contains("inter.broker.listener.name") && error.contains("PLAINTEXT"),
        "{error}"
    );
}
