//! Lazily opened segment files: idle logs hold no descriptor, reads of sealed segments
//! open theirs and the process-wide cap closes the least recently used ones. Its own
//! test binary (its own process), since the cap is process-wide.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use strom_protocol::batch::BatchIter;
use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordToEncode};
use strom_storage::{set_open_files_max, LogConfig, PartitionLog};

const NOW_MS: i64 = 1_700_000_000_000;
const CAP: usize = 16;

/// Descriptors of this process open on files under `dir`, counted from /proc/self/fd.
fn open_fds_under(dir: &Path) -> usize {
    let dir = dir.canonicalize().expect("canonical dir");
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.starts_with(&dir))
        .count()
}

fn batch(first_timestamp_ms: i64) -> BytesMut {
    let records: Vec<RecordToEncode> = (0..4)
        .map(|i| RecordToEncode {
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'v'; 100])),
            headers: vec![],
            timestamp_ms: first_timestamp_ms + i,
        })
        .collect();
    let encoded = encode_batch(&records, &BatchBuilderOptions::default()).expect("encode");
    BytesMut::from(&encoded[..])
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        retention_ms: -1,
        ..Default::default()
    }
}

/// Every (base offset, last offset) read from `from` to the end, one segment per read.
fn read_all(log: &PartitionLog, from: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut offset = from;
    while let Some(range) = log
        .read(offset, u32::MAX, i64::MAX, true)
        .expect("read")
        .records
    {
        let bytes = range.read_to_bytes().expect("pread");
        for view in BatchIter::new(&bytes) {
            let view = view.expect("whole batch");
            view.verify_crc().expect("crc");
            out.push((view.base_offset(), view.last_offset()));
            offset = view.last_offset() + 1;
        }
    }
    out
}

fn written_log(dir: &PathBuf, batches: i64) -> PartitionLog {
    let mut log = PartitionLog::open(dir, config(), NOW_MS).expect("open");
    for i in 0..batches {
        log.append_as_leader(batch(NOW_MS + i * 10), 1, NOW_MS)
            .expect("append");
    }
    // The background fsync of rolled segments holds their handles until it runs.
    log.flush().expect("flush");
    log
}

#[test]
fn given_many_sealed_segments_when_idle_or_read_should_hold_few_descriptors() {
    set_open_files_max(CAP);
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().join("t-0");
    // A new partition (its first open flushes the empty segment) holds no descriptor.
    let fresh = PartitionLog::open(&dir, config(), NOW_MS).expect("create");
    assert_eq!(
        open_fds_under(&dir),
        0,
        "a new, empty log holds no descriptor"
    );
    drop(fresh);
    // Neither does one reopened after an unclean stop (its open flushes what it checked).
    let fresh = PartitionLog::open(&dir, config(), NOW_MS).expect("reopen unclean");
    assert_eq!(
        open_fds_under(&dir),
        0,
        "an unclean reopen holds no descriptor"
    );
    drop(fresh);
    let log = written_log(&dir, 200);
    let segments = log.segment_count();
    assert!(segments >= 40, "only {segments} segments");
    // Sealed segments close their files on the roll; the active one holds at most its
    // log and two indexes.
    let after_writes = open_fds_under(&dir);
    assert!(
        after_writes <= 3,
        "{after_writes} descriptors after writing"
    );
    let expected = read_all(&log, 0);
    assert_eq!(expected.len(), 200);
    log.close().expect("close");
    assert_eq!(open_fds_under(&dir), 0, "a closed log holds no descriptor");

    let log = PartitionLog::open(&dir, config(), NOW_MS).expect("reopen");
    assert_eq!(log.segment_count(), segments);
    assert_eq!(
        open_fds_under(&dir),
        0,
        "an idle log holds no descriptor after open"
    );
    // Reading every segment opens each one's log and offset index; the cap closes the
    // least recently used, and the data read is all there, in order.
    assert_eq!(read_all(&log, 0), expected);
    let after_reads = open_fds_under(&dir);
    assert!(
        (1..=CAP).contains(&after_reads),
        "{after_reads} descriptors after reading {segments} segments, cap {CAP}"
    );
    // A read at the log end opens nothing.
    let end = log.log_end_offset();
    assert!(log
        .read(end, u32::MAX, i64::MAX, true)
        .expect("read")
        .records
        .is_none());
    // Reading again, from the middle, reopens evicted files.
    assert_eq!(read_all(&log, 400), expected[100..].to_vec());
    assert!(open_fds_under(&dir) <= CAP);
    log.close().expect("close");
    assert_eq!(open_fds_under(&dir), 0);
}

#[test]
fn given_a_tiny_cap_when_truncating_retaining_and_reopening_should_keep_the_log_whole() {
    set_open_files_max(CAP);
    let temp = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<PathBuf> = (0..3).map(|i| temp.path().join(format!("t-{i}"))).collect();
    // Three logs at once need more files than the cap: they evict each other's.
    let mut logs: Vec<PartitionLog> = dirs.iter().map(|dir| written_log(dir, 150)).collect();
    let expected = read_all(&logs[0], 0);
    assert_eq!(expected.len(), 150);
    for log in &logs {
        assert_eq!(read_all(log, 0), expected);
    }
    // A follower's truncation into a sealed segment reopens it as the active one.
    logs[1].truncate_to(301, NOW_MS).expect("truncate");
    assert_eq!(logs[1].log_end_offset(), 300);
    logs[1]
        .append_as_leader(batch(NOW_MS), 2, NOW_MS)
        .expect("append after truncation");
    assert_eq!(read_all(&logs[1], 0).len(), 76);
    // Size-based retention deletes the oldest segments, closed or not.
    let mut config = config();
    config.retention_bytes = 4096;
    logs[2].set_config(config);
    logs[2].enforce_retention(NOW_MS).expect("retention");
    let start = logs[2].log_start_offset();
    assert!(start > 0, "retention deleted nothing");
    assert_eq!(read_all(&logs[2], start), expected[(start / 4) as usize..]);
    for log in logs.drain(..) {
        log.close().expect("close");
    }
    for dir in &dirs {
        assert_eq!(open_fds_under(dir), 0);
        let log = PartitionLog::open(dir, self::config(), NOW_MS).expect("reopen");
        assert!(!read_all(&log, log.log_start_offset()).is_empty());
        log.close().expect("close");
    }
}
