//! The topic configs Strom accepts and their type and range checks (Kafka's `LogConfig`
//! definitions). An unknown key is refused rather than silently stored, so a typo shows
//! up at `create`/`alter` time instead of as a config that never takes effect.

use crate::error::ConfigError;

/// What a config value must look like.
#[derive(Debug, Clone, Copy)]
enum ValueRule {
    Int { min: i32, max: i32 },
    Long { min: i64 },
    Ratio,
    Bool,
    OneOf(&'static [&'static str]),
    CleanupPolicy,
    ThrottledReplicas,
    RemoteStorage,
    GzipLevel,
}

const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// Every accepted topic config with its rule, sorted by name. Minimums are Kafka's.
const TOPIC_CONFIGS: &[(&str, ValueRule)] = &[
    ("cleanup.policy", ValueRule::CleanupPolicy),
    ("compression.gzip.level", ValueRule::GzipLevel),
    ("compression.lz4.level", ValueRule::Int { min: 1, max: 17 }),
    ("compression.type", ValueRule::OneOf(COMPRESSION_TYPES)),
    (
        "compression.zstd.level",
        ValueRule::Int {
            min: -131_072,
            max: 22,
        },
    ),
    // Confluent Server's server-side schema validation (strom-broker `schema_validation`).
    ("confluent.key.schema.validation", ValueRule::Bool),
    ("confluent.value.schema.validation", ValueRule::Bool),
    ("delete.retention.ms", ValueRule::Long { min: 0 }),
    ("file.delete.delay.ms", ValueRule::Long { min: 0 }),
    ("flush.messages", ValueRule::Long { min: 1 }),
    ("flush.ms", ValueRule::Long { min: 0 }),
    (
        "follower.replication.throttled.replicas",
        ValueRule::ThrottledReplicas,
    ),
    (
        "index.interval.bytes",
        ValueRule::Int {
            min: 0,
            max: i32::MAX,
        },
    ),
    (
        "leader.replication.throttled.replicas",
        ValueRule::ThrottledReplicas,
    ),
    ("local.retention.bytes", ValueRule::Long { min: -2 }),
    ("local.retention.ms", ValueRule::Long { min: -2 }),
    ("max.compaction.lag.ms", ValueRule::Long { min: 1 }),
    (
        "max.message.bytes",
        ValueRule::Int {
            min: 0,
            max: i32::MAX,
        },
    ),
    ("message.downconversion.enable", ValueRule::Bool),
    ("message.timestamp.after.max.ms", ValueRule::Long { min: 0 }),
    (
        "message.timestamp.before.max.ms",
        ValueRule::Long { min: 0 },
    ),
    ("message.timestamp.type", ValueRule::OneOf(TIMESTAMP_TYPES)),
    ("min.cleanable.dirty.ratio", ValueRule::Ratio),
    ("min.compaction.lag.ms", ValueRule::Long { min: 0 }),
    (
        "min.insync.replicas",
        ValueRule::Int {
            min: 1,
            max: i32::MAX,
        },
    ),
    ("preallocate", ValueRule::Bool),
    ("remote.storage.enable", ValueRule::RemoteStorage),
    ("retention.bytes", ValueRule::Long { min: -1 }),
    ("retention.ms", ValueRule::Long { min: -1 }),
    // Kafka 3.x minimum (a record-batch overhead); Kafka 4 raised it to 1 MiB, but test
    // suites in the wild still create topics with tiny segments.
    (
        "segment.bytes",
        ValueRule::Int {
            min: 14,
            max: i32::MAX,
        },
    ),
    (
        "segment.index.bytes",
        ValueRule::Int {
            min: 4,
            max: i32::MAX,
        },
    ),
    ("segment.jitter.ms", ValueRule::Long { min: 0 }),
    ("segment.ms", ValueRule::Long { min: 1 }),
    ("unclean.leader.election.enable", ValueRule::Bool),
];

/// The names of every topic config Strom accepts, sorted.
pub fn known_topic_config_names() -> impl Iterator<Item = &'static str> {
    TOPIC_CONFIGS.iter().map(|(name, _)| *name)
}

fn rule_for(key: &str) -> Result<ValueRule, ConfigError> {
    TOPIC_CONFIGS
        .binary_search_by(|(name, _)| (*name).cmp(key))
        .map(|index| TOPIC_CONFIGS[index].1)
        .map_err(|_| ConfigError::UnknownKey {
            key: key.to_string(),
        })
}

/// Checks that `key` is a known topic config. Enough for a delete (`value = None`).
pub fn validate_topic_config_key(key: &str) -> Result<(), ConfigError> {
    rule_for(key).map(|_| ())
}

/// Checks a topic config key and the value it is set to. Values are trimmed first, as
/// Kafka's `ConfigDef` does.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), ConfigError> {
    let rule = rule_for(key)?;
    let trimmed = value.trim();
    let invalid = |expected: String| ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        expected,
    };
    match rule {
        ValueRule::Int { min, max } => {
            let parsed: i32 = trimmed.parse().map_err(|_| {
                invalid(format!(
                    "Not a number of type INT (accepted: an integer in [{min}, {max}])"
                ))
            })?;
            if parsed < min || parsed > max {
                return Err(invalid(range_text(min.into(), max.into())));
            }
        }
        ValueRule::Long { min } => {
            let parsed: i64 = trimmed.parse().map_err(|_| {
                invalid(format!(
                    "Not a number of type LONG (accepted: an integer at least {min})"
                ))
            })?;
            if parsed < min {
                return Err(invalid(format!("Value must be at least {min}")));
            }
        }
        ValueRule::Ratio => {
            let parsed: f64 = trimmed.parse().map_err(|_| {
                invalid("Not a number of type DOUBLE (accepted: [0.0, 1.0])".to_string())
            })?;
            if !(0.0..=1.0).contains(&parsed) {
                return Err(invalid("Value must be in [0.0, 1.0]".to_string()));
            }
        }
        ValueRule::Bool => {
            parse_bool(trimmed)
                .ok_or_else(|| invalid("Expected value to be either true or false".to_string()))?;
        }
        ValueRule::OneOf(allowed) => {
            if !allowed.contains(&trimmed) {
                return Err(invalid(format!(
                    "String must be one of: {}",
                    allowed.join(", ")
                )));
            }
        }
        ValueRule::CleanupPolicy => {
            let policies: Vec<&str> = trimmed.split(',').map(str::trim).collect();
            let valid = policies
                .iter()
                .all(|policy| *policy == "delete" || *policy == "compact");
            if !valid {
                return Err(invalid(
                    "Valid values are delete, compact, or compact,delete".to_string(),
                ));
            }
        }
        ValueRule::ThrottledReplicas => {
            if !is_throttled_replica_list(trimmed) {
                return Err(invalid(
                    "Must be the literal '*' or a list of replicas in the format \
                     [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                        .to_string(),
                ));
            }
        }
        ValueRule::RemoteStorage => {
            // Whether the broker has tiered storage on is the broker's check (strom-broker's
            // `admin::tiering_refusal`); the compacted-topic rule is in
            // `validate_topic_config_combination`.
            parse_bool(trimmed)
                .ok_or_else(|| invalid("Expected value to be either true or false".to_string()))?;
        }
        ValueRule::GzipLevel => {
            let parsed: i32 = trimmed.parse().map_err(|_| {
                invalid("Not a number of type INT (accepted: -1 or [1, 9])".to_string())
            })?;
            if parsed != -1 && !(1..=9).contains(&parsed) {
                return Err(invalid("Value must be -1 or in [1, 9]".to_string()));
            }
        }
    }
    Ok(())
}

/// Checks the rules between keys of a topic's configs as they would stand (each value
/// already valid alone): a compacted topic cannot be tiered, as Kafka refuses it.
pub fn validate_topic_config_combination<'a>(
    configs: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), ConfigError> {
    let mut remote = None;
    let mut compact = false;
    for (key, value) in configs {
        match key {
            "remote.storage.enable" => remote = parse_bool(value.trim()),
            "cleanup.policy" => compact = value.split(',').any(|policy| policy.trim() == "compact"),
            _ => {}
        }
    }
    if remote == Some(true) && compact {
        return Err(ConfigError::InvalidValue {
            key: "remote.storage.enable".to_string(),
            value: "true".to_string(),
            expected: "Remote log storage is not supported for topics with \
                       cleanup.policy=compact (tiered storage copies closed segments as they \
                       are; compaction would rewrite them)"
                .to_string(),
        });
    }
    Ok(())
}

fn range_text(min: i64, max: i64) -> String {
    if max == i64::from(i32::MAX) {
        format!("Value must be at least {min}")
    } else {
        format!("Value must be in [{min}, {max}]")
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn is_throttled_replica_list(text: &str) -> bool {
    if text.is_empty() || text == "*" {
        return true;
    }
    text.split(',').all(|entry| {
        let mut parts = entry.trim().split(':');
        let partition = parts.next().map(|p| p.trim().parse::<i32>().is_ok());
        let broker = parts.next().map(|b| b.trim().parse::<i32>().is_ok());
        partition == Some(true) && broker == Some(true) && parts.next().is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect_invalid(key: &str, value: &str) -> String {
        let error = validate_topic_config(key, value)
            .expect_err(&format!("{key}={value} should be refused"));
        assert_eq!(error.key(), key);
        let message = error.to_string();
        assert!(
            message.contains(key),
            "message must name the key: {message}"
        );
        message
    }

    #[test]
    fn given_config_table_when_searched_should_be_sorted_for_binary_search() {
        let names: Vec<&str> = known_topic_config_names().collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    #[test]
    fn given_valid_values_when_validating_should_accept() {
        for (key, value) in [
            ("cleanup.policy", "compact,delete"),
            ("cleanup.policy", "delete, compact"),
            ("cleanup.policy", "compact"),
            ("retention.ms", "-1"),
            ("retention.ms", " 604800000 "),
            ("retention.bytes", "-1"),
            ("segment.bytes", "1048576"),
            ("min.cleanable.dirty.ratio", "0.5"),
            ("unclean.leader.election.enable", "TRUE"),
            ("message.timestamp.type", "LogAppendTime"),
            ("compression.type", "zstd"),
            ("leader.replication.throttled.replicas", "0:1,1:1"),
            ("follower.replication.throttled.replicas", "*"),
            ("remote.storage.enable", "false"),
            ("local.retention.ms", "-2"),
            ("compression.gzip.level", "-1"),
        ] {
            assert_eq!(validate_topic_config(key, value), Ok(()), "{key}={value}");
        }
    }

    #[test]
    fn given_unknown_key_when_validating_should_refuse_naming_the_key() {
        let message = expect_invalid("retention.msec", "1000");
        assert_eq!(message, "Unknown topic config name: retention.msec");
    }

    #[test]
    fn given_out_of_range_numbers_when_validating_should_name_key_and_range() {
        let message = expect_invalid("retention.ms", "-2");
        assert!(message.contains("at least -1"), "{message}");
        let message = expect_invalid("segment.ms", "0");
        assert!(message.contains("at least 1"), "{message}");
        let message = expect_invalid("min.insync.replicas", "0");
        assert!(message.contains("at least 1"), "{message}");
        let message = expect_invalid("segment.bytes", "3000000000");
        assert!(message.contains("INT"), "{message}");
        let message = expect_invalid("min.cleanable.dirty.ratio", "1.5");
        assert!(message.contains("[0.0, 1.0]"), "{message}");
        expect_invalid("min.cleanable.dirty.ratio", "NaN");
        expect_invalid("compression.lz4.level", "18");
        expect_invalid("compression.gzip.level", "0");
    }

    #[test]
    fn given_non_numbers_and_bad_enums_when_validating_should_refuse() {
        expect_invalid("retention.ms", "forever");
        expect_invalid("retention.bytes", "");
        expect_invalid("preallocate", "yes");
        let message = expect_invalid("cleanup.policy", "compact,archive");
        assert!(message.contains("compact,delete"), "{message}");
        expect_invalid("cleanup.policy", "");
        let message = expect_invalid("compression.type", "brotli");
        assert!(
            message.contains("zstd") && message.contains("producer"),
            "{message}"
        );
        expect_invalid("message.timestamp.type", "createtime");
        expect_invalid("leader.replication.throttled.replicas", "0-1");
        expect_invalid("remote.storage.enable", "yes");
    }

    #[test]
    fn given_compacted_topic_when_remote_storage_enabled_should_refuse_naming_the_rule() {
        let refused = validate_topic_config_combination(
            [
                ("cleanup.policy", "delete, compact"),
                ("remote.storage.enable", "TRUE"),
            ]
            .into_iter(),
        )
        .expect_err("compacted topics cannot be tiered");
        assert_eq!(refused.key(), "remote.storage.enable");
        assert!(
            refused.to_string().contains("cleanup.policy=compact"),
            "{refused}"
        );
        for allowed in [
            [
                ("cleanup.policy", "delete"),
                ("remote.storage.enable", "true"),
            ],
            [
                ("cleanup.policy", "compact"),
                ("remote.storage.enable", "false"),
            ],
        ] {
            assert_eq!(
                validate_topic_config_combination(allowed.into_iter()),
                Ok(())
            );
        }
    }
}
