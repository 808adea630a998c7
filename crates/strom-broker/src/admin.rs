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

use crate::metadata::Metadata;
use crate::state::Broker;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("metadata log: {0}")]
    Metadata(#[from] strom_controller::MetadataError),
    #[error("controller quorum: {0}")]
    Raft(#[from] strom_controller::RaftQuorumError),
    #[error(transparent)]
    Partition(#[from] crate::partition::PartitionError),
    #[error("metadata task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

fn defaults(broker: &Broker) -> TopicDefaults {
    TopicDefaults {
        num_partitions: broker.config.num_partitions,
        default_replication_factor: broker.config.default_replication_factor,
    }
}

/// Runs `change` on the local metadata quorum, then installs the new image.
async fn change<T, F>(broker: &Arc<Broker>, change: F) -> Result<T, AdminError>
where
    T: Send + 'static,
    F: FnOnce(&mut MetadataQuorum, TopicDefaults) -> Result<T, strom_controller::MetadataError>
        + Send
        + 'static,
{
    let broker = broker.clone();
    tokio::task::spawn_blocking(move || {
        let Metadata::Local(quorum) = &broker.metadata else {
            unreachable!("local changes run on a local metadata log");
        };
        let mut quorum = quorum.lock();
        let result = change(&mut quorum, defaults(&broker))?;
        broker.apply_image(quorum.image())?;
        Ok(result)
    })
    .await?
}

/// Writes records decided by the caller (ACLs, SCRAM credentials, quotas) through the
/// metadata log and installs the resulting image. The error is text for responses.
pub async fn write_records(
    broker: &Arc<Broker>,
    records: Vec<strom_controller::MetadataRecord>,
    write: fn(
        &mut MetadataQuorum,
        Vec<strom_controller::MetadataRecord>,
    ) -> Result<(), strom_controller::MetadataError>,
) -> Result<(), String> {
    if records.is_empty() {
        return Ok(());
    }
    match &broker.metadata {
        Metadata::Local(_) => change(broker, move |quorum, _| write(quorum, records))
            .await
            .map_err(|e| e.to_string()),
        Metadata::Raft(raft) => {
            let index = raft.propose(records).await.map_err(|e| e.to_string())?;
            let _ = index;
            crate::metadata::wait_for_local_image(broker, |_| true)
                .await
                .map_err(|e| e.to_string())
        }
    }
}

pub async fn create_topics(
    broker: &Arc<Broker>,
    topics: Vec<CreateTopic>,
    validate_only: bool,
) -> Result<Vec<CreateTopicResult>, AdminError> {
    match &broker.metadata {
        Metadata::Local(_) => {
            change(broker, move |quorum, defaults| {
                quorum.create_topics(&topics, validate_only, &defaults)
            })
            .await
        }
        Metadata::Raft(raft) => {
            let results = raft
                .create_topics(&topics, validate_only, &defaults(broker))
                .await?;
            let created: Vec<String> = results
                .iter()
                .filter(|r| r.error.is_none() && !validate_only)
                .map(|r| r.name.clone())
                .collect();
            crate::metadata::wait_for_local_image(broker, |image| {
                created.iter().all(|name| image.topic(name).is_some())
            })
            .await?;
            Ok(results)
        }
    }
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
    match &broker.metadata {
        Metadata::Local(_) => change(broker, move |quorum, _| quorum.delete_topics(&topics)).await,
        Metadata::Raft(raft) => {
            let results = raft.delete_topics(&topics).await?;
            let deleted: Vec<String> = results
                .iter()
                .filter(|r| r.error.is_none())
                .filter_map(|r| r.name.clone())
                .collect();
            crate::metadata::wait_for_local_image(broker, |image| {
                deleted.iter().all(|name| image.topic(name).is_none())
            })
            .await?;
            Ok(results)
        }
    }
}

pub async fn create_partitions(
    broker: &Arc<Broker>,
    topics: Vec<CreatePartitions>,
    validate_only: bool,
) -> Result<Vec<CreatePartitionsResult>, AdminError> {
    match &broker.metadata {
        Metadata::Local(_) => {
            change(broker, move |quorum, _| {
                quorum.create_partitions(&topics, validate_only)
            })
            .await
        }
        Metadata::Raft(raft) => {
            let results = raft.create_partitions(&topics, validate_only).await?;
            crate::metadata::wait_for_local_image(broker, |_| true).await?;
            Ok(results)
        }
    }
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
    match &broker.metadata {
        Metadata::Local(_) => {
            change(broker, move |quorum, _| {
                quorum.alter_topic_configs(&topic, &changes, validate_only)
            })
            .await
        }
        Metadata::Raft(raft) => {
            let result = raft
                .alter_topic_configs(&topic, &changes, validate_only)
                .await?;
            crate::metadata::wait_for_local_image(broker, |_| true).await?;
            Ok(result)
        }
    }
}
