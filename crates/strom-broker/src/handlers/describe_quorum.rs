//! DescribeQuorum (KIP-595, v0-2): the controller quorum's state, as `kafka-metadata-quorum
//! describe --status/--replication` and `strom cluster quorum` show it. Requires DESCRIBE
//! on the cluster.
//!
//! The only partition is `__cluster_metadata-0`; any other is answered
//! UNKNOWN_TOPIC_OR_PARTITION. On a Raft cluster the answer comes from the active
//! controller (forwarded from any node): the leader and its term (KRaft's leader epoch),
//! the commit point as high watermark, and each voter's and observer's log end offset
//! (Raft index + 1). Fetch and caught-up timestamps are not tracked: -1, which Kafka also
//! answers when it does not know. A single-node broker is its own only voter.

use std::sync::Arc;

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::protocol::StrBytes;
use strom_controller::raft::{QuorumDescription, QuorumReplica};
use strom_controller::{RaftQuorumError, CLUSTER_METADATA_TOPIC_NAME};
use strom_protocol::ErrorCode;
use tracing::warn;

use crate::metadata::Metadata;
use crate::state::Broker;

/// The listener name voters' endpoints are given under (Kafka's conventional one).
const CONTROLLER_LISTENER_NAME: &str = "CONTROLLER";

pub async fn handle(
    broker: &Arc<Broker>,
    request: DescribeQuorumRequest,
    version: i16,
) -> DescribeQuorumResponse {
    let asks_for_metadata_log = request.topics.len() == 1
        && request.topics[0].topic_name.0.as_str() == CLUSTER_METADATA_TOPIC_NAME
        && request.topics[0].partitions.len() == 1
        && request.topics[0].partitions[0].partition_index == 0;
    if !asks_for_metadata_log {
        return partition_errors(&request, ErrorCode::UnknownTopicOrPartition, None);
    }
    let described = match broker.metadata() {
        Metadata::Local(_) => single_voter(broker),
        Metadata::Raft(raft) => match raft.describe_quorum().await {
            Ok(described) => described,
            Err(error) => {
                warn!(%error, "describing the controller quorum failed");
                let code = match &error {
                    RaftQuorumError::NotLeader { .. } | RaftQuorumError::NoQuorum => {
                        ErrorCode::NotLeaderOrFollower
                    }
                    RaftQuorumError::Timeout { .. } => ErrorCode::RequestTimedOut,
                    _ => ErrorCode::UnknownServerError,
                };
                // Error messages exist from v2.
                let message = (version >= 2).then(|| error.to_string());
                return partition_errors(&request, code, message);
            }
        },
    };
    let replica = |replica: &QuorumReplica| {
        ReplicaState::default()
            .with_replica_id(BrokerId(replica.node_id))
            .with_log_end_offset(replica.log_end_offset)
            .with_last_fetch_timestamp(-1)
            .with_last_caught_up_timestamp(-1)
    };
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(described.leader_id))
        .with_leader_epoch(described.leader_epoch)
        .with_high_watermark(described.high_watermark)
        .with_current_voters(described.voters.iter().map(replica).collect())
        .with_observers(described.observers.iter().map(replica).collect());
    // The voters' endpoints exist from v2.
    let nodes = described
        .voters
        .iter()
        .filter_map(|voter| {
            let (host, port) = voter.address.as_deref()?.rsplit_once(':')?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Some(
                Node::default()
                    .with_node_id(BrokerId(voter.node_id))
                    .with_listeners(vec![Listener::default()
                        .with_name(StrBytes::from_static_str(CONTROLLER_LISTENER_NAME))
                        .with_host(StrBytes::from_string(host.to_string()))
                        .with_port(port.parse().ok()?)]),
            )
        })
        .filter(|_| version >= 2)
        .collect();
    DescribeQuorumResponse::default()
        .with_topics(vec![TopicData::default()
            .with_topic_name(request.topics[0].topic_name.clone())
            .with_partitions(vec![partition])])
        .with_nodes(nodes)
}

/// A single-node broker: the local metadata log has one voter, this node, always leading.
fn single_voter(broker: &Broker) -> QuorumDescription {
    let end = broker
        .image()
        .last_offset()
        .map_or(0, |offset| offset as i64 + 1);
    let this = QuorumReplica {
        node_id: broker.config().node_id,
        log_end_offset: end,
        address: None,
    };
    QuorumDescription {
        leader_id: broker.config().node_id,
        leader_epoch: 1,
        high_watermark: end,
        voters: vec![this],
        observers: Vec::new(),
    }
}

/// The same error for every partition asked about.
fn partition_errors(
    request: &DescribeQuorumRequest,
    code: ErrorCode,
    message: Option<String>,
) -> DescribeQuorumResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            TopicData::default()
                .with_topic_name(topic.topic_name.clone())
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .map(|partition| {
                            PartitionData::default()
                                .with_partition_index(partition.partition_index)
                                .with_error_code(code.code())
                                .with_error_message(message.clone().map(StrBytes::from_string))
                                .with_leader_id(BrokerId(-1))
                                .with_leader_epoch(-1)
                                .with_high_watermark(-1)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeQuorumResponse::default().with_topics(topics)
}
