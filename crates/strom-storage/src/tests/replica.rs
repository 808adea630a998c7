use super::support::*;
use crate::{AppendError, LogConfig, PartitionLog};

fn open(dir: &std::path::Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config, NOW_MS).expect("open")
}

/// A leader log with a few epochs; returns its bytes as a follower would fetch them.
fn leader_bytes(dir: &std::path::Path) -> (PartitionLog, Vec<u8>) {
    let mut leader = open(dir, LogConfig::default());
    leader
        .append_as_leader(blob(&[batch(3, 0)]), 1, NOW_MS)
        .expect("a"); // 0..2
    leader
        .append_as_leader(blob(&[idempotent(2, 9, 0, 0)]), 1, NOW_MS)
        .expect("b"); // 3..4
    leader
        .append_as_leader(blob(&[batch(4, 0)]), 2, NOW_MS)
        .expect("c"); // 5..8
    let bytes = read_all(&leader, 0);
    (leader, bytes)
}

#[test]
fn given_leader_batches_when_follower_appends_should_store_identical_bytes_and_learn_state() {
    let leader_dir = tempfile::tempdir().expect("tempdir");
    let follower_dir = tempfile::tempdir().expect("tempdir");
    let (leader, bytes) = leader_bytes(leader_dir.path());
    let mut follower = open(follower_dir.path(), LogConfig::default());
    let info = follower.append_as_follower(&bytes, NOW_MS).expect("append");
    assert_eq!(
        (info.base_offset, info.last_offset, info.record_count),
        (0, 8, 9)
    );
    assert_eq!(read_all(&follower, 0), bytes, "byte for byte");
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(follower.end_offset_for_epoch(1), Some((1, 5)));
    assert_eq!(follower.latest_epoch(), Some(2));
    // Becoming leader: the producer's retry is still recognised.
    let retry = follower
        .append_as_leader(blob(&[idempotent(2, 9, 0, 0)]), 3, NOW_MS)
        .expect("retry");
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, 3);
    // Offsets below the log end are refused.
    let error = follower
        .append_as_follower(&bytes, NOW_MS)
        .expect_err("old offsets");
    assert!(matches!(
        error,
        AppendError::UnexpectedOffset {
            base_offset: 0,
            next_offset_min: 9,
            ..
        }
    ));
}

#[test]
fn given_log_when_truncated_to_epoch_boundary_should_cut_whole_batches_and_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 700,
        ..small_config()
    };
    let mut log = open(dir.path(), config.clone());
    for epoch in 1..=3 {
        for _ in 0..6 {
            log.append_as_leader(blob(&[batch(2, 0)]), epoch, NOW_MS)
                .expect("append");
        }
    }
    assert!(log.segment_count() > 2);
    let before = read_all(&log, 0);
    let epoch_two_end = log.end_offset_for_epoch(2).expect("epoch 2").1;
    assert_eq!(epoch_two_end, 24);
    log.truncate_to(epoch_two_end, NOW_MS).expect("truncate");
    assert_eq!(log.log_end_offset(), 24);
    assert_eq!(log.latest_epoch(), Some(2));
    let after = read_all(&log, 0);
    assert_eq!(after[..], before[..after.len()]);
    assert_eq!(records_of(&after).len(), 24);
    // Mid-batch: the whole batch holding the offset goes.
    log.truncate_to(21, NOW_MS).expect("truncate");
    assert_eq!(log.log_end_offset(), 20);
    let info = log
        .append_as_leader(blob(&[batch(1, 0)]), 4, NOW_MS)
        .expect("append");
    assert_eq!(info.base_offset, 20);
    // The cut survives a crash and a reopen.
    std::mem::forget(log);
    let log = open(dir.path(), config);
    assert_eq!(log.log_end_offset(), 21);
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 20)));
    assert_eq!(records_of(&read_all(&log, 0)).len(), 21);
}

#[test]
fn given_truncation_below_log_start_should_restart_empty_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    append_batches(&mut log, 3, 2, 0);
    log.truncate_fully_and_start_at(100, NOW_MS)
        .expect("restart");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
    assert_eq!(log.latest_epoch(), None);
    let info = log
        .append_as_leader(blob(&[batch(1, 0)]), 5, NOW_MS)
        .expect("append");
    assert_eq!(info.base_offset, 100);
    log.close().expect("close");
    let log = open(dir.path(), LogConfig::default());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 101));
}
