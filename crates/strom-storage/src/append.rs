//! The produce path: validate every batch, assign offsets in place, write once.

use bytes::BytesMut;
use strom_protocol::batch::{
    batch_size_bytes, set_base_offset, set_log_append_time, set_partition_leader_epoch, BatchError,
    BatchIter,
};

use crate::config::TimestampType;
use crate::error::{AppendError, InvalidRecordReason, RecordErrorReason, RejectedRecord};
use crate::log::PartitionLog;
use crate::producer_state::{
    apply_batch, check_epoch, check_sequence, check_txn_state, BatchKind, ProducerBatch,
    ProducerBatchHeader, ProducerEntry, SequenceCheck,
};
use crate::AppendInfo;

/// Largest offset the log assigns. Far beyond any real log, but it keeps offset arithmetic
/// from overflowing however many offsets hostile batches claim.
pub(crate) const OFFSET_MAX: i64 = i64::MAX / 4;

/// Most refused records one [`AppendError::RecordErrors`] names. A compressed batch may
/// hold tens of millions of tiny records; naming each would cost more memory (and response
/// bytes) than the request. librdkafka's default `batch.num.messages` fits well within.
pub const RECORD_ERRORS_MAX: usize = 10_000;

/// Smallest encoding of a record: length, attributes, timestamp delta, offset delta, key
/// length, value length and header count, one byte each.
const RECORD_BYTES_MIN: usize = 7;

/// Records are never decoded on append, so a hostile batch could claim billions of records
/// (and burn as many offsets) in a few bytes. Bound the claim by what the bytes can hold:
/// uncompressed, 7 bytes per record; compressed, 7 bytes per record of the largest
/// decompressed size any reader accepts.
fn record_count_is_plausible(view: &strom_protocol::batch::BatchView<'_>) -> bool {
    let record_count = view.record_count().max(0) as usize;
    let bytes_available = match view.compression() {
        strom_protocol::batch::Compression::None => view.records_bytes().len(),
        _ => strom_protocol::record::DECOMPRESSED_BATCH_BYTES_MAX,
    };
    record_count <= bytes_available / RECORD_BYTES_MIN
}

/// What validation learned about a request's records.
pub(crate) struct Validated {
    /// Records (= offsets) the request takes.
    pub offset_count: i64,
    pub max_timestamp_ms: i64,
    /// Producer-state updates to apply once the write succeeded, in batch order.
    pub producer_updates: Vec<(ProducerBatchHeader, ProducerBatch)>,
}

/// Who wrote the records: a producer (sequence checks) or the broker on a producer's
/// behalf (no sequences; epoch fencing and transaction rules still apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Client,
    Coordinator,
}

enum Validation {
    Append(Validated),
    Duplicate(ProducerBatch),
}

impl PartitionLog {
    /// Validates every batch of a Produce request's records blob (magic 2, lengths,
    /// CRC-32C, record count, size <= `max.message.bytes`, idempotent producer
    /// id/epoch/sequence), assigns offsets by rewriting each batch's `baseOffset` in place
    /// (and `partitionLeaderEpoch`; LogAppendTime stamps `maxTimestamp` and recomputes the
    /// CRC), appends to the active segment with a single write, updates the sparse indexes
    /// and the log-end offset.
    ///
    /// Never decodes records; compressed batches are stored as they came. All-or-nothing:
    /// if any batch is invalid nothing is appended. A retried batch of an idempotent
    /// producer appends nothing and answers the original offsets with `duplicate = true`.
    ///
    /// A [`AppendError::Storage`] after the write (an fsync demanded by `flush.messages`
    /// failed) fences the log: the batch may be in the page cache, but no further write is
    /// accepted until the log is reopened and recovered.
    pub fn append_as_leader(
        &mut self,
        records: BytesMut,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.append_validating(records, leader_epoch, now_ms, Origin::Client)
    }

    /// Like [`PartitionLog::append_as_leader`], but for records the broker itself writes
    /// on behalf of a producer (transactional offset commits into `__consumer_offsets`,
    /// state into `__transaction_state`): same validation, offset assignment and
    /// transaction tracking, but no sequence checks (batches may carry baseSequence -1
    /// with a producer id), so no duplicate detection either; epoch fencing still applies.
    pub fn append_as_coordinator(
        &mut self,
        records: BytesMut,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.append_validating(records, leader_epoch, now_ms, Origin::Coordinator)
    }

    fn append_validating(
        &mut self,
        records: BytesMut,
        leader_epoch: i32,
        now_ms: i64,
        origin: Origin,
    ) -> Result<AppendInfo, AppendError> {
        self.check_not_fenced()?;
        let log_end = self.log_end_offset();
        let validated = match self.validate(&records, log_end, now_ms, origin)? {
            Validation::Append(validated) => validated,
            Validation::Duplicate(batch) => {
                return Ok(AppendInfo {
                    base_offset: batch.first_offset,
                    last_offset: batch.last_offset,
                    log_append_time_ms: match self.config.message_timestamp_type {
                        TimestampType::LogAppendTime => batch.timestamp_ms,
                        TimestampType::CreateTime => -1,
                    },
                    log_start_offset: self.log_start_offset,
                    record_count: batch.last_offset - batch.first_offset + 1,
                    duplicate: true,
                })
            }
        };
        self.write_validated(records, validated, leader_epoch, now_ms)
    }

    /// Assigns offsets to validated batches, appends them with one write and applies
    /// their producer-state updates. The records' base offsets are rewritten in place.
    pub(crate) fn write_validated(
        &mut self,
        mut records: BytesMut,
        validated: Validated,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let log_end = self.log_end_offset();
        self.maybe_roll(records.len() as u64, &validated, now_ms)?;

        let log_append_time = self.config.message_timestamp_type == TimestampType::LogAppendTime;
        let mut position = 0usize;
        let mut next_offset = log_end;
        while position < records.len() {
            let size = batch_size_bytes(&records[position..]).expect("validated batch");
            let batch = &mut records[position..position + size];
            let last_offset_delta = i32::from_be_bytes(batch[23..27].try_into().expect("4"));
            set_base_offset(batch, next_offset);
            set_partition_leader_epoch(batch, leader_epoch);
            if log_append_time {
                set_log_append_time(batch, now_ms);
            }
            next_offset += last_offset_delta as i64 + 1;
            position += size;
        }
        assert_eq!(next_offset, log_end + validated.offset_count);

        if self.epochs.assign(leader_epoch, log_end) {
            if let Err(error) = self.epochs.persist() {
                self.epochs.remove_latest();
                return Err(error.into());
            }
        }
        let interval = self.config.index_interval_bytes;
        if let Err((error, rolled_back)) = self.active_mut().append(&records, interval) {
            if !rolled_back {
                tracing::error!(
                    dir = %self.dir.display(),
                    %error,
                    "a failed append could not be rolled back; fencing the log"
                );
                self.fenced = true;
            }
            return Err(error.into());
        }
        for (header, mut batch) in validated.producer_updates {
            if log_append_time {
                batch.timestamp_ms = now_ms;
            }
            self.apply_producer_update(&header, batch, now_ms)?;
        }
        self.unflushed_messages = self
            .unflushed_messages
            .saturating_add(validated.offset_count);
        self.maybe_flush(now_ms)?;
        debug_assert!(self.log_end_offset() == next_offset);
        Ok(AppendInfo {
            base_offset: log_end,
            last_offset: next_offset - 1,
            log_append_time_ms: if log_append_time { now_ms } else { -1 },
            log_start_offset: self.log_start_offset,
            record_count: validated.offset_count,
            duplicate: false,
        })
    }

    /// Checks every batch without changing anything.
    fn validate(
        &self,
        records: &[u8],
        log_end: i64,
        now_ms: i64,
        origin: Origin,
    ) -> Result<Validation, AppendError> {
        if records.is_empty() {
            return Err(AppendError::InvalidRecord {
                batch_index: 0,
                reason: InvalidRecordReason::Empty,
            });
        }
        if records.len() as u64 > self.config.segment_bytes_max() {
            return Err(AppendError::RecordListTooLarge {
                size_bytes: records.len(),
                segment_bytes: self.config.segment_bytes,
            });
        }
        let mut offset_count = 0i64;
        let mut max_timestamp_ms = -1i64;
        let mut producer_updates = Vec::new();
        // Producer entries as this request changes them: batches of one producer in one
        // request must follow each other too. Few producers per request: a Vec suffices.
        let mut overlay: Vec<(i64, Option<ProducerEntry>)> = Vec::new();
        for (batch_index, item) in BatchIter::new(records).enumerate() {
            let view = item.map_err(|source| AppendError::CorruptMessage {
                batch_index,
                source,
            })?;
            if view.size_bytes() > self.config.max_message_bytes as usize {
                return Err(AppendError::MessageTooLarge {
                    size_bytes: view.size_bytes(),
                    max_bytes: self.config.max_message_bytes,
                });
            }
            view.verify_crc()
                .map_err(|source| AppendError::CorruptMessage {
                    batch_index,
                    source,
                })?;
            if view.record_count() as i64 != view.last_offset_delta() as i64 + 1 {
                return Err(AppendError::CorruptMessage {
                    batch_index,
                    source: BatchError::InvalidRecordCount {
                        record_count: view.record_count(),
                        last_offset_delta: view.last_offset_delta(),
                    },
                });
            }
            if !record_count_is_plausible(&view) {
                return Err(AppendError::CorruptMessage {
                    batch_index,
                    source: BatchError::InvalidRecordCount {
                        record_count: view.record_count(),
                        last_offset_delta: view.last_offset_delta(),
                    },
                });
            }
            if view.base_offset() != 0 {
                return Err(AppendError::InvalidRecord {
                    batch_index,
                    reason: InvalidRecordReason::NonZeroBaseOffset {
                        base_offset: view.base_offset(),
                    },
                });
            }
            if view.is_control() {
                return Err(AppendError::InvalidRecord {
                    batch_index,
                    reason: InvalidRecordReason::ControlBatch,
                });
            }
            if let Some(rules) = RecordRules::of(&self.config, &view, now_ms) {
                rules.check(&view, batch_index)?;
            }
            let first_offset = log_end + offset_count;
            let last_offset = first_offset + view.last_offset_delta() as i64;
            if view.producer_id() < 0 && view.is_transactional() {
                return Err(AppendError::InvalidRecord {
                    batch_index,
                    reason: InvalidRecordReason::MissingProducerId,
                });
            }
            if view.producer_id() >= 0 {
                let header = ProducerBatchHeader {
                    producer_id: view.producer_id(),
                    epoch: view.producer_epoch(),
                    first_sequence: view.base_sequence(),
                    last_sequence: view.last_sequence(),
                    kind: BatchKind::Data {
                        transactional: view.is_transactional(),
                    },
                };
                let slot = match overlay.iter().position(|(id, _)| *id == header.producer_id) {
                    Some(slot) => slot,
                    None => {
                        let entry = self.producers.get(header.producer_id).cloned();
                        overlay.push((header.producer_id, entry));
                        overlay.len() - 1
                    }
                };
                let entry = &mut overlay[slot].1;
                let check = match origin {
                    Origin::Client => check_sequence(entry.as_ref(), &header)?,
                    Origin::Coordinator => {
                        check_epoch(entry.as_ref(), header.producer_id, header.epoch)?;
                        SequenceCheck::Append
                    }
                };
                match check {
                    SequenceCheck::Duplicate(batch) if batch.first_offset < log_end => {
                        return Ok(Validation::Duplicate(batch));
                    }
                    SequenceCheck::Duplicate(_) => {
                        // The same batch twice in one request: the second is out of order.
                        return Err(AppendError::OutOfOrderSequence {
                            producer_id: header.producer_id,
                            expected: header.last_sequence.wrapping_add(1).max(0),
                            got: header.first_sequence,
                        });
                    }
                    SequenceCheck::Append => {}
                }
                check_txn_state(entry.as_ref(), header.producer_id, view.is_transactional())?;
                let batch = ProducerBatch {
                    first_sequence: header.first_sequence,
                    last_sequence: header.last_sequence,
                    first_offset,
                    last_offset,
                    timestamp_ms: view.max_timestamp(),
                };
                let completed = apply_batch(entry, &header, batch, now_ms);
                debug_assert!(completed.is_none(), "data batches complete no transaction");
                producer_updates.push((header, batch));
            }
            offset_count += view.last_offset_delta() as i64 + 1;
            max_timestamp_ms = max_timestamp_ms.max(view.max_timestamp());
            if log_end + offset_count > OFFSET_MAX {
                return Err(AppendError::InvalidRecord {
                    batch_index,
                    reason: InvalidRecordReason::OffsetsExhausted,
                });
            }
        }
        assert!(
            offset_count > 0,
            "a non-empty blob holds at least one record"
        );
        Ok(Validation::Append(Validated {
            offset_count,
            max_timestamp_ms,
            producer_updates,
        }))
    }

    /// Rolls the active segment when the incoming records would overflow `segment.bytes`,
    /// it is older than `segment.ms`, an index is full, or offsets would no longer fit
    /// its 32-bit relative offsets.
    fn maybe_roll(
        &mut self,
        incoming_bytes: u64,
        validated: &Validated,
        now_ms: i64,
    ) -> Result<(), AppendError> {
        let log_end = self.log_end_offset();
        let active = self.active();
        if active.is_empty() {
            return Ok(());
        }
        let too_big = active.size_bytes() + incoming_bytes > self.config.segment_bytes_max();
        // The timestamp the batches will carry once stored (LogAppendTime stamps `now_ms`).
        let incoming_timestamp_ms = match self.config.message_timestamp_type {
            TimestampType::LogAppendTime => now_ms,
            TimestampType::CreateTime => validated.max_timestamp_ms,
        };
        // KIP-354: a compacted log also rolls after `max.compaction.lag.ms`, so no record
        // waits in the active segment (which is never cleaned) longer than that.
        let segment_ms = if self.config.cleanup_compact {
            self.config
                .segment_ms
                .min(self.config.max_compaction_lag_ms)
        } else {
            self.config.segment_ms
        };
        let too_old = active.age_for_roll_ms(incoming_timestamp_ms, now_ms) > segment_ms;
        let last_incoming = log_end + validated.offset_count - 1;
        let offsets_overflow = last_incoming - active.base_offset() > i32::MAX as i64;
        if too_big || too_old || active.index_is_full() || offsets_overflow {
            self.roll(now_ms)?;
        }
        Ok(())
    }
}

/// The per-record rules of a log (KIP-467): a compacted log refuses records without a
/// key; with CreateTime, `message.timestamp.before.max.ms`/`after.max.ms` bound each
/// record's timestamp around the broker's clock; a producer may not send a LogAppendTime
/// batch unless its timestamp is range-checked instead.
///
/// This is the one place the produce path reads records, and it runs only for logs with
/// such a rule (compacted topics, topics with a timestamp bound): their batches are walked
/// record by record (decompressed if needed, nothing copied). Other logs never pay for it.
struct RecordRules {
    keys_required: bool,
    /// `[min, max]` a CreateTime timestamp must lie in; `None` when both bounds are off.
    timestamp_range_ms: Option<(i64, i64)>,
    /// The batch says LogAppendTime, which only the broker may set, and its timestamp is
    /// not range-checked instead (the log is LogAppendTime, or the batch has no max
    /// timestamp): every record is refused, as Kafka does.
    log_append_time_refused: bool,
}

impl RecordRules {
    /// The rules for one batch; `None` when the batch need not be read at all (only its
    /// header is looked at).
    fn of(
        config: &crate::LogConfig,
        view: &strom_protocol::batch::BatchView<'_>,
        now_ms: i64,
    ) -> Option<RecordRules> {
        let bounded = config.message_timestamp_before_max_ms < i64::MAX
            || config.message_timestamp_after_max_ms < i64::MAX;
        let timestamp_range_ms =
            (bounded && config.message_timestamp_type == TimestampType::CreateTime).then(|| {
                (
                    now_ms.saturating_sub(config.message_timestamp_before_max_ms),
                    now_ms.saturating_add(config.message_timestamp_after_max_ms),
                )
            });
        let log_append_time_refused = view.is_log_append_time()
            && (config.message_timestamp_type == TimestampType::LogAppendTime
                || view.max_timestamp() == -1);
        (config.cleanup_compact || timestamp_range_ms.is_some() || log_append_time_refused)
            .then_some(RecordRules {
                keys_required: config.cleanup_compact,
                timestamp_range_ms,
                log_append_time_refused,
            })
    }

    /// Names every record of the batch that breaks a rule; refuses the batch if any does.
    fn check(
        &self,
        view: &strom_protocol::batch::BatchView<'_>,
        batch_index: usize,
    ) -> Result<(), AppendError> {
        let mut errors = Vec::new();
        let mut refused_total = 0usize;
        let mut record_index = 0u32;
        strom_protocol::record::scan_batch(view, |record| {
            let reason = if self.keys_required && record.key_bytes.is_none() {
                Some(RecordErrorReason::MissingKey)
            } else if self.log_append_time_refused {
                Some(RecordErrorReason::LogAppendTimeFromProducer {
                    timestamp_ms: record.timestamp_ms,
                    key_bytes: record.key_bytes.unwrap_or(0),
                    value_bytes: record.value_bytes.unwrap_or(0),
                })
            } else {
                match self.timestamp_range_ms {
                    // -1 is "no timestamp", which Kafka never range-checks.
                    Some((min_ms, max_ms))
                        if record.timestamp_ms != -1
                            && !(min_ms..=max_ms).contains(&record.timestamp_ms) =>
                    {
                        Some(RecordErrorReason::TimestampOutOfRange {
                            timestamp_ms: record.timestamp_ms,
                            min_ms,
                            max_ms,
                        })
                    }
                    _ => None,
                }
            };
            if let Some(reason) = reason {
                refused_total += 1;
                if errors.len() < RECORD_ERRORS_MAX {
                    errors.push(RejectedRecord {
                        record_index,
                        offset_delta: record.offset_delta,
                        reason,
                    });
                }
            }
            record_index += 1;
        })
        .map_err(|_| AppendError::InvalidRecord {
            batch_index,
            reason: InvalidRecordReason::Undecodable("malformed records"),
        })?;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AppendError::RecordErrors {
                batch_index,
                errors,
                refused_total,
            })
        }
    }
}
