//! The durable Raft log and vote: openraft's [`RaftLogStorage`] over two files in the raft
//! directory.
//!
//! # Contract (what openraft relies on; checked by openraft's storage suite in the tests)
//!
//! - **Durable before returning.** `save_vote` returns after the vote file was replaced and
//!   fsynced; `append` reports completion (its callback) only after the entries' frames
//!   were written and fsynced. A crash after that loses neither.
//! - **No holes.** Entries are contiguous: the first live entry follows the last purged
//!   one, and each append continues at the last index + 1 (asserted).
//!   Opening the log checks this and refuses a log with a gap.
//! - **Atomic entries.** Each entry is one CRC32C frame: after a crash it is there whole or
//!   not at all. A torn or CRC-bad *last* frame is truncated on open (with a warning);
//!   damage followed by a valid frame is corruption and refuses to open.
//! - **Fenced after a failed write.** A write or fsync error fails that call and every
//!   later write; openraft then stops the node. Restart recovers what is durable.
//!
//! # Files
//!
//! - `log`: frames of [`LogFrame`] JSON, append-only: optionally one `Purged` frame first
//!   (the last purged log id), then one `Entry` frame per entry. Purging (after a snapshot)
//!   rewrites the file whole with [`replace_file`]; truncating a conflicting suffix cuts it.
//! - `vote`: one frame with the vote, replaced whole on each change.
//!
//! Live entries are also kept in memory: the snapshot policy bounds them (see
//! [`super::RaftQuorumConfig::snapshot_every_entries`]). File I/O runs on the calling
//! task: the metadata log sees a handful of small writes per admin request, and a blocked
//! worker thread for one fsync is cheaper than handing each write to a thread pool.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::ops::{Bound, RangeBounds};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, LogState, RaftLogReader, StorageIOError};
use serde::{Deserialize, Serialize};

use crate::raft::disk::{
    create_directory, encode_frame, io_error, read_single_frame_file, replace_file, scan_frames,
    sync_directory, temp_path,
};
use crate::raft::error::RaftQuorumError;
use crate::raft::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::METADATA_ENTRY_BYTES_MAX;

/// The log file inside the raft directory.
pub const RAFT_LOG_FILE_NAME: &str = "log";
/// The vote file inside the raft directory.
pub const RAFT_VOTE_FILE_NAME: &str = "vote";
/// Largest frame of the log file: one entry of the largest proposal
/// ([`METADATA_ENTRY_BYTES_MAX`] of records) plus its log id and JSON framing.
pub const RAFT_LOG_FRAME_BYTES_MAX: usize = METADATA_ENTRY_BYTES_MAX + 64 * 1024;
/// Largest frame of the vote file (a vote is ~60 bytes of JSON).
const RAFT_VOTE_FRAME_BYTES_MAX: usize = 4 * 1024;

/// One frame of the log file, as written.
#[derive(Serialize)]
enum LogFrameOut<'a> {
    Purged(&'a LogId),
    Entry(&'a Entry),
}

/// One frame of the log file, as read (same JSON as [`LogFrameOut`]).
#[derive(Deserialize)]
enum LogFrame {
    Purged(LogId),
    Entry(Entry),
}

/// The raft log and vote of one node. Cheap to clone: clones share the files (openraft
/// reads through a clone while the core appends).
#[derive(Clone)]
pub(crate) struct LogStore {
    inner: Arc<Mutex<LogFiles>>,
}

struct LogFiles {
    log_path: PathBuf,
    vote_path: PathBuf,
    file: File,
    length_bytes: u64,
    /// Live entries by index, each with its frame's byte position in the log file.
    entries: BTreeMap<u64, (u64, Entry)>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    fenced: bool,
}

impl LogStore {
    /// Opens (creating if needed) the log and vote under `directory` and recovers a torn
    /// tail of the log.
    pub(crate) fn open(directory: &Path) -> Result<Self, RaftQuorumError> {
        create_directory(directory)?;
        let log_path = directory.join(RAFT_LOG_FILE_NAME);
        let vote_path = directory.join(RAFT_VOTE_FILE_NAME);
        for path in [&log_path, &vote_path] {
            // A leftover of a replacement that crashed before its rename.
            let temp = temp_path(path);
            if temp.exists() {
                std::fs::remove_file(&temp).map_err(io_error("remove", &temp))?;
            }
        }
        let vote = read_single_frame_file::<Vote>(&vote_path, RAFT_VOTE_FRAME_BYTES_MAX)?;
        let existed = log_path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&log_path)
            .map_err(io_error("open", &log_path))?;
        if !existed {
            file.sync_all().map_err(io_error("fsync", &log_path))?;
            sync_directory(directory).map_err(io_error("fsync directory", directory))?;
        }
        let bytes = std::fs::read(&log_path).map_err(io_error("read", &log_path))?;
        let scan = scan_frames::<LogFrame>(&bytes, RAFT_LOG_FRAME_BYTES_MAX);
        if let Some(defect) = &scan.defect {
            if defect.followed_by_valid_frame {
                return Err(RaftQuorumError::CorruptFile {
                    path: log_path,
                    position: scan.valid_bytes,
                    reason: defect.reason,
                });
            }
            tracing::warn!(
                path = %log_path.display(),
                position = scan.valid_bytes,
                dropped_bytes = bytes.len() as u64 - scan.valid_bytes,
                reason = %defect.reason,
                "truncating the raft log's incomplete or damaged last entry"
            );
            file.set_len(scan.valid_bytes)
                .map_err(io_error("truncate", &log_path))?;
            file.sync_all().map_err(io_error("fsync", &log_path))?;
        }
        let mut last_purged = None;
        let mut entries = BTreeMap::new();
        for (frame_index, (position, frame)) in scan.frames.into_iter().enumerate() {
            match frame {
                LogFrame::Purged(log_id) if frame_index == 0 => last_purged = Some(log_id),
                LogFrame::Purged(log_id) => {
                    return Err(RaftQuorumError::LogGap {
                        path: log_path,
                        expected: entries.len() as u64,
                        found: log_id.index,
                    })
                }
                LogFrame::Entry(entry) => {
                    let expected =
                        next_index(&entries, last_purged.as_ref()).unwrap_or(entry.log_id.index);
                    if entry.log_id.index != expected {
                        return Err(RaftQuorumError::LogGap {
                            path: log_path,
                            expected,
                            found: entry.log_id.index,
                        });
                    }
                    entries.insert(entry.log_id.index, (position, entry));
                }
            }
        }
        tracing::debug!(
            path = %log_path.display(),
            entries = entries.len(),
            last_purged = ?last_purged,
            "opened the raft log"
        );
        Ok(Self {
            inner: Arc::new(Mutex::new(LogFiles {
                log_path,
                vote_path,
                file,
                length_bytes: scan.valid_bytes,
                entries,
                last_purged,
                vote,
                fenced: false,
            })),
        })
    }

    fn files(&self) -> MutexGuard<'_, LogFiles> {
        self.inner
            .lock()
            .expect("a panic while holding the raft log lock")
    }
}

/// The index the next appended entry must have; `None` for a log that never had an entry
/// (its first entry may have any index: openraft starts at 0, its test suite elsewhere).
fn next_index(entries: &BTreeMap<u64, (u64, Entry)>, last_purged: Option<&LogId>) -> Option<u64> {
    match (entries.last_key_value(), last_purged) {
        (Some((index, _)), _) => Some(index + 1),
        (None, Some(purged)) => Some(purged.index + 1),
        (None, None) => None,
    }
}

impl LogFiles {
    #[allow(clippy::result_large_err)] // openraft's StorageError, as its traits return it
    fn check_not_fenced(&self, subject: ErrorSubject<u64>) -> Result<(), StorageError> {
        if self.fenced {
            let error = std::io::Error::other("the raft log is fenced after a failed write");
            return Err(storage_error(subject, ErrorVerb::Write, &error));
        }
        Ok(())
    }

    /// Records a write failure: no later write is accepted until the node restarts.
    fn fence(&mut self, operation: &'static str, error: &std::io::Error) {
        self.fenced = true;
        tracing::error!(
            path = %self.log_path.display(),
            operation,
            %error,
            "raft log write failed; fencing the log until restart"
        );
    }

    fn append(&mut self, entries: Vec<Entry>) -> Result<(), std::io::Error> {
        let mut buffer = Vec::new();
        let mut positions = Vec::with_capacity(entries.len());
        let mut expected = next_index(&self.entries, self.last_purged.as_ref());
        for entry in &entries {
            let index = entry.log_id.index;
            assert_eq!(
                index,
                expected.unwrap_or(index),
                "raft log append would leave a hole"
            );
            expected = Some(index + 1);
            let payload =
                serde_json::to_vec(&LogFrameOut::Entry(entry)).map_err(std::io::Error::other)?;
            if payload.len() > RAFT_LOG_FRAME_BYTES_MAX {
                return Err(std::io::Error::other(format!(
                    "raft entry {} of {} bytes exceeds the log frame limit of {} bytes",
                    entry.log_id,
                    payload.len(),
                    RAFT_LOG_FRAME_BYTES_MAX
                )));
            }
            positions.push(self.length_bytes + buffer.len() as u64);
            buffer.extend_from_slice(&encode_frame(&payload, RAFT_LOG_FRAME_BYTES_MAX));
        }
        let written = self
            .file
            .write_all_at(&buffer, self.length_bytes)
            .and_then(|()| self.file.sync_data());
        if let Err(error) = written {
            self.fence("append", &error);
            // Best effort: drop the partial frames now; recovery on open handles it otherwise.
            let _ = self.file.set_len(self.length_bytes);
            return Err(error);
        }
        self.length_bytes += buffer.len() as u64;
        for (position, entry) in positions.into_iter().zip(entries) {
            self.entries.insert(entry.log_id.index, (position, entry));
        }
        Ok(())
    }

    /// Removes entries from `index` on.
    fn truncate(&mut self, index: u64) -> Result<(), std::io::Error> {
        let Some(position) = self
            .entries
            .range(index..)
            .next()
            .map(|(_, (position, _))| *position)
        else {
            return Ok(());
        };
        let cut = self
            .file
            .set_len(position)
            .and_then(|()| self.file.sync_all());
        if let Err(error) = cut {
            self.fence("truncate", &error);
            return Err(error);
        }
        self.length_bytes = position;
        self.entries.split_off(&index);
        Ok(())
    }

    /// Forgets entries up to and including `log_id` by rewriting the file without them.
    fn purge(&mut self, log_id: LogId) -> Result<(), std::io::Error> {
        if self
            .last_purged
            .as_ref()
            .is_some_and(|p| p.index >= log_id.index)
        {
            return Ok(());
        }
        let kept = self.entries.split_off(&(log_id.index + 1));
        let mut buffer = Vec::new();
        let purged =
            serde_json::to_vec(&LogFrameOut::Purged(&log_id)).map_err(std::io::Error::other)?;
        buffer.extend_from_slice(&encode_frame(&purged, RAFT_LOG_FRAME_BYTES_MAX));
        let mut entries = BTreeMap::new();
        for (index, (_, entry)) in kept {
            let payload =
                serde_json::to_vec(&LogFrameOut::Entry(&entry)).map_err(std::io::Error::other)?;
            let position = buffer.len() as u64;
            buffer.extend_from_slice(&encode_frame(&payload, RAFT_LOG_FRAME_BYTES_MAX));
            entries.insert(index, (position, entry));
        }
        let replaced = replace_file(&self.log_path, &buffer).and_then(|()| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(&self.log_path)
        });
        match replaced {
            Ok(file) => self.file = file,
            Err(error) => {
                self.fence("purge", &error);
                return Err(error);
            }
        }
        self.length_bytes = buffer.len() as u64;
        self.entries = entries;
        self.last_purged = Some(log_id);
        Ok(())
    }
}

fn storage_error<E: std::error::Error + 'static>(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    error: &E,
) -> StorageError {
    StorageError::IO {
        source: StorageIOError::new(subject, verb, AnyError::new(error)),
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let files = self.files();
        let start = range.start_bound().cloned();
        let end = range.end_bound().cloned();
        if matches!((start, end), (Bound::Included(s), Bound::Excluded(e)) if s >= e) {
            return Ok(Vec::new());
        }
        Ok(files
            .entries
            .range((start, end))
            .map(|(_, (_, entry))| entry.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let files = self.files();
        let last_log_id = files
            .entries
            .last_key_value()
            .map(|(_, (_, entry))| entry.log_id)
            .or(files.last_purged);
        Ok(LogState {
            last_purged_log_id: files.last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut files = self.files();
        files.check_not_fenced(ErrorSubject::Vote)?;
        let payload = serde_json::to_vec(vote)
            .map_err(|e| storage_error(ErrorSubject::Vote, ErrorVerb::Write, &e))?;
        let frame = encode_frame(&payload, RAFT_VOTE_FRAME_BYTES_MAX);
        if let Err(error) = replace_file(&files.vote_path, &frame) {
            files.fence("save vote", &error);
            return Err(storage_error(ErrorSubject::Vote, ErrorVerb::Write, &error));
        }
        files.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.files().vote)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut files = self.files();
        files.check_not_fenced(ErrorSubject::Logs)?;
        let entries: Vec<Entry> = entries.into_iter().collect();
        match files.append(entries) {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(error) => {
                let storage = storage_error(ErrorSubject::Logs, ErrorVerb::Write, &error);
                callback.log_io_completed(Err(error));
                Err(storage)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut files = self.files();
        files.check_not_fenced(ErrorSubject::Logs)?;
        tracing::debug!(%log_id, "truncating the raft log");
        files
            .truncate(log_id.index)
            .map_err(|e| storage_error(ErrorSubject::Log(log_id), ErrorVerb::Delete, &e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut files = self.files();
        files.check_not_fenced(ErrorSubject::Logs)?;
        tracing::debug!(%log_id, "purging the raft log");
        files
            .purge(log_id)
            .map_err(|e| storage_error(ErrorSubject::Log(log_id), ErrorVerb::Delete, &e))
    }
}

#[cfg(test)]
#[path = "log_store_tests.rs"]
mod tests;
