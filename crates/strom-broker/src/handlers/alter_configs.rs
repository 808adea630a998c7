//! AlterConfigs: replaces a topic's whole set of config overrides (keys not named go back
//! to their defaults), as Kafka's legacy call does. Validation is the controller's (Kafka's
//! names, types and ranges; INVALID_CONFIG with a message naming the key); the change is
//! a TopicConfig record in the metadata log, applied live to the open logs when the new
//! image is installed. The helpers here are shared with IncrementalAlterConfigs.

use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;
use tracing::warn;

use crate::admin;
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

/// Strom has no dynamic broker configs yet: every broker key is read-only (Kafka answers
/// INVALID_REQUEST for keys that cannot be updated dynamically); unknown keys are
/// INVALID_CONFIG. `keys` are the keys the request names.
pub fn alter_broker(broker: &Broker, resource_name: &str, keys: &[String]) -> ResourceAnswer {
    let node = broker.config.node_id.to_string();
    if !resource_name.is_empty() && resource_name != node {
        return fail(
            ErrorCode::InvalidRequest,
            format!("broker `{resource_name}` is not this broker (node.id {node})"),
        );
    }
    if let Some(unknown) = keys.iter().find(|k| broker.config.describe(k).is_none()) {
        return fail(
            ErrorCode::InvalidConfig,
            format!("Unknown broker config name: {unknown}"),
        );
    }
    if keys.is_empty() {
        return ok();
    }
    fail(
        ErrorCode::InvalidRequest,
        format!(
            "Cannot update these configs dynamically: {}. Strom has no dynamic broker configs yet; \
             set them in the config file (or --set) and restart the broker",
            keys.join(", ")
        ),
    )
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
                let keys: Vec<String> = resource
                    .configs
                    .iter()
                    .map(|c| c.name.to_string())
                    .collect();
                alter_broker(broker, &name, &keys)
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
