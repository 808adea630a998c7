//! Records inside a v2 batch: the encoder a producer needs and the decoder a consumer needs.
//!
//! The broker serves batches as bytes; on the produce path it only walks the records of
//! topics with per-record rules ([`scan_batch`], which copies nothing). Headers are an
//! ordered list (keys may repeat), never a map.

use std::io::{Read, Write};

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::batch::{
    BatchError, BatchView, Compression, ATTRIBUTE_TIMESTAMP_TYPE_LOG_APPEND, BATCH_HEADER_BYTES,
    NO_PRODUCER_ID,
};

/// The largest records section a decoder will inflate a compressed batch to. A hostile
/// peer cannot make a client allocate more than this for one batch.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 256 * 1024 * 1024;

/// xerial snappy-java framing, which the Java client writes.
const XERIAL_SNAPPY_MAGIC: &[u8] = b"\x82SNAPPY\x00";

#[derive(Debug, Error)]
pub enum RecordError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("record data truncated at byte {at}")]
    Truncated { at: usize },
    #[error("record varint at byte {at} is malformed")]
    BadVarint { at: usize },
    #[error("record field length {length} at byte {at} is invalid")]
    BadLength { length: i64, at: usize },
    #[error("{codec} decompression failed: {source}")]
    Decompress {
        codec: &'static str,
        source: std::io::Error,
    },
    #[error("decompressed batch exceeds {DECOMPRESSED_BATCH_BYTES_MAX} bytes")]
    DecompressedTooLarge,
    #[error("{codec} compression failed: {source}")]
    Compress {
        codec: &'static str,
        source: std::io::Error,
    },
    #[error("batch has no records")]
    Empty,
}

/// One header of a record. Keys may repeat; order is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// A record a producer wants written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordToEncode {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
    pub timestamp_ms: i64,
}

/// Batch-level settings for [`encode_batch`].
#[derive(Debug, Clone)]
pub struct BatchBuilderOptions {
    pub compression: Compression,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
    pub partition_leader_epoch: i32,
}

impl Default for BatchBuilderOptions {
    fn default() -> Self {
        BatchBuilderOptions {
            compression: Compression::None,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            partition_leader_epoch: -1,
        }
    }
}

/// A record read back from a batch, with absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    pub offset: i64,
    pub timestamp_ms: i64,
    /// True when the timestamp was set by the broker (LogAppendTime).
    pub log_append_time: bool,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

fn put_varint(buf: &mut BytesMut, value: i32) {
    put_varlong(buf, value as i64)
}

fn put_varlong(buf: &mut BytesMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        buf.put_u8((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    buf.put_u8(zigzag as u8);
}

fn put_nullable_bytes(buf: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        None => put_varint(buf, -1),
        Some(bytes) => {
            put_varint(buf, bytes.len() as i32);
            buf.put_slice(bytes);
        }
    }
}

/// Appends one record (length-prefixed) to an uncompressed records section. Shared by
/// producers ([`encode_batch`]) and the log cleaner, which keeps each record's original
/// offset delta.
pub fn encode_record(
    buf: &mut BytesMut,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[RecordHeader],
    timestamp_delta_ms: i64,
    offset_delta: i64,
) {
    let mut body =
        BytesMut::with_capacity(16 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len));
    body.put_i8(0); // attributes: unused
    put_varlong(&mut body, timestamp_delta_ms);
    put_varlong(&mut body, offset_delta);
    put_nullable_bytes(&mut body, key);
    put_nullable_bytes(&mut body, value);
    put_varint(&mut body, headers.len() as i32);
    for header in headers {
        put_varint(&mut body, header.key.len() as i32);
        body.put_slice(&header.key);
        put_nullable_bytes(&mut body, header.value.as_deref());
    }
    put_varint(buf, body.len() as i32);
    buf.put_slice(&body);
}

/// The header fields of a v2 batch, for [`assemble_batch`].
#[derive(Debug, Clone, Copy)]
pub struct BatchFields {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

/// Writes a complete batch: the 61-byte header from `fields`, then `records_section`
/// (already compressed as `fields.attributes` says), then the CRC-32C.
pub fn assemble_batch(fields: &BatchFields, records_section: &[u8]) -> BytesMut {
    let mut batch = BytesMut::with_capacity(BATCH_HEADER_BYTES + records_section.len());
    batch.put_i64(fields.base_offset);
    batch.put_i32((BATCH_HEADER_BYTES - 12 + records_section.len()) as i32);
    batch.put_i32(fields.partition_leader_epoch);
    batch.put_i8(2);
    batch.put_u32(0); // CRC, filled below
    batch.put_i16(fields.attributes);
    batch.put_i32(fields.last_offset_delta);
    batch.put_i64(fields.base_timestamp_ms);
    batch.put_i64(fields.max_timestamp_ms);
    batch.put_i64(fields.producer_id);
    batch.put_i16(fields.producer_epoch);
    batch.put_i32(fields.base_sequence);
    batch.put_i32(fields.record_count);
    batch.put_slice(records_section);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// Compresses a records section with `codec` (the log cleaner re-compresses the records
/// it keeps with the batch's own codec).
pub fn compress(codec: Compression, raw: &[u8]) -> Result<Vec<u8>, RecordError> {
    let io = |source| RecordError::Compress {
        codec: codec.name(),
        source,
    };
    match codec {
        Compression::None => Ok(raw.to_vec()),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(raw).map_err(io)?;
            encoder.finish().map_err(io)
        }
        Compression::Snappy => {
            // xerial framing: magic, version 1, compatible version 1, then length-prefixed
            // raw snappy blocks. Java, librdkafka and kafka-python all read it.
            let mut out = Vec::with_capacity(raw.len() / 2 + 32);
            out.extend_from_slice(XERIAL_SNAPPY_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for chunk in raw.chunks(32 * 1024) {
                let block = encoder
                    .compress_vec(chunk)
                    .map_err(|e| io(std::io::Error::other(e)))?;
                out.extend_from_slice(&(block.len() as i32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            let mut encoder = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .build(Vec::new())
                .map_err(io)?;
            encoder.write_all(raw).map_err(io)?;
            let (out, result) = encoder.finish();
            result.map_err(io)?;
            Ok(out)
        }
        Compression::Zstd => zstd::encode_all(raw, 3).map_err(io),
    }
}

fn read_bounded(mut reader: impl Read, codec: Compression) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::new();
    let read = reader
        .by_ref()
        .take(DECOMPRESSED_BATCH_BYTES_MAX as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|source| RecordError::Decompress {
            codec: codec.name(),
            source,
        })?;
    if read > DECOMPRESSED_BATCH_BYTES_MAX {
        return Err(RecordError::DecompressedTooLarge);
    }
    Ok(out)
}

fn decompress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, RecordError> {
    let fail = |source| RecordError::Decompress {
        codec: codec.name(),
        source,
    };
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(data), codec),
        Compression::Lz4 => read_bounded(lz4::Decoder::new(data).map_err(fail)?, codec),
        Compression::Zstd => read_bounded(zstd::Decoder::new(data).map_err(fail)?, codec),
        Compression::Snappy => {
            let mut decoder = snap::raw::Decoder::new();
            let mut raw_block = |block: &[u8], out: &mut Vec<u8>| -> Result<(), RecordError> {
                let length =
                    snap::raw::decompress_len(block).map_err(|e| fail(std::io::Error::other(e)))?;
                if out.len() + length > DECOMPRESSED_BATCH_BYTES_MAX {
                    return Err(RecordError::DecompressedTooLarge);
                }
                let start = out.len();
                out.resize(start + length, 0);
                decoder
                    .decompress(block, &mut out[start..])
                    .map_err(|e| fail(std::io::Error::other(e)))?;
                Ok(())
            };
            let mut out = Vec::new();
            if data.starts_with(XERIAL_SNAPPY_MAGIC) && data.len() >= 16 {
                let mut at = 16;
                while at < data.len() {
                    if at + 4 > data.len() {
                        return Err(RecordError::Truncated { at });
                    }
                    let length =
                        i32::from_be_bytes(data[at..at + 4].try_into().expect("4")) as usize;
                    at += 4;
                    if at + length > data.len() {
                        return Err(RecordError::Truncated { at });
                    }
                    raw_block(&data[at..at + length], &mut out)?;
                    at += length;
                }
            } else {
                raw_block(data, &mut out)?;
            }
            Ok(out)
        }
    }
}

/// Encodes `records` as one v2 batch with base offset 0. Offsets are assigned by the
/// broker; the producer only fixes the order.
pub fn encode_batch(
    records: &[RecordToEncode],
    options: &BatchBuilderOptions,
) -> Result<Bytes, RecordError> {
    if records.is_empty() {
        return Err(RecordError::Empty);
    }
    let base_timestamp = records[0].timestamp_ms;
    let max_timestamp = records
        .iter()
        .map(|r| r.timestamp_ms)
        .max()
        .unwrap_or(base_timestamp);
    let mut raw = BytesMut::new();
    for (delta, record) in records.iter().enumerate() {
        encode_record(
            &mut raw,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
            record.timestamp_ms - base_timestamp,
            delta as i64,
        );
    }
    let body = compress(options.compression, &raw)?;
    let mut attributes = options.compression.attribute_bits();
    if options.transactional {
        attributes |= crate::batch::ATTRIBUTE_TRANSACTIONAL;
    }
    let batch = assemble_batch(
        &BatchFields {
            base_offset: 0,
            partition_leader_epoch: options.partition_leader_epoch,
            attributes,
            last_offset_delta: records.len() as i32 - 1,
            base_timestamp_ms: base_timestamp,
            max_timestamp_ms: max_timestamp,
            producer_id: options.producer_id,
            producer_epoch: options.producer_epoch,
            base_sequence: options.base_sequence,
            record_count: records.len() as i32,
        },
        &body,
    );
    Ok(batch.freeze())
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn varlong(&mut self) -> Result<i64, RecordError> {
        let start = self.at;
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = *self
                .data
                .get(self.at)
                .ok_or(RecordError::Truncated { at: self.at })?;
            self.at += 1;
            if shift == 63 && byte > 1 {
                return Err(RecordError::BadVarint { at: start });
            }
            value |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err(RecordError::BadVarint { at: start })
    }

    fn varint(&mut self) -> Result<i32, RecordError> {
        let at = self.at;
        let value = self.varlong()?;
        i32::try_from(value).map_err(|_| RecordError::BadVarint { at })
    }

    fn bytes(&mut self, length: usize) -> Result<&'a [u8], RecordError> {
        if self.at + length > self.data.len() {
            return Err(RecordError::Truncated { at: self.at });
        }
        let slice = &self.data[self.at..self.at + length];
        self.at += length;
        Ok(slice)
    }

    fn nullable_bytes(&mut self) -> Result<Option<Bytes>, RecordError> {
        let at = self.at;
        let length = self.varint()?;
        match length {
            -1 => Ok(None),
            n if n >= 0 => Ok(Some(Bytes::copy_from_slice(self.bytes(n as usize)?))),
            n => Err(RecordError::BadLength {
                length: n as i64,
                at,
            }),
        }
    }
}

/// Decodes every record of one batch (decompressing if needed). Control batches decode
/// like any other; callers that show user data skip them via [`BatchView::is_control`].
pub fn decode_batch(view: &BatchView<'_>) -> Result<Vec<DecodedRecord>, RecordError> {
    let raw = decompress(view.compression(), view.records_bytes())?;
    let base_offset = view.base_offset();
    let base_timestamp = view.base_timestamp();
    let log_append_time = view.attributes() & ATTRIBUTE_TIMESTAMP_TYPE_LOG_APPEND != 0;
    // A record takes at least 7 bytes, so the count cannot exceed what the data holds.
    let count = (view.record_count().max(0) as usize).min(raw.len() / 7 + 1);
    let mut records = Vec::with_capacity(count);
    let mut cursor = Cursor { data: &raw, at: 0 };
    for _ in 0..view.record_count().max(0) {
        let at = cursor.at;
        let length = cursor.varint()?;
        if length < 0 || cursor.at + length as usize > raw.len() {
            return Err(RecordError::BadLength {
                length: length as i64,
                at,
            });
        }
        let _attributes = cursor.bytes(1)?;
        let timestamp_delta = cursor.varlong()?;
        let offset_delta = cursor.varint()?;
        let key = cursor.nullable_bytes()?;
        let value = cursor.nullable_bytes()?;
        let header_count = cursor.varint()?;
        if header_count < 0 || header_count as usize > raw.len() - cursor.at {
            return Err(RecordError::BadLength {
                length: header_count as i64,
                at: cursor.at,
            });
        }
        let mut headers = Vec::with_capacity(header_count as usize);
        for _ in 0..header_count {
            let key_at = cursor.at;
            let key_length = cursor.varint()?;
            if key_length < 0 {
                return Err(RecordError::BadLength {
                    length: key_length as i64,
                    at: key_at,
                });
            }
            let key = Bytes::copy_from_slice(cursor.bytes(key_length as usize)?);
            let value = cursor.nullable_bytes()?;
            headers.push(RecordHeader { key, value });
        }
        records.push(DecodedRecord {
            offset: base_offset + offset_delta as i64,
            timestamp_ms: if log_append_time {
                view.max_timestamp()
            } else {
                base_timestamp + timestamp_delta
            },
            log_append_time,
            key,
            value,
            headers,
        });
    }
    Ok(records)
}

/// What an append's validation reads of one record: no key, value or header is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSummary {
    pub offset_delta: i32,
    /// The batch's base timestamp plus the record's delta (the batch's max timestamp in a
    /// LogAppendTime batch), as [`decode_batch`] reports it.
    pub timestamp_ms: i64,
    /// Length of the key, `None` for a null key.
    pub key_bytes: Option<usize>,
    /// Length of the value, `None` for a null value (a tombstone).
    pub value_bytes: Option<usize>,
}

/// Walks the records of one batch in order (decompressing it if needed) and calls `visit`
/// with each record's [`RecordSummary`]. Reads each record's length, timestamp and offset
/// deltas and key and value lengths, then skips to the next record: an uncompressed batch
/// is walked in place, without allocating.
pub fn scan_batch(
    view: &BatchView<'_>,
    mut visit: impl FnMut(RecordSummary),
) -> Result<(), RecordError> {
    let raw: std::borrow::Cow<'_, [u8]> = match view.compression() {
        Compression::None => std::borrow::Cow::Borrowed(view.records_bytes()),
        codec => std::borrow::Cow::Owned(decompress(codec, view.records_bytes())?),
    };
    let base_timestamp = view.base_timestamp();
    let log_append_time = view.attributes() & ATTRIBUTE_TIMESTAMP_TYPE_LOG_APPEND != 0;
    let mut cursor = Cursor { data: &raw, at: 0 };
    for _ in 0..view.record_count().max(0) {
        let at = cursor.at;
        let length = cursor.varint()?;
        let end = cursor.at.saturating_add(length.max(0) as usize);
        if length < 0 || end > raw.len() {
            return Err(RecordError::BadLength {
                length: length as i64,
                at,
            });
        }
        let _attributes = cursor.bytes(1)?;
        let timestamp_delta = cursor.varlong()?;
        let offset_delta = cursor.varint()?;
        let mut field_bytes = || -> Result<Option<usize>, RecordError> {
            let at = cursor.at;
            let length = cursor.varint()?;
            if length < -1 || cursor.at + length.max(0) as usize > end {
                return Err(RecordError::BadLength {
                    length: length as i64,
                    at,
                });
            }
            cursor.at += length.max(0) as usize;
            Ok((length >= 0).then_some(length as usize))
        };
        let key_bytes = field_bytes()?;
        let value_bytes = field_bytes()?;
        visit(RecordSummary {
            offset_delta,
            timestamp_ms: if log_append_time {
                view.max_timestamp()
            } else {
                base_timestamp.saturating_add(timestamp_delta)
            },
            key_bytes,
            value_bytes,
        });
        cursor.at = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<RecordToEncode> {
        (0..50)
            .map(|i| RecordToEncode {
                key: if i % 7 == 0 {
                    None
                } else {
                    Some(Bytes::from(format!("key-{i}")))
                },
                value: Some(Bytes::from(vec![b'x'; i * 13])),
                headers: vec![
                    RecordHeader {
                        key: Bytes::from_static(b"h"),
                        value: Some(Bytes::from(format!("{i}"))),
                    },
                    RecordHeader {
                        key: Bytes::from_static(b"h"),
                        value: None,
                    },
                ],
                timestamp_ms: 1_700_000_000_000 + (i as i64) * 3 - 40,
            })
            .collect()
    }

    #[test]
    fn given_each_codec_when_round_tripped_should_return_identical_records() {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let input = records();
            let options = BatchBuilderOptions {
                compression: codec,
                ..Default::default()
            };
            let mut batch = encode_batch(&input, &options).expect("encode").to_vec();
            crate::batch::set_base_offset(&mut batch, 100);
            let view = BatchView::parse(&batch).expect("parse");
            view.verify_crc().expect("crc");
            assert_eq!(view.compression(), codec);
            let decoded = decode_batch(&view).expect("decode");
            assert_eq!(decoded.len(), input.len(), "{codec:?}");
            for (i, (got, want)) in decoded.iter().zip(&input).enumerate() {
                assert_eq!(got.offset, 100 + i as i64);
                assert_eq!(got.key, want.key);
                assert_eq!(got.value, want.value);
                assert_eq!(
                    got.headers, want.headers,
                    "duplicate header keys kept in order"
                );
                assert_eq!(got.timestamp_ms, want.timestamp_ms);
            }
        }
    }

    #[test]
    fn given_each_codec_when_scanned_should_match_the_decoded_records() {
        for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut input = records();
            input[0].key = None;
            let options = BatchBuilderOptions {
                compression: codec,
                ..Default::default()
            };
            let batch = encode_batch(&input, &options).expect("encode");
            let view = BatchView::parse(&batch).expect("parse");
            let decoded = decode_batch(&view).expect("decode");
            let mut scanned = Vec::new();
            scan_batch(&view, |summary| scanned.push(summary)).expect("scan");
            assert_eq!(scanned.len(), decoded.len(), "{codec:?}");
            for (summary, record) in scanned.iter().zip(&decoded) {
                assert_eq!(summary.offset_delta as i64, record.offset);
                assert_eq!(summary.timestamp_ms, record.timestamp_ms);
                assert_eq!(summary.key_bytes, record.key.as_ref().map(|k| k.len()));
                assert_eq!(summary.value_bytes, record.value.as_ref().map(|v| v.len()));
            }
            assert_eq!(scanned[0].key_bytes, None);
        }
    }

    #[test]
    fn given_corrupt_records_when_scanned_should_error_not_panic() {
        let batch = encode_batch(&records(), &BatchBuilderOptions::default()).expect("encode");
        for cut in [
            BATCH_HEADER_BYTES + 1,
            BATCH_HEADER_BYTES + 9,
            batch.len() - 2,
        ] {
            let mut bytes = batch[..cut].to_vec();
            let length = (bytes.len() - 12) as i32;
            bytes[8..12].copy_from_slice(&length.to_be_bytes());
            let view = BatchView::parse(&bytes).expect("framing");
            assert!(scan_batch(&view, |_| {}).is_err());
        }
    }

    #[test]
    fn given_raw_snappy_without_xerial_framing_when_decoded_should_work() {
        let raw = b"hello snappy hello snappy hello snappy";
        let block = snap::raw::Encoder::new().compress_vec(raw).expect("c");
        let out = decompress(Compression::Snappy, &block).expect("d");
        assert_eq!(out, raw);
    }

    #[test]
    fn given_corrupt_records_when_decoded_should_error_not_panic() {
        let input = records();
        let batch = encode_batch(&input, &BatchBuilderOptions::default()).expect("encode");
        for cut in [
            BATCH_HEADER_BYTES + 1,
            BATCH_HEADER_BYTES + 9,
            batch.len() - 2,
        ] {
            let mut bytes = batch[..cut].to_vec();
            let length = (bytes.len() - 12) as i32;
            bytes[8..12].copy_from_slice(&length.to_be_bytes());
            let view = BatchView::parse(&bytes).expect("framing");
            assert!(decode_batch(&view).is_err());
        }
    }
}
