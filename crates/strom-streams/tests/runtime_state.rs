//! The runtime against the real `strom` binary: global tables read whole by an instance,
//! and heartbeats that keep a member in its group through a long restore.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use strom_client::{
    Admin, Client, ClientConfig, Consumer, ConsumerConfig, NewTopic, Producer, ProducerConfig,
    ProducerRecord, SeekTo,
};
use strom_streams::*;

async fn produce(client: &Client, topic: &str, records: &[(String, String)]) {
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    for (key, value) in records {
        producer
            .send(ProducerRecord::new(topic, value.clone()).with_key(key.clone()))
            .await
            .unwrap();
    }
    producer.flush().await;
}

/// The latest value per key of `topic` (all partitions).
async fn latest(client: &Client, topic: &str) -> BTreeMap<String, String> {
    let mut consumer = Consumer::new(
        client.clone(),
        ConsumerConfig {
            max_wait: Duration::from_millis(100),
            auto_offset_reset: Some(SeekTo::Earliest),
            ..ConsumerConfig::default()
        },
    );
    consumer.assign_topic(topic).await.unwrap();
    consumer.seek_all(SeekTo::Earliest).await.unwrap();
    let mut values = BTreeMap::new();
    let mut empty = 0;
    while empty < 3 {
        let records = consumer.poll().await.unwrap();
        if records.is_empty() {
            empty += 1;
        }
        for record in records {
            let key = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
            let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
            values.insert(key, value);
        }
    }
    values
}

fn create(admin: &Admin, name: &str, partitions: i32) -> NewTopic {
    let _ = admin;
    let mut topic = NewTopic::new(name);
    topic.partitions = partitions;
    topic
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_global_table_should_restore_all_partitions_before_processing_and_follow_updates() {
    let broker = common::start_broker(&[]);
    let client = Client::connect(ClientConfig::new(&broker.address))
        .await
        .unwrap();
    let admin = Admin::new(client.clone());
    // The global topic has 3 partitions, the stream 2: a global table needs no
    // co-partitioning.
    for (name, partitions) in [("products", 3), ("orders", 2), ("enriched", 2)] {
        admin
            .create_topic(create(&admin, name, partitions), false)
            .await
            .unwrap();
    }
    let products: Vec<(String, String)> = (0..30)
        .map(|i| (format!("p{i}"), format!("product-{i}")))
        .collect();
    produce(&client, "products", &products).await;

    let builder = StreamsBuilder::new();
    let table = builder.global_table("products", Serdes::string(), Serdes::string());
    builder
        .stream("orders", Serdes::string(), Serdes::string())
        .join_global(&table, |_, product| product.clone(), |_, name| name.clone())
        .to("enriched", Serdes::string(), Serdes::string());
    let mut config = StreamsConfig::new("global", &broker.address);
    config.session_timeout = Duration::from_secs(6);
    let app = StreamsApp::start(builder.build().unwrap(), config);
    // Orders for every product, keyed by order id, spread over both stream partitions.
    let orders: Vec<(String, String)> = (0..30)
        .map(|i| (format!("o{i}"), format!("p{i}")))
        .collect();
    produce(&client, "orders", &orders).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = latest(&client, "enriched").await;
        if got.len() == 30 {
            for i in 0..30 {
                assert_eq!(got[&format!("o{i}")], format!("product-{i}"));
            }
            break;
        }
        assert!(!app.is_finished(), "the app stopped");
        assert!(
            Instant::now() < deadline,
            "30 enriched orders not seen within 60 s: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every product was in the global store before the first order was processed: the
    // first read restored all 30, from all three partitions.
    assert_eq!(
        app.metrics()
            .global_restored_records
            .load(Ordering::Relaxed),
        30
    );
    // An update of the global topic reaches the store while the app runs.
    produce(
        &client,
        "products",
        &[("p1".to_string(), "renamed".to_string())],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while app
        .global_stores()
        .get("products-global-store", b"p1")
        .unwrap()
        != Some(b"renamed".to_vec())
    {
        assert!(
            Instant::now() < deadline,
            "the update was not applied within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    produce(&client, "orders", &[("o100".to_string(), "p1".to_string())]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while latest(&client, "enriched").await.get("o100") != Some(&"renamed".to_string()) {
        assert!(Instant::now() < deadline, "o100 not enriched within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.close().await.unwrap();
}

/// Records written straight into the count store's changelog before the app starts.
const CHANGELOG_RECORDS: usize = 400_000;

/// The member's session timeout in the heartbeat test.
const SESSION_MS: u64 = 400;

/// How long the heartbeat test's listener holds each restored batch: under the session
/// timeout less a heartbeat interval, so heartbeats between batches keep the member in.
const BATCH_HOLD_MS: u64 = 150;

/// Makes a restore last, whatever the machine's speed: holds the stream thread for a while
/// after each batch (as a slow store would) and counts the batches.
#[derive(Default)]
struct SlowRestore {
    batches: std::sync::atomic::AtomicU64,
}

impl strom_streams::StateRestoreListener for SlowRestore {
    fn on_batch_restored(&self, _store: &str, _partition: i32, _end: i64, _restored: u64) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(BATCH_HOLD_MS));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_restore_longer_than_the_session_timeout_should_keep_the_member_in_its_group() {
    // A short session timeout (the broker allows it), so that a restore of a bounded
    // changelog outlasts it.
    let broker = common::start_broker(&["group.min.session.timeout.ms=100"]);
    let client = Client::connect(ClientConfig::new(&broker.address))
        .await
        .unwrap();
    let admin = Admin::new(client.clone());
    for name in ["lines", "counts"] {
        admin
            .create_topic(create(&admin, name, 1), false)
            .await
            .unwrap();
    }
    let mut changelog = NewTopic::new("hb-counts-store-changelog");
    changelog.configs = vec![("cleanup.policy".to_string(), "compact".to_string())];
    admin.create_topic(changelog, false).await.unwrap();
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    for i in 0..CHANGELOG_RECORDS {
        let _ = producer
            .send(
                ProducerRecord::new("hb-counts-store-changelog", 1i64.to_be_bytes().to_vec())
                    .with_key(format!("k{i}")),
            )
            .await
            .unwrap();
    }
    producer.flush().await;

    let builder = StreamsBuilder::new();
    builder
        .stream("lines", Serdes::option(Serdes::string()), Serdes::string())
        .group_by(|_, word| word.clone(), Serdes::string(), Serdes::string())
        .named("counts-store")
        .count()
        .to("counts", Serdes::string(), Serdes::i64());
    let mut config = StreamsConfig::new("hb", &broker.address);
    config.session_timeout = Duration::from_millis(SESSION_MS);
    let slow = std::sync::Arc::new(SlowRestore::default());
    let config = config.with_restore_listener(slow.clone());
    let app = StreamsApp::start(builder.build().unwrap(), config);
    let deadline = Instant::now() + Duration::from_secs(120);
    while app.metrics().restored_records.load(Ordering::Relaxed) < CHANGELOG_RECORDS as u64 {
        assert!(!app.is_finished(), "the app stopped");
        assert!(
            Instant::now() < deadline,
            "the restore did not finish within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let restore_ms = app.metrics().restore_ms.load(Ordering::Relaxed);
    let batches = slow.batches.load(Ordering::Relaxed);
    eprintln!("restored {CHANGELOG_RECORDS} records in {batches} batches, {restore_ms} ms");
    // The test's premise, not a speed claim: the restore outlasted the session timeout.
    assert!(
        restore_ms > 2 * SESSION_MS,
        "the restore took {restore_ms} ms in {batches} batches, too short to test heartbeats: write more records"
    );
    // The member keeps processing in the same generation after the restore.
    produce(&client, "lines", &[("x".to_string(), "k1".to_string())]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counts = latest(&client, "counts").await;
        if counts.contains_key("k1") {
            break;
        }
        assert!(Instant::now() < deadline, "no count within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Kicked out during the restore, the member would have rejoined and restored again.
    assert_eq!(
        app.metrics().restored_records.load(Ordering::Relaxed),
        CHANGELOG_RECORDS as u64,
        "the changelog was restored more than once (restore took {restore_ms} ms)"
    );
    assert_eq!(app.metrics().generations.load(Ordering::Relaxed), 1);
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_two_stream_threads_under_exactly_once_should_split_the_tasks_and_count_exactly() {
    let broker = common::start_broker(&[]);
    let client = Client::connect(ClientConfig::new(&broker.address))
        .await
        .unwrap();
    let admin = Admin::new(client.clone());
    for name in ["lines", "counts"] {
        admin
            .create_topic(create(&admin, name, 4), false)
            .await
            .unwrap();
    }
    let builder = StreamsBuilder::new();
    builder
        .stream("lines", Serdes::option(Serdes::string()), Serdes::string())
        .flat_map_values(|line| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .group_by(|_, word| word.clone(), Serdes::string(), Serdes::string())
        .named("counts-store")
        .count()
        .to("counts", Serdes::string(), Serdes::i64());
    let mut config = StreamsConfig::new("threads", &broker.address);
    config.processing_guarantee = ProcessingGuarantee::ExactlyOnceV2;
    config.session_timeout = Duration::from_secs(6);
    config.num_stream_threads = 2;
    let app = StreamsApp::start(builder.build().unwrap(), config);
    // Two members (one per thread), each with tasks.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let busy = strom_client::groups::describe_group(&client, "threads")
            .await
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
        assert!(!app.is_finished(), "the app stopped");
        assert!(
            Instant::now() < deadline,
            "two threads with tasks not seen within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    const LINES: usize = 200;
    let lines: Vec<(String, String)> = (0..LINES)
        .map(|i| (i.to_string(), common::line(i)))
        .collect();
    produce(&client, "lines", &lines).await;
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for (_, text) in &lines {
        for word in text.split_whitespace() {
            *want.entry(word.to_string()).or_insert(0) += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let counts = common::read_counts(&client, "counts").await;
        let last: BTreeMap<String, i64> = counts
            .iter()
            .map(|(w, c)| (w.clone(), *c.last().unwrap()))
            .collect();
        if last == want {
            break counts;
        }
        assert!(!app.is_finished(), "the app stopped");
        assert!(
            Instant::now() < deadline,
            "final counts not reached within 60 s: got {last:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Exactly once: each word's updates are 1, 2, ..., n.
    for (word, seen) in &counts {
        assert_eq!(
            seen,
            &(1..=want[word]).collect::<Vec<_>>(),
            "updates of {word}"
        );
    }
    // Interactive queries find a key whichever thread holds its task.
    for word in want.keys() {
        let got = app
            .query_typed("counts-store", &Serdes::string(), &Serdes::i64(), word)
            .await
            .unwrap();
        assert_eq!(got, Some(want[word]), "query of {word}");
    }
    app.close().await.unwrap();
}
