//! DeleteRecords: moving the log start forward by request.

use crate::error::ReadError;
use crate::files;
use crate::log::PartitionLog;

impl PartitionLog {
    /// Moves the log start to `offset` (Kafka's DeleteRecords; the broker resolves -1 to
    /// the high watermark and refuses offsets beyond it). Offsets below the new start read
    /// as OFFSET_OUT_OF_RANGE at once; segments wholly below it are deleted now, never the
    /// active one (a fetch at the start inside a batch gets the whole batch and the client
    /// skips the records before its position, as with any mid-batch fetch). The new start
    /// is checkpointed before any file is unlinked, so a crash cannot bring records back.
    /// An offset at or below the current start changes nothing. Returns the log start.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, ReadError> {
        self.check_not_fenced()?;
        let log_end = self.log_end_offset();
        if offset < 0 || offset > log_end {
            return Err(ReadError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset,
                log_end,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        files::write_offset_checkpoint(&self.dir.join(files::LOG_START_OFFSET_FILE), offset)?;
        self.log_start_offset = offset;
        while self.segments.len() > 1 {
            let (&base, first) = self.segments.first_key_value().expect("len > 1");
            if first.next_offset() > offset {
                break;
            }
            let segment = self.segments.remove(&base).expect("present");
            tracing::info!(segment = %segment.log_path().display(), "deleting segment below the new log start");
            segment.delete_files()?;
        }
        if self.epochs.truncate_from_start(offset) {
            self.epochs.persist()?;
        }
        self.check_invariants();
        Ok(offset)
    }

    /// Idempotent producers of this partition, by id (DescribeProducers).
    pub fn active_producers(&self) -> Vec<crate::ProducerInfo> {
        self.producers.describe()
    }
}
