//! Kafka's authorisation rules for the group APIs (see [`super::apis`] for how the router
//! applies them): READ on the group to join, sync, heartbeat, leave and commit; DESCRIBE to
//! find the coordinator, describe and fetch offsets; DELETE to delete; READ on each topic
//! whose offsets are committed or deleted.

use kafka_protocol::messages::*;
use strom_controller::acl::{operation as op, resource_type as rt};

use super::apis::{split_off, topic_name, GROUP_DENIED, TOPIC_DENIED, TRANSACTIONAL_ID_DENIED};
use super::Check;

/// JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ConsumerGroupHeartbeat: READ on the group.
pub fn group_read(check: &Check, group_id: &str) -> bool {
    !check.active() || check.allows(op::READ, rt::GROUP, group_id)
}

/// The group of an OffsetCommit may be read, and each topic too; denied topics come back.
pub fn offset_commit(
    check: &Check,
    request: &mut OffsetCommitRequest,
) -> Result<Vec<offset_commit_response::OffsetCommitResponseTopic>, OffsetCommitResponse> {
    if !check.active() {
        return Ok(Vec::new());
    }
    let answer = |topics: Vec<offset_commit_request::OffsetCommitRequestTopic>, code: i16| {
        topics
            .into_iter()
            .map(|topic| {
                offset_commit_response::OffsetCommitResponseTopic::default()
                    .with_name(topic.name)
                    .with_topic_id(topic.topic_id)
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|partition| {
                                offset_commit_response::OffsetCommitResponsePartition::default()
                                    .with_partition_index(partition.partition_index)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect::<Vec<_>>()
    };
    if !check.allows(op::READ, rt::GROUP, &request.group_id) {
        let topics = std::mem::take(&mut request.topics);
        return Err(OffsetCommitResponse::default().with_topics(answer(topics, GROUP_DENIED)));
    }
    let denied = split_off(&mut request.topics, |topic| {
        topic_name(check, &topic.name, topic.topic_id)
            .is_none_or(|name| check.allows(op::READ, rt::TOPIC, &name))
    });
    Ok(answer(denied, TOPIC_DENIED))
}

/// OffsetFetch: DESCRIBE on the group(s); committed offsets of topics the principal may not
/// describe are hidden (all-topics fetch) or answered TOPIC_AUTHORIZATION_FAILED (named).
/// `Err` refuses a single-group (v0-7) request whole.
pub fn offset_fetch(
    check: &Check,
    request: &mut OffsetFetchRequest,
    version: i16,
) -> Result<Vec<offset_fetch_response::OffsetFetchResponseGroup>, OffsetFetchResponse> {
    if !check.active() {
        return Ok(Vec::new());
    }
    if version < 8 {
        if !check.allows(op::DESCRIBE, rt::GROUP, &request.group_id) {
            let topics = request
                .topics
                .iter()
                .flatten()
                .map(|topic| {
                    offset_fetch_response::OffsetFetchResponseTopic::default()
                        .with_name(topic.name.clone())
                        .with_partitions(
                            topic
                                .partition_indexes
                                .iter()
                                .map(|p| {
                                    offset_fetch_response::OffsetFetchResponsePartition::default()
                                        .with_partition_index(*p)
                                        .with_committed_offset(-1)
                                        .with_committed_leader_epoch(-1)
                                        .with_error_code(GROUP_DENIED)
                                })
                                .collect(),
                        )
                })
                .collect();
            return Err(OffsetFetchResponse::default()
                .with_error_code(GROUP_DENIED)
                .with_topics(if version < 2 { topics } else { Vec::new() }));
        }
        return Ok(Vec::new());
    }
    Ok(split_off(&mut request.groups, |group| {
        check.allows(op::DESCRIBE, rt::GROUP, &group.group_id)
    })
    .into_iter()
    .map(|group| {
        offset_fetch_response::OffsetFetchResponseGroup::default()
            .with_group_id(group.group_id)
            .with_error_code(GROUP_DENIED)
    })
    .collect())
}

/// Hides or refuses, in an OffsetFetch answer, the topics the principal may not describe.
pub fn offset_fetch_answer(check: &Check, response: &mut OffsetFetchResponse) {
    if !check.active() {
        return;
    }
    for topic in &mut response.topics {
        if !check.allows(op::DESCRIBE, rt::TOPIC, &topic.name) {
            for partition in &mut topic.partitions {
                partition.committed_offset = -1;
                partition.committed_leader_epoch = -1;
                partition.metadata = None;
                partition.error_code = TOPIC_DENIED;
            }
        }
    }
    for group in &mut response.groups {
        for topic in &mut group.topics {
            if !check.allows(op::DESCRIBE, rt::TOPIC, &topic.name) {
                for partition in &mut topic.partitions {
                    partition.committed_offset = -1;
                    partition.committed_leader_epoch = -1;
                    partition.metadata = None;
                    partition.error_code = TOPIC_DENIED;
                }
            }
        }
    }
}

/// FindCoordinator: DESCRIBE on the group or transactional id. v0-3: `Some(code)` refuses
/// the request; v4+: denied keys are taken out and answered here.
pub fn find_coordinator(
    check: &Check,
    request: &mut FindCoordinatorRequest,
    version: i16,
) -> (Option<i16>, Vec<find_coordinator_response::Coordinator>) {
    if !check.active() {
        return (None, Vec::new());
    }
    let (resource, code) = match request.key_type {
        1 => (rt::TRANSACTIONAL_ID, TRANSACTIONAL_ID_DENIED),
        _ => (rt::GROUP, GROUP_DENIED),
    };
    if version < 4 {
        return (
            (!check.allows(op::DESCRIBE, resource, &request.key)).then_some(code),
            Vec::new(),
        );
    }
    let denied = split_off(&mut request.coordinator_keys, |key| {
        check.allows(op::DESCRIBE, resource, key)
    });
    (
        None,
        denied
            .into_iter()
            .map(|key| {
                find_coordinator_response::Coordinator::default()
                    .with_key(key)
                    .with_node_id(kafka_protocol::messages::BrokerId(-1))
                    .with_port(-1)
                    .with_error_code(code)
            })
            .collect(),
    )
}

/// DescribeGroups: DESCRIBE on each group.
pub fn describe_groups(
    check: &Check,
    request: &mut DescribeGroupsRequest,
) -> Vec<describe_groups_response::DescribedGroup> {
    if !check.active() {
        return Vec::new();
    }
    split_off(&mut request.groups, |group| {
        check.allows(op::DESCRIBE, rt::GROUP, group)
    })
    .into_iter()
    .map(|group| {
        describe_groups_response::DescribedGroup::default()
            .with_group_id(group)
            .with_error_code(GROUP_DENIED)
            .with_authorized_operations(i32::MIN)
    })
    .collect()
}

/// ConsumerGroupDescribe: DESCRIBE on each group.
pub fn consumer_group_describe(
    check: &Check,
    request: &mut ConsumerGroupDescribeRequest,
) -> Vec<consumer_group_describe_response::DescribedGroup> {
    if !check.active() {
        return Vec::new();
    }
    split_off(&mut request.group_ids, |group| {
        check.allows(op::DESCRIBE, rt::GROUP, group)
    })
    .into_iter()
    .map(|group| {
        consumer_group_describe_response::DescribedGroup::default()
            .with_group_id(group)
            .with_error_code(GROUP_DENIED)
            .with_authorized_operations(i32::MIN)
    })
    .collect()
}

/// ListGroups: everything with DESCRIBE on the cluster, else the groups the principal may
/// describe.
pub fn list_groups_answer(check: &Check, response: &mut ListGroupsResponse) {
    if !check.active()
        || check.allows_quietly(
            op::DESCRIBE,
            rt::CLUSTER,
            strom_controller::acl::CLUSTER_RESOURCE_NAME,
        )
    {
        return;
    }
    response
        .groups
        .retain(|group| check.allows_quietly(op::DESCRIBE, rt::GROUP, &group.group_id));
}

/// DeleteGroups: DELETE on each group.
pub fn delete_groups(
    check: &Check,
    request: &mut DeleteGroupsRequest,
) -> Vec<delete_groups_response::DeletableGroupResult> {
    if !check.active() {
        return Vec::new();
    }
    split_off(&mut request.groups_names, |group| {
        check.allows(op::DELETE, rt::GROUP, group)
    })
    .into_iter()
    .map(|group| {
        delete_groups_response::DeletableGroupResult::default()
            .with_group_id(group)
            .with_error_code(GROUP_DENIED)
    })
    .collect()
}

/// OffsetDelete: DELETE on the group (`Some(code)` refuses it), READ on each topic.
pub fn offset_delete(
    check: &Check,
    request: &mut OffsetDeleteRequest,
) -> Result<Vec<offset_delete_response::OffsetDeleteResponseTopic>, i16> {
    if !check.active() {
        return Ok(Vec::new());
    }
    if !check.allows(op::DELETE, rt::GROUP, &request.group_id) {
        return Err(GROUP_DENIED);
    }
    Ok(split_off(&mut request.topics, |topic| {
        check.allows(op::READ, rt::TOPIC, &topic.name)
    })
    .into_iter()
    .map(|topic| {
        offset_delete_response::OffsetDeleteResponseTopic::default()
            .with_name(topic.name)
            .with_partitions(
                topic
                    .partitions
                    .iter()
                    .map(|partition| {
                        offset_delete_response::OffsetDeleteResponsePartition::default()
                            .with_partition_index(partition.partition_index)
                            .with_error_code(TOPIC_DENIED)
                    })
                    .collect(),
            )
    })
    .collect())
}

/// ConsumerGroupHeartbeat (KIP-848): DESCRIBE on every subscribed topic, else the whole
/// heartbeat answers TOPIC_AUTHORIZATION_FAILED naming the topics (as Kafka does).
pub fn consumer_group_heartbeat_topics(
    check: &Check,
    request: &ConsumerGroupHeartbeatRequest,
) -> Option<ConsumerGroupHeartbeatResponse> {
    if !check.active() {
        return None;
    }
    let denied: Vec<&str> = request
        .subscribed_topic_names
        .iter()
        .flatten()
        .map(|name| name.as_str())
        .filter(|name| !check.allows(op::DESCRIBE, rt::TOPIC, name))
        .collect();
    if denied.is_empty() {
        return None;
    }
    Some(
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(TOPIC_DENIED)
            .with_error_message(Some(kafka_protocol::protocol::StrBytes::from_string(
                format!("Unauthorized topics: {}", denied.join(", ")),
            ))),
    )
}
