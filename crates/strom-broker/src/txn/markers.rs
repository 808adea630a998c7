//! Writing transaction markers (COMMIT/ABORT control batches) to partition logs.
//!
//! Used by the transaction coordinator when a transaction ends and by WriteTxnMarkers (an
//! operator aborting a hanging transaction; later, coordinators on other brokers). A marker
//! on a `__consumer_offsets` partition also settles the offsets the transaction committed
//! there, under the group coordinator's lock so log order and memory order agree. A marker
//! is appended at once; the caller awaits its [`Pending`] (the in-sync replicas) with no
//! lock held, and remote markers are sent without blocking a thread.

use std::sync::Arc;

use strom_protocol::ErrorCode;
use strom_storage::{AppendError, ControlMarker};
use tracing::warn;

use crate::group::OFFSETS_TOPIC;
use crate::internal_topics::Pending;
use crate::state::{now_ms, Broker};

/// Waits for a marker to reach the in-sync replicas; a marker counts only then, like any
/// acks=all write.
pub async fn marker_committed(broker: &Broker, pending: Pending) -> Result<(), ErrorCode> {
    pending.committed(broker).await.map_err(|error| {
        warn!(%error, "transaction marker not replicated");
        ErrorCode::RequestTimedOut
    })
}

/// Appends one marker to a partition this broker leads (not waiting for its replicas).
pub fn write_marker(
    broker: &Arc<Broker>,
    topic: &str,
    index: i32,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
) -> Result<Pending, ErrorCode> {
    let image = broker.image();
    let topic_image = image
        .topic(topic)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    if index < 0 || index as usize >= topic_image.partitions.len() {
        return Err(ErrorCode::UnknownTopicOrPartition);
    }
    let partition = broker
        .partitions()
        .get(topic_image.topic_id, index)
        .ok_or(ErrorCode::NotLeaderOrFollower)?;
    let marker = if commit {
        ControlMarker::Commit
    } else {
        ControlMarker::Abort
    };
    let append = || {
        partition.append_as_leader(now_ms(), |log, leader_epoch| {
            log.append_control_marker(
                producer_id,
                producer_epoch,
                marker,
                coordinator_epoch,
                leader_epoch,
                now_ms(),
            )
        })
    };
    let result = if topic == OFFSETS_TOPIC {
        // Under the shard lock of the partition's groups, so a transactional offset commit
        // checked against the transaction cannot land between the marker and this.
        let mut groups = broker.groups().lock_shard(index);
        let result = append();
        if let (Some(Ok(_)), Some(groups)) = (&result, groups.as_mut()) {
            groups.complete_txn_offsets(now_ms(), producer_id, commit, |_| true);
        }
        result
    } else {
        append()
    };
    let Some(result) = result else {
        return Err(ErrorCode::NotLeaderOrFollower);
    };
    match result {
        Ok(info) => {
            broker.notify_appended();
            Ok(Pending::written(
                topic_image_name(topic),
                index,
                partition,
                info.last_offset + 1,
            ))
        }
        Err(error) => {
            warn!(%topic, partition = index, producer_id, producer_epoch, %error, "transaction marker not written");
            Err(match error {
                AppendError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
                AppendError::TransactionCoordinatorFenced { .. } => {
                    ErrorCode::TransactionCoordinatorFenced
                }
                AppendError::Storage(_) => ErrorCode::KafkaStorageError,
                _ => ErrorCode::UnknownServerError,
            })
        }
    }
}

/// Markers for partitions led by another broker: a WriteTxnMarkers request to it (Kafka's
/// coordinator does the same), for at most the request timeout. The coordinator sends it
/// with no lock held.
pub async fn write_remote_markers(
    broker: &Arc<Broker>,
    leader: i32,
    partitions: &[(String, i32)],
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
) -> Result<(), ErrorCode> {
    use kafka_protocol::messages::write_txn_markers_request::{
        WritableTxnMarker, WritableTxnMarkerTopic,
    };
    use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
    use kafka_protocol::protocol::StrBytes;

    let image = broker.image();
    let (host, port) = image
        .brokers()
        .get(&leader)
        .and_then(|registration| registration.endpoint(&broker.config().inter_broker_listener))
        .ok_or(ErrorCode::NotLeaderOrFollower)?;
    let address = format!("{host}:{port}");
    let mut topics: Vec<WritableTxnMarkerTopic> = Vec::new();
    for (topic, index) in partitions {
        match topics
            .iter_mut()
            .find(|t| t.name.as_str() == topic.as_str())
        {
            Some(entry) => entry.partition_indexes.push(*index),
            None => topics.push(
                WritableTxnMarkerTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partition_indexes(vec![*index]),
            ),
        }
    }
    let request =
        WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_transaction_result(commit)
            .with_coordinator_epoch(coordinator_epoch)
            .with_topics(topics)]);
    let client_id = format!("strom-txn-coordinator-{}", broker.config().node_id);
    let send = async {
        let connection = super::connections::connection(
            broker,
            &address,
            client_id.clone(),
            REMOTE_MARKER_TIMEOUT,
        )
        .await?;
        connection.send_version(&request, 1).await
    };
    let response = send.await.map_err(|error| {
        super::connections::forget(&client_id, &address);
        warn!(leader, %error, "cannot send transaction markers");
        ErrorCode::CoordinatorNotAvailable
    })?;
    for marker in &response.markers {
        for topic in &marker.topics {
            for partition in &topic.partitions {
                match ErrorCode::try_from_code(partition.error_code) {
                    None | Some(ErrorCode::UnknownTopicOrPartition) => {}
                    Some(code) => {
                        warn!(leader, topic = %topic.name.as_str(), partition = partition.partition_index, ?code, "remote marker refused");
                        return Err(code);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Longest a remote marker write may take.
const REMOTE_MARKER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Pending writes name their topic for the logs; a user topic's name is not `'static`.
fn topic_image_name(topic: &str) -> &'static str {
    if topic == OFFSETS_TOPIC {
        OFFSETS_TOPIC
    } else {
        "a transaction's partition"
    }
}
