//! `__consumer_offsets` on disk: creating the topic, appending commit and group records, and
//! replaying the topic into the coordinator at load time.
//!
//! Appends go through `PartitionLog::append_as_leader` like a producer's, so they share the
//! log's validation, flush policy and crash recovery. The topic is created with
//! `cleanup.policy=compact` and `retention.ms=-1`: no commit is ever deleted by age (expiry
//! is the coordinator's job, with tombstones), and compaction, where the storage runs it,
//! keeps only the latest record per key. Replay applies every record in order, so it is
//! correct with or without compaction (last one wins).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use strom_controller::CreateTopic;
use strom_protocol::batch::{batch_size_bytes, BatchView};
use strom_protocol::record::{decode_batch, encode_batch, BatchBuilderOptions, RecordToEncode};
use tracing::warn;

use super::records::{self, GroupValue, OffsetValue, RecordKey};
use super::GroupCoordinator;
use crate::state::{now_ms, Broker};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Bytes read per step while replaying.
const REPLAY_READ_BYTES: u32 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot create {OFFSETS_TOPIC}: {0}")]
    Create(String),
    #[error("{OFFSETS_TOPIC} partition {0} is not hosted here")]
    NotHosted(i32),
    #[error("cannot encode a {OFFSETS_TOPIC} batch: {0}")]
    Encode(#[from] strom_protocol::record::RecordError),
    #[error("append to {OFFSETS_TOPIC} failed: {0}")]
    Append(#[from] strom_storage::AppendError),
    #[error("reading {OFFSETS_TOPIC}-{partition} failed: {message}")]
    Read { partition: i32, message: String },
    #[error("load task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

#[derive(Debug, Default, Clone, Copy)]
pub struct LoadStats {
    pub groups: usize,
    pub offsets: usize,
    pub records: usize,
}

/// Creates the topic if needed, then replays every partition into the coordinator.
pub async fn load(
    broker: &Arc<Broker>,
    coordinator: &GroupCoordinator,
) -> Result<LoadStats, PersistError> {
    if broker.image().topic(OFFSETS_TOPIC).is_none() {
        let topic = CreateTopic {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: Some(coordinator.offsets_topic_partitions),
            replication_factor: Some(coordinator.offsets_topic_replication_factor),
            assignments: Vec::new(),
            configs: vec![
                ("cleanup.policy".into(), Some("compact".into())),
                // Never delete commits by age: expiry is the coordinator's job
                // (offsets.retention.minutes), and compaction keeps the latest per key.
                ("retention.ms".into(), Some("-1".into())),
                (
                    "segment.bytes".into(),
                    Some(coordinator.offsets_topic_segment_bytes.to_string()),
                ),
            ],
        };
        let results = crate::admin::create_topics(broker, vec![topic], false)
            .await
            .map_err(|e| PersistError::Create(e.to_string()))?;
        if broker.image().topic(OFFSETS_TOPIC).is_none() {
            let reason = results
                .into_iter()
                .find_map(|r| r.error.map(|e| e.to_string()))
                .unwrap_or_else(|| "unknown reason".into());
            return Err(PersistError::Create(reason));
        }
    }
    let broker = broker.clone();
    let records = tokio::task::spawn_blocking(move || read_all(&broker)).await??;
    let mut state = coordinator.state.lock();
    let now = now_ms();
    let count = records.len();
    for (key, value) in records {
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
                state.replay_offset(now, &group, &topic, partition, value);
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

type RawRecord = (RecordKey, Option<Bytes>);

/// Every record of every partition of the offsets topic, partition by partition, in order.
fn read_all(broker: &Broker) -> Result<Vec<RawRecord>, PersistError> {
    let image = broker.image();
    let Some(topic) = image.topic(OFFSETS_TOPIC) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for partition_state in &topic.partitions {
        let index = partition_state.partition;
        let Some(partition) = broker.partitions.get(topic.topic_id, index) else {
            continue;
        };
        let read_error = |message: String| PersistError::Read {
            partition: index,
            message,
        };
        let mut offset = partition.log.lock().log_start_offset();
        loop {
            let (info, end) = {
                let log = partition.log.lock();
                let end = log.log_end_offset();
                if offset >= end {
                    break;
                }
                let info = log
                    .read(offset, REPLAY_READ_BYTES, end, true)
                    .map_err(|e| read_error(e.to_string()))?;
                (info, end)
            };
            let Some(range) = info.records else {
                break;
            };
            let bytes = range
                .read_to_bytes()
                .map_err(|e| read_error(e.to_string()))?;
            let mut at = 0;
            let mut advanced = false;
            while at < bytes.len() {
                let Some(size) = batch_size_bytes(&bytes[at..]).filter(|s| at + s <= bytes.len())
                else {
                    break;
                };
                let view = BatchView::parse(&bytes[at..at + size])
                    .map_err(|e| read_error(e.to_string()))?;
                at += size;
                if view.next_offset() <= offset {
                    continue;
                }
                advanced = true;
                let next = view.next_offset();
                if !view.is_control() {
                    let records = decode_batch(&view).map_err(|e| read_error(e.to_string()))?;
                    for record in records.into_iter().filter(|r| r.offset >= offset) {
                        let Some(key) = record.key else { continue };
                        match records::decode_key(&key) {
                            Ok(key) => out.push((key, record.value)),
                            Err(error) => {
                                warn!(partition = index, offset = record.offset, %error, "skipping undecodable key")
                            }
                        }
                    }
                }
                offset = next;
            }
            if !advanced || offset >= end {
                break;
            }
        }
    }
    Ok(out)
}

/// Appends one batch of (key, value) records to the group's partition.
pub fn append(
    broker: &Broker,
    group_id: &str,
    entries: Vec<(Bytes, Option<Bytes>)>,
) -> Result<(), PersistError> {
    if entries.is_empty() {
        return Ok(());
    }
    let image = broker.image();
    let topic = image
        .topic(OFFSETS_TOPIC)
        .ok_or(PersistError::NotHosted(-1))?;
    // The topic's real partition count, as Kafka does: it may differ from
    // offsets.topic.num.partitions if the topic was created some other way.
    let index = records::partition_for(group_id, topic.partition_count());
    let partition = broker
        .partitions
        .get(topic.topic_id, index)
        .ok_or(PersistError::NotHosted(index))?;
    let now = now_ms();
    let records: Vec<RecordToEncode> = entries
        .into_iter()
        .map(|(key, value)| RecordToEncode {
            key: Some(key),
            value,
            headers: Vec::new(),
            timestamp_ms: now,
        })
        .collect();
    let batch = encode_batch(&records, &BatchBuilderOptions::default())?;
    partition.log.lock().append_as_leader(
        BytesMut::from(&batch[..]),
        partition.leader_epoch,
        now,
    )?;
    broker.notify_appended();
    Ok(())
}

/// The `write_*` functions take the coordinator to make callers say whose lock they hold:
/// records must be written under it so that log order and memory order agree.
pub fn write_offsets(
    broker: &Broker,
    _coordinator: &GroupCoordinator,
    group_id: &str,
    commits: &[(String, i32, OffsetValue)],
) -> Result<(), PersistError> {
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
) -> Result<(), PersistError> {
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
) -> Result<(), PersistError> {
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
) -> Result<(), PersistError> {
    append(
        broker,
        group_id,
        vec![(super::consumer_records::encode_key(group_id), value)],
    )
}
