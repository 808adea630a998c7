//! Partition reassignment operations of [`Admin`] (KIP-455): move partitions to new replica
//! sets (AlterPartitionReassignments) and list the moves in progress
//! (ListPartitionReassignments).

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, ApiKey, BrokerId, ListPartitionReassignmentsRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::error::{error_code_name, ClientError, Result};

/// One partition to move: its new replicas (the first is the preferred leader), or `None`
/// to cancel the move in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMove {
    pub topic: String,
    pub partition: i32,
    pub replicas: Option<Vec<i32>>,
}

/// One partition's answer to a reassignment request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentResult {
    pub topic: String,
    pub partition: i32,
    /// 0: started (or cancelled). 39 INVALID_REPLICA_ASSIGNMENT, 3
    /// UNKNOWN_TOPIC_OR_PARTITION, 85 NO_REASSIGNMENT_IN_PROGRESS, ...
    pub error_code: i16,
    pub error_message: Option<String>,
}

impl ReassignmentResult {
    /// The Kafka name of the code (`NONE` when accepted).
    pub fn error_name(&self) -> String {
        error_code_name(self.error_code)
    }
}

/// A partition whose replicas are moving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: i32,
    /// Target and original replicas together.
    pub replicas: Vec<i32>,
    /// Replicas still catching up.
    pub adding: Vec<i32>,
    /// Replicas that leave once the added ones are in sync.
    pub removing: Vec<i32>,
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

impl Admin {
    /// Starts (or cancels) partition moves; one result per partition, grouped by topic in
    /// order of first appearance. A move completes on its own once the new replicas have
    /// caught up; [`Admin::list_partition_reassignments`] shows the moves in progress.
    pub async fn alter_partition_reassignments(
        &self,
        moves: &[PartitionMove],
    ) -> Result<Vec<ReassignmentResult>> {
        let connection = self.client().controller_connection().await?;
        let version = connection.version_for_key(ApiKey::AlterPartitionReassignments)?;
        let mut topics: Vec<ReassignableTopic> = Vec::new();
        for wanted in moves {
            let partition = ReassignablePartition::default()
                .with_partition_index(wanted.partition)
                .with_replicas(
                    wanted
                        .replicas
                        .as_ref()
                        .map(|replicas| replicas.iter().copied().map(BrokerId).collect()),
                );
            match topics
                .iter_mut()
                .find(|t| t.name.0.as_str() == wanted.topic)
            {
                Some(topic) => topic.partitions.push(partition),
                None => topics.push(
                    ReassignableTopic::default()
                        .with_name(name(&wanted.topic))
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let mut request = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(self.operation_timeout.as_millis().min(i32::MAX as u128) as i32)
            .with_topics(topics);
        if version >= 1 {
            request.allow_replication_factor_change = true;
        }
        let response = connection.send_version(&request, version).await?;
        if let Some(error) = ClientError::from_code(
            response.error_code,
            response.error_message.as_deref(),
            "reassign partitions",
        ) {
            return Err(error);
        }
        let mut results = Vec::new();
        for topic in response.responses {
            for partition in topic.partitions {
                results.push(ReassignmentResult {
                    topic: topic.name.0.to_string(),
                    partition: partition.partition_index,
                    error_code: partition.error_code,
                    error_message: partition
                        .error_message
                        .map(|m| m.to_string())
                        .filter(|m| !m.is_empty()),
                });
            }
        }
        for result in results.iter().filter(|r| r.error_code == 0) {
            self.client().invalidate_topic(&result.topic);
        }
        Ok(results)
    }

    /// The partition moves in progress: all of them, or only among `only` (topic,
    /// partitions).
    pub async fn list_partition_reassignments(
        &self,
        only: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<OngoingReassignment>> {
        let connection = self.client().controller_connection().await?;
        let version = connection.version_for_key(ApiKey::ListPartitionReassignments)?;
        let request = ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(self.operation_timeout.as_millis().min(i32::MAX as u128) as i32)
            .with_topics(only.map(|only| {
                only.iter()
                    .map(|(topic, partitions)| {
                        ListPartitionReassignmentsTopics::default()
                            .with_name(name(topic))
                            .with_partition_indexes(partitions.clone())
                    })
                    .collect()
            }));
        let response = connection.send_version(&request, version).await?;
        if let Some(error) = ClientError::from_code(
            response.error_code,
            response.error_message.as_deref(),
            "list partition reassignments",
        ) {
            return Err(error);
        }
        let ids = |brokers: Vec<BrokerId>| brokers.into_iter().map(|b| b.0).collect();
        let mut ongoing = Vec::new();
        for topic in response.topics {
            for partition in topic.partitions {
                ongoing.push(OngoingReassignment {
                    topic: topic.name.0.to_string(),
                    partition: partition.partition_index,
                    replicas: ids(partition.replicas),
                    adding: ids(partition.adding_replicas),
                    removing: ids(partition.removing_replicas),
                });
            }
        }
        Ok(ongoing)
    }
}
