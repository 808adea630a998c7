//! The sparse `.index` (offset -> file position) and `.timeindex` (timestamp -> offset) of a
//! segment, in Kafka's layouts: 8-byte entries (relative offset u32, position u32) and
//! 12-byte entries (timestamp i64, relative offset u32), big-endian; and the `.txnindex`
//! of aborted transactions whose ABORT marker the segment holds, in Kafka's 34-byte
//! layout (version i16 = 0, producer id i64, first offset i64, last offset i64, last
//! stable offset i64).
//!
//! The active segment's entries live in memory (a sorted `Vec`) and each new entry is
//! appended to the file with one positioned write (one per `index.interval.bytes` of log,
//! so rare). A sealed segment's index stays on disk: lookups binary-search the file with
//! `pread` (about 20 reads of 8 bytes for a full 10 MiB index, served by the page cache),
//! so memory does not grow with the amount of data kept. Kafka mmaps preallocated files
//! instead; a plain file that only ever holds valid entries needs no trim on close, cannot
//! expose zero-filled slots after a crash, and cannot SIGBUS when truncated. The file's
//! handle is a [`LazyFile`]: open only while in use, under the process-wide cap.

use std::fmt::Debug;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::StorageError;
use crate::files::{self, open_read_write};
use crate::open_files::LazyFile;

/// Bytes of the largest entry (a `.txnindex` entry); sizes the stack buffers.
const ENTRY_BYTES_MAX: usize = 34;

/// One fixed-size entry of an index file.
pub(crate) trait IndexEntry: Copy + Debug + PartialEq {
    const BYTES: usize;
    fn decode(bytes: &[u8]) -> Self;
    fn encode(&self, out: &mut [u8]);
    /// Whether `next` may follow `previous` in the file.
    fn ordered(previous: &Self, next: &Self) -> bool;
}

/// One offset index entry: the batch whose last offset is `base + relative_offset` starts
/// at `position_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position_bytes: u32,
}

impl IndexEntry for OffsetEntry {
    const BYTES: usize = 8;
    fn decode(bytes: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes(bytes[..4].try_into().expect("4")),
            position_bytes: u32::from_be_bytes(bytes[4..8].try_into().expect("4")),
        }
    }
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position_bytes.to_be_bytes());
    }
    fn ordered(a: &Self, b: &Self) -> bool {
        b.relative_offset > a.relative_offset && b.position_bytes > a.position_bytes
    }
}

/// One time index entry: up to offset `base + relative_offset` the largest timestamp is
/// `timestamp_ms`, and that offset is the last one of the batch that first reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp_ms: i64,
    pub relative_offset: u32,
}

impl IndexEntry for TimeEntry {
    const BYTES: usize = 12;
    fn decode(bytes: &[u8]) -> Self {
        TimeEntry {
            timestamp_ms: i64::from_be_bytes(bytes[..8].try_into().expect("8")),
            relative_offset: u32::from_be_bytes(bytes[8..12].try_into().expect("4")),
        }
    }
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn ordered(a: &Self, b: &Self) -> bool {
        b.timestamp_ms > a.timestamp_ms && b.relative_offset >= a.relative_offset
    }
}

/// One aborted transaction (a `.txnindex` entry): producer `producer_id`'s records from
/// `first_offset` up to its ABORT marker at `last_offset` are aborted; `last_stable_offset`
/// is the partition's LSO right after the marker. Entries are ordered by `last_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxnEntry {
    /// Kafka's entry version; 0 is the only one defined. Kept so a damaged file is caught.
    pub version: i16,
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl IndexEntry for AbortedTxnEntry {
    const BYTES: usize = 34;
    fn decode(bytes: &[u8]) -> Self {
        let i64_at = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8"));
        AbortedTxnEntry {
            version: i16::from_be_bytes([bytes[0], bytes[1]]),
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        }
    }
    fn encode(&self, out: &mut [u8]) {
        out[..2].copy_from_slice(&self.version.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
    }
    fn ordered(a: &Self, b: &Self) -> bool {
        b.last_offset > a.last_offset
    }
}

/// Why a loaded index was thrown away and rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexDamage {
    Missing,
    PartialEntry,
    OutOfOrder,
    PastLogEnd,
}

enum Residence<E> {
    /// Active segment: every entry in memory; appends allowed.
    Memory(Vec<E>),
    /// Sealed segment: entries read from the file on demand.
    Disk { count: usize, last: Option<E> },
}

/// An index file of `E` entries, sorted.
pub(crate) struct SparseIndex<E: IndexEntry> {
    file: LazyFile,
    residence: Residence<E>,
    entries_max: usize,
}

pub(crate) type OffsetIndex = SparseIndex<OffsetEntry>;
pub(crate) type TimeIndex = SparseIndex<TimeEntry>;
pub(crate) type TxnIndex = SparseIndex<AbortedTxnEntry>;

impl<E: IndexEntry> SparseIndex<E> {
    /// Creates an empty, memory-resident index, replacing whatever file was there.
    pub fn create(path: PathBuf, index_bytes: u32) -> Result<Self, StorageError> {
        let file = open_read_write(&path, true)?;
        file.set_len(0).map_err(StorageError::io(&path))?;
        Ok(SparseIndex {
            file: LazyFile::from_open(path, file),
            residence: Residence::Memory(Vec::new()),
            entries_max: entries_max::<E>(index_bytes),
        })
    }

    /// Opens an existing file. `resident`: read every entry and check each consecutive
    /// pair is ordered (the active segment). Otherwise only the first and last entries are
    /// read and checked (Kafka's sanity check), and the rest stay on disk. `valid` checks
    /// single entries against the log.
    pub fn load(
        path: PathBuf,
        index_bytes: u32,
        resident: bool,
        valid: impl Fn(&E) -> bool,
    ) -> Result<Result<Self, IndexDamage>, StorageError> {
        let file = match open_read_write(&path, false) {
            Ok(file) => file,
            Err(StorageError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(Err(IndexDamage::Missing))
            }
            Err(error) => return Err(error),
        };
        let file_bytes = file.metadata().map_err(StorageError::io(&path))?.len();
        if file_bytes % E::BYTES as u64 != 0 {
            return Ok(Err(IndexDamage::PartialEntry));
        }
        let count = (file_bytes / E::BYTES as u64) as usize;
        let mut index = SparseIndex {
            file: LazyFile::from_open(path, file),
            residence: Residence::Disk { count, last: None },
            entries_max: entries_max::<E>(index_bytes),
        };
        if count == 0 {
            index.residence = Residence::Memory(Vec::new());
            if !resident {
                index.release_to_disk();
            }
            return Ok(Ok(index));
        }
        let first = index.entry(0)?;
        let last = index.entry(count - 1)?;
        if !valid(&first) || !valid(&last) {
            return Ok(Err(IndexDamage::PastLogEnd));
        }
        if count > 1 && !E::ordered(&first, &last) {
            return Ok(Err(IndexDamage::OutOfOrder));
        }
        index.residence = Residence::Disk {
            count,
            last: Some(last),
        };
        if resident {
            let mut bytes = vec![0u8; count * E::BYTES];
            index
                .file
                .get()?
                .read_exact_at(&mut bytes, 0)
                .map_err(StorageError::io(index.file.path()))?;
            let entries: Vec<E> = bytes.chunks_exact(E::BYTES).map(E::decode).collect();
            if entries
                .windows(2)
                .any(|pair| !E::ordered(&pair[0], &pair[1]))
            {
                return Ok(Err(IndexDamage::OutOfOrder));
            }
            if !entries.iter().all(&valid) {
                return Ok(Err(IndexDamage::PastLogEnd));
            }
            index.residence = Residence::Memory(entries);
        }
        Ok(Ok(index))
    }

    pub fn len(&self) -> usize {
        match &self.residence {
            Residence::Memory(entries) => entries.len(),
            Residence::Disk { count, .. } => *count,
        }
    }

    pub fn is_full(&self) -> bool {
        self.len() >= self.entries_max
    }

    pub fn last(&self) -> Option<E> {
        match &self.residence {
            Residence::Memory(entries) => entries.last().copied(),
            Residence::Disk { last, .. } => *last,
        }
    }

    /// Entry `i` (`i < len`), from memory or with one `pread`.
    fn entry(&self, i: usize) -> Result<E, StorageError> {
        match &self.residence {
            Residence::Memory(entries) => Ok(entries[i]),
            Residence::Disk { count, .. } => {
                assert!(i < *count, "index entry {i} of {count}");
                let mut bytes = [0u8; ENTRY_BYTES_MAX];
                self.file
                    .get()?
                    .read_exact_at(&mut bytes[..E::BYTES], (i * E::BYTES) as u64)
                    .map_err(StorageError::io(self.file.path()))?;
                Ok(E::decode(&bytes[..E::BYTES]))
            }
        }
    }

    /// Number of leading entries for which `before` holds (entries are sorted, so it
    /// holds for a prefix). At most log2(len) + 1 reads on disk.
    pub fn partition_point(&self, before: impl Fn(&E) -> bool) -> Result<usize, StorageError> {
        if let Residence::Memory(entries) = &self.residence {
            return Ok(entries.partition_point(before));
        }
        let (mut low, mut high) = (0usize, self.len());
        while low < high {
            let middle = low + (high - low) / 2;
            if before(&self.entry(middle)?) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        Ok(low)
    }

    /// Appends an entry to a memory-resident index (only the active segment appends).
    fn push(&mut self, entry: E) -> Result<(), StorageError> {
        let Residence::Memory(entries) = &mut self.residence else {
            panic!(
                "append to the index of a sealed segment {}",
                self.file.path().display()
            );
        };
        let mut bytes = [0u8; ENTRY_BYTES_MAX];
        entry.encode(&mut bytes[..E::BYTES]);
        let at = (entries.len() * E::BYTES) as u64;
        self.file
            .get()?
            .write_all_at(&bytes[..E::BYTES], at)
            .map_err(StorageError::io(self.file.path()))?;
        entries.push(entry);
        Ok(())
    }

    /// Keeps the first `keep` entries (memory-resident indexes only).
    fn truncate(&mut self, keep: usize) -> Result<(), StorageError> {
        let Residence::Memory(entries) = &mut self.residence else {
            panic!(
                "truncate the index of a sealed segment {}",
                self.file.path().display()
            );
        };
        entries.truncate(keep);
        self.file
            .get()?
            .set_len((keep * E::BYTES) as u64)
            .map_err(StorageError::io(self.file.path()))
    }

    /// The segment was sealed: drop the in-memory copy, keep serving from the file.
    pub fn release_to_disk(&mut self) {
        if let Residence::Memory(entries) = &self.residence {
            self.residence = Residence::Disk {
                count: entries.len(),
                last: entries.last().copied(),
            };
        }
    }

    /// The segment became active again (truncation): load every entry into memory.
    /// Returns whether damaged entries were discarded instead.
    pub fn load_into_memory(&mut self) -> Result<bool, StorageError> {
        let Residence::Disk { count, .. } = self.residence else {
            return Ok(false);
        };
        let mut bytes = vec![0u8; count * E::BYTES];
        self.file
            .get()?
            .read_exact_at(&mut bytes, 0)
            .map_err(StorageError::io(self.file.path()))?;
        let entries: Vec<E> = bytes.chunks_exact(E::BYTES).map(E::decode).collect();
        if entries
            .windows(2)
            .any(|pair| !E::ordered(&pair[0], &pair[1]))
        {
            // Only damage can do this. An empty sparse index is always correct (lookups
            // scan from the segment start); appends refill it. A `.txnindex` is not
            // sparse: its owner has it rebuilt.
            tracing::warn!(index = %self.file.path().display(), "index entries out of order; discarding them");
            self.file
                .get()?
                .set_len(0)
                .map_err(StorageError::io(self.file.path()))?;
            self.residence = Residence::Memory(Vec::new());
            return Ok(true);
        }
        self.residence = Residence::Memory(entries);
        Ok(false)
    }

    pub fn sync(&self) -> Result<(), StorageError> {
        files::sync_data(&*self.file.get()?, self.file.path())
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Closes the file's handle until the next read or write needs it.
    pub fn close_file(&self) {
        self.file.close();
    }

    /// The index file's handle, to fsync it without the segment.
    pub fn unsynced_handle(&self) -> Result<files::UnsyncedFile, StorageError> {
        Ok(files::UnsyncedFile {
            path: self.file.path().to_path_buf(),
            file: self.file.get()?,
        })
    }

    #[cfg(test)]
    pub fn all_entries(&self) -> Vec<E> {
        (0..self.len())
            .map(|i| self.entry(i).expect("entry"))
            .collect()
    }
}

impl OffsetIndex {
    /// Loads an offset index, checked against a log of `log_size_bytes` bytes: strictly
    /// increasing offsets and positions, every position inside the log.
    pub fn load_checked(
        path: PathBuf,
        index_bytes: u32,
        log_size_bytes: u64,
        resident: bool,
    ) -> Result<Result<Self, IndexDamage>, StorageError> {
        Self::load(path, index_bytes, resident, |e| {
            (e.position_bytes as u64) < log_size_bytes
        })
    }

    /// Appends an entry; both fields must grow strictly.
    pub fn append(&mut self, entry: OffsetEntry) -> Result<(), StorageError> {
        if let Some(last) = self.last() {
            assert!(
                entry.relative_offset > last.relative_offset
                    && entry.position_bytes > last.position_bytes,
                "offset index entries must increase: {last:?} then {entry:?}"
            );
        }
        self.push(entry)
    }

    /// Position of the last entry whose offset is <= `relative_offset`, or 0 (the segment
    /// start) when there is none. The batch holding the offset starts at or after it.
    pub fn lookup(&self, relative_offset: u32) -> Result<u64, StorageError> {
        Ok(self
            .lookup_entry(relative_offset)?
            .map_or(0, |e| e.position_bytes as u64))
    }

    /// The last entry whose offset is <= `relative_offset`.
    pub fn lookup_entry(&self, relative_offset: u32) -> Result<Option<OffsetEntry>, StorageError> {
        match self.partition_point(|e| e.relative_offset <= relative_offset)? {
            0 => Ok(None),
            n => Ok(Some(self.entry(n - 1)?)),
        }
    }

    /// Drops entries pointing at or after `position_bytes` (the log is cut there).
    pub fn truncate_to_position(&mut self, position_bytes: u64) -> Result<(), StorageError> {
        let keep = self.partition_point(|e| (e.position_bytes as u64) < position_bytes)?;
        self.truncate(keep)
    }
}

impl TimeIndex {
    /// Loads a time index: timestamps strictly increasing, offsets never going back.
    pub fn load_checked(
        path: PathBuf,
        index_bytes: u32,
        resident: bool,
    ) -> Result<Result<Self, IndexDamage>, StorageError> {
        Self::load(path, index_bytes, resident, |_| true)
    }

    /// Appends `entry` when its timestamp is larger than the last one's (Kafka's
    /// `maybeAppend`); otherwise the index already says as much.
    pub fn maybe_append(&mut self, entry: TimeEntry) -> Result<(), StorageError> {
        if let Some(last) = self.last() {
            if entry.timestamp_ms <= last.timestamp_ms {
                return Ok(());
            }
            assert!(
                entry.relative_offset >= last.relative_offset,
                "time index offsets must not go back: {last:?} then {entry:?}"
            );
        }
        self.push(entry)
    }

    /// Relative offset of the last entry whose timestamp is <= `timestamp_ms`: every record
    /// before that entry's batch is older than its timestamp, so a search for
    /// `timestamp_ms` may start there. `None`: start at the segment's beginning.
    pub fn lookup(&self, timestamp_ms: i64) -> Result<Option<TimeEntry>, StorageError> {
        match self.partition_point(|e| e.timestamp_ms <= timestamp_ms)? {
            0 => Ok(None),
            n => Ok(Some(self.entry(n - 1)?)),
        }
    }

    /// Drops entries whose offset is at or after `relative_offset` (the log is cut there).
    pub fn truncate_to_offset(&mut self, relative_offset: u32) -> Result<(), StorageError> {
        let keep = self.partition_point(|e| e.relative_offset < relative_offset)?;
        self.truncate(keep)
    }
}

impl TxnIndex {
    /// Entries are few (one per aborted transaction), so the file has no size limit.
    const INDEX_BYTES: u32 = u32::MAX;

    pub fn create_txn(path: PathBuf) -> Result<Self, StorageError> {
        Self::create(path, Self::INDEX_BYTES)
    }

    /// Loads a `.txnindex` of the segment starting at `base_offset`: version 0, first
    /// offset <= last offset, markers inside the segment, last offsets increasing. The
    /// caller also checks the last entry against the segment's end once it is known.
    pub fn load_checked(
        path: PathBuf,
        base_offset: i64,
        resident: bool,
    ) -> Result<Result<Self, IndexDamage>, StorageError> {
        Self::load(path, Self::INDEX_BYTES, resident, |e| {
            e.version == 0 && e.first_offset <= e.last_offset && e.last_offset >= base_offset
        })
    }

    /// Appends an entry, whether the index is memory-resident or not: unlike the sparse
    /// indexes, a sealed segment's `.txnindex` gains entries when recovery rebuilds it.
    pub fn append(&mut self, entry: AbortedTxnEntry) -> Result<(), StorageError> {
        if let Some(last) = self.last() {
            assert!(
                AbortedTxnEntry::ordered(&last, &entry),
                "txn index entries must follow their markers: {last:?} then {entry:?}"
            );
        }
        match &mut self.residence {
            Residence::Memory(_) => self.push(entry),
            Residence::Disk { count, last } => {
                let mut bytes = [0u8; ENTRY_BYTES_MAX];
                entry.encode(&mut bytes[..AbortedTxnEntry::BYTES]);
                self.file
                    .get()?
                    .write_all_at(
                        &bytes[..AbortedTxnEntry::BYTES],
                        (*count * AbortedTxnEntry::BYTES) as u64,
                    )
                    .map_err(StorageError::io(self.file.path()))?;
                *count += 1;
                *last = Some(entry);
                Ok(())
            }
        }
    }

    /// Entries whose marker is at or after `offset`, in order (one `pread` on disk).
    pub fn entries_from(&self, offset: i64) -> Result<Vec<AbortedTxnEntry>, StorageError> {
        let first = self.partition_point(|e| e.last_offset < offset)?;
        match &self.residence {
            Residence::Memory(entries) => Ok(entries[first..].to_vec()),
            Residence::Disk { count, .. } => {
                let mut bytes = vec![0u8; (*count - first) * AbortedTxnEntry::BYTES];
                self.file
                    .get()?
                    .read_exact_at(&mut bytes, (first * AbortedTxnEntry::BYTES) as u64)
                    .map_err(StorageError::io(self.file.path()))?;
                Ok(bytes
                    .chunks_exact(AbortedTxnEntry::BYTES)
                    .map(AbortedTxnEntry::decode)
                    .collect())
            }
        }
    }

    /// Drops entries whose marker is at or after `offset` (memory-resident only).
    pub fn truncate_to_offset(&mut self, offset: i64) -> Result<(), StorageError> {
        let keep = self.partition_point(|e| e.last_offset < offset)?;
        self.truncate(keep)
    }
}

fn entries_max<E: IndexEntry>(index_bytes: u32) -> usize {
    (index_bytes as usize / E::BYTES).max(1)
}
