//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on single keys, leaving other
//! overrides alone. APPEND and SUBTRACT apply only to list configs (`cleanup.policy`, the
//! throttled-replica lists) and start from the current value, the default included, as
//! Kafka does. All changes of one resource are decided together: one bad change fails the
//! resource and changes nothing.

use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;

use super::alter_configs::{
    alter_broker, alter_topic, fail, unsupported_resource, ResourceAnswer, RESOURCE_BROKER,
    RESOURCE_TOPIC,
};
use crate::config::{dynamic, topic_default, ConfigType};
use crate::state::Broker;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Topic configs whose values are comma-separated lists.
const LIST_TOPIC_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
];

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// Turns the requested operations into set/remove changes, or the resource's error.
fn topic_changes(
    broker: &Broker,
    current: &std::collections::BTreeMap<String, String>,
    configs: &[(String, i8, Option<String>)],
) -> Result<Vec<(String, Option<String>)>, ResourceAnswer> {
    let mut changes: Vec<(String, Option<String>)> = Vec::with_capacity(configs.len());
    for (key, operation, value) in configs {
        let change = match *operation {
            OP_SET => Some(value.clone().unwrap_or_default()),
            OP_DELETE => None,
            OP_APPEND | OP_SUBTRACT => {
                let is_list = LIST_TOPIC_CONFIGS.contains(&key.as_str())
                    || topic_default(broker.config(), key)
                        .is_some_and(|(_, _, kind)| kind == ConfigType::List);
                if !is_list {
                    let verb = if *operation == OP_APPEND { "append" } else { "subtract" };
                    return Err(fail(
                        ErrorCode::InvalidConfig,
                        format!("Config value {verb} is not allowed for config key: {key}"),
                    ));
                }
                let base = current
                    .get(key)
                    .cloned()
                    .or_else(|| topic_default(broker.config(), key).map(|(v, _, _)| v))
                    .unwrap_or_default();
                let mut items = split_list(&base);
                let given = split_list(value.as_deref().unwrap_or(""));
                if *operation == OP_APPEND {
                    for item in given {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    }
                } else {
                    items.retain(|item| !given.contains(item));
                }
                Some(items.join(","))
            }
            other => {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    format!("unknown config operation {other} for {key} (0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT)"),
                ))
            }
        };
        changes.push((key.clone(), change));
    }
    Ok(changes)
}

/// Turns operations on a BROKER resource into set/remove changes of its level. APPEND and
/// SUBTRACT start from the value the broker has now (dynamic, static or default).
fn broker_changes(
    broker: &Broker,
    image: &strom_controller::MetadataImage,
    configs: &[(String, i8, Option<String>)],
) -> Result<Vec<(String, Option<String>)>, ResourceAnswer> {
    let mut changes = Vec::with_capacity(configs.len());
    for (key, operation, value) in configs {
        let change = match *operation {
            OP_SET => Some(value.clone().unwrap_or_default()),
            OP_DELETE => None,
            OP_APPEND | OP_SUBTRACT => {
                if dynamic::config_type(key) != ConfigType::List {
                    let verb = if *operation == OP_APPEND { "append" } else { "subtract" };
                    return Err(fail(
                        ErrorCode::InvalidConfig,
                        format!("Config value {verb} is not allowed for config key: {key}"),
                    ));
                }
                let base = dynamic::layers(broker.config(), image, key)
                    .into_iter()
                    .next()
                    .map(|(value, _)| value)
                    .unwrap_or_default();
                let mut items = split_list(&base);
                let given = split_list(value.as_deref().unwrap_or(""));
                if *operation == OP_APPEND {
                    for item in given {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    }
                } else {
                    items.retain(|item| !given.contains(item));
                }
                Some(items.join(","))
            }
            other => {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    format!("unknown config operation {other} for {key} (0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT)"),
                ))
            }
        };
        changes.push((key.clone(), change));
    }
    Ok(changes)
}

pub async fn handle(
    broker: &Arc<Broker>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let image = broker.image();
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let configs: Vec<(String, i8, Option<String>)> = resource
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.config_operation,
                    c.value.as_ref().map(|v| v.to_string()),
                )
            })
            .collect();
        let (code, message) = match resource.resource_type {
            RESOURCE_TOPIC => {
                let current = image
                    .topic(&name)
                    .map(|t| t.configs.clone())
                    .unwrap_or_default();
                match topic_changes(broker, &current, &configs) {
                    Ok(changes) => alter_topic(broker, &name, changes, request.validate_only).await,
                    Err(answer) => answer,
                }
            }
            RESOURCE_BROKER => match broker_changes(broker, &image, &configs) {
                // Deleting a key that is not set succeeds, as in Kafka. Tools rely on it:
                // kafka-reassign-partitions --verify deletes the replication throttle rates
                // of every broker whether or not it set them.
                Ok(changes) => alter_broker(broker, &name, changes, request.validate_only).await,
                Err(answer) => answer,
            },
            other => unsupported_resource(other),
        };
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string))
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
