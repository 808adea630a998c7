//! OffsetDelete: removes committed offsets of partitions the group is not subscribed to.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use strom_protocol::ErrorCode;
use tracing::warn;

use crate::group::persist;
use crate::state::Broker;

pub async fn handle(broker: &Arc<Broker>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    if let Err(error) = broker.groups.ensure_readable(broker).await {
        return OffsetDeleteResponse::default().with_error_code(error.code());
    }
    let group_id = request.group_id.0.to_string();
    let coordinator = &broker.groups;
    let mut state = coordinator.state.lock();
    if let Err(error) = state.check_offset_delete(&group_id) {
        return OffsetDeleteResponse::default().with_error_code(error.code());
    }
    let image = broker.image();
    let mut to_delete = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let subscribed = state.is_subscribed(&group_id, &name);
        let known = image.topic(&name);
        let partitions = topic
            .partitions
            .into_iter()
            .map(|p| {
                let index = p.partition_index;
                let exists = known.is_some_and(|t| index >= 0 && index < t.partition_count());
                let code = if subscribed {
                    ErrorCode::GroupSubscribedToTopic.code()
                } else if !exists {
                    ErrorCode::UnknownTopicOrPartition.code()
                } else {
                    if state.committed(&group_id, &name, index).is_some() {
                        to_delete.push((name.clone(), index));
                    }
                    0
                };
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(index)
                    .with_error_code(code)
            })
            .collect();
        topics.push(
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    match persist::write_offset_tombstones(broker, coordinator, &group_id, &to_delete) {
        Ok(()) => {
            for (topic, partition) in &to_delete {
                state.remove_offset(&group_id, topic, *partition);
            }
        }
        Err(error) => {
            warn!(group = %group_id, %error, "offset delete not written");
            return OffsetDeleteResponse::default()
                .with_error_code(ErrorCode::CoordinatorNotAvailable.code());
        }
    }
    OffsetDeleteResponse::default().with_topics(topics)
}
