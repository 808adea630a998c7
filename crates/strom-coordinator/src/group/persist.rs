//! `__consumer_offsets` records: replaying a partition into a shard's state at load time,
//! and appending commit and group records through a locked [`GroupShard`] (so they are
//! appended under the shard lock: log order = memory order). Appends do not wait for the
//! in-sync replicas: the caller awaits the returned [`Pending`] after the lock.

use bytes::Bytes;
use tracing::warn;

use super::coordinator::{Coordinator, PendingTxnOffset};
use super::records::{self, GroupValue, OffsetValue, RecordKey};
use super::runtime::GroupShard;
use crate::log::{LogError, Pending, ReplayItem, Writer};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Replays one partition's items into `state` (a fresh shard). Offset commits of
/// transactions take effect at their commit marker; those of a transaction without a
/// marker yet stay pending (the transaction coordinator ends it). Returns the item count.
pub fn replay(state: &mut Coordinator, items: Vec<ReplayItem>, now: i64) -> usize {
    let count = items.len();
    for item in items {
        let (partition, key, value, transactional) = match item {
            ReplayItem::Marker {
                producer_id,
                commit,
                ..
            } => {
                state.complete_txn_offsets(now, producer_id, commit, |_| true);
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
    count
}

fn offset_entries(
    group_id: &str,
    commits: &[(String, i32, OffsetValue)],
) -> Vec<(Bytes, Option<Bytes>)> {
    commits
        .iter()
        .map(|(topic, partition, value)| {
            (
                records::encode_offset_key(group_id, topic, *partition),
                Some(records::encode_offset_value(value)),
            )
        })
        .collect()
}

impl GroupShard<'_> {
    /// Appends one batch of (key, value) records to this shard's partition.
    fn append(
        &self,
        entries: Vec<(Bytes, Option<Bytes>)>,
        transactional: Option<Writer>,
    ) -> Result<Pending, LogError> {
        self.coordinator
            .log
            .append(OFFSETS_TOPIC, self.index, entries, transactional)
    }

    /// Appends committed offsets (OffsetCommit).
    pub fn write_offsets(
        &self,
        group_id: &str,
        commits: &[(String, i32, OffsetValue)],
    ) -> Result<Pending, LogError> {
        self.append(offset_entries(group_id, commits), None)
    }

    /// Appends the offsets of a transactional commit (TxnOffsetCommit) as part of the
    /// producer's transaction; they become visible with the commit marker.
    pub fn write_txn_offsets(
        &self,
        group_id: &str,
        writer: Writer,
        commits: &[(String, i32, OffsetValue)],
    ) -> Result<Pending, LogError> {
        self.append(offset_entries(group_id, commits), Some(writer))
    }

    pub fn write_offset_tombstones(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Pending, LogError> {
        let entries = partitions
            .iter()
            .map(|(topic, partition)| {
                (
                    records::encode_offset_key(group_id, topic, *partition),
                    None,
                )
            })
            .collect();
        self.append(entries, None)
    }

    pub fn write_group(
        &self,
        group_id: &str,
        value: Option<&GroupValue>,
    ) -> Result<Pending, LogError> {
        let mut entries = vec![(
            records::encode_group_key(group_id),
            value.map(records::encode_group_value),
        )];
        if value.is_none() {
            // A deleted group leaves no consumer-protocol snapshot behind either.
            entries.push((super::consumer_records::encode_key(group_id), None));
        }
        self.append(entries, None)
    }

    pub fn write_consumer_group(
        &self,
        group_id: &str,
        value: Option<Bytes>,
    ) -> Result<Pending, LogError> {
        self.append(
            vec![(super::consumer_records::encode_key(group_id), value)],
            None,
        )
    }
}
