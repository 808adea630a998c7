use bytes::BytesMut;
use strom_protocol::batch::{BatchError, BatchView};

use super::support::*;
use crate::{AppendError, InvalidRecordReason, LogConfig, PartitionLog, ReadError, TimestampType};

fn open(dir: &std::path::Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config, NOW_MS).expect("open")
}

#[test]
fn given_batches_when_appended_and_read_should_return_identical_bytes_with_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let sent = vec![batch(3, 100), batch(1, 200), batch(5, 300)];
    let info = log
        .append_as_leader(blob(&sent), 7, NOW_MS)
        .expect("append");
    assert_eq!(
        (info.base_offset, info.last_offset, info.record_count),
        (0, 8, 9)
    );
    assert!(!info.duplicate);
    assert_eq!(info.log_append_time_ms, -1);
    assert_eq!(log.log_end_offset(), 9);

    let read = log.read(0, u32::MAX, i64::MAX, false).expect("read");
    let bytes = read
        .records
        .expect("records")
        .read_to_bytes()
        .expect("pread");
    let stored = batches_of(&bytes);
    assert_eq!(stored.len(), 3);
    let expected_offsets = [(0, 2), (3, 3), (4, 8)];
    for ((base, last, stored_bytes), (sent_bytes, expected)) in
        stored.iter().zip(sent.iter().zip(expected_offsets))
    {
        assert_eq!((*base, *last), expected);
        // Only baseOffset (0..8) and partitionLeaderEpoch (12..16) may differ.
        assert_eq!(stored_bytes[8..12], sent_bytes[8..12]);
        assert_eq!(stored_bytes[16..], sent_bytes[16..]);
        assert_eq!(
            BatchView::parse(stored_bytes)
                .expect("parse")
                .partition_leader_epoch(),
            7
        );
    }
    let records = records_of(&bytes);
    assert_eq!(
        records.iter().map(|r| r.0).collect::<Vec<_>>(),
        (0..9).collect::<Vec<_>>()
    );
}

#[test]
fn given_many_appends_when_offsets_assigned_should_be_contiguous_and_log_end_after_last_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    let mut expected_next = 0;
    for i in 0..200 {
        let records = 1 + i % 7;
        let info = log
            .append_as_leader(blob(&[batch(records, i as i64)]), 1, NOW_MS)
            .expect("append");
        assert_eq!(info.base_offset, expected_next);
        assert_eq!(info.last_offset, expected_next + records as i64 - 1);
        expected_next = info.last_offset + 1;
        assert_eq!(log.log_end_offset(), expected_next);
    }
    assert!(log.segment_count() > 1, "small segments should have rolled");
    let all = read_all(&log, 0);
    let offsets: Vec<i64> = records_of(&all).iter().map(|r| r.0).collect();
    assert_eq!(offsets, (0..expected_next).collect::<Vec<_>>());
}

#[test]
fn given_fetch_from_middle_of_batch_when_read_should_return_that_whole_batch_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    log.append_as_leader(blob(&[batch(5, 0)]), 1, NOW_MS)
        .expect("append");
    log.append_as_leader(blob(&[batch(5, 0)]), 1, NOW_MS)
        .expect("append");
    let bytes = log
        .read(7, u32::MAX, i64::MAX, false)
        .expect("read")
        .records
        .expect("records")
        .read_to_bytes()
        .expect("pread");
    let batches = batches_of(&bytes);
    assert_eq!(
        batches.iter().map(|b| (b.0, b.1)).collect::<Vec<_>>(),
        vec![(5, 9)]
    );
}

#[test]
fn given_limits_when_read_should_respect_max_bytes_min_one_batch_and_max_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let infos = append_batches(&mut log, 10, 4, 0);
    let one = log
        .read(0, u32::MAX, 4, true)
        .expect("read")
        .records
        .expect("one");
    let batch_bytes = one.length;
    assert_eq!(batches_of(&one.read_to_bytes().expect("pread")).len(), 1);

    // max_bytes just below two batches: one batch.
    let range = log
        .read(0, batch_bytes * 2 - 1, i64::MAX, false)
        .expect("read")
        .records;
    assert_eq!(range.expect("records").length, batch_bytes);
    // max_bytes below one batch: nothing unless min_one_batch.
    assert!(log
        .read(0, batch_bytes - 1, i64::MAX, false)
        .expect("read")
        .records
        .is_none());
    let forced = log
        .read(0, 1, i64::MAX, true)
        .expect("read")
        .records
        .expect("one");
    assert_eq!(forced.length, batch_bytes);
    // High watermark inside the third batch: only the first two.
    let hw = infos[2].base_offset + 1;
    let bytes = log
        .read(0, u32::MAX, hw, true)
        .expect("read")
        .records
        .expect("records")
        .read_to_bytes()
        .expect("pread");
    let batches = batches_of(&bytes);
    assert_eq!(batches.len(), 2);
    assert!(batches.iter().all(|b| b.1 < hw));
    // A batch at or above the high watermark is never returned, even with min_one_batch.
    assert!(log
        .read(infos[2].base_offset, u32::MAX, hw, true)
        .expect("read")
        .records
        .is_none());
}

#[test]
fn given_offsets_outside_log_when_read_should_be_out_of_range_and_log_end_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    append_batches(&mut log, 2, 3, 0);
    let at_end = log
        .read(6, u32::MAX, i64::MAX, true)
        .expect("read at log end");
    assert!(at_end.records.is_none());
    assert_eq!((at_end.log_start_offset, at_end.log_end_offset), (0, 6));
    assert!(matches!(
        log.read(7, u32::MAX, i64::MAX, true),
        Err(ReadError::OffsetOutOfRange {
            requested: 7,
            log_start: 0,
            log_end: 6
        })
    ));
    assert!(matches!(
        log.read(-1, u32::MAX, i64::MAX, true),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn given_many_batches_when_each_offset_read_should_match_a_linear_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let mut ranges = Vec::new();
    for i in 0..300 {
        let info = log
            .append_as_leader(blob(&[batch(1 + i % 4, i as i64)]), 1, NOW_MS)
            .expect("append");
        ranges.push((info.base_offset, info.last_offset));
    }
    assert!(
        log.active().index_entries().len() > 50,
        "index must be exercised"
    );
    for offset in 0..log.log_end_offset() {
        let bytes = log
            .read(offset, 1, i64::MAX, true)
            .expect("read")
            .records
            .expect("records")
            .read_to_bytes()
            .expect("pread");
        let got = batches_of(&bytes);
        let want = ranges
            .iter()
            .find(|r| r.0 <= offset && offset <= r.1)
            .expect("linear");
        assert_eq!((got[0].0, got[0].1), *want, "offset {offset}");
    }
}

#[test]
fn given_log_append_time_when_appended_should_stamp_time_and_keep_crc_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let info = log
        .append_as_leader(blob(&[batch(3, 5)]), 1, NOW_MS + 42)
        .expect("append");
    assert_eq!(info.log_append_time_ms, NOW_MS + 42);
    let bytes = log
        .read(0, u32::MAX, i64::MAX, true)
        .expect("read")
        .records
        .expect("r")
        .read_to_bytes()
        .expect("pread");
    let view = BatchView::parse(&bytes).expect("parse");
    view.verify_crc().expect("crc recomputed");
    assert!(view.is_log_append_time());
    assert_eq!(view.max_timestamp(), NOW_MS + 42);
    assert!(records_of(&bytes).iter().all(|r| r.1 == NOW_MS + 42));
}

fn assert_rejected_and_nothing_appended(log: &mut PartitionLog, records: BytesMut) -> AppendError {
    let end_before = log.log_end_offset();
    let size_before = log.size_bytes();
    let error = log
        .append_as_leader(records, 1, NOW_MS)
        .expect_err("must be rejected");
    assert_eq!(log.log_end_offset(), end_before);
    assert_eq!(log.size_bytes(), size_before);
    error
}

#[test]
fn given_corrupt_batches_when_appended_should_reject_all_and_append_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    append_batches(&mut log, 1, 2, 0);
    let good = batch(3, 0);

    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0x55;
    let error = assert_rejected_and_nothing_appended(&mut log, blob(&[good.clone(), bad_crc]));
    assert!(matches!(
        error,
        AppendError::CorruptMessage {
            batch_index: 1,
            source: BatchError::CrcMismatch { .. }
        }
    ));

    let mut bad_magic = good.clone();
    bad_magic[16] = 1;
    let error = assert_rejected_and_nothing_appended(&mut log, blob(&[bad_magic]));
    assert!(matches!(
        error,
        AppendError::CorruptMessage {
            source: BatchError::UnsupportedMagic { magic: 1 },
            ..
        }
    ));

    let truncated = good[..good.len() - 5].to_vec();
    let error = assert_rejected_and_nothing_appended(&mut log, blob(&[good.clone(), truncated]));
    assert!(matches!(
        error,
        AppendError::CorruptMessage {
            batch_index: 1,
            source: BatchError::Truncated { .. }
        }
    ));

    let mut negative_length = good.clone();
    negative_length[8..12].copy_from_slice(&(-1i32).to_be_bytes());
    let error = assert_rejected_and_nothing_appended(&mut log, blob(&[negative_length]));
    assert!(matches!(error, AppendError::CorruptMessage { .. }));

    // Record count that disagrees with lastOffsetDelta (CRC fixed up so only that is wrong).
    let mut wrong_count = good.clone();
    wrong_count[57..61].copy_from_slice(&2i32.to_be_bytes());
    let crc = crc32c::crc32c(&wrong_count[21..]);
    wrong_count[17..21].copy_from_slice(&crc.to_be_bytes());
    let error = assert_rejected_and_nothing_appended(&mut log, blob(&[wrong_count]));
    assert!(matches!(
        error,
        AppendError::CorruptMessage {
            source: BatchError::InvalidRecordCount { .. },
            ..
        }
    ));

    let error = assert_rejected_and_nothing_appended(&mut log, BytesMut::new());
    assert!(matches!(
        error,
        AppendError::InvalidRecord {
            reason: InvalidRecordReason::Empty,
            ..
        }
    ));

    let mut nonzero_base = good.clone();
    nonzero_base[..8].copy_from_slice(&5i64.to_be_bytes());
    let error = assert_rejected_and_nothing_appended(&mut log, blob(&[nonzero_base]));
    assert!(matches!(
        error,
        AppendError::InvalidRecord {
            reason: InvalidRecordReason::NonZeroBaseOffset { base_offset: 5 },
            ..
        }
    ));

    // The log still works and is unchanged.
    let info = log
        .append_as_leader(blob(&[good]), 1, NOW_MS)
        .expect("append");
    assert_eq!(info.base_offset, 2);
    assert_eq!(records_of(&read_all(&log, 0)).len(), 5);
}

#[test]
fn given_oversized_batches_when_appended_should_reject_by_message_and_segment_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        max_message_bytes: 200,
        segment_bytes: 1000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let big = batch(20, 0);
    assert!(big.len() > 200);
    let error = assert_rejected_and_nothing_appended(&mut log, blob(std::slice::from_ref(&big)));
    assert!(matches!(
        error,
        AppendError::MessageTooLarge { max_bytes: 200, .. }
    ));

    let small = batch(1, 0);
    assert!(small.len() <= 200);
    let many: Vec<Vec<u8>> = (0..20).map(|_| small.clone()).collect();
    let error = assert_rejected_and_nothing_appended(&mut log, blob(&many));
    assert!(matches!(
        error,
        AppendError::RecordListTooLarge {
            segment_bytes: 1000,
            ..
        }
    ));
}

#[test]
fn given_batch_claiming_more_records_than_its_bytes_hold_when_appended_should_reject() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let mut hostile = batch(2, 0);
    let claimed = 1_000_000i32;
    hostile[23..27].copy_from_slice(&(claimed - 1).to_be_bytes());
    hostile[57..61].copy_from_slice(&claimed.to_be_bytes());
    let crc = crc32c::crc32c(&hostile[21..]);
    hostile[17..21].copy_from_slice(&crc.to_be_bytes());
    let error = assert_rejected_and_nothing_appended(&mut log, blob(&[hostile]));
    assert!(matches!(
        error,
        AppendError::CorruptMessage {
            source: BatchError::InvalidRecordCount { .. },
            ..
        }
    ));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn given_large_and_small_batches_mixed_when_read_should_locate_every_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let mut ranges = Vec::new();
    let mut sent = Vec::new();
    for i in 0..40usize {
        let value_bytes = if i % 3 == 0 { 20_000 } else { 10 };
        let records: Vec<strom_protocol::record::RecordToEncode> = (0..1 + i % 3)
            .map(|_| strom_protocol::record::RecordToEncode {
                key: None,
                value: Some(bytes::Bytes::from(vec![i as u8; value_bytes])),
                headers: vec![],
                timestamp_ms: i as i64,
            })
            .collect();
        let encoded = strom_protocol::record::encode_batch(&records, &Default::default())
            .expect("encode")
            .to_vec();
        let info = log
            .append_as_leader(blob(std::slice::from_ref(&encoded)), 1, NOW_MS)
            .expect("append");
        ranges.push((info.base_offset, info.last_offset));
        sent.push(encoded);
    }
    for offset in 0..log.log_end_offset() {
        let range = log
            .read(offset, 1, i64::MAX, true)
            .expect("read")
            .records
            .expect("r");
        let got = batches_of(&range.read_to_bytes().expect("pread"));
        let index = ranges
            .iter()
            .position(|r| r.0 <= offset && offset <= r.1)
            .expect("linear");
        assert_eq!((got[0].0, got[0].1), ranges[index], "offset {offset}");
        assert_eq!(got[0].2[16..], sent[index][16..], "offset {offset}");
    }
    let everything = log
        .read(0, u32::MAX, i64::MAX, false)
        .expect("read")
        .records
        .expect("r");
    assert_eq!(
        batches_of(&everything.read_to_bytes().expect("pread")).len(),
        40
    );
}

#[test]
fn given_log_behind_rwlock_when_readers_race_appends_and_rolls_should_only_see_whole_batches() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PartitionLog>();
    assert_send_sync::<crate::FileRange>();

    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 4096,
        ..small_config()
    };
    let log = std::sync::Arc::new(std::sync::RwLock::new(open(dir.path(), config)));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let log = std::sync::Arc::clone(&log);
            let done = std::sync::Arc::clone(&done);
            std::thread::spawn(move || {
                let mut next = 0i64;
                let mut checked = 0usize;
                while !done.load(std::sync::atomic::Ordering::Relaxed) || checked == 0 {
                    let range = {
                        let log = log.read().expect("lock");
                        log.read(next, 2048, i64::MAX, true).expect("read").records
                    };
                    // Read the bytes outside the lock, as the broker's network path does.
                    if let Some(range) = range {
                        let bytes = range.read_to_bytes().expect("pread");
                        let batches = batches_of(&bytes);
                        assert!(batches[0].0 <= next && next <= batches[0].1);
                        for pair in batches.windows(2) {
                            assert_eq!(pair[0].1 + 1, pair[1].0, "contiguous offsets");
                        }
                        next = batches.last().expect("batch").1 + 1;
                        checked += batches.len();
                    } else {
                        std::thread::yield_now();
                    }
                }
                checked
            })
        })
        .collect();
    for i in 0..300 {
        let mut log = log.write().expect("lock");
        log.append_as_leader(blob(&[batch(1 + i % 3, 0)]), 1, NOW_MS)
            .expect("append");
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().expect("reader") > 0);
    }
    assert!(log.read().expect("lock").segment_count() > 2);
}

/// Hostile input never panics, never half-appends, and never leaves an unreadable log.
#[test]
fn given_randomly_mutated_requests_when_appended_should_reject_or_append_whole_valid_batches() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    let mut accepted = 0;
    for _ in 0..3_000 {
        let mut bytes =
            blob(&[batch(rng.gen_range(1..4), 0), batch(rng.gen_range(1..4), 0)]).to_vec();
        match rng.gen_range(0..4) {
            0 => {
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(0..bytes.len());
                    bytes[at] = rng.gen();
                }
            }
            1 => bytes.truncate(rng.gen_range(0..bytes.len())),
            2 => {
                // Mutate only fields outside the CRC: base offset and leader epoch.
                let at = if rng.gen_bool(0.5) {
                    rng.gen_range(0..8)
                } else {
                    rng.gen_range(12..16)
                };
                bytes[at] = rng.gen();
            }
            _ => bytes.extend((0..rng.gen_range(1..80)).map(|_| rng.gen::<u8>())),
        }
        let end_before = log.log_end_offset();
        let size_before = log.size_bytes();
        match log.append_as_leader(BytesMut::from(&bytes[..]), 1, NOW_MS) {
            Ok(info) => {
                accepted += 1;
                assert_eq!(info.base_offset, end_before);
                assert_eq!(log.size_bytes(), size_before + bytes.len() as u64);
            }
            Err(_) => {
                assert_eq!(log.log_end_offset(), end_before);
                assert_eq!(log.size_bytes(), size_before);
            }
        }
    }
    assert!(accepted > 0);
    let all = read_all(&log, 0);
    assert_eq!(all.len() as u64, log.size_bytes());
    let offsets: Vec<i64> = records_of(&all).iter().map(|r| r.0).collect();
    assert_eq!(offsets, (0..log.log_end_offset()).collect::<Vec<_>>());
}
