//! ConsumerGroupDescribe (KIP-848): epochs, assignor, members with current and target
//! assignments.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;

use super::consumer_group_heartbeat::ImageTopics;
use crate::group::assignor;
use crate::group::consumer::TopicLookup;
use crate::group::coordinator::{validate_group_id, Group};
use crate::state::Broker;

/// READ, DELETE, DESCRIBE as AclOperation bits.
const GROUP_OPERATIONS_ALL: i32 = (1 << 3) | (1 << 6) | (1 << 8);
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// Member type in v1: 1 = consumer protocol.
const MEMBER_TYPE_CONSUMER: i8 = 1;

fn assignment(value: &assignor::Assignment, topics: &ImageTopics) -> Assignment {
    Assignment::default().with_topic_partitions(
        value
            .iter()
            .map(|(topic_id, partitions)| {
                TopicPartitions::default()
                    .with_topic_id(*topic_id)
                    .with_topic_name(TopicName(StrBytes::from_string(
                        topics.name_of(*topic_id).unwrap_or_default(),
                    )))
                    .with_partitions(partitions.iter().copied().collect())
            })
            .collect(),
    )
}

pub async fn handle(
    broker: &Arc<Broker>,
    request: ConsumerGroupDescribeRequest,
    version: i16,
) -> ConsumerGroupDescribeResponse {
    let loaded = broker.groups().ensure_readable().await;
    let operations = if request.include_authorized_operations {
        GROUP_OPERATIONS_ALL
    } else {
        AUTHORIZED_OPERATIONS_OMITTED
    };
    let topics = ImageTopics(broker.image());
    let groups = request
        .group_ids
        .into_iter()
        .map(|group_id| {
            let id = group_id.0.to_string();
            let error = |code: ErrorCode, message: String| {
                DescribedGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(id.clone())))
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message)))
                    .with_authorized_operations(operations)
            };
            if let Err(code) = loaded {
                return error(code, "the group coordinator is loading".into());
            }
            if let Err(code) = validate_group_id(&id) {
                return error(code, "the group id is empty or too long".into());
            }
            broker
                .groups()
                .read_group(&id, |state| match state.groups.get(&id) {
                    Some(Group::Consumer(group)) => {
                        let members = group
                            .members
                            .values()
                            .map(|m| {
                                let target =
                                    group.target.get(&m.member_id).cloned().unwrap_or_default();
                                let member = Member::default()
                                    .with_member_id(StrBytes::from_string(m.member_id.clone()))
                                    .with_instance_id(
                                        m.instance_id.clone().map(StrBytes::from_string),
                                    )
                                    .with_rack_id(m.rack_id.clone().map(StrBytes::from_string))
                                    .with_member_epoch(m.member_epoch)
                                    .with_client_id(StrBytes::from_string(m.client_id.clone()))
                                    .with_client_host(StrBytes::from_string(m.client_host.clone()))
                                    .with_subscribed_topic_names(
                                        m.subscribed_topic_names
                                            .iter()
                                            .map(|t| TopicName(StrBytes::from_string(t.clone())))
                                            .collect(),
                                    )
                                    .with_subscribed_topic_regex(
                                        m.subscribed_topic_regex.clone().map(StrBytes::from_string),
                                    )
                                    .with_assignment(assignment(&m.assigned, &topics))
                                    .with_target_assignment(assignment(&target, &topics));
                                if version >= 1 {
                                    member.with_member_type(MEMBER_TYPE_CONSUMER)
                                } else {
                                    member
                                }
                            })
                            .collect();
                        DescribedGroup::default()
                            .with_group_id(group_id)
                            .with_group_state(StrBytes::from_static_str(group.state_name()))
                            .with_group_epoch(group.group_epoch)
                            .with_assignment_epoch(group.assignment_epoch)
                            .with_assignor_name(StrBytes::from_string(group.assignor_name.clone()))
                            .with_members(members)
                            .with_authorized_operations(operations)
                    }
                    Some(Group::Classic(_)) => error(
                        ErrorCode::GroupIdNotFound,
                        format!("group {id} is not a consumer group"),
                    ),
                    None => error(ErrorCode::GroupIdNotFound, format!("group {id} not found")),
                })
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
