//! One segment: a `.log` file of whole v2 batches plus its sparse `.index` and
//! `.timeindex` and its `.txnindex` of aborted transactions, all named after the segment's
//! base offset.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use strom_protocol::batch::{BatchIter, BATCH_LOG_OVERHEAD_BYTES};

use crate::error::StorageError;
use crate::files::{
    self, offset_file, open_read_write, INDEX_SUFFIX, LOG_SUFFIX, TXN_INDEX_SUFFIX,
};
use crate::header::{BatchHeader, HeaderScanner};
use crate::index::{
    AbortedTxnEntry, IndexDamage, OffsetEntry, OffsetIndex, TimeEntry, TimeIndex, TxnIndex,
};
use crate::open_files::LazyFile;
use crate::FileRange;

mod recovery;

/// Why recovery cut a segment short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Truncation {
    pub position_bytes: u64,
    pub reason: &'static str,
    pub bytes_removed: u64,
}

/// Outcome of reading from one segment.
pub(crate) enum SegmentRead {
    /// No batch in this segment reaches the fetch offset: try the next segment.
    NotHere,
    /// The batches found (`None`: the first one is beyond the limits).
    Found(Option<FileRange>),
}

pub(crate) struct Segment {
    base_offset: i64,
    log_file: LazyFile,
    size_bytes: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    /// Aborted transactions whose ABORT marker lies in this segment.
    txn_index: TxnIndex,
    /// The `.txnindex` was missing, damaged or discarded by recovery: the log must refill
    /// it by replaying the batches (it needs the producer state, which a segment lacks).
    txn_index_rebuild: bool,
    /// Offset after the last batch; the base offset while empty.
    next_offset: i64,
    /// Largest batch `maxTimestamp` in the segment, -1 while empty.
    max_timestamp_ms: i64,
    /// Last offset of the first batch that reached `max_timestamp_ms`, -1 while empty.
    offset_of_max_timestamp: i64,
    /// `maxTimestamp` of the first batch: what `segment.ms` measures age from.
    first_batch_timestamp_ms: Option<i64>,
    created_ms: i64,
    bytes_since_last_index_entry: u64,
}

impl Segment {
    /// Creates a new, empty segment (replacing any leftover files of that name).
    pub fn create(
        dir: &Path,
        base_offset: i64,
        index_bytes: u32,
        now_ms: i64,
    ) -> Result<Segment, StorageError> {
        Self::create_named(dir, base_offset, index_bytes, now_ms, "")
    }

    /// A segment whose three files carry `extra_suffix` after their usual names (the
    /// cleaner writes `<base>.log.cleaned`, `<base>.index.cleaned`, ...).
    pub fn create_named(
        dir: &Path,
        base_offset: i64,
        index_bytes: u32,
        now_ms: i64,
        extra_suffix: &str,
    ) -> Result<Segment, StorageError> {
        assert!(base_offset >= 0, "segment base offset {base_offset} < 0");
        let named =
            |suffix: &str| offset_file(dir, base_offset, &format!("{suffix}{extra_suffix}"));
        let log_path = named(LOG_SUFFIX);
        let log_file = open_read_write(&log_path, true)?;
        log_file.set_len(0).map_err(StorageError::io(&log_path))?;
        let segment = Segment {
            base_offset,
            log_file: LazyFile::from_open(log_path, log_file),
            size_bytes: 0,
            offset_index: OffsetIndex::create(named(INDEX_SUFFIX), index_bytes)?,
            time_index: TimeIndex::create(named(files::TIME_INDEX_SUFFIX), index_bytes)?,
            txn_index: TxnIndex::create_txn(named(TXN_INDEX_SUFFIX))?,
            txn_index_rebuild: false,
            next_offset: base_offset,
            max_timestamp_ms: -1,
            offset_of_max_timestamp: -1,
            first_batch_timestamp_ms: None,
            created_ms: now_ms,
            bytes_since_last_index_entry: 0,
        };
        // The empty files exist; nothing needs a handle until the first append.
        segment.close_files();
        Ok(segment)
    }

    /// Opens an existing segment. With `recover` every batch is checked (framing, CRC,
    /// increasing offsets), the indexes are rebuilt and a bad tail is cut off. Without it,
    /// the indexes are loaded and sanity-checked; damaged ones trigger a recovery anyway.
    /// Only an `active` segment keeps its index entries in memory.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        index_bytes: u32,
        index_interval_bytes: u32,
        recover: bool,
        active: bool,
        now_ms: i64,
    ) -> Result<(Segment, Option<Truncation>), StorageError> {
        let (mut segment, truncation) = Self::open_resident(
            dir,
            base_offset,
            index_bytes,
            index_interval_bytes,
            recover,
            active,
            now_ms,
        )?;
        segment.set_active(active)?;
        // Loaded: a sealed segment's files reopen when read, the active one's when
        // written or read, so an idle partition holds no descriptor.
        segment.close_files();
        Ok((segment, truncation))
    }

    fn open_resident(
        dir: &Path,
        base_offset: i64,
        index_bytes: u32,
        index_interval_bytes: u32,
        recover: bool,
        active: bool,
        now_ms: i64,
    ) -> Result<(Segment, Option<Truncation>), StorageError> {
        let log_path = offset_file(dir, base_offset, LOG_SUFFIX);
        let log_file = open_read_write(&log_path, false)?;
        let size_bytes = log_file
            .metadata()
            .map_err(StorageError::io(&log_path))?
            .len();
        let index_path = offset_file(dir, base_offset, INDEX_SUFFIX);
        let time_path = offset_file(dir, base_offset, files::TIME_INDEX_SUFFIX);
        let txn_path = offset_file(dir, base_offset, TXN_INDEX_SUFFIX);
        let loaded_txn_index = if recover {
            None
        } else {
            match TxnIndex::load_checked(txn_path.clone(), base_offset, active)? {
                Ok(index) => Some(index),
                Err(damage) => {
                    tracing::warn!(
                        segment = %log_path.display(),
                        ?damage,
                        "transaction index is damaged; rebuilding it from the log"
                    );
                    None
                }
            }
        };
        let txn_index_rebuild = loaded_txn_index.is_none();
        let txn_index = match loaded_txn_index {
            Some(index) => index,
            None => TxnIndex::create_txn(txn_path)?,
        };
        let loaded = if recover {
            None
        } else {
            match (
                OffsetIndex::load_checked(index_path.clone(), index_bytes, size_bytes, active)?,
                TimeIndex::load_checked(time_path.clone(), index_bytes, active)?,
            ) {
                (Ok(offset_index), Ok(time_index)) => Some((offset_index, time_index)),
                (offset, time) => {
                    let damage: Option<IndexDamage> = offset.err().or(time.err());
                    tracing::warn!(
                        segment = %log_path.display(),
                        ?damage,
                        "index files are damaged; rebuilding them from the log"
                    );
                    None
                }
            }
        };
        let (offset_index, time_index, needs_recovery) = match loaded {
            Some((offset_index, time_index)) => (offset_index, time_index, false),
            None => (
                OffsetIndex::create(index_path, index_bytes)?,
                TimeIndex::create(time_path, index_bytes)?,
                true,
            ),
        };
        let mut segment = Segment {
            base_offset,
            log_file: LazyFile::from_open(log_path.clone(), log_file),
            size_bytes,
            offset_index,
            time_index,
            txn_index,
            txn_index_rebuild,
            next_offset: base_offset,
            max_timestamp_ms: -1,
            offset_of_max_timestamp: -1,
            first_batch_timestamp_ms: None,
            created_ms: now_ms,
            bytes_since_last_index_entry: 0,
        };
        if needs_recovery {
            segment.reset_txn_index(dir)?;
            let truncation = segment.recover(index_interval_bytes)?;
            return Ok((segment, truncation));
        }
        match segment.load_tail_state() {
            Ok(()) => {
                let past_end = segment
                    .txn_index
                    .last()
                    .is_some_and(|e| e.last_offset >= segment.next_offset);
                if past_end {
                    tracing::warn!(
                        segment = %segment.log_file.path().display(),
                        "transaction index names markers past the segment end; rebuilding it"
                    );
                    segment.reset_txn_index(dir)?;
                }
                Ok((segment, None))
            }
            Err(StorageError::CorruptSegment {
                position_bytes,
                reason,
                ..
            }) => {
                tracing::warn!(
                    segment = %segment.log_file.path().display(),
                    position_bytes,
                    reason,
                    "segment tail does not parse; recovering the segment"
                );
                segment.reset(dir, index_bytes)?;
                segment.reset_txn_index(dir)?;
                let truncation = segment.recover(index_interval_bytes)?;
                Ok((segment, truncation))
            }
            Err(error) => Err(error),
        }
    }

    /// Keeps the index entries in memory (the active segment, which appends) or leaves
    /// them on disk (a sealed one), so memory does not grow with the data retained.
    pub fn set_active(&mut self, active: bool) -> Result<(), StorageError> {
        if active {
            self.offset_index.load_into_memory()?;
            self.time_index.load_into_memory()?;
            if self.txn_index.load_into_memory()? {
                // Every caller replays the log afterwards (open, truncation), which
                // refills it.
                self.txn_index_rebuild = true;
            }
            Ok(())
        } else {
            self.offset_index.release_to_disk();
            self.time_index.release_to_disk();
            self.txn_index.release_to_disk();
            Ok(())
        }
    }

    /// Empties the `.txnindex` and asks the log to refill it from the batches.
    fn reset_txn_index(&mut self, dir: &Path) -> Result<(), StorageError> {
        self.txn_index =
            TxnIndex::create_txn(offset_file(dir, self.base_offset, TXN_INDEX_SUFFIX))?;
        self.txn_index_rebuild = true;
        Ok(())
    }

    /// Whether the log must refill the `.txnindex` by replaying this segment.
    pub fn txn_index_needs_rebuild(&self) -> bool {
        self.txn_index_rebuild
    }

    /// The log replayed this segment and appended every aborted transaction it found.
    pub fn txn_index_rebuilt(&mut self) -> Result<(), StorageError> {
        self.txn_index_rebuild = false;
        self.txn_index.sync()
    }

    /// Records an aborted transaction whose marker is in this segment.
    pub fn append_aborted(&mut self, entry: AbortedTxnEntry) -> Result<(), StorageError> {
        assert!(
            (self.base_offset..self.next_offset).contains(&entry.last_offset),
            "the marker of {entry:?} is not in segment {}",
            self.base_offset
        );
        self.txn_index.append(entry)
    }

    /// Aborted transactions whose marker is at or after `offset`, in marker order.
    pub fn aborted_from(&self, offset: i64) -> Result<Vec<AbortedTxnEntry>, StorageError> {
        self.txn_index.entries_from(offset)
    }

    /// Whether the segment holds any ABORT marker (no I/O).
    pub fn has_aborted(&self) -> bool {
        self.txn_index.len() > 0
    }

    /// Forgets everything derived from the log (indexes, stats) before a recovery.
    fn reset(&mut self, dir: &Path, index_bytes: u32) -> Result<(), StorageError> {
        self.offset_index = OffsetIndex::create(
            offset_file(dir, self.base_offset, INDEX_SUFFIX),
            index_bytes,
        )?;
        self.time_index = TimeIndex::create(
            offset_file(dir, self.base_offset, files::TIME_INDEX_SUFFIX),
            index_bytes,
        )?;
        self.next_offset = self.base_offset;
        self.max_timestamp_ms = -1;
        self.offset_of_max_timestamp = -1;
        self.first_batch_timestamp_ms = None;
        self.bytes_since_last_index_entry = 0;
        Ok(())
    }

    /// After loading trusted indexes: finds the next offset and largest timestamp by
    /// scanning only the headers after the last index entries (or the whole segment when
    /// the time index is empty).
    fn load_tail_state(&mut self) -> Result<(), StorageError> {
        if let Some(entry) = self.time_index.last() {
            self.max_timestamp_ms = entry.timestamp_ms;
            self.offset_of_max_timestamp = self.base_offset + entry.relative_offset as i64;
        }
        let last_indexed = self
            .offset_index
            .last()
            .map_or(0, |e| e.position_bytes as u64);
        let scan_from = match self.time_index.last() {
            Some(entry) => last_indexed.min(self.offset_index.lookup(entry.relative_offset)?),
            None => 0,
        };
        // The scan must pass the batch each index's last entry names, and find it as the
        // entry says; otherwise the indexes cannot be trusted and the caller recovers.
        let time_last = self.time_index.last();
        let mut saw_last_indexed = self.offset_index.last().is_none();
        let mut saw_time_batch = time_last.is_none();
        let mut scanner = HeaderScanner::new(
            self.log_file.get()?,
            self.log_file.path(),
            scan_from,
            self.size_bytes,
        );
        while let Some((position, header)) = scanner.next_header()? {
            if position == 0 {
                self.first_batch_timestamp_ms = Some(header.max_timestamp_ms);
            }
            if let Some(entry) = time_last {
                let offset = self.base_offset + entry.relative_offset as i64;
                if header.base_offset <= offset && offset <= header.last_offset() {
                    if header.max_timestamp_ms != entry.timestamp_ms {
                        return Err(StorageError::CorruptSegment {
                            path: self.log_file.path().to_path_buf(),
                            position_bytes: position,
                            reason: "the time index disagrees with the batch it names",
                        });
                    }
                    saw_time_batch = true;
                }
            }
            if header.max_timestamp_ms > self.max_timestamp_ms {
                self.max_timestamp_ms = header.max_timestamp_ms;
                self.offset_of_max_timestamp = header.last_offset();
            }
            let corrupt = |reason| StorageError::CorruptSegment {
                path: self.log_file.path().to_path_buf(),
                position_bytes: position,
                reason,
            };
            if header.base_offset < self.next_offset {
                return Err(corrupt("batch offsets do not increase"));
            }
            let indexed = self
                .offset_index
                .last()
                .filter(|_| position == last_indexed);
            if let Some(entry) = indexed {
                if self.base_offset + entry.relative_offset as i64 != header.last_offset() {
                    return Err(corrupt(
                        "the offset index disagrees with the batch it points at",
                    ));
                }
                saw_last_indexed = true;
            }
            self.next_offset = header.next_offset();
        }
        if !saw_last_indexed || !saw_time_batch {
            return Err(StorageError::CorruptSegment {
                path: self.log_file.path().to_path_buf(),
                position_bytes: last_indexed,
                reason: "an index entry names no batch of the segment",
            });
        }
        if self.offset_of_max_timestamp >= self.next_offset {
            return Err(StorageError::CorruptSegment {
                path: self.log_file.path().to_path_buf(),
                position_bytes: self.size_bytes,
                reason: "the time index points past the end of the segment",
            });
        }
        if self.first_batch_timestamp_ms.is_none() && self.size_bytes > 0 {
            let mut scanner = HeaderScanner::new(
                self.log_file.get()?,
                self.log_file.path(),
                0,
                self.size_bytes,
            );
            if let Some((_, header)) = scanner.next_header()? {
                self.first_batch_timestamp_ms = Some(header.max_timestamp_ms);
            }
        }
        self.bytes_since_last_index_entry = self.size_bytes - last_indexed;
        Ok(())
    }

    /// Updates the in-memory stats and, every `index.interval.bytes`, both indexes for a
    /// batch just written at `position`.
    fn index_batch(
        &mut self,
        position: u64,
        header: &BatchHeader,
        index_interval_bytes: u32,
    ) -> Result<(), StorageError> {
        assert!(
            header.base_offset >= self.next_offset,
            "offsets must increase"
        );
        assert!(position + header.size_bytes <= self.size_bytes);
        if self.first_batch_timestamp_ms.is_none() {
            self.first_batch_timestamp_ms = Some(header.max_timestamp_ms);
        }
        if header.max_timestamp_ms > self.max_timestamp_ms || self.offset_of_max_timestamp < 0 {
            self.max_timestamp_ms = header.max_timestamp_ms;
            self.offset_of_max_timestamp = header.last_offset();
        }
        self.next_offset = header.next_offset();
        // Both indexes advance together so a loaded pair describes the same prefix.
        if self.bytes_since_last_index_entry > index_interval_bytes as u64
            && !self.offset_index.is_full()
            && !self.time_index.is_full()
        {
            self.offset_index.append(OffsetEntry {
                relative_offset: self.relative(header.last_offset()),
                position_bytes: u32::try_from(position).expect("segment positions fit u32"),
            })?;
            self.time_index.maybe_append(TimeEntry {
                timestamp_ms: self.max_timestamp_ms,
                relative_offset: self.relative(self.offset_of_max_timestamp),
            })?;
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += header.size_bytes;
        Ok(())
    }

    fn relative(&self, offset: i64) -> u32 {
        let relative = offset - self.base_offset;
        assert!(
            (0..=i32::MAX as i64).contains(&relative),
            "offset {offset} outside segment {}",
            self.base_offset
        );
        relative as u32
    }

    /// Writes already validated, offset-assigned batches at the end of the file with one
    /// positioned write, then indexes them. On a failed write the file is cut back to its
    /// old size so no partial batch remains; `Err` then means the caller must fence the log
    /// if the cut fails too (reported as the second tuple element being false).
    pub fn append(
        &mut self,
        records: &[u8],
        index_interval_bytes: u32,
    ) -> Result<(), (StorageError, bool)> {
        let start = self.size_bytes;
        let file = self.log_file.get().map_err(|error| (error, true))?;
        if let Err(error) = file.write_all_at(records, start) {
            let rolled_back = file.set_len(start).is_ok();
            return Err((StorageError::io(self.log_file.path())(error), rolled_back));
        }
        self.size_bytes = start + records.len() as u64;
        let mut position = start;
        for view in BatchIter::new(records) {
            let view = view.expect("batches were validated before the write");
            let header = BatchHeader::parse(view.as_bytes()).expect("validated batch header");
            self.index_batch(position, &header, index_interval_bytes)
                .map_err(|error| (error, false))?;
            position += header.size_bytes;
        }
        assert_eq!(position, self.size_bytes, "records must hold whole batches");
        Ok(())
    }

    /// First batch whose last offset is >= `offset`, as (position, header).
    pub fn locate(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        Ok(self.locate_with_scanner(offset)?.1)
    }

    /// [`Segment::locate`], also returning the scanner positioned after the batch found,
    /// so a read continues from the same read window.
    fn locate_with_scanner(
        &self,
        offset: i64,
    ) -> Result<(HeaderScanner<'_>, Option<(u64, BatchHeader)>), StorageError> {
        let entry = if offset <= self.base_offset {
            None
        } else {
            let relative = (offset - self.base_offset).min(u32::MAX as i64) as u32;
            self.offset_index.lookup_entry(relative)?
        };
        let start = entry.map_or(0, |e| e.position_bytes as u64);
        let mut scanner = HeaderScanner::new(
            self.log_file.get()?,
            self.log_file.path(),
            start,
            self.size_bytes,
        );
        let mut first = true;
        loop {
            let (position, header) = match scanner.next_header() {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(StorageError::CorruptSegment { .. }) if first && entry.is_some() => {
                    tracing::warn!(
                        segment = %self.log_file.path().display(),
                        position_bytes = start,
                        "offset index points inside a batch; scanning the segment"
                    );
                    return self.scan_from_start(offset);
                }
                Err(error) => return Err(error),
            };
            if first {
                first = false;
                // An index entry names the last offset of the batch it points at. If it
                // does not, the index is damaged: scanning on from there could skip the
                // wanted batch, so scan the segment from its start instead.
                let expected_last = entry.map(|e| self.base_offset + e.relative_offset as i64);
                if expected_last.is_some_and(|last| last != header.last_offset()) {
                    tracing::warn!(
                        segment = %self.log_file.path().display(),
                        position_bytes = position,
                        "offset index disagrees with the log; scanning the segment"
                    );
                    return self.scan_from_start(offset);
                }
            }
            if header.last_offset() >= offset {
                return Ok((scanner, Some((position, header))));
            }
        }
        Ok((scanner, None))
    }

    fn scan_from_start(
        &self,
        offset: i64,
    ) -> Result<(HeaderScanner<'_>, Option<(u64, BatchHeader)>), StorageError> {
        let mut scanner = HeaderScanner::new(
            self.log_file.get()?,
            self.log_file.path(),
            0,
            self.size_bytes,
        );
        while let Some((position, header)) = scanner.next_header()? {
            if header.last_offset() >= offset {
                return Ok((scanner, Some((position, header))));
            }
        }
        Ok((scanner, None))
    }

    /// Whole batches from the one holding `fetch_offset`, within `max_bytes` (at least one
    /// batch when `min_one_batch`), stopping before a batch that reaches
    /// `max_offset_exclusive`.
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: u32,
        max_offset_exclusive: i64,
        min_one_batch: bool,
    ) -> Result<SegmentRead, StorageError> {
        if fetch_offset >= self.next_offset {
            // Nothing to scan (a fetch at the log end): leave the file closed.
            return Ok(SegmentRead::NotHere);
        }
        let (mut scanner, found) = self.locate_with_scanner(fetch_offset)?;
        let Some((start, first)) = found else {
            return Ok(SegmentRead::NotHere);
        };
        if first.last_offset() >= max_offset_exclusive
            || (first.size_bytes > max_bytes as u64 && !min_one_batch)
        {
            return Ok(SegmentRead::Found(None));
        }
        let mut length = first.size_bytes;
        while let Some((_, header)) = scanner.next_header()? {
            if header.last_offset() >= max_offset_exclusive
                || length + header.size_bytes > max_bytes as u64
            {
                break;
            }
            length += header.size_bytes;
        }
        assert!(start + length <= self.size_bytes);
        Ok(SegmentRead::Found(Some(FileRange {
            file: self.log_file.get()?,
            position: start,
            length: u32::try_from(length).expect("segment ranges fit u32"),
        })))
    }

    /// Reads one whole batch into memory (timestamp lookups only).
    pub fn read_batch(&self, position: u64, header: &BatchHeader) -> Result<Vec<u8>, StorageError> {
        assert!(position + header.size_bytes <= self.size_bytes);
        assert!(header.size_bytes >= BATCH_LOG_OVERHEAD_BYTES as u64);
        let mut bytes = vec![0u8; header.size_bytes as usize];
        self.log_file
            .get()?
            .read_exact_at(&mut bytes, position)
            .map_err(StorageError::io(self.log_file.path()))?;
        Ok(bytes)
    }

    /// Scanner over this segment's headers from the batch holding `offset`.
    pub fn scanner_from(&self, offset: i64) -> Result<HeaderScanner<'_>, StorageError> {
        let start = match self.locate(offset)? {
            Some((position, _)) => position,
            None => self.size_bytes,
        };
        Ok(HeaderScanner::new(
            self.log_file.get()?,
            self.log_file.path(),
            start,
            self.size_bytes,
        ))
    }

    /// Largest-timestamp position hint for timestamp searches.
    pub fn time_lookup_start(&self, timestamp_ms: i64) -> Result<i64, StorageError> {
        let Some(entry) = self.time_index.lookup(timestamp_ms)? else {
            return Ok(self.base_offset);
        };
        let offset = self.base_offset + entry.relative_offset as i64;
        // The entry's offset belongs to the batch that first reached its timestamp; if the
        // log says otherwise the index is damaged and could skip records, so start over.
        match self.locate(offset)? {
            Some((_, header)) if header.max_timestamp_ms == entry.timestamp_ms => Ok(offset),
            _ => {
                tracing::warn!(
                    segment = %self.log_file.path().display(),
                    "time index disagrees with the log; scanning the segment"
                );
                Ok(self.base_offset)
            }
        }
    }

    /// Removes the batch holding `offset` and every later one (whole batches only, as
    /// Kafka), trims both indexes, recomputes the segment's stats and fsyncs. Returns the
    /// bytes removed.
    pub fn truncate_to(&mut self, offset: i64) -> Result<u64, StorageError> {
        self.set_active(true)?;
        let Some((position, header)) = self.locate(offset)? else {
            return Ok(0);
        };
        let removed_bytes = self.size_bytes - position;
        self.log_file
            .get()?
            .set_len(position)
            .map_err(StorageError::io(self.log_file.path()))?;
        self.size_bytes = position;
        self.offset_index.truncate_to_position(position)?;
        let cut_relative = (header.base_offset - self.base_offset).max(0) as u32;
        self.time_index.truncate_to_offset(cut_relative)?;
        self.txn_index.truncate_to_offset(header.base_offset)?;
        self.next_offset = self.base_offset;
        self.max_timestamp_ms = -1;
        self.offset_of_max_timestamp = -1;
        self.first_batch_timestamp_ms = None;
        self.load_tail_state()?;
        self.sync()?;
        Ok(removed_bytes)
    }

    /// Called when the segment stops being the active one: records the final largest
    /// timestamp in the time index (so a later open needs no scan) and fsyncs all files.
    pub fn seal(&mut self) -> Result<(), StorageError> {
        self.seal_unsynced()?;
        self.sync()?;
        self.close_files();
        Ok(())
    }

    /// [`Segment::seal`] without the fsync, which grows with the segment: the log rolls
    /// with this and leaves the fsync of [`Segment::unsynced_files`] to the background.
    pub fn seal_unsynced(&mut self) -> Result<(), StorageError> {
        if self.offset_of_max_timestamp >= 0 {
            let entry = TimeEntry {
                timestamp_ms: self.max_timestamp_ms,
                relative_offset: self.relative(self.offset_of_max_timestamp),
            };
            self.time_index.maybe_append(entry)?;
        }
        self.set_active(false)
    }

    pub fn sync(&self) -> Result<(), StorageError> {
        files::sync_data(&*self.log_file.get()?, self.log_file.path())?;
        self.offset_index.sync()?;
        self.time_index.sync()?;
        self.txn_index.sync()?;
        // Written only at ABORT markers: no handle kept between them.
        self.txn_index.close_file();
        Ok(())
    }

    /// Handles on the segment's four files, to fsync them without holding the segment.
    pub fn unsynced_files(&self) -> Result<Vec<files::UnsyncedFile>, StorageError> {
        Ok(vec![
            files::UnsyncedFile {
                path: self.log_file.path().to_path_buf(),
                file: self.log_file.get()?,
            },
            self.offset_index.unsynced_handle()?,
            self.time_index.unsynced_handle()?,
            self.txn_index.unsynced_handle()?,
        ])
    }

    /// Unlinks the segment's files. Readers holding the log file's `Arc` keep reading.
    pub fn delete_files(self) -> Result<(), StorageError> {
        files::remove_if_exists(self.log_file.path())?;
        files::remove_if_exists(self.offset_index.path())?;
        files::remove_if_exists(self.time_index.path())?;
        files::remove_if_exists(self.txn_index.path())
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
    pub fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }
    pub fn max_timestamp_ms(&self) -> i64 {
        self.max_timestamp_ms
    }
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }
    pub fn log_path(&self) -> &Path {
        self.log_file.path()
    }
    /// The log file, opened if closed (the cleaner reads a snapshot of sealed segments
    /// through it).
    pub fn log_file(&self) -> Result<Arc<File>, StorageError> {
        self.log_file.get()
    }

    /// Closes the segment's file handles until a read or write needs them again (a
    /// sealed segment after open or seal).
    pub fn close_files(&self) {
        self.log_file.close();
        self.offset_index.close_file();
        self.time_index.close_file();
        self.txn_index.close_file();
    }
    /// `maxTimestamp` of the first batch, -1 when unknown (what compaction lag measures).
    pub fn first_batch_timestamp_ms(&self) -> i64 {
        self.first_batch_timestamp_ms.unwrap_or(-1)
    }
    pub fn index_is_full(&self) -> bool {
        self.offset_index.is_full() || self.time_index.is_full()
    }

    /// Age that `segment.ms` compares: from the first batch's timestamp to the incoming
    /// batch's (Kafka's rule), or from creation when there is no usable timestamp.
    pub fn age_for_roll_ms(&self, incoming_max_timestamp_ms: i64, now_ms: i64) -> i64 {
        match self.first_batch_timestamp_ms {
            Some(first) if first >= 0 => incoming_max_timestamp_ms.saturating_sub(first),
            _ => now_ms.saturating_sub(self.created_ms),
        }
    }

    #[cfg(test)]
    pub fn index_entries(&self) -> Vec<OffsetEntry> {
        self.offset_index.all_entries()
    }

    #[cfg(test)]
    pub fn time_entries(&self) -> Vec<TimeEntry> {
        self.time_index.all_entries()
    }
}
