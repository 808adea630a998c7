//! OffsetCommit: validate the member and the partitions, append the commit records to the
//! group's `__consumer_offsets` partition, then make them visible. Answered after the append.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use strom_coordinator::log::LogError;
use strom_protocol::ErrorCode;
use tracing::warn;

use crate::group::records::OffsetValue;
use crate::state::{now_ms, Broker};

fn append_error_code(error: &LogError) -> ErrorCode {
    match error {
        LogError::TooLarge(_) => ErrorCode::InvalidCommitOffsetSize,
        _ => ErrorCode::CoordinatorNotAvailable,
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let loaded = broker.groups().ensure_coordinator(&request.group_id).await;
    let group_id = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    let instance = request
        .group_instance_id
        .as_ref()
        .map(|i| i.to_string())
        .filter(|_| version >= 7);
    let image = broker.image();
    let now = now_ms();
    let metadata_max = broker.config().group.offset_metadata_max_bytes;

    // Per-partition checks first: (topic index, partition index, result or value).
    let mut results: Vec<Vec<(i32, Result<OffsetValue, ErrorCode>)>> = Vec::new();
    for topic in &request.topics {
        let known = image.topic(topic.name.0.as_str());
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                let result = crate::group::coordinator::checked_commit(
                    known.map(|t| t.partition_count()),
                    p.partition_index,
                    p.committed_offset,
                    if version >= 6 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    p.committed_metadata.as_deref(),
                    metadata_max,
                    now,
                );
                (p.partition_index, result)
            })
            .collect();
        results.push(partitions);
    }

    let mut pending = None;
    let group_error = match loaded {
        Err(error) => Some(error),
        Ok(()) => {
            // Validation, append and state change under the group's shard lock; the wait
            // for the replicas after it, below.
            match broker.groups().lock_group(&group_id).and_then(|mut state| {
                state
                    .validate_offset_commit(
                        now,
                        &group_id,
                        &member_id,
                        instance.as_deref(),
                        request.generation_id_or_member_epoch,
                    )
                    .map(|()| state)
            }) {
                Err(error) => Some(error),
                Ok(mut state) => {
                    let commits: Vec<(String, i32, OffsetValue)> = request
                        .topics
                        .iter()
                        .zip(&results)
                        .flat_map(|(topic, partitions)| {
                            partitions.iter().filter_map(|(index, result)| {
                                result
                                    .as_ref()
                                    .ok()
                                    .map(|v| (topic.name.0.to_string(), *index, v.clone()))
                            })
                        })
                        .collect();
                    match state.write_offsets(&group_id, &commits) {
                        Ok(written) => {
                            for (topic, partition, value) in commits {
                                state.apply_commit(&group_id, &topic, partition, value);
                            }
                            pending = Some(written);
                            None
                        }
                        Err(error) => {
                            warn!(group = %group_id, %error, "offset commit not written");
                            // Only the partitions that were to be written fail.
                            let code = append_error_code(&error);
                            for partitions in results.iter_mut() {
                                for (_, result) in partitions.iter_mut() {
                                    if result.is_ok() {
                                        *result = Err(code);
                                    }
                                }
                            }
                            None
                        }
                    }
                }
            }
        }
    };

    if let Some(written) = pending {
        if let Err(error) = written.committed().await {
            warn!(group = %group_id, %error, "offset commit not committed");
            let code = crate::group::not_committed_code(&error);
            for partitions in results.iter_mut() {
                for (_, result) in partitions.iter_mut() {
                    if result.is_ok() {
                        *result = Err(code);
                    }
                }
            }
        }
    }

    let topics = request
        .topics
        .into_iter()
        .zip(results)
        .map(|(topic, partitions)| {
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, result)| {
                            let code = match (&group_error, result) {
                                (Some(error), _) => error.code(),
                                (None, Ok(_)) => 0,
                                (None, Err(error)) => error.code(),
                            };
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
