//! A real `strom` broker for the runtime tests (built by `cargo build -p strom`), on an
//! ephemeral port in a temporary directory, killed when dropped; the word-count test data.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strom_client::{Client, Consumer, ConsumerConfig, SeekTo};

pub struct Broker {
    child: Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strom_binary() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/strom
    let exe = std::env::current_exe().expect("test executable");
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("strom");
    assert!(
        binary.exists(),
        "{} is missing: build it first (cargo build -p strom)",
        binary.display()
    );
    binary
}

/// A broker with `settings` (`key=value`) on top of the test defaults.
pub fn start_broker(settings: &[&str]) -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(dir.path().join("broker.log")).unwrap();
    let mut command = Command::new(strom_binary());
    command
        .arg("broker")
        .args([
            "--set",
            &format!("log.dirs={}", dir.path().join("data").display()),
        ])
        .args(["--set", &format!("listeners=PLAINTEXT://127.0.0.1:{port}")])
        .args(["--set", "http.listener=127.0.0.1:0"]);
    for setting in settings {
        command.args(["--set", setting]);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn strom broker");
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(
            Instant::now() < deadline,
            "the broker did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Broker {
        child,
        address,
        _dir: dir,
    }
}

/// Deterministic lines: line i has words w(i % 7), w(i % 5), w(i % 3).
pub fn line(i: usize) -> String {
    format!("w{} w{} w{}", i % 7, i % 5, i % 3)
}

/// Every count of the output topic, read_committed, per word in offset order.
pub async fn read_counts(client: &Client, topic: &str) -> BTreeMap<String, Vec<i64>> {
    let mut consumer = Consumer::new(
        client.clone(),
        ConsumerConfig {
            isolation_level: 1,
            max_wait: Duration::from_millis(100),
            auto_offset_reset: Some(SeekTo::Earliest),
            ..ConsumerConfig::default()
        },
    );
    consumer.assign_topic(topic).await.unwrap();
    consumer.seek_all(SeekTo::Earliest).await.unwrap();
    let mut counts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut empty = 0;
    while empty < 3 {
        let records = consumer.poll().await.unwrap();
        if records.is_empty() {
            empty += 1;
        }
        for record in records {
            let word = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
            let count = i64::from_be_bytes(record.value.unwrap().as_ref().try_into().unwrap());
            counts.entry(word).or_default().push(count);
        }
    }
    counts
}

pub fn expected(lines: usize) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for i in 0..lines {
        for word in line(i).split_whitespace() {
            *counts.entry(word.to_string()).or_insert(0) += 1;
        }
    }
    counts
}
