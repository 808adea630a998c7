//! The leader-epoch cache: for each leader epoch, the first offset written in it. Kept in
//! `leader-epoch-checkpoint` in Kafka's text format (`0\n<count>\n<epoch> <offset>\n...`),
//! rewritten atomically whenever it changes.

use std::path::{Path, PathBuf};

use crate::error::StorageError;
use crate::files;

/// Entries kept at most. Epochs grow by one per leader change, so this is decades of
/// elections; beyond it the oldest entries are dropped.
const EPOCH_ENTRIES_MAX: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

pub(crate) struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the checkpoint in `dir`; a missing file is an empty cache. A damaged one is
    /// an empty cache too, with `true` returned: the caller rebuilds it from the batch
    /// headers, which carry each batch's leader epoch.
    pub fn load(dir: &Path) -> Result<(LeaderEpochCache, bool), StorageError> {
        let path = dir.join(files::LEADER_EPOCH_CHECKPOINT_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let cache = LeaderEpochCache {
                    path,
                    entries: Vec::new(),
                };
                return Ok((cache, false));
            }
            Err(error) => {
                return Err(StorageError::Io {
                    path,
                    source: error,
                })
            }
        };
        match std::str::from_utf8(&bytes).ok().and_then(parse) {
            Some(entries) => Ok((LeaderEpochCache { path, entries }, false)),
            None => {
                tracing::warn!(
                    checkpoint = %path.display(),
                    "leader epoch checkpoint does not parse; rebuilding it from the log"
                );
                let cache = LeaderEpochCache {
                    path,
                    entries: Vec::new(),
                };
                Ok((cache, true))
            }
        }
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset` if it is newer than the latest.
    /// Returns whether the cache changed (then the caller persists it).
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return false;
        }
        if let Some(last) = self.entries.last() {
            if start_offset < last.start_offset {
                // Only possible from inconsistent data on disk; the append path always
                // assigns at the log end, which never precedes a known epoch start.
                tracing::warn!(
                    epoch,
                    start_offset,
                    latest_epoch = last.epoch,
                    latest_start_offset = last.start_offset,
                    "ignoring a leader epoch that starts before the latest one"
                );
                return false;
            }
        }
        if self.entries.len() == EPOCH_ENTRIES_MAX {
            self.entries.remove(0);
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Kafka's `endOffsetFor`: `(largest epoch <= requested, first offset of the next
    /// epoch)`, or the log end for the latest epoch. A request below the first known epoch
    /// answers `(requested, first epoch's start)`; above the latest, or an empty cache,
    /// answers `None` (UNDEFINED_EPOCH).
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        let latest = self.latest_epoch()?;
        if requested < 0 {
            return None;
        }
        if requested == latest {
            return Some((latest, log_end_offset));
        }
        let higher = self.entries.partition_point(|e| e.epoch <= requested);
        let next = self.entries.get(higher)?;
        match higher {
            0 => Some((requested, next.start_offset)),
            n => Some((self.entries[n - 1].epoch, next.start_offset)),
        }
    }

    /// Undoes the latest [`LeaderEpochCache::assign`] (its checkpoint write failed).
    pub fn remove_latest(&mut self) {
        self.entries.pop();
    }

    /// Forgets every epoch (the log was emptied).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Drops epochs that start at or after `end_offset` (the log was cut there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// Drops epochs wholly below `start_offset`; the one in force there is kept, moved up
    /// to start at `start_offset`.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let below = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if below == 0 {
            return false;
        }
        let mut changed = below > 1;
        self.entries.drain(..below - 1);
        if self.entries[0].start_offset != start_offset {
            self.entries[0].start_offset = start_offset;
            changed = true;
        }
        changed
    }

    /// Writes the checkpoint atomically.
    pub fn persist(&self) -> Result<(), StorageError> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for entry in &self.entries {
            text.push_str(&format!("{} {}\n", entry.epoch, entry.start_offset));
        }
        files::write_atomically(&self.path, text.as_bytes())
    }
}

fn parse(text: &str) -> Option<Vec<EpochEntry>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    if count > EPOCH_ENTRIES_MAX {
        return None;
    }
    let mut entries: Vec<EpochEntry> = Vec::with_capacity(count);
    for _ in 0..count {
        let mut fields = lines.next()?.split_whitespace();
        let entry = EpochEntry {
            epoch: fields.next()?.parse().ok()?,
            start_offset: fields.next()?.parse().ok()?,
        };
        if let Some(last) = entries.last() {
            if entry.epoch <= last.epoch || entry.start_offset < last.start_offset {
                return None;
            }
        }
        entries.push(entry);
    }
    Some(entries)
}
