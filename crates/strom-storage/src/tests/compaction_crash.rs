//! A real `kill -9` during compaction: a child process (this test binary in writer mode)
//! appends keyed records and cleans the log every few hundred appends, reporting each
//! acknowledged offset; the parent kills it at random moments (often mid-clean or
//! mid-swap), reopens the log and checks it is consistent.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use strom_protocol::batch::BatchView;
use strom_protocol::record::{decode_batch, encode_batch, BatchBuilderOptions, RecordToEncode};

use super::support::*;
use crate::{LogConfig, PartitionLog, Throttle};

const DIR_ENV: &str = "STROM_STORAGE_CLEAN_CRASH_DIR";
const KEYS: i64 = 37;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2 * 1024,
        index_interval_bytes: 128,
        retention_ms: -1,
        cleanup_compact: true,
        cleanup_delete: false,
        min_cleanable_dirty_ratio: 0.0,
        ..Default::default()
    }
}

/// Record `i` (one per batch, so offset == i): key `k{i % KEYS}`, value `v{i}`.
fn record(i: i64) -> Vec<u8> {
    encode_batch(
        &[RecordToEncode {
            key: Some(Bytes::from(format!("k{}", i % KEYS))),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: vec![],
            timestamp_ms: 1_000 + i,
        }],
        &BatchBuilderOptions::default(),
    )
    .expect("encode")
    .to_vec()
}

#[test]
#[ignore = "runs only as the child process of the kill -9 compaction test"]
fn compaction_crash_writer_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let mut log = PartitionLog::open(std::path::Path::new(&dir), config(), NOW_MS).expect("open");
    for _ in 0..1_000_000u64 {
        let i = log.log_end_offset();
        let info = log
            .append_as_leader(blob(&[record(i)]), 1, NOW_MS)
            .expect("append");
        assert_eq!(info.base_offset, i);
        println!("ack {i}");
        if i % 150 == 149 {
            log.clean(NOW_MS, true, &mut Throttle::unlimited())
                .expect("clean");
            println!("cleaned {i}");
        }
    }
}

#[test]
fn given_cleaner_killed_with_sigkill_when_reopened_should_be_consistent() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut cleans_seen = 0;
    let mut killed_mid_clean = 0;
    for round in 0..12u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "tests::compaction_crash::compaction_crash_writer_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        let stdout = child.stdout.take().expect("stdout");
        // Kill shortly after the ack that triggers a clean: the clean is likely running.
        let kill_after = rng.gen_range(4..16) * 150 + 149;
        let delay = std::time::Duration::from_micros(rng.gen_range(0..3_000));
        let mut latest_acked: HashMap<String, i64> = HashMap::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            if line.starts_with("cleaned ") {
                cleans_seen += 1;
                continue;
            }
            let Some(rest) = line.strip_prefix("ack ") else {
                continue;
            };
            let offset: i64 = rest.trim().parse().expect("number");
            latest_acked.insert(format!("k{}", offset % KEYS), offset);
            if offset >= kill_after {
                break;
            }
        }
        std::thread::sleep(delay);
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        let in_flight = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .any(|n| n.ends_with(".cleaned") || n.ends_with(".swap"));
        killed_mid_clean += usize::from(in_flight);

        let mut log = PartitionLog::open(dir.path(), config(), NOW_MS).expect("reopen");
        let leftovers: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
            .collect();
        assert_eq!(leftovers, Vec::<String>::new());
        let check = |log: &PartitionLog| {
            let mut latest_present: HashMap<String, i64> = HashMap::new();
            let mut previous = -1;
            for (_, _, bytes) in batches_of(&read_all(log, log.log_start_offset())) {
                let view = BatchView::parse(&bytes).expect("batch");
                for r in decode_batch(&view).expect("decode") {
                    assert!(r.offset > previous, "round {round}: offsets increase");
                    previous = r.offset;
                    let key = String::from_utf8(r.key.expect("key").to_vec()).unwrap();
                    assert_eq!(key, format!("k{}", r.offset % KEYS), "round {round}");
                    let value = String::from_utf8(r.value.expect("value").to_vec()).unwrap();
                    assert_eq!(value, format!("v{}", r.offset), "round {round}");
                    latest_present.insert(key, r.offset);
                }
            }
            for (key, acked) in &latest_acked {
                let present = latest_present.get(key).copied().unwrap_or(-1);
                assert!(
                    present >= *acked,
                    "round {round}: {key} acknowledged at {acked}, latest present {present}"
                );
            }
        };
        check(&log);
        // It cleans and appends normally afterwards.
        log.clean(NOW_MS, true, &mut Throttle::unlimited())
            .expect("clean after recovery");
        check(&log);
        let end = log.log_end_offset();
        log.append_as_leader(blob(&[record(end)]), 1, NOW_MS)
            .expect("append after recovery");
    }
    assert!(cleans_seen >= 12, "the writers cleaned before being killed");
    eprintln!("killed with cleaned/swap files on disk in {killed_mid_clean} of 12 rounds");
}
