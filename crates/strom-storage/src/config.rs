//! Per-partition log configuration, named after Kafka's topic-level configs.

/// Which timestamp a batch carries once stored (`message.timestamp.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    /// Keep the producer's timestamps as they came.
    CreateTime,
    /// Stamp `maxTimestamp` with the broker's clock at append (and set the attribute bit).
    LogAppendTime,
}

/// Settings of one partition log. Field names follow Kafka's config keys; units are in the
/// names. Defaults are Kafka's.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// `segment.bytes`: roll the active segment before it grows past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is older than this.
    pub segment_ms: i64,
    /// `segment.index.bytes`: capacity of each index file; roll when an index is full.
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`: bytes of log between two sparse index entries.
    pub index_interval_bytes: u32,
    /// `retention.ms`: delete segments whose newest timestamp is older; -1 keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest segments while the log is larger; -1 = unlimited.
    pub retention_bytes: i64,
    /// `flush.messages`: fsync after this many appended records (default: never, as Kafka).
    pub flush_messages: i64,
    /// `flush.ms`: fsync when the last flush is older than this (default: never).
    pub flush_ms: i64,
    /// `max.message.bytes`: largest batch accepted by [`crate::PartitionLog::append_as_leader`].
    pub max_message_bytes: u32,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `producer.id.expiration.ms`: idempotent producer state whose newest batch timestamp is
    /// older than this is dropped by [`crate::PartitionLog::enforce_retention`], which bounds
    /// the producer table (Kafka default: 1 day).
    pub producer_id_expiration_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            max_message_bytes: 1_048_588,
            message_timestamp_type: TimestampType::CreateTime,
            producer_id_expiration_ms: 24 * 60 * 60 * 1000,
        }
    }
}

impl LogConfig {
    /// Largest segment the log writes: `segment.bytes`, capped so every file position fits
    /// the 32-bit positions of the offset index.
    pub(crate) fn segment_bytes_max(&self) -> u64 {
        self.segment_bytes.clamp(1, u32::MAX as u64)
    }
}
