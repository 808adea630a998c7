//! The console's JSON API for consumer groups: list, describe (members, assignments,
//! committed offsets and lag) and reset offsets.
//!
//! Reading copies what it needs out of the coordinator under its lock and reads log ends
//! after releasing it. Resetting offsets goes through the same rules and the same
//! `__consumer_offsets` write as an admin client's OffsetCommit (generation -1, no
//! member): only allowed while the group has no members.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Buf;
use hyper::StatusCode;
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::Decodable;
use serde::Serialize;
use strom_protocol::ErrorCode;

use super::view::{all_logs, committed_lag, log_view, CommittedLag};
use super::{json_response, HttpError, HttpResponse};
use crate::group::coordinator::Group;
use crate::group::records::OffsetValue;
use crate::state::{now_ms, Broker};

/// Most partitions one reset may touch.
const RESET_PARTITIONS_MAX: usize = 10_000;

#[derive(Serialize)]
struct GroupRow {
    group_id: String,
    /// `classic` or `consumer` (KIP-848).
    group_type: &'static str,
    state: &'static str,
    protocol_type: String,
    members: usize,
    committed_partitions: usize,
    /// Sum of lag over committed partitions that are hosted here.
    total_lag: i64,
}

/// A group's identity and members, copied out of the coordinator.
struct GroupCopy {
    group_type: &'static str,
    state: &'static str,
    protocol_type: String,
    protocol: Option<String>,
    generation: i32,
    members: Vec<MemberRow>,
}

#[derive(Serialize, Clone)]
struct MemberRow {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    /// topic -> partitions assigned to this member.
    assignment: BTreeMap<String, Vec<i32>>,
}

fn copy_group(broker: &Broker, group: &Group) -> GroupCopy {
    match group {
        Group::Classic(classic) => GroupCopy {
            group_type: group.type_name(),
            state: group.state_name(),
            protocol_type: group.protocol_type(),
            protocol: classic.protocol_name.clone(),
            generation: classic.generation_id,
            members: classic
                .members
                .values()
                .map(|member| MemberRow {
                    member_id: member.member_id.clone(),
                    group_instance_id: member.group_instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    assignment: if classic.protocol_type.as_deref() == Some("consumer") {
                        decode_assignment(&member.assignment)
                    } else {
                        BTreeMap::new()
                    },
                })
                .collect(),
        },
        Group::Consumer(consumer) => {
            let image = broker.image();
            GroupCopy {
                group_type: group.type_name(),
                state: group.state_name(),
                protocol_type: group.protocol_type(),
                protocol: Some(consumer.assignor_name.clone()),
                generation: consumer.group_epoch,
                members: consumer
                    .members
                    .values()
                    .map(|member| MemberRow {
                        member_id: member.member_id.clone(),
                        group_instance_id: member.instance_id.clone(),
                        client_id: member.client_id.clone(),
                        client_host: member.client_host.clone(),
                        assignment: member
                            .assigned
                            .iter()
                            .map(|(topic_id, partitions)| {
                                let name = image
                                    .topic_by_id(*topic_id)
                                    .map(|t| t.name.clone())
                                    .unwrap_or_else(|| topic_id.to_string());
                                (name, partitions.iter().copied().collect())
                            })
                            .collect(),
                    })
                    .collect(),
            }
        }
    }
}

/// A classic consumer's assignment (ConsumerProtocolAssignment, version-prefixed); empty if
/// it does not decode.
fn decode_assignment(bytes: &bytes::Bytes) -> BTreeMap<String, Vec<i32>> {
    let mut buffer = bytes.clone();
    if buffer.remaining() < 2 {
        return BTreeMap::new();
    }
    let version = buffer.get_i16().clamp(0, 3);
    match ConsumerProtocolAssignment::decode(&mut buffer, version) {
        Ok(assignment) => assignment
            .assigned_partitions
            .into_iter()
            .map(|tp| (tp.topic.0.to_string(), tp.partitions))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// `GET /api/groups`: every group (and every group id that only has committed offsets).
pub fn list(broker: &Broker) -> Result<HttpResponse, HttpError> {
    let logs = all_logs(broker);
    let lags = committed_lag(broker, None, &logs);
    let mut rows: BTreeMap<String, GroupRow> = {
        let mut rows = BTreeMap::new();
        broker.groups().read_all(|state| {
            for (id, group) in &state.groups {
                if group.state_name() == "Dead" {
                    continue;
                }
                let members = match group {
                    Group::Classic(classic) => classic.members.len(),
                    Group::Consumer(consumer) => consumer.members.len(),
                };
                rows.insert(
                    id.clone(),
                    GroupRow {
                        group_id: id.clone(),
                        group_type: group.type_name(),
                        state: group.state_name(),
                        protocol_type: group.protocol_type(),
                        members,
                        committed_partitions: 0,
                        total_lag: 0,
                    },
                );
            }
        });
        rows
    };
    for lag in &lags {
        let row = rows.entry(lag.group.clone()).or_insert_with(|| GroupRow {
            group_id: lag.group.clone(),
            group_type: "classic",
            state: "Empty",
            protocol_type: String::new(),
            members: 0,
            committed_partitions: 0,
            total_lag: 0,
        });
        row.committed_partitions += 1;
        row.total_lag += lag.lag.unwrap_or(0);
    }
    #[derive(Serialize)]
    struct Groups {
        groups: Vec<GroupRow>,
        /// False while `__consumer_offsets` is being replayed.
        loaded: bool,
    }
    Ok(json_response(
        StatusCode::OK,
        &Groups {
            groups: rows.into_values().collect(),
            loaded: broker.groups().is_loaded(),
        },
    ))
}

#[derive(Serialize)]
struct GroupDetail {
    group_id: String,
    group_type: &'static str,
    state: &'static str,
    protocol_type: String,
    /// The agreed partition assignor (classic) or the server-side assignor (consumer).
    protocol: Option<String>,
    /// Generation (classic) or group epoch (consumer).
    generation: i32,
    members: Vec<MemberRow>,
    offsets: Vec<OffsetRow>,
    total_lag: i64,
}

#[derive(Serialize)]
struct OffsetRow {
    topic: String,
    partition: i32,
    committed_offset: i64,
    log_end_offset: Option<i64>,
    lag: Option<i64>,
    /// Member the partition is assigned to, if any.
    member_id: Option<String>,
}

/// `GET /api/groups/{id}`: state, members with assignments, committed offsets with lag.
pub fn describe(broker: &Broker, group_id: &str) -> Result<HttpResponse, HttpError> {
    let copy = {
        let (copy, has_offsets) = broker.groups().read_group(group_id, |state| {
            (
                state.groups.get(group_id).map(|g| copy_group(broker, g)),
                state.offsets.contains_key(group_id),
            )
        });
        if copy.is_none() && !has_offsets {
            return Err(HttpError::not_found(format!("no group named `{group_id}`")));
        }
        copy
    };
    let logs = all_logs(broker);
    let lags: Vec<CommittedLag> = committed_lag(broker, Some(group_id), &logs);
    let copy = copy.unwrap_or(GroupCopy {
        group_type: "classic",
        state: "Empty",
        protocol_type: String::new(),
        protocol: None,
        generation: 0,
        members: Vec::new(),
    });
    let owner = |topic: &str, partition: i32| {
        copy.members
            .iter()
            .find(|m| {
                m.assignment
                    .get(topic)
                    .is_some_and(|partitions| partitions.contains(&partition))
            })
            .map(|m| m.member_id.clone())
    };
    let offsets: Vec<OffsetRow> = lags
        .iter()
        .map(|lag| OffsetRow {
            topic: lag.topic.clone(),
            partition: lag.partition,
            committed_offset: lag.committed_offset,
            log_end_offset: lag.log_end_offset,
            lag: lag.lag,
            member_id: owner(&lag.topic, lag.partition),
        })
        .collect();
    let total_lag = offsets.iter().filter_map(|o| o.lag).sum();
    Ok(json_response(
        StatusCode::OK,
        &GroupDetail {
            group_id: group_id.to_string(),
            group_type: copy.group_type,
            state: copy.state,
            protocol_type: copy.protocol_type.clone(),
            protocol: copy.protocol.clone(),
            generation: copy.generation,
            members: copy.members.clone(),
            offsets,
            total_lag,
        },
    ))
}

/// Where a reset moves a group's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResetTarget {
    Earliest,
    Latest,
    Offset(i64),
    Timestamp(i64),
}

/// A parsed reset-offsets request.
struct ResetRequest {
    topic: String,
    /// `None` = every partition of the topic.
    partitions: Option<Vec<i32>>,
    target: ResetTarget,
    dry_run: bool,
}

fn parse_reset(body: &serde_json::Value) -> Result<ResetRequest, HttpError> {
    let topic = body
        .get("topic")
        .and_then(|v| v.as_str())
        .ok_or_else(|| HttpError::bad_request("`topic` (a string) is required"))?
        .to_string();
    let partitions = match body.get("partitions") {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => Some(
            value
                .as_array()
                .ok_or_else(|| HttpError::bad_request("`partitions` must be an array of numbers"))?
                .iter()
                .map(|p| {
                    p.as_i64()
                        .and_then(|p| i32::try_from(p).ok())
                        .ok_or_else(|| HttpError::bad_request("`partitions` must be numbers"))
                })
                .collect::<Result<Vec<i32>, HttpError>>()?,
        ),
    };
    let number = |key: &str| {
        body.get(key)
            .and_then(|v| v.as_i64())
            .ok_or_else(|| HttpError::bad_request(format!("`{key}` (a whole number) is required")))
    };
    let target = match body.get("to").and_then(|v| v.as_str()) {
        Some("earliest") => ResetTarget::Earliest,
        Some("latest") => ResetTarget::Latest,
        Some("offset") => ResetTarget::Offset(number("offset")?),
        Some("timestamp") => ResetTarget::Timestamp(number("timestamp_ms")?),
        _ => {
            return Err(HttpError::bad_request(
                "`to` must be one of earliest, latest, offset, timestamp",
            ))
        }
    };
    let dry_run = body
        .get("dry_run")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    Ok(ResetRequest {
        topic,
        partitions,
        target,
        dry_run,
    })
}

#[derive(Serialize)]
struct ResetRow {
    partition: i32,
    previous_offset: Option<i64>,
    new_offset: i64,
}

/// `POST /api/groups/{id}/reset-offsets` with `{"topic": "t", "partitions": [0] (optional,
/// default all), "to": "earliest"|"latest"|"offset"|"timestamp", "offset": n,
/// "timestamp_ms": n, "dry_run": false}`. The group must have no members (409 otherwise);
/// the caller must have loaded the coordinator first.
pub async fn reset_offsets(
    broker: &Broker,
    group_id: &str,
    body: serde_json::Value,
) -> Result<HttpResponse, HttpError> {
    let ResetRequest {
        topic: topic_name,
        partitions,
        target,
        dry_run,
    } = parse_reset(&body)?;
    let image = broker.image();
    let topic = image
        .topic(&topic_name)
        .ok_or_else(|| HttpError::not_found(format!("no topic named `{topic_name}`")))?;
    let wanted: BTreeSet<i32> = match partitions {
        Some(list) => list.into_iter().collect(),
        None => (0..topic.partition_count()).collect(),
    };
    if wanted.len() > RESET_PARTITIONS_MAX {
        return Err(HttpError::bad_request(format!(
            "at most {RESET_PARTITIONS_MAX} partitions per reset"
        )));
    }
    let now = now_ms();
    // New offsets first, from each partition's log (no coordinator lock held).
    let mut commits = Vec::with_capacity(wanted.len());
    for index in &wanted {
        let hosted = broker
            .partitions()
            .get(topic.topic_id, *index)
            .ok_or_else(|| {
                HttpError::not_found(format!("partition {topic_name}-{index} is not hosted here"))
            })?;
        let log = log_view(&hosted);
        let offset = match target {
            ResetTarget::Earliest => log.log_start_offset,
            ResetTarget::Latest => log.log_end_offset,
            ResetTarget::Offset(offset) => offset.clamp(log.log_start_offset, log.log_end_offset),
            ResetTarget::Timestamp(timestamp_ms) => {
                let found = hosted.log.lock().offset_for_timestamp(timestamp_ms);
                match found {
                    Ok(Some(found)) => found.offset,
                    Ok(None) => log.log_end_offset,
                    Err(error) => {
                        return Err(HttpError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("cannot search {topic_name}-{index} by time: {error}"),
                        ))
                    }
                }
            }
        };
        commits.push((
            topic_name.clone(),
            *index,
            OffsetValue {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: now,
            },
        ));
    }

    // The checks, the append and the state change under the lock; the wait after it.
    let (previous, pending) = (|| {
        let mut state = broker.groups().lock_group(group_id).map_err(|error| {
            HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "this broker cannot change the group now: {}",
                    error_name(error)
                ),
            )
        })?;
        if let Some(group) = state.groups.get(group_id) {
            if !group.is_empty() {
                return Err(HttpError::conflict(format!(
                    "group `{group_id}` has active members (state {}); stop its consumers before resetting offsets",
                    group.state_name()
                )));
            }
        }
        let previous: Vec<Option<i64>> = commits
            .iter()
            .map(|(topic, partition, _)| {
                state
                    .committed(group_id, topic, *partition)
                    .map(|v| v.offset)
            })
            .collect();
        if !dry_run {
            state
                .validate_offset_commit(now, group_id, "", None, -1)
                .map_err(|error| {
                    HttpError::conflict(format!(
                        "the coordinator refused the reset: {}",
                        error_name(error)
                    ))
                })?;
            let written = state.write_offsets(group_id, &commits).map_err(|error| {
                HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot write the new offsets: {error}"),
                )
            })?;
            for (topic, partition, value) in commits.iter().cloned() {
                state.apply_commit(group_id, &topic, partition, value);
            }
            return Ok((previous, written));
        }
        Ok((previous, strom_coordinator::log::Pending::none()))
    })()?;
    // Answered once the reset is on the in-sync replicas, with the lock let go.
    pending.committed().await.map_err(|error| {
        HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the new offsets were not committed: {error}"),
        )
    })?;
    #[derive(Serialize)]
    struct Reset {
        group_id: String,
        topic: String,
        dry_run: bool,
        partitions: Vec<ResetRow>,
    }
    Ok(json_response(
        StatusCode::OK,
        &Reset {
            group_id: group_id.to_string(),
            topic: topic_name,
            dry_run,
            partitions: commits
                .iter()
                .zip(previous)
                .map(|((_, partition, value), previous_offset)| ResetRow {
                    partition: *partition,
                    previous_offset,
                    new_offset: value.offset,
                })
                .collect(),
        },
    ))
}

fn error_name(error: ErrorCode) -> String {
    format!("{error:?}")
}
