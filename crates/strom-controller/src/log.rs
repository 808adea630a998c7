//! The metadata log: a narrow storage trait and its single-file implementation.
//!
//! # Frame format
//!
//! One entry per [`MetadataLogStore::append`] call, big-endian:
//!
//! ```text
//! length      u32   payload bytes, 1..=METADATA_ENTRY_BYTES_MAX
//! crc32c      u32   over base_offset and payload
//! base_offset u64   offset of the entry's first record
//! payload     [u8]  JSON array of MetadataRecord
//! ```
//!
//! Record `i` of an entry has offset `base_offset + i`; entries follow each other without
//! holes. JSON keeps the log readable by hand; metadata is small and rare, so the size and
//! parse cost do not matter here.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{FrameDefect, MetadataError};
use crate::record::MetadataRecord;

/// Directory of the metadata log under the node's data directory (Kafka's name, so the
/// storage crate's `<topic>-<partition>` layout never hands it to a user topic; the
/// controller refuses to create a topic called `__cluster_metadata`).
pub const METADATA_LOG_DIR_NAME: &str = "__cluster_metadata-0";
/// File name of the metadata log inside [`METADATA_LOG_DIR_NAME`].
pub const METADATA_LOG_FILE_NAME: &str = "metadata.log";
/// Largest payload of one entry. A CreateTopics of 10,000 partitions encodes to ~1.5 MiB;
/// the cap bounds what one open or one append may buffer.
pub const METADATA_ENTRY_BYTES_MAX: usize = 64 * 1024 * 1024;

const FRAME_HEADER_BYTES: usize = 4 + 4 + 8;

/// One durable entry: the records of one `append`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataEntry {
    pub base_offset: u64,
    pub records: Vec<MetadataRecord>,
}

impl MetadataEntry {
    /// Offset of the entry's last record.
    pub fn last_offset(&self) -> u64 {
        self.base_offset + self.records.len() as u64 - 1
    }
}

/// Storage for the metadata log. The single-voter controller appends to it directly; the
/// Raft implementation will replicate the same entries, so keep the surface this small.
///
/// Contract every implementation must keep (checked by the shared test suite in this
/// module's tests):
///
/// - **Atomic entries.** The records of one `append` form one entry: a reader (now or
///   after a crash and reopen) sees all of them or none of them, never a prefix.
/// - **Durable before returning.** When `append` returns `Ok`, the entry survives a crash
///   or power loss.
/// - **No holes.** The first record has offset 0; each entry's base offset is the previous
///   entry's last offset + 1. `append` returns the offset of the entry's last record.
/// - **Fenced after a failed write.** After `append` returns `Err` for an I/O failure the
///   store refuses every later `append` ([`MetadataError::Fenced`]); reopening recovers
///   whatever is durable: the failed entry entirely or not at all.
/// - `append(&[])` is refused with [`MetadataError::EmptyEntry`]; nothing is written.
pub trait MetadataLogStore: Send {
    /// Appends `records` as one entry; returns the offset of its last record.
    fn append(&mut self, records: &[MetadataRecord]) -> Result<u64, MetadataError>;

    /// Every acknowledged entry, oldest first.
    fn read_all(&self) -> Result<Vec<MetadataEntry>, MetadataError>;

    /// The offset the next appended record will get (0 for an empty log).
    fn next_offset(&self) -> u64;
}

/// The metadata log as one append-only file, `<data dir>/__cluster_metadata-0/metadata.log`.
///
/// Opening it recovers from a crash: a torn or CRC-bad last entry is truncated (with a
/// warning), because each append is fsynced before the next starts, so only the last entry
/// can be incomplete. Damage *followed by* a valid entry is not a torn write but corruption;
/// `open` refuses it rather than drop acknowledged metadata. That check is best effort: a
/// damaged length field hides where the next frame starts, and is treated as a torn tail.
#[derive(Debug)]
pub struct FileMetadataLog {
    path: PathBuf,
    file: File,
    length_bytes: u64,
    next_offset: u64,
    fenced: bool,
}

impl FileMetadataLog {
    /// Opens (creating if needed) the log under `data_dir` and recovers its tail.
    pub fn open(data_dir: &Path) -> Result<Self, MetadataError> {
        let directory = data_dir.join(METADATA_LOG_DIR_NAME);
        let path = directory.join(METADATA_LOG_FILE_NAME);
        let existed = path.exists();
        std::fs::create_dir_all(&directory).map_err(io_error("create directory", &directory))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error("open", &path))?;
        if !existed {
            // Make the new file's directory entries durable, or a crash could lose the
            // file after its first entry was acknowledged.
            file.sync_all().map_err(io_error("fsync", &path))?;
            sync_directory(&directory)?;
            sync_directory(data_dir)?;
        }
        let bytes = std::fs::read(&path).map_err(io_error("read", &path))?;
        let scan = scan_frames(&bytes);
        check_offsets(&scan.entries)?;
        let log = Self {
            path,
            file,
            length_bytes: scan.valid_bytes,
            next_offset: scan.entries.last().map_or(0, |e| e.last_offset() + 1),
            fenced: false,
        };
        if let Some(defect) = scan.defect {
            if defect.followed_by_valid_entry {
                return Err(MetadataError::CorruptMiddle {
                    path: log.path,
                    position: scan.valid_bytes,
                    reason: defect.reason,
                });
            }
            let dropped_bytes = bytes.len() as u64 - scan.valid_bytes;
            tracing::warn!(
                path = %log.path.display(),
                position = scan.valid_bytes,
                dropped_bytes,
                reason = %defect.reason,
                kept_entries = scan.entries.len(),
                "truncating the metadata log's incomplete or damaged last entry"
            );
            log.file
                .set_len(scan.valid_bytes)
                .map_err(io_error("truncate", &log.path))?;
            log.file.sync_all().map_err(io_error("fsync", &log.path))?;
        }
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fence(&mut self, operation: &'static str, source: std::io::Error) -> MetadataError {
        self.fenced = true;
        tracing::error!(
            path = %self.path.display(),
            operation,
            error = %source,
            "metadata log write failed; fencing the log until restart"
        );
        // Best effort: drop the partial entry now. Recovery on open handles it otherwise.
        let _ = self.file.set_len(self.length_bytes);
        MetadataError::Io {
            operation,
            path: self.path.clone(),
            source,
        }
    }
}

impl MetadataLogStore for FileMetadataLog {
    fn append(&mut self, records: &[MetadataRecord]) -> Result<u64, MetadataError> {
        if self.fenced {
            return Err(MetadataError::Fenced);
        }
        let frame = encode_frame(self.next_offset, records)?;
        if let Err(source) = self.file.write_all_at(&frame, self.length_bytes) {
            return Err(self.fence("write", source));
        }
        if let Err(source) = self.file.sync_data() {
            return Err(self.fence("fsync", source));
        }
        self.length_bytes += frame.len() as u64;
        self.next_offset += records.len() as u64;
        Ok(self.next_offset - 1)
    }

    fn read_all(&self) -> Result<Vec<MetadataEntry>, MetadataError> {
        let mut bytes = vec![0; usize::try_from(self.length_bytes).expect("log fits in memory")];
        self.file
            .read_exact_at(&mut bytes, 0)
            .map_err(io_error("read", &self.path))?;
        let scan = scan_frames(&bytes);
        if let Some(defect) = scan.defect {
            // These bytes were valid when opened or written: the disk changed under us.
            return Err(MetadataError::CorruptMiddle {
                path: self.path.clone(),
                position: scan.valid_bytes,
                reason: defect.reason,
            });
        }
        Ok(scan.entries)
    }

    fn next_offset(&self) -> u64 {
        self.next_offset
    }
}

/// A log kept only in memory: for tests of code above the store. Not durable.
#[derive(Debug, Default, Clone)]
pub struct MemoryMetadataLog {
    entries: Vec<MetadataEntry>,
    next_offset: u64,
}

impl MemoryMetadataLog {
    pub fn new() -> Self {
        Self::default()
    }
}

impl MetadataLogStore for MemoryMetadataLog {
    fn append(&mut self, records: &[MetadataRecord]) -> Result<u64, MetadataError> {
        // Same checks as the file log, so both fail alike.
        encode_frame(self.next_offset, records)?;
        self.entries.push(MetadataEntry {
            base_offset: self.next_offset,
            records: records.to_vec(),
        });
        self.next_offset += records.len() as u64;
        Ok(self.next_offset - 1)
    }

    fn read_all(&self) -> Result<Vec<MetadataEntry>, MetadataError> {
        Ok(self.entries.clone())
    }

    fn next_offset(&self) -> u64 {
        self.next_offset
    }
}

fn encode_frame(base_offset: u64, records: &[MetadataRecord]) -> Result<Vec<u8>, MetadataError> {
    if records.is_empty() {
        return Err(MetadataError::EmptyEntry);
    }
    let payload = serde_json::to_vec(records).map_err(MetadataError::Encode)?;
    if payload.len() > METADATA_ENTRY_BYTES_MAX {
        return Err(MetadataError::EntryTooLarge {
            entry_bytes: payload.len(),
            limit_bytes: METADATA_ENTRY_BYTES_MAX,
        });
    }
    let length = u32::try_from(payload.len()).expect("bounded by METADATA_ENTRY_BYTES_MAX");
    let offset_bytes = base_offset.to_be_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&offset_bytes), &payload);
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&crc.to_be_bytes());
    frame.extend_from_slice(&offset_bytes);
    frame.extend_from_slice(&payload);
    Ok(frame)
}

struct Scan {
    entries: Vec<MetadataEntry>,
    /// Bytes from the start that hold whole, valid entries.
    valid_bytes: u64,
    defect: Option<Defect>,
}

struct Defect {
    reason: FrameDefect,
    followed_by_valid_entry: bool,
}

/// Reads frames from the start until the end or the first defect.
fn scan_frames(bytes: &[u8]) -> Scan {
    let mut entries = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        match decode_frame(&bytes[position..]) {
            Ok((entry, frame_bytes)) => {
                entries.push(entry);
                position += frame_bytes;
            }
            Err((reason, frame_bytes)) => {
                // A torn write leaves nothing valid after it; damage with a valid frame
                // right behind it is corruption of an acknowledged entry.
                let followed_by_valid_entry = frame_bytes
                    .and_then(|skip| bytes.get(position + skip..))
                    .is_some_and(|rest| !rest.is_empty() && decode_frame(rest).is_ok());
                return Scan {
                    entries,
                    valid_bytes: position as u64,
                    defect: Some(Defect {
                        reason,
                        followed_by_valid_entry,
                    }),
                };
            }
        }
    }
    Scan {
        entries,
        valid_bytes: position as u64,
        defect: None,
    }
}

/// Decodes the frame at the start of `bytes`: the entry and the frame's size, or the
/// defect and, when the header was readable, the size the frame claims.
fn decode_frame(bytes: &[u8]) -> Result<(MetadataEntry, usize), (FrameDefect, Option<usize>)> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err((FrameDefect::ShortHeader, None));
    }
    let length = u32::from_be_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_be_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let offset_bytes: [u8; 8] = bytes[8..16].try_into().expect("8 bytes");
    let length_bytes = length as usize;
    if length_bytes == 0 || length_bytes > METADATA_ENTRY_BYTES_MAX {
        return Err((
            FrameDefect::BadLength {
                declared_bytes: length,
                limit_bytes: METADATA_ENTRY_BYTES_MAX,
            },
            None,
        ));
    }
    let frame_bytes = FRAME_HEADER_BYTES + length_bytes;
    let Some(payload) = bytes.get(FRAME_HEADER_BYTES..frame_bytes) else {
        return Err((FrameDefect::ShortPayload, None));
    };
    if crc32c::crc32c_append(crc32c::crc32c(&offset_bytes), payload) != crc {
        return Err((FrameDefect::CrcMismatch, Some(frame_bytes)));
    }
    let records: Vec<MetadataRecord> = serde_json::from_slice(payload)
        .map_err(|_| (FrameDefect::BadPayload, Some(frame_bytes)))?;
    if records.is_empty() {
        return Err((FrameDefect::BadPayload, Some(frame_bytes)));
    }
    let entry = MetadataEntry {
        base_offset: u64::from_be_bytes(offset_bytes),
        records,
    };
    Ok((entry, frame_bytes))
}

fn check_offsets(entries: &[MetadataEntry]) -> Result<(), MetadataError> {
    let mut expected = 0;
    for (index, entry) in entries.iter().enumerate() {
        if entry.base_offset != expected {
            return Err(MetadataError::OffsetGap {
                entry_index: index as u64,
                expected,
                found: entry.base_offset,
            });
        }
        expected = entry.last_offset() + 1;
    }
    Ok(())
}

fn sync_directory(directory: &Path) -> Result<(), MetadataError> {
    File::open(directory)
        .and_then(|d| d.sync_all())
        .map_err(io_error("fsync directory", directory))
}

fn io_error(operation: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MetadataError {
    let path = path.to_path_buf();
    move |source| MetadataError::Io {
        operation,
        path,
        source,
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
