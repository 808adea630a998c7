//! `__consumer_offsets` on disk: creating the topic, appending commit and group records, and
//! replaying the topic into the coordinator at load time, on the shared machinery of
//! [`crate::internal_topics`] (compacted, never deleted by age, replayed in order).

use std::sync::Arc;

use bytes::Bytes;
use tracing::warn;

use super::coordinator::PendingTxnOffset;
use super::records::{self, GroupValue, OffsetValue, RecordKey};
use super::GroupCoordinator;
use crate::internal_topics::{self, InternalTopic, Pending, ReplayItem};
use crate::state::{now_ms, Broker};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

pub type PersistError = internal_topics::InternalTopicError;

#[derive(Debug, Default, Clone, Copy)]
pub struct LoadStats {
    pub groups: usize,
    pub offsets: usize,
    pub records: usize,
}

/// The topic as the coordinator creates it on first use.
pub fn offsets_topic(coordinator: &GroupCoordinator) -> InternalTopic {
    InternalTopic {
        name: OFFSETS_TOPIC,
        partitions: coordinator.offsets_topic_partitions,
        replication_factor: coordinator.offsets_topic_replication_factor,
        segment_bytes: coordinator.offsets_topic_segment_bytes,
    }
}

/// Replays partition `index` into the coordinator, replacing whatever it held for the
/// groups of that partition (a new leader of it starts from the log). Offset commits of
/// transactions take effect at their commit marker; those of a transaction without a
/// marker yet stay pending (the transaction coordinator ends it).
pub async fn load_partition(
    broker: &Arc<Broker>,
    coordinator: &GroupCoordinator,
    index: i32,
) -> Result<LoadStats, PersistError> {
    let reader = broker.clone();
    let items = tokio::task::spawn_blocking(move || {
        internal_topics::read_partition(&reader, OFFSETS_TOPIC, index)
    })
    .await??;
    let partition_count = broker
        .image()
        .topic(OFFSETS_TOPIC)
        .map_or(1, |t| t.partition_count());
    let mut state = coordinator.state.lock();
    state.forget_groups(|group| records::partition_for(group, partition_count) == index);
    let now = now_ms();
    let count = items.len();
    for item in items {
        let (partition, key, value, transactional) = match item {
            ReplayItem::Marker {
                partition,
                producer_id,
                commit,
            } => {
                state.complete_txn_offsets(now, producer_id, commit, |group| {
                    records::partition_for(group, partition_count) == partition
                });
                continue;
            }
            ReplayItem::Record {
                partition,
                key,
                value,
                transactional,
            } => (partition, key, value, transactional),
        };
        let key = match records::decode_key(&key) {
            Ok(key) => key,
            Err(error) => {
                warn!(partition, %error, "skipping undecodable key");
                continue;
            }
        };
        match key {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                let value = match value.as_deref().map(records::decode_offset_value) {
                    None => None,
                    Some(Ok(value)) => Some(value),
                    Some(Err(error)) => {
                        warn!(%group, %topic, partition, %error, "skipping undecodable offset record");
                        continue;
                    }
                };
                match (transactional, value) {
                    (Some(writer), Some(value)) => state.add_pending_txn_offsets(
                        writer.producer_id,
                        vec![PendingTxnOffset {
                            group_id: group,
                            topic,
                            partition,
                            value,
                        }],
                    ),
                    (_, value) => state.replay_offset(now, &group, &topic, partition, value),
                }
            }
            RecordKey::Group { group } => {
                let value = match value.as_deref().map(records::decode_group_value) {
                    None => None,
                    Some(Ok(value)) => Some(value),
                    Some(Err(error)) => {
                        warn!(%group, %error, "skipping undecodable group record");
                        continue;
                    }
                };
                state.replay_group(now, &group, value);
            }
            RecordKey::ConsumerGroup { group } => {
                state.replay_consumer_group(now, &group, value.as_deref());
            }
            RecordKey::Other(_) => {}
        }
    }
    Ok(LoadStats {
        groups: state.groups.len(),
        offsets: state.offsets.values().map(|o| o.len()).sum(),
        records: count,
    })
}

/// The partition of `__consumer_offsets` that holds `group_id`'s records, by the topic's
/// real partition count (it may differ from offsets.topic.num.partitions if the topic was
/// created some other way).
pub fn partition_of(broker: &Broker, group_id: &str) -> Result<i32, PersistError> {
    let image = broker.image();
    let topic = image.topic(OFFSETS_TOPIC).ok_or(PersistError::NotHosted {
        topic: OFFSETS_TOPIC,
        partition: -1,
    })?;
    Ok(records::partition_for(group_id, topic.partition_count()))
}

/// Appends one batch of (key, value) records to the group's partition.
pub fn append(
    broker: &Broker,
    group_id: &str,
    entries: Vec<(Bytes, Option<Bytes>)>,
) -> Result<Pending, PersistError> {
    if entries.is_empty() {
        return Ok(Pending::none());
    }
    let index = partition_of(broker, group_id)?;
    internal_topics::append(broker, OFFSETS_TOPIC, index, entries, None)
}

/// Appends the offsets of a transactional commit (TxnOffsetCommit) as part of the
/// producer's transaction; they become visible with the commit marker.
pub fn write_txn_offsets(
    broker: &Broker,
    _coordinator: &GroupCoordinator,
    group_id: &str,
    writer: internal_topics::Writer,
    commits: &[(String, i32, OffsetValue)],
) -> Result<Pending, PersistError> {
    let entries = commits
        .iter()
        .map(|(topic, partition, value)| {
            (
                records::encode_offset_key(group_id, topic, *partition),
                Some(records::encode_offset_value(value)),
            )
        })
        .collect();
    let index = partition_of(broker, group_id)?;
    internal_topics::append(broker, OFFSETS_TOPIC, index, entries, Some(writer))
}

/// The `write_*` functions take the coordinator to make callers say whose lock they hold:
/// records must be appended under it so that log order and memory order agree. They do
/// not wait for the in-sync replicas: the caller awaits the [`Pending`] after the lock.
pub fn write_offsets(
    broker: &Broker,
    _coordinator: &GroupCoordinator,
    group_id: &str,
    commits: &[(String, i32, OffsetValue)],
) -> Result<Pending, PersistError> {
    let entries = commits
        .iter()
        .map(|(topic, partition, value)| {
            (
                records::encode_offset_key(group_id, topic, *partition),
                Some(records::encode_offset_value(value)),
            )
        })
        .collect();
    append(broker, group_id, entries)
}

pub fn write_offset_tombstones(
    broker: &Broker,
    _coordinator: &GroupCoordinator,
    group_id: &str,
    partitions: &[(String, i32)],
) -> Result<Pending, PersistError> {
    let entries = partitions
        .iter()
        .map(|(topic, partition)| {
            (
                records::encode_offset_key(group_id, topic, *partition),
                None,
            )
        })
        .collect();
    append(broker, group_id, entries)
}

pub fn write_group(
    broker: &Broker,
    _coordinator: &GroupCoordinator,
    group_id: &str,
    value: Option<&GroupValue>,
) -> Result<Pending, PersistError> {
    let mut entries = vec![(
        records::encode_group_key(group_id),
        value.map(records::encode_group_value),
    )];
    if value.is_none() {
        // A deleted group leaves no consumer-protocol snapshot behind either.
        entries.push((super::consumer_records::encode_key(group_id), None));
    }
    append(broker, group_id, entries)
}

pub fn write_consumer_group(
    broker: &Broker,
    _coordinator: &GroupCoordinator,
    group_id: &str,
    value: Option<Bytes>,
) -> Result<Pending, PersistError> {
    append(
        broker,
        group_id,
        vec![(super::consumer_records::encode_key(group_id), value)],
    )
}
