//! Kafka's per-API authorisation rules, applied by the router around the handlers.
//!
//! Requests with per-resource entries are split: the denied entries are taken out of the
//! request before the handler sees it and come back as `*_AUTHORIZATION_FAILED` entries
//! appended to its response (clients match entries by name, not position). Requests that
//! name one resource (a group, the cluster) are refused whole by the router with the
//! response type's top-level error code. Every function is a no-op when [`Check::active`] is
//! false (authoriser off, or a super user).

use std::collections::HashSet;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strom_controller::acl::{operation as op, resource_type as rt};
use strom_protocol::ErrorCode;

use super::Check;

pub use super::groups::*;

pub const TOPIC_DENIED: i16 = 29;
pub const GROUP_DENIED: i16 = 30;
pub const CLUSTER_DENIED: i16 = 31;
pub const TRANSACTIONAL_ID_DENIED: i16 = 53;

const _: () = {
    assert!(TOPIC_DENIED == 29 && GROUP_DENIED == 30 && CLUSTER_DENIED == 31);
};

/// The name of a topic named either way (v13+ Produce/Fetch use ids): the id's name from
/// the image, `None` for an unknown id (the handler answers UNKNOWN_TOPIC_ID).
pub(super) fn topic_name(check: &Check, name: &str, id: uuid::Uuid) -> Option<String> {
    if !name.is_empty() || id.is_nil() {
        return Some(name.to_string());
    }
    check
        .image()
        .and_then(|image| image.topic_by_id(id).map(|topic| topic.name.clone()))
}

/// Moves the entries of `items` that `allowed` refuses out of `items`.
pub(super) fn split_off<T>(items: &mut Vec<T>, mut allowed: impl FnMut(&T) -> bool) -> Vec<T> {
    let (keep, denied): (Vec<T>, Vec<T>) =
        std::mem::take(items).into_iter().partition(|t| allowed(t));
    *items = keep;
    denied
}

// ---- data path ------------------------------------------------------------------------

/// Produce: WRITE on each topic, and WRITE on the transactional id if there is one.
pub fn produce(
    check: &Check,
    request: &mut ProduceRequest,
) -> Vec<produce_response::TopicProduceResponse> {
    if !check.active() {
        return Vec::new();
    }
    let code = match &request.transactional_id {
        Some(id) if !check.allows(op::WRITE, rt::TRANSACTIONAL_ID, id) => {
            Some(TRANSACTIONAL_ID_DENIED)
        }
        _ => None,
    };
    let denied = split_off(&mut request.topic_data, |topic| {
        code.is_none()
            && topic_name(check, &topic.name, topic.topic_id)
                .is_none_or(|name| check.allows(op::WRITE, rt::TOPIC, &name))
    });
    denied
        .into_iter()
        .map(|topic| {
            produce_response::TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(
                    topic
                        .partition_data
                        .iter()
                        .map(|partition| {
                            produce_response::PartitionProduceResponse::default()
                                .with_index(partition.index)
                                .with_error_code(code.unwrap_or(TOPIC_DENIED))
                                .with_base_offset(-1)
                                .with_log_append_time_ms(-1)
                                .with_log_start_offset(-1)
                        })
                        .collect(),
                )
        })
        .collect()
}

/// What a fetch may not read.
pub enum FetchDenial {
    /// A replica fetch without CLUSTER_ACTION: the whole request.
    Cluster,
    /// Topics without READ.
    Topics(Vec<fetch_response::FetchableTopicResponse>),
}

/// Fetch: READ on each topic; CLUSTER_ACTION for a follower's fetch.
pub fn fetch(check: &Check, request: &mut FetchRequest) -> FetchDenial {
    if !check.active() {
        return FetchDenial::Topics(Vec::new());
    }
    if (request.replica_id.0 >= 0 || request.replica_state.replica_id.0 >= 0)
        && !check.allows_cluster(op::CLUSTER_ACTION)
    {
        return FetchDenial::Cluster;
    }
    let denied = split_off(&mut request.topics, |topic| {
        topic_name(check, &topic.topic, topic.topic_id)
            .is_none_or(|name| check.allows(op::READ, rt::TOPIC, &name))
    });
    FetchDenial::Topics(
        denied
            .into_iter()
            .map(|topic| {
                fetch_response::FetchableTopicResponse::default()
                    .with_topic(topic.topic)
                    .with_topic_id(topic.topic_id)
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|partition| {
                                fetch_response::PartitionData::default()
                                    .with_partition_index(partition.partition)
                                    .with_error_code(TOPIC_DENIED)
                                    .with_high_watermark(-1)
                                    .with_last_stable_offset(-1)
                                    .with_log_start_offset(-1)
                                    .with_preferred_read_replica(BrokerId(-1))
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

/// The part of a Metadata request the principal may not see.
#[derive(Default)]
pub struct MetadataDenial {
    /// Named topics the principal may describe (and create, when missing); `None` for an
    /// "all topics" request, whose answer is filtered instead.
    pub visible: Option<HashSet<String>>,
    pub denied: Vec<metadata_response::MetadataResponseTopic>,
    active: bool,
}

/// Metadata: DESCRIBE on each topic; auto-creating a missing topic also needs CREATE on the
/// cluster or the topic. Unauthorised named topics answer TOPIC_AUTHORIZATION_FAILED;
/// unauthorised topics vanish from "all topics" answers.
pub fn metadata(
    check: &Check,
    request: &mut MetadataRequest,
    version: i16,
    auto_create_enabled: bool,
) -> MetadataDenial {
    if !check.active() {
        return MetadataDenial::default();
    }
    let all_topics = match &request.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    if all_topics {
        return MetadataDenial {
            active: true,
            ..MetadataDenial::default()
        };
    }
    let auto_create = auto_create_enabled && (version < 4 || request.allow_auto_topic_creation);
    let image = check.image().expect("active checks hold an image").clone();
    let may_create_any = auto_create
        && check.allows_quietly(
            op::CREATE,
            rt::CLUSTER,
            strom_controller::acl::CLUSTER_RESOURCE_NAME,
        );
    let mut visible = HashSet::new();
    let mut denied = Vec::new();
    if let Some(topics) = request.topics.as_mut() {
        topics.retain(|topic| {
            let name = match &topic.name {
                Some(name) => name.to_string(),
                None => match image.topic_by_id(topic.topic_id) {
                    Some(known) => known.name.clone(),
                    None => return true,
                },
            };
            let exists = image.topic(&name).is_some();
            let allowed = check.allows(op::DESCRIBE, rt::TOPIC, &name)
                && (exists
                    || !auto_create
                    || may_create_any
                    || check.allows(op::CREATE, rt::TOPIC, &name));
            if allowed {
                visible.insert(name);
            } else {
                denied.push(
                    metadata_response::MetadataResponseTopic::default()
                        .with_error_code(TOPIC_DENIED)
                        .with_name(topic.name.clone())
                        .with_topic_id(topic.topic_id)
                        .with_topic_authorized_operations(i32::MIN),
                );
            }
            allowed
        });
    }
    MetadataDenial {
        visible: Some(visible),
        denied,
        active: true,
    }
}

/// Applies a [`MetadataDenial`] to the handler's answer.
pub fn metadata_answer(check: &Check, denial: MetadataDenial, response: &mut MetadataResponse) {
    if !denial.active {
        return;
    }
    match &denial.visible {
        None => response.topics.retain(|topic| {
            topic
                .name
                .as_ref()
                .is_none_or(|name| check.allows_quietly(op::DESCRIBE, rt::TOPIC, name))
        }),
        Some(visible) => response.topics.retain(|topic| {
            topic
                .name
                .as_ref()
                .is_none_or(|name| visible.contains(name.as_str()))
        }),
    }
    for topic in &mut response.topics {
        if let Some(name) = &topic.name {
            topic.topic_authorized_operations =
                authorized_operations(check, rt::TOPIC, name, topic.topic_authorized_operations);
        }
    }
    response.cluster_authorized_operations =
        authorized_cluster_operations(check, response.cluster_authorized_operations);
    response.topics.extend(denial.denied);
}

/// ListOffsets: DESCRIBE on each topic.
pub fn list_offsets(
    check: &Check,
    request: &mut ListOffsetsRequest,
) -> Vec<list_offsets_response::ListOffsetsTopicResponse> {
    if !check.active() {
        return Vec::new();
    }
    split_off(&mut request.topics, |topic| {
        check.allows(op::DESCRIBE, rt::TOPIC, &topic.name)
    })
    .into_iter()
    .map(|topic| {
        list_offsets_response::ListOffsetsTopicResponse::default()
            .with_name(topic.name)
            .with_partitions(
                topic
                    .partitions
                    .iter()
                    .map(|partition| {
                        list_offsets_response::ListOffsetsPartitionResponse::default()
                            .with_partition_index(partition.partition_index)
                            .with_error_code(TOPIC_DENIED)
                            .with_timestamp(-1)
                            .with_offset(-1)
                            .with_leader_epoch(-1)
                    })
                    .collect(),
            )
    })
    .collect()
}

/// OffsetForLeaderEpoch: DESCRIBE on each topic (CLUSTER_ACTION for a follower).
pub fn offset_for_leader_epoch(
    check: &Check,
    request: &mut OffsetForLeaderEpochRequest,
) -> Vec<offset_for_leader_epoch_response::OffsetForLeaderTopicResult> {
    if !check.active() {
        return Vec::new();
    }
    let follower_allowed = request.replica_id.0 < 0 || check.allows_cluster(op::CLUSTER_ACTION);
    split_off(&mut request.topics, |topic| {
        follower_allowed && check.allows(op::DESCRIBE, rt::TOPIC, &topic.topic)
    })
    .into_iter()
    .map(|topic| {
        offset_for_leader_epoch_response::OffsetForLeaderTopicResult::default()
            .with_topic(topic.topic)
            .with_partitions(
                topic
                    .partitions
                    .iter()
                    .map(|partition| {
                        offset_for_leader_epoch_response::EpochEndOffset::default()
                            .with_error_code(if follower_allowed {
                                TOPIC_DENIED
                            } else {
                                CLUSTER_DENIED
                            })
                            .with_partition(partition.partition)
                            .with_leader_epoch(-1)
                            .with_end_offset(-1)
                    })
                    .collect(),
            )
    })
    .collect()
}

/// DeleteRecords: DELETE on each topic.
pub fn delete_records(
    check: &Check,
    request: &mut DeleteRecordsRequest,
) -> Vec<delete_records_response::DeleteRecordsTopicResult> {
    if !check.active() {
        return Vec::new();
    }
    split_off(&mut request.topics, |topic| {
        check.allows(op::DELETE, rt::TOPIC, &topic.name)
    })
    .into_iter()
    .map(|topic| {
        delete_records_response::DeleteRecordsTopicResult::default()
            .with_name(topic.name)
            .with_partitions(
                topic
                    .partitions
                    .iter()
                    .map(|partition| {
                        delete_records_response::DeleteRecordsPartitionResult::default()
                            .with_partition_index(partition.partition_index)
                            .with_low_watermark(-1)
                            .with_error_code(TOPIC_DENIED)
                    })
                    .collect(),
            )
    })
    .collect()
}

/// DescribeProducers: READ on each topic.
pub fn describe_producers(
    check: &Check,
    request: &mut DescribeProducersRequest,
) -> Vec<describe_producers_response::TopicResponse> {
    if !check.active() {
        return Vec::new();
    }
    split_off(&mut request.topics, |topic| {
        check.allows(op::READ, rt::TOPIC, &topic.name)
    })
    .into_iter()
    .map(|topic| {
        describe_producers_response::TopicResponse::default()
            .with_name(topic.name)
            .with_partitions(
                topic
                    .partition_indexes
                    .iter()
                    .map(|partition| {
                        describe_producers_response::PartitionResponse::default()
                            .with_partition_index(*partition)
                            .with_error_code(TOPIC_DENIED)
                    })
                    .collect(),
            )
    })
    .collect()
}

// ---- topic and config administration ----------------------------------------------------

fn denied_message(what: &str) -> Option<StrBytes> {
    Some(StrBytes::from_string(format!(
        "Authorization failed for {what}"
    )))
}

/// CreateTopics: CREATE on the cluster, or else on each topic.
pub fn create_topics(
    check: &Check,
    request: &mut CreateTopicsRequest,
) -> Vec<create_topics_response::CreatableTopicResult> {
    if !check.active()
        || check.allows_quietly(
            op::CREATE,
            rt::CLUSTER,
            strom_controller::acl::CLUSTER_RESOURCE_NAME,
        )
    {
        return Vec::new();
    }
    split_off(&mut request.topics, |topic| {
        check.allows(op::CREATE, rt::TOPIC, &topic.name)
    })
    .into_iter()
    .map(|topic| {
        create_topics_response::CreatableTopicResult::default()
            .with_error_message(denied_message(&format!("topic {}", topic.name.as_str())))
            .with_name(topic.name)
            .with_error_code(TOPIC_DENIED)
            .with_num_partitions(-1)
            .with_replication_factor(-1)
    })
    .collect()
}

/// DeleteTopics: DELETE on each topic (by name, or by id from v6).
pub fn delete_topics(
    check: &Check,
    request: &mut DeleteTopicsRequest,
) -> Vec<delete_topics_response::DeletableTopicResult> {
    if !check.active() {
        return Vec::new();
    }
    let denied_names = split_off(&mut request.topic_names, |name| {
        check.allows(op::DELETE, rt::TOPIC, name)
    });
    let denied_states = split_off(&mut request.topics, |topic| {
        topic_name(
            check,
            topic.name.as_deref().map(|n| n.as_str()).unwrap_or(""),
            topic.topic_id,
        )
        .is_none_or(|name| check.allows(op::DELETE, rt::TOPIC, &name))
    });
    denied_names
        .into_iter()
        .map(|name| (Some(name), uuid::Uuid::nil()))
        .chain(
            denied_states
                .into_iter()
                .map(|topic| (topic.name, topic.topic_id)),
        )
        .map(|(name, id)| {
            delete_topics_response::DeletableTopicResult::default()
                .with_name(name)
                .with_topic_id(id)
                .with_error_code(TOPIC_DENIED)
        })
        .collect()
}

/// CreatePartitions: ALTER on each topic.
pub fn create_partitions(
    check: &Check,
    request: &mut CreatePartitionsRequest,
) -> Vec<create_partitions_response::CreatePartitionsTopicResult> {
    if !check.active() {
        return Vec::new();
    }
    split_off(&mut request.topics, |topic| {
        check.allows(op::ALTER, rt::TOPIC, &topic.name)
    })
    .into_iter()
    .map(|topic| {
        create_partitions_response::CreatePartitionsTopicResult::default()
            .with_error_message(denied_message(&format!("topic {}", topic.name.as_str())))
            .with_name(topic.name)
            .with_error_code(TOPIC_DENIED)
    })
    .collect()
}

/// Config resources: topics (2) need the operation on the topic; brokers (4) and broker
/// loggers (8) on the cluster. `None` when allowed, else the error code.
fn config_resource_denied(
    check: &Check,
    operation: i8,
    resource_type: i8,
    name: &str,
) -> Option<i16> {
    match resource_type {
        2 => (!check.allows(operation, rt::TOPIC, name)).then_some(TOPIC_DENIED),
        4 | 8 => (!check.allows_cluster(operation)).then_some(CLUSTER_DENIED),
        _ => None,
    }
}

/// Removes the config resources `check` refuses `operation` on and answers each of them
/// with `answer(error code, message, resource type, resource name)`. Shared by the three
/// config APIs, whose requests and responses differ only in type.
fn split_denied_resources<T, R>(
    check: &Check,
    operation: i8,
    resources: &mut Vec<T>,
    key: impl Fn(&T) -> (i8, &StrBytes),
    answer: impl Fn(i16, Option<StrBytes>, i8, StrBytes) -> R,
) -> Vec<R> {
    if !check.active() {
        return Vec::new();
    }
    let mut denied = Vec::new();
    resources.retain(|resource| {
        let (resource_type, name) = key(resource);
        match config_resource_denied(check, operation, resource_type, name) {
            None => true,
            Some(code) => {
                denied.push(answer(
                    code,
                    denied_message(name.as_str()),
                    resource_type,
                    name.clone(),
                ));
                false
            }
        }
    });
    denied
}

/// DescribeConfigs: DESCRIBE_CONFIGS on each resource.
pub fn describe_configs(
    check: &Check,
    request: &mut DescribeConfigsRequest,
) -> Vec<describe_configs_response::DescribeConfigsResult> {
    split_denied_resources(
        check,
        op::DESCRIBE_CONFIGS,
        &mut request.resources,
        |r| (r.resource_type, &r.resource_name),
        |code, message, resource_type, name| {
            describe_configs_response::DescribeConfigsResult::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource_type)
                .with_resource_name(name)
        },
    )
}

/// AlterConfigs: ALTER_CONFIGS on each resource.
pub fn alter_configs(
    check: &Check,
    request: &mut AlterConfigsRequest,
) -> Vec<alter_configs_response::AlterConfigsResourceResponse> {
    split_denied_resources(
        check,
        op::ALTER_CONFIGS,
        &mut request.resources,
        |r| (r.resource_type, &r.resource_name),
        |code, message, resource_type, name| {
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource_type)
                .with_resource_name(name)
        },
    )
}

/// IncrementalAlterConfigs: ALTER_CONFIGS on each resource.
pub fn incremental_alter_configs(
    check: &Check,
    request: &mut IncrementalAlterConfigsRequest,
) -> Vec<incremental_alter_configs_response::AlterConfigsResourceResponse> {
    split_denied_resources(
        check,
        op::ALTER_CONFIGS,
        &mut request.resources,
        |r| (r.resource_type, &r.resource_name),
        |code, message, resource_type, name| {
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource_type)
                .with_resource_name(name)
        },
    )
}

/// InitProducerId: WRITE on the transactional id; without one (idempotence),
/// IDEMPOTENT_WRITE on the cluster or WRITE on some topic. `Some(code)` refuses it.
pub fn init_producer_id(check: &Check, request: &InitProducerIdRequest) -> Option<i16> {
    if !check.active() {
        return None;
    }
    match &request.transactional_id {
        Some(id) => {
            (!check.allows(op::WRITE, rt::TRANSACTIONAL_ID, id)).then_some(TRANSACTIONAL_ID_DENIED)
        }
        None => (!check.allows_quietly(
            op::IDEMPOTENT_WRITE,
            rt::CLUSTER,
            strom_controller::acl::CLUSTER_RESOURCE_NAME,
        ) && !check.allows_any(op::WRITE, rt::TOPIC))
        .then_some(CLUSTER_DENIED),
    }
}

// ---- cluster administration ----------------------------------------------------------------

/// Cluster-level APIs: the operation on the cluster resource.
pub fn cluster(check: &Check, operation: i8) -> bool {
    !check.active() || check.allows_cluster(operation)
}

/// The error for a refused request that has only a top-level code.
pub const fn cluster_denied() -> ErrorCode {
    ErrorCode::ClusterAuthorizationFailed
}

/// AlterUserScramCredentials refused: every user answers CLUSTER_AUTHORIZATION_FAILED.
pub fn alter_scram_denied(
    request: &AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let mut users: Vec<StrBytes> = request
        .deletions
        .iter()
        .map(|d| d.name.clone())
        .chain(request.upsertions.iter().map(|u| u.name.clone()))
        .collect();
    users.sort();
    users.dedup();
    AlterUserScramCredentialsResponse::default().with_results(
        users
            .into_iter()
            .map(|user| {
                alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default()
                    .with_user(user)
                    .with_error_code(CLUSTER_DENIED)
            })
            .collect(),
    )
}

/// AlterClientQuotas refused: every entry answers CLUSTER_AUTHORIZATION_FAILED.
pub fn alter_client_quotas_denied(request: &AlterClientQuotasRequest) -> AlterClientQuotasResponse {
    AlterClientQuotasResponse::default().with_entries(
        request
            .entries
            .iter()
            .map(|entry| {
                alter_client_quotas_response::EntryData::default()
                    .with_error_code(CLUSTER_DENIED)
                    .with_entity(
                        entry
                            .entity
                            .iter()
                            .map(|part| {
                                alter_client_quotas_response::EntityData::default()
                                    .with_entity_type(part.entity_type.clone())
                                    .with_entity_name(part.entity_name.clone())
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

/// KIP-430: narrows an "all operations" bit set a handler filled in (`i32::MIN` means not
/// requested and is left alone) to the operations the principal may perform.
pub fn authorized_operations(check: &Check, resource_type: i8, name: &str, operations: i32) -> i32 {
    if operations == i32::MIN || !check.active() {
        return operations;
    }
    (0..31)
        .filter(|bit| operations & (1 << bit) != 0)
        .filter(|bit| check.allows_quietly(*bit as i8, resource_type, name))
        .fold(0, |set, bit| set | (1 << bit))
}

fn authorized_cluster_operations(check: &Check, operations: i32) -> i32 {
    authorized_operations(
        check,
        rt::CLUSTER,
        strom_controller::acl::CLUSTER_RESOURCE_NAME,
        operations,
    )
}

/// DescribeCluster: the cluster operations the principal may perform (KIP-430).
pub fn describe_cluster_answer(check: &Check, response: &mut DescribeClusterResponse) {
    response.cluster_authorized_operations =
        authorized_cluster_operations(check, response.cluster_authorized_operations);
}

/// DescribeGroups: each group's operations the principal may perform (KIP-430).
pub fn describe_groups_answer(check: &Check, response: &mut DescribeGroupsResponse) {
    for group in &mut response.groups {
        group.authorized_operations = authorized_operations(
            check,
            rt::GROUP,
            &group.group_id,
            group.authorized_operations,
        );
    }
}

/// ConsumerGroupDescribe: each group's operations the principal may perform (KIP-430).
pub fn consumer_group_describe_answer(check: &Check, response: &mut ConsumerGroupDescribeResponse) {
    for group in &mut response.groups {
        group.authorized_operations = authorized_operations(
            check,
            rt::GROUP,
            &group.group_id,
            group.authorized_operations,
        );
    }
}
