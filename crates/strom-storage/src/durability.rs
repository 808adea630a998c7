//! Rolled segments become durable off the append path.
//!
//! A roll seals the active segment and starts the next one without a single fsync: the
//! sealed segment's files (and the producer snapshot written at the roll) are queued here,
//! still open. A background task takes them with [`PartitionLog::pending_sync`], fsyncs
//! them and the directory without holding the partition's lock ([`PendingSync::sync`]),
//! and hands them back with [`PartitionLog::complete_sync`], which only then moves the
//! recovery point past them. Until that happens recovery scans the sealed segment again,
//! exactly as it would have before the roll, so nothing `flush.messages`/`flush.ms` or
//! recovery promise changes; [`PartitionLog::flush`] syncs whatever is still queued.

use std::path::PathBuf;

use crate::error::StorageError;
use crate::files::{self, UnsyncedFile};
use crate::log::PartitionLog;

/// A sealed segment whose files are not yet known to be durable.
#[derive(Debug)]
pub(crate) struct UnsyncedSeal {
    /// First offset after the sealed segment (the next segment's base): once its files
    /// are synced, the recovery point may move here.
    pub up_to: i64,
    pub files: Vec<UnsyncedFile>,
}

/// fsync work handed to a background task; see the module docs.
#[derive(Debug)]
pub struct PendingSync {
    generation: u64,
    up_to: i64,
    dir: PathBuf,
    files: Vec<UnsyncedFile>,
}

impl PendingSync {
    /// fsyncs every queued file and the partition directory (new segment files, renamed
    /// snapshots). Call without the partition's lock.
    pub fn sync(&self) -> Result<(), StorageError> {
        for file in &self.files {
            file.sync()?;
        }
        files::fsync_dir(&self.dir)
    }

    /// The recovery point this sync makes possible.
    pub fn up_to(&self) -> i64 {
        self.up_to
    }
}

/// What the log keeps about seals not yet synced.
#[derive(Debug, Default)]
pub(crate) struct SyncQueue {
    seals: Vec<UnsyncedSeal>,
    /// Bumped whenever queued seals stop describing the log (truncation, a full flush), so
    /// a sync that was in flight then moves nothing.
    generation: u64,
}

impl PartitionLog {
    /// The rolled segments not yet fsynced, for a background task; `None` when there are
    /// none. Taking them changes nothing: a crash before [`PartitionLog::complete_sync`]
    /// recovers as if they were never taken.
    pub fn pending_sync(&self) -> Option<PendingSync> {
        let last = self.sync_queue.seals.last()?;
        Some(PendingSync {
            generation: self.sync_queue.generation,
            up_to: last.up_to,
            dir: self.dir.clone(),
            files: self
                .sync_queue
                .seals
                .iter()
                .flat_map(|seal| seal.files.iter().cloned())
                .collect(),
        })
    }

    /// A [`PendingSync`] was synced: forget those seals and move the recovery point past
    /// them (unless the log was truncated or flushed meanwhile; then this changes nothing).
    pub fn complete_sync(&mut self, done: PendingSync) -> Result<(), StorageError> {
        if done.generation != self.sync_queue.generation {
            return Ok(());
        }
        self.sync_queue.seals.retain(|seal| seal.up_to > done.up_to);
        if done.up_to > self.recovery_point && done.up_to <= self.log_end_offset() {
            self.recovery_point = done.up_to;
            files::write_offset_checkpoint(&self.dir.join(files::RECOVERY_POINT_FILE), done.up_to)?;
        }
        Ok(())
    }

    /// A background fsync failed: what the page cache held may be gone, so the log
    /// refuses every later write, as after a failed flush.
    pub fn fail_sync(&mut self, error: &StorageError) {
        tracing::error!(dir = %self.dir.display(), %error, "fsync of rolled segments failed; fencing the log");
        self.fenced = true;
    }

    /// Number of rolled segments waiting for their fsync.
    pub fn unsynced_segments(&self) -> usize {
        self.sync_queue.seals.len()
    }

    /// A roll sealed a segment ending before `up_to` without syncing `files`.
    pub(crate) fn queue_unsynced_seal(&mut self, up_to: i64, files: Vec<UnsyncedFile>) {
        self.sync_queue.seals.push(UnsyncedSeal { up_to, files });
    }

    /// fsyncs every queued seal and the directory now (a flush moves the recovery point
    /// to the log end, so everything below must be durable first).
    pub(crate) fn sync_queued_seals(&mut self) -> Result<(), StorageError> {
        if self.sync_queue.seals.is_empty() {
            return Ok(());
        }
        for seal in &self.sync_queue.seals {
            for file in &seal.files {
                file.sync()?;
            }
        }
        files::fsync_dir(&self.dir)?;
        self.sync_queue.seals.clear();
        self.sync_queue.generation += 1;
        Ok(())
    }

    /// Truncation removed everything from `log_end` on: seals of removed segments go.
    pub(crate) fn forget_seals_above(&mut self, log_end: i64) {
        self.sync_queue.seals.retain(|seal| seal.up_to <= log_end);
        self.sync_queue.generation += 1;
    }
}
