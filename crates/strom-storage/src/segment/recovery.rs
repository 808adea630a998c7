//! Recovery of one segment: check every batch front to back, rebuild the indexes, cut
//! off a torn or corrupt tail.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use strom_protocol::batch::BATCH_HEADER_BYTES;

use super::{Segment, Truncation};
use crate::error::StorageError;
use crate::header::BatchHeader;

/// Read-ahead window of recovery: one `pread` serves many small batches, and recovery's
/// memory stays bounded no matter how large a (possibly corrupt) batch claims to be.
const RECOVERY_CHUNK_BYTES: usize = 256 * 1024;

/// Sequential reads through a fixed window, for recovery's front-to-back scan.
struct ReadAhead<'a> {
    file: &'a File,
    path: &'a Path,
    file_bytes: u64,
    window: Vec<u8>,
    window_start: u64,
    window_len: usize,
}

impl<'a> ReadAhead<'a> {
    fn new(file: &'a File, path: &'a Path, file_bytes: u64) -> Self {
        ReadAhead {
            file,
            path,
            file_bytes,
            window: vec![0u8; RECOVERY_CHUNK_BYTES],
            window_start: 0,
            window_len: 0,
        }
    }

    /// `length` bytes at `at` (`length` <= the window; the range must lie in the file).
    fn slice(&mut self, at: u64, length: usize) -> Result<&[u8], StorageError> {
        assert!(length <= self.window.len() && at + length as u64 <= self.file_bytes);
        let window_end = self.window_start + self.window_len as u64;
        if at < self.window_start || at + length as u64 > window_end {
            let want = (self.file_bytes - at).min(self.window.len() as u64) as usize;
            self.file
                .read_exact_at(&mut self.window[..want], at)
                .map_err(StorageError::io(self.path))?;
            self.window_start = at;
            self.window_len = want;
        }
        let from = (at - self.window_start) as usize;
        Ok(&self.window[from..from + length])
    }
}

impl Segment {
    /// Checks every batch from the start, rebuilds both indexes, and truncates the file at
    /// the first batch that is torn or corrupt. Never keeps a partial batch.
    pub(super) fn recover(
        &mut self,
        index_interval_bytes: u32,
    ) -> Result<Option<Truncation>, StorageError> {
        let file_bytes = self.size_bytes;
        let log_file = self.log_file.get()?;
        let log_path = self.log_file.path().to_path_buf();
        let mut reader = ReadAhead::new(&log_file, &log_path, file_bytes);
        self.size_bytes = 0;
        let mut position = 0u64;
        let mut failure: Option<&'static str> = None;
        while position < file_bytes {
            match self.check_batch(position, &mut reader)? {
                Ok(header) => {
                    self.size_bytes = position + header.size_bytes;
                    self.index_batch(position, &header, index_interval_bytes)?;
                    position += header.size_bytes;
                }
                Err(reason) => {
                    failure = Some(reason);
                    break;
                }
            }
        }
        assert_eq!(self.size_bytes, position);
        let Some(reason) = failure else {
            return Ok(None);
        };
        tracing::warn!(
            segment = %self.log_file.path().display(),
            position_bytes = position,
            bytes_removed = file_bytes - position,
            reason,
            "truncating a torn or corrupt tail of the segment"
        );
        self.log_file
            .get()?
            .set_len(position)
            .map_err(StorageError::io(self.log_file.path()))?;
        Ok(Some(Truncation {
            position_bytes: position,
            reason,
            bytes_removed: file_bytes - position,
        }))
    }

    /// Validates the batch at `position`: `Ok(Err(reason))` when it is torn or corrupt.
    fn check_batch(
        &self,
        position: u64,
        reader: &mut ReadAhead<'_>,
    ) -> Result<Result<BatchHeader, &'static str>, StorageError> {
        let file_bytes = reader.file_bytes;
        if file_bytes - position < BATCH_HEADER_BYTES as u64 {
            return Ok(Err("partial batch header"));
        }
        let mut header_bytes = [0u8; BATCH_HEADER_BYTES];
        header_bytes.copy_from_slice(reader.slice(position, BATCH_HEADER_BYTES)?);
        let Some(header) = BatchHeader::parse(&header_bytes) else {
            return Ok(Err(
                "batch header does not parse (length, magic or offsets)",
            ));
        };
        if position + header.size_bytes > file_bytes {
            return Ok(Err("batch runs past the end of the file"));
        }
        if header.base_offset < self.next_offset.max(self.base_offset) {
            return Ok(Err("batch offsets do not increase"));
        }
        if header.last_offset() - self.base_offset > i32::MAX as i64 {
            return Ok(Err(
                "batch offset does not fit the segment's relative offsets",
            ));
        }
        let record_count = i32::from_be_bytes(header_bytes[57..61].try_into().expect("4"));
        if record_count < 0 || record_count as i64 > header.last_offset_delta as i64 + 1 {
            return Ok(Err("record count does not match the last offset delta"));
        }
        if header.attributes & strom_protocol::batch::ATTRIBUTE_COMPRESSION_MASK > 4 {
            return Ok(Err("unknown compression codec"));
        }
        let stored_crc = u32::from_be_bytes(header_bytes[17..21].try_into().expect("4"));
        let mut crc = crc32c::crc32c(&header_bytes[21..]);
        let mut at = position + BATCH_HEADER_BYTES as u64;
        let end = position + header.size_bytes;
        while at < end {
            let want = ((end - at) as usize).min(RECOVERY_CHUNK_BYTES);
            crc = crc32c::crc32c_append(crc, reader.slice(at, want)?);
            at += want as u64;
        }
        if crc != stored_crc {
            return Ok(Err("CRC-32C mismatch"));
        }
        Ok(Ok(header))
    }
}
