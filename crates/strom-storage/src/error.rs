//! One error enum per concern: I/O and on-disk state ([`StorageError`]), appends
//! ([`AppendError`], mapped to Kafka error codes by the broker) and reads ([`ReadError`]).

use std::path::PathBuf;

use strom_protocol::batch::BatchError;
use strom_protocol::record::RecordError;
use thiserror::Error;

/// A failure of the disk or of on-disk state the log cannot repair by itself.
#[derive(Debug, Error)]
pub enum StorageError {
    /// An I/O call failed on `path`.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An earlier write failed and could not be rolled back: the log refuses further
    /// writes rather than risk a hole or a torn batch in the middle of the file.
    #[error("log {dir} is fenced after a failed write; reopen it to recover")]
    Fenced { dir: PathBuf },
    /// A segment that passed recovery no longer parses at `position_bytes` (it was changed
    /// behind the log's back).
    #[error("segment {path} is corrupt at byte {position_bytes}: {reason}")]
    CorruptSegment {
        path: PathBuf,
        position_bytes: u64,
        reason: &'static str,
    },
    /// A checkpoint file exists but cannot be trusted.
    #[error("checkpoint {path} is corrupt: {reason}")]
    CorruptCheckpoint { path: PathBuf, reason: &'static str },
    /// Records of a stored batch could not be decoded (timestamp lookups only).
    #[error("cannot decode the batch at byte {position_bytes} of {path}: {source}")]
    Decode {
        path: PathBuf,
        position_bytes: u64,
        #[source]
        source: RecordError,
    },
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StorageError {
        let path = path.into();
        move |source| StorageError::Io { path, source }
    }
}

/// Why a Produce request's records were refused. Nothing was appended.
#[derive(Debug, Error)]
pub enum AppendError {
    /// Framing, magic, CRC or record count of batch number `batch_index` (0-based) is
    /// wrong: Kafka's CORRUPT_MESSAGE.
    #[error("batch {batch_index} of the request is corrupt: {source}")]
    CorruptMessage {
        batch_index: usize,
        #[source]
        source: BatchError,
    },
    /// One batch is larger than `max.message.bytes`: MESSAGE_TOO_LARGE.
    #[error("batch of {size_bytes} bytes exceeds max.message.bytes {max_bytes}")]
    MessageTooLarge { size_bytes: usize, max_bytes: u32 },
    /// The request's records are larger than `segment.bytes`: RECORD_LIST_TOO_LARGE.
    #[error("records of {size_bytes} bytes exceed segment.bytes {segment_bytes}")]
    RecordListTooLarge {
        size_bytes: usize,
        segment_bytes: u64,
    },
    /// Well-formed bytes that a client must not send: INVALID_RECORD.
    #[error("batch {batch_index} is invalid: {reason}")]
    InvalidRecord {
        batch_index: usize,
        reason: InvalidRecordReason,
    },
    /// Some records of batch number `batch_index` (0-based, within the request) break the
    /// log's rules (KIP-467): the first [`crate::RECORD_ERRORS_MAX`] are named in `errors`,
    /// in record order; `refused_total` counts them all. The broker answers
    /// INVALID_TIMESTAMP if any named error is a timestamp's, else INVALID_RECORD, with
    /// `record_errors`. Only the first such batch is reported, as Kafka does.
    #[error("batch {batch_index}: {refused_total} of its records are refused")]
    RecordErrors {
        batch_index: usize,
        errors: Vec<RejectedRecord>,
        refused_total: usize,
    },
    /// The producer epoch is older than the one the log knows: INVALID_PRODUCER_EPOCH.
    #[error(
        "producer {producer_id} epoch {epoch} is older than the current epoch {current_epoch}"
    )]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },
    /// A non-transactional batch from a producer whose transaction in this partition is
    /// still ongoing: INVALID_TXN_STATE.
    #[error("producer {producer_id}: {reason}")]
    InvalidTxnState {
        producer_id: i64,
        reason: &'static str,
    },
    /// A transaction marker from a coordinator epoch older than the one that wrote the
    /// producer's last marker (a zombie coordinator): TRANSACTION_COORDINATOR_FENCED.
    #[error(
        "producer {producer_id}: coordinator epoch {coordinator_epoch} is older than {current_coordinator_epoch}"
    )]
    TransactionCoordinatorFenced {
        producer_id: i64,
        coordinator_epoch: i32,
        current_coordinator_epoch: i32,
    },
    /// The batch's first sequence is not the next one: OUT_OF_ORDER_SEQUENCE_NUMBER.
    #[error("producer {producer_id}: expected sequence {expected}, got {got}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    /// A follower's batch starts below the offset the log expects next (the follower must
    /// truncate first): Kafka's UnexpectedAppendOffset, UNKNOWN_SERVER_ERROR on the wire.
    #[error(
        "batch {batch_index} starts at offset {base_offset}, expected at least {next_offset_min}"
    )]
    UnexpectedOffset {
        batch_index: usize,
        base_offset: i64,
        next_offset_min: i64,
    },
    /// The disk failed (KAFKA_STORAGE_ERROR).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a well-formed batch is refused ([`AppendError::InvalidRecord`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum InvalidRecordReason {
    /// The request carried no batch at all.
    #[error("the records are empty")]
    Empty,
    /// Producers send base offset 0; the broker assigns offsets.
    #[error("base offset is {base_offset}, clients must send 0")]
    NonZeroBaseOffset { base_offset: i64 },
    /// Control batches (transaction markers) come from the coordinator, never a producer.
    #[error("clients must not send control batches")]
    ControlBatch,
    /// A transactional batch (or a transaction marker) without a producer id.
    #[error("transactional batches need a producer id")]
    MissingProducerId,
    /// The batch would take offsets beyond the largest the log assigns.
    #[error("the batch would exhaust the offset space")]
    OffsetsExhausted,
    /// The records of a batch could not be walked to check their keys or timestamps.
    #[error("the records of the batch cannot be decoded: {0}")]
    Undecodable(&'static str),
}

/// One refused record of a batch ([`AppendError::RecordErrors`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("record {record_index} (offset delta {offset_delta}): {reason}")]
pub struct RejectedRecord {
    /// Position of the record within its batch (0-based): the wire's `batch_index`.
    pub record_index: u32,
    /// The record's offset delta, which Kafka's messages call its offset.
    pub offset_delta: i32,
    pub reason: RecordErrorReason,
}

/// Why one record was refused. A record gets one reason: its key is checked before its
/// timestamp, as Kafka does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RecordErrorReason {
    /// A record without a key sent to a compacted log.
    #[error("compacted topic cannot accept message without key")]
    MissingKey,
    /// With CreateTime, a timestamp outside `[now - message.timestamp.before.max.ms,
    /// now + message.timestamp.after.max.ms]` (bounds saturate at the i64 range).
    #[error("timestamp {timestamp_ms} is outside [{min_ms}, {max_ms}]")]
    TimestampOutOfRange {
        timestamp_ms: i64,
        min_ms: i64,
        max_ms: i64,
    },
    /// A producer's batch carries the LogAppendTime attribute, which only the broker sets
    /// (refused when the log is LogAppendTime or the batch has no timestamp; a CreateTime
    /// log range-checks the batch's timestamp instead). Key and value lengths are for the
    /// message, which names the record as Kafka prints it.
    #[error("a producer must not set the LogAppendTime timestamp type")]
    LogAppendTimeFromProducer {
        timestamp_ms: i64,
        key_bytes: usize,
        value_bytes: usize,
    },
}

impl RecordErrorReason {
    /// True for a timestamp error (INVALID_TIMESTAMP rather than INVALID_RECORD).
    pub fn is_timestamp(&self) -> bool {
        matches!(
            self,
            RecordErrorReason::TimestampOutOfRange { .. }
                | RecordErrorReason::LogAppendTimeFromProducer { .. }
        )
    }
}

/// Why a read was refused.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The offset lies outside `[log_start, log_end]`: OFFSET_OUT_OF_RANGE.
    #[error("offset {requested} is outside the log [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        requested: i64,
        log_start: i64,
        log_end: i64,
    },
    /// The disk failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
