//! Writing transaction markers (COMMIT/ABORT control batches) to partition logs.
//!
//! Used by the transaction coordinator when a transaction ends and by WriteTxnMarkers (an
//! operator aborting a hanging transaction; later, coordinators on other brokers). A marker
//! on a `__consumer_offsets` partition also settles the offsets the transaction committed
//! there, under the group coordinator's lock so log order and memory order agree.

use std::sync::Arc;

use strom_protocol::ErrorCode;
use strom_storage::{AppendError, ControlMarker};
use tracing::warn;

use crate::group::{records as group_records, OFFSETS_TOPIC};
use crate::state::{now_ms, Broker};

/// Writes one marker to a partition this broker hosts.
pub fn write_marker(
    broker: &Arc<Broker>,
    topic: &str,
    index: i32,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
) -> Result<(), ErrorCode> {
    let image = broker.image();
    let topic_image = image
        .topic(topic)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    if index < 0 || index as usize >= topic_image.partitions.len() {
        return Err(ErrorCode::UnknownTopicOrPartition);
    }
    let partition = broker
        .partitions
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
        let partition_count = topic_image.partition_count();
        let mut groups = broker.groups.state.lock();
        let result = append();
        if matches!(result, Some(Ok(_))) {
            groups.complete_txn_offsets(now_ms(), producer_id, commit, |group| {
                group_records::partition_for(group, partition_count) == index
            });
        }
        result
    } else {
        append()
    };
    let Some(result) = result else {
        return Err(ErrorCode::NotLeaderOrFollower);
    };
    match result {
        Ok(_) => {
            broker.notify_appended();
            Ok(())
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
