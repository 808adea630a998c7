//! OffsetDelete: removes committed offsets of partitions the group is not subscribed to.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use strom_protocol::ErrorCode;
use tracing::warn;

use strom_coordinator::log::Pending;

use crate::state::Broker;

pub async fn handle(broker: &Arc<Broker>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    if let Err(error) = broker.groups().ensure_readable().await {
        return OffsetDeleteResponse::default().with_error_code(error.code());
    }
    let group_id = request.group_id.0.to_string();
    let (pending, topics) = match delete_locked(broker, &group_id, request) {
        Ok(deleted) => deleted,
        Err(code) => return OffsetDeleteResponse::default().with_error_code(code.code()),
    };
    if let Err(error) = pending.committed().await {
        warn!(group = %group_id, %error, "offset delete not committed");
        return OffsetDeleteResponse::default()
            .with_error_code(crate::group::not_committed_code(&error).code());
    }
    OffsetDeleteResponse::default().with_topics(topics)
}

/// The checks, the tombstones' append and the state change, under the coordinator lock;
/// the wait for the replicas comes after it.
fn delete_locked(
    broker: &Broker,
    group_id: &str,
    request: OffsetDeleteRequest,
) -> Result<(Pending, Vec<OffsetDeleteResponseTopic>), ErrorCode> {
    let group_id = group_id.to_string();
    let mut state = broker.groups().lock_group(&group_id)?;
    state.check_offset_delete(&group_id)?;
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
    match state.write_offset_tombstones(&group_id, &to_delete) {
        Ok(pending) => {
            for (topic, partition) in &to_delete {
                state.remove_offset(&group_id, topic, *partition);
            }
            Ok((pending, topics))
        }
        Err(error) => {
            warn!(group = %group_id, %error, "offset delete not written");
            Err(ErrorCode::CoordinatorNotAvailable)
        }
    }
}
