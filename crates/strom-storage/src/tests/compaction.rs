//! Compaction checked against a model: generated key/value histories (several codecs,
//! tombstones, idempotent producers), cleaned, then read back and compared record by
//! record with what was written. Also crash injection at every swap step, lag and ratio
//! rules, keyless produce, DeleteRecords and the compact-only retention rule.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strom_protocol::batch::{BatchView, Compression};
use strom_protocol::record::{decode_batch, encode_batch, BatchBuilderOptions, RecordToEncode};

use super::support::*;
use crate::cleaner::FAIL_SWAP_AT_STEP;
use crate::{AppendError, LogConfig, PartitionLog, ReadError, RecordErrorReason, Throttle};

const DELETE_RETENTION_MS: i64 = 60_000;

fn compact_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4 * 1024,
        index_interval_bytes: 128,
        retention_ms: -1,
        cleanup_compact: true,
        cleanup_delete: false,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: DELETE_RETENTION_MS,
        ..Default::default()
    }
}

/// What was written at one offset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    key: String,
    value: Option<String>,
}

#[derive(Default)]
struct Model {
    history: BTreeMap<i64, Written>,
}

impl Model {
    /// Latest record per key among offsets below `end`.
    fn latest_below(&self, end: i64) -> HashMap<String, (i64, Option<String>)> {
        let mut latest = HashMap::new();
        for (&offset, written) in self.history.range(..end) {
            latest.insert(written.key.clone(), (offset, written.value.clone()));
        }
        latest
    }
}

fn keyed_batch(records: &[(String, Option<String>)], options: &BatchBuilderOptions) -> Vec<u8> {
    let records: Vec<RecordToEncode> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| RecordToEncode {
            key: Some(Bytes::from(key.clone())),
            value: value.clone().map(Bytes::from),
            headers: vec![],
            timestamp_ms: 1_000 + i as i64,
        })
        .collect();
    encode_batch(&records, options).expect("encode").to_vec()
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Appends `batches` random batches over `keys` keys (10% tombstones, random codecs).
fn append_history(
    log: &mut PartitionLog,
    model: &mut Model,
    rng: &mut StdRng,
    batches: usize,
    keys: usize,
) {
    for _ in 0..batches {
        let count = rng.gen_range(1..=5);
        let records: Vec<(String, Option<String>)> = (0..count)
            .map(|_| {
                let key = format!("k{}", rng.gen_range(0..keys));
                let value = (!rng.gen_bool(0.1)).then(|| format!("v{}", rng.gen::<u32>()));
                (key, value)
            })
            .collect();
        let options = BatchBuilderOptions {
            compression: CODECS[rng.gen_range(0..CODECS.len())],
            ..Default::default()
        };
        let info = log
            .append_as_leader(blob(&[keyed_batch(&records, &options)]), 1, NOW_MS)
            .expect("append");
        for (i, (key, value)) in records.into_iter().enumerate() {
            model
                .history
                .insert(info.base_offset + i as i64, Written { key, value });
        }
    }
}

/// Every record in the log as (offset, key, value), checking CRCs and increasing offsets.
fn log_records(log: &PartitionLog) -> Vec<(i64, Written)> {
    let bytes = read_all(log, log.log_start_offset());
    let mut out = Vec::new();
    let mut previous = -1;
    for (base, last, batch) in batches_of(&bytes) {
        assert!(base > previous, "batch offsets increase");
        previous = last;
        let view = BatchView::parse(&batch).expect("batch");
        for record in decode_batch(&view).expect("decode") {
            assert!(record.offset >= base && record.offset <= last);
            let key = String::from_utf8(record.key.expect("compacted logs keep keys").to_vec())
                .expect("utf8");
            let value = record
                .value
                .map(|v| String::from_utf8(v.to_vec()).expect("utf8"));
            out.push((record.offset, Written { key, value }));
        }
    }
    out
}

/// The invariants a cleaned log must hold against the model.
fn check_against_model(log: &PartitionLog, model: &Model, tombstones_may_be_gone: bool) {
    let records = log_records(log);
    // Every surviving record is exactly what was written at its offset.
    for (offset, written) in &records {
        assert_eq!(model.history.get(offset), Some(written), "offset {offset}");
    }
    // The latest record of every key is still there (tombstones may expire).
    let present: HashMap<i64, &Written> = records.iter().map(|(o, w)| (*o, w)).collect();
    for (key, (offset, value)) in model.latest_below(i64::MAX) {
        if value.is_none() && tombstones_may_be_gone {
            continue;
        }
        assert!(
            present.contains_key(&offset),
            "latest record of {key} at {offset} is gone"
        );
    }
    // The log end never moves.
    let model_end = model.history.keys().next_back().map_or(0, |o| o + 1);
    assert_eq!(log.log_end_offset(), model_end);
    // A read from any offset returns the first batch at or after it.
    for offset in (log.log_start_offset()..log.log_end_offset()).step_by(7) {
        let info = log.read(offset, 1, i64::MAX, true).expect("read");
        let range = info.records.expect("some batch at or after any offset");
        let batches = batches_of(&range.read_to_bytes().expect("pread"));
        assert!(
            batches[0].1 >= offset,
            "read at {offset} returns a later batch"
        );
        let next_present = records.iter().find(|(o, _)| *o >= offset).map(|(o, _)| *o);
        if let Some(next) = next_present {
            assert!(
                batches[0].0 <= next,
                "read at {offset} skipped record {next}"
            );
        }
    }
}

/// Keys with more than one record in the sealed (cleaned) part of the log.
fn duplicated_keys_below(log: &PartitionLog, end: i64) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (offset, written) in log_records(log) {
        if offset < end {
            *seen.entry(written.key).or_default() += 1;
        }
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect()
}

fn active_base(log: &PartitionLog) -> i64 {
    *log.segments.keys().next_back().expect("never empty")
}

#[test]
fn given_random_histories_when_cleaned_should_keep_latest_per_key_and_offsets() {
    for seed in 0..6u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut rng = StdRng::seed_from_u64(seed);
        let mut log = PartitionLog::open(dir.path(), compact_config(), NOW_MS).expect("open");
        let mut model = Model::default();
        append_history(&mut log, &mut model, &mut rng, 400, 40);
        assert!(log.segment_count() > 4, "seed {seed}: several segments");
        let size_before = log.size_bytes();

        let outcome = log
            .clean(NOW_MS, false, &mut Throttle::unlimited())
            .expect("clean")
            .expect("a dirty log is cleaned");
        assert!(outcome.stats.records_removed > 0);
        assert!(log.size_bytes() < size_before);
        check_against_model(&log, &model, false);
        let sealed_end = active_base(&log);
        assert_eq!(
            duplicated_keys_below(&log, sealed_end),
            Vec::<String>::new()
        );

        // More writes, a second clean of clean + dirty segments.
        append_history(&mut log, &mut model, &mut rng, 200, 40);
        log.clean(NOW_MS + 1, true, &mut Throttle::unlimited())
            .expect("clean");
        check_against_model(&log, &model, false);
        assert_eq!(
            duplicated_keys_below(&log, active_base(&log)),
            Vec::<String>::new()
        );

        // Past the delete horizon, tombstones in cleaned segments go.
        let later = NOW_MS + DELETE_RETENTION_MS + 10;
        let tombstones_before = log_records(&log)
            .iter()
            .filter(|(o, w)| *o < active_base(&log) && w.value.is_none())
            .count();
        let outcome = log
            .clean(later, true, &mut Throttle::unlimited())
            .expect("clean")
            .expect("forced");
        assert_eq!(
            outcome.stats.tombstones_removed as usize, tombstones_before,
            "seed {seed}"
        );
        check_against_model(&log, &model, true);

        // All of it survives a restart (recovery trusts nothing but the files).
        drop(log);
        let log = PartitionLog::open(dir.path(), compact_config(), later).expect("reopen");
        check_against_model(&log, &model, true);
    }
}

#[test]
fn given_tombstone_when_first_cleaned_should_stay_until_delete_retention_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), compact_config(), NOW_MS).expect("open");
    let value = Some("x".repeat(200));
    let options = BatchBuilderOptions::default();
    log.append_as_leader(
        blob(&[keyed_batch(&[("a".into(), value.clone())], &options)]),
        1,
        NOW_MS,
    )
    .expect("append");
    log.append_as_leader(
        blob(&[keyed_batch(&[("a".into(), None)], &options)]),
        1,
        NOW_MS,
    )
    .expect("append");
    log.roll(NOW_MS).expect("roll");
    log.append_as_leader(
        blob(&[keyed_batch(&[("b".into(), value)], &options)]),
        1,
        NOW_MS,
    )
    .expect("append");
    let mut throttle = Throttle::unlimited();
    log.clean(NOW_MS, true, &mut throttle).expect("clean");
    let records = log_records(&log);
    assert_eq!(
        records[0].0, 1,
        "the value of a is gone, its tombstone stays"
    );
    assert_eq!(records[0].1.value, None);
    // Before the horizon: still there.
    log.clean(NOW_MS + DELETE_RETENTION_MS - 1, true, &mut throttle)
        .expect("clean");
    assert_eq!(log_records(&log)[0].0, 1);
    // After it: gone; its segment had nothing else and is deleted. The log start stays:
    // a read there continues with the next batch.
    log.clean(NOW_MS + DELETE_RETENTION_MS, true, &mut throttle)
        .expect("clean");
    let records = log_records(&log);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].1.key, "b");
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), 0);
    let range = log
        .read(0, 1024, i64::MAX, true)
        .expect("read")
        .records
        .expect("b");
    assert_eq!(batches_of(&range.read_to_bytes().expect("pread"))[0].0, 2);
    drop(log);
    let log = PartitionLog::open(dir.path(), compact_config(), NOW_MS).expect("reopen");
    assert_eq!(
        log.log_start_offset(),
        2,
        "on open the start is the first segment's base"
    );
}

#[test]
fn given_idempotent_producer_whose_records_are_all_superseded_when_cleaned_should_keep_its_sequence(
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), compact_config(), NOW_MS).expect("open");
    let producer = |sequence: i32| BatchBuilderOptions {
        producer_id: 7,
        producer_epoch: 3,
        base_sequence: sequence,
        compression: Compression::Lz4,
        ..Default::default()
    };
    let two = vec![
        ("a".to_string(), Some("1".to_string())),
        ("b".to_string(), Some("1".to_string())),
    ];
    log.append_as_leader(blob(&[keyed_batch(&two, &producer(0))]), 1, NOW_MS)
        .expect("append");
    log.append_as_leader(blob(&[keyed_batch(&two, &producer(2))]), 1, NOW_MS)
        .expect("append");
    // Another writer supersedes both of the producer's keys.
    let newer = vec![
        ("a".to_string(), Some("2".to_string())),
        ("b".to_string(), Some("2".to_string())),
    ];
    log.append_as_leader(
        blob(&[keyed_batch(&newer, &BatchBuilderOptions::default())]),
        1,
        NOW_MS,
    )
    .expect("append");
    log.roll(NOW_MS).expect("roll");
    log.clean(NOW_MS, true, &mut Throttle::unlimited())
        .expect("clean");

    let bytes = read_all(&log, 0);
    let batches = batches_of(&bytes);
    // The producer's first batch is gone; its last one stays, empty, header intact.
    assert_eq!(batches.len(), 2);
    let kept = BatchView::parse(&batches[0].2).expect("batch");
    assert_eq!((kept.base_offset(), kept.last_offset()), (2, 3));
    assert_eq!(kept.record_count(), 0);
    assert_eq!((kept.producer_id(), kept.producer_epoch()), (7, 3));
    assert_eq!((kept.base_sequence(), kept.last_sequence()), (2, 3));
    kept.verify_crc().expect("crc");

    // Rebuild producer state from headers alone (no snapshot): sequence 4 is next.
    drop(log);
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "snapshot") {
            std::fs::remove_file(path).expect("rm");
        }
    }
    let mut log = PartitionLog::open(dir.path(), compact_config(), NOW_MS).expect("reopen");
    let producers = log.active_producers();
    assert_eq!(producers.len(), 1);
    assert_eq!(
        (producers[0].producer_epoch, producers[0].last_sequence),
        (3, 3)
    );
    let retry = log
        .append_as_leader(blob(&[keyed_batch(&two, &producer(2))]), 1, NOW_MS)
        .expect("a retry of the kept batch");
    assert!(retry.duplicate);
    let info = log
        .append_as_leader(blob(&[keyed_batch(&two, &producer(4))]), 1, NOW_MS)
        .expect("next sequence");
    assert_eq!(info.base_offset, 6);
}

#[test]
fn given_failure_at_each_swap_step_when_reopened_should_be_consistent() {
    for step in 1..=4u8 {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut rng = StdRng::seed_from_u64(100 + step as u64);
        let mut log = PartitionLog::open(dir.path(), compact_config(), NOW_MS).expect("open");
        let mut model = Model::default();
        append_history(&mut log, &mut model, &mut rng, 300, 30);
        FAIL_SWAP_AT_STEP.with(|cell| cell.set(step));
        let result = log.clean(NOW_MS, true, &mut Throttle::unlimited());
        FAIL_SWAP_AT_STEP.with(|cell| cell.set(0));
        assert!(result.is_err(), "step {step} fails");
        // The log is fenced: no write is accepted until it is reopened.
        assert!(log
            .append_as_leader(
                blob(&[keyed_batch(&[("z".into(), None)], &Default::default())]),
                1,
                NOW_MS
            )
            .is_err());
        drop(log); // a crash: no clean-shutdown marker
        let mut log = PartitionLog::open(dir.path(), compact_config(), NOW_MS).expect("reopen");
        let leftovers: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
            .collect();
        assert_eq!(leftovers, Vec::<String>::new(), "step {step}");
        check_against_model(&log, &model, false);
        // And it cleans fine afterwards.
        log.clean(NOW_MS, true, &mut Throttle::unlimited())
            .expect("clean after recovery");
        check_against_model(&log, &model, false);
        assert_eq!(
            duplicated_keys_below(&log, active_base(&log)),
            Vec::<String>::new()
        );
    }
}

#[test]
fn given_half_written_cleaned_files_when_reopened_should_ignore_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = StdRng::seed_from_u64(7);
    let mut log = PartitionLog::open(dir.path(), compact_config(), NOW_MS).expect("open");
    let mut model = Model::default();
    append_history(&mut log, &mut model, &mut rng, 100, 10);
    drop(log);
    std::fs::write(dir.path().join("00000000000000000000.log.cleaned"), b"torn").expect("write");
    std::fs::write(dir.path().join("00000000000000000000.index.swap"), b"x").expect("write");
    let log = PartitionLog::open(dir.path(), compact_config(), NOW_MS).expect("reopen");
    check_against_model(&log, &model, false);
    assert!(!dir.path().join("00000000000000000000.log.cleaned").exists());
}

#[test]
fn given_dirty_ratio_and_lags_when_planning_should_follow_kafka_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        min_cleanable_dirty_ratio: 0.5,
        ..compact_config()
    };
    let mut rng = StdRng::seed_from_u64(3);
    let mut log = PartitionLog::open(dir.path(), config.clone(), NOW_MS).expect("open");
    let mut model = Model::default();
    // Only the active segment: nothing to clean.
    append_history(&mut log, &mut model, &mut rng, 3, 200);
    assert!(log
        .plan_clean(NOW_MS, i64::MAX, true)
        .expect("plan")
        .is_none());
    append_history(&mut log, &mut model, &mut rng, 400, 200);
    let plan = log
        .plan_clean(NOW_MS, i64::MAX, false)
        .expect("plan")
        .expect("all dirty");
    assert_eq!(plan.dirty_ratio, 1.0);
    // Never at or above the upper bound (the high watermark).
    let first_next = log.segments.values().next().expect("first").next_offset();
    assert!(log
        .plan_clean(NOW_MS, first_next - 1, true)
        .expect("plan")
        .is_none());
    log.clean(NOW_MS, false, &mut Throttle::unlimited())
        .expect("clean");
    // Just cleaned: a few new dirty bytes are below the ratio.
    append_history(&mut log, &mut model, &mut rng, 10, 200);
    log.roll(NOW_MS).expect("roll");
    assert!(log
        .plan_clean(NOW_MS, i64::MAX, false)
        .expect("plan")
        .is_none());
    // max.compaction.lag.ms overrides the ratio once the first dirty segment is old.
    log.set_config(LogConfig {
        max_compaction_lag_ms: 500,
        ..config.clone()
    });
    assert!(log
        .plan_clean(1_000 + 400, i64::MAX, false)
        .expect("plan")
        .is_none());
    assert!(log
        .plan_clean(NOW_MS, i64::MAX, false)
        .expect("plan")
        .is_some());
    // min.compaction.lag.ms: records newer than the lag are left alone.
    log.set_config(LogConfig {
        min_compaction_lag_ms: 10_000,
        ..config
    });
    assert!(log
        .plan_clean(1_000 + 5_000, i64::MAX, true)
        .expect("plan")
        .is_none());
    assert!(log
        .plan_clean(1_000 + 20_000, i64::MAX, true)
        .expect("plan")
        .is_some());
    // Not compacted: never planned.
    log.set_config(LogConfig {
        cleanup_compact: false,
        ..compact_config()
    });
    assert!(log
        .plan_clean(NOW_MS, i64::MAX, true)
        .expect("plan")
        .is_none());
}

#[test]
fn given_compacted_log_when_record_without_key_is_appended_should_refuse_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), compact_config(), NOW_MS).expect("open");
    let keyless = encode_batch(
        &[RecordToEncode {
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: vec![],
            timestamp_ms: 1,
        }],
        &BatchBuilderOptions {
            compression: Compression::Zstd,
            ..Default::default()
        },
    )
    .expect("encode")
    .to_vec();
    let error = log
        .append_as_leader(blob(std::slice::from_ref(&keyless)), 1, NOW_MS)
        .expect_err("refused");
    match error {
        AppendError::RecordErrors {
            batch_index,
            errors,
            refused_total,
        } => {
            assert_eq!((batch_index, refused_total), (0, 1));
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].record_index, 0);
            assert_eq!(errors[0].reason, RecordErrorReason::MissingKey);
        }
        other => panic!("expected record errors, got {other:?}"),
    }
    assert_eq!(log.log_end_offset(), 0);
    // A delete-policy log takes it.
    log.set_config(small_config());
    log.append_as_leader(blob(&[keyless]), 1, NOW_MS)
        .expect("append");
}

/// A batch of more keyless records than one refusal names: the first
/// `RECORD_ERRORS_MAX` are named, all are counted, nothing is appended.
#[test]
fn given_more_keyless_records_than_named_when_appended_should_name_the_first_and_count_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 1024 * 1024,
        ..compact_config()
    };
    let mut log = PartitionLog::open(dir.path(), config, NOW_MS).expect("open");
    let count = crate::RECORD_ERRORS_MAX + 5;
    let records: Vec<RecordToEncode> = (0..count)
        .map(|i| RecordToEncode {
            key: (i == 3).then(|| Bytes::from_static(b"k")),
            value: None,
            headers: vec![],
            timestamp_ms: 1,
        })
        .collect();
    let encoded = encode_batch(
        &records,
        &BatchBuilderOptions {
            compression: Compression::Zstd,
            ..Default::default()
        },
    )
    .expect("encode")
    .to_vec();
    let error = log
        .append_as_leader(blob(&[encoded]), 1, NOW_MS)
        .expect_err("refused");
    let AppendError::RecordErrors {
        errors,
        refused_total,
        ..
    } = error
    else {
        panic!("expected record errors, got {error:?}");
    };
    assert_eq!(refused_total, count - 1);
    assert_eq!(errors.len(), crate::RECORD_ERRORS_MAX);
    assert_eq!(
        errors
            .iter()
            .take(4)
            .map(|e| e.record_index)
            .collect::<Vec<_>>(),
        vec![0, 1, 2, 4]
    );
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn given_compact_only_policy_when_retention_runs_should_delete_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        retention_bytes: 0,
        retention_ms: 0,
        ..compact_config()
    };
    let mut log = PartitionLog::open(dir.path(), config.clone(), NOW_MS).expect("open");
    let mut model = Model::default();
    append_history(&mut log, &mut model, &mut StdRng::seed_from_u64(1), 200, 10);
    let outcome = log.enforce_retention(NOW_MS).expect("retention");
    assert_eq!(outcome.segments_deleted, 0);
    log.set_config(LogConfig {
        cleanup_delete: true,
        ..config
    });
    let outcome = log.enforce_retention(NOW_MS).expect("retention");
    assert!(
        outcome.segments_deleted > 0,
        "compact,delete also deletes by retention"
    );
}

#[test]
fn given_delete_records_when_applied_should_move_log_start_durably() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), small_config(), NOW_MS).expect("open");
    append_batches(&mut log, 200, 5, 1_000);
    let segments_before = log.segment_count();
    let log_end = log.log_end_offset();
    assert!(matches!(
        log.delete_records_before(log_end + 1),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.delete_records_before(503).expect("delete"), 503);
    assert_eq!(log.log_start_offset(), 503);
    assert!(
        log.segment_count() < segments_before,
        "whole segments below go"
    );
    assert!(matches!(
        log.read(502, 1024, i64::MAX, true),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    let first = log
        .read(503, 1024, i64::MAX, true)
        .expect("read")
        .records
        .expect("batch");
    let batches = batches_of(&first.read_to_bytes().expect("pread"));
    assert!(batches[0].0 <= 503 && 503 <= batches[0].1);
    // Lower offsets change nothing; the start survives a crash.
    assert_eq!(log.delete_records_before(10).expect("no-op"), 503);
    drop(log);
    let mut log = PartitionLog::open(dir.path(), small_config(), NOW_MS).expect("reopen");
    assert_eq!(log.log_start_offset(), 503);
    // Up to the log end: everything goes, appends continue at the end.
    assert_eq!(log.delete_records_before(log_end).expect("all"), log_end);
    let info = log
        .append_as_leader(blob(&[batch(1, 5)]), 1, NOW_MS)
        .expect("append");
    assert_eq!(info.base_offset, log_end);
}

#[test]
fn given_batch_losing_records_when_cleaned_should_keep_header_and_codec() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), compact_config(), NOW_MS).expect("open");
    let records: Vec<(String, Option<String>)> = ["a", "b", "c"]
        .iter()
        .map(|k| (k.to_string(), Some(format!("{k}-old"))))
        .collect();
    let options = BatchBuilderOptions {
        compression: Compression::Zstd,
        partition_leader_epoch: 0,
        ..Default::default()
    };
    log.append_as_leader(blob(&[keyed_batch(&records, &options)]), 4, NOW_MS)
        .expect("append");
    log.append_as_leader(
        blob(&[keyed_batch(
            &[("b".into(), Some("b-new".into()))],
            &Default::default(),
        )]),
        4,
        NOW_MS,
    )
    .expect("append");
    log.roll(NOW_MS).expect("roll");
    log.clean(NOW_MS, true, &mut Throttle::unlimited())
        .expect("clean");
    let bytes = read_all(&log, 0);
    let batches = batches_of(&bytes);
    let first = BatchView::parse(&batches[0].2).expect("batch");
    assert_eq!(
        first.compression(),
        Compression::Zstd,
        "re-compressed with its codec"
    );
    assert_eq!(
        (first.base_offset(), first.last_offset()),
        (0, 2),
        "offsets kept"
    );
    assert_eq!(first.record_count(), 2);
    assert_eq!(first.partition_leader_epoch(), 4);
    let kept: Vec<i64> = decode_batch(&first)
        .expect("decode")
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(kept, vec![0, 2]);
}

#[test]
fn given_truncation_below_cleaner_checkpoint_when_planning_should_treat_new_data_as_dirty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), compact_config(), NOW_MS).expect("open");
    let mut model = Model::default();
    append_history(&mut log, &mut model, &mut StdRng::seed_from_u64(9), 300, 20);
    log.clean(NOW_MS, true, &mut Throttle::unlimited())
        .expect("clean");
    let checkpoint = log.cleaner_checkpoint().expect("written");
    log.truncate_to(checkpoint / 2, NOW_MS).expect("truncate");
    assert!(log.cleaner_checkpoint().expect("kept") <= log.log_end_offset());
}

#[test]
fn given_throttle_when_bytes_consumed_should_pace_to_the_rate() {
    let mut throttle = Throttle::new(200_000.0);
    let started = std::time::Instant::now();
    for _ in 0..10 {
        throttle.consume(10_000);
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(elapsed >= 0.45, "100 KB at 200 KB/s took {elapsed:.3}s");
    // 1 GiB paced at 200 KB/s would take ~90 minutes: a minute separates "not paced" from
    // "paced" on any machine, however loaded.
    let mut free = Throttle::unlimited();
    let started = std::time::Instant::now();
    free.consume(1 << 30);
    let unpaced = started.elapsed();
    println!("FIGURE unlimited_throttle_1gib_ms={}", unpaced.as_millis());
    assert!(
        unpaced.as_secs() < 60,
        "an unlimited throttle slept {unpaced:?}"
    );
}

#[test]
fn given_cancelled_throttle_when_building_should_stop_and_leave_no_cleaned_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), compact_config(), NOW_MS).expect("open");
    let mut model = Model::default();
    append_history(&mut log, &mut model, &mut StdRng::seed_from_u64(5), 300, 20);
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut throttle = Throttle::new(1_000.0).with_cancel(cancel);
    let plan = log
        .plan_clean(NOW_MS, i64::MAX, true)
        .expect("plan")
        .expect("dirty");
    let started = std::time::Instant::now();
    assert!(plan.build(&mut throttle, 1 << 20).is_err());
    assert!(
        started.elapsed().as_secs() < 2,
        "a cancelled build stops at once"
    );
    let leftovers = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".cleaned"))
        .count();
    assert_eq!(leftovers, 0);
    check_against_model(&log, &model, false);
}
