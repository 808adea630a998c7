//! Metadata changes requested by clients: decided by the controller, made durable in the
//! metadata log, then applied to this broker's image and partitions.
//!
//! The controller call and the image swap happen under one lock, so two concurrent changes
//! can never install their images out of order. The work is synchronous (an fsync of a small
//! entry) and runs on tokio's blocking pool.

use std::sync::Arc;

use strom_controller::{
    CreatePartitions, CreatePartitionsResult, CreateTopic, CreateTopicResult, DeleteTopicResult,
    MetadataQuorum, TopicDefaults, TopicRef,
};
use tracing::warn;

use crate::state::Broker;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("metadata log: {0}")]
    Metadata(#[from] strom_controller::MetadataError),
    #[error(transparent)]
    Partition(#[from] crate::partition::PartitionError),
    #[error("metadata task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Runs `change` on the metadata quorum, then installs the new image.
async fn change<T, F>(broker: &Arc<Broker>, change: F) -> Result<T, AdminError>
where
    T: Send + 'static,
    F: FnOnce(&mut MetadataQuorum, TopicDefaults) -> Result<T, strom_controller::MetadataError>
        + Send
        + 'static,
{
    let broker = broker.clone();
    tokio::task::spawn_blocking(move || {
        let defaults = TopicDefaults {
            num_partitions: broker.config.num_partitions,
            default_replication_factor: broker.config.default_replication_factor,
        };
        let mut quorum = broker.metadata.lock();
        let result = change(&mut quorum, defaults)?;
        broker.apply_image(quorum.image())?;
        Ok(result)
    })
    .await?
}

pub async fn create_topics(
    broker: &Arc<Broker>,
    topics: Vec<CreateTopic>,
    validate_only: bool,
) -> Result<Vec<CreateTopicResult>, AdminError> {
    change(broker, move |quorum, defaults| {
        quorum.create_topics(&topics, validate_only, &defaults)
    })
    .await
}

/// Metadata auto-creation: topics with the broker defaults. Failures (a race with another
/// creation, a full disk) are logged; the caller answers from the image either way.
pub async fn auto_create_topics(broker: &Arc<Broker>, names: Vec<String>) {
    let topics = names
        .into_iter()
        .map(|name| CreateTopic {
            name,
            ..CreateTopic::default()
        })
        .collect();
    match create_topics(broker, topics, false).await {
        Ok(results) => {
            for result in results {
                if let Some(error) = result.error {
                    warn!(topic = %result.name, %error, "auto-create failed");
                }
            }
        }
        Err(error) => warn!(%error, "auto-create failed"),
    }
}

pub async fn delete_topics(
    broker: &Arc<Broker>,
    topics: Vec<TopicRef>,
) -> Result<Vec<DeleteTopicResult>, AdminError> {
    change(broker, move |quorum, _| quorum.delete_topics(&topics)).await
}

pub async fn create_partitions(
    broker: &Arc<Broker>,
    topics: Vec<CreatePartitions>,
    validate_only: bool,
) -> Result<Vec<CreatePartitionsResult>, AdminError> {
    change(broker, move |quorum, _| {
        quorum.create_partitions(&topics, validate_only)
    })
    .await
}

/// Topic config changes (`None` removes a key back to its default), validated by the
/// controller, persisted as TopicConfig records, applied live to the open logs by the image
/// swap. The inner error is the per-topic answer (UNKNOWN_TOPIC_OR_PARTITION,
/// INVALID_CONFIG with a message naming the key, ...).
pub async fn alter_topic_configs(
    broker: &Arc<Broker>,
    topic: String,
    changes: Vec<(String, Option<String>)>,
    validate_only: bool,
) -> Result<Result<(), strom_controller::ControllerError>, AdminError> {
    change(broker, move |quorum, _| {
        quorum.alter_topic_configs(&topic, &changes, validate_only)
    })
    .await
}
