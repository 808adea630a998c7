//! Cluster operations of [`Admin`]: the brokers with their liveness (DescribeCluster),
//! leader elections (ElectLeaders), the controller quorum (DescribeQuorum) and brokers
//! leaving (UnregisterBroker).

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeClusterRequest, DescribeQuorumRequest, ElectLeadersRequest,
    TopicName, UnregisterBrokerRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::error::{error_code_name, ClientError, Result};

/// DescribeCluster's endpoint type for brokers (v1+).
const ENDPOINT_TYPE_BROKERS: i8 = 1;

/// A broker as DescribeCluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerStatus {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// Fenced: the controller has not heard from it within the session timeout, or it is
    /// shutting down or starting. It leads nothing and is in no ISR.
    pub fenced: bool,
}

impl BrokerStatus {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The cluster as DescribeCluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    pub cluster_id: String,
    /// -1 when unknown.
    pub controller_id: i32,
    /// Sorted by id.
    pub brokers: Vec<BrokerStatus>,
    /// Whether fenced brokers are listed (DescribeCluster v2); older brokers list only live
    /// ones.
    pub includes_fenced: bool,
}

/// The metadata log's topic, the one partition DescribeQuorum describes.
const METADATA_TOPIC: &str = "__cluster_metadata";

/// One replica of the metadata log in a [`QuorumStatus`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReplicaStatus {
    pub node_id: i32,
    /// -1 when unknown.
    pub log_end_offset: i64,
    /// Milliseconds since the epoch; -1 when unknown.
    pub last_fetch_timestamp: i64,
    pub last_caught_up_timestamp: i64,
}

/// The controller quorum as DescribeQuorum reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumReplicaStatus>,
    /// Brokers that receive the metadata log without voting.
    pub observers: Vec<QuorumReplicaStatus>,
}

/// Which election [`Admin::elect_leaders`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// Each partition's first replica leads again, if it is in sync and alive.
    Preferred,
    /// A partition without a leader takes any live replica, in sync or not: records the
    /// old leader had may be lost.
    Unclean,
}

/// One partition's answer to an election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionResult {
    pub topic: String,
    pub partition: i32,
    /// 0: elected. 84 ELECTION_NOT_NEEDED, 80 PREFERRED_LEADER_NOT_AVAILABLE,
    /// 83 ELIGIBLE_LEADERS_NOT_AVAILABLE, 3 UNKNOWN_TOPIC_OR_PARTITION, ...
    pub error_code: i16,
    pub error_message: Option<String>,
}

impl ElectionResult {
    /// The Kafka name of the code (`NONE` when elected).
    pub fn error_name(&self) -> String {
        error_code_name(self.error_code)
    }
}

impl Admin {
    /// The cluster id, the active controller and every broker, fenced ones included when
    /// the broker supports DescribeCluster v2. Falls back to Metadata (live brokers only)
    /// when DescribeCluster is not served.
    pub async fn describe_brokers(&self) -> Result<ClusterDescription> {
        let connection = self.client().any_connection().await?;
        let version = match connection.version_for_key(ApiKey::DescribeCluster) {
            Ok(version) => version,
            Err(ClientError::UnsupportedApi { .. }) => {
                let metadata = self.describe_cluster().await?;
                return Ok(ClusterDescription {
                    cluster_id: metadata.cluster_id.clone().unwrap_or_default(),
                    controller_id: metadata.controller_id,
                    brokers: metadata
                        .brokers
                        .values()
                        .map(|b| BrokerStatus {
                            node_id: b.node_id,
                            host: b.host.clone(),
                            port: b.port,
                            rack: b.rack.clone(),
                            fenced: false,
                        })
                        .collect(),
                    includes_fenced: false,
                });
            }
            Err(other) => return Err(other),
        };
        let request = DescribeClusterRequest::default()
            .with_endpoint_type(ENDPOINT_TYPE_BROKERS)
            .with_include_fenced_brokers(version >= 2);
        let response = connection.send_version(&request, version).await?;
        if let Some(error) = ClientError::from_code(
            response.error_code,
            response.error_message.as_deref(),
            "describe cluster",
        ) {
            return Err(error);
        }
        let mut brokers: Vec<BrokerStatus> = response
            .brokers
            .into_iter()
            .map(|b| BrokerStatus {
                node_id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
                fenced: b.is_fenced,
            })
            .collect();
        brokers.sort_by_key(|b| b.node_id);
        Ok(ClusterDescription {
            cluster_id: response.cluster_id.to_string(),
            controller_id: response.controller_id.0,
            brokers,
            includes_fenced: version >= 2,
        })
    }

    /// Elects leaders. `partitions`: `None` for every partition of the cluster, and then
    /// (as in Kafka) partitions whose leader is already the wanted one are not in the
    /// answer; otherwise one result per named partition.
    pub async fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<ElectionResult>> {
        let connection = self.client().controller_connection().await?;
        let version = connection.version_for_key(ApiKey::ElectLeaders)?;
        if election == ElectionType::Unclean && version < 1 {
            // v0 has no election type: it only elects preferred leaders.
            return Err(ClientError::UnsupportedApi {
                api: "ElectLeaders",
                address: connection.address().to_string(),
                client_min: 1,
                client_max: 2,
                broker: Some((0, version)),
            });
        }
        let request = ElectLeadersRequest::default()
            .with_election_type(match election {
                ElectionType::Preferred => 0,
                ElectionType::Unclean => 1,
            })
            .with_timeout_ms(self.operation_timeout.as_millis().min(i32::MAX as u128) as i32)
            .with_topic_partitions(partitions.map(|wanted| {
                wanted
                    .iter()
                    .map(|(topic, partitions)| {
                        TopicPartitions::default()
                            .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                            .with_partitions(partitions.clone())
                    })
                    .collect()
            }));
        let response = connection.send_version(&request, version).await?;
        if let Some(error) = ClientError::from_code(response.error_code, None, "elect leaders") {
            return Err(error);
        }
        let mut results = Vec::new();
        for topic in response.replica_election_results {
            for partition in topic.partition_result {
                results.push(ElectionResult {
                    topic: topic.topic.0.to_string(),
                    partition: partition.partition_id,
                    error_code: partition.error_code,
                    error_message: partition
                        .error_message
                        .map(|m| m.to_string())
                        .filter(|m| !m.is_empty()),
                });
            }
        }
        // Elected leaders invalidate the cached leaders of those topics.
        for result in results.iter().filter(|r| r.error_code == 0) {
            self.client().invalidate_topic(&result.topic);
        }
        Ok(results)
    }

    /// Unregisters broker `broker_id` (UnregisterBroker, KIP-631): it leaves the cluster for
    /// good and is no longer listed. Its replicas are not moved (move them first).
    pub async fn unregister_broker(&self, broker_id: i32) -> Result<()> {
        let connection = self.client().controller_connection().await?;
        let version = connection.version_for_key(ApiKey::UnregisterBroker)?;
        let request = UnregisterBrokerRequest::default().with_broker_id(BrokerId(broker_id));
        let response = connection.send_version(&request, version).await?;
        if let Some(error) = ClientError::from_code(
            response.error_code,
            response.error_message.as_deref(),
            "unregister broker",
        ) {
            return Err(error);
        }
        Ok(())
    }

    /// The controller quorum's leader, epoch, high watermark and each replica's progress
    /// (DescribeQuorum, as `kafka-metadata-quorum describe` asks any broker, which forwards
    /// to the active controller).
    pub async fn describe_quorum(&self) -> Result<QuorumStatus> {
        let connection = self.client().any_connection().await?;
        let version = connection.version_for_key(ApiKey::DescribeQuorum)?;
        let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
        let response = connection.send_version(&request, version).await?;
        if let Some(error) = ClientError::from_code(
            response.error_code,
            response.error_message.as_deref(),
            "describe quorum",
        ) {
            return Err(error);
        }
        let partition = response
            .topics
            .into_iter()
            .flat_map(|topic| topic.partitions)
            .find(|partition| partition.partition_index == 0)
            .ok_or_else(|| ClientError::Decode {
                api: "DescribeQuorum",
                version,
                address: connection.address().to_string(),
                reason: "the answer has no __cluster_metadata-0".to_string(),
            })?;
        if let Some(error) = ClientError::from_code(
            partition.error_code,
            partition.error_message.as_deref(),
            "describe quorum",
        ) {
            return Err(error);
        }
        let replicas =
            |states: Vec<kafka_protocol::messages::describe_quorum_response::ReplicaState>| {
                states
                    .into_iter()
                    .map(|state| QuorumReplicaStatus {
                        node_id: state.replica_id.0,
                        log_end_offset: state.log_end_offset,
                        last_fetch_timestamp: state.last_fetch_timestamp,
                        last_caught_up_timestamp: state.last_caught_up_timestamp,
                    })
                    .collect()
            };
        Ok(QuorumStatus {
            leader_id: partition.leader_id.0,
            leader_epoch: partition.leader_epoch,
            high_watermark: partition.high_watermark,
            voters: replicas(partition.current_voters),
            observers: replicas(partition.observers),
        })
    }
}
