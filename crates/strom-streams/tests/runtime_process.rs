//! A kill -9 of a separate process: the `word_count` example (built with the crate's
//! examples, as `cargo test` does) is killed with SIGKILL at a seeded point while lines
//! arrive, started again, and its exactly-once output read_committed holds each word's
//! counts 1..n once.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strom_client::{
    Admin, Client, ClientConfig, NewTopic, Producer, ProducerConfig, ProducerRecord,
};

fn example_binary() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/word_count
    let exe = std::env::current_exe().expect("test executable");
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("examples")
        .join("word_count");
    assert!(
        binary.exists(),
        "{} is missing: build it first (cargo build -p strom-streams --examples)",
        binary.display()
    );
    binary
}

/// The example's process, killed (SIGKILL) when dropped, so a failed test leaves none.
struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_word_count(address: &str) -> App {
    App(Command::new(example_binary())
        .arg(address)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the word_count example"))
}

async fn produce_lines(client: &Client, range: std::ops::Range<usize>) {
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    for i in range {
        producer
            .send(ProducerRecord::new("text-lines", common::line(i)).with_key(i.to_string()))
            .await
            .unwrap();
    }
    producer.flush().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_word_count_process_killed_with_sigkill_should_count_exactly_once_after_a_restart(
) {
    let broker = common::start_broker(&[]);
    let client = Client::connect(ClientConfig::new(&broker.address))
        .await
        .unwrap();
    let admin = Admin::new(client.clone());
    for name in ["text-lines", "word-counts"] {
        let mut topic = NewTopic::new(name);
        topic.partitions = 2;
        admin.create_topic(topic, false).await.unwrap();
    }
    const LINES: usize = 300;
    let seed: u64 = std::env::var("STREAMS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    // Killed after 100..250 lines were sent (STREAMS_TEST_SEED replays a run).
    let kill_at = 100 + (seed % 150) as usize;
    eprintln!("STREAMS_TEST_SEED={seed}: SIGKILL after line {kill_at}");
    let mut first = start_word_count(&broker.address);
    // Let it join and process some lines before the kill.
    produce_lines(&client, 0..50).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while common::read_counts(&client, "word-counts").await.is_empty() {
        assert!(
            first.0.try_wait().unwrap().is_none(),
            "the example exited early"
        );
        assert!(Instant::now() < deadline, "no output within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for start in (50..kill_at).step_by(10) {
        produce_lines(&client, start..(start + 10).min(kill_at)).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL: no commit, no LeaveGroup, maybe an open transaction left.
    drop(first);
    produce_lines(&client, kill_at..LINES).await;
    let mut second = start_word_count(&broker.address);

    let want = common::expected(LINES);
    // The first process's session and open transaction time out (10 s each) first.
    let deadline = Instant::now() + Duration::from_secs(120);
    let counts = loop {
        let counts = common::read_counts(&client, "word-counts").await;
        let last: BTreeMap<String, i64> = counts
            .iter()
            .map(|(w, c)| (w.clone(), *c.last().unwrap()))
            .collect();
        if last == want {
            break counts;
        }
        assert!(
            second.0.try_wait().unwrap().is_none(),
            "the restarted example exited"
        );
        assert!(
            Instant::now() < deadline,
            "final counts not reached within 120 s: got {last:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    drop(second);
    for (word, seen) in &counts {
        assert_eq!(
            seen,
            &(1..=want[word]).collect::<Vec<_>>(),
            "updates of {word}"
        );
    }
}
