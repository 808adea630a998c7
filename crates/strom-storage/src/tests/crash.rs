//! A real `kill -9`: a child process (this test binary, re-run in writer mode) appends and
//! reports each acknowledged offset; the parent kills it with SIGKILL at a random moment,
//! reopens the log and checks that every acknowledged write is there, intact.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::support::*;
use crate::{LogConfig, PartitionLog};

const DIR_ENV: &str = "STROM_STORAGE_CRASH_WRITER_DIR";

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 8 * 1024,
        ..small_config()
    }
}

/// Writer mode: does nothing unless the parent set the directory variable.
#[test]
#[ignore = "runs only as the child process of the kill -9 test"]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let mut log = PartitionLog::open(std::path::Path::new(&dir), config(), NOW_MS).expect("open");
    for i in 0..1_000_000u64 {
        let info = log
            .append_as_leader(
                blob(&[idempotent(1 + (i % 4) as usize, 42, 0, sequence_of(&log))]),
                1,
                NOW_MS,
            )
            .expect("append");
        println!("ack {} {}", info.base_offset, info.last_offset);
    }
}

fn sequence_of(log: &PartitionLog) -> i32 {
    // Every record of this producer is in the log, so its next sequence is the log end.
    log.log_end_offset() as i32
}

#[test]
fn given_writer_killed_with_sigkill_when_reopened_should_keep_every_acknowledged_write() {
    for round in 0..3u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "tests::crash::crash_writer_child",
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
        let mut acknowledged_end = 0i64;
        let wanted_acks = 200 + round * 300;
        let mut acks = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            let Some(rest) = line.strip_prefix("ack ") else {
                continue;
            };
            let last: i64 = rest
                .split(' ')
                .nth(1)
                .expect("last")
                .parse()
                .expect("number");
            acknowledged_end = last + 1;
            acks += 1;
            if acks == wanted_acks {
                break;
            }
        }
        // SIGKILL mid-flight: the child is still appending.
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        assert!(acknowledged_end > 0, "the writer acknowledged something");

        let mut log = PartitionLog::open(dir.path(), config(), NOW_MS).expect("reopen");
        assert!(
            log.log_end_offset() >= acknowledged_end,
            "round {round}: lost an acknowledged write"
        );
        let records = records_of(&read_all(&log, 0));
        let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
        assert_eq!(offsets, (0..log.log_end_offset()).collect::<Vec<_>>());
        // Producer state recovered: the next sequence continues, an old one is a duplicate
        // or out of order, never silently appended twice.
        let next = sequence_of(&log);
        let info = log
            .append_as_leader(blob(&[idempotent(1, 42, 0, next)]), 1, NOW_MS)
            .expect("next");
        assert!(!info.duplicate);
    }
}
