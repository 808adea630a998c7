//! Shared by the cluster integration tests: three real `strom` nodes on loopback, each a
//! broker and a Raft controller voter, with kill -9 / restart per node and Metadata polling.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponsePartition;
use kafka_protocol::messages::*;

use crate::broker_support::{topic_name, Conn, TestBroker};

pub const NODES: i32 = 3;
/// How long a cluster change (fencing, election, catch-up, completion) may take to show.
pub const CHANGE_TIMEOUT: Duration = Duration::from_secs(40);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Record timestamps must be recent, or retention.ms deletes them when a node restarts.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Three nodes on loopback; node `n` is `nodes[n - 1]`.
pub struct Cluster {
    nodes: Vec<Option<TestBroker>>,
    kafka_ports: Vec<u16>,
    voters: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts every node and waits until each one's own image lists every broker.
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let kafka_ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let voters = (1..=NODES)
            .map(|n| format!("{n}@127.0.0.1:{}", free_port()))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            kafka_ports,
            voters,
            dir,
        };
        for node_id in 1..=NODES {
            let node = cluster.spawn(node_id);
            cluster.nodes.push(Some(node));
        }
        for node_id in 1..=NODES {
            cluster.wait_for_on(&[node_id], |m| live_brokers(m).len() == NODES as usize);
        }
        cluster
    }

    pub fn data_dir(&self, node_id: i32) -> std::path::PathBuf {
        self.dir.path().join(format!("node-{node_id}"))
    }

    fn spawn(&self, node_id: i32) -> TestBroker {
        let settings = [
            format!("node.id={node_id}"),
            format!("controller.quorum.voters={}", self.voters),
            "broker.session.timeout.ms=3000".to_string(),
            "broker.heartbeat.interval.ms=500".to_string(),
            "offsets.topic.num.partitions=3".to_string(),
            "transaction.state.log.num.partitions=3".to_string(),
        ];
        let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
        TestBroker::start_in(
            &self.data_dir(node_id),
            self.kafka_ports[(node_id - 1) as usize],
            &settings,
        )
    }

    pub fn node(&self, node_id: i32) -> &TestBroker {
        self.nodes[(node_id - 1) as usize]
            .as_ref()
            .expect("node is running")
    }

    pub fn address(&self, node_id: i32) -> String {
        format!("127.0.0.1:{}", self.kafka_ports[(node_id - 1) as usize])
    }

    pub fn kill(&mut self, node_id: i32) {
        let mut node = self.nodes[(node_id - 1) as usize]
            .take()
            .expect("node is running");
        node.kill();
    }

    pub fn restart(&mut self, node_id: i32) {
        assert!(self.nodes[(node_id - 1) as usize].is_none());
        let node = self.spawn(node_id);
        self.nodes[(node_id - 1) as usize] = Some(node);
    }

    pub fn running(&self) -> Vec<i32> {
        (1..=NODES)
            .filter(|n| self.nodes[(*n - 1) as usize].is_some())
            .collect()
    }

    /// Polls Metadata (all topics) on every running node until one answers so that
    /// `ready` holds; returns that answer.
    pub fn wait_for(&self, ready: impl Fn(&MetadataResponse) -> bool) -> MetadataResponse {
        self.wait_for_on(&self.running(), ready)
    }

    /// Like [`Cluster::wait_for`], asking only `nodes`.
    pub fn wait_for_on(
        &self,
        nodes: &[i32],
        ready: impl Fn(&MetadataResponse) -> bool,
    ) -> MetadataResponse {
        let deadline = Instant::now() + CHANGE_TIMEOUT;
        let mut last = None;
        while Instant::now() < deadline {
            for &node_id in nodes {
                let metadata = metadata(&mut self.node(node_id).connect(), None);
                if ready(&metadata) {
                    return metadata;
                }
                last = Some(metadata);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "the cluster did not reach the expected state; last Metadata: {last:#?}\n{}",
            self.logs()
        );
    }

    /// The last lines of every running node's log, for failure messages.
    pub fn logs(&self) -> String {
        self.running()
            .into_iter()
            .map(|n| {
                let log = self.node(n).log();
                let lines: Vec<&str> = log.lines().collect();
                format!(
                    "--- node {n}\n{}\n",
                    lines[lines.len().saturating_sub(40)..].join("\n")
                )
            })
            .collect()
    }
}

/// Metadata v12 for `topics` (None: every topic), never creating any.
pub fn metadata(conn: &mut Conn, topics: Option<&[&str]>) -> MetadataResponse {
    let request = MetadataRequest::default()
        .with_topics(topics.map(|names| {
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                .collect()
        }))
        .with_allow_auto_topic_creation(false);
    conn.call(ApiKey::Metadata, 12, &request)
}

pub fn live_brokers(metadata: &MetadataResponse) -> BTreeSet<i32> {
    metadata.brokers.iter().map(|b| b.node_id.0).collect()
}

pub fn partition_of<'a>(
    metadata: &'a MetadataResponse,
    topic: &str,
    partition: i32,
) -> Option<&'a MetadataResponsePartition> {
    metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))?
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
}
