//! Step 2 of a clean, without the log's lock: the key map, then the rewrite.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;

use bytes::Bytes;
use strom_protocol::batch::BatchView;
use strom_protocol::record::{decode_batch, DecodedRecord};

use super::encode::{encode_retained, ATTRIBUTE_DELETE_HORIZON};
use super::{
    remove_suffixed, CleanPlan, CleanStats, CleanedLog, CleanedSegment, SegmentIdentity,
    SegmentSnapshot, Throttle, CLEANED_SUFFIX, MAP_ENTRY_OVERHEAD_BYTES,
};
use crate::error::StorageError;
use crate::header::HeaderScanner;
use crate::segment::Segment;

/// Kept batches are written to the cleaned segment in writes of about this size.
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// Calls `visit(position, batch bytes)` for every batch of a sealed segment, in order.
fn for_each_batch(
    snapshot: &SegmentSnapshot,
    throttle: &mut Throttle,
    stats: &mut CleanStats,
    mut visit: impl FnMut(u64, &[u8], &mut CleanStats) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let mut scanner = HeaderScanner::new(
        std::sync::Arc::clone(&snapshot.file),
        &snapshot.path,
        0,
        snapshot.size_bytes,
    );
    let mut bytes = Vec::new();
    while let Some((position, header)) = scanner.next_header()? {
        if throttle.is_cancelled() {
            return Err(StorageError::Io {
                path: snapshot.path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::Interrupted, "clean cancelled"),
            });
        }
        bytes.resize(header.size_bytes as usize, 0);
        snapshot
            .file
            .read_exact_at(&mut bytes, position)
            .map_err(StorageError::io(&snapshot.path))?;
        throttle.consume(header.size_bytes);
        stats.bytes_read += header.size_bytes;
        visit(position, &bytes, stats)?;
    }
    Ok(())
}

impl CleanPlan {
    /// Builds the cleaned segments (see the module docs). `map_bytes_max` bounds the key
    /// map; when the dirty section has more keys than fit, the clean covers a prefix of it
    /// (at least one segment) and the next clean continues.
    pub fn build(
        self,
        throttle: &mut Throttle,
        map_bytes_max: usize,
    ) -> Result<CleanedLog, StorageError> {
        let mut stats = CleanStats {
            segments_planned: self.segments.len(),
            ..CleanStats::default()
        };
        let (map, cleaned_up_to_offset) =
            self.build_key_map(throttle, map_bytes_max, &mut stats)?;
        stats.keys = map.len() as u64;
        let mut outputs = Vec::new();
        for snapshot in &self.segments {
            if snapshot.next_offset > cleaned_up_to_offset {
                break;
            }
            match self.rewrite_segment(snapshot, &map, throttle, &mut stats) {
                Ok(output) => outputs.push(output),
                Err(error) => {
                    remove_suffixed(&self.dir, snapshot.base_offset, CLEANED_SUFFIX);
                    CleanedLog {
                        dir: self.dir.clone(),
                        segments: outputs,
                        cleaned_up_to_offset,
                        stats,
                    }
                    .discard();
                    return Err(error);
                }
            }
        }
        Ok(CleanedLog {
            dir: self.dir,
            segments: outputs,
            cleaned_up_to_offset,
            stats,
        })
    }

    /// Key -> offset of its latest record in the dirty section, and the offset up to
    /// which the map covers it (a segment boundary).
    fn build_key_map(
        &self,
        throttle: &mut Throttle,
        map_bytes_max: usize,
        stats: &mut CleanStats,
    ) -> Result<(HashMap<Bytes, i64>, i64), StorageError> {
        let mut map: HashMap<Bytes, i64> = HashMap::new();
        let mut map_bytes = 0usize;
        let mut covered_up_to = self.first_dirty_offset;
        for snapshot in &self.segments {
            if snapshot.next_offset <= self.first_dirty_offset {
                covered_up_to = covered_up_to.max(snapshot.next_offset);
                continue;
            }
            let mut entries: Vec<(Bytes, i64)> = Vec::new();
            for_each_batch(snapshot, throttle, stats, |position, bytes, _| {
                let view = parse(snapshot, position, bytes)?;
                if view.is_control() || self.is_aborted(&view) {
                    return Ok(());
                }
                for record in decode_records(snapshot, position, &view)? {
                    if let Some(key) = record.key {
                        if record.offset >= self.first_dirty_offset {
                            entries.push((key, record.offset));
                        }
                    }
                }
                Ok(())
            })?;
            let new_bytes: usize = entries
                .iter()
                .filter(|(key, _)| !map.contains_key(key))
                .map(|(key, _)| key.len() + MAP_ENTRY_OVERHEAD_BYTES)
                .sum();
            let covered_any = covered_up_to > self.first_dirty_offset;
            if covered_any && map_bytes + new_bytes > map_bytes_max {
                tracing::debug!(
                    dir = %self.dir.display(),
                    up_to = covered_up_to,
                    "cleaner key map full; cleaning a prefix of the dirty section"
                );
                break;
            }
            map_bytes += new_bytes;
            for (key, offset) in entries {
                map.insert(key, offset);
            }
            covered_up_to = snapshot.next_offset;
        }
        Ok((map, covered_up_to))
    }

    fn rewrite_segment(
        &self,
        snapshot: &SegmentSnapshot,
        map: &HashMap<Bytes, i64>,
        throttle: &mut Throttle,
        stats: &mut CleanStats,
    ) -> Result<CleanedSegment, StorageError> {
        // Created at the first batch that changes, so an unchanged segment costs reads only.
        let mut output: Option<Segment> = None;
        let mut pending: Vec<u8> = Vec::with_capacity(WRITE_BUFFER_BYTES);
        let interval = self.index_interval_bytes;
        let flush = |output: &mut Segment, pending: &mut Vec<u8>| -> Result<(), StorageError> {
            if !pending.is_empty() {
                output
                    .append(pending, interval)
                    .map_err(|(error, _)| error)?;
                pending.clear();
            }
            Ok(())
        };
        for_each_batch(snapshot, throttle, stats, |position, bytes, stats| {
            let view = parse(snapshot, position, bytes)?;
            let kept = self.filter_batch(snapshot, position, &view, map, stats)?;
            if output.is_none() && matches!(kept, Kept::Whole) {
                return Ok(());
            }
            let segment = match &mut output {
                Some(segment) => segment,
                None => {
                    let mut segment = Segment::create_named(
                        &self.dir,
                        snapshot.base_offset,
                        self.index_bytes,
                        self.now_ms,
                        CLEANED_SUFFIX,
                    )?;
                    copy_prefix(snapshot, position, &mut segment, interval)?;
                    output.insert(segment)
                }
            };
            match kept {
                Kept::Whole => pending.extend_from_slice(bytes),
                Kept::Rewritten(batch) => pending.extend_from_slice(&batch),
                Kept::Nothing => {}
            }
            if pending.len() >= WRITE_BUFFER_BYTES {
                flush(segment, &mut pending)?;
            }
            Ok(())
        })?;
        stats.bytes_before += snapshot.size_bytes;
        let Some(mut output) = output else {
            stats.bytes_after += snapshot.size_bytes;
            return Ok(CleanedSegment::Unchanged);
        };
        flush(&mut output, &mut pending)?;
        assert!(
            snapshot.aborted.is_empty() || !output.is_empty(),
            "markers survive a clean, so a segment with aborted transactions keeps batches"
        );
        for entry in &snapshot.aborted {
            output.append_aborted(*entry)?;
        }
        let original = SegmentIdentity {
            base_offset: snapshot.base_offset,
            next_offset: snapshot.next_offset,
            size_bytes: snapshot.size_bytes,
        };
        throttle.consume(output.size_bytes());
        if output.is_empty() {
            drop(output);
            remove_suffixed(&self.dir, snapshot.base_offset, CLEANED_SUFFIX);
            stats.segments_deleted += 1;
            return Ok(CleanedSegment::Empty { original });
        }
        output.seal()?;
        stats.bytes_after += output.size_bytes();
        stats.segments_rewritten += 1;
        Ok(CleanedSegment::Rewritten { original })
    }

    /// Which records of one batch survive.
    fn filter_batch(
        &self,
        snapshot: &SegmentSnapshot,
        position: u64,
        view: &BatchView<'_>,
        map: &HashMap<Bytes, i64>,
        stats: &mut CleanStats,
    ) -> Result<Kept, StorageError> {
        if view.is_control() {
            return Ok(Kept::Whole);
        }
        let last_of_producer = view.producer_id() >= 0
            && self.producer_last_offsets.get(&view.producer_id()) == Some(&view.last_offset());
        let records = decode_records(snapshot, position, view)?;
        stats.records_read += records.len() as u64;
        let aborted = self.is_aborted(view);
        let existing_horizon_ms =
            (view.attributes() & ATTRIBUTE_DELETE_HORIZON != 0).then(|| view.base_timestamp());
        let record_count = records.len();
        let mut kept = Vec::with_capacity(record_count);
        for record in records {
            // Aborted records go whatever their key; keyless ones always go.
            let Some(key) = record.key.as_ref().filter(|_| !aborted) else {
                continue;
            };
            if map.get(key).is_some_and(|&latest| record.offset < latest) {
                continue;
            }
            if record.value.is_none()
                && existing_horizon_ms.is_some_and(|horizon| self.now_ms >= horizon)
            {
                stats.tombstones_removed += 1;
                continue;
            }
            kept.push(record);
        }
        stats.records_removed += (record_count - kept.len()) as u64;
        let has_tombstone = kept.iter().any(|r| r.value.is_none());
        let horizon_ms = match existing_horizon_ms {
            Some(horizon) => Some(horizon),
            None if has_tombstone => Some(self.now_ms.saturating_add(self.delete_retention_ms)),
            None => None,
        };
        if has_tombstone {
            let horizon = horizon_ms.expect("set above");
            stats.earliest_delete_horizon_ms = Some(
                stats
                    .earliest_delete_horizon_ms
                    .map_or(horizon, |h| h.min(horizon)),
            );
        }
        if kept.len() == record_count && horizon_ms == existing_horizon_ms {
            return Ok(Kept::Whole);
        }
        if kept.is_empty() && !last_of_producer {
            return Ok(Kept::Nothing);
        }
        let horizon_ms = if kept.iter().any(|r| r.value.is_none()) {
            horizon_ms
        } else {
            None
        };
        encode_retained(view, &kept, horizon_ms)
            .map(Kept::Rewritten)
            .map_err(|source| StorageError::Decode {
                path: snapshot.path.clone(),
                position_bytes: position,
                source,
            })
    }
}

impl CleanPlan {
    /// Whether a batch belongs to an aborted transaction: transactional, and inside the
    /// `[first offset, marker offset]` range of one of its producer's aborted transactions
    /// (a producer's transactions never overlap, so the range decides alone).
    fn is_aborted(&self, view: &BatchView<'_>) -> bool {
        if !view.is_transactional() || view.is_control() {
            return false;
        }
        let Some(ranges) = self.aborted_ranges.get(&view.producer_id()) else {
            return false;
        };
        let offset = view.base_offset();
        let after = ranges.partition_point(|&(first_offset, _)| first_offset <= offset);
        after > 0 && offset <= ranges[after - 1].1
    }
}

enum Kept {
    /// Every record, unchanged: copy the stored bytes.
    Whole,
    /// Some records (or none, for a producer's last batch), re-encoded.
    Rewritten(Vec<u8>),
    /// Nothing: drop the batch.
    Nothing,
}

fn parse<'a>(
    snapshot: &SegmentSnapshot,
    position: u64,
    bytes: &'a [u8],
) -> Result<BatchView<'a>, StorageError> {
    BatchView::parse(bytes).map_err(|source| StorageError::Decode {
        path: snapshot.path.clone(),
        position_bytes: position,
        source: source.into(),
    })
}

fn decode_records(
    snapshot: &SegmentSnapshot,
    position: u64,
    view: &BatchView<'_>,
) -> Result<Vec<DecodedRecord>, StorageError> {
    decode_batch(view).map_err(|source| StorageError::Decode {
        path: snapshot.path.clone(),
        position_bytes: position,
        source,
    })
}

/// Copies the unchanged batches in `[0, end)` of the original into `output`, in writes
/// of whole batches of about [`WRITE_BUFFER_BYTES`].
fn copy_prefix(
    snapshot: &SegmentSnapshot,
    end: u64,
    output: &mut Segment,
    interval: u32,
) -> Result<(), StorageError> {
    let mut scanner = HeaderScanner::new(
        std::sync::Arc::clone(&snapshot.file),
        &snapshot.path,
        0,
        end,
    );
    let mut buffer = Vec::new();
    let mut write = |from: u64, to: u64| -> Result<(), StorageError> {
        buffer.resize((to - from) as usize, 0);
        snapshot
            .file
            .read_exact_at(&mut buffer, from)
            .map_err(StorageError::io(&snapshot.path))?;
        output.append(&buffer, interval).map_err(|(error, _)| error)
    };
    let (mut chunk_start, mut chunk_end) = (0u64, 0u64);
    while let Some((position, header)) = scanner.next_header()? {
        debug_assert_eq!(position, chunk_end);
        let batch_end = position + header.size_bytes;
        if batch_end - chunk_start > WRITE_BUFFER_BYTES as u64 && chunk_end > chunk_start {
            write(chunk_start, chunk_end)?;
            chunk_start = chunk_end;
        }
        chunk_end = batch_end;
    }
    if chunk_end > chunk_start {
        write(chunk_start, chunk_end)?;
    }
    assert_eq!(chunk_end, end, "the prefix ends at a batch boundary");
    Ok(())
}
