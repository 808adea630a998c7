//! Dynamic broker configs: the ones Kafka 4.x lets AlterConfigs / IncrementalAlterConfigs
//! change on a running broker, per broker (resource name = node id) or as the cluster-wide
//! default (empty resource name).
//!
//! They are stored as `BrokerConfig` records in the metadata log, so every broker sees them
//! and they survive restarts. A broker's effective config is, in falling precedence: its own
//! dynamic value, the dynamic cluster default, its static config (file, `--set`,
//! environment), the built-in default: Kafka's synonym order in DescribeConfigs.
//!
//! Strom applies a subset without a restart (the log and retention defaults of topics
//! without their own override, `message.max.bytes`, the compaction defaults); the others are
//! accepted, stored and described but take effect only where Strom reads them (the README
//! lists which).

use std::collections::BTreeMap;

use strom_controller::MetadataImage;

use super::{find_key, BrokerConfig, ConfigError, ConfigSource, ConfigType, RawConfig};

/// Where a dynamic config may be set (Kafka's "Dynamic Update Mode").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only on one broker (resource name = node id).
    PerBroker,
    /// On one broker or as the cluster-wide default.
    ClusterWide,
}

/// How a dynamic config Strom has no key for is checked (Kafka's type and range).
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// A Strom key: checked by building the broker config with it.
    Strom,
    Int(i64),
    Long(i64),
    Double,
    Bool,
    Text,
    Password,
}

use Mode::{ClusterWide, PerBroker};

/// Every config Kafka 4.x updates dynamically (DynamicBrokerConfig's AllDynamicConfigs plus
/// the broker quota configs), with its mode and check.
const DYNAMIC: &[(&str, Mode, Rule)] = &[
    // Log defaults (the broker synonyms of topic configs).
    ("log.segment.bytes", ClusterWide, Rule::Strom),
    ("log.roll.ms", ClusterWide, Rule::Strom),
    ("log.roll.jitter.ms", ClusterWide, Rule::Long(0)),
    ("log.index.size.max.bytes", ClusterWide, Rule::Strom),
    ("log.index.interval.bytes", ClusterWide, Rule::Strom),
    ("log.flush.interval.messages", ClusterWide, Rule::Strom),
    ("log.flush.interval.ms", ClusterWide, Rule::Strom),
    ("log.retention.bytes", ClusterWide, Rule::Strom),
    ("log.retention.ms", ClusterWide, Rule::Strom),
    ("message.max.bytes", ClusterWide, Rule::Strom),
    ("log.segment.delete.delay.ms", ClusterWide, Rule::Long(0)),
    ("log.cleanup.policy", ClusterWide, Rule::Strom),
    ("log.cleaner.delete.retention.ms", ClusterWide, Rule::Strom),
    (
        "log.cleaner.min.compaction.lag.ms",
        ClusterWide,
        Rule::Strom,
    ),
    (
        "log.cleaner.max.compaction.lag.ms",
        ClusterWide,
        Rule::Strom,
    ),
    ("log.cleaner.min.cleanable.ratio", ClusterWide, Rule::Strom),
    ("unclean.leader.election.enable", ClusterWide, Rule::Strom),
    ("min.insync.replicas", ClusterWide, Rule::Strom),
    ("compression.type", ClusterWide, Rule::Text),
    ("compression.gzip.level", ClusterWide, Rule::Int(-1)),
    ("compression.lz4.level", ClusterWide, Rule::Int(1)),
    ("compression.zstd.level", ClusterWide, Rule::Int(-131_072)),
    ("log.preallocate", ClusterWide, Rule::Bool),
    ("log.message.timestamp.type", ClusterWide, Rule::Strom),
    (
        "log.message.timestamp.before.max.ms",
        ClusterWide,
        Rule::Long(0),
    ),
    (
        "log.message.timestamp.after.max.ms",
        ClusterWide,
        Rule::Long(0),
    ),
    ("log.local.retention.ms", ClusterWide, Rule::Long(-2)),
    ("log.local.retention.bytes", ClusterWide, Rule::Long(-2)),
    // The log cleaner.
    ("log.cleaner.threads", ClusterWide, Rule::Int(0)),
    ("log.cleaner.dedupe.buffer.size", ClusterWide, Rule::Strom),
    (
        "log.cleaner.io.buffer.load.factor",
        ClusterWide,
        Rule::Double,
    ),
    ("log.cleaner.io.buffer.size", ClusterWide, Rule::Int(0)),
    (
        "log.cleaner.io.max.bytes.per.second",
        ClusterWide,
        Rule::Strom,
    ),
    ("log.cleaner.backoff.ms", ClusterWide, Rule::Strom),
    // Thread pools and metrics.
    ("num.io.threads", ClusterWide, Rule::Int(1)),
    ("num.network.threads", ClusterWide, Rule::Int(1)),
    ("num.replica.fetchers", ClusterWide, Rule::Int(1)),
    (
        "num.recovery.threads.per.data.dir",
        ClusterWide,
        Rule::Int(1),
    ),
    ("background.threads", ClusterWide, Rule::Int(1)),
    ("metric.reporters", ClusterWide, Rule::Text),
    // Connection limits.
    ("max.connections", ClusterWide, Rule::Strom),
    ("max.connections.per.ip", ClusterWide, Rule::Strom),
    ("max.connections.per.ip.overrides", ClusterWide, Rule::Text),
    ("max.connection.creation.rate", ClusterWide, Rule::Int(0)),
    // Producer state.
    ("producer.id.expiration.ms", ClusterWide, Rule::Strom),
    (
        "transaction.partition.verification.enable",
        ClusterWide,
        Rule::Bool,
    ),
    // Remote storage.
    (
        "remote.log.index.file.cache.total.size.bytes",
        ClusterWide,
        Rule::Long(1),
    ),
    ("remote.fetch.max.wait.ms", ClusterWide, Rule::Int(1)),
    (
        "remote.log.manager.copy.max.bytes.per.second",
        ClusterWide,
        Rule::Long(1),
    ),
    (
        "remote.log.manager.fetch.max.bytes.per.second",
        ClusterWide,
        Rule::Long(1),
    ),
    (
        "remote.list.offsets.request.timeout.ms",
        ClusterWide,
        Rule::Long(1),
    ),
    // Replication quotas (dynamic only in Kafka).
    (
        "leader.replication.throttled.rate",
        ClusterWide,
        Rule::Long(0),
    ),
    (
        "follower.replication.throttled.rate",
        ClusterWide,
        Rule::Strom,
    ),
    (
        "replica.alter.log.dirs.io.max.bytes.per.second",
        ClusterWide,
        Rule::Long(0),
    ),
    // Listeners and their security (per broker).
    ("advertised.listeners", PerBroker, Rule::Strom),
    ("listeners", PerBroker, Rule::Strom),
    ("listener.security.protocol.map", PerBroker, Rule::Strom),
    ("principal.builder.class", PerBroker, Rule::Text),
    ("ssl.protocol", PerBroker, Rule::Text),
    ("ssl.provider", PerBroker, Rule::Text),
    ("ssl.cipher.suites", PerBroker, Rule::Text),
    ("ssl.enabled.protocols", PerBroker, Rule::Strom),
    ("ssl.keystore.type", PerBroker, Rule::Strom),
    ("ssl.keystore.location", PerBroker, Rule::Strom),
    ("ssl.keystore.password", PerBroker, Rule::Password),
    ("ssl.key.password", PerBroker, Rule::Password),
    ("ssl.keystore.certificate.chain", PerBroker, Rule::Password),
    ("ssl.keystore.key", PerBroker, Rule::Password),
    ("ssl.truststore.type", PerBroker, Rule::Text),
    ("ssl.truststore.location", PerBroker, Rule::Strom),
    ("ssl.truststore.password", PerBroker, Rule::Password),
    ("ssl.truststore.certificates", PerBroker, Rule::Password),
    ("ssl.keymanager.algorithm", PerBroker, Rule::Text),
    ("ssl.trustmanager.algorithm", PerBroker, Rule::Text),
    (
        "ssl.endpoint.identification.algorithm",
        PerBroker,
        Rule::Strom,
    ),
    ("ssl.secure.random.implementation", PerBroker, Rule::Text),
    ("ssl.client.auth", PerBroker, Rule::Strom),
    ("ssl.engine.factory.class", PerBroker, Rule::Text),
    (
        "sasl.mechanism.inter.broker.protocol",
        PerBroker,
        Rule::Strom,
    ),
    ("sasl.jaas.config", PerBroker, Rule::Password),
    ("sasl.enabled.mechanisms", PerBroker, Rule::Strom),
    ("sasl.kerberos.service.name", PerBroker, Rule::Text),
    ("sasl.kerberos.kinit.cmd", PerBroker, Rule::Text),
    (
        "sasl.kerberos.ticket.renew.window.factor",
        PerBroker,
        Rule::Double,
    ),
    ("sasl.kerberos.ticket.renew.jitter", PerBroker, Rule::Double),
    (
        "sasl.kerberos.min.time.before.relogin",
        PerBroker,
        Rule::Long(0),
    ),
    (
        "sasl.kerberos.principal.to.local.rules",
        PerBroker,
        Rule::Text,
    ),
    ("sasl.login.refresh.window.factor", PerBroker, Rule::Double),
    ("sasl.login.refresh.window.jitter", PerBroker, Rule::Double),
    (
        "sasl.login.refresh.min.period.seconds",
        PerBroker,
        Rule::Int(0),
    ),
    ("sasl.login.refresh.buffer.seconds", PerBroker, Rule::Int(0)),
];

/// Kafka's keystore and truststore configs: dynamic only with a listener prefix
/// (`listener.name.<listener>.ssl.keystore.location`).
const SECURITY: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.truststore.certificates",
];

/// Listener configs Kafka lets the cluster default carry even with a listener prefix.
const CLUSTER_LEVEL_LISTENER: &[&str] = &[
    "max.connections",
    "max.connection.creation.rate",
    "num.network.threads",
];

/// Kafka broker configs Strom has no key for that Kafka does not update dynamically: named
/// so that setting one is refused as read-only (as Kafka does) rather than as unknown.
const KAFKA_READ_ONLY: &[&str] = &[
    "broker.id",
    "controller.listener.names",
    "log.dir",
    "log.retention.hours",
    "log.retention.minutes",
    "log.roll.hours",
    "log.roll.jitter.hours",
    "log.flush.scheduler.interval.ms",
    "metadata.log.dir",
    "queued.max.requests",
    "replica.socket.timeout.ms",
    "request.timeout.ms",
    "socket.receive.buffer.bytes",
    "socket.send.buffer.bytes",
    "zookeeper.connect",
];

fn dynamic(name: &str) -> Option<(Mode, Rule)> {
    DYNAMIC
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, mode, rule)| (*mode, *rule))
}

/// `listener.name.<listener>.<config>` -> `<config>`.
fn listener_base(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("listener.name.")?;
    let (listener, base) = rest.split_once('.')?;
    (!listener.is_empty() && !base.is_empty()).then_some(base)
}

/// Whether Kafka updates `name` dynamically.
pub fn is_dynamic(name: &str) -> bool {
    dynamic(name).is_some() || listener_base(name).is_some_and(|b| dynamic(b).is_some())
}

/// Whether `name` must be set per broker (not as the cluster default).
fn is_per_broker(name: &str) -> bool {
    match listener_base(name) {
        Some(base) => !CLUSTER_LEVEL_LISTENER.contains(&base),
        None => matches!(dynamic(name), Some((PerBroker, _))),
    }
}

/// Whether `name` holds a secret (never described back).
pub fn is_password(name: &str) -> bool {
    let base = listener_base(name).unwrap_or(name);
    matches!(dynamic(base), Some((_, Rule::Password)))
        || find_key(base).is_some_and(|k| k.config_type == ConfigType::Password)
}

/// The type DescribeConfigs reports for a dynamic config Strom has no key for.
pub fn config_type(name: &str) -> ConfigType {
    let base = listener_base(name).unwrap_or(name);
    if let Some(key) = find_key(base) {
        return key.config_type;
    }
    match dynamic(base).map(|(_, rule)| rule) {
        Some(Rule::Int(_)) => ConfigType::Int,
        Some(Rule::Long(_)) => ConfigType::Long,
        Some(Rule::Double) => ConfigType::Double,
        Some(Rule::Bool) => ConfigType::Boolean,
        Some(Rule::Password) => ConfigType::Password,
        _ => ConfigType::String,
    }
}

/// Why a change was refused: `invalid_request` is Kafka's INVALID_REQUEST (read-only names,
/// per-broker names at the cluster level), otherwise INVALID_CONFIG (unknown names, bad
/// values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub invalid_request: bool,
    pub message: String,
}

/// Kafka's message format for a set of names: `Set(a, b)`.
fn name_set(names: &[&str]) -> String {
    format!("Set({})", names.join(", "))
}

fn check_rule(name: &str, value: &str, rule: Rule) -> Result<(), String> {
    let value = value.trim();
    let bad = |what: &str| {
        Err(format!(
            "Invalid value {value} for configuration {name}: {what}"
        ))
    };
    match rule {
        Rule::Strom => check_strom_key(name, value),
        Rule::Text | Rule::Password => Ok(()),
        Rule::Int(min) => match value.parse::<i32>() {
            Ok(v) if i64::from(v) >= min => Ok(()),
            Ok(_) => bad(&format!("Value must be at least {min}")),
            Err(_) => bad("Not a number of type INT"),
        },
        Rule::Long(min) => match value.parse::<i64>() {
            Ok(v) if v >= min => Ok(()),
            Ok(_) => bad(&format!("Value must be at least {min}")),
            Err(_) => bad("Not a number of type LONG"),
        },
        Rule::Double => match value.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(()),
            _ => bad("Not a number of type DOUBLE"),
        },
        Rule::Bool => match value.to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => bad("Expected value to be either true or false"),
        },
    }
}

/// A Strom key's type, and for the broker default of a topic config the topic's rule
/// (Kafka's range); the rest is checked by building the config.
fn check_strom_key(name: &str, value: &str) -> Result<(), String> {
    let bad = |what: &str| {
        Err(format!(
            "Invalid value {value} for configuration {name}: {what}"
        ))
    };
    if let Some((topic_key, _)) = super::TOPIC_CONFIG_SYNONYMS
        .iter()
        .find(|(_, broker_key)| *broker_key == name)
    {
        if let Err(error) = strom_controller::validate_topic_config(topic_key, value) {
            // The topic rule's message, naming the broker key that was set.
            return Err(error.to_string().replace(topic_key, name));
        }
    }
    let Some(key) = find_key(name) else {
        return Ok(());
    };
    let ok = match key.config_type {
        ConfigType::Int => value.parse::<i32>().is_ok(),
        ConfigType::Short => value.parse::<i16>().is_ok(),
        ConfigType::Long => value.parse::<i64>().is_ok(),
        ConfigType::Double => value.parse::<f64>().is_ok_and(|v| !v.is_nan()),
        ConfigType::Boolean => matches!(value, "true" | "false"),
        ConfigType::String | ConfigType::List | ConfigType::Password => true,
    };
    if ok {
        Ok(())
    } else {
        let kind = format!("{:?}", key.config_type).to_uppercase();
        bad(&format!("Not a value of type {kind}"))
    }
}

/// Checks a change of one level (`per_broker`: a node id; otherwise the cluster default)
/// and returns that level's configs after it. `current` is the level's configs now;
/// `Some` sets a key, `None` removes it (removing is always allowed, as in Kafka).
pub fn check_changes(
    config: &BrokerConfig,
    current: &BTreeMap<String, String>,
    per_broker: bool,
    changes: &[(String, Option<String>)],
) -> Result<BTreeMap<String, String>, Refusal> {
    let set: Vec<(&str, &str)> = changes
        .iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k.as_str(), v)))
        .collect();
    if let Some((unknown, _)) = set.iter().find(|(name, _)| {
        !is_dynamic(name) && find_key(name).is_none() && !KAFKA_READ_ONLY.contains(name)
    }) {
        return Err(Refusal {
            invalid_request: false,
            message: format!("Unknown broker config name: {unknown}"),
        });
    }
    let read_only: Vec<&str> = set
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !is_dynamic(name))
        .collect();
    if !read_only.is_empty() {
        return Err(Refusal {
            invalid_request: true,
            message: format!(
                "Cannot update these configs dynamically: {}",
                name_set(&read_only)
            ),
        });
    }
    let unprefixed: Vec<&str> = set
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| SECURITY.contains(name))
        .collect();
    if !unprefixed.is_empty() {
        return Err(Refusal {
            invalid_request: true,
            message: format!(
                "These security configs can be dynamically updated only per-listener using the listener prefix: {}",
                name_set(&unprefixed)
            ),
        });
    }
    for (name, value) in &set {
        let base = listener_base(name).unwrap_or(name);
        if let Some((_, rule)) = dynamic(base) {
            check_rule(name, value, rule).map_err(|message| Refusal {
                invalid_request: false,
                message,
            })?;
        }
    }
    if !per_broker {
        let per: Vec<&str> = set
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| is_per_broker(name))
            .collect();
        if !per.is_empty() {
            return Err(Refusal {
                invalid_request: true,
                message: format!(
                    "Cannot update these configs at default cluster level, broker id must be specified: {}",
                    name_set(&per)
                ),
            });
        }
    }
    let mut next = current.clone();
    for (key, value) in changes {
        match value {
            Some(value) => next.insert(key.clone(), value.trim().to_string()),
            None => next.remove(key),
        };
    }
    // Strom's own keys are checked the way the config file is: build the config with them.
    layered(config, &[&next]).map_err(|error| Refusal {
        invalid_request: false,
        message: match error {
            ConfigError::BadValue {
                key,
                value,
                expected,
            } => format!("Invalid value {value} for configuration {key}: {expected}"),
            other => other.to_string(),
        },
    })?;
    Ok(next)
}

/// The static config with dynamic levels laid over it (later levels win). Only Strom's
/// keys change the result; the others are stored for DescribeConfigs.
fn layered(
    config: &BrokerConfig,
    levels: &[&BTreeMap<String, String>],
) -> Result<BrokerConfig, ConfigError> {
    let mut raw: RawConfig = config.raw.clone();
    for level in levels {
        for (key, value) in level.iter() {
            if find_key(key).is_some() && dynamic(key).is_some() {
                raw.values
                    .insert(key.clone(), (value.clone(), ConfigSource::StaticBroker));
            }
        }
    }
    BrokerConfig::from_raw(raw)
}

/// This broker's effective config under the image's dynamic configs, or `None` when no
/// dynamic value of a key Strom reads is set (the static config is then the answer). A
/// stored value that no longer builds (it was checked when set) is logged and ignored.
pub fn effective(config: &BrokerConfig, image: &MetadataImage) -> Option<BrokerConfig> {
    let default = image.broker_configs(None);
    let own = image.broker_configs(Some(config.node_id));
    let relevant = |level: &BTreeMap<String, String>| {
        level
            .keys()
            .any(|k| find_key(k).is_some() && dynamic(k).is_some())
    };
    if !relevant(default) && !relevant(own) {
        return None;
    }
    match layered(config, &[default, own]) {
        Ok(effective) => Some(effective),
        Err(error) => {
            tracing::warn!(%error, "dynamic broker configs do not build; using the static config");
            None
        }
    }
}

/// The dynamic value of `key` for this broker (its own, else the cluster default), if one
/// is set: for settings read per request rather than from the config built at start-up.
pub fn dynamic_value<'a>(
    config: &BrokerConfig,
    image: &'a MetadataImage,
    key: &str,
) -> Option<&'a String> {
    image
        .broker_configs(Some(config.node_id))
        .get(key)
        .or_else(|| image.broker_configs(None).get(key))
}

/// One value of a broker config with where it comes from, most specific first (Kafka's
/// DescribeConfigs synonyms order): dynamic per-broker, dynamic default, static, default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    DynamicBroker,
    DynamicDefault,
    Static,
    Default,
}

/// The values of `name` at every level that has one, most specific first.
pub fn layers(config: &BrokerConfig, image: &MetadataImage, name: &str) -> Vec<(String, Layer)> {
    let mut out = Vec::new();
    if let Some(value) = image.broker_configs(Some(config.node_id)).get(name) {
        out.push((value.clone(), Layer::DynamicBroker));
    }
    if let Some(value) = image.broker_configs(None).get(name) {
        out.push((value.clone(), Layer::DynamicDefault));
    }
    if let Some(key) = find_key(name) {
        if let Some((value, ConfigSource::StaticBroker)) = config.raw.values.get(name).cloned() {
            out.push((value, Layer::Static));
        }
        out.push((key.default.to_string(), Layer::Default));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    fn config() -> BrokerConfig {
        BrokerConfig::from_raw(RawConfig::new()).unwrap()
    }

    #[test]
    fn dynamic_keys_are_accepted_and_merged() {
        let current = BTreeMap::from([("log.retention.ms".to_string(), "1".to_string())]);
        let next = check_changes(
            &config(),
            &current,
            false,
            &changes(&[
                ("log.retention.ms", None),
                ("message.max.bytes", Some(" 2048 ")),
                ("num.io.threads", Some("4")),
            ]),
        )
        .unwrap();
        assert_eq!(
            next,
            BTreeMap::from([
                ("message.max.bytes".to_string(), "2048".to_string()),
                ("num.io.threads".to_string(), "4".to_string()),
            ])
        );
    }

    #[test]
    fn refusals_use_kafkas_codes_and_messages() {
        let empty = BTreeMap::new();
        let refuse = |per_broker, pairs: &[(&str, Option<&str>)]| {
            check_changes(&config(), &empty, per_broker, &changes(pairs)).unwrap_err()
        };
        let read_only = refuse(true, &[("log.dirs", Some("x")), ("broker.id", Some("2"))]);
        assert!(read_only.invalid_request);
        assert_eq!(
            read_only.message,
            "Cannot update these configs dynamically: Set(log.dirs, broker.id)"
        );
        let unknown = refuse(true, &[("no.such.config", Some("1"))]);
        assert!(!unknown.invalid_request, "{unknown:?}");
        let bad = refuse(false, &[("log.retention.ms", Some("soon"))]);
        assert!(!bad.invalid_request);
        assert!(bad.message.contains("log.retention.ms"), "{bad:?}");
        let bad = refuse(false, &[("num.io.threads", Some("0"))]);
        assert!(bad.message.contains("at least 1"), "{bad:?}");
        let per = refuse(
            false,
            &[("listener.name.plaintext.ssl.client.auth", Some("none"))],
        );
        assert!(per.invalid_request && per.message.contains("broker id must be specified"));
        let security = refuse(true, &[("ssl.keystore.location", Some("k.pem"))]);
        assert!(security.invalid_request && security.message.contains("listener prefix"));
        // Removing anything is allowed, as in Kafka.
        check_changes(&config(), &empty, false, &changes(&[("log.dirs", None)])).unwrap();
    }

    #[test]
    fn layers_follow_kafkas_synonym_order() {
        let mut image = MetadataImage::empty();
        for (broker, value) in [(None, "100"), (Some(1), "200")] {
            image
                .apply(&strom_controller::MetadataRecord::BrokerConfig {
                    broker,
                    key: "log.retention.ms".to_string(),
                    value: Some(value.to_string()),
                })
                .unwrap();
        }
        let mut raw = RawConfig::new();
        raw.set("log.retention.ms", "300").unwrap();
        let config = BrokerConfig::from_raw(raw).unwrap();
        let got = layers(&config, &image, "log.retention.ms");
        assert_eq!(
            got,
            vec![
                ("200".to_string(), Layer::DynamicBroker),
                ("100".to_string(), Layer::DynamicDefault),
                ("300".to_string(), Layer::Static),
                ("604800000".to_string(), Layer::Default),
            ]
        );
        assert_eq!(effective(&config, &image).unwrap().log.retention_ms, 200);
    }
}
