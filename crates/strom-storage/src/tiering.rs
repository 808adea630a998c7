//! The two hooks tiered storage (`strom-tiered`) needs from a partition log: the sealed
//! segments it may copy to the remote tier, and local retention that deletes only what
//! the remote tier already holds. Nothing here knows about object stores.

use std::path::PathBuf;

use crate::error::StorageError;
use crate::files::{self, offset_file};
use crate::log::PartitionLog;
use crate::RetentionOutcome;

/// A sealed (no longer written) segment and the files that travel with it to the remote
/// tier. Paths may vanish if the segment is deleted meanwhile; a copier then fails and
/// asks again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSegment {
    pub base_offset: i64,
    /// One past the last offset in the segment.
    pub next_offset: i64,
    pub size_bytes: u64,
    /// Largest record timestamp, -1 when none.
    pub max_timestamp_ms: i64,
    pub log: PathBuf,
    pub offset_index: PathBuf,
    pub time_index: PathBuf,
    pub txn_index: PathBuf,
    /// The producer snapshot taken when this segment rolled (`<next_offset>.snapshot`),
    /// if still kept.
    pub producer_snapshot: Option<PathBuf>,
    pub leader_epoch_checkpoint: PathBuf,
}

impl PartitionLog {
    /// Sealed, non-empty segments whose every offset lies at or above `from` and below
    /// `below` (the high watermark: only replicated data is copied), oldest first.
    pub fn sealed_segments(&self, from: i64, below: i64) -> Vec<SealedSegment> {
        let active_base = self.active().base_offset();
        self.segments
            .values()
            .filter(|segment| {
                segment.base_offset() != active_base
                    && !segment.is_empty()
                    && segment.base_offset() >= from
                    && segment.next_offset() <= below
            })
            .map(|segment| {
                let base = segment.base_offset();
                let snapshot =
                    offset_file(&self.dir, segment.next_offset(), files::SNAPSHOT_SUFFIX);
                SealedSegment {
                    base_offset: base,
                    next_offset: segment.next_offset(),
                    size_bytes: segment.size_bytes(),
                    max_timestamp_ms: segment.max_timestamp_ms(),
                    log: segment.log_path().to_path_buf(),
                    offset_index: offset_file(&self.dir, base, files::INDEX_SUFFIX),
                    time_index: offset_file(&self.dir, base, files::TIME_INDEX_SUFFIX),
                    txn_index: offset_file(&self.dir, base, files::TXN_INDEX_SUFFIX),
                    producer_snapshot: snapshot.exists().then_some(snapshot),
                    leader_epoch_checkpoint: self.dir.join(files::LEADER_EPOCH_CHECKPOINT_FILE),
                }
            })
            .collect()
    }

    /// Bytes of the local segments holding offsets at or above `from`: with `from` the end
    /// of what the remote tier holds, the part of the partition only stored here.
    pub fn bytes_from(&self, from: i64) -> u64 {
        self.segments
            .values()
            .filter(|segment| segment.next_offset() > from)
            .map(|segment| segment.size_bytes())
            .sum()
    }

    /// `local.retention.ms` / `local.retention.bytes` (-1: no limit) for a log whose
    /// segments below `copied_below` are in the remote tier: deletes the oldest local
    /// segments by those limits, never one holding an offset at or above `copied_below`,
    /// and moves the (local) log start. The log's own `retention.*` is not consulted.
    pub fn enforce_local_retention(
        &mut self,
        now_ms: i64,
        copied_below: i64,
        local_retention_ms: i64,
        local_retention_bytes: i64,
    ) -> Result<RetentionOutcome, StorageError> {
        let saved = self.config.clone();
        self.config.retention_ms = local_retention_ms;
        self.config.retention_bytes = local_retention_bytes;
        self.config.cleanup_delete = true;
        let outcome = self.enforce_retention_below(now_ms, copied_below);
        self.config = saved;
        outcome
    }
}
