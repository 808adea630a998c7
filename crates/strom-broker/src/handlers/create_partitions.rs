//! CreatePartitions: grow a topic's partition count.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_controller::CreatePartitions;
use strom_protocol::ErrorCode;
use tracing::warn;

use crate::admin;
use crate::state::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let topics: Vec<CreatePartitions> = request
        .topics
        .iter()
        .map(|t| CreatePartitions {
            name: t.name.0.to_string(),
            count: t.count,
            assignments: t.assignments.as_ref().map(|a| {
                a.iter()
                    .map(|p| p.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            }),
        })
        .collect();
    let results = match admin::create_partitions(broker, topics, request.validate_only).await {
        Ok(results) => results,
        Err(error) => {
            warn!(%error, "create partitions failed");
            let results = request
                .topics
                .into_iter()
                .map(|t| {
                    CreatePartitionsTopicResult::default()
                        .with_name(t.name)
                        .with_error_code(ErrorCode::KafkaStorageError.code())
                        .with_error_message(Some(StrBytes::from_string(error.to_string())))
                })
                .collect();
            return CreatePartitionsResponse::default().with_results(results);
        }
    };
    let results = results
        .into_iter()
        .map(|result| {
            let mut response = CreatePartitionsTopicResult::default()
                .with_name(TopicName(StrBytes::from_string(result.name)));
            if let Some(error) = result.error {
                response = response
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(error.message())));
            }
            response
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
