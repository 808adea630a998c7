//! The registry's only way to the log: a narrow trait over the compacted topic `_schemas`,
//! which the broker implements on its own partition log. The registry never sees `Broker`.

use std::future::Future;
use std::pin::Pin;

/// The topic the registry keeps its state in (Confluent's `kafkastore.topic` default).
pub const SCHEMAS_TOPIC: &str = "_schemas";

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One record of `_schemas`, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub offset: i64,
    pub key: Vec<u8>,
    /// None: a tombstone.
    pub value: Option<Vec<u8>>,
}

/// An append accepted by the writer's log, not yet known to be on every in-sync replica.
pub struct Appended {
    /// Resolves once the records are committed (the high watermark passed them).
    pub committed: BoxFuture<'static, Result<(), LogError>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// This broker does not lead `_schemas` partition 0, so it cannot write. `writer`: the
    /// `host:port` of the registry listener of the broker that leads it, when known (the
    /// write is forwarded there); None while there is no leader (a topic just created, an
    /// election under way).
    #[error("this broker is not the registry's writer: {reason}")]
    NotWriter {
        reason: String,
        writer: Option<String>,
    },
    /// The topic cannot be created or read now (no controller, partition offline).
    #[error("_schemas is unavailable: {reason}")]
    Unavailable { reason: String },
    /// The records were appended but not replicated in time, or leadership moved.
    #[error("_schemas write not committed: {reason}")]
    NotCommitted { reason: String },
    /// Reading or appending the local log failed.
    #[error("_schemas storage error: {reason}")]
    Storage { reason: String },
}

/// The compacted topic `_schemas`, partition 0: the registry's write-ahead log.
///
/// Contract: records are read back in the order they were appended, with their offsets;
/// [`SchemaLog::append`] appends all its records in one batch (all or none) only where this
/// node leads the partition, so one writer orders every change; `read` and `end_offset` are
/// cheap enough to call before every request and may block on disk (callers run them off
/// the async workers).
pub trait SchemaLog: Send + Sync + 'static {
    /// Creates `_schemas` (one partition, compacted, retained forever) unless it exists.
    fn ensure_topic(&self) -> BoxFuture<'_, Result<(), LogError>>;

    /// The offset after the last record of the local replica; None when this node does not
    /// host the topic (it does not exist yet, or lives elsewhere).
    fn end_offset(&self) -> Result<Option<i64>, LogError>;

    /// The registry listener (`host:port`) of the writer, when this node hosts no replica
    /// of an existing `_schemas` (reads are forwarded there); None otherwise.
    fn reader_elsewhere(&self) -> Option<String>;

    /// Records from `from` onwards, at most about `max_bytes` of them (at least one record
    /// when any is there), in offset order.
    fn read(&self, from: i64, max_bytes: u32) -> Result<Vec<LogRecord>, LogError>;

    /// Appends `records` (key, value; None = tombstone) as the writer, in one batch.
    fn append(&self, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<Appended, LogError>;
}
