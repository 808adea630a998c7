//! What a follower replica needs: appending the leader's batches as they are, and cutting
//! the log back to a leader-epoch boundary.

use strom_protocol::batch::BatchIter;

use crate::error::{AppendError, InvalidRecordReason, StorageError};
use crate::files;
use crate::header::BatchHeader;
use crate::log::PartitionLog;
use crate::segment::Segment;
use crate::transactions::{decode_marker, stored_batch_update};
use crate::AppendInfo;

/// What validation of a follower's records learned.
struct FollowerBatches {
    first_offset: i64,
    last_offset: i64,
    record_count: i64,
    max_timestamp_ms: i64,
}

impl PartitionLog {
    /// Appends batches fetched from the leader exactly as they are: offsets, leader epochs
    /// and timestamps were assigned by the leader, so nothing is rewritten. Checks framing,
    /// CRC-32C and that offsets only grow from the log end (gaps are allowed: compaction
    /// leaves them). Learns leader epochs and producer state from the batch headers without
    /// checking sequences or transaction rules (the leader did): transactional batches
    /// start transactions, control batches end them (their one small record is decoded
    /// for the marker type) and ABORT markers go into the `.txnindex`. All-or-nothing.
    pub fn append_as_follower(
        &mut self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.check_not_fenced()?;
        let log_end = self.log_end_offset();
        let batches = self.validate_follower(records, log_end)?;
        self.maybe_roll_follower(records.len() as u64, &batches, now_ms)?;

        let mut epochs_changed = false;
        for view in BatchIter::new(records) {
            let view = view.expect("validated");
            epochs_changed |= self
                .epochs
                .assign(view.partition_leader_epoch(), view.base_offset());
        }
        if epochs_changed {
            self.epochs.persist()?;
        }
        let interval = self.config.index_interval_bytes;
        if let Err((error, rolled_back)) = self.active_mut().append(records, interval) {
            if !rolled_back {
                self.fenced = true;
            }
            return Err(error.into());
        }
        for view in BatchIter::new(records) {
            let view = view.expect("validated");
            let header = BatchHeader::parse(view.as_bytes()).expect("validated header");
            let marker = (header.is_control() && header.producer_id >= 0)
                .then(|| decode_marker(view.as_bytes()))
                .flatten();
            if let Some((update, batch)) = stored_batch_update(&header, marker) {
                self.apply_producer_update(&update, batch, now_ms)?;
            }
        }
        self.unflushed_messages = self.unflushed_messages.saturating_add(batches.record_count);
        self.maybe_flush(now_ms)?;
        assert_eq!(self.log_end_offset(), batches.last_offset + 1);
        Ok(AppendInfo {
            base_offset: batches.first_offset,
            last_offset: batches.last_offset,
            log_append_time_ms: -1,
            log_start_offset: self.log_start_offset,
            record_count: batches.record_count,
            duplicate: false,
        })
    }

    fn validate_follower(
        &self,
        records: &[u8],
        log_end: i64,
    ) -> Result<FollowerBatches, AppendError> {
        if records.is_empty() {
            return Err(AppendError::InvalidRecord {
                batch_index: 0,
                reason: InvalidRecordReason::Empty,
            });
        }
        if records.len() as u64 > self.config.segment_bytes_max() {
            return Err(AppendError::RecordListTooLarge {
                size_bytes: records.len(),
                segment_bytes: self.config.segment_bytes,
            });
        }
        let mut next_offset_min = log_end;
        let mut summary = FollowerBatches {
            first_offset: -1,
            last_offset: -1,
            record_count: 0,
            max_timestamp_ms: -1,
        };
        for (batch_index, item) in BatchIter::new(records).enumerate() {
            let view = item.map_err(|source| AppendError::CorruptMessage {
                batch_index,
                source,
            })?;
            view.verify_crc()
                .map_err(|source| AppendError::CorruptMessage {
                    batch_index,
                    source,
                })?;
            if view.base_offset() > crate::append::OFFSET_MAX {
                return Err(AppendError::InvalidRecord {
                    batch_index,
                    reason: InvalidRecordReason::OffsetsExhausted,
                });
            }
            if view.base_offset() < next_offset_min {
                return Err(AppendError::UnexpectedOffset {
                    batch_index,
                    base_offset: view.base_offset(),
                    next_offset_min,
                });
            }
            if summary.first_offset < 0 {
                summary.first_offset = view.base_offset();
            }
            summary.last_offset = view.last_offset();
            summary.record_count += view.record_count() as i64;
            summary.max_timestamp_ms = summary.max_timestamp_ms.max(view.max_timestamp());
            next_offset_min = view.next_offset();
        }
        Ok(summary)
    }

    fn maybe_roll_follower(
        &mut self,
        incoming_bytes: u64,
        batches: &FollowerBatches,
        now_ms: i64,
    ) -> Result<(), AppendError> {
        let active = self.active();
        let offsets_overflow = batches.last_offset - active.base_offset() > i32::MAX as i64;
        if active.is_empty() {
            if offsets_overflow {
                // An empty segment far behind the leader's offsets: start it where they do.
                self.replace_empty_active(batches.first_offset, now_ms)?;
            }
            return Ok(());
        }
        let too_big = active.size_bytes() + incoming_bytes > self.config.segment_bytes_max();
        let too_old =
            active.age_for_roll_ms(batches.max_timestamp_ms, now_ms) > self.config.segment_ms;
        if too_big || too_old || active.index_is_full() || offsets_overflow {
            self.roll_at(batches.first_offset, now_ms)?;
        }
        Ok(())
    }

    fn replace_empty_active(&mut self, new_base: i64, now_ms: i64) -> Result<(), StorageError> {
        let (_, empty) = self.segments.pop_last().expect("never empty");
        assert!(empty.is_empty());
        empty.delete_files()?;
        let segment =
            Segment::create(&self.dir, new_base, self.config.segment_index_bytes, now_ms)?;
        files::fsync_dir(&self.dir)?;
        self.segments.insert(new_base, segment);
        if self.segments.len() == 1 {
            self.move_log_start(new_base)?;
        }
        Ok(())
    }

    fn move_log_start(&mut self, log_start: i64) -> Result<(), StorageError> {
        files::write_offset_checkpoint(&self.dir.join(files::LOG_START_OFFSET_FILE), log_start)?;
        self.log_start_offset = log_start;
        Ok(())
    }

    /// Cuts the log back so that `offset` is (at most) the new log end: removes the batch
    /// holding `offset` and everything after it (whole batches, as Kafka), deletes later
    /// segments, forgets leader epochs starting at or after the new end, and rebuilds the
    /// producer state from the newest snapshot below it. A follower calls this with the
    /// end offset OffsetForLeaderEpoch returned. An offset below the log start empties the
    /// log and restarts it there. The cut is fsynced, so a crash cannot bring the removed
    /// batches back.
    pub fn truncate_to(&mut self, offset: i64, now_ms: i64) -> Result<(), StorageError> {
        self.check_not_fenced()?;
        if offset >= self.log_end_offset() {
            // Nothing to cut, but an epoch a leader registered without writing must go, or
            // it would claim the next leader's entries (Kafka truncates the cache anyway).
            if self.epochs.truncate_from_end(self.log_end_offset()) {
                self.epochs.persist()?;
            }
            return Ok(());
        }
        if offset < self.log_start_offset {
            return self.truncate_fully_and_start_at(offset, now_ms);
        }
        while self.segments.len() > 1 && self.active().base_offset() > offset {
            let (_, segment) = self.segments.pop_last().expect("len > 1");
            tracing::info!(segment = %segment.log_path().display(), offset, "truncation deletes segment");
            segment.delete_files()?;
        }
        let removed = self.active_mut().truncate_to(offset)?;
        files::fsync_dir(&self.dir)?;
        let log_end = self.log_end_offset();
        tracing::info!(
            dir = %self.dir.display(),
            offset,
            log_end,
            removed_bytes = removed,
            "truncated the log"
        );
        self.forget_seals_above(log_end);
        self.recovery_point = self.recovery_point.min(log_end);
        files::write_offset_checkpoint(
            &self.dir.join(files::RECOVERY_POINT_FILE),
            self.recovery_point,
        )?;
        self.clamp_cleaner_checkpoint(log_end)?;
        let mut epochs_changed = self.epochs.truncate_from_end(log_end);
        epochs_changed |= self.rebuild_producer_state(now_ms)?;
        if epochs_changed {
            self.epochs.persist()?;
        }
        self.check_invariants();
        Ok(())
    }

    /// Deletes every segment and restarts the log empty at `offset` (a follower far behind
    /// the leader's log start, or truncation below the log start).
    pub fn truncate_fully_and_start_at(
        &mut self,
        offset: i64,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        self.check_not_fenced()?;
        assert!(offset >= 0, "offsets are never negative");
        let old = std::mem::take(&mut self.segments);
        for (_, segment) in old {
            segment.delete_files()?;
        }
        let segment = Segment::create(&self.dir, offset, self.config.segment_index_bytes, now_ms)?;
        files::fsync_dir(&self.dir)?;
        self.segments.insert(offset, segment);
        self.move_log_start(offset)?;
        self.clamp_cleaner_checkpoint(offset)?;
        self.forget_seals_above(offset);
        self.recovery_point = offset;
        files::write_offset_checkpoint(&self.dir.join(files::RECOVERY_POINT_FILE), offset)?;
        self.epochs.clear();
        self.epochs.persist()?;
        self.producers.clear();
        for snapshot in crate::producer_state::list_snapshots(&self.dir)? {
            files::remove_if_exists(&files::offset_file(
                &self.dir,
                snapshot,
                files::SNAPSHOT_SUFFIX,
            ))?;
        }
        self.check_invariants();
        Ok(())
    }
}
