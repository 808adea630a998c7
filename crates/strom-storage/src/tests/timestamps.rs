use rand::{Rng, SeedableRng};

use super::support::*;
use crate::{LogConfig, PartitionLog, TimestampOffset};

/// Batches with random, non-monotonic record timestamps across several segments; every
/// query compared with a brute-force scan of all records.
#[test]
fn given_random_timestamps_when_looked_up_should_match_brute_force_model() {
    for seed in 0..4u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            segment_bytes: 1500,
            index_interval_bytes: 120,
            ..small_config()
        };
        let mut log = PartitionLog::open(dir.path(), config, NOW_MS).expect("open");
        for _ in 0..80 {
            let count = rng.gen_range(1..5);
            let records: Vec<strom_protocol::record::RecordToEncode> = (0..count)
                .map(|_| strom_protocol::record::RecordToEncode {
                    key: None,
                    value: Some(bytes::Bytes::from_static(b"v")),
                    headers: vec![],
                    timestamp_ms: rng.gen_range(0..1_000),
                })
                .collect();
            let encoded = strom_protocol::record::encode_batch(&records, &Default::default())
                .expect("encode");
            log.append_as_leader(blob(&[encoded.to_vec()]), 1, NOW_MS)
                .expect("append");
        }
        assert!(log.segment_count() > 2, "seed {seed}");
        let model = records_of(&read_all(&log, 0));
        for query in -1..1_002 {
            let want = model
                .iter()
                .find(|r| r.1 >= query)
                .map(|r| TimestampOffset {
                    timestamp_ms: r.1,
                    offset: r.0,
                });
            assert_eq!(
                log.offset_for_timestamp(query).expect("lookup"),
                want,
                "seed {seed} ts {query}"
            );
        }
        let max = model.iter().map(|r| r.1).max().expect("records");
        let first_max = model.iter().find(|r| r.1 == max).expect("max");
        assert_eq!(
            log.max_timestamp_offset().expect("max"),
            Some(TimestampOffset {
                timestamp_ms: max,
                offset: first_max.0
            })
        );
        // The same answers after a clean restart (indexes loaded, not rebuilt).
        log.close().expect("close");
        let log = PartitionLog::open(dir.path(), small_config(), NOW_MS).expect("reopen");
        for query in (0..1_000).step_by(37) {
            let want = model
                .iter()
                .find(|r| r.1 >= query)
                .map(|r| TimestampOffset {
                    timestamp_ms: r.1,
                    offset: r.0,
                });
            assert_eq!(log.offset_for_timestamp(query).expect("lookup"), want);
        }
        assert_eq!(
            log.max_timestamp_offset()
                .expect("max")
                .expect("some")
                .offset,
            first_max.0
        );
    }
}

#[test]
fn given_empty_log_when_looked_up_by_timestamp_should_be_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::open(dir.path(), LogConfig::default(), NOW_MS).expect("open");
    assert_eq!(log.offset_for_timestamp(0).expect("lookup"), None);
    assert_eq!(log.max_timestamp_offset().expect("max"), None);
}

#[test]
fn given_compressed_batches_when_looked_up_by_timestamp_should_find_exact_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), NOW_MS).expect("open");
    let options = strom_protocol::record::BatchBuilderOptions {
        compression: strom_protocol::batch::Compression::Gzip,
        ..Default::default()
    };
    let compressed = batch_with(10, 500, &options);
    let info = log
        .append_as_leader(blob(std::slice::from_ref(&compressed)), 1, NOW_MS)
        .expect("append");
    // Stored as it came (compressed, same records bytes).
    let stored = read_all(&log, 0);
    assert_eq!(stored[61..], compressed[61..]);
    assert_eq!(
        log.offset_for_timestamp(504).expect("lookup"),
        Some(TimestampOffset {
            timestamp_ms: 504,
            offset: info.base_offset + 4
        })
    );
    assert_eq!(
        log.max_timestamp_offset().expect("max"),
        Some(TimestampOffset {
            timestamp_ms: 509,
            offset: 9
        })
    );
}

/// `message.timestamp.before.max.ms`/`after.max.ms`: every out-of-range record of the batch
/// is named with its index, the batch is refused whole, and a batch in range is taken.
#[test]
fn given_timestamp_bounds_when_some_records_are_out_of_range_should_name_each_and_append_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        message_timestamp_before_max_ms: 1_000,
        message_timestamp_after_max_ms: 2_000,
        ..small_config()
    };
    let mut log = PartitionLog::open(dir.path(), config, NOW_MS).expect("open");
    let encode = |timestamps: &[i64]| {
        let records: Vec<strom_protocol::record::RecordToEncode> = timestamps
            .iter()
            .map(|&timestamp_ms| strom_protocol::record::RecordToEncode {
                key: None,
                value: Some(bytes::Bytes::from_static(b"v")),
                headers: vec![],
                timestamp_ms,
            })
            .collect();
        strom_protocol::record::encode_batch(&records, &Default::default())
            .expect("encode")
            .to_vec()
    };
    let bad = encode(&[
        NOW_MS,
        NOW_MS - 1_001,
        NOW_MS - 1_000,
        NOW_MS + 2_001,
        NOW_MS + 2_000,
    ]);
    let error = log
        .append_as_leader(blob(&[bad]), 1, NOW_MS)
        .expect_err("refused");
    let crate::AppendError::RecordErrors {
        batch_index,
        errors,
        refused_total,
    } = error
    else {
        panic!("expected record errors, got {error:?}");
    };
    assert_eq!((batch_index, refused_total), (0, 2));
    let named: Vec<(u32, i64)> = errors
        .iter()
        .map(|e| match e.reason {
            crate::RecordErrorReason::TimestampOutOfRange {
                timestamp_ms,
                min_ms,
                max_ms,
            } => {
                assert_eq!((min_ms, max_ms), (NOW_MS - 1_000, NOW_MS + 2_000));
                (e.record_index, timestamp_ms)
            }
            other => panic!("unexpected reason {other:?}"),
        })
        .collect();
    assert_eq!(named, vec![(1, NOW_MS - 1_001), (3, NOW_MS + 2_001)]);
    assert_eq!(log.log_end_offset(), 0);
    log.append_as_leader(
        blob(&[encode(&[NOW_MS - 1_000, NOW_MS + 2_000])]),
        1,
        NOW_MS,
    )
    .expect("in range");
    assert_eq!(log.log_end_offset(), 2);
}

/// Only the broker stamps LogAppendTime: a producer's batch with that attribute is refused
/// record by record on a LogAppendTime log, while a CreateTime log takes it (its timestamp
/// is range-checked instead, and no bound is set here).
#[test]
fn given_producer_batch_with_log_append_time_when_log_is_log_append_time_should_refuse_every_record(
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        message_timestamp_type: crate::TimestampType::LogAppendTime,
        ..small_config()
    };
    let mut log = PartitionLog::open(dir.path(), config, NOW_MS).expect("open");
    let mut stamped = batch(3, NOW_MS);
    strom_protocol::batch::set_log_append_time(&mut stamped, NOW_MS);
    let error = log
        .append_as_leader(blob(&[stamped.clone()]), 1, NOW_MS)
        .expect_err("refused");
    let crate::AppendError::RecordErrors {
        errors,
        refused_total,
        ..
    } = error
    else {
        panic!("expected record errors, got {error:?}");
    };
    assert_eq!(refused_total, 3);
    assert_eq!(
        errors.iter().map(|e| e.record_index).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(errors.iter().all(|e| e.reason.is_timestamp()
        && matches!(
            e.reason,
            crate::RecordErrorReason::LogAppendTimeFromProducer { timestamp_ms, .. }
                if timestamp_ms == NOW_MS
        )));
    assert_eq!(log.log_end_offset(), 0);
    // The batch as producers send it is stamped by the broker.
    log.append_as_leader(blob(&[batch(3, NOW_MS)]), 1, NOW_MS)
        .expect("append");
    // A CreateTime log takes the stamped batch.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), small_config(), NOW_MS).expect("open");
    log.append_as_leader(blob(&[stamped]), 1, NOW_MS)
        .expect("append");
}
