//! ConsumerGroupHeartbeat (KIP-848): join, stay, reconcile and leave in one API.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;
use strom_controller::MetadataImage;
use uuid::Uuid;

use crate::group::consumer::{Heartbeat, HeartbeatResult, TopicLookup};
use crate::group::error_code;
use crate::state::{now_ms, Broker};

/// The metadata image as the coordinator's topic lookup.
pub struct ImageTopics(pub Arc<MetadataImage>);

impl TopicLookup for ImageTopics {
    fn by_name(&self, name: &str) -> Option<(Uuid, i32)> {
        self.0
            .topic(name)
            .map(|t| (t.topic_id, t.partition_count()))
    }
    fn name_of(&self, topic_id: Uuid) -> Option<String> {
        self.0.topic_by_id(topic_id).map(|t| t.name.clone())
    }
    fn names(&self) -> Vec<String> {
        self.0.topics().map(|t| t.name.clone()).collect()
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    request: ConsumerGroupHeartbeatRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> ConsumerGroupHeartbeatResponse {
    let result = match broker.groups().ensure_coordinator(&request.group_id).await {
        Err(error) => HeartbeatResult::error(error, "the group coordinator is loading"),
        Ok(()) => {
            let heartbeat = Heartbeat {
                group_id: request.group_id.0.to_string(),
                member_id: request.member_id.to_string(),
                member_epoch: request.member_epoch,
                instance_id: request.instance_id.map(|i| i.to_string()),
                rack_id: request.rack_id.map(|r| r.to_string()),
                rebalance_timeout_ms: request.rebalance_timeout_ms,
                subscribed_topic_names: request
                    .subscribed_topic_names
                    .map(|names| names.into_iter().map(|n| n.0.to_string()).collect()),
                subscribed_topic_regex: request
                    .subscribed_topic_regex
                    .map(|r| r.to_string())
                    .filter(|_| version >= 1),
                server_assignor: request.server_assignor.map(|a| a.to_string()),
                owned: request.topic_partitions.map(|owned| {
                    owned
                        .into_iter()
                        .map(|tp| (tp.topic_id, tp.partitions))
                        .collect()
                }),
                client_id: client_id.to_string(),
                client_host: client_host.to_string(),
            };
            let topics = ImageTopics(broker.image());
            let group_id = request.group_id.0.to_string();
            broker
                .groups()
                .run(&group_id, true, |state| {
                    state.consumer_heartbeat(now_ms(), heartbeat, &topics)
                })
                .await
                .unwrap_or_else(|code| {
                    HeartbeatResult::error(code, "the group's records were not committed")
                })
        }
    };
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(error_code(result.error))
        .with_error_message(result.error_message.map(StrBytes::from_string))
        .with_member_id(result.member_id.map(StrBytes::from_string))
        .with_member_epoch(result.member_epoch)
        .with_heartbeat_interval_ms(result.heartbeat_interval_ms)
        .with_assignment(result.assignment.map(|assignment| {
            Assignment::default().with_topic_partitions(
                assignment
                    .into_iter()
                    .map(|(topic_id, partitions)| {
                        TopicPartitions::default()
                            .with_topic_id(topic_id)
                            .with_partitions(partitions.into_iter().collect())
                    })
                    .collect(),
            )
        }))
}
