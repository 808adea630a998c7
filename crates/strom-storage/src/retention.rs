//! Deleting whole old segments by `retention.ms` and `retention.bytes`.

use std::time::UNIX_EPOCH;

use crate::error::StorageError;
use crate::files;
use crate::log::PartitionLog;
use crate::segment::Segment;
use crate::RetentionOutcome;

impl PartitionLog {
    /// Deletes whole old segments by `retention.ms` (the segment's largest timestamp is
    /// older than `now_ms - retention.ms`) and then by `retention.bytes` (oldest first,
    /// while the log stays at or above the limit without them), and moves the log start.
    /// As Kafka: when every segment is to go, the active one is rolled first so the log
    /// keeps an (empty) segment at the log end. Also drops idle producer state
    /// (`producer.id.expiration.ms`).
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<RetentionOutcome, StorageError> {
        self.enforce_retention_below(now_ms, i64::MAX)
    }

    /// [`PartitionLog::enforce_retention`] that never deletes a segment holding offsets at
    /// or above `high_watermark` (data not yet replicated everywhere), as Kafka does.
    pub fn enforce_retention_below(
        &mut self,
        now_ms: i64,
        high_watermark: i64,
    ) -> Result<RetentionOutcome, StorageError> {
        self.check_not_fenced()?;
        let doomed = self.deletable_segments(now_ms, high_watermark);
        let mut outcome = RetentionOutcome {
            segments_deleted: 0,
            bytes_deleted: 0,
            log_start_offset: self.log_start_offset,
        };
        if doomed > 0 {
            if doomed == self.segments.len() {
                self.roll(now_ms)?;
            }
            let new_start_base = *self
                .segments
                .keys()
                .nth(doomed)
                .expect("the active segment survives");
            let new_log_start = self.log_start_offset.max(new_start_base);
            // Checkpoint first: a crash before the unlinks leaves segments below the log
            // start, which the next open deletes.
            files::write_offset_checkpoint(
                &self.dir.join(files::LOG_START_OFFSET_FILE),
                new_log_start,
            )?;
            self.log_start_offset = new_log_start;
            for _ in 0..doomed {
                let (_, segment) = self.segments.pop_first().expect("counted above");
                outcome.segments_deleted += 1;
                outcome.bytes_deleted += segment.size_bytes();
                tracing::info!(
                    segment = %segment.log_path().display(),
                    "deleting segment by retention"
                );
                segment.delete_files()?;
            }
            if self.epochs.truncate_from_start(new_log_start) {
                self.epochs.persist()?;
            }
            outcome.log_start_offset = new_log_start;
        }
        self.producers
            .remove_expired(now_ms, self.config.producer_id_expiration_ms);
        self.check_invariants();
        Ok(outcome)
    }

    /// How many of the oldest segments retention deletes.
    fn deletable_segments(&self, now_ms: i64, high_watermark: i64) -> usize {
        let eligible =
            |segment: &Segment| !segment.is_empty() && segment.next_offset() <= high_watermark;
        let mut doomed = 0usize;
        if !self.config.cleanup_delete {
            // `cleanup.policy=compact` alone: only the cleaner removes data.
            return 0;
        }
        if self.config.retention_ms >= 0 {
            let cutoff_ms = now_ms.saturating_sub(self.config.retention_ms);
            for segment in self.segments.values() {
                if !eligible(segment) || largest_timestamp_ms(segment) >= cutoff_ms {
                    break;
                }
                doomed += 1;
            }
        }
        if self.config.retention_bytes >= 0 {
            let remaining: u64 = self
                .segments
                .values()
                .skip(doomed)
                .map(Segment::size_bytes)
                .sum();
            let mut excess_bytes = remaining as i64 - self.config.retention_bytes;
            for segment in self.segments.values().skip(doomed) {
                if !eligible(segment) || excess_bytes < segment.size_bytes() as i64 {
                    break;
                }
                excess_bytes -= segment.size_bytes() as i64;
                doomed += 1;
            }
        }
        doomed
    }
}

/// The segment's largest record timestamp; when batches carry none (-1), the file's
/// modification time, as Kafka does.
fn largest_timestamp_ms(segment: &Segment) -> i64 {
    if segment.max_timestamp_ms() >= 0 {
        return segment.max_timestamp_ms();
    }
    std::fs::metadata(segment.log_path())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(i64::MAX, |d| d.as_millis() as i64)
}
