//! DeleteTopics: by name (v0–5) or by name or id (v6+).

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_controller::TopicRef;
use strom_protocol::ErrorCode;
use tracing::warn;

use crate::admin;
use crate::state::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let refs: Vec<TopicRef> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| match &t.name {
                Some(name) => TopicRef::Name(name.0.to_string()),
                None => TopicRef::Id(t.topic_id),
            })
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| TopicRef::Name(n.0.to_string()))
            .collect()
    };
    let message = |text: String| {
        if version >= 5 {
            Some(StrBytes::from_string(text))
        } else {
            None
        }
    };
    let fail_all = |code: ErrorCode, text: String| {
        let responses = refs
            .iter()
            .map(|r| {
                let (name, id) = match r {
                    TopicRef::Name(n) => (
                        Some(TopicName(StrBytes::from_string(n.clone()))),
                        uuid::Uuid::nil(),
                    ),
                    TopicRef::Id(id) => (None, *id),
                };
                DeletableTopicResult::default()
                    .with_name(name)
                    .with_topic_id(id)
                    .with_error_code(code.code())
                    .with_error_message(message(text.clone()))
            })
            .collect();
        DeleteTopicsResponse::default().with_responses(responses)
    };
    if !broker.config().delete_topic_enable {
        return fail_all(
            ErrorCode::TopicDeletionDisabled,
            "delete.topic.enable is false on this broker".into(),
        );
    }
    let results = match admin::delete_topics(broker, refs.clone()).await {
        Ok(results) => results,
        Err(error) => {
            warn!(%error, "delete topics failed");
            return fail_all(ErrorCode::KafkaStorageError, error.to_string());
        }
    };
    let responses = results
        .into_iter()
        .map(|result| {
            let mut response = DeletableTopicResult::default()
                .with_name(result.name.map(|n| TopicName(StrBytes::from_string(n))))
                .with_topic_id(result.topic_id);
            if let Some(error) = result.error {
                response = response
                    .with_error_code(error.code())
                    .with_error_message(message(error.message()));
            }
            response
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
