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
    /// `message.timestamp.before.max.ms`: with CreateTime, an append refuses a record whose
    /// timestamp is more than this far behind the broker's clock (INVALID_TIMESTAMP).
    /// `i64::MAX` (the default) accepts any.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: the same, for timestamps ahead of the broker's clock.
    pub message_timestamp_after_max_ms: i64,
    /// `producer.id.expiration.ms`: idempotent producer state not appended to for this
    /// long (broker clock) is dropped by [`crate::PartitionLog::enforce_retention`], which
    /// bounds the producer table (Kafka default: 1 day). State is *not* dropped when
    /// retention deletes the producer's batches: unknown producers must start at sequence
    /// 0, so dropping an active producer's state would fail its next batch.
    pub producer_id_expiration_ms: i64,
    /// `cleanup.policy` contains `delete`: `retention.ms`/`retention.bytes` delete old
    /// segments. Without it (`compact` alone) retention never deletes.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`: the cleaner keeps the latest record per key
    /// ([`crate::PartitionLog::plan_clean`]) and appends refuse records without a key.
    pub cleanup_compact: bool,
    /// `min.cleanable.dirty.ratio`: clean once dirty bytes / (clean + dirty) reach this.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a record stays uncompacted at least this long (by the
    /// largest timestamp of its segment).
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a segment dirty for longer is cleaned whatever the ratio,
    /// and the active segment of a compacted log rolls after this long.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone (null value) survives after the
    /// cleaner first saw it (KIP-534 delete horizon), so consumers reading from the start
    /// see the delete.
    pub delete_retention_ms: i64,
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
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: i64::MAX,
            producer_id_expiration_ms: 24 * 60 * 60 * 1000,
            cleanup_delete: true,
            cleanup_compact: false,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 24 * 60 * 60 * 1000,
        }
    }
}

/// A [`LogConfig`] value outside what Kafka accepts for that key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value} is outside the accepted range [{min}, {max}]")]
pub struct ConfigError {
    /// Kafka's config key, e.g. `segment.bytes`.
    pub key: &'static str,
    pub value: i64,
    pub min: i64,
    pub max: i64,
}

impl LogConfig {
    /// Checks every value against Kafka's accepted range for its key; call once when a
    /// config is loaded or altered, before [`crate::PartitionLog::set_config`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            return Err(ConfigError {
                key: "min.cleanable.dirty.ratio",
                value: (self.min_cleanable_dirty_ratio * 100.0) as i64,
                min: 0,
                max: 1,
            });
        }
        let checks: [(&'static str, i64, i64, i64); 15] = [
            (
                "segment.bytes",
                self.segment_bytes.min(i64::MAX as u64) as i64,
                61,
                i32::MAX as i64,
            ),
            ("segment.ms", self.segment_ms, 1, i64::MAX),
            (
                "segment.index.bytes",
                self.segment_index_bytes as i64,
                4,
                i32::MAX as i64,
            ),
            (
                "index.interval.bytes",
                self.index_interval_bytes as i64,
                0,
                i32::MAX as i64,
            ),
            ("retention.ms", self.retention_ms, -1, i64::MAX),
            ("retention.bytes", self.retention_bytes, -1, i64::MAX),
            ("flush.messages", self.flush_messages, 1, i64::MAX),
            ("flush.ms", self.flush_ms, 0, i64::MAX),
            (
                "max.message.bytes",
                self.max_message_bytes as i64,
                0,
                i32::MAX as i64,
            ),
            (
                "producer.id.expiration.ms",
                self.producer_id_expiration_ms,
                1,
                i64::MAX,
            ),
            (
                "min.compaction.lag.ms",
                self.min_compaction_lag_ms,
                0,
                i64::MAX,
            ),
            (
                "max.compaction.lag.ms",
                self.max_compaction_lag_ms,
                1,
                i64::MAX,
            ),
            ("delete.retention.ms", self.delete_retention_ms, 0, i64::MAX),
            (
                "message.timestamp.before.max.ms",
                self.message_timestamp_before_max_ms,
                0,
                i64::MAX,
            ),
            (
                "message.timestamp.after.max.ms",
                self.message_timestamp_after_max_ms,
                0,
                i64::MAX,
            ),
        ];
        for (key, value, min, max) in checks {
            if value < min || value > max {
                return Err(ConfigError {
                    key,
                    value,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }

    /// Largest segment the log writes: `segment.bytes`, capped so every file position fits
    /// the 32-bit positions of the offset index.
    pub(crate) fn segment_bytes_max(&self) -> u64 {
        self.segment_bytes.clamp(1, u32::MAX as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_defaults_when_validated_should_pass() {
        LogConfig::default()
            .validate()
            .expect("Kafka's defaults are valid");
    }

    #[test]
    fn given_out_of_range_value_when_validated_should_name_key_and_range() {
        let config = LogConfig {
            retention_ms: -2,
            ..LogConfig::default()
        };
        let error = config.validate().expect_err("invalid");
        assert_eq!(error.key, "retention.ms");
        assert_eq!((error.value, error.min), (-2, -1));
        assert!(error.to_string().contains("retention.ms = -2"));
        let config = LogConfig {
            segment_bytes: 1 << 40,
            ..LogConfig::default()
        };
        assert_eq!(config.validate().expect_err("too big").key, "segment.bytes");
    }
}
