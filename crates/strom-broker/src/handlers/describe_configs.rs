//! DescribeConfigs for topics and brokers, with defaults, sources and synonyms.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;

use crate::config::{
    topic_config_keys, topic_default, BrokerConfig, ConfigSource, ConfigType, BROKER_CONFIG_KEYS,
    TOPIC_CONFIG_SYNONYMS,
};
use crate::state::Broker;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// Kafka's DescribeConfigs `config_source` codes.
pub const SOURCE_TOPIC_CONFIG: i8 = 1;
pub const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
pub const SOURCE_DEFAULT_CONFIG: i8 = 5;

fn source_code(source: ConfigSource) -> i8 {
    match source {
        ConfigSource::Default => SOURCE_DEFAULT_CONFIG,
        ConfigSource::StaticBroker => SOURCE_STATIC_BROKER_CONFIG,
    }
}

/// One described config with the chain of places its value could come from, most specific
/// first (Kafka's synonyms).
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    pub source: i8,
    pub config_type: ConfigType,
    pub synonyms: Vec<(String, String, i8)>,
    pub doc: Option<&'static str>,
}

/// Every config of a topic: its own overrides, else the broker's defaults.
pub fn topic_config_entries(
    config: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    let mut names: Vec<String> = topic_config_keys().map(str::to_string).collect();
    for key in overrides.keys() {
        if !names.contains(key) {
            names.push(key.clone());
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let default = topic_default(config, &name);
            let mut synonyms = Vec::new();
            if let Some(value) = overrides.get(&name) {
                synonyms.push((name.clone(), value.clone(), SOURCE_TOPIC_CONFIG));
            }
            if let Some((value, source, _)) = &default {
                let broker_key = TOPIC_CONFIG_SYNONYMS
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, b)| b.to_string())
                    .unwrap_or_else(|| name.clone());
                synonyms.push((broker_key, value.clone(), source_code(*source)));
            }
            let config_type = default
                .as_ref()
                .map(|(_, _, t)| *t)
                .unwrap_or(ConfigType::String);
            let (value, source) = match overrides.get(&name) {
                Some(value) => (value.clone(), SOURCE_TOPIC_CONFIG),
                None => default
                    .map(|(v, s, _)| (v, source_code(s)))
                    .unwrap_or_default(),
            };
            ConfigEntry {
                name,
                value,
                source,
                config_type,
                synonyms,
                doc: None,
            }
        })
        .collect()
}

fn broker_config_entries(config: &BrokerConfig) -> Vec<ConfigEntry> {
    BROKER_CONFIG_KEYS
        .iter()
        .map(|key| {
            let (value, source) = config.describe(key.name).expect("key from the table");
            let mut synonyms = vec![(key.name.to_string(), value.clone(), source_code(source))];
            if source != ConfigSource::Default {
                synonyms.push((
                    key.name.to_string(),
                    key.default.to_string(),
                    SOURCE_DEFAULT_CONFIG,
                ));
            }
            ConfigEntry {
                name: key.name.to_string(),
                value,
                source: source_code(source),
                config_type: key.config_type,
                synonyms,
                doc: Some(key.doc),
            }
        })
        .collect()
}

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let image = broker.image();
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let mut result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let name = resource.resource_name.to_string();
            let (entries, read_only) = match resource.resource_type {
                RESOURCE_TOPIC => match image.topic(&name) {
                    Some(topic) => (topic_config_entries(&broker.config, &topic.configs), false),
                    None => {
                        return result
                            .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "topic `{name}` does not exist"
                            ))));
                    }
                },
                RESOURCE_BROKER => {
                    if !name.is_empty() && name != broker.config.node_id.to_string() {
                        return result
                            .with_error_code(ErrorCode::InvalidRequest.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "broker `{name}` is not this broker (node.id {})",
                                broker.config.node_id
                            ))));
                    }
                    (broker_config_entries(&broker.config), true)
                }
                other => {
                    return result
                        .with_error_code(ErrorCode::InvalidRequest.code())
                        .with_error_message(Some(StrBytes::from_string(format!(
                            "resource type {other} is not supported (2 = topic, 4 = broker)"
                        ))));
                }
            };
            let configs = entries
                .into_iter()
                .filter(|entry| {
                    resource
                        .configuration_keys
                        .as_ref()
                        .is_none_or(|keys| keys.iter().any(|k| k.as_str() == entry.name))
                })
                .map(|entry| {
                    // Passwords are never sent back, as in Kafka: null and sensitive.
                    let sensitive = entry.config_type == ConfigType::Password;
                    let mut synonyms = entry.synonyms;
                    if sensitive {
                        synonyms.clear();
                    }
                    let mut out = DescribeConfigsResourceResult::default()
                        .with_name(StrBytes::from_string(entry.name))
                        .with_value((!sensitive).then(|| StrBytes::from_string(entry.value)))
                        .with_read_only(read_only)
                        .with_config_source(entry.source)
                        .with_is_sensitive(sensitive);
                    if request.include_synonyms {
                        out = out.with_synonyms(
                            synonyms
                                .into_iter()
                                .map(|(name, value, source)| {
                                    DescribeConfigsSynonym::default()
                                        .with_name(StrBytes::from_string(name))
                                        .with_value(Some(StrBytes::from_string(value)))
                                        .with_source(source)
                                })
                                .collect(),
                        );
                    }
                    if version >= 3 {
                        out = out.with_config_type(entry.config_type.code());
                        if request.include_documentation {
                            out = out.with_documentation(entry.doc.map(StrBytes::from_static_str));
                        }
                    }
                    out
                })
                .collect();
            result = result.with_configs(configs);
            result
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
