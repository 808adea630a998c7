//! The cluster as the client sees it: bootstrap, metadata, and one connection per broker.
//!
//! Metadata is cached and refreshed on demand: when a response says the client's view is
//! stale (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, ...)
//! the caller refreshes and retries, a bounded number of times with a growing backoff.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::connection::{Connection, ConnectionConfig};
use crate::error::{error_code_name, ClientError, Result};

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of one or more brokers; the first that answers is used to learn the rest.
    pub bootstrap_servers: Vec<String>,
    pub connection: ConnectionConfig,
    /// How many times an operation is retried after a retriable error.
    pub retries_max: u32,
    /// Backoff before the first retry; doubles each attempt up to `retry_backoff_max`.
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            bootstrap_servers: vec!["127.0.0.1:9092".to_string()],
            connection: ConnectionConfig::default(),
            retries_max: 8,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
        }
    }
}

impl ClientConfig {
    pub fn new(bootstrap_servers: &str) -> Self {
        ClientConfig {
            bootstrap_servers: bootstrap_servers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            ..Default::default()
        }
    }

    /// The backoff before retry number `attempt` (0-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(16);
        (self.retry_backoff * factor).min(self.retry_backoff_max)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMetadata {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerMetadata {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: i32,
    /// -1 when the partition has no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline_replicas: Vec<i32>,
    pub error_code: i16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    /// Nil when the broker does not report topic ids (Metadata < v10).
    pub topic_id: Uuid,
    pub is_internal: bool,
    pub error_code: i16,
    /// Sorted by partition index.
    pub partitions: Vec<PartitionMetadata>,
}

impl TopicMetadata {
    pub fn partition(&self, partition: i32) -> Option<&PartitionMetadata> {
        // Sorted and dense in practice: partition i sits at index i, so a producer looking
        // up a leader per batch does not walk thousands of partitions.
        match usize::try_from(partition)
            .ok()
            .and_then(|at| self.partitions.get(at))
        {
            Some(found) if found.partition == partition => Some(found),
            _ => self.partitions.iter().find(|p| p.partition == partition),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ClusterMetadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: BTreeMap<i32, BrokerMetadata>,
    pub topics: BTreeMap<String, TopicMetadata>,
    /// When each cached topic was last answered by the cluster.
    pub topic_fetched_at: BTreeMap<String, Instant>,
}

/// Cached topic metadata older than this is fetched again before use (Kafka's
/// `metadata.max.age.ms` default), so new partitions and moved leaders are noticed even
/// without an error.
pub const METADATA_MAX_AGE: Duration = Duration::from_secs(300);

impl ClusterMetadata {
    /// A cached topic that is healthy (no error, every partition led) and fresh enough.
    pub fn usable_topic(&self, topic: &str, now: Instant) -> Option<&TopicMetadata> {
        let found = self.topics.get(topic)?;
        (self.is_fresh(topic, now) && Self::is_healthy(found)).then_some(found)
    }

    /// Whether `topic` was answered by the cluster less than `metadata.max.age.ms` ago.
    fn is_fresh(&self, topic: &str, now: Instant) -> bool {
        self.topic_fetched_at
            .get(topic)
            .is_some_and(|at| now.saturating_duration_since(*at) < METADATA_MAX_AGE)
    }

    /// No error and a leader for every partition (a walk of all partitions: callers on a
    /// per-record path remember the answer per snapshot, [`Client::usable_snapshot`]).
    fn is_healthy(found: &TopicMetadata) -> bool {
        found.error_code == 0
            && !found.partitions.is_empty()
            && found.partitions.iter().all(|p| p.leader >= 0)
    }
}

impl ClusterMetadata {
    fn from_response(response: MetadataResponse) -> (Self, Vec<TopicMetadata>) {
        let brokers = response
            .brokers
            .into_iter()
            .map(|b| {
                (
                    b.node_id.0,
                    BrokerMetadata {
                        node_id: b.node_id.0,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.map(|r| r.to_string()),
                    },
                )
            })
            .collect();
        let topics = response
            .topics
            .into_iter()
            .filter_map(|t| {
                let name = t.name?.0.to_string();
                let mut partitions: Vec<PartitionMetadata> = t
                    .partitions
                    .into_iter()
                    .map(|p| PartitionMetadata {
                        partition: p.partition_index,
                        leader: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                        offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                        error_code: p.error_code,
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                Some(TopicMetadata {
                    name,
                    topic_id: t.topic_id,
                    is_internal: t.is_internal,
                    error_code: t.error_code,
                    partitions,
                })
            })
            .collect();
        (
            ClusterMetadata {
                cluster_id: response.cluster_id.map(|c| c.to_string()),
                controller_id: response.controller_id.0,
                brokers,
                topics: BTreeMap::new(),
                topic_fetched_at: BTreeMap::new(),
            },
            topics,
        )
    }
}

struct ClientInner {
    config: ClientConfig,
    /// Connections by broker id; bootstrap connections use negative ids. An entry is
    /// replaced once [`Connection::is_closed`] says so, which includes a SASL session close
    /// to its expiry (KIP-368), so the broker never has to cut a cached connection off.
    connections: tokio::sync::Mutex<HashMap<i32, Connection>>,
    metadata: RwLock<Arc<ClusterMetadata>>,
    /// Which topics of one metadata snapshot are healthy, remembered because checking
    /// walks every partition and a producer asks per record.
    healthy: std::sync::Mutex<HealthMemo>,
}

/// [`ClientInner::healthy`]: answers for `snapshot` only (a snapshot never changes; a new
/// one starts a new memo). Holding the `Arc` keeps its address from being reused.
#[derive(Default)]
struct HealthMemo {
    snapshot: Option<Arc<ClusterMetadata>>,
    topics: HashMap<String, bool>,
}

impl HealthMemo {
    /// Whether `topic` is healthy in `metadata`, walking its partitions once per snapshot.
    fn healthy(&mut self, metadata: &Arc<ClusterMetadata>, topic: &str) -> bool {
        if !self
            .snapshot
            .as_ref()
            .is_some_and(|seen| Arc::ptr_eq(seen, metadata))
        {
            self.snapshot = Some(metadata.clone());
            self.topics.clear();
        }
        if let Some(&healthy) = self.topics.get(topic) {
            return healthy;
        }
        let healthy = metadata
            .topics
            .get(topic)
            .is_some_and(ClusterMetadata::is_healthy);
        self.topics.insert(topic.to_string(), healthy);
        healthy
    }
}

/// A handle on a cluster, shared by producers, consumers and admin. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

const BOOTSTRAP_ID: i32 = -1;

/// Retries of a topic the cluster says does not exist (it may be being created).
const UNKNOWN_TOPIC_RETRIES_MAX: u32 = 3;

impl Client {
    /// Connects to the first reachable bootstrap server and loads the broker list.
    pub async fn connect(config: ClientConfig) -> Result<Client> {
        if config.bootstrap_servers.is_empty() {
            return Err(ClientError::InvalidConfig {
                key: "bootstrap_servers",
                reason: "no servers given".into(),
            });
        }
        let client = Client {
            inner: Arc::new(ClientInner {
                config,
                connections: tokio::sync::Mutex::new(HashMap::new()),
                metadata: RwLock::new(Arc::new(ClusterMetadata::default())),
                healthy: std::sync::Mutex::new(HealthMemo::default()),
            }),
        };
        client.refresh_metadata(Some(&[]), false).await?;
        Ok(client)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The cached metadata (no request).
    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        self.inner.metadata.read().expect("metadata lock").clone()
    }

    async fn bootstrap_connection(&self) -> Result<Connection> {
        let mut connections = self.inner.connections.lock().await;
        if let Some(connection) = connections.get(&BOOTSTRAP_ID) {
            if !connection.is_closed() {
                return Ok(connection.clone());
            }
        }
        // Prefer brokers we already know, then the bootstrap list.
        let known: Vec<String> = self
            .metadata()
            .brokers
            .values()
            .map(|b| b.address())
            .collect();
        let mut last_error = None;
        for address in known
            .iter()
            .chain(self.inner.config.bootstrap_servers.iter())
        {
            match Connection::connect(address, self.inner.config.connection.clone()).await {
                Ok(connection) => {
                    connections.insert(BOOTSTRAP_ID, connection.clone());
                    return Ok(connection);
                }
                // Wrong credentials or a refused certificate fail the same on every
                // broker: say so now rather than after trying them all.
                Err(error) if error.is_authentication_error() => {
                    last_error = Some(error);
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(ClientError::NoBrokerAvailable {
            servers: self.inner.config.bootstrap_servers.join(","),
            last_error: Box::new(last_error.expect("at least one server was tried")),
        })
    }

    /// Any live connection: for requests every broker can answer.
    pub async fn any_connection(&self) -> Result<Connection> {
        self.bootstrap_connection().await
    }

    /// The connection to broker `broker_id`, opened on first use.
    pub async fn broker_connection(&self, broker_id: i32) -> Result<Connection> {
        {
            let connections = self.inner.connections.lock().await;
            if let Some(connection) = connections.get(&broker_id) {
                if !connection.is_closed() {
                    return Ok(connection.clone());
                }
            }
        }
        let address = self
            .metadata()
            .brokers
            .get(&broker_id)
            .map(|b| b.address())
            .ok_or(ClientError::UnknownBroker { broker_id })?;
        let connection =
            Connection::connect(&address, self.inner.config.connection.clone()).await?;
        let mut connections = self.inner.connections.lock().await;
        // Another task may have connected meanwhile; keep the first live one.
        if let Some(existing) = connections.get(&broker_id) {
            if !existing.is_closed() {
                return Ok(existing.clone());
            }
        }
        connections.insert(broker_id, connection.clone());
        Ok(connection)
    }

    /// The controller (or, in KRaft clusters, the broker Metadata names as controller),
    /// for admin requests. Falls back to any broker.
    pub async fn controller_connection(&self) -> Result<Connection> {
        let controller = self.metadata().controller_id;
        if controller >= 0 {
            if let Ok(connection) = self.broker_connection(controller).await {
                return Ok(connection);
            }
        }
        self.any_connection().await
    }

    /// Fetches metadata. `topics`: `None` for all topics, `Some(&[])` for brokers only.
    /// Known topics not in the answer are kept; named topics are replaced.
    pub async fn refresh_metadata(
        &self,
        topics: Option<&[String]>,
        allow_auto_topic_creation: bool,
    ) -> Result<Arc<ClusterMetadata>> {
        let mut attempt = 0;
        loop {
            match self.try_refresh(topics, allow_auto_topic_creation).await {
                Ok(metadata) => return Ok(metadata),
                Err(error) if error.is_retriable() && attempt < self.inner.config.retries_max => {
                    tracing::debug!(%error, attempt, "metadata request failed; retrying");
                    tokio::time::sleep(self.inner.config.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn try_refresh(
        &self,
        topics: Option<&[String]>,
        allow_auto_topic_creation: bool,
    ) -> Result<Arc<ClusterMetadata>> {
        let connection = self.bootstrap_connection().await?;
        let version = connection.version_for_key(ApiKey::Metadata)?;
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|name| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                    })
                    .collect()
            }))
            // v0-3 cannot say "don't create": leave it at the default there.
            .with_allow_auto_topic_creation(allow_auto_topic_creation || version < 4);
        let response = connection.send_version(&request, version).await?;
        let (mut fresh, topics_answered) = ClusterMetadata::from_response(response);
        let mut metadata = self.inner.metadata.write().expect("metadata lock");
        if topics.is_some() {
            fresh.topics = metadata.topics.clone();
            fresh.topic_fetched_at = metadata.topic_fetched_at.clone();
        }
        let now = Instant::now();
        // A topic answered with an error (e.g. UNKNOWN_TOPIC_OR_PARTITION) is cached with
        // it, so callers see why; `cached_topic` asks again for such entries.
        for topic in topics_answered {
            fresh.topic_fetched_at.insert(topic.name.clone(), now);
            fresh.topics.insert(topic.name.clone(), topic);
        }
        let fresh = Arc::new(fresh);
        *metadata = fresh.clone();
        Ok(fresh)
    }

    /// Metadata for one topic, retried while the topic is being created or has
    /// partitions without leaders. Fails with [`ClientError::UnknownTopic`] when the
    /// broker says it does not exist (and would not create it).
    pub async fn topic_metadata(
        &self,
        topic: &str,
        allow_auto_topic_creation: bool,
    ) -> Result<TopicMetadata> {
        let names = [topic.to_string()];
        let mut attempt = 0;
        loop {
            let metadata = self
                .refresh_metadata(Some(&names), allow_auto_topic_creation)
                .await?;
            let found = metadata.topics.get(topic).cloned();
            let retry_reason = match &found {
                None => Some(3),
                Some(t) if t.error_code == 3 && !allow_auto_topic_creation => {
                    return Err(ClientError::UnknownTopic {
                        topic: topic.to_string(),
                    })
                }
                Some(t) if t.error_code != 0 => {
                    if !crate::error::is_retriable_code(t.error_code) {
                        return Err(ClientError::from_code(
                            t.error_code,
                            None,
                            format!("metadata for topic '{topic}'"),
                        )
                        .expect("non-zero code"));
                    }
                    Some(t.error_code)
                }
                Some(t) if t.partitions.is_empty() || t.partitions.iter().any(|p| p.leader < 0) => {
                    Some(5)
                }
                Some(_) => None,
            };
            // A topic still unknown after asking for auto-creation a few times means the
            // broker will not create it; don't spend the whole retry budget on it.
            let attempts_max = if retry_reason == Some(3) {
                self.inner.config.retries_max.min(UNKNOWN_TOPIC_RETRIES_MAX)
            } else {
                self.inner.config.retries_max
            };
            match retry_reason {
                None => return Ok(found.expect("checked above")),
                Some(code) if attempt >= attempts_max => {
                    if code == 3 {
                        return Err(ClientError::UnknownTopic {
                            topic: topic.to_string(),
                        });
                    }
                    return Err(ClientError::Broker {
                        code,
                        name: error_code_name(code),
                        message: None,
                        context: format!("metadata for topic '{topic}'"),
                    });
                }
                Some(_) => {
                    tokio::time::sleep(self.inner.config.backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Cached topic metadata, fetched if the topic is not cached yet.
    pub async fn cached_topic(
        &self,
        topic: &str,
        allow_auto_topic_creation: bool,
    ) -> Result<TopicMetadata> {
        if let Some(found) = self.metadata().usable_topic(topic, Instant::now()) {
            return Ok(found.clone());
        }
        self.topic_metadata(topic, allow_auto_topic_creation).await
    }

    /// The metadata snapshot when `topic` is cached in it, fresh and healthy (what
    /// [`ClusterMetadata::usable_topic`] says), checking health once per snapshot.
    fn usable_snapshot(&self, topic: &str) -> Option<Arc<ClusterMetadata>> {
        let metadata = self.metadata();
        if !metadata.is_fresh(topic, Instant::now()) {
            return None;
        }
        let healthy = self
            .inner
            .healthy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .healthy(&metadata, topic);
        healthy.then_some(metadata)
    }

    /// The partition count of a cached, healthy topic, without copying its metadata (the
    /// producer's per-record path).
    pub fn cached_partition_count(&self, topic: &str) -> Option<i32> {
        let metadata = self.usable_snapshot(topic)?;
        metadata
            .topics
            .get(topic)
            .map(|found| found.partitions.len() as i32)
    }

    /// The leader of a partition from the cache (refreshing once if unknown).
    pub async fn leader_for(&self, topic: &str, partition: i32) -> Result<i32> {
        // The producer asks per batch: answer from the snapshot without copying the topic.
        if let Some(metadata) = self.usable_snapshot(topic) {
            let leader = metadata
                .topics
                .get(topic)
                .and_then(|found| found.partition(partition))
                .map(|found| found.leader);
            if let Some(leader) = leader.filter(|leader| *leader >= 0) {
                return Ok(leader);
            }
        }
        let metadata = self.cached_topic(topic, false).await?;
        let found = metadata
            .partition(partition)
            .ok_or_else(|| ClientError::UnknownPartition {
                topic: topic.to_string(),
                partition,
            })?;
        if found.leader < 0 {
            return Err(ClientError::NoLeader {
                topic: topic.to_string(),
                partition,
                attempts: 1,
            });
        }
        Ok(found.leader)
    }

    /// Drops a topic from the cache so the next lookup asks the cluster.
    pub fn invalidate_topic(&self, topic: &str) {
        let mut metadata = self.inner.metadata.write().expect("metadata lock");
        if metadata.topics.contains_key(topic) {
            let mut fresh = (**metadata).clone();
            fresh.topics.remove(topic);
            fresh.topic_fetched_at.remove(topic);
            *metadata = Arc::new(fresh);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(leaders: &[i32]) -> TopicMetadata {
        TopicMetadata {
            name: "t".into(),
            topic_id: Uuid::nil(),
            is_internal: false,
            error_code: 0,
            partitions: leaders
                .iter()
                .enumerate()
                .map(|(index, leader)| PartitionMetadata {
                    partition: index as i32,
                    leader: *leader,
                    leader_epoch: 0,
                    replicas: vec![1],
                    isr: vec![1],
                    offline_replicas: vec![],
                    error_code: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn given_cached_topic_when_stale_or_leaderless_should_not_be_usable() {
        let now = Instant::now();
        let mut metadata = ClusterMetadata::default();
        metadata.topics.insert("t".into(), topic(&[1, 1]));
        assert!(metadata.usable_topic("t", now).is_none(), "never fetched");
        metadata.topic_fetched_at.insert("t".into(), now);
        assert_eq!(
            metadata.usable_topic("t", now).map(|t| t.partitions.len()),
            Some(2)
        );
        assert!(
            metadata.usable_topic("t", now + METADATA_MAX_AGE).is_none(),
            "too old"
        );
        metadata.topics.insert("t".into(), topic(&[1, -1]));
        assert!(
            metadata.usable_topic("t", now).is_none(),
            "a partition has no leader"
        );
    }

    /// The health of a topic is remembered per snapshot only: a new snapshot in which a
    /// partition lost its leader is checked again.
    #[test]
    fn given_new_snapshot_when_topic_lost_a_leader_should_not_reuse_the_old_answer() {
        let mut memo = HealthMemo::default();
        let mut metadata = ClusterMetadata::default();
        metadata.topics.insert("t".into(), topic(&[1, 1]));
        let first = Arc::new(metadata.clone());
        assert!(memo.healthy(&first, "t"));
        assert!(memo.healthy(&first, "t"), "remembered");
        assert!(!memo.healthy(&first, "absent"));
        metadata.topics.insert("t".into(), topic(&[1, -1]));
        let second = Arc::new(metadata);
        assert!(
            !memo.healthy(&second, "t"),
            "a new snapshot is checked again"
        );
        assert!(
            memo.healthy(&first, "t"),
            "and the first one again after it"
        );
    }

    /// A partition is found at its index when the list is dense, and by search when not.
    #[test]
    fn given_dense_or_sparse_partitions_when_looked_up_should_find_the_right_one() {
        let dense = topic(&[1, 2, 3]);
        assert_eq!(dense.partition(2).map(|p| p.leader), Some(3));
        assert!(dense.partition(3).is_none());
        assert!(dense.partition(-1).is_none());
        let mut sparse = topic(&[1, 2, 3]);
        sparse.partitions.remove(0);
        assert_eq!(sparse.partition(2).map(|p| p.leader), Some(3));
        assert_eq!(sparse.partition(1).map(|p| p.leader), Some(2));
        assert!(sparse.partition(0).is_none());
    }

    #[test]
    fn given_retry_attempts_when_backing_off_should_double_up_to_max() {
        let config = ClientConfig::new("a:1, b:2,,");
        assert_eq!(config.bootstrap_servers, vec!["a:1", "b:2"]);
        assert_eq!(config.backoff(0), Duration::from_millis(100));
        assert_eq!(config.backoff(1), Duration::from_millis(200));
        assert_eq!(config.backoff(3), Duration::from_millis(800));
        assert_eq!(config.backoff(30), Duration::from_secs(1));
    }
}
