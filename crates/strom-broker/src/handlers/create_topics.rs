//! CreateTopics: validated by the controller, written to the metadata log, then opened.

use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_controller::{CreateTopic, PartitionAssignment};
use strom_protocol::ErrorCode;
use tracing::warn;

use crate::admin;
use crate::handlers::describe_configs::topic_config_entries;
use crate::state::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let topics: Vec<CreateTopic> = request
        .topics
        .iter()
        .map(|t| CreateTopic {
            name: t.name.0.to_string(),
            num_partitions: Some(t.num_partitions),
            replication_factor: Some(t.replication_factor),
            assignments: t
                .assignments
                .iter()
                .map(|a| PartitionAssignment {
                    partition: a.partition_index,
                    broker_ids: a.broker_ids.iter().map(|b| b.0).collect(),
                })
                .collect(),
            configs: t
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect(),
        })
        .collect();
    let results = match admin::create_topics(broker, topics, request.validate_only).await {
        Ok(results) => results,
        Err(error) => {
            warn!(%error, "create topics failed");
            let message = error.to_string();
            let topics = request
                .topics
                .into_iter()
                .map(|t| {
                    CreatableTopicResult::default()
                        .with_name(t.name)
                        .with_error_code(ErrorCode::KafkaStorageError.code())
                        .with_error_message(Some(StrBytes::from_string(message.clone())))
                        .with_num_partitions(-1)
                        .with_replication_factor(-1)
                })
                .collect();
            return CreateTopicsResponse::default().with_topics(topics);
        }
    };
    let image = broker.image();
    let topics = results
        .into_iter()
        .map(|result| {
            let mut response = CreatableTopicResult::default()
                .with_name(TopicName(StrBytes::from_string(result.name.clone())))
                .with_topic_id(result.topic_id)
                .with_num_partitions(result.num_partitions)
                .with_replication_factor(result.replication_factor);
            match &result.error {
                Some(error) => {
                    response = response
                        .with_error_code(error.code())
                        .with_error_message(Some(StrBytes::from_string(error.message())));
                }
                None if version >= 5 => {
                    let overrides = image
                        .topic(&result.name)
                        .map(|t| t.configs.clone())
                        .unwrap_or_default();
                    let configs =
                        topic_config_entries(broker.config(), &broker.image(), &overrides)
                            .into_iter()
                            .map(|entry| {
                                CreatableTopicConfigs::default()
                                    .with_name(StrBytes::from_string(entry.name.to_string()))
                                    .with_value(Some(StrBytes::from_string(entry.value)))
                                    .with_read_only(false)
                                    .with_config_source(entry.source)
                                    .with_is_sensitive(false)
                            })
                            .collect();
                    response = response.with_configs(Some(configs));
                }
                None => {}
            }
            response
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}
