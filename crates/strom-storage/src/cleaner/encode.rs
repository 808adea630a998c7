//! Re-encoding the records a cleaned batch keeps, with the batch's own header fields.
//!
//! `strom_protocol::record::encode_batch` numbers records 0..n and stamps a fresh header;
//! the cleaner must instead keep each record's offset delta (offsets never change), the
//! batch's base offset, `lastOffsetDelta` (so the producer's last sequence stays
//! `baseSequence + lastOffsetDelta`, as Kafka preserves it), leader epoch, producer id,
//! epoch and base sequence, and its compression codec.

use bytes::BytesMut;
use strom_protocol::batch::{
    BatchView, Compression, ATTRIBUTE_COMPRESSION_MASK, ATTRIBUTE_TIMESTAMP_TYPE_LOG_APPEND,
};
use strom_protocol::record::{
    assemble_batch, compress, encode_record, BatchFields, DecodedRecord, RecordError,
};

/// KIP-534: the batch's `baseTimestamp` holds the delete horizon of its tombstones.
pub(crate) const ATTRIBUTE_DELETE_HORIZON: i16 = 0x40;

/// A batch holding `kept` (a non-strict subset of `original`'s records, in order), with
/// `original`'s header fields. `delete_horizon_ms` sets the KIP-534 attribute and stores
/// the horizon as `baseTimestamp` (record timestamps stay right: they are deltas from it).
/// With nothing kept, an empty header-only batch (record count 0) keeps the producer's
/// sequence state alive, as Kafka's cleaner does for a producer's last batch.
pub(crate) fn encode_retained(
    original: &BatchView<'_>,
    kept: &[DecodedRecord],
    delete_horizon_ms: Option<i64>,
) -> Result<Vec<u8>, RecordError> {
    let log_append_time = original.attributes() & ATTRIBUTE_TIMESTAMP_TYPE_LOG_APPEND != 0;
    let mut attributes = original.attributes() & !ATTRIBUTE_DELETE_HORIZON;
    let codec = if kept.is_empty() {
        attributes &= !ATTRIBUTE_COMPRESSION_MASK;
        Compression::None
    } else {
        original.compression()
    };
    if delete_horizon_ms.is_some() {
        attributes |= ATTRIBUTE_DELETE_HORIZON;
    }
    let max_timestamp_ms = if log_append_time || kept.is_empty() {
        original.max_timestamp()
    } else {
        kept.iter()
            .map(|r| r.timestamp_ms)
            .max()
            .expect("non-empty")
    };
    let base_timestamp_ms = match (delete_horizon_ms, kept.first()) {
        (Some(horizon), _) => horizon,
        // LogAppendTime records all read as maxTimestamp; keep the original base.
        (None, Some(_)) if log_append_time => original.base_timestamp(),
        (None, Some(first)) => first.timestamp_ms,
        (None, None) => original.max_timestamp(),
    };
    let base_offset = original.base_offset();
    let mut raw = BytesMut::new();
    for record in kept {
        // LogAppendTime records decode as the batch's maxTimestamp; their deltas from the
        // kept base are what readers ignore anyway.
        encode_record(
            &mut raw,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
            record.timestamp_ms - base_timestamp_ms,
            record.offset - base_offset,
        );
    }
    let body = compress(codec, &raw)?;
    let batch = assemble_batch(
        &BatchFields {
            base_offset,
            partition_leader_epoch: original.partition_leader_epoch(),
            attributes,
            last_offset_delta: original.last_offset_delta(),
            base_timestamp_ms,
            max_timestamp_ms,
            producer_id: original.producer_id(),
            producer_epoch: original.producer_epoch(),
            base_sequence: original.base_sequence(),
            record_count: kept.len() as i32,
        },
        &body,
    );
    Ok(batch.to_vec())
}
