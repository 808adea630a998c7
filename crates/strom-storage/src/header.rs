//! Batch headers read straight from a segment file.
//!
//! [`strom_protocol::batch::BatchView`] needs the whole batch in memory; lookups only need
//! the 61-byte header, so this module parses just that, from a small read window that
//! holds many consecutive headers of small batches (one `pread` serves dozens of batches
//! instead of one `pread` each).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use strom_protocol::batch::{BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES};

use crate::error::StorageError;

/// Bytes one window read fetches. Bounded, on the stack of the scanner's owner.
const WINDOW_BYTES: usize = 8 * 1024;

/// The fixed fields of a v2 batch, parsed from its first 61 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub base_offset: i64,
    pub size_bytes: u64,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub max_timestamp_ms: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `bytes` (at least 61 bytes). `None` when the
    /// length or magic cannot belong to a v2 batch.
    pub fn parse(bytes: &[u8]) -> Option<BatchHeader> {
        debug_assert!(bytes.len() >= BATCH_HEADER_BYTES);
        let i16_at = |at: usize| i16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let i32_at = |at: usize| i32::from_be_bytes(bytes[at..at + 4].try_into().expect("4"));
        let i64_at = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8"));
        let batch_length = i32_at(8);
        if batch_length < (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES) as i32 {
            return None;
        }
        let header = BatchHeader {
            base_offset: i64_at(0),
            size_bytes: BATCH_LOG_OVERHEAD_BYTES as u64 + batch_length as u64,
            partition_leader_epoch: i32_at(12),
            magic: bytes[16] as i8,
            attributes: i16_at(21),
            last_offset_delta: i32_at(23),
            max_timestamp_ms: i64_at(35),
            producer_id: i64_at(43),
            producer_epoch: i16_at(51),
            base_sequence: i32_at(53),
        };
        // Offsets near i64::MAX cannot be real, and `base + delta` must not overflow.
        if header.magic != 2
            || header.last_offset_delta < 0
            || !(0..=i64::MAX / 2).contains(&header.base_offset)
        {
            return None;
        }
        Some(header)
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Same wrap rule as `BatchView::last_sequence`.
    pub fn last_sequence(&self) -> i32 {
        last_sequence(self.base_sequence, self.last_offset_delta)
    }

    pub fn is_control(&self) -> bool {
        self.attributes & strom_protocol::batch::ATTRIBUTE_CONTROL != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & strom_protocol::batch::ATTRIBUTE_TRANSACTIONAL != 0
    }
}

/// Sequence of a batch's last record, wrapping at `i32::MAX` as Kafka does.
pub(crate) fn last_sequence(base_sequence: i32, last_offset_delta: i32) -> i32 {
    if base_sequence < 0 {
        return base_sequence;
    }
    let last = base_sequence as i64 + last_offset_delta as i64;
    if last > i32::MAX as i64 {
        (last - i32::MAX as i64 - 1) as i32
    } else {
        last as i32
    }
}

/// Walks the batch headers of one segment from `position` to `end_bytes`.
pub(crate) struct HeaderScanner<'a> {
    file: Arc<File>,
    path: &'a Path,
    end_bytes: u64,
    position: u64,
    window: Box<[u8; WINDOW_BYTES]>,
    window_start: u64,
    window_len: usize,
    /// Set once batches turn out larger than a window: then reading a whole window per
    /// header would copy kilobytes to use 61 bytes, so only headers are read.
    large_batches: bool,
}

impl<'a> HeaderScanner<'a> {
    pub fn new(file: Arc<File>, path: &'a Path, position: u64, end_bytes: u64) -> Self {
        assert!(
            position <= end_bytes,
            "scan start {position} past end {end_bytes}"
        );
        HeaderScanner {
            file,
            path,
            end_bytes,
            position,
            window: Box::new([0u8; WINDOW_BYTES]),
            window_start: 0,
            window_len: 0,
            large_batches: false,
        }
    }

    fn corrupt(&self, reason: &'static str) -> StorageError {
        StorageError::CorruptSegment {
            path: self.path.to_path_buf(),
            position_bytes: self.position,
            reason,
        }
    }

    /// The next batch as (position, header), or `None` at the end. A header that does not
    /// fit or parse is an error: the segment passed recovery, so it was damaged since.
    pub fn next_header(&mut self) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        if self.position == self.end_bytes {
            return Ok(None);
        }
        if self.position + BATCH_HEADER_BYTES as u64 > self.end_bytes {
            return Err(self.corrupt("batch header runs past the end of the segment"));
        }
        let window_end = self.window_start + self.window_len as u64;
        if self.position < self.window_start
            || self.position + BATCH_HEADER_BYTES as u64 > window_end
        {
            let window_bytes = if self.large_batches {
                BATCH_HEADER_BYTES
            } else {
                WINDOW_BYTES
            };
            let want = (self.end_bytes - self.position).min(window_bytes as u64) as usize;
            self.file
                .read_exact_at(&mut self.window[..want], self.position)
                .map_err(StorageError::io(self.path))?;
            self.window_start = self.position;
            self.window_len = want;
        }
        let at = (self.position - self.window_start) as usize;
        let header = BatchHeader::parse(&self.window[at..at + BATCH_HEADER_BYTES])
            .ok_or_else(|| self.corrupt("batch header does not parse"))?;
        if self.position + header.size_bytes > self.end_bytes {
            return Err(self.corrupt("batch runs past the end of the segment"));
        }
        self.large_batches = header.size_bytes >= (WINDOW_BYTES / 2) as u64;
        let position = self.position;
        self.position += header.size_bytes;
        Ok(Some((position, header)))
    }
}
