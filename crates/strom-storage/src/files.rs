//! File names and small durable-write helpers shared by segments and checkpoints.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::StorageError;

pub(crate) const LOG_SUFFIX: &str = "log";
pub(crate) const INDEX_SUFFIX: &str = "index";
pub(crate) const TIME_INDEX_SUFFIX: &str = "timeindex";
pub(crate) const TXN_INDEX_SUFFIX: &str = "txnindex";
/// The files derived from a segment's `.log`, deleted and renamed along with it.
pub(crate) const INDEX_SUFFIXES: [&str; 3] = [INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX];
pub(crate) const SNAPSHOT_SUFFIX: &str = "snapshot";
/// Suffixes Kafka's cleaner and deleter leave behind; Strom deletes them on open.
pub(crate) const STRAY_SUFFIXES: [&str; 4] = ["deleted", "cleaned", "swap", "tmp"];

pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".strom-clean-shutdown";
pub(crate) const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
pub(crate) const LOG_START_OFFSET_FILE: &str = "log-start-offset-checkpoint";
pub(crate) const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";

/// `dir/00000000000000000042.suffix`: Kafka's 20-digit zero-padded offset names.
pub(crate) fn offset_file(dir: &Path, offset: i64, suffix: &str) -> PathBuf {
    debug_assert!(offset >= 0);
    dir.join(format!("{offset:020}.{suffix}"))
}

/// Parses `00000000000000000042.suffix` into (42, "suffix").
pub(crate) fn parse_offset_file(name: &str) -> Option<(i64, &str)> {
    let (stem, suffix) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, suffix))
}

/// Opens (creating if needed) a file for positioned reads and writes.
pub(crate) fn open_read_write(path: &Path, create: bool) -> Result<File, StorageError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
        .map_err(StorageError::io(path))
}

/// A file written but not yet fsynced, held open so a background task can make it
/// durable without the partition's lock.
#[derive(Debug, Clone)]
pub(crate) struct UnsyncedFile {
    pub path: PathBuf,
    pub file: Arc<File>,
}

impl UnsyncedFile {
    pub fn sync(&self) -> Result<(), StorageError> {
        sync_data(&self.file, &self.path)
    }
}

#[cfg(test)]
thread_local! {
    /// fsyncs issued by this thread: tests check what runs under a partition's lock.
    pub(crate) static FSYNCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count_fsync() {
    #[cfg(test)]
    FSYNCS.with(|count| count.set(count.get() + 1));
}

/// fdatasync; every fsync in this crate goes through here or [`sync_all`] (tests count
/// them per thread).
pub(crate) fn sync_data(file: &File, path: &Path) -> Result<(), StorageError> {
    count_fsync();
    file.sync_data().map_err(StorageError::io(path))
}

/// fsync, metadata included (directories, new small files).
pub(crate) fn sync_all(file: &File, path: &Path) -> Result<(), StorageError> {
    count_fsync();
    file.sync_all().map_err(StorageError::io(path))
}

/// Makes renames and unlinks in `dir` durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StorageError> {
    let handle = File::open(dir).map_err(StorageError::io(dir))?;
    sync_all(&handle, dir)
}

/// Replaces `path` with `contents` atomically: write a temp file, fsync it, rename it over
/// `path`, fsync the directory. A crash leaves either the old or the new file, never half.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), StorageError> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp).map_err(StorageError::io(&tmp))?;
        file.write_all(contents).map_err(StorageError::io(&tmp))?;
        sync_all(&file, &tmp)?;
    }
    fs::rename(&tmp, path).map_err(StorageError::io(path))?;
    fsync_dir(path.parent().expect("checkpoint files live in a directory"))
}

/// [`write_atomically`] without the fsyncs, for files whose loss a crash tolerates (a
/// producer snapshot: recovery falls back to an older one): a crash may leave the old
/// file, the new one, or none, never a torn one under `path` that passes its checksum.
/// Returns the new file so its owner can fsync it later, off the append path.
pub(crate) fn write_replacing_unsynced(path: &Path, contents: &[u8]) -> Result<File, StorageError> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(StorageError::io(&tmp))?;
    file.write_all(contents).map_err(StorageError::io(&tmp))?;
    fs::rename(&tmp, path).map_err(StorageError::io(path))?;
    Ok(file)
}

/// Removes `path` if it exists.
pub(crate) fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(StorageError::Io {
            path: path.to_path_buf(),
            source: error,
        }),
    }
}

/// Writes a single offset with a CRC-32C (log start and recovery point checkpoints).
pub(crate) fn write_offset_checkpoint(path: &Path, offset: i64) -> Result<(), StorageError> {
    let mut contents = [0u8; 12];
    contents[..8].copy_from_slice(&offset.to_be_bytes());
    let crc = crc32c::crc32c(&contents[..8]);
    contents[8..].copy_from_slice(&crc.to_be_bytes());
    write_atomically(path, &contents)
}

/// Reads what [`write_offset_checkpoint`] wrote; `None` when the file does not exist.
pub(crate) fn read_offset_checkpoint(path: &Path) -> Result<Option<i64>, StorageError> {
    let contents = match fs::read(path) {
        Ok(contents) => contents,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(StorageError::Io {
                path: path.to_path_buf(),
                source: error,
            })
        }
    };
    let corrupt = |reason| StorageError::CorruptCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    if contents.len() != 12 {
        return Err(corrupt("expected 12 bytes"));
    }
    let crc = u32::from_be_bytes(contents[8..].try_into().expect("4"));
    if crc32c::crc32c(&contents[..8]) != crc {
        return Err(corrupt("CRC mismatch"));
    }
    let offset = i64::from_be_bytes(contents[..8].try_into().expect("8"));
    if offset < 0 {
        return Err(corrupt("negative offset"));
    }
    Ok(Some(offset))
}
