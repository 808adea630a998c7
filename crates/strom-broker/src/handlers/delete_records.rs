//! DeleteRecords: moves partitions' log start offsets forward (Kafka's
//! `kafka-delete-records`). `offset = -1` means the high watermark; an offset beyond it is
//! OFFSET_OUT_OF_RANGE. The new start is checkpointed before segments below it are
//! unlinked, on the blocking pool (an fsync per partition).

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use strom_protocol::ErrorCode;
use strom_storage::ReadError;
use tracing::warn;

use crate::state::Broker;

/// `offset` value asking for the high watermark.
const HIGH_WATERMARK: i64 = -1;

fn delete_partition(broker: &Broker, topic: &str, index: i32, offset: i64) -> (i16, i64) {
    let image = broker.image();
    let Some(partition) = image
        .topic(topic)
        .and_then(|t| broker.partitions().get(t.topic_id, index))
    else {
        return (ErrorCode::UnknownTopicOrPartition.code(), -1);
    };
    let mut log = partition.log.lock();
    // Single node: the high watermark is the log end.
    let high_watermark = log.log_end_offset();
    let target = if offset == HIGH_WATERMARK {
        high_watermark
    } else {
        offset
    };
    if target < 0 || target > high_watermark {
        return (ErrorCode::OffsetOutOfRange.code(), -1);
    }
    match log.delete_records_before(target) {
        Ok(low_watermark) => (0, low_watermark),
        Err(ReadError::OffsetOutOfRange { .. }) => (ErrorCode::OffsetOutOfRange.code(), -1),
        Err(error) => {
            warn!(%topic, partition = index, %error, "delete records failed");
            (ErrorCode::KafkaStorageError.code(), -1)
        }
    }
}

pub async fn handle(broker: &Arc<Broker>, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let broker = broker.clone();
    let work = tokio::task::spawn_blocking(move || {
        request
            .topics
            .into_iter()
            .map(|topic| {
                let name = topic.name.0.to_string();
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let (code, low_watermark) =
                            delete_partition(&broker, &name, p.partition_index, p.offset);
                        DeleteRecordsPartitionResult::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code)
                            .with_low_watermark(low_watermark)
                    })
                    .collect();
                DeleteRecordsTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect::<Vec<_>>()
    });
    match work.await {
        Ok(topics) => DeleteRecordsResponse::default().with_topics(topics),
        Err(error) => {
            warn!(%error, "delete records task failed");
            DeleteRecordsResponse::default()
        }
    }
}
