//! Metadata changes requested by clients: decided by the controller, made durable in the
//! metadata log, then applied to this broker's image and partitions.
//!
//! The controller call and the image swap happen under one lock, so two concurrent changes
//! can never install their images out of order. The work is synchronous (an fsync of a small
//! entry) and runs on tokio's blocking pool.

use std::sync::Arc;

use strom_controller::{
    ConfigError, ControllerError, CreatePartitions, CreatePartitionsResult, CreateTopic,
    CreateTopicResult, DeleteTopicResult, MetadataQuorum, TopicDefaults, TopicRef,
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
        num_partitions: broker.config().num_partitions,
        default_replication_factor: broker.config().default_replication_factor,
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
        let Metadata::Local(quorum) = broker.metadata() else {
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
    match broker.metadata() {
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

/// `remote.storage.enable=true` among `configs` while this broker has tiered storage off:
/// refused as Kafka refuses it (INVALID_CONFIG), since nothing would tier the topic and its
/// local retention would silently become its only retention.
fn tiering_refusal<'a>(
    broker: &Broker,
    mut configs: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> Option<ControllerError> {
    if broker.config().remote_log.system_enable {
        return None;
    }
    let enables = configs.any(|(key, value)| {
        key == "remote.storage.enable"
            && value.is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
    });
    enables.then(|| {
        ControllerError::InvalidConfig(ConfigError::InvalidValue {
            key: "remote.storage.enable".to_string(),
            value: "true".to_string(),
            expected: "Tiered Storage functionality is disabled in the broker: set \
                       remote.log.storage.system.enable=true (with an S3 bucket) on every \
                       broker to tier topics"
                .to_string(),
        })
    })
}

/// CreateTopics: each topic decided by the controller, except one asking for tiered storage
/// on a broker without it, refused here.
pub async fn create_topics(
    broker: &Arc<Broker>,
    topics: Vec<CreateTopic>,
    validate_only: bool,
) -> Result<Vec<CreateTopicResult>, AdminError> {
    let refusals: Vec<Option<ControllerError>> = topics
        .iter()
        .map(|topic| {
            tiering_refusal(
                broker,
                topic
                    .configs
                    .iter()
                    .map(|(key, value)| (key.as_str(), value.as_deref())),
            )
        })
        .collect();
    if refusals.iter().all(Option::is_none) {
        return create_topics_decided(broker, topics, validate_only).await;
    }
    let mut names = Vec::with_capacity(topics.len());
    let mut accepted = Vec::new();
    for (topic, refusal) in topics.into_iter().zip(&refusals) {
        names.push(topic.name.clone());
        if refusal.is_none() {
            accepted.push(topic);
        }
    }
    let mut decided = if accepted.is_empty() {
        Vec::new()
    } else {
        create_topics_decided(broker, accepted, validate_only).await?
    }
    .into_iter();
    Ok(names
        .into_iter()
        .zip(refusals)
        .filter_map(|(name, refusal)| match refusal {
            Some(error) => Some(CreateTopicResult {
                name,
                topic_id: uuid::Uuid::nil(),
                num_partitions: -1,
                replication_factor: -1,
                error: Some(error),
            }),
            None => decided.next(),
        })
        .collect())
}

async fn create_topics_decided(
    broker: &Arc<Broker>,
    topics: Vec<CreateTopic>,
    validate_only: bool,
) -> Result<Vec<CreateTopicResult>, AdminError> {
    match broker.metadata() {
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
    match broker.metadata() {
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
    match broker.metadata() {
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
    let set = changes
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_deref()));
    if let Some(refusal) = tiering_refusal(broker, set) {
        return Ok(Err(refusal));
    }
    match broker.metadata() {
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
