//! TxnOffsetCommit: offsets committed inside a transaction (`sendOffsetsToTransaction`).
//! The records go to the group's `__consumer_offsets` partition as part of the producer's
//! transaction and become visible when the commit marker reaches that partition; an abort
//! drops them. The partition must have joined the transaction (AddOffsetsToTxn) first.

use std::sync::Arc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use strom_controller::acl::{operation as op, resource_type as rt};
use strom_coordinator::log::LogError;
use strom_protocol::ErrorCode;
use tracing::warn;

use crate::authz::Check;
use crate::group::coordinator::PendingTxnOffset;
use crate::group::records::OffsetValue;
use crate::group::OFFSETS_TOPIC;
use crate::internal_topics::Writer;
use crate::state::{now_ms, Broker};
use crate::txn::state::ProducerIdAndEpoch;

/// Checks that refuse the whole request, before any partition is looked at.
async fn check_request(
    broker: &Arc<Broker>,
    check: &Check<'_>,
    request: &TxnOffsetCommitRequest,
    version: i16,
) -> Result<crate::txn::TxnGuard, ErrorCode> {
    let transactional_id = request.transactional_id.as_str();
    if !check.allows(op::WRITE, rt::TRANSACTIONAL_ID, transactional_id) {
        return Err(ErrorCode::TransactionalIdAuthorizationFailed);
    }
    if !check.allows(op::READ, rt::GROUP, &request.group_id) {
        return Err(ErrorCode::GroupAuthorizationFailed);
    }
    crate::group::coordinator::validate_group_id(&request.group_id)?;
    broker
        .groups()
        .ensure_coordinator(&request.group_id)
        .await?;
    let partition = broker
        .groups()
        .partition_of(&request.group_id)
        .ok_or(ErrorCode::CoordinatorNotAvailable)?;
    let producer = ProducerIdAndEpoch {
        producer_id: request.producer_id.0,
        producer_epoch: request.producer_epoch,
    };
    let offsets_partition = (OFFSETS_TOPIC.to_string(), partition);
    // v5+ is transaction version 2: the producer sent no AddOffsetsToTxn, the commit adds
    // the group's offsets partition to its transaction.
    let adds_partition = version >= IMPLICIT_ADD_OFFSETS_VERSION;
    let outcome = match (
        broker.txns().is_coordinator(transactional_id),
        adds_partition,
    ) {
        (true, false) => {
            broker
                .txns()
                .verify(transactional_id, producer, &offsets_partition)
                .await
        }
        (true, true) => {
            broker
                .txns()
                .add_and_verify(transactional_id, producer, &offsets_partition)
                .await
        }
        (false, true) => crate::txn::remote::add_partition(
            broker,
            transactional_id,
            producer,
            &offsets_partition,
        )
        .await
        .map(|()| crate::txn::TxnGuard::unchecked()),
        // The transaction coordinator is another broker: the storage epoch check fences
        // zombies here (a remote check is later work).
        (false, false) => return Ok(crate::txn::TxnGuard::unchecked()),
    };
    outcome.map_err(|code| match code {
        ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
        other => other,
    })
}

/// TxnOffsetCommit v5+ adds the offsets partition itself (KIP-890 part 2).
const IMPLICIT_ADD_OFFSETS_VERSION: i16 = 5;

pub async fn handle(
    broker: &Arc<Broker>,
    check: &Check<'_>,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let image = broker.image();
    let now = now_ms();
    let metadata_max = broker.config().group.offset_metadata_max_bytes;
    let group_id = request.group_id.to_string();

    // Per partition: the value to commit, or why not.
    let mut results: Vec<Vec<(i32, Result<OffsetValue, ErrorCode>)>> = request
        .topics
        .iter()
        .map(|topic| {
            let readable = check.allows(op::READ, rt::TOPIC, &topic.name);
            let known = image.topic(topic.name.as_str());
            topic
                .partitions
                .iter()
                .map(|p| {
                    let result = if !readable {
                        Err(ErrorCode::TopicAuthorizationFailed)
                    } else {
                        crate::group::coordinator::checked_commit(
                            known.map(|t| t.partition_count()),
                            p.partition_index,
                            p.committed_offset,
                            if version >= 2 {
                                p.committed_leader_epoch
                            } else {
                                -1
                            },
                            p.committed_metadata.as_deref(),
                            metadata_max,
                            now,
                        )
                    };
                    (p.partition_index, result)
                })
                .collect()
        })
        .collect();

    let mut pending = None;
    let request_error = match check_request(broker, check, &request, version).await {
        Err(code) => Some(code),
        Ok(guard) => {
            // Checks, append and state change under the group's shard lock; the wait after
            // it, below.
            let locked = broker.groups().lock_group(&group_id).and_then(|mut state| {
                if version >= 3 && request.generation_id >= 0 {
                    state.validate_offset_commit(
                        now,
                        &group_id,
                        &request.member_id,
                        request.group_instance_id.as_deref(),
                        request.generation_id,
                    )?;
                }
                Ok(state)
            });
            match locked {
                Err(code) => Some(code),
                // The transaction ended between the check and now (markers hold this lock).
                Ok(_) if !guard.is_valid() => Some(ErrorCode::InvalidTxnState),
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
                                    .map(|v| (topic.name.to_string(), *index, v.clone()))
                            })
                        })
                        .collect();
                    let writer = Writer {
                        producer_id: request.producer_id.0,
                        producer_epoch: request.producer_epoch,
                    };
                    match state.write_txn_offsets(&group_id, writer, &commits) {
                        Ok(written) => {
                            pending = Some(written);
                            state.add_pending_txn_offsets(
                                writer.producer_id,
                                commits
                                    .into_iter()
                                    .map(|(topic, partition, value)| PendingTxnOffset {
                                        group_id: group_id.clone(),
                                        topic,
                                        partition,
                                        value,
                                    })
                                    .collect(),
                            );
                            None
                        }
                        Err(error) => {
                            warn!(group = %group_id, %error, "transactional offset commit not written");
                            Some(match error {
                                LogError::InvalidProducerEpoch(_) => {
                                    ErrorCode::InvalidProducerEpoch
                                }
                                _ => ErrorCode::CoordinatorNotAvailable,
                            })
                        }
                    }
                }
            }
        }
    };
    let request_error = match (request_error, pending) {
        (None, Some(written)) => written.committed().await.err().map(|error| {
            warn!(group = %group_id, %error, "transactional offset commit not committed");
            crate::group::not_committed_code(&error)
        }),
        (error, _) => error,
    };
    if let Some(code) = request_error {
        for partitions in results.iter_mut() {
            for (_, result) in partitions.iter_mut() {
                if result.is_ok() {
                    *result = Err(code);
                }
            }
        }
    }
    let topics = request
        .topics
        .into_iter()
        .zip(results)
        .map(|(topic, partitions)| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, result)| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(result.err().map_or(0, |c| c.code()))
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
