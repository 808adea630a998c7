//! Compaction of transactional data: aborted records go and never supersede a committed
//! value, the clean stops below the first unstable offset, and the `.txnindex` survives
//! the swap (also when the swap fails half-way).

use std::collections::BTreeMap;

use strom_protocol::batch::BatchView;
use strom_protocol::record::{decode_batch, BatchBuilderOptions};

use super::support::*;
use super::transactions::{aborted, end_txn, keyed, open, txn_keyed};
use crate::cleaner::FAIL_SWAP_AT_STEP;
use crate::{ControlMarker, LogConfig, PartitionLog, Throttle};

fn compact_config() -> LogConfig {
    LogConfig {
        segment_bytes: 512,
        index_interval_bytes: 128,
        retention_ms: -1,
        cleanup_compact: true,
        cleanup_delete: false,
        min_cleanable_dirty_ratio: 0.0,
        ..Default::default()
    }
}

/// key -> value of every data record left in the log, latest wins, plus the count of
/// control batches.
fn compacted_view(log: &PartitionLog) -> (BTreeMap<String, String>, Vec<(i64, String)>, usize) {
    let bytes = read_all(log, log.log_start_offset());
    let mut latest = BTreeMap::new();
    let mut all = Vec::new();
    let mut controls = 0;
    for (_, _, batch) in batches_of(&bytes) {
        let view = BatchView::parse(&batch).expect("batch");
        if view.is_control() {
            controls += 1;
            continue;
        }
        for record in decode_batch(&view).expect("decode") {
            let key = String::from_utf8(record.key.expect("key").to_vec()).expect("utf8");
            let value = String::from_utf8(record.value.expect("value").to_vec()).expect("utf8");
            all.push((record.offset, format!("{key}={value}")));
            latest.insert(key, value);
        }
    }
    (latest, all, controls)
}

/// Fills segments with filler keys until the log has rolled `segments` more times.
fn fill(log: &mut PartitionLog, segments: usize, tag: &str) {
    let target = log.segment_count() + segments;
    let mut i = 0;
    while log.segment_count() < target {
        let key = format!("filler-{i}");
        let filler = keyed(&[(&key, tag)], &BatchBuilderOptions::default());
        log.append_as_leader(blob(&[filler]), 1, NOW_MS)
            .expect("filler");
        i += 1;
    }
}

#[test]
fn given_aborted_transaction_when_compacted_should_drop_its_records_and_keep_the_committed_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compact_config());
    log.append_as_leader(blob(&[txn_keyed(&[("k", "committed")], 1, 0)]), 1, NOW_MS)
        .expect("p1");
    end_txn(&mut log, 1, ControlMarker::Commit);
    let aborted_first = log
        .append_as_leader(
            blob(&[txn_keyed(&[("k", "aborted"), ("only-aborted", "x")], 2, 0)]),
            1,
            NOW_MS,
        )
        .expect("p2")
        .base_offset;
    end_txn(&mut log, 2, ControlMarker::Abort);
    fill(&mut log, 2, "a");
    let (_, before, controls_before) = compacted_view(&log);
    assert!(before.contains(&(aborted_first, "k=aborted".to_string())));

    let outcome = log
        .clean(NOW_MS, true, &mut Throttle::unlimited())
        .expect("clean")
        .expect("something to clean");
    assert!(outcome.stats.records_removed >= 2);
    let (latest, after, controls_after) = compacted_view(&log);
    assert_eq!(latest.get("k").map(String::as_str), Some("committed"));
    assert!(!latest.contains_key("only-aborted"));
    assert!(!after
        .iter()
        .any(|(_, r)| r.ends_with("=aborted") || r.starts_with("only-aborted")));
    assert_eq!(controls_after, controls_before, "markers are kept");
    assert_eq!(
        log.aborted_transactions(0, i64::MAX).expect("a"),
        aborted(&[(2, aborted_first)]),
        "the cleaned segment kept its txnindex"
    );
    log.close().expect("close");
    let log = open(dir.path(), compact_config());
    assert_eq!(
        log.aborted_transactions(0, i64::MAX).expect("a"),
        aborted(&[(2, aborted_first)])
    );
    assert_eq!(compacted_view(&log).1, after);
}

#[test]
fn given_ongoing_transaction_when_compacting_should_stop_below_the_first_unstable_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compact_config());
    fill(&mut log, 2, "old");
    fill(&mut log, 1, "newer");
    let first_unstable = log
        .append_as_leader(blob(&[txn_keyed(&[("pending", "?")], 3, 0)]), 1, NOW_MS)
        .expect("p3")
        .base_offset;
    fill(&mut log, 3, "new");
    assert_eq!(log.first_unstable_offset(), Some(first_unstable));
    let unstable_part = |log: &PartitionLog| -> Vec<(i64, String)> {
        let (_, all, _) = compacted_view(log);
        all.into_iter()
            .filter(|(o, _)| *o >= first_unstable)
            .collect()
    };
    let before = unstable_part(&log);
    assert!(before.len() > 3 && before.contains(&(first_unstable, "pending=?".to_string())));
    let outcome = log
        .clean(NOW_MS, true, &mut Throttle::unlimited())
        .expect("clean")
        .expect("the stable prefix is cleaned");
    assert!(outcome.first_dirty_offset <= first_unstable);
    assert!(
        outcome.stats.records_removed > 0,
        "old fillers were superseded"
    );
    let (latest, _, _) = compacted_view(&log);
    assert!(latest.values().all(|v| v != "old"));
    assert_eq!(
        unstable_part(&log),
        before,
        "nothing at or above the first unstable offset was cleaned"
    );
    end_txn(&mut log, 3, ControlMarker::Commit);
    assert_eq!(log.first_unstable_offset(), None);
}

#[test]
fn given_failure_at_each_swap_step_when_reopened_should_keep_reporting_the_abort() {
    for step in 1..=4u8 {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), compact_config());
        log.append_as_leader(blob(&[txn_keyed(&[("k", "committed")], 1, 0)]), 1, NOW_MS)
            .expect("p1");
        end_txn(&mut log, 1, ControlMarker::Commit);
        let aborted_first = log
            .append_as_leader(blob(&[txn_keyed(&[("k", "aborted")], 2, 0)]), 1, NOW_MS)
            .expect("p2")
            .base_offset;
        end_txn(&mut log, 2, ControlMarker::Abort);
        fill(&mut log, 2, "a");
        let lso = log.last_stable_offset();
        FAIL_SWAP_AT_STEP.with(|cell| cell.set(step));
        let result = log.clean(NOW_MS, true, &mut Throttle::unlimited());
        FAIL_SWAP_AT_STEP.with(|cell| cell.set(0));
        assert!(result.is_err(), "step {step} fails");
        drop(log); // a crash: no clean-shutdown marker
        let mut log = open(dir.path(), compact_config());
        assert_eq!(
            log.aborted_transactions(0, i64::MAX).expect("a"),
            aborted(&[(2, aborted_first)]),
            "step {step}"
        );
        assert_eq!(log.last_stable_offset(), lso, "step {step}");
        log.clean(NOW_MS, true, &mut Throttle::unlimited())
            .expect("clean after recovery");
        let (latest, _, _) = compacted_view(&log);
        assert_eq!(
            latest.get("k").map(String::as_str),
            Some("committed"),
            "step {step}"
        );
        assert_eq!(
            log.aborted_transactions(0, i64::MAX).expect("a"),
            aborted(&[(2, aborted_first)]),
            "step {step}"
        );
    }
}
