//! Re-encoding the records a cleaned batch keeps, with the batch's own header fields.
//!
//! `strom_protocol::record::encode_batch` numbers records 0..n and stamps a fresh header;
//! the cleaner must instead keep each record's offset delta (offsets never change), the
//! batch's base offset, `lastOffsetDelta` (so the producer's last sequence stays
//! `baseSequence + lastOffsetDelta`, as Kafka preserves it), leader epoch, producer id,
//! epoch and base sequence, and its compression codec.

use bytes::{BufMut, BytesMut};
use strom_protocol::batch::{
    BatchView, Compression, ATTRIBUTE_COMPRESSION_MASK, ATTRIBUTE_TIMESTAMP_TYPE_LOG_APPEND,
    BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES,
};
use strom_protocol::record::{compress, DecodedRecord, RecordError};

/// KIP-534: the batch's `baseTimestamp` holds the delete horizon of its tombstones.
pub(crate) const ATTRIBUTE_DELETE_HORIZON: i16 = 0x40;

fn put_varlong(buf: &mut BytesMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        buf.put_u8((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    buf.put_u8(zigzag as u8);
}

fn put_nullable(buf: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        None => put_varlong(buf, -1),
        Some(bytes) => {
            put_varlong(buf, bytes.len() as i64);
            buf.put_slice(bytes);
        }
    }
}

fn encode_record(out: &mut BytesMut, record: &DecodedRecord, offset_delta: i64, base_ts: i64) {
    let mut body = BytesMut::with_capacity(
        16 + record.key.as_ref().map_or(0, |k| k.len())
            + record.value.as_ref().map_or(0, |v| v.len()),
    );
    body.put_i8(0);
    put_varlong(&mut body, record.timestamp_ms - base_ts);
    put_varlong(&mut body, offset_delta);
    put_nullable(&mut body, record.key.as_deref());
    put_nullable(&mut body, record.value.as_deref());
    put_varlong(&mut body, record.headers.len() as i64);
    for header in &record.headers {
        put_varlong(&mut body, header.key.len() as i64);
        body.put_slice(&header.key);
        put_nullable(&mut body, header.value.as_deref());
    }
    put_varlong(out, body.len() as i64);
    out.put_slice(&body);
}

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
            record,
            record.offset - base_offset,
            base_timestamp_ms,
        );
    }
    let body = compress(codec, &raw)?;
    let mut batch = BytesMut::with_capacity(BATCH_HEADER_BYTES + body.len());
    batch.put_i64(base_offset);
    batch.put_i32((BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES + body.len()) as i32);
    batch.put_i32(original.partition_leader_epoch());
    batch.put_i8(2);
    batch.put_u32(0);
    batch.put_i16(attributes);
    batch.put_i32(original.last_offset_delta());
    batch.put_i64(base_timestamp_ms);
    batch.put_i64(max_timestamp_ms);
    batch.put_i64(original.producer_id());
    batch.put_i16(original.producer_epoch());
    batch.put_i32(original.base_sequence());
    batch.put_i32(kept.len() as i32);
    batch.put_slice(&body);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(batch.to_vec())
}
