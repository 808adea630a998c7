//! [`PartitionLog`]: the segments of one partition, opened with crash recovery, plus the
//! checkpoints around them (log start, recovery point, leader epochs, producer state).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::LogConfig;
use crate::durability::SyncQueue;
use crate::error::StorageError;
use crate::files::{self, offset_file, LOG_SUFFIX};
use crate::leader_epoch::LeaderEpochCache;
use crate::producer_state::{self, ProducerStateTable};
use crate::segment::Segment;
use crate::transactions::{decode_marker, is_abort, stored_batch_update};

/// Producer snapshots kept on disk; older ones are deleted at each roll.
const SNAPSHOTS_KEPT: usize = 3;

/// The log of one partition replica: an ordered set of segments, the newest of which (the
/// active segment) takes appends. Not thread-safe by itself: the broker wraps it in a lock,
/// and readers copy out a [`crate::FileRange`] whose `Arc<File>` outlives the lock.
pub struct PartitionLog {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    /// Segments by base offset; never empty; only the last one is written.
    pub(crate) segments: BTreeMap<i64, Segment>,
    pub(crate) log_start_offset: i64,
    pub(crate) producers: ProducerStateTable,
    pub(crate) epochs: LeaderEpochCache,
    /// Every offset below this is fsynced; recovery scans only what lies above.
    pub(crate) recovery_point: i64,
    pub(crate) unflushed_messages: i64,
    pub(crate) last_flush_ms: i64,
    /// Set after a write failed half-way; every later write is refused.
    pub(crate) fenced: bool,
    /// Earliest delete horizon of tombstones the last clean kept (memory only).
    pub(crate) tombstone_horizon_ms: Option<i64>,
    /// Rolled segments whose fsync the background has not done yet.
    pub(crate) sync_queue: SyncQueue,
}

impl PartitionLog {
    /// Opens or creates the log in `dir` (e.g. `data/topic-0`), recovering after a crash.
    ///
    /// Without a clean-shutdown marker, every segment holding offsets at or above the
    /// recovery point is checked batch by batch (framing, CRC-32C, increasing offsets);
    /// the first torn or corrupt batch and everything after it is cut off, and the indexes
    /// of those segments are rebuilt. Damaged or missing index files of other segments are
    /// rebuilt too. Stray `.deleted`/`.cleaned`/`.swap`/`.tmp` files are removed. Producer
    /// state is loaded from the newest valid snapshot and brought up to date by replaying
    /// batch headers after it.
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<PartitionLog, StorageError> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(StorageError::io(dir))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                files::fsync_dir(parent)?;
            }
        }
        let marker = dir.join(files::CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        let bases = clean_directory(dir)?;

        let log_start_checkpoint =
            read_checkpoint_leniently(&dir.join(files::LOG_START_OFFSET_FILE))?;
        let recovery_point = if clean {
            i64::MAX
        } else {
            read_checkpoint_leniently(&dir.join(files::RECOVERY_POINT_FILE))?.unwrap_or(0)
        };

        let mut segments = BTreeMap::new();
        let mut recovered_any = false;
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            let recover = !clean && next_base.is_none_or(|next| next > recovery_point);
            let (segment, truncation) = Segment::open(
                dir,
                base,
                config.segment_index_bytes,
                config.index_interval_bytes,
                recover,
                next_base.is_none(),
                now_ms,
            )?;
            if recover || truncation.is_some() {
                // Recovery vouched for these bytes; make sure they are on disk before the
                // recovery point moves past them.
                segment.sync()?;
                segment.close_files();
                recovered_any = true;
            }
            if let Some((_, previous)) = segments.last_key_value() {
                let previous: &Segment = previous;
                if previous.next_offset() > base {
                    return Err(StorageError::CorruptSegment {
                        path: segment.log_path().to_path_buf(),
                        position_bytes: 0,
                        reason: "segment overlaps the offsets of the previous segment",
                    });
                }
            }
            segments.insert(base, segment);
            if truncation.is_some() && next_base.is_some() {
                // Kafka's rule: data after a corrupt batch cannot be trusted to follow it.
                for &later in &bases[i + 1..] {
                    tracing::warn!(
                        segment = %offset_file(dir, later, LOG_SUFFIX).display(),
                        "deleting a segment that follows a corrupt one"
                    );
                    delete_segment_files(dir, later)?;
                }
                break;
            }
        }
        if let Some(mut last) = segments.last_entry() {
            // A corrupt segment may have ended the scan early and become the active one.
            last.get_mut().set_active(true)?;
        }
        if segments.is_empty() {
            let base = log_start_checkpoint.unwrap_or(0);
            segments.insert(
                base,
                Segment::create(dir, base, config.segment_index_bytes, now_ms)?,
            );
            files::fsync_dir(dir)?;
        }

        let (epochs, epochs_damaged) = LeaderEpochCache::load(dir)?;
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset: 0,
            producers: ProducerStateTable::default(),
            epochs,
            recovery_point: 0,
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            fenced: false,
            tombstone_horizon_ms: None,
            sync_queue: SyncQueue::default(),
        };
        log.settle_log_start(log_start_checkpoint)?;
        let log_end = log.log_end_offset();
        if epochs_damaged {
            log.rebuild_epochs_from_log()?;
        }
        let mut epochs_changed = epochs_damaged | log.epochs.truncate_from_end(log_end);
        epochs_changed |= log.epochs.truncate_from_start(log.log_start_offset);
        epochs_changed |= log.rebuild_producer_state(now_ms)?;
        if epochs_changed {
            log.epochs.persist()?;
        }
        if recovered_any || !clean {
            // What recovery validated is only in the page cache; make it durable once so
            // the next crash need not scan it again.
            log.flush()?;
            // The flush opened the active segment's files: an idle partition keeps none.
            log.active().close_files();
        } else {
            log.recovery_point = log_end;
        }
        files::remove_if_exists(&marker)?;
        files::fsync_dir(dir)?;
        log.check_invariants();
        Ok(log)
    }

    /// Fixes the log start from its checkpoint and the first segment, deleting segments
    /// that lie wholly below it (a crash between checkpoint and deletion leaves them).
    fn settle_log_start(&mut self, checkpoint: Option<i64>) -> Result<(), StorageError> {
        let first_base = *self.segments.keys().next().expect("never empty");
        let mut log_start = checkpoint.unwrap_or(first_base).max(first_base);
        let log_end = self.log_end_offset();
        if log_start > log_end {
            tracing::warn!(
                dir = %self.dir.display(),
                log_start,
                log_end,
                "log start checkpoint is past the log end; using the log end"
            );
            log_start = log_end;
        }
        while self.segments.len() > 1 {
            let mut keys = self.segments.keys();
            let first = *keys.next().expect("len > 1");
            let second = *keys.next().expect("len > 1");
            if second > log_start {
                break;
            }
            let segment = self.segments.remove(&first).expect("present");
            segment.delete_files()?;
        }
        self.log_start_offset = log_start;
        Ok(())
    }

    /// Rebuilds the leader-epoch cache from every batch header in the log.
    fn rebuild_epochs_from_log(&mut self) -> Result<(), StorageError> {
        for segment in self.segments.values() {
            let mut scanner = segment.scanner_from(self.log_start_offset)?;
            while let Some((_, header)) = scanner.next_header()? {
                self.epochs
                    .assign(header.partition_leader_epoch, header.base_offset);
            }
        }
        Ok(())
    }

    /// Loads the newest snapshot and replays batch headers after it (records only of
    /// control batches, for the marker type). Segments whose `.txnindex` must be rebuilt
    /// (recovered, or the file missing or damaged) are replayed from their start at the
    /// latest, and every ABORT marker found in them is recorded again. Returns whether the
    /// leader-epoch cache learned epochs from the replayed batches.
    pub(crate) fn rebuild_producer_state(&mut self, now_ms: i64) -> Result<bool, StorageError> {
        let log_end = self.log_end_offset();
        let replay_from_at_most = self
            .segments
            .values()
            .filter(|segment| segment.txn_index_needs_rebuild())
            .map(Segment::base_offset)
            .fold(log_end, i64::min);
        let (snapshot_offset, table) = match producer_state::load_latest_snapshot(
            &self.dir,
            log_end,
            replay_from_at_most,
            now_ms,
        )? {
            Some((offset, table)) => (offset, table),
            None => (self.log_start_offset, ProducerStateTable::default()),
        };
        self.producers = table;
        let from = snapshot_offset.max(self.log_start_offset);
        let mut epochs_changed = false;
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for base in bases {
            let segment = &self.segments[&base];
            if segment.next_offset() <= from {
                continue;
            }
            let rebuild = segment.txn_index_needs_rebuild();
            let mut aborted = Vec::new();
            let mut scanner = segment.scanner_from(from)?;
            while let Some((position, header)) = scanner.next_header()? {
                if header.last_offset() < from {
                    continue;
                }
                epochs_changed |= self
                    .epochs
                    .assign(header.partition_leader_epoch, header.base_offset);
                let marker = if header.is_control() && header.producer_id >= 0 {
                    decode_marker(&segment.read_batch(position, &header)?)
                } else {
                    None
                };
                let Some((update, batch)) = stored_batch_update(&header, marker) else {
                    continue;
                };
                let completed = self.producers.apply(&update, batch, now_ms);
                if let Some(completed) = completed.filter(|_| rebuild && is_abort(update.kind)) {
                    aborted.push(completed.index_entry());
                }
            }
            let segment = self.segments.get_mut(&base).expect("listed above");
            for entry in aborted {
                segment.append_aborted(entry)?;
            }
        }
        for segment in self.segments.values_mut() {
            if segment.txn_index_needs_rebuild() {
                segment.txn_index_rebuilt()?;
            }
        }
        Ok(epochs_changed)
    }

    /// The segment holding `offset` (the first one when it lies below them all) and
    /// every later segment.
    pub(crate) fn segments_from(&self, offset: i64) -> impl Iterator<Item = &Segment> {
        let first_key = self
            .segments
            .range(..=offset)
            .next_back()
            .map(|(&base, _)| base)
            .unwrap_or_else(|| *self.segments.keys().next().expect("never empty"));
        self.segments.range(first_key..).map(|(_, segment)| segment)
    }

    pub(crate) fn active(&self) -> &Segment {
        self.segments.values().next_back().expect("never empty")
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment {
        self.segments.values_mut().next_back().expect("never empty")
    }

    pub(crate) fn check_not_fenced(&self) -> Result<(), StorageError> {
        if self.fenced {
            return Err(StorageError::Fenced {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the log end, without an fsync:
    /// the sealed segment, the producer snapshot and the directory are synced later by
    /// the background ([`crate::PendingSync`]), as Kafka flushes rolled segments
    /// asynchronously, and the recovery point moves past the segment only then. Nothing
    /// here grows with the segment's size.
    pub(crate) fn roll(&mut self, now_ms: i64) -> Result<(), StorageError> {
        self.roll_at(self.log_end_offset(), now_ms)
    }

    /// [`PartitionLog::roll`] with the new segment starting at `new_base` (a follower's
    /// next batch may start after a gap that compaction left in the leader's log).
    pub(crate) fn roll_at(&mut self, new_base: i64, now_ms: i64) -> Result<(), StorageError> {
        assert!(
            new_base >= self.log_end_offset(),
            "a new segment starts at the log end"
        );
        let active = self.active_mut();
        assert!(!active.is_empty(), "never roll an empty segment");
        assert!(new_base > active.base_offset());
        active.seal_unsynced()?;
        let mut unsynced = active.unsynced_files()?;
        // The background fsync holds its own handles; reads reopen the sealed files.
        active.close_files();
        unsynced.push(
            self.producers
                .write_snapshot_unsynced(&self.dir, new_base)?,
        );
        producer_state::prune_snapshots(&self.dir, SNAPSHOTS_KEPT)?;
        let segment =
            Segment::create(&self.dir, new_base, self.config.segment_index_bytes, now_ms)?;
        self.segments.insert(new_base, segment);
        self.queue_unsynced_seal(new_base, unsynced);
        tracing::debug!(dir = %self.dir.display(), base_offset = new_base, "rolled segment");
        Ok(())
    }

    /// Asserts what must always hold between segments and offsets.
    pub(crate) fn check_invariants(&self) {
        assert!(!self.segments.is_empty(), "a log always has a segment");
        let mut previous_next = i64::MIN;
        for (&base, segment) in &self.segments {
            assert_eq!(base, segment.base_offset());
            assert!(base >= previous_next, "segments overlap at {base}");
            assert!(segment.next_offset() >= base);
            assert!(
                !segment.txn_index_needs_rebuild(),
                "the txnindex of segment {base} was left unrebuilt"
            );
            previous_next = segment.next_offset();
        }
        assert!(self.log_start_offset <= self.log_end_offset());
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record gets: the last record's offset + 1.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// Bytes of all segment files (indexes not counted, as Kafka's `size`).
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size_bytes).sum()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// OffsetForLeaderEpoch: `(largest epoch <= leader_epoch, end offset of that epoch)`,
    /// as Kafka's leader-epoch cache answers; `None` when unknown (UNDEFINED_EPOCH).
    pub fn end_offset_for_epoch(&self, leader_epoch: i32) -> Option<(i32, i64)> {
        self.epochs
            .end_offset_for(leader_epoch, self.log_end_offset())
    }

    /// The newest leader epoch that wrote to this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// Flushes if `flush.messages` or `flush.ms` say so; [`PartitionLog::flush`] forces it.
    pub fn maybe_flush(&mut self, now_ms: i64) -> Result<(), StorageError> {
        let due_by_messages = self.unflushed_messages >= self.config.flush_messages;
        let due_by_time = self.unflushed_messages > 0
            && now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms;
        if due_by_messages || due_by_time {
            self.flush()?;
            self.last_flush_ms = now_ms;
        }
        Ok(())
    }

    /// fsyncs the active segment and its indexes, and any rolled segment the background
    /// has not synced yet, and moves the recovery point to the log end.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        self.check_not_fenced()?;
        if let Err(error) = self.sync_queued_seals().and_then(|()| self.active().sync()) {
            self.fenced = true;
            return Err(error);
        }
        let log_end = self.log_end_offset();
        if log_end != self.recovery_point {
            files::write_offset_checkpoint(&self.dir.join(files::RECOVERY_POINT_FILE), log_end)?;
        }
        self.recovery_point = log_end;
        self.unflushed_messages = 0;
        Ok(())
    }

    /// Replaces the configuration; new sizes apply to later appends and segments.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// The configuration in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Clean shutdown: flush, write a producer-state snapshot at the log end and a
    /// clean-shutdown marker so the next open skips recovery.
    pub fn close(mut self) -> Result<(), StorageError> {
        self.flush()?;
        let log_end = self.log_end_offset();
        self.producers.write_snapshot(&self.dir, log_end)?;
        producer_state::prune_snapshots(&self.dir, SNAPSHOTS_KEPT)?;
        files::write_atomically(&self.dir.join(files::CLEAN_SHUTDOWN_FILE), b"")?;
        Ok(())
    }

    /// Deletes the partition's directory and everything in it. Readers holding a
    /// [`crate::FileRange`] can still finish reading it.
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        drop(self);
        std::fs::remove_dir_all(&dir).map_err(StorageError::io(&dir))
    }
}

/// Removes stray files and orphan indexes; returns the base offsets of the `.log` files.
fn clean_directory(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut bases = Vec::new();
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(StorageError::io(dir))? {
        let entry = entry.map_err(StorageError::io(dir))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let suffix = name.rsplit('.').next().unwrap_or("");
        if files::STRAY_SUFFIXES.contains(&suffix) {
            tracing::warn!(file = %path.display(), "deleting a stray file left by a crash");
            files::remove_if_exists(&path)?;
            continue;
        }
        match files::parse_offset_file(&name) {
            Some((offset, files::LOG_SUFFIX)) => bases.push(offset),
            Some((offset, suffix)) if files::INDEX_SUFFIXES.contains(&suffix) => {
                indexes.push((offset, path))
            }
            _ => {}
        }
    }
    bases.sort_unstable();
    for (offset, path) in indexes {
        if bases.binary_search(&offset).is_err() {
            tracing::warn!(file = %path.display(), "deleting an index without a segment");
            files::remove_if_exists(&path)?;
        }
    }
    Ok(bases)
}

/// A corrupt offset checkpoint is treated as missing (with a warning): the log start then
/// falls back to the first segment, the recovery point to 0 (recover everything).
fn read_checkpoint_leniently(path: &Path) -> Result<Option<i64>, StorageError> {
    match files::read_offset_checkpoint(path) {
        Ok(value) => Ok(value),
        Err(StorageError::CorruptCheckpoint { reason, .. }) => {
            tracing::warn!(checkpoint = %path.display(), reason, "ignoring a corrupt checkpoint");
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

pub(crate) fn delete_segment_files(dir: &Path, base: i64) -> Result<(), StorageError> {
    files::remove_if_exists(&offset_file(dir, base, LOG_SUFFIX))?;
    for suffix in files::INDEX_SUFFIXES {
        files::remove_if_exists(&offset_file(dir, base, suffix))?;
    }
    Ok(())
}
