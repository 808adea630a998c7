//! CRC32C-framed files and atomic replacement: the two primitives the raft log, vote and
//! snapshot files are built from.
//!
//! # Frame
//!
//! ```text
//! length   u32 BE   payload bytes, 1..=limit (the caller's limit for that file)
//! crc32c   u32 BE   over the payload
//! payload  [u8]     JSON
//! ```
//!
//! Append-only files (the log) may end in a torn frame after a crash: [`scan_frames`]
//! reports where the valid prefix ends so the caller truncates it. Damage followed by a
//! valid frame is corruption, never truncated. Files replaced whole ([`replace_file`]:
//! temp file, fsync, rename, fsync directory) are never torn, so any defect there is
//! corruption.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::error::FrameDefect;
use crate::raft::error::RaftQuorumError;

pub(crate) const FRAME_HEADER_BYTES: usize = 4 + 4;
/// Suffix of the temporary file [`replace_file`] writes before renaming it into place;
/// leftovers are removed on open.
pub(crate) const TEMP_FILE_SUFFIX: &str = ".tmp";

/// Frames `payload`. The caller checked its size against the file's limit.
pub(crate) fn encode_frame(payload: &[u8], limit_bytes: usize) -> Vec<u8> {
    assert!(
        !payload.is_empty() && payload.len() <= limit_bytes,
        "frame payload of {} bytes outside 1..={limit_bytes}",
        payload.len()
    );
    let length = u32::try_from(payload.len()).expect("frame limits fit in u32");
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The valid prefix of a framed file.
pub(crate) struct Scan<T> {
    /// Each decoded frame with its byte position.
    pub frames: Vec<(u64, T)>,
    /// Bytes from the start that hold whole, valid frames.
    pub valid_bytes: u64,
    pub defect: Option<Defect>,
}

pub(crate) struct Defect {
    pub reason: FrameDefect,
    /// A valid frame follows the damaged one: corruption, not a torn tail.
    pub followed_by_valid_frame: bool,
}

/// Decodes frames from the start of `bytes` until the end or the first defect.
pub(crate) fn scan_frames<T: DeserializeOwned>(bytes: &[u8], limit_bytes: usize) -> Scan<T> {
    let mut frames = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        match decode_frame(&bytes[position..], limit_bytes) {
            Ok((value, frame_bytes)) => {
                frames.push((position as u64, value));
                position += frame_bytes;
            }
            Err((reason, frame_bytes)) => {
                let followed_by_valid_frame = frame_bytes
                    .and_then(|skip| bytes.get(position + skip..))
                    .is_some_and(|rest| {
                        !rest.is_empty() && decode_frame::<T>(rest, limit_bytes).is_ok()
                    });
                return Scan {
                    frames,
                    valid_bytes: position as u64,
                    defect: Some(Defect {
                        reason,
                        followed_by_valid_frame,
                    }),
                };
            }
        }
    }
    Scan {
        frames,
        valid_bytes: position as u64,
        defect: None,
    }
}

/// The frame at the start of `bytes`: its value and size, or the defect and, when the
/// header was readable, the size the frame claims.
fn decode_frame<T: DeserializeOwned>(
    bytes: &[u8],
    limit_bytes: usize,
) -> Result<(T, usize), (FrameDefect, Option<usize>)> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err((FrameDefect::ShortHeader, None));
    }
    let length = u32::from_be_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_be_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let length_bytes = length as usize;
    if length_bytes == 0 || length_bytes > limit_bytes {
        return Err((
            FrameDefect::BadLength {
                declared_bytes: length,
                limit_bytes,
            },
            None,
        ));
    }
    let frame_bytes = FRAME_HEADER_BYTES + length_bytes;
    let Some(payload) = bytes.get(FRAME_HEADER_BYTES..frame_bytes) else {
        return Err((FrameDefect::ShortPayload, None));
    };
    if crc32c::crc32c(payload) != crc {
        return Err((FrameDefect::CrcMismatch, Some(frame_bytes)));
    }
    let value = serde_json::from_slice(payload)
        .map_err(|_| (FrameDefect::Undecodable, Some(frame_bytes)))?;
    Ok((value, frame_bytes))
}

/// Reads a file written whole by [`replace_file`]: `Ok(None)` when it does not exist.
/// A defect is corruption (such files are never torn).
fn read_whole_file<T: DeserializeOwned>(
    path: &Path,
    limit_bytes: usize,
) -> Result<Option<Vec<T>>, RaftQuorumError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_error("read", path)(source)),
    };
    let scan = scan_frames(&bytes, limit_bytes);
    if let Some(defect) = scan.defect {
        return Err(RaftQuorumError::CorruptFile {
            path: path.to_path_buf(),
            position: scan.valid_bytes,
            reason: defect.reason,
        });
    }
    Ok(Some(scan.frames.into_iter().map(|(_, v)| v).collect()))
}

/// Reads a file of exactly one frame written by [`replace_file`] (a vote, a snapshot):
/// `Ok(None)` when it does not exist.
pub(crate) fn read_single_frame_file<T: DeserializeOwned>(
    path: &Path,
    limit_bytes: usize,
) -> Result<Option<T>, RaftQuorumError> {
    let Some(mut frames) = read_whole_file::<T>(path, limit_bytes)? else {
        return Ok(None);
    };
    if frames.len() != 1 {
        return Err(RaftQuorumError::CorruptFile {
            path: path.to_path_buf(),
            position: 0,
            reason: FrameDefect::FrameCount {
                found: frames.len(),
                expected: 1,
            },
        });
    }
    Ok(frames.pop())
}

/// Replaces `path` with `contents` atomically and durably: a crash leaves either the old
/// file or the new one, and the new one survives once this returns.
pub(crate) fn replace_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let temp = temp_path(path);
    let mut file = File::create(&temp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, path)?;
    sync_directory(path.parent().expect("raft files live in a directory"))
}

pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().expect("a file name").to_os_string();
    name.push(TEMP_FILE_SUFFIX);
    path.with_file_name(name)
}

pub(crate) fn sync_directory(directory: &Path) -> std::io::Result<()> {
    File::open(directory)?.sync_all()
}

/// Creates `directory` (and parents) durably.
pub(crate) fn create_directory(directory: &Path) -> Result<(), RaftQuorumError> {
    if directory.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(directory).map_err(io_error("create directory", directory))?;
    // The new directories and their entries in the parents: `raft/`, the metadata log's
    // directory and the data directory.
    for dir in directory.ancestors().take(3) {
        sync_directory(dir).map_err(io_error("fsync directory", dir))?;
    }
    Ok(())
}

pub(crate) fn io_error(
    operation: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> RaftQuorumError {
    let path = path.to_path_buf();
    move |source| RaftQuorumError::Io {
        operation,
        path,
        source,
    }
}
