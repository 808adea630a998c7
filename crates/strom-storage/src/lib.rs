//! `strom-storage`: the partition log.
//!
//! **Owns**: the log of one partition replica on local disk in Kafka's layout — segments
//! (`<20-digit base offset>.log` holding record batches v2 byte for byte, with a sparse
//! `.index` and `.timeindex`), appends with offset assignment, reads by offset as a file
//! range, crash recovery, retention, compaction, the idempotent and transactional producer
//! state (`<offset>.snapshot`), transaction markers, the last stable offset and the
//! aborted-transaction index (`.txnindex`), the leader-epoch cache
//! (`leader-epoch-checkpoint`), and the log-start and recovery-point checkpoints.
//!
//! **Must not**: know about requests, consumer groups, replication protocol or the network.
//! It takes records blobs and offsets and answers offsets and byte ranges; mapping errors
//! to Kafka error codes, the high watermark, delayed operations and the transaction
//! coordinator (which decides when to write a marker) belong to the broker.
//!
//! # On disk (one directory per partition, e.g. `data/topic-0/`)
//!
//! | file | contents |
//! |---|---|
//! | `<base>.log` | whole record batches v2, exactly as served to consumers |
//! | `<base>.index` | 8-byte entries: relative last offset u32, file position u32 (one per `index.interval.bytes`) |
//! | `<base>.timeindex` | 12-byte entries: largest timestamp so far i64, relative offset u32 |
//! | `<base>.txnindex` | Kafka's 34-byte entries, one per ABORT marker in the segment: version i16 = 0, producer id i64, first offset i64, last offset (the marker) i64, last stable offset after it i64 |
//! | `<offset>.snapshot` | producer state as of `offset`, ongoing transactions included (version 2; version 1 still read; CRC-32C protected) |
//! | `leader-epoch-checkpoint` | Kafka's text format: `0`, count, then `epoch start_offset` lines |
//! | `log-start-offset-checkpoint` | log start offset: i64 + CRC-32C |
//! | `recovery-point-offset-checkpoint` | offset below which everything is fsynced: i64 + CRC-32C |
//! | `cleaner-offset-checkpoint` | compacted logs: first offset not yet cleaned (i64 + CRC-32C) |
//! | `<base>.{log,index,timeindex,txnindex}.cleaned` / `.swap` | a clean in progress; deleted on open |
//! | `.strom-clean-shutdown` | present only between [`PartitionLog::close`] and the next open |
//!
//! `<base>` and `<offset>` are 20-digit zero-padded offsets. Checkpoints and snapshots are
//! written to a `.tmp` file, fsynced, renamed over the old one, and the directory fsynced.
//!
//! # Design choices, and why
//!
//! - **What is stored is what is served.** A produce request's records are validated from
//!   their 61-byte headers (framing, magic 2, CRC-32C over the batch, record count, size,
//!   producer sequence), offsets are assigned by rewriting `baseOffset` and
//!   `partitionLeaderEpoch` in the request's own buffer (both outside the CRC), and the
//!   buffer is written with one `pwrite`. Records are never decoded or re-encoded and
//!   compressed batches stay compressed; only LogAppendTime recomputes a CRC.
//! - **Reads return a [`FileRange`]**, not bytes: the broker can `sendfile` it or `pread`
//!   it ([`FileRange::read_to_bytes`]). The range holds an `Arc<File>`, so a segment
//!   deleted by retention stays readable (unlinked files live while open on Unix).
//! - **Lookup** is a `BTreeMap` search for the segment, a binary search of the sparse index
//!   (one entry per `index.interval.bytes`) and a header scan from there through an 8 KiB
//!   read window (many small batches per `pread`). Nothing per record.
//! - **Indexes** are plain files that only ever hold valid entries (Kafka mmaps
//!   preallocated ones): no trim on close, no zeroed slots after a crash, no SIGBUS on a
//!   truncated file. The active segment's entries are also kept in memory; sealed
//!   segments binary-search their files with `pread` (page-cache hits), so memory does not
//!   grow with the data retained.
//! - **File handles are opened on demand** (`open_files`): a segment's files close once
//!   it is opened, created or sealed, and reopen when read or written; every open handle
//!   joins one least-recently-used list per process, capped by [`set_open_files_max`]
//!   (the broker's `strom.log.open.files.max`, default half the soft fd limit). An idle
//!   partition holds no descriptor, so the partition count is not bounded by the fd limit.
//! - **Durability** follows Kafka: by default nothing is fsynced on append (`flush.messages`
//!   and `flush.ms` are `i64::MAX`), because replication, not fsync, protects data, and a
//!   `kill -9` of the process loses nothing that reached the page cache. A roll does no
//!   fsync: the sealed segment is fsynced by the broker's background task
//!   ([`PendingSync`]) and the recovery point moves past it then, so the append path never
//!   waits for a flush that grows with `segment.bytes`, and recovery after a crash checks
//!   only the active segment and what rolled since the last background sync.
//! - **Recovery** validates every batch after the recovery point (framing, CRC, increasing
//!   offsets), truncates at the first torn or corrupt one, rebuilds the indexes, and never
//!   serves a partial batch. A clean-shutdown marker written by [`PartitionLog::close`]
//!   skips it; index files are still sanity-checked and rebuilt if damaged.
//! - **Producer state** survives restarts through a CRC-protected snapshot written at every
//!   roll and at close; on open the newest valid one is loaded and the batch headers after
//!   it are replayed (headers only, plus the one small record of each control batch).
//! - **Transactions** follow Kafka's ProducerStateManager: a transactional batch starts
//!   its producer's ongoing transaction at its base offset, a marker written by
//!   [`PartitionLog::append_control_marker`] (or copied by a follower) ends it. The first
//!   unstable offset is the smallest first offset of the ongoing transactions, kept in an
//!   ordered set (a lookup per fetch, not a walk); the LSO is that or the log end. A
//!   producer with a transaction ongoing refuses non-transactional batches
//!   (INVALID_TXN_STATE) and never expires.
//! - **The `.txnindex` is created with every segment**, even empty (one small file more
//!   per segment), so a missing one is known to be damage rather than "no aborts". It is
//!   derived data: after an unclean shutdown the recovered segments' `.txnindex` is
//!   rebuilt, and a missing or torn one is rebuilt on any open, by replaying the log from
//!   a snapshot at or below that segment (a segment cannot rebuild it alone: an entry's
//!   first offset and LSO come from the producer state). Logs written before transactions
//!   existed have none, so their first open replays them from the log start once.
//!   [`PartitionLog::aborted_transactions`] reads only these entries (memory for the
//!   active segment, one `pread` for a sealed segment that has any), never records.
//!
//! - **Followers** append the leader's bytes untouched ([`PartitionLog::append_as_follower`])
//!   and cut back to a leader-epoch boundary ([`PartitionLog::truncate_to`]); the cut is
//!   fsynced so a crash cannot resurrect divergent batches.
//!
//! All limits live in [`LogConfig`] (Kafka's names, checked by [`LogConfig::validate`]) and
//! the few constants at the top of the modules (read window, recovery chunk, snapshots
//! kept, producer batches remembered, leader epochs kept).
//!
//! - **Compaction** (`cleanup.policy=compact`) runs in the `cleaner` module's three steps
//!   (plan under the lock, build from an immutable snapshot of sealed segments without
//!   it, swap in under the lock with a crash-safe rename order); see its docs. Compacted
//!   logs refuse records without a key at append, naming each one
//!   ([`AppendError::RecordErrors`]), which costs a walk over each batch's records
//!   (decompressing it) for those topics only. A clean stops below the first unstable offset, drops the
//!   records of aborted transactions (they never supersede a committed value), keeps
//!   every control batch and carries the segment's `.txnindex` over.
//! - **DeleteRecords** ([`PartitionLog::delete_records_before`]) checkpoints the new log
//!   start before unlinking anything.
//!
//! # Not yet
//!
//! Removing transaction markers after the delete horizon (the cleaner keeps every control
//! batch, and with it every `.txnindex` entry, forever), merging small cleaned segments
//! (Kafka's cleaner groups neighbours; Strom rewrites one for one), and a lock against two
//! processes opening one directory (the broker owns the data-dir lock).

mod append;
mod cleaner;
mod config;
mod durability;
mod error;
mod files;
mod header;
mod index;
mod leader_epoch;
mod log;
mod open_files;
mod producer_state;
mod read;
mod records_delete;
mod replica;
mod retention;
mod segment;
mod tiering;
mod transactions;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

pub use append::RECORD_ERRORS_MAX;
pub use cleaner::{
    CleanOutcome, CleanPlan, CleanStats, CleanedLog, Throttle, CLEANER_MAP_BYTES_DEFAULT,
};
pub use config::{ConfigError, LogConfig, TimestampType};
pub use durability::PendingSync;
pub use error::{
    AppendError, InvalidRecordReason, ReadError, RecordErrorReason, RejectedRecord, StorageError,
};
pub use log::PartitionLog;
pub use open_files::{open_files_count, open_files_max, raise_fd_soft_limit, set_open_files_max};
pub use read::first_record_in_batch;
pub use tiering::SealedSegment;
pub use transactions::{
    aborted_in_txn_index, AbortedTransaction, ControlMarker, OngoingTransaction,
};

/// Result of a successful [`PartitionLog::append_as_leader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// The broker time stamped into the batches, or -1 unless `LogAppendTime`.
    pub log_append_time_ms: i64,
    /// Log start offset after the append (Produce responses carry it).
    pub log_start_offset: i64,
    /// Records appended.
    pub record_count: i64,
    /// An idempotent retry: nothing was appended, the offsets are the original ones.
    pub duplicate: bool,
}

/// Result of [`PartitionLog::read`].
#[derive(Debug, Clone)]
pub struct ReadInfo {
    /// The whole batches to send, or `None` when there is nothing to send yet.
    pub records: Option<FileRange>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// A byte range of a segment file holding whole batches. Holding it keeps the file open,
/// even if retention deletes the segment meanwhile.
#[derive(Clone)]
pub struct FileRange {
    pub file: Arc<File>,
    /// Byte position in the file of the first batch.
    pub position: u64,
    /// Bytes in the range.
    pub length: u32,
}

impl std::fmt::Debug for FileRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRange")
            .field("position", &self.position)
            .field("length", &self.length)
            .finish()
    }
}

impl FileRange {
    /// Copies the range into memory with `pread` (for TLS connections and tests; plaintext
    /// connections can `sendfile` the range instead).
    pub fn read_to_bytes(&self) -> std::io::Result<bytes::Bytes> {
        let mut buffer = bytes::BytesMut::zeroed(self.length as usize);
        self.file.read_exact_at(&mut buffer, self.position)?;
        Ok(buffer.freeze())
    }
}

/// A record found by timestamp ([`PartitionLog::offset_for_timestamp`],
/// [`PartitionLog::max_timestamp_offset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp_ms: i64,
    pub offset: i64,
}

/// Result of [`PartitionLog::enforce_retention`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    /// The log start offset afterwards.
    pub log_start_offset: i64,
}

/// One idempotent or transactional producer as the partition knows it (DescribeProducers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Sequence of the producer's last record, -1 when none is remembered.
    pub last_sequence: i32,
    /// `maxTimestamp` of its last batch, -1 when unknown.
    pub last_timestamp_ms: i64,
    /// Offset of its last record, -1 when unknown.
    pub last_offset: i64,
    /// First offset of its ongoing transaction in this partition, -1 when none.
    pub current_txn_start_offset: i64,
    /// Coordinator epoch of the producer's last transaction marker, -1 when none.
    pub coordinator_epoch: i32,
}
