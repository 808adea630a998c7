//! OffsetFetch: committed offsets of one group (v1-7) or of several (v8+); -1 where
//! nothing is committed, every committed partition when the topic list is null.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;

use crate::group::coordinator::{validate_group_id, Coordinator};
use crate::group::records::OffsetValue;
use crate::state::Broker;

/// One partition's answer: index, committed value if any, and whether an open transaction
/// holds an offset for it (UNSTABLE_OFFSET_COMMIT when the client requires stable offsets).
type Fetched = Vec<(String, Vec<(i32, Option<OffsetValue>, bool)>)>;

const UNSTABLE_OFFSET_COMMIT: i16 = 88;

fn fetch(
    state: &Coordinator,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Fetched {
    let answer = |topic: &str, partition: i32, value: Option<OffsetValue>| {
        if require_stable && state.has_pending_txn_offset(group_id, topic, partition) {
            (partition, None, true)
        } else {
            (partition, value, false)
        }
    };
    match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(topic, partitions)| {
                let values = partitions
                    .into_iter()
                    .map(|p| answer(&topic, p, state.committed(group_id, &topic, p).cloned()))
                    .collect();
                (topic, values)
            })
            .collect(),
        None => {
            let mut out: Fetched = Vec::new();
            for (topic, partition, value) in state.committed_partitions(group_id) {
                let entry = answer(&topic, partition, Some(value));
                match out.last_mut() {
                    Some((last, values)) if *last == topic => values.push(entry),
                    _ => out.push((topic, vec![entry])),
                }
            }
            out
        }
    }
}

fn group_check(
    state: &Coordinator,
    group_id: &str,
    member: Option<(&str, i32)>,
) -> Result<(), ErrorCode> {
    validate_group_id(group_id)?;
    if let (Some((member_id, epoch)), Some(crate::group::coordinator::Group::Consumer(group))) =
        (member, state.groups.get(group_id))
    {
        if !member_id.is_empty() {
            group.validate_commit(member_id, epoch)?;
        }
    }
    Ok(())
}

/// Kafka's rule: an offset is not shown before it is durable. The answer waits for the
/// log end of the group's partition as it was when the offsets were read.
async fn committed(barrier: strom_coordinator::log::Pending) -> Result<(), ErrorCode> {
    barrier.committed().await.map_err(|error| {
        tracing::warn!(%error, "offsets read before they were committed");
        crate::group::not_committed_code(&error)
    })
}

pub async fn handle(
    broker: &Arc<Broker>,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let loaded = broker.groups().ensure_readable().await;
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in request.groups {
            {
                let group_id = group.group_id.0.to_string();
                let topics = group.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                let member = group
                    .member_id
                    .as_ref()
                    .map(|m| (m.as_str(), group.member_epoch))
                    .filter(|_| version >= 9);
                let outcome = loaded.and_then(|()| {
                    let fetched = broker.groups().read_group(&group_id, |state| {
                        group_check(state, &group_id, member)?;
                        Ok(fetch(state, &group_id, topics, request.require_stable))
                    })?;
                    Ok((fetched, broker.groups().read_barrier(&group_id)))
                });
                let outcome = match outcome {
                    Ok((fetched, barrier)) => committed(barrier).await.map(|()| fetched),
                    Err(error) => Err(error),
                };
                let response = OffsetFetchResponseGroup::default().with_group_id(group.group_id);
                groups.push(match outcome {
                    Err(error) => response.with_error_code(error.code()),
                    Ok(fetched) => response.with_topics(
                        fetched
                            .into_iter()
                            .map(|(topic, partitions)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(StrBytes::from_string(topic)))
                                    .with_partitions(
                                        partitions
                                            .into_iter()
                                            .map(|(index, value, unstable)| {
                                                let (offset, epoch, metadata) = split(value);
                                                OffsetFetchResponsePartitions::default()
                                                    .with_error_code(if unstable {
                                                        UNSTABLE_OFFSET_COMMIT
                                                    } else {
                                                        0
                                                    })
                                                    .with_partition_index(index)
                                                    .with_committed_offset(offset)
                                                    .with_committed_leader_epoch(epoch)
                                                    .with_metadata(Some(StrBytes::from_string(
                                                        metadata,
                                                    )))
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
                });
            }
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }

    let group_id = request.group_id.0.to_string();
    let topics: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let outcome = loaded.and_then(|()| {
        let fetched = broker.groups().read_group(&group_id, |state| {
            group_check(state, &group_id, None)?;
            Ok(fetch(
                state,
                &group_id,
                topics.clone(),
                version >= 7 && request.require_stable,
            ))
        })?;
        Ok((fetched, broker.groups().read_barrier(&group_id)))
    });
    let outcome = match outcome {
        Ok((fetched, barrier)) => committed(barrier).await.map(|()| fetched),
        Err(error) => Err(error),
    };
    let (error, fetched) = match outcome {
        Ok(fetched) => (0, fetched),
        // v1 has no top-level error: the error goes on every requested partition.
        Err(error) => (
            error.code(),
            topics
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, None, false)).collect()))
                .collect(),
        ),
    };
    let partition_error = if version < 2 { error } else { 0 };
    let response_topics = fetched
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, value, unstable)| {
                            let (offset, epoch, metadata) = split(value);
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(index)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(if version >= 5 { epoch } else { -1 })
                                .with_metadata(Some(StrBytes::from_string(metadata)))
                                .with_error_code(if unstable {
                                    UNSTABLE_OFFSET_COMMIT
                                } else {
                                    partition_error
                                })
                        })
                        .collect(),
                )
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(response_topics);
    if version >= 2 {
        response.with_error_code(error)
    } else {
        response
    }
}

fn split(value: Option<OffsetValue>) -> (i64, i32, String) {
    match value {
        Some(v) => (v.offset, v.leader_epoch, v.metadata),
        None => (-1, -1, String::new()),
    }
}
