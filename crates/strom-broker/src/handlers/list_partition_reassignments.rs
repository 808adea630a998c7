//! ListPartitionReassignments (KIP-455): the partitions whose replicas are moving, with the
//! replicas being added and removed. Requires DESCRIBE on the cluster.
//!
//! Null `topics` lists every move in progress; otherwise only moves among the partitions
//! named (unknown ones, and those not moving, are left out, as in Kafka). On a Raft
//! cluster the list is read on the controller leader, so a move just started through
//! another node is seen.

use std::sync::Arc;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_controller::{list_reassignments, OngoingReassignment, RaftQuorumError};
use strom_protocol::ErrorCode;
use tracing::warn;
use uuid::Uuid;

use crate::authz::Check;
use crate::metadata::Metadata;
use crate::state::Broker;
use strom_controller::acl::operation as acl_op;

/// Most partitions one request may name (each is 4 bytes on the wire; this bounds the
/// filter the controller gets).
const PARTITIONS_PER_REQUEST_MAX: usize = 100_000;

pub async fn handle(
    broker: &Arc<Broker>,
    check: &Check<'_>,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    if !crate::authz::apis::cluster(check, acl_op::DESCRIBE) {
        return refuse(
            ErrorCode::ClusterAuthorizationFailed,
            "ListPartitionReassignments needs DESCRIBE on the cluster",
        );
    }
    let image = broker.image();
    let only: Option<Vec<(Uuid, i32)>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .filter_map(|topic| {
                let topic_id = image.topic(&topic.name.0)?.topic_id;
                Some(
                    topic
                        .partition_indexes
                        .iter()
                        .map(move |partition| (topic_id, *partition)),
                )
            })
            .flatten()
            .collect()
    });
    if only
        .as_ref()
        .is_some_and(|only| only.len() > PARTITIONS_PER_REQUEST_MAX)
    {
        return refuse(
            ErrorCode::InvalidRequest,
            &format!("at most {PARTITIONS_PER_REQUEST_MAX} partitions per request"),
        );
    }
    let ongoing = match broker.metadata() {
        Metadata::Local(_) => list_reassignments(&image, only.as_deref()),
        // Nothing named that exists: nothing to ask the controller.
        Metadata::Raft(_) if only.as_ref().is_some_and(Vec::is_empty) => Vec::new(),
        Metadata::Raft(raft) => match raft.list_partition_reassignments(only).await {
            Ok(ongoing) => ongoing,
            Err(error) => {
                warn!(%error, "listing partition reassignments failed");
                let code = match &error {
                    RaftQuorumError::NotLeader { .. } | RaftQuorumError::NoQuorum => {
                        ErrorCode::NotController
                    }
                    RaftQuorumError::Timeout { .. } => ErrorCode::RequestTimedOut,
                    _ => ErrorCode::UnknownServerError,
                };
                return refuse(code, &error.to_string());
            }
        },
    };
    ListPartitionReassignmentsResponse::default()
        .with_error_code(0)
        .with_topics(group_by_topic(ongoing))
}

fn refuse(code: ErrorCode, message: &str) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message.to_string())))
}

/// One entry per topic; the list comes ordered by topic name, then partition.
fn group_by_topic(ongoing: Vec<OngoingReassignment>) -> Vec<OngoingTopicReassignment> {
    let brokers = |ids: Vec<i32>| ids.into_iter().map(BrokerId).collect::<Vec<_>>();
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    for moving in ongoing {
        let partition = OngoingPartitionReassignment::default()
            .with_partition_index(moving.partition)
            .with_replicas(brokers(moving.replicas))
            .with_adding_replicas(brokers(moving.adding))
            .with_removing_replicas(brokers(moving.removing));
        match topics.last_mut() {
            Some(topic) if topic.name.0.as_str() == moving.topic => {
                topic.partitions.push(partition)
            }
            _ => topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(StrBytes::from_string(moving.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    topics
}
