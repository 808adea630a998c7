//! The fetch path (offset -> file range) and the ListOffsets lookups by timestamp.

use strom_protocol::batch::BatchView;
use strom_protocol::record::decode_batch;

use crate::error::{ReadError, StorageError};
use crate::header::BatchHeader;
use crate::log::PartitionLog;
use crate::segment::{Segment, SegmentRead};
use crate::{ReadInfo, TimestampOffset};

impl PartitionLog {
    /// Reads whole batches starting with the batch that contains `fetch_offset` (a fetch
    /// from the middle of a batch returns that whole batch), up to `max_bytes` (but at
    /// least one whole batch when `min_one_batch`), never including a batch whose last
    /// offset >= `max_offset_exclusive` (the high watermark), only from one segment.
    ///
    /// Offsets below log start or above log end are [`ReadError::OffsetOutOfRange`]; the
    /// log end itself reads as empty. Cost: a binary search over segments and over the
    /// sparse index, then header reads of at most `index.interval.bytes` of batches plus
    /// the batches returned. No record is decoded and no data is copied.
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: u32,
        max_offset_exclusive: i64,
        min_one_batch: bool,
    ) -> Result<ReadInfo, ReadError> {
        let log_start = self.log_start_offset;
        let log_end = self.log_end_offset();
        if fetch_offset < log_start || fetch_offset > log_end {
            return Err(ReadError::OffsetOutOfRange {
                requested: fetch_offset,
                log_start,
                log_end,
            });
        }
        let mut info = ReadInfo {
            records: None,
            log_start_offset: log_start,
            log_end_offset: log_end,
        };
        if fetch_offset == log_end {
            return Ok(info);
        }
        for segment in self.segments_from(fetch_offset) {
            match segment.read(fetch_offset, max_bytes, max_offset_exclusive, min_one_batch)? {
                SegmentRead::NotHere => continue,
                SegmentRead::Found(records) => {
                    info.records = records;
                    return Ok(info);
                }
            }
        }
        Ok(info)
    }

    /// ListOffsets by timestamp: the first record (in offset order) whose timestamp is at
    /// least `timestamp_ms`, or `None`. Skips segments whose largest timestamp is smaller,
    /// starts inside a segment from its time index, and decodes only the one batch the
    /// record lies in. Not the hot path.
    pub fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<TimestampOffset>, StorageError> {
        let log_start = self.log_start_offset;
        for segment in self.segments.values() {
            if segment.is_empty()
                || segment.max_timestamp_ms() < timestamp_ms
                || segment.next_offset() <= log_start
            {
                continue;
            }
            let start = segment.time_lookup_start(timestamp_ms)?.max(log_start);
            let mut scanner = segment.scanner_from(start)?;
            while let Some((position, header)) = scanner.next_header()? {
                if header.max_timestamp_ms < timestamp_ms || header.last_offset() < log_start {
                    continue;
                }
                let found = first_record_matching(segment, position, &header, |offset, ts| {
                    offset >= log_start && ts >= timestamp_ms
                })?;
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP (-3): the record with the largest timestamp (the earliest
    /// such offset), or `None` for an empty log.
    pub fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>, StorageError> {
        let mut best: Option<&Segment> = None;
        for segment in self.segments.values() {
            if segment.is_empty() || segment.next_offset() <= self.log_start_offset {
                continue;
            }
            if best.is_none_or(|b| segment.max_timestamp_ms() > b.max_timestamp_ms()) {
                best = Some(segment);
            }
        }
        let Some(segment) = best else {
            return Ok(None);
        };
        let max_timestamp_ms = segment.max_timestamp_ms();
        let Some((position, header)) = segment.locate(segment.offset_of_max_timestamp())? else {
            return Err(StorageError::CorruptSegment {
                path: segment.log_path().to_path_buf(),
                position_bytes: segment.size_bytes(),
                reason: "the batch with the largest timestamp is missing",
            });
        };
        let found =
            first_record_matching(segment, position, &header, |_, ts| ts == max_timestamp_ms)?;
        // A producer may declare a maxTimestamp no record has; answer the batch then.
        Ok(found.or(Some(TimestampOffset {
            timestamp_ms: max_timestamp_ms,
            offset: header.last_offset(),
        })))
    }
}

/// Decodes the batch at `position` and returns its first record accepted by `matches`.
fn first_record_matching(
    segment: &Segment,
    position: u64,
    header: &BatchHeader,
    matches: impl Fn(i64, i64) -> bool,
) -> Result<Option<TimestampOffset>, StorageError> {
    let bytes = segment.read_batch(position, header)?;
    first_record_in_batch(&bytes, matches).map_err(|source| StorageError::Decode {
        path: segment.log_path().to_path_buf(),
        position_bytes: position,
        source,
    })
}

/// The first record of the whole batch `bytes` whose (offset, timestamp) `matches`, as
/// ListOffsets answers it: the local log's lookups and the remote tier's copies of its
/// segments both end here.
pub fn first_record_in_batch(
    bytes: &[u8],
    matches: impl Fn(i64, i64) -> bool,
) -> Result<Option<TimestampOffset>, strom_protocol::record::RecordError> {
    let view = BatchView::parse(bytes)?;
    let records = decode_batch(&view)?;
    Ok(records
        .iter()
        .find(|r| matches(r.offset, r.timestamp_ms))
        .map(|r| TimestampOffset {
            timestamp_ms: r.timestamp_ms,
            offset: r.offset,
        }))
}
