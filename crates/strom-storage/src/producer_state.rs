//! Idempotent and transactional producer state: per producer id the epoch, the last five
//! batches (so a retried batch is recognised as a duplicate and a gap in sequences is
//! refused), the first offset of its ongoing transaction and the coordinator epoch of its
//! last transaction marker (Kafka's ProducerStateManager).
//!
//! Snapshot file `<offset>.snapshot` (the state as of log offset `offset`), big-endian:
//! `magic "STPS" | version u16 = 2 | crc32c u32 (of everything after it) | count u32 |
//! count x (producer_id i64, epoch i16, coordinator_epoch i32, current_txn_first_offset i64
//! (-1: none), batch_count u8, batch_count x (first_seq i32, last_seq i32, first_offset
//! i64, last_offset i64, timestamp_ms i64))`. Version 1 (written before transactions)
//! lacks the two transaction fields and is still read: no ongoing transaction, coordinator
//! epoch -1.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::Path;

use crate::error::{AppendError, StorageError};
use crate::files::{self, offset_file, SNAPSHOT_SUFFIX};

/// Batches remembered per producer for duplicate detection (Kafka keeps five, matching
/// `max.in.flight.requests.per.connection` <= 5 for idempotent producers).
pub(crate) const PRODUCER_BATCHES_MAX: usize = 5;
const SNAPSHOT_MAGIC: &[u8; 4] = b"STPS";
const SNAPSHOT_VERSION: u16 = 2;
const SNAPSHOT_VERSION_WITHOUT_TRANSACTIONS: u16 = 1;
const SNAPSHOT_HEADER_BYTES: usize = 4 + 2 + 4 + 4;
const SNAPSHOT_BATCH_BYTES: usize = 4 + 4 + 8 + 8 + 8;
const SNAPSHOT_ENTRY_HEAD_BYTES_V1: usize = 8 + 2 + 1;
const SNAPSHOT_ENTRY_HEAD_BYTES: usize = 8 + 2 + 4 + 8 + 1;

/// What the log remembers about one appended batch of an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<ProducerBatch>,
    /// Broker time of the producer's last append (or of the load that restored it): what
    /// `producer.id.expiration.ms` measures. The broker's clock, not the batch timestamps,
    /// so a producer writing old CreateTime timestamps is not expired while it is active.
    /// Not in the snapshot: a restart restarts the clock, which only keeps state longer.
    pub last_append_ms: i64,
    /// First offset of the producer's ongoing transaction in this partition.
    pub current_txn_first_offset: Option<i64>,
    /// Coordinator epoch of the producer's last transaction marker, -1 before any.
    pub coordinator_epoch: i32,
    /// Timestamp of the producer's last transaction marker, -1 before any: a marker is
    /// the producer's latest write (Kafka's `ProducerStateEntry.update` takes its time).
    /// Not in the snapshot: after a restart the last data batch's time stands in.
    pub last_marker_ms: i64,
}

impl ProducerEntry {
    fn last_sequence(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_sequence)
    }
}

/// The producer-facing fields of a batch header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProducerBatchHeader {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub kind: BatchKind,
}

/// What a batch does to its producer's transaction state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchKind {
    /// Records; a transactional batch (attributes bit 4) starts a transaction if none is
    /// ongoing.
    Data { transactional: bool },
    /// A COMMIT or ABORT marker: ends the ongoing transaction, if any.
    Marker {
        marker: crate::ControlMarker,
        coordinator_epoch: i32,
    },
}

/// A transaction a marker just ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    /// The partition's last stable offset once this transaction is complete: the first
    /// offset of the earliest other ongoing transaction, or the offset after the marker.
    pub last_stable_offset: i64,
}

/// Result of checking a batch against the producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Next in sequence: append it.
    Append,
    /// A retry of a batch already in the log.
    Duplicate(ProducerBatch),
}

fn in_sequence(last: i32, next: i32) -> bool {
    next as i64 == last as i64 + 1 || (last == i32::MAX && next == 0)
}

fn next_sequence(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

/// Checks a batch against a producer's entry (`None`: unknown producer), following
/// Kafka's rules: older epoch is fenced; a new epoch and an unknown producer start at 0; a
/// batch equal to one of the last five is a duplicate; otherwise the first sequence must
/// follow the last one.
pub(crate) fn check_sequence(
    entry: Option<&ProducerEntry>,
    batch: &ProducerBatchHeader,
) -> Result<SequenceCheck, AppendError> {
    let producer_id = batch.producer_id;
    check_epoch(entry, producer_id, batch.epoch)?;
    let Some(entry) = entry else {
        if batch.first_sequence != 0 {
            return Err(AppendError::OutOfOrderSequence {
                producer_id,
                expected: 0,
                got: batch.first_sequence,
            });
        }
        return Ok(SequenceCheck::Append);
    };
    if batch.epoch > entry.epoch {
        if batch.first_sequence != 0 {
            return Err(AppendError::OutOfOrderSequence {
                producer_id,
                expected: 0,
                got: batch.first_sequence,
            });
        }
        return Ok(SequenceCheck::Append);
    }
    if let Some(duplicate) = entry.batches.iter().find(|b| {
        b.first_sequence == batch.first_sequence && b.last_sequence == batch.last_sequence
    }) {
        return Ok(SequenceCheck::Duplicate(*duplicate));
    }
    match entry.last_sequence() {
        Some(last) if in_sequence(last, batch.first_sequence) => Ok(SequenceCheck::Append),
        Some(last) => Err(AppendError::OutOfOrderSequence {
            producer_id,
            expected: next_sequence(last),
            got: batch.first_sequence,
        }),
        None if batch.first_sequence == 0 => Ok(SequenceCheck::Append),
        None => Err(AppendError::OutOfOrderSequence {
            producer_id,
            expected: 0,
            got: batch.first_sequence,
        }),
    }
}

/// Epoch fencing: a producer epoch older than the one the log knows is refused.
pub(crate) fn check_epoch(
    entry: Option<&ProducerEntry>,
    producer_id: i64,
    epoch: i16,
) -> Result<(), AppendError> {
    match entry {
        Some(entry) if epoch < entry.epoch => Err(AppendError::InvalidProducerEpoch {
            producer_id,
            epoch,
            current_epoch: entry.epoch,
        }),
        _ => Ok(()),
    }
}

/// A transaction marker is fenced by an older producer epoch, and by an older coordinator
/// epoch than the last marker's (a zombie coordinator; Kafka's
/// TRANSACTION_COORDINATOR_FENCED).
pub(crate) fn check_marker(
    entry: Option<&ProducerEntry>,
    producer_id: i64,
    epoch: i16,
    coordinator_epoch: i32,
) -> Result<(), AppendError> {
    check_epoch(entry, producer_id, epoch)?;
    match entry {
        Some(entry) if coordinator_epoch < entry.coordinator_epoch => {
            Err(AppendError::TransactionCoordinatorFenced {
                producer_id,
                coordinator_epoch,
                current_coordinator_epoch: entry.coordinator_epoch,
            })
        }
        _ => Ok(()),
    }
}

/// Kafka's INVALID_TXN_STATE rule: while a producer has a transaction ongoing in this
/// partition, every batch it writes here must be transactional.
pub(crate) fn check_txn_state(
    entry: Option<&ProducerEntry>,
    producer_id: i64,
    transactional: bool,
) -> Result<(), AppendError> {
    let ongoing = entry.is_some_and(|e| e.current_txn_first_offset.is_some());
    if ongoing && !transactional {
        return Err(AppendError::InvalidTxnState {
            producer_id,
            reason: "a non-transactional batch while the producer has a transaction ongoing",
        });
    }
    Ok(())
}

/// Applies an appended batch to an entry (creating or re-epoching it). Returns the first
/// offset of the transaction a marker ended, if one was ongoing.
pub(crate) fn apply_batch(
    entry: &mut Option<ProducerEntry>,
    header: &ProducerBatchHeader,
    batch: ProducerBatch,
    now_ms: i64,
) -> Option<i64> {
    let entry = entry.get_or_insert_with(|| ProducerEntry {
        epoch: header.epoch,
        batches: VecDeque::with_capacity(PRODUCER_BATCHES_MAX),
        last_append_ms: now_ms,
        current_txn_first_offset: None,
        coordinator_epoch: -1,
        last_marker_ms: -1,
    });
    entry.last_append_ms = entry.last_append_ms.max(now_ms);
    if header.epoch != entry.epoch {
        entry.epoch = header.epoch;
        entry.batches.clear();
    }
    match header.kind {
        BatchKind::Marker {
            coordinator_epoch, ..
        } => {
            entry.coordinator_epoch = coordinator_epoch;
            entry.last_marker_ms = entry.last_marker_ms.max(batch.timestamp_ms);
            entry.current_txn_first_offset.take()
        }
        BatchKind::Data { transactional } => {
            if transactional && entry.current_txn_first_offset.is_none() {
                entry.current_txn_first_offset = Some(batch.first_offset);
            }
            if entry.batches.len() == PRODUCER_BATCHES_MAX {
                entry.batches.pop_front();
            }
            entry.batches.push_back(batch);
            debug_assert!(entry.batches.len() <= PRODUCER_BATCHES_MAX);
            None
        }
    }
}

/// All idempotent and transactional producers of one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
    /// (first offset, producer id) of every ongoing transaction, so the first unstable
    /// offset is a lookup, not a walk over every producer. Mirrors the entries'
    /// `current_txn_first_offset`.
    ongoing: BTreeSet<(i64, i64)>,
}

impl ProducerStateTable {
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Applies a written batch; returns the transaction a marker completed, if any.
    pub fn apply(
        &mut self,
        header: &ProducerBatchHeader,
        batch: ProducerBatch,
        now_ms: i64,
    ) -> Option<CompletedTxn> {
        let producer_id = header.producer_id;
        let mut entry = self.producers.remove(&producer_id);
        if let Some(first) = entry.as_ref().and_then(|e| e.current_txn_first_offset) {
            self.ongoing.remove(&(first, producer_id));
        }
        let completed_first_offset = apply_batch(&mut entry, header, batch, now_ms);
        self.insert(producer_id, entry.expect("apply_batch creates the entry"));
        completed_first_offset.map(|first_offset| CompletedTxn {
            producer_id,
            first_offset,
            last_offset: batch.last_offset,
            last_stable_offset: self
                .first_unstable_offset()
                .unwrap_or(batch.last_offset + 1),
        })
    }

    pub fn insert(&mut self, producer_id: i64, entry: ProducerEntry) {
        if let Some(first) = entry.current_txn_first_offset {
            self.ongoing.insert((first, producer_id));
        }
        let replaced = self.producers.insert(producer_id, entry);
        debug_assert!(
            replaced.is_none_or(|old| old.current_txn_first_offset.is_none()),
            "an entry with an ongoing transaction is replaced only through apply"
        );
    }

    /// Smallest first offset of the ongoing transactions.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.first().map(|&(first_offset, _)| first_offset)
    }

    /// Every ongoing transaction, by first offset.
    pub fn ongoing_transactions(&self) -> Vec<crate::OngoingTransaction> {
        self.ongoing
            .iter()
            .map(|&(first_offset, producer_id)| {
                let entry = &self.producers[&producer_id];
                crate::OngoingTransaction {
                    producer_id,
                    producer_epoch: entry.epoch,
                    first_offset,
                    last_append_ms: entry.last_append_ms,
                }
            })
            .collect()
    }

    /// (producer id, last offset of its newest batch): the batches the cleaner keeps.
    pub fn last_batch_offsets(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.producers
            .iter()
            .filter_map(|(id, entry)| entry.batches.back().map(|b| (*id, b.last_offset)))
    }

    /// Every producer with its epoch and newest batch, for DescribeProducers.
    pub fn describe(&self) -> Vec<crate::ProducerInfo> {
        let mut out: Vec<crate::ProducerInfo> = self
            .producers
            .iter()
            .map(|(id, entry)| {
                let last = entry.batches.back();
                crate::ProducerInfo {
                    producer_id: *id,
                    producer_epoch: entry.epoch,
                    last_sequence: last.map_or(-1, |b| b.last_sequence),
                    last_timestamp_ms: last
                        .map_or(-1, |b| b.timestamp_ms)
                        .max(entry.last_marker_ms),
                    last_offset: last.map_or(-1, |b| b.last_offset),
                    current_txn_start_offset: entry.current_txn_first_offset.unwrap_or(-1),
                    coordinator_epoch: entry.coordinator_epoch,
                }
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Forgets every producer (the log was emptied).
    pub fn clear(&mut self) {
        self.producers.clear();
        self.ongoing.clear();
    }

    /// Drops producers idle longer than `producer.id.expiration.ms`, never one with a
    /// transaction ongoing (its marker must still find it; Kafka's rule too).
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers.retain(|_, entry| {
            entry.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(entry.last_append_ms) < expiration_ms
        });
    }

    /// Writes the table as of `offset` to `dir/<offset>.snapshot`, atomically.
    pub fn write_snapshot(&self, dir: &Path, offset: i64) -> Result<(), StorageError> {
        files::write_atomically(&offset_file(dir, offset, SNAPSHOT_SUFFIX), &self.snapshot())
    }

    /// [`ProducerStateTable::write_snapshot`] without fsyncs (a roll writes it under the
    /// partition's lock); the returned handle is fsynced later. A snapshot lost to a
    /// crash costs a longer replay from an older one, never wrong state.
    pub(crate) fn write_snapshot_unsynced(
        &self,
        dir: &Path,
        offset: i64,
    ) -> Result<files::UnsyncedFile, StorageError> {
        let path = offset_file(dir, offset, SNAPSHOT_SUFFIX);
        let file = files::write_replacing_unsynced(&path, &self.snapshot())?;
        Ok(files::UnsyncedFile {
            path,
            file: std::sync::Arc::new(file),
        })
    }

    /// The snapshot file's bytes: magic, version, CRC-32C of the body, body.
    fn snapshot(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(
            4 + self.producers.len()
                * (SNAPSHOT_ENTRY_HEAD_BYTES + PRODUCER_BATCHES_MAX * SNAPSHOT_BATCH_BYTES),
        );
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let entry = &self.producers[id];
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&entry.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            body.push(entry.batches.len() as u8);
            for batch in &entry.batches {
                body.extend_from_slice(&batch.first_sequence.to_be_bytes());
                body.extend_from_slice(&batch.last_sequence.to_be_bytes());
                body.extend_from_slice(&batch.first_offset.to_be_bytes());
                body.extend_from_slice(&batch.last_offset.to_be_bytes());
                body.extend_from_slice(&batch.timestamp_ms.to_be_bytes());
            }
        }
        let mut contents = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + body.len());
        contents.extend_from_slice(SNAPSHOT_MAGIC);
        contents.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        contents.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        contents.extend_from_slice(&body);
        contents
    }

    /// Parses a snapshot (version 2, or 1 from before transactions); `None` when it is
    /// damaged in any way.
    pub fn parse_snapshot(contents: &[u8], loaded_at_ms: i64) -> Option<ProducerStateTable> {
        if contents.len() < SNAPSHOT_HEADER_BYTES || &contents[..4] != SNAPSHOT_MAGIC {
            return None;
        }
        let version = u16::from_be_bytes([contents[4], contents[5]]);
        let entry_head_bytes = match version {
            SNAPSHOT_VERSION => SNAPSHOT_ENTRY_HEAD_BYTES,
            SNAPSHOT_VERSION_WITHOUT_TRANSACTIONS => SNAPSHOT_ENTRY_HEAD_BYTES_V1,
            _ => return None,
        };
        let crc = u32::from_be_bytes(contents[6..10].try_into().ok()?);
        let body = &contents[10..];
        if crc32c::crc32c(body) != crc {
            return None;
        }
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let slice = body.get(at..at + n)?;
            at += n;
            Some(slice)
        };
        let count = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
        if count > body.len() / entry_head_bytes {
            return None;
        }
        let mut table = ProducerStateTable::default();
        for _ in 0..count {
            let id = i64::from_be_bytes(take(8)?.try_into().ok()?);
            let epoch = i16::from_be_bytes(take(2)?.try_into().ok()?);
            let (coordinator_epoch, current_txn_first_offset) = if version == SNAPSHOT_VERSION {
                let coordinator_epoch = i32::from_be_bytes(take(4)?.try_into().ok()?);
                let first_offset = i64::from_be_bytes(take(8)?.try_into().ok()?);
                if first_offset < -1 {
                    return None;
                }
                (
                    coordinator_epoch,
                    (first_offset >= 0).then_some(first_offset),
                )
            } else {
                (-1, None)
            };
            let batch_count = take(1)?[0] as usize;
            if batch_count > PRODUCER_BATCHES_MAX {
                return None;
            }
            let mut batches = VecDeque::with_capacity(PRODUCER_BATCHES_MAX);
            for _ in 0..batch_count {
                batches.push_back(ProducerBatch {
                    first_sequence: i32::from_be_bytes(take(4)?.try_into().ok()?),
                    last_sequence: i32::from_be_bytes(take(4)?.try_into().ok()?),
                    first_offset: i64::from_be_bytes(take(8)?.try_into().ok()?),
                    last_offset: i64::from_be_bytes(take(8)?.try_into().ok()?),
                    timestamp_ms: i64::from_be_bytes(take(8)?.try_into().ok()?),
                });
            }
            if table.producers.contains_key(&id) {
                return None;
            }
            table.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_append_ms: loaded_at_ms,
                    current_txn_first_offset,
                    coordinator_epoch,
                    last_marker_ms: -1,
                },
            );
        }
        if at != body.len() {
            return None;
        }
        Some(table)
    }
}

/// Offsets of the snapshot files in `dir`, ascending.
pub(crate) fn list_snapshots(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut offsets = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(StorageError::io(dir))? {
        let entry = entry.map_err(StorageError::io(dir))?;
        let name = entry.file_name();
        if let Some((offset, SNAPSHOT_SUFFIX)) = name.to_str().and_then(files::parse_offset_file) {
            offsets.push(offset);
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// Loads the newest valid snapshot at or below `at_most_offset` (<= `log_end`); damaged
/// ones and those beyond `log_end` are deleted (a snapshot beyond the end describes a tail
/// that recovery or truncation cut off). Valid ones between the two bounds stay: the
/// caller only wants to replay from further back.
pub(crate) fn load_latest_snapshot(
    dir: &Path,
    log_end: i64,
    at_most_offset: i64,
    loaded_at_ms: i64,
) -> Result<Option<(i64, ProducerStateTable)>, StorageError> {
    debug_assert!(at_most_offset <= log_end);
    let offsets = list_snapshots(dir)?;
    for &offset in offsets.iter().rev() {
        let path = offset_file(dir, offset, SNAPSHOT_SUFFIX);
        if offset > log_end {
            tracing::warn!(snapshot = %path.display(), "deleting a snapshot beyond the log end");
            files::remove_if_exists(&path)?;
            continue;
        }
        if offset > at_most_offset {
            continue;
        }
        let contents = std::fs::read(&path).map_err(StorageError::io(&path))?;
        match ProducerStateTable::parse_snapshot(&contents, loaded_at_ms) {
            Some(table) => return Ok(Some((offset, table))),
            None => {
                tracing::warn!(snapshot = %path.display(), "deleting a corrupt producer snapshot");
                files::remove_if_exists(&path)?;
            }
        }
    }
    Ok(None)
}

/// Keeps the newest `keep` snapshots and any needed by nothing else; deletes the rest.
pub(crate) fn prune_snapshots(dir: &Path, keep: usize) -> Result<(), StorageError> {
    let offsets = list_snapshots(dir)?;
    let remove = offsets.len().saturating_sub(keep);
    for &offset in &offsets[..remove] {
        files::remove_if_exists(&offset_file(dir, offset, SNAPSHOT_SUFFIX))?;
    }
    Ok(())
}
