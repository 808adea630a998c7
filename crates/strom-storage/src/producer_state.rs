//! Idempotent producer state: per producer id the epoch and the last five batches, so a
//! retried batch is recognised as a duplicate and a gap in sequences is refused.
//!
//! Snapshot file `<offset>.snapshot` (the state as of log offset `offset`), big-endian:
//! `magic "STPS" | version u16 = 1 | crc32c u32 (of everything after it) | count u32 |
//! count x (producer_id i64, epoch i16, batch_count u8, batch_count x (first_seq i32,
//! last_seq i32, first_offset i64, last_offset i64, timestamp_ms i64))`.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use crate::error::{AppendError, StorageError};
use crate::files::{self, offset_file, SNAPSHOT_SUFFIX};

/// Batches remembered per producer for duplicate detection (Kafka keeps five, matching
/// `max.in.flight.requests.per.connection` <= 5 for idempotent producers).
pub(crate) const PRODUCER_BATCHES_MAX: usize = 5;
const SNAPSHOT_MAGIC: &[u8; 4] = b"STPS";
const SNAPSHOT_VERSION: u16 = 1;
const SNAPSHOT_HEADER_BYTES: usize = 4 + 2 + 4 + 4;
const SNAPSHOT_BATCH_BYTES: usize = 4 + 4 + 8 + 8 + 8;
const SNAPSHOT_ENTRY_HEAD_BYTES: usize = 8 + 2 + 1;

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
    pub is_control: bool,
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
    if batch.epoch < entry.epoch {
        return Err(AppendError::InvalidProducerEpoch {
            producer_id,
            epoch: batch.epoch,
            current_epoch: entry.epoch,
        });
    }
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

/// Applies an appended batch to an entry (creating or re-epoching it).
pub(crate) fn apply_batch(
    entry: &mut Option<ProducerEntry>,
    header: &ProducerBatchHeader,
    batch: ProducerBatch,
    now_ms: i64,
) {
    let entry = entry.get_or_insert_with(|| ProducerEntry {
        epoch: header.epoch,
        batches: VecDeque::with_capacity(PRODUCER_BATCHES_MAX),
        last_append_ms: now_ms,
    });
    entry.last_append_ms = entry.last_append_ms.max(now_ms);
    if header.epoch != entry.epoch {
        entry.epoch = header.epoch;
        entry.batches.clear();
    }
    if header.is_control {
        return;
    }
    if entry.batches.len() == PRODUCER_BATCHES_MAX {
        entry.batches.pop_front();
    }
    entry.batches.push_back(batch);
    debug_assert!(entry.batches.len() <= PRODUCER_BATCHES_MAX);
}

/// All idempotent producers of one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateTable {
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn apply(&mut self, header: &ProducerBatchHeader, batch: ProducerBatch, now_ms: i64) {
        let mut entry = self.producers.remove(&header.producer_id);
        apply_batch(&mut entry, header, batch, now_ms);
        self.producers.insert(
            header.producer_id,
            entry.expect("apply_batch creates the entry"),
        );
    }

    pub fn insert(&mut self, producer_id: i64, entry: ProducerEntry) {
        self.producers.insert(producer_id, entry);
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
                    last_timestamp_ms: last.map_or(-1, |b| b.timestamp_ms),
                    last_offset: last.map_or(-1, |b| b.last_offset),
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
    }

    /// Drops producers idle longer than `producer.id.expiration.ms`.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers
            .retain(|_, entry| now_ms.saturating_sub(entry.last_append_ms) < expiration_ms);
    }

    /// Writes the table as of `offset` to `dir/<offset>.snapshot`, atomically.
    pub fn write_snapshot(&self, dir: &Path, offset: i64) -> Result<(), StorageError> {
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
        files::write_atomically(&offset_file(dir, offset, SNAPSHOT_SUFFIX), &contents)
    }

    /// Parses a snapshot; `None` when it is damaged in any way.
    pub fn parse_snapshot(contents: &[u8], loaded_at_ms: i64) -> Option<ProducerStateTable> {
        if contents.len() < SNAPSHOT_HEADER_BYTES
            || &contents[..4] != SNAPSHOT_MAGIC
            || u16::from_be_bytes([contents[4], contents[5]]) != SNAPSHOT_VERSION
        {
            return None;
        }
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
        if count > body.len() / SNAPSHOT_ENTRY_HEAD_BYTES {
            return None;
        }
        let mut table = ProducerStateTable::default();
        for _ in 0..count {
            let id = i64::from_be_bytes(take(8)?.try_into().ok()?);
            let epoch = i16::from_be_bytes(take(2)?.try_into().ok()?);
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
            table.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_append_ms: loaded_at_ms,
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

/// Loads the newest valid snapshot at or below `max_offset`; damaged or newer ones are
/// deleted (a newer one describes a tail that recovery cut off).
pub(crate) fn load_latest_snapshot(
    dir: &Path,
    max_offset: i64,
    loaded_at_ms: i64,
) -> Result<Option<(i64, ProducerStateTable)>, StorageError> {
    let offsets = list_snapshots(dir)?;
    for &offset in offsets.iter().rev() {
        let path = offset_file(dir, offset, SNAPSHOT_SUFFIX);
        if offset > max_offset {
            tracing::warn!(snapshot = %path.display(), "deleting a snapshot beyond the log end");
            files::remove_if_exists(&path)?;
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
