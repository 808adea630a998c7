use std::fs::OpenOptions;
use std::path::Path;

use super::support::*;
use crate::files::{offset_file, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::{LogConfig, PartitionLog};

fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config, NOW_MS).expect("open")
}

/// Simulates kill -9: the process vanishes without close (the page cache keeps the data).
fn crash(log: PartitionLog) {
    std::mem::forget(log);
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).expect("metadata").len()
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open")
        .set_len(len)
        .expect("truncate");
}

fn active_log_path(log: &PartitionLog) -> std::path::PathBuf {
    log.active().log_path().to_path_buf()
}

#[test]
fn given_torn_tail_when_reopened_should_truncate_to_last_whole_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let infos = append_batches(&mut log, 5, 3, 0);
    let path = active_log_path(&log);
    let whole_bytes = log.size_bytes();
    let before = read_all(&log, 0);
    crash(log);
    // Cut the last batch in half.
    let last_batch_bytes = batches_of(&before).last().expect("batch").2.len() as u64;
    truncate(&path, whole_bytes - last_batch_bytes / 2);

    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), infos[3].last_offset + 1);
    assert_eq!(log.size_bytes(), whole_bytes - last_batch_bytes);
    assert_eq!(file_len(&path), whole_bytes - last_batch_bytes);
    let after = read_all(&log, 0);
    assert_eq!(
        after[..],
        before[..after.len()],
        "surviving bytes unchanged"
    );
    // Appends continue right after the surviving batches.
    let info = log
        .append_as_leader(blob(&[batch(2, 0)]), 1, NOW_MS)
        .expect("append");
    assert_eq!(info.base_offset, infos[3].last_offset + 1);
}

#[test]
fn given_partial_header_when_reopened_should_truncate_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    append_batches(&mut log, 2, 1, 0);
    let path = active_log_path(&log);
    let size = log.size_bytes();
    crash(log);
    let file = OpenOptions::new().append(true).open(&path).expect("open");
    std::io::Write::write_all(&mut &file, &[0u8, 0, 0, 0, 0, 0, 0, 9, 0, 0]).expect("write");
    drop(file);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.size_bytes(), size);
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn given_flipped_byte_in_last_batch_when_reopened_should_drop_that_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let infos = append_batches(&mut log, 4, 2, 0);
    let path = active_log_path(&log);
    let size = log.size_bytes();
    crash(log);
    let mut bytes = std::fs::read(&path).expect("read");
    let at = size as usize - 3;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).expect("write");

    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), infos[2].last_offset + 1);
    let records = records_of(&read_all(&log, 0));
    assert_eq!(records.len() as i64, infos[2].last_offset + 1);
}

#[test]
fn given_corrupt_batch_in_middle_segment_when_reopened_should_drop_it_and_later_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 600,
        ..small_config()
    };
    let mut log = open(dir.path(), config.clone());
    append_batches(&mut log, 20, 2, 0);
    assert!(log.segment_count() >= 3);
    let bases: Vec<i64> = log.segments.keys().copied().collect();
    crash(log);
    // Remove the recovery point (if a sync wrote one) so every segment is checked, then
    // damage segment 1.
    crate::files::remove_if_exists(&dir.path().join(crate::files::RECOVERY_POINT_FILE))
        .expect("rm");
    let path = offset_file(dir.path(), bases[1], LOG_SUFFIX);
    let mut bytes = std::fs::read(&path).expect("read");
    let at = bytes.len() - 2;
    bytes[at] ^= 0xff;
    std::fs::write(&path, &bytes).expect("write");

    let log = open(dir.path(), config);
    assert_eq!(log.segment_count(), 2);
    assert!(!offset_file(dir.path(), bases[2], LOG_SUFFIX).exists());
    let end = log.log_end_offset();
    assert!(end > bases[1] && end < bases[2]);
    assert_eq!(records_of(&read_all(&log, 0)).len() as i64, end);
}

#[test]
fn given_missing_or_truncated_index_files_when_reopened_should_rebuild_them() {
    for damage in ["delete", "truncate-partial", "truncate-whole"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            segment_bytes: 2048,
            ..small_config()
        };
        let mut log = open(dir.path(), config.clone());
        append_batches(&mut log, 40, 3, 0);
        let before = read_all(&log, 0);
        let first_entries = log
            .segments
            .values()
            .next()
            .expect("s")
            .index_entries()
            .to_vec();
        let end = log.log_end_offset();
        log.close().expect("close");
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let path = offset_file(dir.path(), 0, suffix);
            match damage {
                "delete" => std::fs::remove_file(&path).expect("rm"),
                "truncate-partial" => truncate(&path, file_len(&path) - 3),
                _ => truncate(&path, 0),
            }
        }
        let log = open(dir.path(), config);
        assert_eq!(log.log_end_offset(), end, "{damage}");
        assert_eq!(read_all(&log, 0), before, "{damage}");
        let rebuilt = log
            .segments
            .values()
            .next()
            .expect("s")
            .index_entries()
            .to_vec();
        if damage != "truncate-whole" {
            assert_eq!(
                rebuilt, first_entries,
                "{damage}: rebuilt like the original"
            );
        }
        for offset in 0..end {
            let range = log
                .read(offset, 1, i64::MAX, true)
                .expect("read")
                .records
                .expect("r");
            let batches = batches_of(&range.read_to_bytes().expect("pread"));
            assert!(
                batches[0].0 <= offset && offset <= batches[0].1,
                "{damage} {offset}"
            );
        }
    }
}

#[test]
fn given_clean_close_when_reopened_should_keep_everything_and_continue_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    append_batches(&mut log, 30, 3, 0);
    let before = read_all(&log, 0);
    let (end, segments, size) = (log.log_end_offset(), log.segment_count(), log.size_bytes());
    log.close().expect("close");
    assert!(dir.path().join(crate::files::CLEAN_SHUTDOWN_FILE).exists());

    let mut log = open(dir.path(), small_config());
    assert!(
        !dir.path().join(crate::files::CLEAN_SHUTDOWN_FILE).exists(),
        "marker consumed"
    );
    assert_eq!(
        (log.log_end_offset(), log.segment_count(), log.size_bytes()),
        (end, segments, size)
    );
    assert_eq!(read_all(&log, 0), before);
    let info = log
        .append_as_leader(blob(&[batch(2, 0)]), 1, NOW_MS)
        .expect("append");
    assert_eq!(info.base_offset, end);
    // And once more after a crash.
    crash(log);
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), end + 2);
}

#[test]
fn given_stray_and_orphan_files_when_opened_should_remove_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    append_batches(&mut log, 2, 1, 0);
    crash(log);
    let strays = [
        "00000000000000000000.log.deleted",
        "00000000000000000000.index.cleaned",
        "00000000000000000000.log.swap",
        "leader-epoch-checkpoint.tmp",
        "00000000000000000099.index",
        "00000000000000000099.timeindex",
    ];
    for name in strays {
        std::fs::write(dir.path().join(name), b"junk").expect("write");
    }
    let log = open(dir.path(), LogConfig::default());
    for name in strays {
        assert!(!dir.path().join(name).exists(), "{name} left behind");
    }
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn given_empty_segment_files_when_opened_should_open_empty_log_at_that_base() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("00000000000000000050.log"), b"").expect("write");
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (50, 50));
    let info = log
        .append_as_leader(blob(&[batch(1, 0)]), 0, NOW_MS)
        .expect("append");
    assert_eq!(info.base_offset, 50);
}

#[test]
fn given_leader_epochs_when_appending_and_reopening_should_answer_offset_for_leader_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(log.latest_epoch(), None);
    assert_eq!(log.end_offset_for_epoch(0), None);
    log.append_as_leader(blob(&[batch(3, 0)]), 1, NOW_MS)
        .expect("append"); // 0..2 epoch 1
    log.append_as_leader(blob(&[batch(2, 0)]), 1, NOW_MS)
        .expect("append"); // 3..4 epoch 1
    log.append_as_leader(blob(&[batch(4, 0)]), 3, NOW_MS)
        .expect("append"); // 5..8 epoch 3
    assert_eq!(log.latest_epoch(), Some(3));
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 9)));
    assert_eq!(log.end_offset_for_epoch(2), Some((1, 5)));
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 5)));
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 0)));
    assert_eq!(log.end_offset_for_epoch(4), None);
    let text = std::fs::read_to_string(dir.path().join("leader-epoch-checkpoint")).expect("ckpt");
    assert_eq!(text, "0\n2\n1 0\n3 5\n");
    crash(log);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.end_offset_for_epoch(2), Some((1, 5)));
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 9)));
}

#[test]
fn given_truncated_tail_when_reopened_should_drop_epochs_starting_after_log_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    log.append_as_leader(blob(&[batch(3, 0)]), 1, NOW_MS)
        .expect("append");
    log.append_as_leader(blob(&[batch(3, 0)]), 2, NOW_MS)
        .expect("append");
    let path = active_log_path(&log);
    let size = log.size_bytes();
    crash(log);
    truncate(&path, size - 1);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(log.latest_epoch(), Some(1));
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 3)));
}

/// kill -9 at any moment of a write: the active file ends at an arbitrary byte (possibly
/// followed by garbage from a torn page). Recovery must keep exactly the whole batches
/// before the cut, byte for byte, and continue offsets right after them.
#[test]
fn given_random_cut_points_and_garbage_when_reopened_should_keep_exact_whole_batch_prefix() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..40 {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            segment_bytes: 3000,
            ..small_config()
        };
        let mut log = open(dir.path(), config.clone());
        let batches = rng.gen_range(5..40);
        for _ in 0..batches {
            let count = rng.gen_range(1..6);
            log.append_as_leader(blob(&[batch(count, 0)]), 1, NOW_MS)
                .expect("append");
        }
        let written = read_all(&log, 0);
        let active_base = log.active().base_offset();
        let active_path = active_log_path(&log);
        let active_size = log.active().size_bytes();
        let sealed_bytes = log.size_bytes() - active_size;
        crash(log);

        let cut = rng.gen_range(0..=active_size);
        truncate(&active_path, cut);
        if rng.gen_bool(0.5) {
            let garbage: Vec<u8> = (0..rng.gen_range(1..200)).map(|_| rng.gen()).collect();
            let file = OpenOptions::new()
                .append(true)
                .open(&active_path)
                .expect("open");
            std::io::Write::write_all(&mut &file, &garbage).expect("write");
        }

        let mut log = open(dir.path(), config);
        // Model: whole batches of the active segment that end at or before the cut.
        let mut expected_end = active_base;
        let mut expected_bytes = sealed_bytes;
        for (base, last, bytes) in batches_of(&written) {
            if base < active_base {
                continue;
            }
            let end = expected_bytes + bytes.len() as u64;
            if end - sealed_bytes > cut {
                break;
            }
            expected_bytes = end;
            expected_end = last + 1;
        }
        assert_eq!(
            log.log_end_offset(),
            expected_end,
            "round {round} cut {cut}"
        );
        assert_eq!(log.size_bytes(), expected_bytes, "round {round}");
        let recovered = read_all(&log, 0);
        assert_eq!(
            recovered[..],
            written[..recovered.len()],
            "round {round}: a prefix"
        );
        let info = log
            .append_as_leader(blob(&[batch(1, 0)]), 1, NOW_MS)
            .expect("append");
        assert_eq!(info.base_offset, expected_end);
    }
}

#[test]
fn given_flush_messages_when_reached_should_fsync_and_move_recovery_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        flush_messages: 5,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let checkpoint = dir.path().join(crate::files::RECOVERY_POINT_FILE);
    let read_point = || crate::files::read_offset_checkpoint(&checkpoint).expect("read");
    let initial = read_point();
    log.append_as_leader(blob(&[batch(3, 0)]), 1, NOW_MS)
        .expect("append");
    assert_eq!(read_point(), initial, "3 < flush.messages: no flush yet");
    log.append_as_leader(blob(&[batch(3, 0)]), 1, NOW_MS)
        .expect("append");
    assert_eq!(read_point(), Some(6));
    assert_eq!(log.unflushed_messages, 0);
}

#[test]
fn given_flush_ms_when_elapsed_should_flush_on_maybe_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        flush_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    log.append_as_leader(blob(&[batch(2, 0)]), 1, NOW_MS)
        .expect("append");
    log.maybe_flush(NOW_MS + 999).expect("not yet");
    assert_eq!(log.unflushed_messages, 2);
    log.maybe_flush(NOW_MS + 1_000).expect("flush");
    assert_eq!(log.unflushed_messages, 0);
    let checkpoint = dir.path().join(crate::files::RECOVERY_POINT_FILE);
    assert_eq!(
        crate::files::read_offset_checkpoint(&checkpoint).expect("read"),
        Some(2)
    );
}

#[test]
fn given_clean_marker_but_log_shortened_behind_our_back_when_reopened_should_recover_prefix() {
    for keep_fraction in [2u64, 3, 10] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        append_batches(&mut log, 40, 2, 0);
        let written = read_all(&log, 0);
        let path = active_log_path(&log);
        let size = log.size_bytes();
        log.close().expect("close");
        truncate(&path, size - size / keep_fraction);
        let mut log = open(dir.path(), small_config());
        let recovered = read_all(&log, 0);
        assert!(recovered.len() as u64 <= size - size / keep_fraction);
        assert_eq!(recovered[..], written[..recovered.len()]);
        let end = log.log_end_offset();
        assert_eq!(records_of(&recovered).len() as i64, end);
        let info = log
            .append_as_leader(blob(&[batch(1, 0)]), 1, NOW_MS)
            .expect("append");
        assert_eq!(info.base_offset, end);
        // Timestamp lookups still work on the rebuilt time index.
        assert!(log.max_timestamp_offset().expect("max").is_some());
    }
}

/// Damage anywhere the log may legitimately find damage (index files, snapshots,
/// checkpoints, the active segment, stray files), with or without a clean marker: open
/// either fails with a typed error or yields a log that serves only whole, CRC-valid
/// batches with increasing offsets and keeps accepting appends. Never a panic.
#[test]
fn given_random_damage_to_derived_files_when_opened_should_never_panic_or_serve_bad_data() {
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
    let mut opened = 0;
    for round in 0..80 {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            segment_bytes: 2500,
            index_interval_bytes: 120,
            ..small_config()
        };
        let mut log = open(dir.path(), config.clone());
        let mut sequence = 0i32;
        for i in 0..rng.gen_range(10..80) {
            let batch = if rng.gen_bool(0.3) {
                sequence += 1 + (i % 3) as i32;
                idempotent(1 + i % 3, 77, 0, sequence - 1 - (i % 3) as i32)
            } else {
                batch(1 + i % 3, rng.gen_range(0..1_000))
            };
            log.append_as_leader(blob(&[batch]), 1 + (i / 20) as i32, NOW_MS)
                .expect("append");
        }
        let active_log = active_log_path(&log);
        // After a clean shutdown the log is trusted as written (as Kafka does); only after
        // a crash is the active segment's content suspect.
        let clean = rng.gen_bool(0.5);
        if clean {
            log.close().expect("close");
        } else {
            crash(log);
        }
        let mut victims: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                !name.ends_with(".log") || (*p == active_log && !clean)
            })
            .collect();
        victims.shuffle(&mut rng);
        for victim in victims.iter().take(rng.gen_range(1..4)) {
            let mut bytes = std::fs::read(victim).expect("read victim");
            match rng.gen_range(0..3) {
                0 if !bytes.is_empty() => {
                    for _ in 0..rng.gen_range(1..5) {
                        let at = rng.gen_range(0..bytes.len());
                        bytes[at] = rng.gen();
                    }
                }
                1 => {
                    let keep = rng.gen_range(0..=bytes.len());
                    bytes.truncate(keep);
                }
                _ => bytes.extend((0..rng.gen_range(1..40)).map(|_| rng.gen::<u8>())),
            }
            std::fs::write(victim, &bytes).expect("write victim");
        }
        std::fs::write(dir.path().join("00000000000000000003.index.swap"), b"x").expect("stray");

        let mut log = match PartitionLog::open(dir.path(), config, NOW_MS) {
            Ok(log) => log,
            Err(crate::StorageError::CorruptCheckpoint { .. })
            | Err(crate::StorageError::CorruptSegment { .. }) => continue,
            Err(error) => panic!("round {round}: unexpected error {error}"),
        };
        opened += 1;
        let bytes = read_all(&log, log.log_start_offset());
        let batches = batches_of(&bytes); // verifies every CRC
        for pair in batches.windows(2) {
            assert!(pair[1].0 > pair[0].1, "round {round}: offsets increase");
        }
        if let Some(last) = batches.last() {
            assert_eq!(last.1 + 1, log.log_end_offset(), "round {round}");
        }
        for query in [0, 500, 999] {
            log.offset_for_timestamp(query).expect("timestamp lookup");
        }
        log.max_timestamp_offset().expect("max timestamp");
        let end = log.log_end_offset();
        let info = log
            .append_as_leader(blob(&[batch(1, 0)]), 9, NOW_MS)
            .expect("append");
        assert_eq!(info.base_offset, end);
    }
    assert!(
        opened > 30,
        "most damage must be survivable, opened {opened}"
    );
}
