//! The runtime against the real `strom` binary (built by `cargo build --workspace`): an
//! exactly-once word count with two instances, one killed mid-way (in-process: its
//! processing task is aborted, as a crash would stop it, without a commit or a LeaveGroup).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use strom_client::{
    Admin, Client, ClientConfig, NewTopic, Producer, ProducerConfig, ProducerRecord,
};
use strom_streams::*;

mod common;

use common::{expected, line, read_counts};

fn start_broker() -> common::Broker {
    common::start_broker(&[])
}

fn word_count(input: &str, output: &str) -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Serdes::option(Serdes::string()), Serdes::string())
        .flat_map_values(|line| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .group_by(|_, word| word.clone(), Serdes::string(), Serdes::string())
        .named("counts-store")
        .count()
        .to(output, Serdes::string(), Serdes::i64());
    builder.build().unwrap()
}

async fn produce_lines(client: &Client, topic: &str, range: std::ops::Range<usize>) {
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    for i in range {
        producer
            .send(ProducerRecord::new(topic, line(i)).with_key(i.to_string()))
            .await
            .unwrap();
    }
    producer.flush().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_two_exactly_once_instances_when_one_is_killed_should_still_count_every_word_exactly_once(
) {
    let broker = start_broker();
    let client = Client::connect(ClientConfig::new(&broker.address))
        .await
        .unwrap();
    let admin = Admin::new(client.clone());
    for name in ["lines", "counts"] {
        let mut topic = NewTopic::new(name);
        topic.partitions = 2;
        admin.create_topic(topic, false).await.unwrap();
    }
    const LINES: usize = 400;

    let state = tempfile::tempdir().unwrap();
    let config = |instance: &str| {
        let mut config = StreamsConfig::new("wc", &broker.address);
        config.processing_guarantee = ProcessingGuarantee::ExactlyOnceV2;
        config.session_timeout = Duration::from_secs(6);
        config.transaction_timeout = Duration::from_secs(5);
        config.commit_interval = Duration::from_millis(100);
        config.instance_id = instance.to_string();
        config.with_state_dir(state.path().join(instance))
    };
    let a = StreamsApp::start(word_count("lines", "counts"), config("a"));
    let b = StreamsApp::start(word_count("lines", "counts"), config("b"));
    // Both instances hold a task before any input arrives.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let group = strom_client::groups::describe_group(&client, "wc").await;
        let busy = group
            .map(|g| {
                g.members
                    .iter()
                    .filter(|m| m.assignment.values().any(|p| !p.is_empty()))
                    .count()
            })
            .unwrap_or(0);
        if busy == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "two members with tasks not seen within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Lines arrive over about a second; b is killed at a seeded point within that time
    // (STREAMS_TEST_SEED replays a run).
    let seed: u64 = std::env::var("STREAMS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let kill_after = Duration::from_millis(200 + seed % 600);
    eprintln!("STREAMS_TEST_SEED={seed}: killing instance b after {kill_after:?}");
    let feeder = {
        let client = client.clone();
        tokio::spawn(async move {
            for start in (0..LINES).step_by(4) {
                produce_lines(&client, "lines", start..start + 4).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    tokio::time::sleep(kill_after).await;
    b.kill();
    feeder.await.unwrap();

    let want = expected(LINES);
    let deadline = Instant::now() + Duration::from_secs(90);
    let counts = loop {
        let counts = read_counts(&client, "counts").await;
        let last: BTreeMap<String, i64> = counts
            .iter()
            .map(|(w, c)| (w.clone(), *c.last().unwrap()))
            .collect();
        if last == want {
            break counts;
        }
        let over: Vec<&String> = last
            .keys()
            .filter(|w| last[*w] > want.get(*w).copied().unwrap_or(0))
            .collect();
        assert!(
            over.is_empty(),
            "counted more than once: {over:?} (got {last:?}, want {want:?})"
        );
        if a.is_finished() {
            panic!("instance a stopped: {:?}", a.close().await);
        }
        assert!(
            Instant::now() < deadline,
            "final counts not reached within 90 s: got {last:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // Exactly once: each word's updates are 1, 2, ..., n: none lost, none repeated.
    for (word, seen) in &counts {
        let n = want[word];
        assert_eq!(seen, &(1..=n).collect::<Vec<_>>(), "updates of {word}");
    }
    a.close().await.unwrap();
}

async fn wait_for_counts(client: &Client, topic: &str, lines: usize) -> BTreeMap<String, Vec<i64>> {
    let want = expected(lines);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts = read_counts(client, topic).await;
        let last: BTreeMap<String, i64> = counts
            .iter()
            .map(|(w, c)| (w.clone(), *c.last().unwrap()))
            .collect();
        if last == want {
            return counts;
        }
        assert!(
            Instant::now() < deadline,
            "final counts not reached within 60 s: got {last:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_restart_when_the_state_directory_was_deleted_should_restore_the_counts_from_the_changelog(
) {
    let broker = start_broker();
    let client = Client::connect(ClientConfig::new(&broker.address))
        .await
        .unwrap();
    let admin = Admin::new(client.clone());
    for name in ["lines", "counts"] {
        admin
            .create_topic(NewTopic::new(name), false)
            .await
            .unwrap();
    }
    let state = tempfile::tempdir().unwrap();
    let config = || {
        let mut config = StreamsConfig::new("restart", &broker.address);
        config.processing_guarantee = ProcessingGuarantee::ExactlyOnceV2;
        config.session_timeout = Duration::from_secs(6);
        config.instance_id = "only".to_string();
        config.with_state_dir(state.path().to_path_buf())
    };
    for (run, delete_state) in [(1, false), (2, true), (3, false)] {
        let app = StreamsApp::start(word_count("lines", "counts"), config());
        produce_lines(&client, "lines", (run - 1) * 50..run * 50).await;
        wait_for_counts(&client, "counts", run * 50).await;
        // Interactive query of the local store.
        let w0 = app
            .query_typed(
                "counts-store",
                &Serdes::string(),
                &Serdes::i64(),
                &"w0".to_string(),
            )
            .await
            .unwrap();
        assert_eq!(w0, Some(expected(run * 50)["w0"]));
        app.close().await.unwrap();
        if delete_state {
            // Run 3 then starts from nothing local: everything comes from the changelog.
            std::fs::remove_dir_all(state.path()).unwrap();
        }
    }
    // Counting went on where it stopped: each word's updates are 1..n once, across runs.
    let counts = read_counts(&client, "counts").await;
    for (word, seen) in &counts {
        assert_eq!(
            seen,
            &(1..=expected(150)[word]).collect::<Vec<_>>(),
            "updates of {word}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_at_least_once_without_failures_should_count_every_word_once() {
    let broker = start_broker();
    let client = Client::connect(ClientConfig::new(&broker.address))
        .await
        .unwrap();
    let admin = Admin::new(client.clone());
    for name in ["lines", "counts"] {
        let mut topic = NewTopic::new(name);
        topic.partitions = 3;
        admin.create_topic(topic, false).await.unwrap();
    }
    produce_lines(&client, "lines", 0..100).await;
    let mut config = StreamsConfig::new("alos", &broker.address);
    config.session_timeout = Duration::from_secs(6);
    let app = StreamsApp::start(word_count("lines", "counts"), config);
    let counts = wait_for_counts(&client, "counts", 100).await;
    for (word, seen) in &counts {
        assert_eq!(
            seen,
            &(1..=expected(100)[word]).collect::<Vec<_>>(),
            "updates of {word}"
        );
    }
    app.close().await.unwrap();
    let committed: i64 = strom_client::groups::committed_offsets(&client, "alos")
        .await
        .unwrap()
        .iter()
        .filter(|o| o.topic == "lines")
        .map(|o| o.offset)
        .sum();
    assert_eq!(committed, 100, "every input record committed at close");
}
