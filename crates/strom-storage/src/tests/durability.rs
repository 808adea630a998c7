//! Rolled segments are fsynced off the append path ([`crate::PendingSync`]), and nothing
//! recovery or `flush.messages` promise changes for it.

use std::path::Path;

use super::support::*;
use crate::files::{read_offset_checkpoint, FSYNCS, RECOVERY_POINT_FILE};
use crate::{LogConfig, PartitionLog, StorageError};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        ..small_config()
    }
}

fn open(dir: &Path) -> PartitionLog {
    PartitionLog::open(dir, config(), NOW_MS).expect("open")
}

fn fsyncs() -> u64 {
    FSYNCS.with(|count| count.get())
}

fn recovery_checkpoint(dir: &Path) -> Option<i64> {
    read_offset_checkpoint(&dir.join(RECOVERY_POINT_FILE)).expect("read checkpoint")
}

/// Appends until the log has rolled at least `rolls` more times.
fn append_rolling(log: &mut PartitionLog, rolls: usize) {
    let target = log.segment_count() + rolls;
    for _ in 0..10_000 {
        if log.segment_count() >= target {
            return;
        }
        append_batches(log, 1, 3, 0);
    }
    panic!("the log never rolled {rolls} times");
}

#[test]
fn given_appends_that_roll_when_flush_is_not_due_should_not_fsync_on_the_append_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path());
    // The first append under a new leader epoch persists the epoch cache (a small file).
    append_batches(&mut log, 1, 3, 0);
    let before = fsyncs();
    append_rolling(&mut log, 5);
    assert_eq!(
        fsyncs(),
        before,
        "a roll fsynced under the partition's lock: the stall grows with segment.bytes"
    );
    assert_eq!(log.unsynced_segments(), log.segment_count() - 1);
}

#[test]
fn given_rolled_segments_when_background_sync_completes_should_move_recovery_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path());
    let initial = recovery_checkpoint(dir.path());
    append_rolling(&mut log, 3);
    assert_eq!(
        recovery_checkpoint(dir.path()),
        initial,
        "the recovery point may not pass segments that are not durable yet"
    );
    let pending = log.pending_sync().expect("rolled segments are pending");
    let active_base = log.active().base_offset();
    assert_eq!(pending.up_to(), active_base);

    let before = fsyncs();
    pending.sync().expect("sync");
    // 3 segments x (log + 3 indexes) + 3 snapshots + the directory.
    assert_eq!(fsyncs() - before, 3 * 4 + 3 + 1);
    log.complete_sync(pending).expect("complete");

    assert_eq!(recovery_checkpoint(dir.path()), Some(active_base));
    assert_eq!(log.recovery_point, active_base);
    assert_eq!(log.unsynced_segments(), 0);
    assert!(log.pending_sync().is_none());
}

#[test]
fn given_roll_while_sync_in_flight_should_keep_the_newer_seal_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path());
    append_rolling(&mut log, 2);
    let pending = log.pending_sync().expect("pending");
    let first_up_to = pending.up_to();
    append_rolling(&mut log, 1);
    pending.sync().expect("sync");
    log.complete_sync(pending).expect("complete");

    assert_eq!(log.recovery_point, first_up_to);
    assert_eq!(log.unsynced_segments(), 1);
    let next = log.pending_sync().expect("the later roll is still pending");
    assert_eq!(next.up_to(), log.active().base_offset());
}

#[test]
fn given_truncation_while_sync_in_flight_should_ignore_its_completion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path());
    append_rolling(&mut log, 3);
    let pending = log.pending_sync().expect("pending");
    let bases: Vec<i64> = log.segments.keys().copied().collect();
    let cut = bases[1] + 1;
    log.truncate_to(cut, NOW_MS).expect("truncate");
    pending.sync().expect("sync");
    log.complete_sync(pending).expect("complete");

    assert!(log.recovery_point <= log.log_end_offset());
    assert!(
        recovery_checkpoint(dir.path()).unwrap_or(0) <= log.log_end_offset(),
        "a sync of truncated segments moved the recovery point past the log end"
    );
    assert_eq!(
        log.unsynced_segments(),
        1,
        "only the seal below the cut stays"
    );
}

#[test]
fn given_queued_seals_when_flushed_should_sync_them_and_move_recovery_point_to_log_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path());
    append_rolling(&mut log, 2);
    let stale = log.pending_sync().expect("pending");
    let before = fsyncs();
    log.flush().expect("flush");
    assert!(fsyncs() - before >= 2 * 4 + 2 + 1 + 4);
    assert_eq!(log.unsynced_segments(), 0);
    assert_eq!(recovery_checkpoint(dir.path()), Some(log.log_end_offset()));
    // A background sync that raced the flush changes nothing.
    log.complete_sync(stale).expect("complete");
    assert_eq!(log.recovery_point, log.log_end_offset());
}

#[test]
fn given_crash_before_background_sync_when_reopened_should_recover_every_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path());
    append_rolling(&mut log, 4);
    append_batches(&mut log, 2, 3, 0);
    let written = read_all(&log, 0);
    let end = log.log_end_offset();
    std::mem::forget(log);

    let log = open(dir.path());
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(read_all(&log, 0), written);
    assert_eq!(log.recovery_point, end, "reopen flushed what it recovered");
    assert_eq!(log.unsynced_segments(), 0);
}

#[test]
fn given_failed_background_sync_should_fence_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path());
    append_rolling(&mut log, 1);
    let error = StorageError::Io {
        path: dir.path().to_path_buf(),
        source: std::io::Error::other("EIO"),
    };
    log.fail_sync(&error);
    let refused = log.append_as_leader(blob(&[batch(1, 0)]), 1, NOW_MS);
    assert!(
        matches!(
            refused,
            Err(crate::AppendError::Storage(StorageError::Fenced { .. }))
        ),
        "{refused:?}"
    );
}
