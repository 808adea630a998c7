//! An acks=all idempotent load for cluster operation tests (issue 19): a real
//! `strom_client` producer on its own thread sends one record at a time round-robin over a
//! topic's partitions while the test decommissions or restarts nodes; every acknowledged
//! record is kept (partition, offset, value) with the time it was acknowledged, and at the
//! end [`assert_every_ack_readable`] checks each is in the log exactly once, at its offset.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use strom_client::{Client, ClientConfig, Producer, ProducerConfig, ProducerRecord};

use crate::broker_support::Conn;
use crate::cluster_support::{partition_of, read_all, Cluster, CHANGE_TIMEOUT};

/// One acknowledged record.
#[derive(Debug, Clone)]
pub struct Ack {
    pub partition: i32,
    pub offset: i64,
    pub value: String,
}

/// What the load did.
#[derive(Debug)]
pub struct LoadReport {
    pub acked: Vec<Ack>,
    /// Records whose delivery failed for good (not acknowledged: they may or may not be in
    /// the log, and are not checked).
    pub failed: usize,
    /// The longest time between two acknowledgements (from the first on).
    pub longest_gap: Duration,
    pub ran_for: Duration,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    thread: Option<JoinHandle<LoadReport>>,
}

impl Load {
    /// Starts producing to `topic` (which must exist with `partitions` partitions) through
    /// the brokers at `bootstrap` (comma-separated).
    pub fn start(bootstrap: &str, topic: &str, partitions: i32) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
        let (stop_flag, acked_count) = (stop.clone(), acked.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(produce(
                bootstrap,
                topic,
                partitions,
                stop_flag,
                acked_count,
            ))
        });
        Load {
            stop,
            acked,
            thread: Some(thread),
        }
    }

    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::SeqCst)
    }

    /// Waits until `more` further records are acknowledged (panics after `timeout`).
    pub fn wait_for_more(&self, more: usize, timeout: Duration) {
        let target = self.acked() + more;
        let deadline = Instant::now() + timeout;
        while self.acked() < target {
            assert!(
                Instant::now() < deadline,
                "the load got {} of {target} acknowledgements",
                self.acked()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(mut self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("load thread")
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

async fn produce(
    bootstrap: String,
    topic: String,
    partitions: i32,
    stop: Arc<AtomicBool>,
    acked_count: Arc<AtomicUsize>,
) -> LoadReport {
    let mut config = ClientConfig::new(&bootstrap);
    config.retries_max = 1_000;
    config.retry_backoff_max = Duration::from_millis(200);
    config.connection.connect_timeout = Duration::from_secs(2);
    config.connection.request_timeout = Duration::from_secs(10);
    let client = Client::connect(config).await.expect("client");
    let producer = Producer::new(
        client,
        ProducerConfig {
            enable_idempotence: true,
            retries_max: 1_000,
            linger: Duration::from_millis(1),
            ack_timeout: Duration::from_secs(10),
            ..Default::default()
        },
    )
    .await
    .expect("idempotent producer");
    let started = Instant::now();
    let mut acked = Vec::new();
    let mut failed = 0;
    let mut last_ack: Option<Instant> = None;
    let mut longest_gap = Duration::ZERO;
    let mut seq: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let partition = (seq % partitions as u64) as i32;
        let value = format!("v{seq}");
        seq += 1;
        let record = ProducerRecord::new(topic.as_str(), value.clone()).with_partition(partition);
        match producer.send_and_wait(record).await {
            Ok(metadata) => {
                let now = Instant::now();
                if let Some(last) = last_ack {
                    longest_gap = longest_gap.max(now - last);
                }
                last_ack = Some(now);
                acked.push(Ack {
                    partition,
                    offset: metadata.offset,
                    value,
                });
                acked_count.fetch_add(1, Ordering::SeqCst);
            }
            Err(error) => {
                failed += 1;
                println!("load: {value} to partition {partition} failed: {error}");
            }
        }
    }
    LoadReport {
        acked,
        failed,
        longest_gap,
        ran_for: started.elapsed(),
    }
}

/// Reads every partition the load wrote from its current leader and asserts that each
/// acknowledged record is there exactly once, at the offset it was acknowledged with.
pub fn assert_every_ack_readable(cluster: &Cluster, topic: &str, report: &LoadReport) {
    let mut by_partition: BTreeMap<i32, Vec<&Ack>> = BTreeMap::new();
    for ack in &report.acked {
        by_partition.entry(ack.partition).or_default().push(ack);
    }
    for (partition, acks) in by_partition {
        let deadline = Instant::now() + CHANGE_TIMEOUT;
        loop {
            let metadata = cluster.wait_for(|m| {
                partition_of(m, topic, partition).is_some_and(|p| p.leader_id.0 >= 0)
            });
            let leader = partition_of(&metadata, topic, partition)
                .unwrap()
                .leader_id
                .0;
            let mut conn: Conn = cluster.node(leader).connect();
            let read = read_all(&mut conn, topic, partition);
            let mut offsets: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
            for (offset, value) in read.iter().enumerate() {
                offsets
                    .entry(value.as_str())
                    .or_default()
                    .push(offset as i64);
            }
            let missing: Vec<&Ack> = acks
                .iter()
                .copied()
                .filter(|ack| offsets.get(ack.value.as_str()) != Some(&vec![ack.offset]))
                .collect();
            if missing.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{topic}-{partition}: {} acknowledged record(s) not found exactly once at \
                 their offset, e.g. {:?} (found at {:?}); {} records read from {leader}",
                missing.len(),
                missing[0],
                offsets.get(missing[0].value.as_str()),
                read.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
