//! Produce: validate and append each partition's batches; acks=0 gets no answer.
//!
//! The records blob is copied once, into a buffer the log rewrites in place (base offset,
//! leader epoch) and writes to the segment; records are read only for topics with
//! per-record rules (compacted, timestamp bounds), and a refusal because of some records
//! names each one (KIP-467 `record_errors`, v8+).

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;
use strom_storage::{AppendError, RecordErrorReason};
use tracing::warn;

use super::leader_hint::{self, LeaderHints};
use super::Advertised;
use crate::errors::append_error_code;
use crate::state::{now_ms, Broker};
use crate::txn::state::ProducerIdAndEpoch;
use crate::txn::TxnGuard;
use strom_protocol::batch::BatchView;

fn failed(
    version: i16,
    index: i32,
    error: ErrorCode,
    message: Option<String>,
) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(error.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.filter(|_| version >= 8).map(StrBytes::from_string))
}

/// The answer to a refused append. A refusal because of some records (KIP-467) names each
/// in `record_errors` and sums them up in `error_message`, with Kafka's texts (v8+); any
/// other refusal carries the storage error's text and names no record, as Kafka does.
fn refused(version: i16, index: i32, topic: &str, error: &AppendError) -> PartitionProduceResponse {
    let code = append_error_code(error);
    let AppendError::RecordErrors {
        errors,
        refused_total,
        ..
    } = error
    else {
        return failed(version, index, code, Some(error.to_string()));
    };
    let messages: Vec<(i32, String)> = errors
        .iter()
        .map(|rejected| {
            let message = match rejected.reason {
                RecordErrorReason::MissingKey => format!(
                    "Compacted topic cannot accept message without key in topic partition {topic}-{index}"
                ),
                RecordErrorReason::TimestampOutOfRange {
                    timestamp_ms,
                    min_ms,
                    max_ms,
                } => format!(
                    "Timestamp {timestamp_ms} of message with offset {} is out of range. \
                     The timestamp should be within [{min_ms}, {max_ms}]",
                    rejected.offset_delta
                ),
                RecordErrorReason::LogAppendTimeFromProducer {
                    timestamp_ms,
                    key_bytes,
                    value_bytes,
                } => format!(
                    "Invalid timestamp type in message DefaultRecord(offset={}, \
                     timestamp={timestamp_ms}, key={key_bytes} bytes, value={value_bytes} bytes). \
                     Producer should not set timestamp type to LogAppendTime.",
                    rejected.offset_delta
                ),
            };
            (rejected.record_index as i32, message)
        })
        .collect();
    let summary = if code == ErrorCode::InvalidTimestamp {
        "One or more records have been rejected due to invalid timestamp".to_string()
    } else {
        let shown: Vec<String> = messages
            .iter()
            .take(3)
            .map(|(record_index, message)| {
                format!("RecordError(batchIndex={record_index}, message='{message}')")
            })
            .collect();
        format!(
            "One or more records have been rejected due to {refused_total} record errors in total, \
             and only showing the first three errors at most: [{}]",
            shown.join(", ")
        )
    };
    let response = failed(version, index, code, Some(summary));
    if version < 8 {
        return response;
    }
    response.with_record_errors(
        messages
            .into_iter()
            .map(|(record_index, message)| {
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(record_index)
                    .with_batch_index_error_message(Some(StrBytes::from_string(message)))
            })
            .collect(),
    )
}

/// Whether partition `topic`-`index` holds an ongoing transaction of this producer at this
/// epoch (a write of it was verified and appended, and no marker ended it since).
fn ongoing_here(broker: &Broker, topic: &str, index: i32, producer: ProducerIdAndEpoch) -> bool {
    let image = broker.image();
    let Some(partition) = image
        .topic(topic)
        .and_then(|t| broker.partitions().get(t.topic_id, index))
    else {
        return false;
    };
    let producers = partition.log.lock().active_producers();
    producers.iter().any(|p| {
        p.producer_id == producer.producer_id
            && p.producer_epoch == producer.producer_epoch
            && p.current_txn_start_offset >= 0
    })
}

/// KIP-890: a transactional write must come from the current producer of an open
/// transaction that added this partition. Returns the guard to check at append time;
/// `None` for a non-transactional write. From v12 on (transaction version 2) the write
/// adds its partition itself: the producer sends no AddPartitionsToTxn.
async fn verify_transactional(
    broker: &Arc<Broker>,
    transactional_id: Option<&str>,
    topic: &str,
    index: i32,
    records: &[u8],
    version: i16,
) -> Result<Option<TxnGuard>, (ErrorCode, String)> {
    let Ok(first) = BatchView::parse(records) else {
        // Malformed: the log's validation answers with the precise error.
        return Ok(None);
    };
    let adds_partition = version >= IMPLICIT_ADD_PARTITION_VERSION;
    match (transactional_id, first.is_transactional()) {
        (None, false) => Ok(None),
        (None, true) => Err((
            ErrorCode::TransactionalIdAuthorizationFailed,
            "transactional records need the producer's transactional id".into(),
        )),
        (Some(_), false) => Err((
            ErrorCode::InvalidRecord,
            "a produce request with a transactional id must carry transactional batches".into(),
        )),
        (Some(transactional_id), true) => {
            let producer = ProducerIdAndEpoch {
                producer_id: first.producer_id(),
                producer_epoch: first.producer_epoch(),
            };
            let partition = (topic.to_string(), index);
            let local = broker.txns().is_coordinator(transactional_id);
            let outcome = match (local, adds_partition) {
                (true, false) => {
                    broker
                        .txns()
                        .verify(transactional_id, producer, &partition)
                        .await
                }
                (true, true) => {
                    broker
                        .txns()
                        .add_and_verify(transactional_id, producer, &partition)
                        .await
                }
                // The coordinator is another broker: it adds the partition; the storage's
                // epoch fencing guards the append.
                (false, true) => crate::txn::remote::add_partition(
                    broker,
                    transactional_id,
                    producer,
                    &partition,
                )
                .await
                .map(|()| TxnGuard::unchecked()),
                // Transaction version 1: the producer added the partition itself; the
                // coordinator is asked to confirm it (AddPartitionsToTxn v4 `verify_only`),
                // once per transaction and partition, as Kafka skips the check while the
                // partition holds the producer's ongoing transaction.
                (false, false) if ongoing_here(broker, topic, index, producer) => {
                    Ok(TxnGuard::unchecked())
                }
                (false, false) => crate::txn::remote::verify_partition(
                    broker,
                    transactional_id,
                    producer,
                    &partition,
                )
                .await
                .map(|()| TxnGuard::unchecked()),
            };
            outcome.map(Some).map_err(|code| {
                let code = match code {
                    ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
                    // Retriable coordinator errors that producers do not retry on a
                    // Produce: Kafka answers NOT_ENOUGH_REPLICAS so they send it again.
                    ErrorCode::ConcurrentTransactions
                    | ErrorCode::NetworkException
                    | ErrorCode::CoordinatorLoadInProgress
                    | ErrorCode::CoordinatorNotAvailable
                    | ErrorCode::NotCoordinator => ErrorCode::NotEnoughReplicas,
                    other => other,
                };
                let rule = if adds_partition {
                    "the producer epoch must be current and its transaction not ending"
                } else {
                    "the partition must be added to an open transaction of the current producer epoch"
                };
                (
                    code,
                    format!("transactional write to {topic}-{index} refused: {rule} ({code})"),
                )
            })
        }
    }
}

/// Produce v12+ is transaction version 2: a transactional write adds its own partition.
const IMPLICIT_ADD_PARTITION_VERSION: i16 = 12;

/// acks=all: waits until every appended write is below its partition's high watermark (the
/// ISR has it), or the request's timeout. A write the ISR shrank under
/// `min.insync.replicas` meanwhile gets NOT_ENOUGH_REPLICAS_AFTER_APPEND; one still waiting
/// at the timeout, REQUEST_TIMED_OUT; a leader that lost leadership,
/// NOT_LEADER_OR_FOLLOWER. With a single replica the high watermark is already there.
async fn wait_for_replication(
    broker: &Arc<Broker>,
    responses: &mut [TopicProduceResponse],
    waiting: Vec<(usize, usize, Arc<crate::partition::Partition>, i64, usize)>,
    timeout_ms: u64,
    version: i16,
) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
    let mut appends = broker.subscribe_appends();
    let mut outcomes: Vec<Option<Option<ErrorCode>>> = vec![None; waiting.len()];
    loop {
        appends.borrow_and_update();
        let mut pending = false;
        for (outcome, (_, _, partition, required, min_isr)) in outcomes.iter_mut().zip(&waiting) {
            if outcome.is_some() {
                continue;
            }
            match partition.check_committed(*required, *min_isr) {
                Ok(true) => *outcome = Some(None),
                Ok(false) => pending = true,
                Err(code) => *outcome = Some(Some(code)),
            }
        }
        if !pending {
            break;
        }
        let changed = tokio::time::timeout_at(deadline, appends.changed()).await;
        if !matches!(changed, Ok(Ok(()))) {
            for outcome in outcomes.iter_mut().filter(|o| o.is_none()) {
                *outcome = Some(Some(ErrorCode::RequestTimedOut));
            }
            break;
        }
    }
    for (outcome, (topic, index, _, _, _)) in outcomes.into_iter().zip(waiting) {
        if let Some(Some(code)) = outcome {
            let response = &mut responses[topic].partition_responses[index];
            *response = failed(version, response.index, code, None);
        }
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    request: ProduceRequest,
    version: i16,
    advertised: &Advertised,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let timeout_ms = request.timeout_ms.max(0) as u64;
    let image = broker.image();
    // acks=all writes waiting for the high watermark: (topic index, partition response
    // index, partition, offset the HW must reach, min.insync.replicas).
    let mut waiting: Vec<(usize, usize, Arc<crate::partition::Partition>, i64, usize)> = Vec::new();
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut appended_any = false;
    for topic_data in request.topic_data {
        let topic = if version >= 13 {
            image.topic_by_id(topic_data.topic_id)
        } else {
            image.topic(topic_data.name.0.as_str())
        };
        let unknown_topic = if version >= 13 {
            ErrorCode::UnknownTopicId
        } else {
            ErrorCode::UnknownTopicOrPartition
        };
        let mut partition_responses = Vec::with_capacity(topic_data.partition_data.len());
        for data in topic_data.partition_data {
            let index = data.index;
            if !matches!(acks, -1..=1) {
                partition_responses.push(failed(
                    version,
                    index,
                    ErrorCode::InvalidRequiredAcks,
                    None,
                ));
                continue;
            }
            let Some(topic) = topic else {
                partition_responses.push(failed(version, index, unknown_topic, None));
                continue;
            };
            if topic.name == crate::group::OFFSETS_TOPIC
                || topic.name == crate::txn::TRANSACTION_STATE_TOPIC
            {
                // Internal topic: only the group coordinator writes it (Kafka answers the same).
                partition_responses.push(failed(
                    version,
                    index,
                    ErrorCode::InvalidTopicException,
                    Some(format!("{} is written by its coordinator only", topic.name)),
                ));
                continue;
            }
            let Some(state) = topic
                .partitions
                .get(index.max(0) as usize)
                .filter(|_| index >= 0)
            else {
                partition_responses.push(failed(
                    version,
                    index,
                    ErrorCode::UnknownTopicOrPartition,
                    None,
                ));
                continue;
            };
            let min_isr = topic
                .configs
                .get("min.insync.replicas")
                .or_else(|| {
                    crate::config::dynamic::dynamic_value(
                        broker.config(),
                        &image,
                        "min.insync.replicas",
                    )
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(broker.config().min_insync_replicas as usize);
            if acks == -1 {
                if state.isr.len() < min_isr {
                    partition_responses.push(failed(
                        version,
                        index,
                        ErrorCode::NotEnoughReplicas,
                        Some(format!(
                            "min.insync.replicas={min_isr} but the in-sync replicas are {:?}",
                            state.isr
                        )),
                    ));
                    continue;
                }
            }
            let Some(partition) = broker.partitions().get(topic.topic_id, index) else {
                partition_responses.push(failed(
                    version,
                    index,
                    ErrorCode::NotLeaderOrFollower,
                    None,
                ));
                continue;
            };
            let Some(records) = data.records.filter(|r| !r.is_empty()) else {
                partition_responses.push(failed(
                    version,
                    index,
                    ErrorCode::CorruptMessage,
                    Some("produce request carries no record batch".into()),
                ));
                continue;
            };
            if let Some(refused) =
                crate::schema_validation::check(broker, topic, index, &records, version).await
            {
                partition_responses.push(refused);
                continue;
            }
            let guard = match verify_transactional(
                broker,
                request.transactional_id.as_ref().map(|id| id.as_str()),
                &topic.name,
                index,
                &records,
                version,
            )
            .await
            {
                Ok(guard) => guard,
                Err((code, message)) => {
                    partition_responses.push(failed(version, index, code, Some(message)));
                    continue;
                }
            };
            let batch_bytes = records.len() as u64;
            let buffer = BytesMut::from(&records[..]);
            // The guard is checked under the log lock: an end marker takes this lock too,
            // so a write verified before its transaction ended never lands after the marker.
            let appended = partition.append_as_leader(now_ms(), |log, leader_epoch| {
                if guard.as_ref().is_some_and(|guard| !guard.is_valid()) {
                    return Ok(None);
                }
                log.append_as_leader(buffer, leader_epoch, now_ms())
                    .map(Some)
            });
            let result = match appended {
                None => {
                    partition_responses.push(failed(
                        version,
                        index,
                        ErrorCode::NotLeaderOrFollower,
                        None,
                    ));
                    continue;
                }
                Some(Ok(None)) => {
                    partition_responses.push(failed(
                        version,
                        index,
                        ErrorCode::InvalidTxnState,
                        Some("the transaction ended before this write could be appended".into()),
                    ));
                    continue;
                }
                Some(Ok(Some(info))) => Ok(info),
                Some(Err(error)) => Err(error),
            };
            match result {
                Ok(info) => {
                    appended_any |= !info.duplicate;
                    if acks == -1 {
                        waiting.push((
                            responses.len(),
                            partition_responses.len(),
                            partition.clone(),
                            info.last_offset + 1,
                            min_isr,
                        ));
                    }
                    if !info.duplicate {
                        broker.metrics().record_produce(
                            &topic.name,
                            batch_bytes,
                            info.record_count.max(0) as u64,
                        );
                    }
                    partition_responses.push(
                        PartitionProduceResponse::default()
                            .with_index(index)
                            .with_error_code(0)
                            .with_base_offset(info.base_offset)
                            .with_log_append_time_ms(info.log_append_time_ms)
                            .with_log_start_offset(info.log_start_offset),
                    );
                }
                Err(error) => {
                    if let AppendError::Storage(storage) = &error {
                        warn!(topic = %topic.name, partition = index, error = %storage, "append failed");
                    }
                    partition_responses.push(refused(version, index, &topic.name, &error));
                }
            }
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name)
                .with_topic_id(topic_data.topic_id)
                .with_partition_responses(partition_responses),
        );
    }
    if appended_any {
        broker.notify_appended();
    }
    if acks == 0 {
        return None;
    }
    if !waiting.is_empty() {
        wait_for_replication(broker, &mut responses, waiting, timeout_ms, version).await;
    }
    let mut response = ProduceResponse::default().with_responses(responses);
    if version >= leader_hint::PRODUCE_MIN_VERSION {
        add_leader_hints(broker, &mut response, version, advertised);
    }
    Some(response)
}

/// KIP-951: partitions answered NOT_LEADER_OR_FOLLOWER name the current leader, and the
/// response carries those leaders' addresses on the client's listener.
fn add_leader_hints(
    broker: &Broker,
    response: &mut ProduceResponse,
    version: i16,
    advertised: &Advertised,
) {
    let image = broker.image();
    let mut hints = LeaderHints::default();
    for topic in &mut response.responses {
        let topic_id = if version >= 13 {
            Some(topic.topic_id)
        } else {
            image.topic(topic.name.0.as_str()).map(|t| t.topic_id)
        };
        let Some(topic_id) = topic_id else { continue };
        for partition in &mut topic.partition_responses {
            if !leader_hint::wants_hint(partition.error_code) {
                continue;
            }
            if let Some((leader, epoch)) = hints.leader_of(&image, topic_id, partition.index) {
                partition.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(leader))
                    .with_leader_epoch(epoch);
            }
        }
    }
    response.node_endpoints = hints
        .endpoints(broker, &image, advertised)
        .into_iter()
        .map(|endpoint| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(endpoint.broker_id))
                .with_host(endpoint.host)
                .with_port(endpoint.port)
                .with_rack(endpoint.rack)
        })
        .collect();
}
