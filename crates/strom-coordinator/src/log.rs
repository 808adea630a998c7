//! The coordinators' view of their internal topics (`__consumer_offsets`,
//! `__transaction_state`): the [`InternalLog`] trait. The broker implements it over its
//! partition logs and replication; [`crate::memory_log::MemoryLog`] implements it in memory
//! for tests.
//!
//! A write is appended at once and answered with a [`Pending`] that resolves when the
//! write is committed (the partition's high watermark passed it) or fails when the
//! leadership moved or the in-sync replicas did not acknowledge in time. Coordinators
//! append and change their memory under a shard lock (log order = memory order), then let
//! the lock go and await the `Pending`, so no lock is held across a replication wait.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use strom_protocol::ErrorCode;

/// A boxed, sendable future (the trait is used as `dyn InternalLog`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an internal-topic operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("cannot create {topic}: {reason}")]
    Create { topic: &'static str, reason: String },
    #[error("{topic} partition {partition} is not hosted here")]
    NotHosted { topic: &'static str, partition: i32 },
    #[error("this node does not lead {topic} partition {partition}")]
    NotLeader { topic: &'static str, partition: i32 },
    #[error("{topic} partition {partition}: {reason}")]
    NotReplicated {
        topic: &'static str,
        partition: i32,
        reason: String,
    },
    /// The batch is over the log's size limits.
    #[error("batch too large: {0}")]
    TooLarge(String),
    /// A transactional write from a fenced producer epoch.
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    #[error("{0}")]
    Other(String),
}

/// How an internal topic is created on first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopic {
    pub name: &'static str,
    pub partitions: i32,
    pub replication_factor: i16,
    pub segment_bytes: i32,
}

/// Who wrote a batch: the producer of a transactional batch, or nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writer {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// One item of an internal topic, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayItem {
    /// A key/value record; `transactional` names its producer when it belongs to a
    /// transaction (it takes effect only when the commit marker follows).
    Record {
        partition: i32,
        key: Bytes,
        value: Option<Bytes>,
        transactional: Option<Writer>,
    },
    /// A transaction marker.
    Marker {
        partition: i32,
        producer_id: i64,
        commit: bool,
    },
}

/// A transaction marker (a COMMIT or ABORT control batch) ending one producer's
/// transaction on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    /// The leader epoch of the coordinator's `__transaction_state` partition (fences a
    /// deposed coordinator's markers).
    pub coordinator_epoch: i32,
}

/// A write appended to the leader's log, answered once committed ([`Pending::committed`]).
/// Also the read barrier of Kafka's rule that a write is not visible before it is durable:
/// an answer that reads coordinator state waits for [`InternalLog::log_end`] of the state's
/// partition as it was when read.
#[must_use = "an answer must wait for its writes to be committed"]
pub struct Pending(Option<BoxFuture<'static, Result<(), LogError>>>);

impl Pending {
    /// Nothing to wait for.
    pub fn none() -> Self {
        Pending(None)
    }

    /// Waits for `wait` (built by an [`InternalLog`]).
    pub fn new(wait: impl Future<Output = Result<(), LogError>> + Send + 'static) -> Self {
        Pending(Some(Box::pin(wait)))
    }

    /// Resolves when the write is committed; fails on leadership loss or a timeout.
    pub async fn committed(self) -> Result<(), LogError> {
        match self.0 {
            None => Ok(()),
            Some(wait) => wait.await,
        }
    }
}

/// Waits for every one of `pending`, in order; the first failure wins.
pub async fn all_committed(pending: Vec<Pending>) -> Result<(), LogError> {
    for write in pending {
        write.committed().await?;
    }
    Ok(())
}

/// The internal topics as a coordinator sees them.
pub trait InternalLog: Send + Sync + 'static {
    /// The partition count of `topic`, None when it does not exist.
    fn partition_count(&self, topic: &str) -> Option<i32>;

    /// The partitions of `topic` this node leads, with their leader epochs.
    fn led_partitions(&self, topic: &str) -> Vec<(i32, i32)>;

    /// Whether this node leads partition `index` of `topic`.
    fn leads(&self, topic: &str, index: i32) -> bool {
        self.led_partitions(topic).iter().any(|(i, _)| *i == index)
    }

    /// Creates the topic unless it exists.
    fn ensure_created(&self, topic: InternalTopic) -> BoxFuture<'_, Result<(), LogError>>;

    /// Every record and marker of partition `index` of `topic`, in log order (nothing if
    /// the partition is not hosted here).
    fn replay(
        &self,
        topic: &'static str,
        index: i32,
    ) -> BoxFuture<'_, Result<Vec<ReplayItem>, LogError>>;

    /// Appends one batch of (key, value) records to partition `index` of `topic` (with a
    /// `transactional` writer, as part of that producer's open transaction). Returns at
    /// once; the [`Pending`] resolves when the batch is committed.
    fn append(
        &self,
        topic: &'static str,
        index: i32,
        entries: Vec<(Bytes, Option<Bytes>)>,
        transactional: Option<Writer>,
    ) -> Result<Pending, LogError>;

    /// The read barrier of partition `index`: resolves when its log end as of now is
    /// committed (at once when the partition is not hosted here).
    fn log_end(&self, topic: &'static str, index: i32) -> Pending;

    /// Appends `marker` to partition `index` of `topic` (any topic: the partitions of a
    /// transaction) when this node leads it; the [`Pending`] resolves when the marker is
    /// committed. UNKNOWN_TOPIC_OR_PARTITION when the partition is gone (it needs no
    /// marker), NOT_LEADER_OR_FOLLOWER when another node leads it
    /// ([`InternalLog::send_markers`] then), or the partition's refusal (a fenced epoch).
    fn write_marker(
        &self,
        topic: &str,
        index: i32,
        marker: TxnMarker,
    ) -> Result<Pending, ErrorCode>;

    /// The node leading partition `index` of `topic`, -1 when none does.
    fn leader_of(&self, topic: &str, index: i32) -> i32;

    /// Sends `marker` for `partitions` to their leader `leader` (Kafka's WriteTxnMarkers);
    /// resolves when that node committed them (a partition it no longer knows counts as
    /// written), with its error code otherwise.
    fn send_markers(
        &self,
        leader: i32,
        partitions: Vec<(String, i32)>,
        marker: TxnMarker,
    ) -> BoxFuture<'static, Result<(), ErrorCode>>;
}
