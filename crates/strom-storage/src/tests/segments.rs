use super::support::*;
use crate::files::{offset_file, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::{LogConfig, PartitionLog};

#[test]
fn given_small_segment_bytes_when_appending_should_roll_and_read_across_boundary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 1024,
        ..small_config()
    };
    let mut log = PartitionLog::open(dir.path(), config, NOW_MS).expect("open");
    let infos = append_batches(&mut log, 40, 3, 0);
    assert!(
        log.segment_count() >= 4,
        "got {} segments",
        log.segment_count()
    );
    for segment in log.segments.values() {
        assert!(segment.size_bytes() <= 1024, "segment over segment.bytes");
        assert!(offset_file(dir.path(), segment.base_offset(), LOG_SUFFIX).exists());
        assert!(offset_file(dir.path(), segment.base_offset(), INDEX_SUFFIX).exists());
        assert!(offset_file(dir.path(), segment.base_offset(), TIME_INDEX_SUFFIX).exists());
    }
    // File names are the 20-digit base offsets.
    assert!(dir.path().join("00000000000000000000.log").exists());

    // A read never spans two segments, but reading on from the end of one continues in
    // the next without gaps.
    let second_base = *log.segments.keys().nth(1).expect("two segments");
    let last_of_first = second_base - 1;
    let range = log
        .read(last_of_first, u32::MAX, i64::MAX, true)
        .expect("read");
    let batches = batches_of(
        &range
            .records
            .expect("records")
            .read_to_bytes()
            .expect("pread"),
    );
    assert_eq!(
        batches.last().expect("batch").1,
        last_of_first,
        "stops at the segment end"
    );
    let next = log
        .read(second_base, u32::MAX, i64::MAX, true)
        .expect("read");
    let batches = batches_of(
        &next
            .records
            .expect("records")
            .read_to_bytes()
            .expect("pread"),
    );
    assert_eq!(batches[0].0, second_base);

    let all = records_of(&read_all(&log, 0));
    assert_eq!(
        all.len() as i64,
        infos.last().expect("info").last_offset + 1
    );
}

#[test]
fn given_segment_ms_when_batch_timestamps_advance_past_it_should_roll() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config, NOW_MS).expect("open");
    log.append_as_leader(blob(&[batch(1, NOW_MS)]), 1, NOW_MS)
        .expect("append");
    log.append_as_leader(blob(&[batch(1, NOW_MS + 1_000)]), 1, NOW_MS)
        .expect("append");
    assert_eq!(
        log.segment_count(),
        1,
        "exactly segment.ms old is not yet too old"
    );
    log.append_as_leader(blob(&[batch(1, NOW_MS + 1_001)]), 1, NOW_MS)
        .expect("append");
    assert_eq!(log.segment_count(), 2);
    assert_eq!(*log.segments.keys().nth(1).expect("second"), 2);
    assert_eq!(records_of(&read_all(&log, 0)).len(), 3);
}

#[test]
fn given_full_index_when_appending_should_roll() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_index_bytes: 24, // two time index entries, three offset index entries
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config, NOW_MS).expect("open");
    append_batches(&mut log, 12, 1, 0);
    assert!(log.segment_count() >= 3, "got {}", log.segment_count());
    assert_eq!(records_of(&read_all(&log, 0)).len(), 12);
}

#[test]
fn given_index_entries_when_appended_should_be_sparse_and_point_at_batch_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), small_config(), NOW_MS).expect("open");
    append_batches(&mut log, 30, 2, 0);
    let segment = log.segments.values().next().expect("segment");
    let entries = segment.index_entries().to_vec();
    assert!(!entries.is_empty());
    let mut previous_position = 0;
    for entry in &entries {
        let position = entry.position_bytes as u64;
        assert!(position > previous_position || previous_position == 0);
        assert!(position - previous_position >= 256 || previous_position == 0);
        // The entry's offset is the last offset of the batch starting at its position.
        let found = segment
            .locate(segment.base_offset() + entry.relative_offset as i64)
            .expect("locate")
            .expect("batch");
        assert_eq!(found.0, position);
        previous_position = position;
    }
    // The file holds exactly the entries, 8 bytes each.
    let file_bytes = std::fs::metadata(offset_file(dir.path(), 0, INDEX_SUFFIX))
        .expect("meta")
        .len();
    assert_eq!(file_bytes, entries.len() as u64 * 8);
    assert!(!segment.time_entries().is_empty());
}

#[test]
fn given_log_append_time_when_broker_clock_passes_segment_ms_should_roll() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_ms: 1_000,
        message_timestamp_type: crate::TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config, NOW_MS).expect("open");
    // Producer timestamps stay old; the broker's clock is what counts.
    log.append_as_leader(blob(&[batch(1, 0)]), 1, NOW_MS)
        .expect("append");
    log.append_as_leader(blob(&[batch(1, 0)]), 1, NOW_MS + 500)
        .expect("append");
    assert_eq!(log.segment_count(), 1);
    log.append_as_leader(blob(&[batch(1, 0)]), 1, NOW_MS + 1_001)
        .expect("append");
    assert_eq!(log.segment_count(), 2);
}

/// Sealed segments serve lookups from their index files (not memory): every offset must
/// still find its batch, before and after a restart, and the active segment keeps working.
#[test]
fn given_sealed_segments_when_every_offset_read_should_match_linear_scan_before_and_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 3000,
        index_interval_bytes: 150,
        ..small_config()
    };
    let mut log = PartitionLog::open(dir.path(), config.clone(), NOW_MS).expect("open");
    let mut ranges = Vec::new();
    for i in 0..250usize {
        let info = log
            .append_as_leader(blob(&[batch(1 + i % 4, i as i64)]), 1, NOW_MS)
            .expect("append");
        ranges.push((info.base_offset, info.last_offset));
    }
    assert!(log.segment_count() > 5);
    let sealed = log.segments.values().next().expect("first");
    assert!(
        sealed.index_entries().len() > 5,
        "sealed index has entries on disk"
    );
    let check = |log: &PartitionLog, ranges: &[(i64, i64)]| {
        for offset in 0..log.log_end_offset() {
            let range = log
                .read(offset, 1, i64::MAX, true)
                .expect("read")
                .records
                .expect("r");
            let got = batches_of(&range.read_to_bytes().expect("pread"));
            let want = ranges
                .iter()
                .find(|r| r.0 <= offset && offset <= r.1)
                .expect("linear");
            assert_eq!((got[0].0, got[0].1), *want, "offset {offset}");
        }
    };
    check(&log, &ranges);
    log.close().expect("close");
    let mut log = PartitionLog::open(dir.path(), config.clone(), NOW_MS).expect("reopen");
    check(&log, &ranges);
    log.append_as_leader(blob(&[batch(2, 0)]), 1, NOW_MS)
        .expect("append after reopen");
    // Truncating back into a sealed segment makes it the active one again.
    let target = ranges[30].0;
    log.truncate_to(target, NOW_MS).expect("truncate");
    assert_eq!(log.log_end_offset(), target);
    ranges.truncate(30);
    check(&log, &ranges);
    for _ in 0..50 {
        let info = log
            .append_as_leader(blob(&[batch(3, 0)]), 1, NOW_MS)
            .expect("append");
        ranges.push((info.base_offset, info.last_offset));
    }
    check(&log, &ranges);
}
