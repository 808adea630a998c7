//! Shared by the cluster integration tests: real `strom` nodes on loopback (by default
//! three, each a broker and a Raft controller voter; also controller-only and broker-only
//! nodes), with kill -9 / stop / restart per node and Metadata polling.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponsePartition;
use kafka_protocol::messages::*;

use crate::broker_support::{decode_values, fetch, topic_name, Conn, TestBroker};

pub const NODES: i32 = 3;
/// How long a cluster change (fencing, election, catch-up, completion) may take to show.
pub const CHANGE_TIMEOUT: Duration = Duration::from_secs(40);

/// A free loopback port outside the kernel's ephemeral range
/// ([`crate::broker_support::ephemeral_port`]).
pub fn free_port() -> u16 {
    crate::broker_support::ephemeral_port()
}

/// Record timestamps must be recent, or retention.ms deletes them when a node restarts.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// What a node of a test cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Broker and controller voter (the default three-node cluster).
    Combined,
    /// A controller voter only: no Kafka listener.
    Controller,
    /// A broker only, observing the metadata log at its own `metadata.listener`.
    Broker,
}

struct Node {
    role: Role,
    ports: NodePorts,
    process: Option<TestBroker>,
}

/// The ports one node of a test cluster may use.
#[derive(Debug, Clone, Copy)]
pub struct NodePorts {
    /// The first Kafka listener's (what the harness connects to).
    pub kafka: u16,
    /// The voter entry's port, or the observer's `metadata.listener` port.
    pub raft: u16,
    /// A free port for a second listener.
    pub extra: u16,
}

impl NodePorts {
    fn free() -> NodePorts {
        NodePorts {
            kafka: free_port(),
            raft: free_port(),
            extra: free_port(),
        }
    }
}

/// Settings of one node, from its id and ports (applied after the harness's own).
pub type NodeSettings = Box<dyn Fn(i32, NodePorts) -> Vec<String>>;

/// Nodes on loopback, by node id: by default three combined nodes 1, 2 and 3; also
/// dedicated controllers and broker-only nodes added later.
pub struct Cluster {
    nodes: std::collections::BTreeMap<i32, Node>,
    voters: String,
    /// Settings every node gets besides the harness's own.
    extra: Vec<String>,
    node_settings: Option<NodeSettings>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts three combined nodes and waits until each one's own image lists every broker.
    pub fn start() -> Cluster {
        Cluster::start_with(&[Role::Combined; NODES as usize], &[])
    }

    /// Starts node `i + 1` with `roles[i]` (voters first: the voter list is the nodes
    /// with a controller role) and `extra` settings, and waits until every broker's image
    /// lists every broker.
    pub fn start_with(roles: &[Role], extra: &[&str]) -> Cluster {
        Cluster::start_custom(roles, extra, None)
    }

    /// [`Cluster::start_with`], with per-node settings too (listeners on a node's own
    /// ports, say).
    pub fn start_custom(
        roles: &[Role],
        extra: &[&str],
        node_settings: Option<NodeSettings>,
    ) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let nodes: std::collections::BTreeMap<i32, Node> = roles
            .iter()
            .enumerate()
            .map(|(index, role)| {
                let node = Node {
                    role: *role,
                    ports: NodePorts::free(),
                    process: None,
                };
                (index as i32 + 1, node)
            })
            .collect();
        let voters = nodes
            .iter()
            .filter(|(_, node)| node.role != Role::Broker)
            .map(|(id, node)| format!("{id}@127.0.0.1:{}", node.ports.raft))
            .collect::<Vec<_>>()
            .join(",");
        let extra = extra.iter().map(|s| s.to_string()).collect();
        let mut cluster = Cluster {
            nodes,
            voters,
            extra,
            node_settings,
            dir,
        };
        let ids: Vec<i32> = cluster.nodes.keys().copied().collect();
        for node_id in &ids {
            cluster.restart(*node_id);
        }
        let brokers = cluster.brokers();
        for node_id in &brokers {
            cluster.wait_for_on(&[*node_id], |m| live_brokers(m).len() == brokers.len());
        }
        cluster
    }

    /// Adds broker-only node `node_id` to the running cluster (it joins the controller
    /// quorum as an observer and registers); returns once it listens.
    pub fn add_broker(&mut self, node_id: i32) {
        assert!(!self.nodes.contains_key(&node_id), "node {node_id} exists");
        self.nodes.insert(
            node_id,
            Node {
                role: Role::Broker,
                ports: NodePorts::free(),
                process: None,
            },
        );
        self.restart(node_id);
    }

    pub fn data_dir(&self, node_id: i32) -> std::path::PathBuf {
        self.dir.path().join(format!("node-{node_id}"))
    }

    pub fn role(&self, node_id: i32) -> Role {
        self.nodes[&node_id].role
    }

    fn spawn(&self, node_id: i32) -> TestBroker {
        let node = &self.nodes[&node_id];
        let mut settings = vec![
            format!("node.id={node_id}"),
            format!("controller.quorum.voters={}", self.voters),
            "broker.session.timeout.ms=3000".to_string(),
            "broker.heartbeat.interval.ms=500".to_string(),
            "offsets.topic.num.partitions=3".to_string(),
            "transaction.state.log.num.partitions=3".to_string(),
        ];
        settings.extend(self.extra.iter().cloned());
        match node.role {
            Role::Combined => {}
            Role::Controller => settings.push("process.roles=controller".to_string()),
            Role::Broker => {
                settings.push("process.roles=broker".to_string());
                settings.push(format!("metadata.listener=127.0.0.1:{}", node.ports.raft));
            }
        }
        if let Some(node_settings) = &self.node_settings {
            settings.extend(node_settings(node_id, node.ports));
        }
        let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
        if node.role == Role::Controller {
            TestBroker::start_controller_in(&self.data_dir(node_id), node.ports.raft, &settings)
        } else {
            TestBroker::start_in(&self.data_dir(node_id), node.ports.kafka, &settings)
        }
    }

    pub fn node(&self, node_id: i32) -> &TestBroker {
        self.nodes[&node_id]
            .process
            .as_ref()
            .expect("node is running")
    }

    pub fn address(&self, node_id: i32) -> String {
        assert_ne!(
            self.role(node_id),
            Role::Controller,
            "a controller has no Kafka address"
        );
        format!("127.0.0.1:{}", self.nodes[&node_id].ports.kafka)
    }

    pub fn ports(&self, node_id: i32) -> NodePorts {
        self.nodes[&node_id].ports
    }

    pub fn kill(&mut self, node_id: i32) {
        let mut node = self
            .nodes
            .get_mut(&node_id)
            .and_then(|n| n.process.take())
            .expect("node is running");
        node.kill();
    }

    /// SIGTERM, and wait for the process to end.
    pub fn stop(&mut self, node_id: i32) {
        let mut node = self
            .nodes
            .get_mut(&node_id)
            .and_then(|n| n.process.take())
            .expect("node is running");
        node.stop();
    }

    pub fn restart(&mut self, node_id: i32) {
        assert!(
            self.nodes[&node_id].process.is_none(),
            "node {node_id} runs"
        );
        let process = self.spawn(node_id);
        self.nodes.get_mut(&node_id).expect("known node").process = Some(process);
    }

    /// Running nodes, controllers included.
    pub fn running(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|(_, node)| node.process.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every node with a broker role, running or not.
    pub fn brokers(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|(_, node)| node.role != Role::Controller)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Running nodes with a broker role (those that answer Kafka requests).
    pub fn running_brokers(&self) -> Vec<i32> {
        let brokers = self.brokers();
        self.running()
            .into_iter()
            .filter(|id| brokers.contains(id))
            .collect()
    }

    /// Polls Metadata (all topics) on every running broker until one answers so that
    /// `ready` holds; returns that answer.
    pub fn wait_for(&self, ready: impl Fn(&MetadataResponse) -> bool) -> MetadataResponse {
        self.wait_for_on(&self.running_brokers(), ready)
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

/// Every value of `topic`-`partition` read from `conn` (which must reach its leader), in
/// order, up to the high watermark.
pub fn read_all(conn: &mut Conn, topic: &str, partition: i32) -> Vec<String> {
    let mut values = Vec::new();
    let mut offset = 0;
    loop {
        let (code, high_watermark, records) = fetch(conn, topic, partition, offset);
        assert_eq!(code, 0, "fetch at {offset}");
        for (at, value) in decode_values(&records) {
            if at >= offset {
                values.push(value);
                offset = at + 1;
            }
        }
        if offset >= high_watermark {
            return values;
        }
    }
}

/// CreateTopics v7 of one topic through `conn`: `partitions` x `replication_factor`, or
/// partition 0 on exactly `assignment`; the error code.
pub fn create_topic(
    conn: &mut Conn,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
    assignment: Option<&[i32]>,
) -> i16 {
    let mut creatable = CreatableTopic::default()
        .with_name(topic_name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor);
    if let Some(brokers) = assignment {
        creatable = creatable
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![CreatableReplicaAssignment::default()
                .with_partition_index(0)
                .with_broker_ids(brokers.iter().copied().map(BrokerId).collect())]);
    }
    let created: CreateTopicsResponse = conn.call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default()
            .with_timeout_ms(15_000)
            .with_topics(vec![creatable]),
    );
    created.topics[0].error_code
}
