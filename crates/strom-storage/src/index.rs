//! The sparse `.index` (offset -> file position) and `.timeindex` (timestamp -> offset) of a
//! segment, in Kafka's layouts: 8-byte entries (relative offset u32, position u32) and
//! 12-byte entries (timestamp i64, relative offset u32), big-endian.
//!
//! Entries live in memory (a sorted `Vec`) and are appended to the file with one positioned
//! write each (one per `index.interval.bytes` of log, so rare). Kafka mmaps preallocated
//! files instead; a plain file that only ever holds valid entries needs no trimming on
//! close and cannot expose zero-filled slots after a crash.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::StorageError;
use crate::files::open_read_write;

pub(crate) const OFFSET_INDEX_ENTRY_BYTES: u64 = 8;
pub(crate) const TIME_INDEX_ENTRY_BYTES: u64 = 12;

/// One offset index entry: the batch whose last offset is `base + relative_offset` starts
/// at `position_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position_bytes: u32,
}

/// One time index entry: up to offset `base + relative_offset` the largest timestamp is
/// `timestamp_ms`, and that offset is the last one of the batch that first reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp_ms: i64,
    pub relative_offset: u32,
}

/// Why a loaded index was thrown away and rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexDamage {
    Missing,
    PartialEntry,
    OutOfOrder,
    PastLogEnd,
}

fn read_whole(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(StorageError::Io {
            path: path.to_path_buf(),
            source: error,
        }),
    }
}

/// The `.index` file of a segment.
pub(crate) struct OffsetIndex {
    path: PathBuf,
    file: File,
    entries: Vec<OffsetEntry>,
    entries_max: usize,
}

impl OffsetIndex {
    /// Creates an empty index, replacing whatever file was there.
    pub fn create(path: PathBuf, index_bytes: u32) -> Result<Self, StorageError> {
        let file = open_read_write(&path, true)?;
        file.set_len(0).map_err(StorageError::io(&path))?;
        Ok(OffsetIndex {
            path,
            file,
            entries: Vec::new(),
            entries_max: entries_max(index_bytes, OFFSET_INDEX_ENTRY_BYTES),
        })
    }

    /// Loads the index and checks it against the log (Kafka's sanity check): whole entries,
    /// strictly increasing offsets and positions, every position inside the log.
    pub fn load(
        path: PathBuf,
        index_bytes: u32,
        log_size_bytes: u64,
    ) -> Result<Result<Self, IndexDamage>, StorageError> {
        let Some(bytes) = read_whole(&path)? else {
            return Ok(Err(IndexDamage::Missing));
        };
        if !bytes
            .chunks_exact(OFFSET_INDEX_ENTRY_BYTES as usize)
            .remainder()
            .is_empty()
        {
            return Ok(Err(IndexDamage::PartialEntry));
        }
        let mut entries = Vec::with_capacity(bytes.len() / 8);
        for chunk in bytes.chunks_exact(8) {
            let entry = OffsetEntry {
                relative_offset: u32::from_be_bytes(chunk[..4].try_into().expect("4")),
                position_bytes: u32::from_be_bytes(chunk[4..].try_into().expect("4")),
            };
            if let Some(last) = entries.last() {
                let last: &OffsetEntry = last;
                if entry.relative_offset <= last.relative_offset
                    || entry.position_bytes <= last.position_bytes
                {
                    return Ok(Err(IndexDamage::OutOfOrder));
                }
            }
            if entry.position_bytes as u64 >= log_size_bytes {
                return Ok(Err(IndexDamage::PastLogEnd));
            }
            entries.push(entry);
        }
        let file = open_read_write(&path, false)?;
        Ok(Ok(OffsetIndex {
            path,
            file,
            entries,
            entries_max: entries_max(index_bytes, OFFSET_INDEX_ENTRY_BYTES),
        }))
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.entries_max
    }

    /// Drops entries pointing at or after `position_bytes` (the log is cut there).
    pub fn truncate_to_position(&mut self, position_bytes: u64) -> Result<(), StorageError> {
        let keep = self
            .entries
            .partition_point(|e| (e.position_bytes as u64) < position_bytes);
        self.entries.truncate(keep);
        self.file
            .set_len(keep as u64 * OFFSET_INDEX_ENTRY_BYTES)
            .map_err(StorageError::io(&self.path))
    }

    #[cfg(test)]
    pub fn entries(&self) -> &[OffsetEntry] {
        &self.entries
    }

    pub fn last(&self) -> Option<OffsetEntry> {
        self.entries.last().copied()
    }

    /// Appends an entry; both fields must grow strictly.
    pub fn append(&mut self, entry: OffsetEntry) -> Result<(), StorageError> {
        if let Some(last) = self.entries.last() {
            assert!(
                entry.relative_offset > last.relative_offset
                    && entry.position_bytes > last.position_bytes,
                "offset index entries must increase: {last:?} then {entry:?}"
            );
        }
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&entry.relative_offset.to_be_bytes());
        bytes[4..].copy_from_slice(&entry.position_bytes.to_be_bytes());
        let at = self.entries.len() as u64 * OFFSET_INDEX_ENTRY_BYTES;
        self.file
            .write_all_at(&bytes, at)
            .map_err(StorageError::io(&self.path))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Position of the last entry whose offset is <= `relative_offset`, or 0 (the segment
    /// start) when there is none. The batch holding the offset starts at or after it.
    pub fn lookup(&self, relative_offset: u32) -> u64 {
        let after = self
            .entries
            .partition_point(|e| e.relative_offset <= relative_offset);
        match after {
            0 => 0,
            n => self.entries[n - 1].position_bytes as u64,
        }
    }

    pub fn sync(&self) -> Result<(), StorageError> {
        self.file.sync_data().map_err(StorageError::io(&self.path))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The `.timeindex` file of a segment.
pub(crate) struct TimeIndex {
    path: PathBuf,
    file: File,
    entries: Vec<TimeEntry>,
    entries_max: usize,
}

impl TimeIndex {
    pub fn create(path: PathBuf, index_bytes: u32) -> Result<Self, StorageError> {
        let file = open_read_write(&path, true)?;
        file.set_len(0).map_err(StorageError::io(&path))?;
        Ok(TimeIndex {
            path,
            file,
            entries: Vec::new(),
            entries_max: entries_max(index_bytes, TIME_INDEX_ENTRY_BYTES),
        })
    }

    /// Loads and sanity-checks the time index: whole entries, timestamps and offsets
    /// strictly increasing, offsets below `next_relative_offset_max` when known.
    pub fn load(
        path: PathBuf,
        index_bytes: u32,
    ) -> Result<Result<Self, IndexDamage>, StorageError> {
        let Some(bytes) = read_whole(&path)? else {
            return Ok(Err(IndexDamage::Missing));
        };
        if !bytes
            .chunks_exact(TIME_INDEX_ENTRY_BYTES as usize)
            .remainder()
            .is_empty()
        {
            return Ok(Err(IndexDamage::PartialEntry));
        }
        let mut entries: Vec<TimeEntry> = Vec::with_capacity(bytes.len() / 12);
        for chunk in bytes.chunks_exact(12) {
            let entry = TimeEntry {
                timestamp_ms: i64::from_be_bytes(chunk[..8].try_into().expect("8")),
                relative_offset: u32::from_be_bytes(chunk[8..].try_into().expect("4")),
            };
            if let Some(last) = entries.last() {
                if entry.timestamp_ms <= last.timestamp_ms
                    || entry.relative_offset < last.relative_offset
                {
                    return Ok(Err(IndexDamage::OutOfOrder));
                }
            }
            entries.push(entry);
        }
        let file = open_read_write(&path, false)?;
        Ok(Ok(TimeIndex {
            path,
            file,
            entries,
            entries_max: entries_max(index_bytes, TIME_INDEX_ENTRY_BYTES),
        }))
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.entries_max
    }

    pub fn last(&self) -> Option<TimeEntry> {
        self.entries.last().copied()
    }

    /// Drops entries whose offset is at or after `relative_offset` (the log is cut there).
    pub fn truncate_to_offset(&mut self, relative_offset: u32) -> Result<(), StorageError> {
        let keep = self
            .entries
            .partition_point(|e| e.relative_offset < relative_offset);
        self.entries.truncate(keep);
        self.file
            .set_len(keep as u64 * TIME_INDEX_ENTRY_BYTES)
            .map_err(StorageError::io(&self.path))
    }

    #[cfg(test)]
    pub fn entries(&self) -> &[TimeEntry] {
        &self.entries
    }

    /// Appends `entry` when its timestamp is larger than the last one's (Kafka's
    /// `maybeAppend`); otherwise the index already says as much.
    pub fn maybe_append(&mut self, entry: TimeEntry) -> Result<(), StorageError> {
        if let Some(last) = self.entries.last() {
            if entry.timestamp_ms <= last.timestamp_ms {
                return Ok(());
            }
            assert!(
                entry.relative_offset >= last.relative_offset,
                "time index offsets must not go back: {last:?} then {entry:?}"
            );
        }
        let mut bytes = [0u8; 12];
        bytes[..8].copy_from_slice(&entry.timestamp_ms.to_be_bytes());
        bytes[8..].copy_from_slice(&entry.relative_offset.to_be_bytes());
        let at = self.entries.len() as u64 * TIME_INDEX_ENTRY_BYTES;
        self.file
            .write_all_at(&bytes, at)
            .map_err(StorageError::io(&self.path))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Relative offset of the last entry whose timestamp is <= `timestamp_ms`: every record
    /// before that entry's batch is older than its timestamp, so a search for
    /// `timestamp_ms` may start there. `None`: start at the segment's beginning.
    pub fn lookup(&self, timestamp_ms: i64) -> Option<u32> {
        let after = self
            .entries
            .partition_point(|e| e.timestamp_ms <= timestamp_ms);
        match after {
            0 => None,
            n => Some(self.entries[n - 1].relative_offset),
        }
    }

    pub fn sync(&self) -> Result<(), StorageError> {
        self.file.sync_data().map_err(StorageError::io(&self.path))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn entries_max(index_bytes: u32, entry_bytes: u64) -> usize {
    ((index_bytes as u64 / entry_bytes) as usize).max(1)
}
