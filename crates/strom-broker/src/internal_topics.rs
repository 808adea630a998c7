//! The broker's own compacted topics (`__consumer_offsets`, `__transaction_state`):
//! creating them, appending key/value records to them, and reading them back for replay.
//!
//! Appends go through `PartitionLog` like a producer's, so they share the log's
//! validation, flush policy and crash recovery. The topics are created with
//! `cleanup.policy=compact` and `retention.ms=-1`: no record is deleted by age (expiry is
//! the coordinators' job, with tombstones), and compaction keeps the latest record per key.
//! Replay applies every record in order, so it is correct with or without compaction.

use std::sync::{Arc, Weak};

use bytes::{Bytes, BytesMut};
use strom_controller::CreateTopic;
use strom_coordinator::log::{
    self as coordinator_log, BoxFuture, InternalLog, LogError, TxnMarker,
};
use strom_protocol::batch::{batch_size_bytes, BatchView};
use strom_protocol::record::{decode_batch, encode_batch, BatchBuilderOptions, RecordToEncode};
use strom_protocol::ErrorCode;
use strom_storage::AppendError;

use crate::state::{now_ms, Broker};

/// Bytes read per step while replaying.
const REPLAY_READ_BYTES: u32 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum InternalTopicError {
    #[error("cannot create {topic}: {reason}")]
    Create { topic: &'static str, reason: String },
    #[error("{topic} partition {partition} is not hosted here")]
    NotHosted { topic: &'static str, partition: i32 },
    #[error("this broker does not lead {topic} partition {partition}")]
    NotLeader { topic: &'static str, partition: i32 },
    #[error("{topic} partition {partition}: {reason}")]
    NotReplicated {
        topic: &'static str,
        partition: i32,
        reason: &'static str,
    },
    #[error("cannot encode a batch: {0}")]
    Encode(#[from] strom_protocol::record::RecordError),
    #[error("append failed: {0}")]
    Append(#[from] strom_storage::AppendError),
    #[error("reading {topic}-{partition} failed: {message}")]
    Read {
        topic: &'static str,
        partition: i32,
        message: String,
    },
    #[error("load task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

pub use strom_coordinator::log::{InternalTopic, ReplayItem, Writer};

/// The configured replication factor (`offsets.topic.replication.factor`,
/// `transaction.state.log.replication.factor`) when set; otherwise 1 on a single node and,
/// on a cluster, as many replicas as there are live brokers up to Kafka's default of 3, so
/// coordinators survive a broker loss without the operator having to ask.
fn effective_replication_factor(broker: &Broker, topic: &InternalTopic) -> i16 {
    let key = match topic.name {
        crate::group::OFFSETS_TOPIC => "offsets.topic.replication.factor",
        _ => "transaction.state.log.replication.factor",
    };
    let explicit = broker
        .config()
        .describe(key)
        .is_some_and(|(_, source)| source != crate::config::ConfigSource::Default);
    if explicit || broker.config().cluster.voters.is_empty() {
        return topic.replication_factor;
    }
    let live = broker.image().unfenced_broker_ids().len().max(1);
    live.min(INTERNAL_REPLICATION_FACTOR_DEFAULT) as i16
}

/// Kafka's default replication factor of its internal topics.
const INTERNAL_REPLICATION_FACTOR_DEFAULT: usize = 3;

/// Creates the topic unless it exists.
pub async fn ensure_created(
    broker: &Arc<Broker>,
    topic: &InternalTopic,
) -> Result<(), InternalTopicError> {
    if broker.image().topic(topic.name).is_some() {
        return Ok(());
    }
    let replication_factor = effective_replication_factor(broker, topic);
    let create = CreateTopic {
        name: topic.name.to_string(),
        num_partitions: Some(topic.partitions),
        replication_factor: Some(replication_factor),
        assignments: Vec::new(),
        configs: vec![
            ("cleanup.policy".into(), Some("compact".into())),
            ("retention.ms".into(), Some("-1".into())),
            (
                "segment.bytes".into(),
                Some(topic.segment_bytes.to_string()),
            ),
        ],
    };
    let results = crate::admin::create_topics(broker, vec![create], false)
        .await
        .map_err(|e| InternalTopicError::Create {
            topic: topic.name,
            reason: e.to_string(),
        })?;
    if broker.image().topic(topic.name).is_none() {
        let reason = results
            .into_iter()
            .find_map(|r| r.error.map(|e| e.to_string()))
            .unwrap_or_else(|| "unknown reason".into());
        return Err(InternalTopicError::Create {
            topic: topic.name,
            reason,
        });
    }
    Ok(())
}

/// The control type of a control batch's record (0 = abort, 1 = commit).
pub fn control_marker_is_commit(view: &BatchView<'_>) -> Option<bool> {
    let records = decode_batch(view).ok()?;
    let key = records.first()?.key.as_ref()?;
    if key.len() < 4 {
        return None;
    }
    Some(i16::from_be_bytes([key[2], key[3]]) == 1)
}

/// Every record and marker of partition `index` of `topic` (nothing if not hosted here).
pub fn read_partition(
    broker: &Broker,
    topic_name: &'static str,
    index: i32,
) -> Result<Vec<ReplayItem>, InternalTopicError> {
    let image = broker.image();
    let Some(topic) = image.topic(topic_name) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let Some(partition) = broker.partitions().get(topic.topic_id, index) else {
        return Ok(out);
    };
    let read_error = |message: String| InternalTopicError::Read {
        topic: topic_name,
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
            let view =
                BatchView::parse(&bytes[at..at + size]).map_err(|e| read_error(e.to_string()))?;
            at += size;
            if view.next_offset() <= offset {
                continue;
            }
            advanced = true;
            let next = view.next_offset();
            if view.is_control() {
                if let Some(commit) = control_marker_is_commit(&view) {
                    out.push(ReplayItem::Marker {
                        partition: index,
                        producer_id: view.producer_id(),
                        commit,
                    });
                }
            } else {
                let transactional = view.is_transactional().then(|| Writer {
                    producer_id: view.producer_id(),
                    producer_epoch: view.producer_epoch(),
                });
                let records = decode_batch(&view).map_err(|e| read_error(e.to_string()))?;
                for record in records.into_iter().filter(|r| r.offset >= offset) {
                    let Some(key) = record.key else { continue };
                    out.push(ReplayItem::Record {
                        partition: index,
                        key,
                        value: record.value,
                        transactional,
                    });
                }
            }
            offset = next;
        }
        if !advanced || offset >= end {
            break;
        }
    }
    Ok(out)
}

/// The partitions of `topic` this broker leads, with their leader epochs.
pub fn led_partitions(broker: &Broker, topic_name: &str) -> Vec<(i32, i32)> {
    let image = broker.image();
    let Some(topic) = image.topic(topic_name) else {
        return Vec::new();
    };
    topic
        .partitions
        .iter()
        .filter_map(|state| {
            let partition = broker.partitions().get(topic.topic_id, state.partition)?;
            partition
                .is_leader()
                .then(|| (state.partition, partition.leader_epoch()))
        })
        .collect()
}

/// Whether this broker leads partition `index` of `topic` (so coordinates what it holds).
pub fn leads(broker: &Broker, topic_name: &str, index: i32) -> bool {
    let image = broker.image();
    image
        .topic(topic_name)
        .and_then(|topic| broker.partitions().get(topic.topic_id, index))
        .is_some_and(|partition| partition.is_leader())
}

/// The leader epoch of partition `index` of `topic` when this broker leads it.
pub fn led_epoch(broker: &Broker, topic_name: &str, index: i32) -> Option<i32> {
    let image = broker.image();
    let topic = image.topic(topic_name)?;
    let partition = broker.partitions().get(topic.topic_id, index)?;
    partition.is_leader().then(|| partition.leader_epoch())
}

/// The broker leading partition `index` of `topic` (-1: none), from the image.
pub fn leader_of(broker: &Broker, topic_name: &str, index: i32) -> i32 {
    broker
        .image()
        .topic(topic_name)
        .and_then(|topic| topic.partitions.get(index as usize).map(|p| p.leader))
        .unwrap_or(-1)
}

/// A write appended to the leader's log of an internal partition, answered once the
/// in-sync replicas have it ([`Pending::committed`]). Coordinators append and change their
/// memory under their state lock (so log order is the order of their state changes), then
/// let the lock go and park the answer on this: the next request is served meanwhile, and
/// no lock is held while replication is awaited.
///
/// It is also the read barrier of Kafka's rule that a write is not visible before it is
/// durable: an answer that reads coordinator state waits for the log end of the state's
/// partition as it was when read ([`log_end`]), so it never shows a write that may be lost.
#[must_use = "an answer must wait for its writes to be committed"]
pub struct Pending {
    topic: &'static str,
    index: i32,
    /// None: nothing to wait for (no write, or the partition is not hosted here).
    wait: Option<(Arc<crate::partition::Partition>, i64)>,
}

impl Pending {
    /// Nothing to wait for.
    pub fn none() -> Self {
        Pending {
            topic: "",
            index: -1,
            wait: None,
        }
    }

    /// A write of `end_offset` (exclusive) appended to `partition` by other means (a
    /// transaction marker).
    pub fn written(
        topic: &'static str,
        index: i32,
        partition: Arc<crate::partition::Partition>,
        end_offset: i64,
    ) -> Self {
        Pending {
            topic,
            index,
            wait: Some((partition, end_offset)),
        }
    }

    /// Resolves when the partition's high watermark passes the write; fails when the
    /// leadership moved or the in-sync replicas did not acknowledge in time.
    pub async fn committed(self, broker: &Broker) -> Result<(), InternalTopicError> {
        let Some((partition, end_offset)) = self.wait else {
            return Ok(());
        };
        wait_replicated(broker, &partition, end_offset)
            .await
            .map_err(|reason| {
                if partition.is_leader() {
                    InternalTopicError::NotReplicated {
                        topic: self.topic,
                        partition: self.index,
                        reason,
                    }
                } else {
                    InternalTopicError::NotLeader {
                        topic: self.topic,
                        partition: self.index,
                    }
                }
            })
    }
}

/// The read barrier of partition `index` of `topic`: its log end offset now (see
/// [`Pending`]). Nothing to wait for when the partition is not hosted here.
pub fn log_end(broker: &Broker, topic_name: &'static str, index: i32) -> Pending {
    let image = broker.image();
    let partition = image
        .topic(topic_name)
        .and_then(|topic| broker.partitions().get(topic.topic_id, index));
    Pending {
        topic: topic_name,
        index,
        wait: partition.map(|partition| {
            let end = partition.log.lock().log_end_offset();
            (partition, end)
        }),
    }
}

/// Appends one batch of (key, value) records to partition `index` of `topic`. With a
/// `transactional` writer the batch belongs to that producer's open transaction. Does not
/// wait for the in-sync replicas: the caller awaits the returned [`Pending`] once it has
/// let its lock go.
pub fn append(
    broker: &Broker,
    topic_name: &'static str,
    index: i32,
    entries: Vec<(Bytes, Option<Bytes>)>,
    transactional: Option<Writer>,
) -> Result<Pending, InternalTopicError> {
    if entries.is_empty() {
        return Ok(Pending::none());
    }
    let image = broker.image();
    let not_hosted = InternalTopicError::NotHosted {
        topic: topic_name,
        partition: index,
    };
    let topic = image.topic(topic_name).ok_or(not_hosted)?;
    let partition =
        broker
            .partitions()
            .get(topic.topic_id, index)
            .ok_or(InternalTopicError::NotHosted {
                topic: topic_name,
                partition: index,
            })?;
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
    let options = match transactional {
        None => BatchBuilderOptions::default(),
        Some(writer) => BatchBuilderOptions {
            producer_id: writer.producer_id,
            producer_epoch: writer.producer_epoch,
            base_sequence: -1,
            transactional: true,
            ..BatchBuilderOptions::default()
        },
    };
    let batch = encode_batch(&records, &options)?;
    let buffer = BytesMut::from(&batch[..]);
    let info = partition
        .append_as_leader(now, |log, leader_epoch| match transactional {
            None => log.append_as_leader(buffer, leader_epoch, now),
            Some(_) => log.append_as_coordinator(buffer, leader_epoch, now),
        })
        .ok_or(InternalTopicError::NotLeader {
            topic: topic_name,
            partition: index,
        })??;
    broker.notify_appended();
    Ok(Pending {
        topic: topic_name,
        index,
        wait: Some((partition, info.last_offset + 1)),
    })
}

/// Longest a coordinator write waits for the in-sync replicas.
const REPLICATION_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Coordinators answer only once their writes are on every in-sync replica (Kafka writes
/// its internal topics with acks=all): waits until the partition's high watermark reaches
/// `end_offset`. Immediate with a single replica. Never called under a lock.
pub async fn wait_replicated(
    broker: &Broker,
    partition: &crate::partition::Partition,
    end_offset: i64,
) -> Result<(), &'static str> {
    if partition.high_watermark() >= end_offset {
        return Ok(());
    }
    let mut appends = broker.subscribe_appends();
    let deadline = tokio::time::Instant::now() + REPLICATION_WAIT;
    loop {
        appends.borrow_and_update();
        if partition.high_watermark() >= end_offset {
            return Ok(());
        }
        if !partition.is_leader() {
            return Err("leadership moved before the write was replicated");
        }
        match tokio::time::timeout_at(deadline, appends.changed()).await {
            Ok(Ok(())) => {}
            _ => return Err("the in-sync replicas did not acknowledge the write in time"),
        }
    }
}

/// The coordinators' error for an internal-topic failure.
pub fn to_log_error(error: &InternalTopicError) -> LogError {
    match error {
        InternalTopicError::Create { topic, reason } => LogError::Create {
            topic,
            reason: reason.clone(),
        },
        InternalTopicError::NotHosted { topic, partition } => LogError::NotHosted {
            topic,
            partition: *partition,
        },
        InternalTopicError::NotLeader { topic, partition } => LogError::NotLeader {
            topic,
            partition: *partition,
        },
        InternalTopicError::NotReplicated {
            topic,
            partition,
            reason,
        } => LogError::NotReplicated {
            topic,
            partition: *partition,
            reason: reason.to_string(),
        },
        InternalTopicError::Append(
            AppendError::MessageTooLarge { .. } | AppendError::RecordListTooLarge { .. },
        ) => LogError::TooLarge(error.to_string()),
        InternalTopicError::Append(AppendError::InvalidProducerEpoch { .. }) => {
            LogError::InvalidProducerEpoch(error.to_string())
        }
        other => LogError::Other(other.to_string()),
    }
}

/// The coordinators' [`InternalLog`] over this broker's partitions: the functions of this
/// module, with commits awaited through [`Pending::committed`]. Holds the broker weakly
/// (the broker owns the coordinators that own this).
pub struct BrokerLog {
    broker: Weak<Broker>,
}

impl BrokerLog {
    pub fn new(broker: Weak<Broker>) -> Self {
        BrokerLog { broker }
    }

    fn broker(&self) -> Result<Arc<Broker>, LogError> {
        self.broker
            .upgrade()
            .ok_or_else(|| LogError::Other("the broker is shutting down".into()))
    }
}

/// A broker [`Pending`] as the coordinators' pending write.
fn to_log_pending(broker: Arc<Broker>, pending: Pending) -> coordinator_log::Pending {
    if pending.wait.is_none() {
        return coordinator_log::Pending::none();
    }
    coordinator_log::Pending::new(async move {
        pending
            .committed(&broker)
            .await
            .map_err(|error| to_log_error(&error))
    })
}

impl InternalLog for BrokerLog {
    fn partition_count(&self, topic: &str) -> Option<i32> {
        let broker = self.broker.upgrade()?;
        let image = broker.image();
        image.topic(topic).map(|t| t.partition_count())
    }

    fn led_partitions(&self, topic: &str) -> Vec<(i32, i32)> {
        self.broker
            .upgrade()
            .map_or_else(Vec::new, |broker| led_partitions(&broker, topic))
    }

    fn leads(&self, topic: &str, index: i32) -> bool {
        self.broker
            .upgrade()
            .is_some_and(|broker| leads(&broker, topic, index))
    }

    fn ensure_created(&self, topic: InternalTopic) -> BoxFuture<'_, Result<(), LogError>> {
        Box::pin(async move {
            let broker = self.broker()?;
            ensure_created(&broker, &topic)
                .await
                .map_err(|error| to_log_error(&error))
        })
    }

    fn replay(
        &self,
        topic: &'static str,
        index: i32,
    ) -> BoxFuture<'_, Result<Vec<ReplayItem>, LogError>> {
        Box::pin(async move {
            let broker = self.broker()?;
            tokio::task::spawn_blocking(move || read_partition(&broker, topic, index))
                .await
                .map_err(|error| LogError::Other(error.to_string()))?
                .map_err(|error| to_log_error(&error))
        })
    }

    fn append(
        &self,
        topic: &'static str,
        index: i32,
        entries: Vec<(Bytes, Option<Bytes>)>,
        transactional: Option<Writer>,
    ) -> Result<coordinator_log::Pending, LogError> {
        let broker = self.broker()?;
        let pending = append(&broker, topic, index, entries, transactional)
            .map_err(|error| to_log_error(&error))?;
        Ok(to_log_pending(broker, pending))
    }

    fn log_end(&self, topic: &'static str, index: i32) -> coordinator_log::Pending {
        match self.broker.upgrade() {
            Some(broker) => {
                let pending = log_end(&broker, topic, index);
                to_log_pending(broker, pending)
            }
            None => coordinator_log::Pending::none(),
        }
    }

    fn write_marker(
        &self,
        topic: &str,
        index: i32,
        marker: TxnMarker,
    ) -> Result<coordinator_log::Pending, ErrorCode> {
        let broker = self
            .broker
            .upgrade()
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let pending = crate::txn::markers::write_marker(
            &broker,
            topic,
            index,
            marker.producer_id,
            marker.producer_epoch,
            marker.commit,
            marker.coordinator_epoch,
        )?;
        Ok(to_log_pending(broker, pending))
    }

    fn leader_of(&self, topic: &str, index: i32) -> i32 {
        self.broker
            .upgrade()
            .map_or(-1, |broker| leader_of(&broker, topic, index))
    }

    fn send_markers(
        &self,
        leader: i32,
        partitions: Vec<(String, i32)>,
        marker: TxnMarker,
    ) -> BoxFuture<'static, Result<(), ErrorCode>> {
        let broker = self.broker.upgrade();
        Box::pin(async move {
            let broker = broker.ok_or(ErrorCode::CoordinatorNotAvailable)?;
            crate::txn::markers::write_remote_markers(
                &broker,
                leader,
                &partitions,
                marker.producer_id,
                marker.producer_epoch,
                marker.commit,
                marker.coordinator_epoch,
            )
            .await
        })
    }
}

/// The partition of an internal topic that owns `key` (a group or transactional id).
pub use strom_coordinator::partition_for;
