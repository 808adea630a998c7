//! Transactions in the partition log (Kafka's ProducerStateManager + TransactionIndex):
//! transaction markers, the last stable offset, and the aborted-transaction index that
//! read_committed fetches report.
//!
//! A transactional batch (attributes bit 4) of producer P starts P's ongoing transaction at
//! its base offset when P has none; a control batch of P (written by
//! [`PartitionLog::append_control_marker`], or copied from the leader) ends it. The ongoing
//! transactions live in the producer state (and its snapshots); an ABORT marker also
//! appends `(P, first offset, marker offset, LSO after it)` to the `.txnindex` of the
//! segment it lands in, which is all a fetch needs: no record is decoded to answer one.

use bytes::BytesMut;
use strom_protocol::batch::{BatchView, ATTRIBUTE_CONTROL, ATTRIBUTE_TRANSACTIONAL};
use strom_protocol::record::{assemble_batch, decode_batch, encode_record, BatchFields};

use crate::append::Validated;
use crate::error::{AppendError, InvalidRecordReason, StorageError};
use crate::header::BatchHeader;
use crate::index::AbortedTxnEntry;
use crate::log::PartitionLog;
use crate::producer_state::{
    check_marker, BatchKind, CompletedTxn, ProducerBatch, ProducerBatchHeader,
};
use crate::AppendInfo;

/// Version of the control record key and of the end-transaction marker value.
const CONTROL_RECORD_VERSION: i16 = 0;

/// Control record type (key: version i16 = 0, type i16; value: version i16 = 0,
/// coordinator_epoch i32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlMarker {
    Abort,
    Commit,
}

impl ControlMarker {
    /// The control record type on the wire: 0 = ABORT, 1 = COMMIT.
    pub fn wire_type(self) -> i16 {
        match self {
            ControlMarker::Abort => 0,
            ControlMarker::Commit => 1,
        }
    }

    /// `None` for the other control record types (KRaft's leader change, snapshots).
    pub fn from_wire_type(wire_type: i16) -> Option<ControlMarker> {
        match wire_type {
            0 => Some(ControlMarker::Abort),
            1 => Some(ControlMarker::Commit),
            _ => None,
        }
    }
}

/// An aborted transaction as Fetch responses carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    pub producer_id: i64,
    pub first_offset: i64,
}

/// The aborted transactions one segment's `.txnindex` file (`bytes`, as on disk; a copy in
/// the remote tier) reports for a read from `fetch_offset` up to `upper_bound_offset`, as
/// [`PartitionLog::aborted_transactions`] walks each segment, and whether the search is
/// complete (an entry's last stable offset reached the upper bound: later segments cannot
/// add any). A trailing partial entry is ignored.
pub fn aborted_in_txn_index(
    bytes: &[u8],
    fetch_offset: i64,
    upper_bound_offset: i64,
) -> (Vec<AbortedTransaction>, bool) {
    use crate::index::IndexEntry;
    let mut found = Vec::new();
    let entries = bytes
        .chunks_exact(AbortedTxnEntry::BYTES)
        .map(AbortedTxnEntry::decode)
        .filter(|entry| entry.last_offset >= fetch_offset);
    let complete = collect_aborted(entries, upper_bound_offset, &mut found);
    (
        found.into_iter().map(AbortedTransaction::from).collect(),
        complete,
    )
}

/// One segment's step of the aborted-transaction search, shared by the local log and the
/// remote tier's index copies: keeps the `entries` (those with last offset >= the fetch
/// offset, in marker order) that start below `upper_bound_offset`, and stops, as Kafka
/// does, at the first whose last stable offset reaches it. True when stopped there.
fn collect_aborted(
    entries: impl IntoIterator<Item = AbortedTxnEntry>,
    upper_bound_offset: i64,
    found: &mut Vec<AbortedTxnEntry>,
) -> bool {
    for entry in entries {
        if entry.first_offset < upper_bound_offset {
            found.push(entry);
        }
        if entry.last_stable_offset >= upper_bound_offset {
            return true;
        }
    }
    false
}

impl From<AbortedTxnEntry> for AbortedTransaction {
    fn from(entry: AbortedTxnEntry) -> Self {
        AbortedTransaction {
            producer_id: entry.producer_id,
            first_offset: entry.first_offset,
        }
    }
}

/// A transaction not yet ended by a marker in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OngoingTransaction {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub first_offset: i64,
    /// Broker time of the producer's last append here.
    pub last_append_ms: i64,
}

impl CompletedTxn {
    pub(crate) fn index_entry(&self) -> AbortedTxnEntry {
        AbortedTxnEntry {
            version: 0,
            producer_id: self.producer_id,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            last_stable_offset: self.last_stable_offset,
        }
    }
}

/// The one-record control batch of a marker, at base offset 0 (the append assigns it).
fn encode_marker_batch(header: &ProducerBatchHeader, leader_epoch: i32, now_ms: i64) -> BytesMut {
    let BatchKind::Marker {
        marker,
        coordinator_epoch,
    } = header.kind
    else {
        panic!("a marker batch needs a marker, not {:?}", header.kind);
    };
    let mut key = [0u8; 4];
    key[..2].copy_from_slice(&CONTROL_RECORD_VERSION.to_be_bytes());
    key[2..].copy_from_slice(&marker.wire_type().to_be_bytes());
    let mut value = [0u8; 6];
    value[..2].copy_from_slice(&CONTROL_RECORD_VERSION.to_be_bytes());
    value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
    let mut records = BytesMut::new();
    encode_record(&mut records, Some(&key), Some(&value), &[], 0, 0);
    assemble_batch(
        &BatchFields {
            base_offset: 0,
            partition_leader_epoch: leader_epoch,
            attributes: ATTRIBUTE_TRANSACTIONAL | ATTRIBUTE_CONTROL,
            last_offset_delta: 0,
            base_timestamp_ms: now_ms,
            max_timestamp_ms: now_ms,
            producer_id: header.producer_id,
            producer_epoch: header.epoch,
            base_sequence: -1,
            record_count: 1,
        },
        &records,
    )
}

/// The marker and coordinator epoch of a stored control batch (its first record's key and
/// value). `None` when the batch is no transaction marker or does not decode.
pub(crate) fn decode_marker(batch_bytes: &[u8]) -> Option<(ControlMarker, i32)> {
    let view = BatchView::parse(batch_bytes).ok()?;
    let records = decode_batch(&view).ok()?;
    let record = records.first()?;
    let key = record.key.as_deref().filter(|key| key.len() >= 4)?;
    let marker = ControlMarker::from_wire_type(i16::from_be_bytes([key[2], key[3]]))?;
    let value = record.value.as_deref().filter(|value| value.len() >= 6)?;
    let coordinator_epoch = i32::from_be_bytes(value[2..6].try_into().expect("4"));
    Some((marker, coordinator_epoch))
}

/// The producer-state update of a stored batch (recovery's replay, a follower's append),
/// with the decoded marker of a control batch. `None` for batches without a producer id
/// and for control batches that are no transaction marker.
pub(crate) fn stored_batch_update(
    header: &BatchHeader,
    marker: Option<(ControlMarker, i32)>,
) -> Option<(ProducerBatchHeader, ProducerBatch)> {
    if header.producer_id < 0 {
        return None;
    }
    let kind = if header.is_control() {
        let Some((marker, coordinator_epoch)) = marker else {
            tracing::warn!(
                offset = header.base_offset,
                producer_id = header.producer_id,
                "ignoring a control batch that is no transaction marker"
            );
            return None;
        };
        BatchKind::Marker {
            marker,
            coordinator_epoch,
        }
    } else {
        BatchKind::Data {
            transactional: header.is_transactional(),
        }
    };
    Some((
        ProducerBatchHeader {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            kind,
        },
        ProducerBatch {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            timestamp_ms: header.max_timestamp_ms,
        },
    ))
}

/// Whether a completed transaction goes into the `.txnindex`.
pub(crate) fn is_abort(kind: BatchKind) -> bool {
    matches!(
        kind,
        BatchKind::Marker {
            marker: ControlMarker::Abort,
            ..
        }
    )
}

impl PartitionLog {
    /// Appends a one-record control batch (attributes: transactional | control, producer
    /// id/epoch set, baseSequence -1, partitionLeaderEpoch = `leader_epoch`, timestamps =
    /// `now_ms`) that ends the producer's ongoing transaction in this partition.
    ///
    /// Fencing: a marker whose `producer_epoch` is lower than the producer's current epoch
    /// is [`AppendError::InvalidProducerEpoch`]; one whose `coordinator_epoch` is lower
    /// than that of the producer's last marker is
    /// [`AppendError::TransactionCoordinatorFenced`]. A marker for a producer with no
    /// ongoing transaction is still written (Kafka does) and changes nothing else. An
    /// ABORT records an aborted-transaction entry (producer id, first offset, last offset
    /// = the marker's offset, last stable offset after completion) in the `.txnindex` of
    /// the segment the marker lands in. Afterwards the producer's epoch is the marker's.
    pub fn append_control_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: ControlMarker,
        coordinator_epoch: i32,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.check_not_fenced()?;
        if producer_id < 0 {
            return Err(AppendError::InvalidRecord {
                batch_index: 0,
                reason: InvalidRecordReason::MissingProducerId,
            });
        }
        check_marker(
            self.producers.get(producer_id),
            producer_id,
            producer_epoch,
            coordinator_epoch,
        )?;
        let log_end = self.log_end_offset();
        if log_end >= crate::append::OFFSET_MAX {
            return Err(AppendError::InvalidRecord {
                batch_index: 0,
                reason: InvalidRecordReason::OffsetsExhausted,
            });
        }
        let header = ProducerBatchHeader {
            producer_id,
            epoch: producer_epoch,
            first_sequence: -1,
            last_sequence: -1,
            kind: BatchKind::Marker {
                marker,
                coordinator_epoch,
            },
        };
        let records = encode_marker_batch(&header, leader_epoch, now_ms);
        let update = (
            header,
            ProducerBatch {
                first_sequence: -1,
                last_sequence: -1,
                first_offset: log_end,
                last_offset: log_end,
                timestamp_ms: now_ms,
            },
        );
        let validated = Validated {
            offset_count: 1,
            max_timestamp_ms: now_ms,
            producer_updates: vec![update],
        };
        self.write_validated(records, validated, leader_epoch, now_ms)
    }

    /// Applies a written batch to the producer state; when it was an ABORT marker that
    /// ended a transaction, records it in the `.txnindex` of the segment holding the
    /// marker. A failed index write fences the log (the marker is already in the log).
    pub(crate) fn apply_producer_update(
        &mut self,
        header: &ProducerBatchHeader,
        batch: ProducerBatch,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let completed = self.producers.apply(header, batch, now_ms);
        let Some(completed) = completed.filter(|_| is_abort(header.kind)) else {
            return Ok(());
        };
        let segment = self
            .segments
            .range_mut(..=completed.last_offset)
            .next_back()
            .map(|(_, segment)| segment)
            .expect("the marker was just written to a segment");
        if let Err(error) = segment.append_aborted(completed.index_entry()) {
            tracing::error!(
                dir = %self.dir.display(),
                %error,
                "recording an aborted transaction failed; fencing the log"
            );
            self.fenced = true;
            return Err(error);
        }
        Ok(())
    }

    /// Smallest first offset of the ongoing transactions, `None` when there are none.
    /// A transaction whose first records retention already deleted counts from the log
    /// start (Kafka evicts it from the LSO computation the same way).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers
            .first_unstable_offset()
            .map(|offset| offset.max(self.log_start_offset))
    }

    /// `first_unstable_offset().unwrap_or(log_end_offset())`. (The broker takes
    /// min(this, high watermark).)
    pub fn last_stable_offset(&self) -> i64 {
        self.first_unstable_offset()
            .unwrap_or_else(|| self.log_end_offset())
    }

    /// Aborted transactions a fetch from `fetch_offset` that returns records below
    /// `upper_bound_offset` must report: entries with last offset >= `fetch_offset` and
    /// first offset < `upper_bound_offset`, ordered by first offset.
    ///
    /// Scans the `.txnindex` of the segment holding `fetch_offset` and of later segments
    /// (in memory for the active one, one `pread` for a sealed one that has entries, no
    /// I/O for one without), and stops, as Kafka does, at the first entry whose last
    /// stable offset reaches `upper_bound_offset`: every transaction completed after it
    /// started at or above the bound. A transaction whose marker lies beyond the bound
    /// while its records lie below is therefore still found. No record is decoded.
    pub fn aborted_transactions(
        &self,
        fetch_offset: i64,
        upper_bound_offset: i64,
    ) -> Result<Vec<AbortedTransaction>, StorageError> {
        let mut found: Vec<AbortedTransaction> = self
            .aborted_entries(fetch_offset, upper_bound_offset)?
            .into_iter()
            .map(AbortedTransaction::from)
            .collect();
        found.sort_by_key(|txn| (txn.first_offset, txn.producer_id));
        Ok(found)
    }

    /// The `.txnindex` entries [`PartitionLog::aborted_transactions`] reports, in marker
    /// order (the cleaner also needs their last offsets).
    pub(crate) fn aborted_entries(
        &self,
        fetch_offset: i64,
        upper_bound_offset: i64,
    ) -> Result<Vec<AbortedTxnEntry>, StorageError> {
        let mut found = Vec::new();
        for segment in self.segments_from(fetch_offset) {
            if segment.has_aborted()
                && collect_aborted(
                    segment.aborted_from(fetch_offset)?,
                    upper_bound_offset,
                    &mut found,
                )
            {
                break;
            }
        }
        Ok(found)
    }

    /// Ongoing transactions by first offset (DescribeProducers' currentTxnStartOffset,
    /// the hanging-transaction finder).
    pub fn ongoing_transactions(&self) -> Vec<OngoingTransaction> {
        self.producers.ongoing_transactions()
    }
}
