//! DescribeConfigs for topics and brokers, with defaults, sources and synonyms. A broker's
//! values come from its dynamic configs, the dynamic cluster default, its static config and
//! the built-in defaults, in that order ([`crate::config::dynamic`]); the empty broker name
//! describes the dynamic cluster defaults alone, as in Kafka.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;

use strom_controller::MetadataImage;

use crate::config::dynamic::{self, Layer};
use crate::config::{
    topic_config_keys, topic_default, BrokerConfig, ConfigSource, ConfigType, BROKER_CONFIG_KEYS,
    TOPIC_CONFIG_SYNONYMS,
};
use crate::state::Broker;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// Kafka's DescribeConfigs `config_source` codes.
pub const SOURCE_TOPIC_CONFIG: i8 = 1;
pub const SOURCE_DYNAMIC_BROKER_CONFIG: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
pub const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
pub const SOURCE_DEFAULT_CONFIG: i8 = 5;

fn source_code(source: ConfigSource) -> i8 {
    match source {
        ConfigSource::Default => SOURCE_DEFAULT_CONFIG,
        ConfigSource::StaticBroker => SOURCE_STATIC_BROKER_CONFIG,
    }
}

fn layer_code(layer: &Layer) -> i8 {
    match layer {
        Layer::DynamicBroker => SOURCE_DYNAMIC_BROKER_CONFIG,
        Layer::DynamicDefault => SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG,
        Layer::Static => SOURCE_STATIC_BROKER_CONFIG,
        Layer::Default => SOURCE_DEFAULT_CONFIG,
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
    pub read_only: bool,
}

/// Every config of a topic: its own overrides, else the broker's defaults (dynamic
/// per-broker, dynamic cluster default, static, built-in: Kafka's synonym order).
pub fn topic_config_entries(
    config: &BrokerConfig,
    image: &MetadataImage,
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
            let mut synonyms = Vec::new();
            if let Some(value) = overrides.get(&name) {
                synonyms.push((name.clone(), value.clone(), SOURCE_TOPIC_CONFIG));
            }
            let default = topic_default(config, &name);
            match TOPIC_CONFIG_SYNONYMS.iter().find(|(k, _)| *k == name) {
                Some((_, broker_key)) => {
                    for (value, layer) in dynamic::layers(config, image, broker_key) {
                        synonyms.push((broker_key.to_string(), value, layer_code(&layer)));
                    }
                }
                None => {
                    if let Some((value, source, _)) = &default {
                        synonyms.push((name.clone(), value.clone(), source_code(*source)));
                    }
                }
            }
            let config_type = default
                .as_ref()
                .map(|(_, _, t)| *t)
                .unwrap_or(ConfigType::String);
            let (value, source) = synonyms
                .first()
                .map(|(_, value, source)| (value.clone(), *source))
                .unwrap_or_default();
            ConfigEntry {
                name,
                value,
                source,
                config_type,
                synonyms,
                doc: None,
                read_only: false,
            }
        })
        .collect()
}

/// One broker config with its layers; `None` when it has no value at any level.
fn broker_entry(
    config: &BrokerConfig,
    image: &MetadataImage,
    name: &str,
    levels: &[Layer],
) -> Option<ConfigEntry> {
    let synonyms: Vec<(String, String, i8)> = dynamic::layers(config, image, name)
        .into_iter()
        .filter(|(_, layer)| levels.contains(layer))
        .map(|(value, layer)| (name.to_string(), value, layer_code(&layer)))
        .collect();
    let (_, value, source) = synonyms.first()?.clone();
    let key = BROKER_CONFIG_KEYS.iter().find(|k| k.name == name);
    Some(ConfigEntry {
        name: name.to_string(),
        value,
        source,
        config_type: key
            .map(|k| k.config_type)
            .unwrap_or_else(|| dynamic::config_type(name)),
        synonyms,
        doc: key.map(|k| k.doc),
        read_only: !dynamic::is_dynamic(name),
    })
}

/// This broker's configs: every key Strom reads plus every dynamic config set for it or
/// as the cluster default.
fn broker_config_entries(config: &BrokerConfig, image: &MetadataImage) -> Vec<ConfigEntry> {
    let all = [
        Layer::DynamicBroker,
        Layer::DynamicDefault,
        Layer::Static,
        Layer::Default,
    ];
    let mut names: Vec<&str> = BROKER_CONFIG_KEYS.iter().map(|k| k.name).collect();
    for level in [Some(config.node_id), None] {
        for key in image.broker_configs(level).keys() {
            if !names.contains(&key.as_str()) {
                names.push(key);
            }
        }
    }
    names
        .into_iter()
        .filter_map(|name| broker_entry(config, image, name, &all))
        .collect()
}

/// The cluster-wide default level (resource name `""`): only the dynamic defaults, as Kafka
/// describes it.
fn broker_default_entries(config: &BrokerConfig, image: &MetadataImage) -> Vec<ConfigEntry> {
    image
        .broker_configs(None)
        .keys()
        .filter_map(|name| broker_entry(config, image, name, &[Layer::DynamicDefault]))
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
            let entries = match resource.resource_type {
                RESOURCE_TOPIC => match image.topic(&name) {
                    Some(topic) => topic_config_entries(broker.config(), &image, &topic.configs),
                    None => {
                        return result
                            .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "topic `{name}` does not exist"
                            ))));
                    }
                },
                RESOURCE_BROKER if name.is_empty() => {
                    broker_default_entries(broker.config(), &image)
                }
                RESOURCE_BROKER => {
                    if name != broker.config().node_id.to_string() {
                        return result
                            .with_error_code(ErrorCode::InvalidRequest.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "Unexpected broker id, expected {} or empty string, but received {name}",
                                broker.config().node_id
                            ))));
                    }
                    broker_config_entries(broker.config(), &image)
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
                    let sensitive = entry.config_type == ConfigType::Password
                        || dynamic::is_password(&entry.name);
                    let read_only = entry.read_only;
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
