//! Log compaction (`cleanup.policy=compact` and `compact,delete`): keep the latest record
//! per key in the sealed segments.
//!
//! A clean runs in three steps so that appends and fetches never wait for its I/O:
//!
//! 1. [`PartitionLog::plan_clean`] (under the caller's lock, no I/O beyond a checkpoint
//!    read and the `.txnindex` entries of segments that have any): picks the cleanable
//!    segments — sealed (never the active one), below the caller's upper bound (the high
//!    watermark) and below the first unstable offset (an undecided transaction is never
//!    cleaned), and older than `min.compaction.lag.ms` by
//!    their largest timestamp — and decides whether the dirty part (past the
//!    `cleaner-offset-checkpoint`) is worth cleaning: dirty bytes / cleanable bytes >=
//!    `min.cleanable.dirty.ratio`, or the first dirty segment is older than
//!    `max.compaction.lag.ms`. The plan holds `Arc<File>`s of those segments: an
//!    immutable snapshot, since sealed segments are never written again.
//! 2. [`CleanPlan::build`] (no lock): builds the key -> latest-offset map over the dirty
//!    segments (bounded by a byte budget; when full, the clean stops at a segment
//!    boundary, as Kafka's), then rewrites every planned segment into
//!    `<base>.log.cleaned` (+ `.index.cleaned`, `.timeindex.cleaned`), fsynced, with
//!    indexes built as it writes. Reads and writes are throttled
//!    (`log.cleaner.io.max.bytes.per.second`).
//! 3. [`PartitionLog::install_cleaned`] (under the lock, brief: renames and one small
//!    open per segment): swaps each cleaned segment in, checking first that the original
//!    is unchanged (retention, DeleteRecords or truncation may have removed it meanwhile).
//!
//! # What a clean keeps (Kafka's rules)
//!
//! - A record whose key has a later record in the dirty section is dropped; keys seen
//!   only in already-clean segments stay. Offsets never change: gaps are normal and reads
//!   step over them.
//! - Records without a key are dropped (a compacted log refuses them at append, see
//!   [`crate::RecordErrorReason::MissingKey`]; older ones may predate the policy).
//! - Tombstones (null value): the first clean that keeps one stamps its batch with a
//!   delete horizon `now + delete.retention.ms` (KIP-534: attribute bit 6, horizon in
//!   `baseTimestamp`); a later clean past the horizon drops it.
//! - A batch that keeps every record and needs no horizon is copied byte for byte. One
//!   that loses records is re-encoded with its own header: base offset, `lastOffsetDelta`,
//!   leader epoch, producer id/epoch/base sequence, transactional bit and codec.
//! - The last batch of each producer the log knows is kept even when all its records go
//!   (as an empty batch), so the producer's sequence survives a restart that rebuilds
//!   producer state from batch headers.
//! - Records of aborted transactions are dropped, and never enter the key map: an
//!   aborted write must not supersede an earlier committed value of its key. A batch is
//!   aborted when it is transactional and lies within `[first offset, marker offset]` of
//!   one of its producer's `.txnindex` entries (the plan collects those overlapping the
//!   cleaned range, so no ordered walk is needed).
//! - Control batches (transaction markers) are kept as they are, with the `.txnindex`
//!   entries of their segment. Kafka also removes markers of finished transactions after
//!   the delete horizon; Strom does not yet.
//! - A segment left with no batch is deleted (its offsets become a gap; the log start
//!   does not move, so readers positioned there continue with the next batch).
//!
//! # Crash safety of the swap
//!
//! Per segment, after the `.cleaned` files are complete and fsynced: rename them to
//! `.swap` (complete, not yet live); delete the old `.index`/`.timeindex`/`.txnindex`; rename
//! `<base>.log.swap` over `<base>.log` (the commit point: a `rename` is atomic); rename
//! the index swaps into place; fsync the directory. On open, every `.cleaned` and `.swap`
//! file is deleted and a segment without index files gets them rebuilt, so a crash at any
//! step leaves either the old or the new segment, never a mix. Segments are rewritten one
//! for one (Kafka also merges small neighbours; Strom does not yet), which is why no
//! `.swap` ever needs completing on open.
//!
//! A failed swap step (I/O error) fences the log: memory and disk may disagree until the
//! log is reopened and recovered.

mod build;
mod encode;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::StorageError;
use crate::files::{self, offset_file, INDEX_SUFFIXES, LOG_SUFFIX};
use crate::index::AbortedTxnEntry;
use crate::log::PartitionLog;
use crate::segment::Segment;

/// File in the partition directory holding the first dirty offset (i64 + CRC-32C): every
/// offset below it has been cleaned at least once.
pub(crate) const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// Suffix of a cleaned segment's files while they are written.
const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment's files once complete and fsynced, before they go live.
const SWAP_SUFFIX: &str = ".swap";

/// Default budget of the key map (`log.cleaner.dedupe.buffer.size` is 128 MiB in Kafka,
/// shared by its cleaner threads; Strom runs one clean at a time).
pub const CLEANER_MAP_BYTES_DEFAULT: usize = 64 * 1024 * 1024;

/// Bytes a key map entry costs beyond the key itself (hash table slot, `Bytes` header,
/// offset), for the budget.
const MAP_ENTRY_OVERHEAD_BYTES: usize = 64;

/// One sealed segment as the plan saw it.
#[derive(Clone)]
pub(crate) struct SegmentSnapshot {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size_bytes: u64,
    pub file: Arc<File>,
    pub path: PathBuf,
    /// The segment's `.txnindex` entries, copied into its cleaned version (every control
    /// batch survives a clean, so every entry still names a marker in it).
    pub aborted: Vec<AbortedTxnEntry>,
}

/// What [`PartitionLog::plan_clean`] decided; build it with [`CleanPlan::build`] without
/// holding the log's lock.
pub struct CleanPlan {
    pub(crate) dir: PathBuf,
    pub(crate) segments: Vec<SegmentSnapshot>,
    /// Offsets below this were cleaned before; the key map covers the rest.
    pub(crate) first_dirty_offset: i64,
    /// Producer id -> last offset of its newest batch: those batches are always kept.
    pub(crate) producer_last_offsets: HashMap<i64, i64>,
    /// Producer id -> (first offset, marker offset) of its aborted transactions that
    /// overlap the planned segments, sorted: their records are dropped.
    pub(crate) aborted_ranges: HashMap<i64, Vec<(i64, i64)>>,
    pub(crate) now_ms: i64,
    pub(crate) delete_retention_ms: i64,
    pub(crate) index_bytes: u32,
    pub(crate) index_interval_bytes: u32,
    /// Dirty bytes / cleanable bytes when planned (for logs and metrics).
    pub dirty_ratio: f64,
    /// Bytes of the planned segments.
    pub cleanable_bytes: u64,
}

/// What one planned segment became.
pub(crate) enum CleanedSegment {
    /// Nothing to drop and no tombstone to stamp: left as it is.
    Unchanged,
    /// Every batch was dropped: delete the segment.
    Empty { original: SegmentIdentity },
    /// Rewritten into `<base>.*.cleaned` files.
    Rewritten { original: SegmentIdentity },
}

/// How to recognise that a segment did not change between plan and install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentIdentity {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size_bytes: u64,
}

/// The result of [`CleanPlan::build`]; swap it in with [`PartitionLog::install_cleaned`].
pub struct CleanedLog {
    pub(crate) dir: PathBuf,
    pub(crate) segments: Vec<CleanedSegment>,
    /// The key map covered the dirty section up to here.
    pub(crate) cleaned_up_to_offset: i64,
    pub(crate) stats: CleanStats,
}

impl CleanedLog {
    pub fn stats(&self) -> &CleanStats {
        &self.stats
    }

    /// Removes the `.cleaned` files of a build that will not be installed.
    pub fn discard(self) {
        for segment in &self.segments {
            if let CleanedSegment::Rewritten { original } = segment {
                remove_suffixed(&self.dir, original.base_offset, CLEANED_SUFFIX);
            }
        }
    }
}

/// Counters of one clean.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub segments_planned: usize,
    pub segments_rewritten: usize,
    pub segments_deleted: usize,
    pub bytes_read: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_read: u64,
    pub records_removed: u64,
    pub tombstones_removed: u64,
    /// Unique keys in the map.
    pub keys: u64,
    /// Earliest delete horizon of the tombstones kept: a clean after it removes them.
    pub earliest_delete_horizon_ms: Option<i64>,
}

/// Result of [`PartitionLog::install_cleaned`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanOutcome {
    pub stats: CleanStats,
    /// Segments skipped because they changed after the plan (deleted by retention, ...).
    pub segments_skipped: usize,
    pub first_dirty_offset: i64,
    pub log_start_offset: i64,
}

/// Paces the cleaner's I/O to `log.cleaner.io.max.bytes.per.second`.
pub struct Throttle {
    bytes_per_second: f64,
    started: Instant,
    bytes: u64,
    /// Set by the owner to abandon a build (shutdown): checked between batches and while
    /// pacing, so a slow, throttled clean never holds up a stop.
    cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Throttle {
    /// `bytes_per_second` <= 0 or infinite: no limit.
    pub fn new(bytes_per_second: f64) -> Throttle {
        Throttle {
            bytes_per_second,
            started: Instant::now(),
            bytes: 0,
            cancel: None,
        }
    }

    /// A build paced by this throttle stops with an `Interrupted` I/O error once `cancel`
    /// is set.
    pub fn with_cancel(mut self, cancel: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.cancel = Some(cancel);
        self
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn unlimited() -> Throttle {
        Throttle::new(f64::INFINITY)
    }

    /// Accounts for `bytes` of I/O and sleeps until the average rate is back under the
    /// limit (at most one second per call, so a huge limit change cannot stall it).
    pub fn consume(&mut self, bytes: u64) {
        self.bytes += bytes;
        if !(self.bytes_per_second.is_finite() && self.bytes_per_second > 0.0) {
            return;
        }
        let due = Duration::from_secs_f64(self.bytes as f64 / self.bytes_per_second);
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let elapsed = self.started.elapsed();
            if due <= elapsed || Instant::now() >= deadline || self.is_cancelled() {
                break;
            }
            std::thread::sleep((due - elapsed).min(Duration::from_millis(50)));
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Test-only failure injection: the swap step (1-4) that fails with an I/O error.
    pub(crate) static FAIL_SWAP_AT_STEP: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

fn maybe_fail(step: u8, dir: &Path) -> Result<(), StorageError> {
    #[cfg(test)]
    if FAIL_SWAP_AT_STEP.with(|cell| cell.get()) == step {
        return Err(StorageError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other(format!("injected failure at swap step {step}")),
        });
    }
    let _ = (step, dir);
    Ok(())
}

pub(crate) fn suffixed(dir: &Path, base: i64, suffix: &str, extra: &str) -> PathBuf {
    offset_file(dir, base, &format!("{suffix}{extra}"))
}

fn remove_suffixed(dir: &Path, base: i64, extra: &str) {
    let _ = files::remove_if_exists(&suffixed(dir, base, LOG_SUFFIX, extra));
    for suffix in INDEX_SUFFIXES {
        let _ = files::remove_if_exists(&suffixed(dir, base, suffix, extra));
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), StorageError> {
    std::fs::rename(from, to).map_err(StorageError::io(from))
}

impl PartitionLog {
    /// Decides whether the log needs cleaning now and snapshots what to clean; `None` when
    /// the log is not compacted, has nothing sealed and old enough, or is not dirty enough.
    /// `upper_bound_offset`: nothing at or above it is cleaned (the high watermark).
    /// `force` ignores the dirty ratio (an operator's or a test's request).
    pub fn plan_clean(
        &self,
        now_ms: i64,
        upper_bound_offset: i64,
        force: bool,
    ) -> Result<Option<CleanPlan>, StorageError> {
        self.check_not_fenced()?;
        if !self.config.cleanup_compact {
            return Ok(None);
        }
        let active_base = self.active().base_offset();
        // Never clean an undecided transaction: whether its records stay depends on the
        // marker still to come (Kafka stops at the first unstable offset too).
        let upper = upper_bound_offset
            .min(active_base)
            .min(self.first_unstable_offset().unwrap_or(i64::MAX));
        let lag_cutoff_ms = now_ms.saturating_sub(self.config.min_compaction_lag_ms);
        let mut segments = Vec::new();
        for segment in self.segments.values() {
            if segment.base_offset() >= active_base || segment.next_offset() > upper {
                break;
            }
            if self.config.min_compaction_lag_ms > 0 && segment.max_timestamp_ms() > lag_cutoff_ms {
                break;
            }
            segments.push(SegmentSnapshot {
                base_offset: segment.base_offset(),
                next_offset: segment.next_offset(),
                size_bytes: segment.size_bytes(),
                file: segment.log_file()?,
                path: segment.log_path().to_path_buf(),
                aborted: if segment.has_aborted() {
                    segment.aborted_from(segment.base_offset())?
                } else {
                    Vec::new()
                },
            });
        }
        let Some(first) = segments.first() else {
            return Ok(None);
        };
        let checkpoint =
            files::read_offset_checkpoint(&self.dir.join(CLEANER_CHECKPOINT_FILE)).unwrap_or(None);
        let first_dirty_offset = checkpoint
            .unwrap_or(first.base_offset)
            .max(first.base_offset)
            .max(self.log_start_offset.min(first.next_offset));
        let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
        let mut first_dirty_timestamp_ms = -1;
        for snapshot in &segments {
            if snapshot.next_offset <= first_dirty_offset {
                clean_bytes += snapshot.size_bytes;
            } else {
                if dirty_bytes == 0 {
                    first_dirty_timestamp_ms =
                        self.segments[&snapshot.base_offset].first_batch_timestamp_ms();
                }
                dirty_bytes += snapshot.size_bytes;
            }
        }
        // KIP-534: a log whose kept tombstones passed their horizon is cleaned even with
        // nothing dirty (the horizon is remembered in memory only: after a restart the next
        // dirty clean finds and removes them).
        let horizon_passed = self.tombstone_horizon_ms.is_some_and(|h| now_ms >= h);
        if dirty_bytes == 0 && !force && !horizon_passed {
            return Ok(None);
        }
        let dirty_ratio = dirty_bytes as f64 / (clean_bytes + dirty_bytes) as f64;
        let overdue = self.config.max_compaction_lag_ms < i64::MAX
            && first_dirty_timestamp_ms >= 0
            && now_ms.saturating_sub(first_dirty_timestamp_ms) > self.config.max_compaction_lag_ms;
        if !force
            && !overdue
            && !horizon_passed
            && dirty_ratio < self.config.min_cleanable_dirty_ratio
        {
            return Ok(None);
        }
        let mut producer_last_offsets = HashMap::new();
        for (producer_id, last_offset) in self.producers.last_batch_offsets() {
            producer_last_offsets.insert(producer_id, last_offset);
        }
        let planned_end = segments.last().expect("non-empty").next_offset;
        let mut aborted_ranges: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for entry in self.aborted_entries(first.base_offset, planned_end)? {
            aborted_ranges
                .entry(entry.producer_id)
                .or_default()
                .push((entry.first_offset, entry.last_offset));
        }
        for ranges in aborted_ranges.values_mut() {
            ranges.sort_unstable();
        }
        Ok(Some(CleanPlan {
            dir: self.dir.clone(),
            cleanable_bytes: clean_bytes + dirty_bytes,
            segments,
            first_dirty_offset,
            producer_last_offsets,
            aborted_ranges,
            now_ms,
            delete_retention_ms: self.config.delete_retention_ms,
            index_bytes: self.config.segment_index_bytes,
            index_interval_bytes: self.config.index_interval_bytes,
            dirty_ratio,
        }))
    }

    /// Swaps cleaned segments in (see the module docs for the crash-safe order) and moves
    /// the cleaner checkpoint. Segments that changed since the plan are skipped and their
    /// cleaned files removed.
    pub fn install_cleaned(&mut self, cleaned: CleanedLog) -> Result<CleanOutcome, StorageError> {
        if let Err(error) = self.check_not_fenced() {
            cleaned.discard();
            return Err(error);
        }
        assert_eq!(cleaned.dir, self.dir, "cleaned files belong to this log");
        let mut outcome = CleanOutcome {
            stats: cleaned.stats,
            segments_skipped: 0,
            first_dirty_offset: cleaned.cleaned_up_to_offset,
            log_start_offset: self.log_start_offset,
        };
        let active_base = self.active().base_offset();
        let mut segments = cleaned.segments.into_iter();
        while let Some(segment) = segments.next() {
            let original = match &segment {
                CleanedSegment::Unchanged => continue,
                CleanedSegment::Empty { original } | CleanedSegment::Rewritten { original } => {
                    *original
                }
            };
            let unchanged = self.segments.get(&original.base_offset).is_some_and(|s| {
                s.next_offset() == original.next_offset
                    && s.size_bytes() == original.size_bytes
                    && s.base_offset() < active_base
            }) && original.next_offset > self.log_start_offset;
            if !unchanged {
                remove_suffixed(&self.dir, original.base_offset, CLEANED_SUFFIX);
                outcome.segments_skipped += 1;
                continue;
            }
            let result = match segment {
                CleanedSegment::Empty { .. } => self.delete_cleaned_away(original.base_offset),
                CleanedSegment::Rewritten { .. } => self.swap_in(original.base_offset),
                CleanedSegment::Unchanged => unreachable!(),
            };
            if let Err(error) = result {
                tracing::error!(dir = %self.dir.display(), %error, "swapping in a cleaned segment failed; fencing the log");
                self.fenced = true;
                for rest in segments.by_ref() {
                    if let CleanedSegment::Rewritten { original } = rest {
                        remove_suffixed(&self.dir, original.base_offset, CLEANED_SUFFIX);
                    }
                }
                return Err(error);
            }
        }
        files::write_offset_checkpoint(
            &self.dir.join(CLEANER_CHECKPOINT_FILE),
            cleaned.cleaned_up_to_offset,
        )?;
        self.tombstone_horizon_ms = cleaned.stats.earliest_delete_horizon_ms;
        outcome.log_start_offset = self.log_start_offset;
        self.check_invariants();
        Ok(outcome)
    }

    fn swap_in(&mut self, base: i64) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        for kind in std::iter::once(LOG_SUFFIX).chain(INDEX_SUFFIXES) {
            rename(
                &suffixed(&dir, base, kind, CLEANED_SUFFIX),
                &suffixed(&dir, base, kind, SWAP_SUFFIX),
            )?;
        }
        files::fsync_dir(&dir)?;
        maybe_fail(1, &dir)?;
        // Without its indexes the old log is still whole: a crash from here until the
        // log rename reopens the old segment and rebuilds its indexes (the `.txnindex`
        // by replaying the log, like any missing one).
        for kind in INDEX_SUFFIXES {
            files::remove_if_exists(&offset_file(&dir, base, kind))?;
        }
        maybe_fail(2, &dir)?;
        rename(
            &suffixed(&dir, base, LOG_SUFFIX, SWAP_SUFFIX),
            &offset_file(&dir, base, LOG_SUFFIX),
        )?;
        maybe_fail(3, &dir)?;
        for kind in INDEX_SUFFIXES {
            rename(
                &suffixed(&dir, base, kind, SWAP_SUFFIX),
                &offset_file(&dir, base, kind),
            )?;
        }
        files::fsync_dir(&dir)?;
        maybe_fail(4, &dir)?;
        let (segment, truncation) = Segment::open(
            &dir,
            base,
            self.config.segment_index_bytes,
            self.config.index_interval_bytes,
            false,
            false,
            0,
        )?;
        assert!(truncation.is_none(), "a cleaned segment is whole");
        // The old `Segment` goes; readers holding its `Arc<File>` keep the unlinked file.
        self.segments.insert(base, segment);
        Ok(())
    }

    fn delete_cleaned_away(&mut self, base: i64) -> Result<(), StorageError> {
        // The log start stays where it is even when the first segment goes: its offsets
        // become a gap like any other, and a consumer positioned there reads on from the
        // next batch instead of getting OFFSET_OUT_OF_RANGE. (On the next open the log
        // start becomes the first segment's base, as Kafka's does.)
        let segment = self.segments.remove(&base).expect("checked present");
        tracing::debug!(segment = %segment.log_path().display(), "cleaning left no batch; deleting the segment");
        // The log file first: orphan indexes are removed on open.
        segment.delete_files()
    }

    /// Plans, builds and installs in one call, holding `&mut self` throughout: for tests
    /// and tools. The broker uses the three steps so appends continue meanwhile.
    pub fn clean(
        &mut self,
        now_ms: i64,
        force: bool,
        throttle: &mut Throttle,
    ) -> Result<Option<CleanOutcome>, StorageError> {
        let Some(plan) = self.plan_clean(now_ms, i64::MAX, force)? else {
            return Ok(None);
        };
        let cleaned = plan.build(throttle, CLEANER_MAP_BYTES_DEFAULT)?;
        self.install_cleaned(cleaned).map(Some)
    }

    /// After a truncation: a cleaner checkpoint past the new log end would mark the
    /// batches written there as clean; pull it back to the end.
    pub(crate) fn clamp_cleaner_checkpoint(&self, log_end: i64) -> Result<(), StorageError> {
        let path = self.dir.join(CLEANER_CHECKPOINT_FILE);
        match files::read_offset_checkpoint(&path) {
            Ok(Some(offset)) if offset > log_end => files::write_offset_checkpoint(&path, log_end),
            _ => Ok(()),
        }
    }

    /// The first dirty offset recorded by the last clean, if any.
    pub fn cleaner_checkpoint(&self) -> Option<i64> {
        files::read_offset_checkpoint(&self.dir.join(CLEANER_CHECKPOINT_FILE)).unwrap_or(None)
    }
}
