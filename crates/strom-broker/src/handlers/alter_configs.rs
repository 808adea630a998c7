//! AlterConfigs: replaces a topic's whole set of config overrides (keys not named go back
//! to their defaults), as Kafka's legacy call does. Validation is the controller's (Kafka's
//! names, types and ranges; INVALID_CONFIG with a message naming the key); the change is
//! a TopicConfig record in the metadata log, applied live to the open logs when the new
//! image is installed. On a BROKER resource it replaces the dynamic configs of one level
//! (a node id, or `""` for the cluster default; see [`crate::config::dynamic`]). The
//! helpers here are shared with IncrementalAlterConfigs.

use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_controller::MetadataRecord;
use strom_protocol::ErrorCode;
use tracing::{info, warn};

use crate::admin;
use crate::config::dynamic;
use crate::state::Broker;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;

/// The answer for one resource: error code and message (`None` = success).
pub type ResourceAnswer = (i16, Option<String>);

pub fn ok() -> ResourceAnswer {
    (0, None)
}

pub fn fail(code: ErrorCode, message: String) -> ResourceAnswer {
    (code.code(), Some(message))
}

/// Applies topic config changes through the controller and maps the outcome.
pub async fn alter_topic(
    broker: &Arc<Broker>,
    topic: &str,
    changes: Vec<(String, Option<String>)>,
    validate_only: bool,
) -> ResourceAnswer {
    match admin::alter_topic_configs(broker, topic.to_string(), changes, validate_only).await {
        Ok(Ok(())) => ok(),
        Ok(Err(error)) => (error.code(), Some(error.to_string())),
        Err(error) => {
            warn!(%topic, %error, "altering topic configs failed");
            fail(ErrorCode::KafkaStorageError, error.to_string())
        }
    }
}

/// Dynamic broker config changes on one level: a node id, or `""` for the cluster-wide
/// default. `Some` sets a key, `None` removes it. Checked as Kafka does (read-only and
/// per-broker-only names are INVALID_REQUEST with Kafka's message; unknown names and bad
/// values INVALID_CONFIG), then stored as BrokerConfig records in the metadata log, which
/// every broker applies from its image.
pub async fn alter_broker(
    broker: &Arc<Broker>,
    resource_name: &str,
    changes: Vec<(String, Option<String>)>,
    validate_only: bool,
) -> ResourceAnswer {
    let target = match broker_level(broker, resource_name) {
        Ok(target) => target,
        Err(answer) => return answer,
    };
    let image = broker.image();
    let next = match dynamic::check_changes(
        broker.config(),
        image.broker_configs(target),
        target.is_some(),
        &changes,
    ) {
        Ok(next) => next,
        Err(refusal) => {
            let code = if refusal.invalid_request {
                ErrorCode::InvalidRequest
            } else {
                ErrorCode::InvalidConfig
            };
            return fail(code, refusal.message);
        }
    };
    if validate_only {
        return ok();
    }
    let current = image.broker_configs(target);
    let records: Vec<MetadataRecord> = changes
        .iter()
        .filter(|(key, _)| current.get(key) != next.get(key))
        .map(|(key, _)| MetadataRecord::BrokerConfig {
            broker: target,
            key: key.clone(),
            value: next.get(key).cloned(),
        })
        .collect();
    if records.is_empty() {
        return ok();
    }
    let keys: Vec<&str> = changes.iter().map(|(k, _)| k.as_str()).collect();
    info!(level = %resource_name, ?keys, "dynamic broker configs altered");
    match admin::write_records(broker, records, |quorum, records| {
        quorum.alter_broker_configs(records)
    })
    .await
    {
        Ok(()) => ok(),
        Err(message) => {
            warn!(%message, "cannot store dynamic broker configs");
            fail(ErrorCode::KafkaStorageError, message)
        }
    }
}

/// The level a BROKER resource name addresses: `None` for `""` (the cluster default), else
/// this broker's node id (Kafka refuses another broker's: clients send a broker's changes to
/// that broker; every broker sees them through the metadata log).
pub fn broker_level(broker: &Broker, resource_name: &str) -> Result<Option<i32>, ResourceAnswer> {
    if resource_name.is_empty() {
        return Ok(None);
    }
    let node = broker.config().node_id;
    match resource_name.parse::<i32>() {
        Ok(id) if id == node => Ok(Some(id)),
        Ok(_) => Err(fail(
            ErrorCode::InvalidRequest,
            format!("Unexpected broker id, expected {node}, but received {resource_name}"),
        )),
        Err(_) => Err(fail(
            ErrorCode::InvalidRequest,
            format!("Node id must be an integer, but it is: {resource_name}"),
        )),
    }
}

pub fn unsupported_resource(resource_type: i8) -> ResourceAnswer {
    let what = match resource_type {
        RESOURCE_BROKER_LOGGER => "broker loggers cannot be altered (use STROM_LOG at start-up)",
        _ => "unsupported resource type (2 = topic, 4 = broker)",
    };
    fail(
        ErrorCode::InvalidRequest,
        format!("resource type {resource_type}: {what}"),
    )
}

pub async fn handle(broker: &Arc<Broker>, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let image = broker.image();
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let (code, message) = match resource.resource_type {
            RESOURCE_TOPIC => {
                // Full replace: named keys are set, every other override is removed.
                let mut changes: Vec<(String, Option<String>)> = resource
                    .configs
                    .iter()
                    .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                    .collect();
                if let Some(topic) = image.topic(&name) {
                    for key in topic.configs.keys() {
                        if !changes.iter().any(|(k, _)| k == key) {
                            changes.push((key.clone(), None));
                        }
                    }
                }
                alter_topic(broker, &name, changes, request.validate_only).await
            }
            RESOURCE_BROKER => {
                // Full replace of the level: named keys are set, every other stored key of
                // that level is removed (a null value removes the key too).
                let mut changes: Vec<(String, Option<String>)> = resource
                    .configs
                    .iter()
                    .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                    .collect();
                if let Ok(level) = broker_level(broker, &name) {
                    for key in image.broker_configs(level).keys() {
                        if !changes.iter().any(|(k, _)| k == key) {
                            changes.push((key.clone(), None));
                        }
                    }
                }
                alter_broker(broker, &name, changes, request.validate_only).await
            }
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
    AlterConfigsResponse::default().with_responses(responses)
}
