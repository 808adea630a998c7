//! Transactions: the last stable offset, markers and their fencing, the aborted-transaction
//! index checked against a model across segments, restarts and damage, truncation,
//! retention and followers. Compaction of transactions: `transactions_compaction.rs`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strom_protocol::batch::BatchView;
use strom_protocol::record::{decode_batch, encode_batch, BatchBuilderOptions, RecordToEncode};

use super::support::*;
use crate::files::{offset_file, CLEAN_SHUTDOWN_FILE, TXN_INDEX_SUFFIX};
use crate::{
    AbortedTransaction, AppendError, ControlMarker, InvalidRecordReason, LogConfig, PartitionLog,
};

pub(super) fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config, NOW_MS).expect("open")
}

pub(super) fn options(producer_id: i64, epoch: i16, sequence: i32) -> BatchBuilderOptions {
    BatchBuilderOptions {
        producer_id,
        producer_epoch: epoch,
        base_sequence: sequence,
        transactional: true,
        ..Default::default()
    }
}

/// A transactional batch of `count` records.
pub(super) fn txn_batch(count: usize, producer_id: i64, epoch: i16, sequence: i32) -> Vec<u8> {
    batch_with(count, 1_000, &options(producer_id, epoch, sequence))
}

/// A transactional batch of keyed records.
pub(super) fn txn_keyed(records: &[(&str, &str)], producer_id: i64, sequence: i32) -> Vec<u8> {
    keyed(records, &options(producer_id, 0, sequence))
}

pub(super) fn keyed(records: &[(&str, &str)], options: &BatchBuilderOptions) -> Vec<u8> {
    let records: Vec<RecordToEncode> = records
        .iter()
        .map(|(key, value)| RecordToEncode {
            key: Some(Bytes::from(key.to_string())),
            value: Some(Bytes::from(value.to_string())),
            headers: vec![],
            timestamp_ms: 1_000,
        })
        .collect();
    encode_batch(&records, options).expect("encode").to_vec()
}

pub(super) fn end_txn(log: &mut PartitionLog, producer_id: i64, marker: ControlMarker) -> i64 {
    log.append_control_marker(producer_id, 0, marker, 0, 1, NOW_MS)
        .expect("marker")
        .base_offset
}

pub(super) fn aborted(list: &[(i64, i64)]) -> Vec<AbortedTransaction> {
    list.iter()
        .map(|&(producer_id, first_offset)| AbortedTransaction {
            producer_id,
            first_offset,
        })
        .collect()
}

#[test]
fn given_interleaved_producers_when_transactions_end_should_move_the_last_stable_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    assert_eq!(
        (log.first_unstable_offset(), log.last_stable_offset()),
        (None, 0)
    );
    log.append_as_leader(blob(&[txn_batch(3, 1, 0, 0)]), 1, NOW_MS)
        .expect("p1 at 0..=2");
    log.append_as_leader(blob(&[batch(2, 1_000)]), 1, NOW_MS)
        .expect("plain at 3..=4");
    log.append_as_leader(blob(&[txn_batch(2, 2, 0, 0)]), 1, NOW_MS)
        .expect("p2 at 5..=6");
    log.append_as_leader(blob(&[txn_batch(1, 1, 0, 3)]), 1, NOW_MS)
        .expect("p1 again at 7");
    assert_eq!(log.first_unstable_offset(), Some(0));
    assert_eq!(log.last_stable_offset(), 0);
    let ongoing: Vec<(i64, i64)> = log
        .ongoing_transactions()
        .iter()
        .map(|t| (t.producer_id, t.first_offset))
        .collect();
    assert_eq!(ongoing, [(1, 0), (2, 5)]);
    let starts: Vec<(i64, i64)> = log
        .active_producers()
        .iter()
        .map(|p| (p.producer_id, p.current_txn_start_offset))
        .collect();
    assert_eq!(starts, [(1, 0), (2, 5)]);

    assert_eq!(end_txn(&mut log, 1, ControlMarker::Commit), 8);
    assert_eq!(log.last_stable_offset(), 5, "p2 still holds the LSO");
    assert_eq!(log.aborted_transactions(0, 100).expect("aborted"), []);
    assert_eq!(end_txn(&mut log, 2, ControlMarker::Abort), 9);
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.last_stable_offset(), 10);
    assert_eq!(
        log.aborted_transactions(0, 10).expect("aborted"),
        aborted(&[(2, 5)])
    );
    let entries = log.active().aborted_from(0).expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].last_offset, entries[0].last_stable_offset),
        (9, 10)
    );
    assert!(log
        .active_producers()
        .iter()
        .all(|p| p.current_txn_start_offset == -1));
}

/// What a history of transactions did, to check the log against.
#[derive(Default)]
struct Model {
    ongoing: BTreeMap<i64, i64>,
    /// (producer id, first offset, marker offset) of every aborted transaction.
    aborted: Vec<(i64, i64, i64)>,
    sequences: HashMap<i64, i32>,
}

impl Model {
    fn last_stable_offset(&self, log_end: i64) -> i64 {
        self.ongoing.values().copied().min().unwrap_or(log_end)
    }

    fn aborted_between(&self, fetch: i64, upper: i64) -> Vec<AbortedTransaction> {
        let mut out: Vec<AbortedTransaction> = self
            .aborted
            .iter()
            .filter(|&&(_, first, last)| last >= fetch && first < upper)
            .map(|&(producer_id, first_offset, _)| AbortedTransaction {
                producer_id,
                first_offset,
            })
            .collect();
        out.sort_by_key(|t| t.first_offset);
        out
    }
}

/// Random interleaved transactions of four producers plus plain batches, checking the
/// LSO after every step.
fn run_history(log: &mut PartitionLog, rng: &mut StdRng, steps: usize) -> Model {
    let mut model = Model::default();
    for _ in 0..steps {
        let producer_id = rng.gen_range(1..=4i64);
        let ongoing = model.ongoing.get(&producer_id).copied();
        let roll = rng.gen_range(0..10);
        match (ongoing, roll) {
            (None, 0..=1) => {
                log.append_as_leader(blob(&[batch(2, 1_000)]), 1, NOW_MS)
                    .expect("plain");
            }
            (None, _) | (Some(_), 0..=4) => {
                let count = rng.gen_range(1..=4);
                let sequence = model.sequences.entry(producer_id).or_insert(0);
                let info = log
                    .append_as_leader(
                        blob(&[txn_batch(count, producer_id, 0, *sequence)]),
                        1,
                        NOW_MS,
                    )
                    .expect("transactional");
                *sequence += count as i32;
                model.ongoing.entry(producer_id).or_insert(info.base_offset);
            }
            (Some(first), 5..=7) => {
                end_txn(log, producer_id, ControlMarker::Commit);
                assert_eq!(model.ongoing.remove(&producer_id), Some(first));
            }
            (Some(first), _) => {
                let marker = end_txn(log, producer_id, ControlMarker::Abort);
                model.ongoing.remove(&producer_id);
                model.aborted.push((producer_id, first, marker));
            }
        }
        assert_eq!(
            log.last_stable_offset(),
            model.last_stable_offset(log.log_end_offset())
        );
    }
    model
}

/// Every (fetch, upper bound) pair on a grid, against the model.
fn check_aborted_queries(log: &PartitionLog, model: &Model, label: &str) {
    let end = log.log_end_offset();
    for fetch in (0..=end).step_by(3) {
        for upper in (fetch..=end + 1).step_by(4) {
            assert_eq!(
                log.aborted_transactions(fetch, upper).expect("aborted"),
                model.aborted_between(fetch, upper),
                "{label}: fetch {fetch} upper {upper}"
            );
        }
    }
    assert_eq!(
        log.last_stable_offset(),
        model.last_stable_offset(end),
        "{label}"
    );
    let ongoing: Vec<(i64, i64)> = log
        .ongoing_transactions()
        .iter()
        .map(|t| (t.first_offset, t.producer_id))
        .collect();
    let mut expected: Vec<(i64, i64)> = model.ongoing.iter().map(|(&p, &f)| (f, p)).collect();
    expected.sort_unstable();
    assert_eq!(ongoing, expected, "{label}");
}

fn txn_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        ..small_config()
    }
}

#[test]
fn given_commits_and_aborts_across_segments_when_fetching_should_report_exactly_the_overlapping_aborts(
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), txn_config());
    let mut rng = StdRng::seed_from_u64(7);
    let model = run_history(&mut log, &mut rng, 300);
    assert!(log.segment_count() > 5, "the history spans segments");
    assert!(model.aborted.len() > 10);
    check_aborted_queries(&log, &model, "live");
    // Edge cases by hand: an empty range, a bound at an abort's first offset, a fetch at
    // its marker and one past it.
    let &(producer_id, first, last) = &model.aborted[3];
    let empty_range = log.aborted_transactions(first, first).expect("a");
    assert!(!empty_range
        .iter()
        .any(|t| t.producer_id == producer_id && t.first_offset == first));
    let at_first = log.aborted_transactions(0, first).expect("a");
    assert!(!at_first
        .iter()
        .any(|t| t.producer_id == producer_id && t.first_offset == first));
    let at_marker = log.aborted_transactions(last, last + 1).expect("a");
    assert!(at_marker.contains(&AbortedTransaction {
        producer_id,
        first_offset: first
    }));
    let past = log.aborted_transactions(last + 1, i64::MAX).expect("a");
    assert!(!past
        .iter()
        .any(|t| t.producer_id == producer_id && t.first_offset == first));
    log.close().expect("close");
    let log = open(dir.path(), txn_config());
    check_aborted_queries(&log, &model, "after a clean restart");
}

#[test]
fn given_unclean_shutdown_or_lost_txn_index_when_reopened_should_rebuild_the_same_state() {
    for damage in [
        "crash",
        "crash and delete every txnindex",
        "clean but txnindex deleted",
        "clean but txnindex torn",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), txn_config());
        let mut rng = StdRng::seed_from_u64(11);
        let model = run_history(&mut log, &mut rng, 200);
        let bases: Vec<i64> = log.segments.keys().copied().collect();
        let with_entries: Vec<i64> = log
            .segments
            .iter()
            .filter(|(_, s)| s.has_aborted())
            .map(|(&b, _)| b)
            .collect();
        assert!(with_entries.len() > 2, "{damage}");
        if damage.starts_with("crash") {
            std::mem::forget(log);
            assert!(!dir.path().join(CLEAN_SHUTDOWN_FILE).exists());
        } else {
            log.close().expect("close");
        }
        let txn_index = |base| offset_file(dir.path(), base, TXN_INDEX_SUFFIX);
        match damage {
            "crash and delete every txnindex" | "clean but txnindex deleted" => {
                for &base in &bases {
                    std::fs::remove_file(txn_index(base)).expect("rm");
                }
            }
            "clean but txnindex torn" => {
                for &base in &with_entries {
                    let len = std::fs::metadata(txn_index(base)).expect("m").len();
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .open(txn_index(base))
                        .expect("open");
                    file.set_len(len - 5).expect("tear");
                }
            }
            _ => {}
        }
        let mut log = open(dir.path(), txn_config());
        check_aborted_queries(&log, &model, damage);
        for &base in &with_entries {
            assert_eq!(
                std::fs::metadata(txn_index(base)).expect("rebuilt").len() % 34,
                0,
                "{damage}"
            );
        }
        // Ongoing transactions survived: their markers still complete them.
        let ongoing: Vec<i64> = model.ongoing.keys().copied().collect();
        for producer_id in ongoing {
            end_txn(&mut log, producer_id, ControlMarker::Commit);
        }
        assert_eq!(log.last_stable_offset(), log.log_end_offset(), "{damage}");
    }
}

#[test]
fn given_markers_when_epochs_are_old_should_be_fenced_and_otherwise_end_the_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    log.append_as_leader(blob(&[txn_batch(2, 7, 3, 0)]), 1, NOW_MS)
        .expect("txn");
    let end = log.log_end_offset();
    let error = log
        .append_control_marker(7, 2, ControlMarker::Abort, 0, 1, NOW_MS)
        .expect_err("old epoch");
    assert!(matches!(
        error,
        AppendError::InvalidProducerEpoch {
            producer_id: 7,
            epoch: 2,
            current_epoch: 3
        }
    ));
    assert_eq!(log.log_end_offset(), end, "nothing written");
    assert_eq!(log.first_unstable_offset(), Some(0));
    // The coordinator bumps the epoch when it aborts on the producer's behalf.
    let info = log
        .append_control_marker(7, 4, ControlMarker::Abort, 5, 1, NOW_MS)
        .expect("newer epoch");
    assert_eq!(
        (info.base_offset, info.last_offset, info.record_count),
        (2, 2, 1)
    );
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(
        log.aborted_transactions(0, 3).expect("a"),
        aborted(&[(7, 0)])
    );
    assert_eq!(log.active_producers()[0].producer_epoch, 4);
    let error = log
        .append_as_leader(blob(&[txn_batch(1, 7, 3, 2)]), 1, NOW_MS)
        .expect_err("fenced producer");
    assert!(matches!(
        error,
        AppendError::InvalidProducerEpoch {
            current_epoch: 4,
            ..
        }
    ));
    let error = log
        .append_control_marker(7, 4, ControlMarker::Commit, 4, 1, NOW_MS)
        .expect_err("zombie coordinator");
    assert!(matches!(
        error,
        AppendError::TransactionCoordinatorFenced {
            producer_id: 7,
            coordinator_epoch: 4,
            current_coordinator_epoch: 5
        }
    ));
    // A marker with no transaction ongoing is written and changes nothing else.
    let info = log
        .append_control_marker(99, 0, ControlMarker::Abort, 0, 1, NOW_MS)
        .expect("no transaction");
    assert_eq!(info.base_offset, 3);
    assert_eq!(
        log.aborted_transactions(0, 100).expect("a"),
        aborted(&[(7, 0)])
    );
    assert_eq!(log.last_stable_offset(), 4);
    // The stored marker is Kafka's control batch.
    let bytes = read_all(&log, 2);
    let batches = batches_of(&bytes);
    assert_eq!(batches.len(), 2);
    let view = BatchView::parse(&batches[0].2).expect("batch");
    assert!(view.is_control() && view.is_transactional());
    assert_eq!(
        (
            view.producer_id(),
            view.producer_epoch(),
            view.base_sequence()
        ),
        (7, 4, -1)
    );
    assert_eq!(view.partition_leader_epoch(), 1);
    let record = &decode_batch(&view).expect("decode")[0];
    assert_eq!(record.key.as_deref(), Some(&[0u8, 0, 0, 0][..]));
    assert_eq!(record.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 5][..]));
    assert_eq!(record.timestamp_ms, NOW_MS);
}

#[test]
fn given_ongoing_transaction_when_non_transactional_batch_arrives_should_refuse_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    log.append_as_leader(blob(&[txn_batch(2, 5, 0, 0)]), 1, NOW_MS)
        .expect("txn");
    let error = log
        .append_as_leader(blob(&[idempotent(1, 5, 0, 2)]), 1, NOW_MS)
        .expect_err("plain write mid-transaction");
    assert!(matches!(
        error,
        AppendError::InvalidTxnState { producer_id: 5, .. }
    ));
    let error = log
        .append_as_leader(
            blob(&[txn_batch(1, 5, 0, 2), idempotent(1, 5, 0, 3)]),
            1,
            NOW_MS,
        )
        .expect_err("the second batch of one request");
    assert!(matches!(error, AppendError::InvalidTxnState { .. }));
    assert_eq!(log.log_end_offset(), 2, "nothing appended");
    let error = log
        .append_as_leader(blob(&[batch_with(1, 0, &options(-1, -1, -1))]), 1, NOW_MS)
        .expect_err("transactional without a producer id");
    assert!(matches!(
        error,
        AppendError::InvalidRecord {
            reason: InvalidRecordReason::MissingProducerId,
            ..
        }
    ));
    end_txn(&mut log, 5, ControlMarker::Commit);
    let info = log
        .append_as_leader(blob(&[idempotent(1, 5, 0, 2)]), 1, NOW_MS)
        .expect("plain write after the commit");
    assert_eq!(info.base_offset, 3);
}

#[test]
fn given_coordinator_writes_without_sequences_should_track_the_transaction_and_fence_epochs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for expected_base in [0, 2] {
        let info = log
            .append_as_coordinator(blob(&[txn_batch(2, 9, 1, -1)]), 1, NOW_MS)
            .expect("seq -1 accepted");
        assert_eq!((info.base_offset, info.duplicate), (expected_base, false));
    }
    assert_eq!(log.first_unstable_offset(), Some(0));
    let error = log
        .append_as_coordinator(blob(&[txn_batch(1, 9, 0, -1)]), 1, NOW_MS)
        .expect_err("old epoch");
    assert!(matches!(error, AppendError::InvalidProducerEpoch { .. }));
    let error = log
        .append_as_coordinator(blob(&[idempotent(1, 9, 1, -1)]), 1, NOW_MS)
        .expect_err("non-transactional mid-transaction");
    assert!(matches!(error, AppendError::InvalidTxnState { .. }));
    let error = log
        .append_as_leader(blob(&[txn_batch(1, 9, 1, 5)]), 1, NOW_MS)
        .expect_err("a client's batches are sequence-checked");
    assert!(matches!(
        error,
        AppendError::OutOfOrderSequence {
            expected: 0,
            got: 5,
            ..
        }
    ));
    end_txn_at_epoch(&mut log, 9, 1, ControlMarker::Commit);
    assert_eq!(log.last_stable_offset(), 5);
    assert_eq!(log.aborted_transactions(0, 5).expect("a"), []);
}

fn end_txn_at_epoch(log: &mut PartitionLog, producer_id: i64, epoch: i16, marker: ControlMarker) {
    log.append_control_marker(producer_id, epoch, marker, 0, 1, NOW_MS)
        .expect("marker");
}

#[test]
fn given_version_1_snapshot_when_opened_should_load_the_producers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for sequence in 0..5 {
        log.append_as_leader(blob(&[idempotent(1, 5, 0, sequence)]), 1, NOW_MS)
            .expect("append");
    }
    let table = log.producers.clone();
    log.close().expect("close");
    // Version 1: no coordinator epoch, no ongoing transaction.
    let mut body = Vec::new();
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&5i64.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.push(5);
    for sequence in 0..5i32 {
        body.extend_from_slice(&sequence.to_be_bytes());
        body.extend_from_slice(&sequence.to_be_bytes());
        body.extend_from_slice(&(sequence as i64).to_be_bytes());
        body.extend_from_slice(&(sequence as i64).to_be_bytes());
        body.extend_from_slice(&1_000i64.to_be_bytes());
    }
    let mut contents = b"STPS".to_vec();
    contents.extend_from_slice(&1u16.to_be_bytes());
    contents.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    contents.extend_from_slice(&body);
    let parsed = crate::producer_state::ProducerStateTable::parse_snapshot(&contents, NOW_MS)
        .expect("version 1 parses");
    assert_eq!(parsed, table, "the same state as the log built");
    std::fs::write(offset_file(dir.path(), 5, "snapshot"), &contents).expect("write v1");

    let mut log = open(dir.path(), small_config());
    let retry = log
        .append_as_leader(blob(&[idempotent(1, 5, 0, 4)]), 1, NOW_MS)
        .expect("retry");
    assert!(retry.duplicate, "duplicates detected from the v1 snapshot");
    assert_eq!(retry.base_offset, 4);
    assert_eq!(log.first_unstable_offset(), None);
    log.append_as_leader(blob(&[txn_batch(1, 5, 0, 5)]), 1, NOW_MS)
        .expect("a transaction after the upgrade");
    assert_eq!(log.first_unstable_offset(), Some(5));
    log.close().expect("close writes version 2");
    let log = open(dir.path(), small_config());
    assert_eq!(log.first_unstable_offset(), Some(5));
}

#[test]
fn given_truncation_across_a_marker_should_drop_its_entry_and_reopen_the_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), txn_config());
    log.append_as_leader(blob(&[txn_batch(3, 1, 0, 0)]), 1, NOW_MS)
        .expect("p1 at 0..=2");
    let mut sequence = 3;
    while log.segment_count() < 3 {
        log.append_as_leader(blob(&[txn_batch(3, 1, 0, sequence)]), 1, NOW_MS)
            .expect("p1");
        sequence += 3;
    }
    let marker = end_txn(&mut log, 1, ControlMarker::Abort);
    let marker_base = log.active().base_offset();
    log.append_as_leader(blob(&[txn_batch(1, 2, 0, 0)]), 2, NOW_MS)
        .expect("p2");
    assert_eq!(
        log.aborted_transactions(0, i64::MAX).expect("a"),
        aborted(&[(1, 0)])
    );
    assert_eq!(log.last_stable_offset(), marker + 1);
    let txn_index = offset_file(dir.path(), marker_base, TXN_INDEX_SUFFIX);
    assert_eq!(std::fs::metadata(&txn_index).expect("m").len(), 34);

    log.truncate_to(marker, NOW_MS).expect("truncate");
    assert_eq!(log.log_end_offset(), marker);
    assert_eq!(log.aborted_transactions(0, i64::MAX).expect("a"), []);
    assert_eq!(
        log.first_unstable_offset(),
        Some(0),
        "p1's transaction is open again"
    );
    assert_eq!(std::fs::metadata(&txn_index).expect("m").len(), 0);

    log.truncate_to(marker_base - 1, NOW_MS)
        .expect("truncate a segment away");
    assert!(!txn_index.exists(), "the segment's txnindex went with it");
    let marker = end_txn(&mut log, 1, ControlMarker::Abort);
    assert_eq!(
        log.aborted_transactions(0, i64::MAX).expect("a"),
        aborted(&[(1, 0)])
    );
    assert_eq!(log.last_stable_offset(), marker + 1);
    log.truncate_fully_and_start_at(marker + 10, NOW_MS)
        .expect("restart");
    assert_eq!(log.aborted_transactions(0, i64::MAX).expect("a"), []);
    assert_eq!(log.ongoing_transactions(), []);
}

#[test]
fn given_retention_when_segments_go_should_remove_their_txn_index_but_keep_ongoing_producers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        retention_ms: 1_000,
        producer_id_expiration_ms: 60_000,
        ..txn_config()
    };
    let mut log = open(dir.path(), config);
    log.append_as_leader(blob(&[txn_batch(2, 1, 0, 0)]), 1, NOW_MS)
        .expect("p1");
    log.append_as_leader(blob(&[txn_batch(2, 2, 0, 0)]), 1, NOW_MS)
        .expect("p2");
    end_txn(&mut log, 1, ControlMarker::Abort);
    log.append_as_leader(blob(&[idempotent(1, 3, 0, 0)]), 1, NOW_MS)
        .expect("p3");
    // Markers carry the broker's clock, so the one above rolled a segment with old
    // CreateTime timestamps (segment.ms): the abort sits in its own segment.
    let with_aborts: Vec<std::path::PathBuf> = log
        .segments
        .iter()
        .filter(|(_, s)| s.has_aborted())
        .map(|(&base, _)| offset_file(dir.path(), base, TXN_INDEX_SUFFIX))
        .collect();
    assert_eq!(with_aborts.len(), 1);
    let txn_index = &with_aborts[0];
    assert_eq!(std::fs::metadata(txn_index).expect("m").len(), 34);
    // Old CreateTime timestamps and a clock far ahead: every segment and idle producer goes.
    let later_ms = NOW_MS + 120_000;
    let outcome = log.enforce_retention(later_ms).expect("retention");
    assert!(outcome.segments_deleted >= 2);
    assert!(!txn_index.exists());
    assert_eq!(log.aborted_transactions(0, i64::MAX).expect("a"), []);
    let producers: Vec<i64> = log
        .active_producers()
        .iter()
        .map(|p| p.producer_id)
        .collect();
    assert_eq!(
        producers,
        [2],
        "only the producer with a transaction ongoing stays"
    );
    assert_eq!(
        log.last_stable_offset(),
        log.log_start_offset(),
        "a transaction whose records are gone holds the LSO at the log start"
    );
    end_txn(&mut log, 2, ControlMarker::Commit);
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
}

#[test]
fn given_follower_copying_the_leader_should_track_the_same_transactions() {
    let leader_dir = tempfile::tempdir().expect("tempdir");
    let follower_dir = tempfile::tempdir().expect("tempdir");
    let mut leader = open(leader_dir.path(), txn_config());
    let mut rng = StdRng::seed_from_u64(3);
    let model = run_history(&mut leader, &mut rng, 120);
    let mut follower = open(follower_dir.path(), txn_config());
    let bytes = read_all(&leader, 0);
    for (_, _, batch) in batches_of(&bytes) {
        follower
            .append_as_follower(&blob(&[batch]), NOW_MS)
            .expect("follower append");
    }
    check_aborted_queries(&follower, &model, "follower");
}
