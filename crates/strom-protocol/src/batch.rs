//! A zero-copy view of Kafka record batch v2.
//!
//! The broker never decodes records on the hot path: it reads the 61-byte batch header,
//! checks the CRC-32C over `attributes..end`, and rewrites `baseOffset` and
//! `partitionLeaderEpoch` in place (both outside the CRC). Only LogAppendTime needs a new
//! CRC, because it rewrites `maxTimestamp` and the timestamp-type bit, which the CRC covers.

use thiserror::Error;

/// Bytes before the records of a v2 batch.
pub const BATCH_HEADER_BYTES: usize = 61;
/// `baseOffset` + `batchLength`: the part of a batch not counted by `batchLength`.
pub const BATCH_LOG_OVERHEAD_BYTES: usize = 12;

const OFFSET_BASE_OFFSET: usize = 0;
const OFFSET_BATCH_LENGTH: usize = 8;
const OFFSET_PARTITION_LEADER_EPOCH: usize = 12;
const OFFSET_MAGIC: usize = 16;
const OFFSET_CRC: usize = 17;
const OFFSET_ATTRIBUTES: usize = 21;
const OFFSET_LAST_OFFSET_DELTA: usize = 23;
const OFFSET_BASE_TIMESTAMP: usize = 27;
const OFFSET_MAX_TIMESTAMP: usize = 35;
const OFFSET_PRODUCER_ID: usize = 43;
const OFFSET_PRODUCER_EPOCH: usize = 51;
const OFFSET_BASE_SEQUENCE: usize = 53;
const OFFSET_RECORD_COUNT: usize = 57;

pub const ATTRIBUTE_COMPRESSION_MASK: i16 = 0x07;
pub const ATTRIBUTE_TIMESTAMP_TYPE_LOG_APPEND: i16 = 0x08;
pub const ATTRIBUTE_TRANSACTIONAL: i16 = 0x10;
pub const ATTRIBUTE_CONTROL: i16 = 0x20;

/// Producer id of a batch written without an idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("record batch truncated: need {needed_bytes} bytes, have {available_bytes}")]
    Truncated {
        needed_bytes: usize,
        available_bytes: usize,
    },
    #[error("record batch magic {magic} is not supported (only v2)")]
    UnsupportedMagic { magic: i8 },
    #[error("record batch length {batch_length} is invalid")]
    InvalidLength { batch_length: i32 },
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error(
        "record batch declares {record_count} records but last offset delta {last_offset_delta}"
    )]
    InvalidRecordCount {
        record_count: i32,
        last_offset_delta: i32,
    },
    #[error("record batch uses unknown compression codec {codec}")]
    UnknownCompression { codec: i16 },
}

/// Compression codec from the low three attribute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn from_attributes(attributes: i16) -> Result<Self, BatchError> {
        match attributes & ATTRIBUTE_COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            codec => Err(BatchError::UnknownCompression { codec }),
        }
    }

    pub fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "none" | "uncompressed" => Some(Compression::None),
            "gzip" => Some(Compression::Gzip),
            "snappy" => Some(Compression::Snappy),
            "lz4" => Some(Compression::Lz4),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }
}

fn read_i16(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn read_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn read_i64(bytes: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Total size of the batch starting at `bytes[0]`, read from its `batchLength`, without
/// checking anything else. `None` when fewer than 12 bytes are present or the length is
/// negative.
pub fn batch_size_bytes(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < BATCH_LOG_OVERHEAD_BYTES {
        return None;
    }
    let batch_length = read_i32(bytes, OFFSET_BATCH_LENGTH);
    if batch_length < 0 {
        return None;
    }
    Some(BATCH_LOG_OVERHEAD_BYTES + batch_length as usize)
}

/// A read-only view of one v2 batch. Construct with [`BatchView::parse`], which checks the
/// framing (length, magic) but not the CRC; call [`BatchView::verify_crc`] for that.
#[derive(Debug, Clone, Copy)]
pub struct BatchView<'a> {
    bytes: &'a [u8],
}

impl<'a> BatchView<'a> {
    /// Parses the batch at the start of `bytes`. The view covers exactly the batch; bytes
    /// after it are not part of it.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BatchError> {
        if bytes.len() < BATCH_LOG_OVERHEAD_BYTES + 5 {
            return Err(BatchError::Truncated {
                needed_bytes: BATCH_LOG_OVERHEAD_BYTES + 5,
                available_bytes: bytes.len(),
            });
        }
        let batch_length = read_i32(bytes, OFFSET_BATCH_LENGTH);
        let magic = bytes[OFFSET_MAGIC] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic { magic });
        }
        if batch_length < (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES) as i32 {
            return Err(BatchError::InvalidLength { batch_length });
        }
        let size = BATCH_LOG_OVERHEAD_BYTES + batch_length as usize;
        if bytes.len() < size {
            return Err(BatchError::Truncated {
                needed_bytes: size,
                available_bytes: bytes.len(),
            });
        }
        let view = BatchView {
            bytes: &bytes[..size],
        };
        if view.record_count() < 0 || view.last_offset_delta() < 0 {
            return Err(BatchError::InvalidRecordCount {
                record_count: view.record_count(),
                last_offset_delta: view.last_offset_delta(),
            });
        }
        // Compacted batches may have fewer records than lastOffsetDelta + 1, never more.
        if view.record_count() as i64 > view.last_offset_delta() as i64 + 1 {
            return Err(BatchError::InvalidRecordCount {
                record_count: view.record_count(),
                last_offset_delta: view.last_offset_delta(),
            });
        }
        Compression::from_attributes(view.attributes())?;
        Ok(view)
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    pub fn size_bytes(&self) -> usize {
        self.bytes.len()
    }
    pub fn base_offset(&self) -> i64 {
        read_i64(self.bytes, OFFSET_BASE_OFFSET)
    }
    pub fn batch_length(&self) -> i32 {
        read_i32(self.bytes, OFFSET_BATCH_LENGTH)
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        read_i32(self.bytes, OFFSET_PARTITION_LEADER_EPOCH)
    }
    pub fn magic(&self) -> i8 {
        self.bytes[OFFSET_MAGIC] as i8
    }
    pub fn crc(&self) -> u32 {
        read_i32(self.bytes, OFFSET_CRC) as u32
    }
    pub fn attributes(&self) -> i16 {
        read_i16(self.bytes, OFFSET_ATTRIBUTES)
    }
    pub fn compression(&self) -> Compression {
        Compression::from_attributes(self.attributes()).expect("checked in parse")
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTRIBUTE_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTRIBUTE_CONTROL != 0
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & ATTRIBUTE_TIMESTAMP_TYPE_LOG_APPEND != 0
    }
    pub fn last_offset_delta(&self) -> i32 {
        read_i32(self.bytes, OFFSET_LAST_OFFSET_DELTA)
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + self.last_offset_delta() as i64
    }
    /// Offset after this batch: what the log-end offset becomes when it is the last batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
    pub fn base_timestamp(&self) -> i64 {
        read_i64(self.bytes, OFFSET_BASE_TIMESTAMP)
    }
    pub fn max_timestamp(&self) -> i64 {
        read_i64(self.bytes, OFFSET_MAX_TIMESTAMP)
    }
    pub fn producer_id(&self) -> i64 {
        read_i64(self.bytes, OFFSET_PRODUCER_ID)
    }
    pub fn producer_epoch(&self) -> i16 {
        read_i16(self.bytes, OFFSET_PRODUCER_EPOCH)
    }
    pub fn base_sequence(&self) -> i32 {
        read_i32(self.bytes, OFFSET_BASE_SEQUENCE)
    }
    /// Sequence of the last record, wrapping at `i32::MAX` as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        let base = self.base_sequence();
        if base < 0 {
            return base;
        }
        let last = base as i64 + self.last_offset_delta() as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
    pub fn record_count(&self) -> i32 {
        read_i32(self.bytes, OFFSET_RECORD_COUNT)
    }
    /// The records section (possibly compressed).
    pub fn records_bytes(&self) -> &'a [u8] {
        &self.bytes[BATCH_HEADER_BYTES..]
    }

    pub fn computed_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[OFFSET_ATTRIBUTES..])
    }

    pub fn verify_crc(&self) -> Result<(), BatchError> {
        let computed = self.computed_crc();
        if computed != self.crc() {
            return Err(BatchError::CrcMismatch {
                stored: self.crc(),
                computed,
            });
        }
        Ok(())
    }
}

/// Rewrites `baseOffset` of the batch at the start of `bytes`. Outside the CRC.
pub fn set_base_offset(bytes: &mut [u8], base_offset: i64) {
    bytes[OFFSET_BASE_OFFSET..OFFSET_BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Rewrites `partitionLeaderEpoch` of the batch at the start of `bytes`. Outside the CRC.
pub fn set_partition_leader_epoch(bytes: &mut [u8], epoch: i32) {
    bytes[OFFSET_PARTITION_LEADER_EPOCH..OFFSET_PARTITION_LEADER_EPOCH + 4]
        .copy_from_slice(&epoch.to_be_bytes());
}

/// Stamps LogAppendTime: sets the timestamp-type bit and `maxTimestamp`, then recomputes
/// the CRC, since both lie inside it. `bytes` must hold exactly one parsed batch.
pub fn set_log_append_time(bytes: &mut [u8], log_append_time_ms: i64) {
    let attributes = read_i16(bytes, OFFSET_ATTRIBUTES) | ATTRIBUTE_TIMESTAMP_TYPE_LOG_APPEND;
    bytes[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    bytes[OFFSET_MAX_TIMESTAMP..OFFSET_MAX_TIMESTAMP + 8]
        .copy_from_slice(&log_append_time_ms.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[OFFSET_ATTRIBUTES..]);
    bytes[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Iterates over the batches of a records blob (as carried by Produce or stored in a
/// segment). Yields an error for the first malformed batch and then stops.
pub struct BatchIter<'a> {
    remaining: &'a [u8],
    failed: bool,
}

impl<'a> BatchIter<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        BatchIter {
            remaining: bytes,
            failed: false,
        }
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<BatchView<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining.is_empty() || self.failed {
            return None;
        }
        match BatchView::parse(self.remaining) {
            Ok(view) => {
                self.remaining = &self.remaining[view.size_bytes()..];
                Some(Ok(view))
            }
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{encode_batch, BatchBuilderOptions, RecordToEncode};

    fn sample_batch(records: usize) -> Vec<u8> {
        let records: Vec<RecordToEncode> = (0..records)
            .map(|i| RecordToEncode {
                key: Some(format!("k{i}").into_bytes().into()),
                value: Some(format!("value-{i}").into_bytes().into()),
                headers: vec![],
                timestamp_ms: 1_700_000_000_000 + i as i64,
            })
            .collect();
        encode_batch(&records, &BatchBuilderOptions::default())
            .expect("encode")
            .to_vec()
    }

    #[test]
    fn given_valid_batch_when_parsed_should_expose_header_fields() {
        let bytes = sample_batch(3);
        let view = BatchView::parse(&bytes).expect("parse");
        assert_eq!(view.magic(), 2);
        assert_eq!(view.record_count(), 3);
        assert_eq!(view.last_offset_delta(), 2);
        assert_eq!(view.size_bytes(), bytes.len());
        assert_eq!(view.max_timestamp(), 1_700_000_000_002);
        view.verify_crc().expect("crc");
    }

    #[test]
    fn given_batch_when_base_offset_rewritten_should_keep_crc_valid() {
        let mut bytes = sample_batch(5);
        set_base_offset(&mut bytes, 1234);
        set_partition_leader_epoch(&mut bytes, 7);
        let view = BatchView::parse(&bytes).expect("parse");
        assert_eq!(view.base_offset(), 1234);
        assert_eq!(view.last_offset(), 1238);
        assert_eq!(view.next_offset(), 1239);
        assert_eq!(view.partition_leader_epoch(), 7);
        view.verify_crc().expect("crc unchanged by offset rewrite");
    }

    #[test]
    fn given_log_append_time_when_stamped_should_recompute_crc() {
        let mut bytes = sample_batch(2);
        set_log_append_time(&mut bytes, 42);
        let view = BatchView::parse(&bytes).expect("parse");
        assert!(view.is_log_append_time());
        assert_eq!(view.max_timestamp(), 42);
        view.verify_crc().expect("crc recomputed");
    }

    #[test]
    fn given_flipped_byte_when_crc_checked_should_fail() {
        let mut bytes = sample_batch(2);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let view = BatchView::parse(&bytes).expect("framing still fine");
        assert!(matches!(
            view.verify_crc(),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn given_truncated_or_bad_magic_when_parsed_should_fail() {
        let bytes = sample_batch(2);
        assert!(matches!(
            BatchView::parse(&bytes[..bytes.len() - 1]),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(
            BatchView::parse(&bytes[..10]),
            Err(BatchError::Truncated { .. })
        ));
        let mut bad_magic = bytes.clone();
        bad_magic[OFFSET_MAGIC] = 1;
        assert!(matches!(
            BatchView::parse(&bad_magic),
            Err(BatchError::UnsupportedMagic { magic: 1 })
        ));
        let mut bad_length = bytes.clone();
        bad_length[OFFSET_BATCH_LENGTH..OFFSET_BATCH_LENGTH + 4]
            .copy_from_slice(&(-5i32).to_be_bytes());
        assert!(BatchView::parse(&bad_length).is_err());
    }

    #[test]
    fn given_two_batches_when_iterated_should_yield_both_then_stop() {
        let mut bytes = sample_batch(2);
        bytes.extend_from_slice(&sample_batch(3));
        let counts: Vec<i32> = BatchIter::new(&bytes)
            .map(|b| b.expect("valid").record_count())
            .collect();
        assert_eq!(counts, vec![2, 3]);
        let truncated = &bytes[..bytes.len() - 3];
        let results: Vec<_> = BatchIter::new(truncated).collect();
        assert_eq!(results.len(), 2);
        assert!(results[1].is_err());
    }
}
