//! ListOffsets: earliest, latest, max-timestamp, and first offset at or after a timestamp.
//! "Latest" is the high watermark (read_committed: the last stable offset), and no offset at
//! or past it is answered; only the leader answers.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use strom_protocol::ErrorCode;

use crate::errors::NO_ERROR;
use tracing::warn;

use crate::state::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

fn answer(
    index: i32,
    error: i16,
    timestamp: i64,
    offset: i64,
    epoch: i32,
) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse::default()
        .with_partition_index(index)
        .with_error_code(error)
        .with_timestamp(timestamp)
        .with_offset(offset)
        .with_leader_epoch(epoch)
}

pub async fn handle(
    broker: &Arc<Broker>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let image = broker.image();
    // Timestamps on tiered topics are looked up in the remote tier first, before any
    // partition lock is taken.
    let wanted_remote = request
        .topics
        .iter()
        .filter_map(|wanted| Some((image.topic(wanted.name.0.as_str())?, wanted)))
        .flat_map(|(topic, wanted)| {
            wanted
                .partitions
                .iter()
                .filter(|p| p.timestamp >= 0)
                .map(move |p| (topic.topic_id, p.partition_index, p.timestamp))
        })
        .collect::<Vec<_>>();
    let remote = if wanted_remote.is_empty() {
        crate::tiering::RemoteTimestampLookups::new()
    } else {
        crate::tiering::remote_offsets_for_times(broker, &image, wanted_remote).await
    };
    let read_committed = version >= 2 && request.isolation_level == 1;
    let topics = request
        .topics
        .into_iter()
        .map(|wanted| {
            let topic = image.topic(wanted.name.0.as_str());
            let partitions = wanted
                .partitions
                .iter()
                .map(|p| {
                    let index = p.partition_index;
                    let Some(partition) =
                        topic.and_then(|t| broker.partitions().get(t.topic_id, index))
                    else {
                        return answer(
                            index,
                            ErrorCode::UnknownTopicOrPartition.code(),
                            -1,
                            -1,
                            -1,
                        );
                    };
                    let epoch = partition.leader_epoch();
                    if version >= 4
                        && p.current_leader_epoch >= 0
                        && p.current_leader_epoch != epoch
                    {
                        let error: i16 = if p.current_leader_epoch < epoch {
                            ErrorCode::FencedLeaderEpoch.code()
                        } else {
                            ErrorCode::UnknownLeaderEpoch.code()
                        };
                        return answer(index, error, -1, -1, -1);
                    }
                    if !partition.is_leader() {
                        return answer(index, ErrorCode::NotLeaderOrFollower.code(), -1, -1, -1);
                    }
                    let log = partition.log.lock();
                    // Consumers see below the high watermark; read_committed (v2+) also
                    // below the last stable offset.
                    let high_watermark = partition.high_watermark().max(log.log_start_offset());
                    let visible_end = if read_committed {
                        log.last_stable_offset().min(high_watermark)
                    } else {
                        high_watermark
                    };
                    let visible = |found: strom_storage::TimestampOffset| {
                        if found.offset < visible_end {
                            answer(index, NO_ERROR, found.timestamp_ms, found.offset, epoch)
                        } else {
                            answer(index, NO_ERROR, -1, -1, -1)
                        }
                    };
                    match p.timestamp {
                        LATEST => answer(index, NO_ERROR, -1, visible_end, epoch),
                        // A tiered partition starts in the remote tier; -4 is the
                        // first offset still on local disk.
                        EARLIEST => {
                            let local = log.log_start_offset();
                            let start =
                                crate::tiering::remote_log_start(broker, partition.topic_id, index)
                                    .map_or(local, |remote| remote.min(local));
                            answer(index, NO_ERROR, -1, start, epoch)
                        }
                        EARLIEST_LOCAL => {
                            answer(index, NO_ERROR, -1, log.log_start_offset(), epoch)
                        }
                        LATEST_TIERED => match crate::tiering::remote_last_offset(
                            broker,
                            partition.topic_id,
                            index,
                        ) {
                            Some(last) => answer(index, NO_ERROR, -1, last, epoch),
                            None => answer(index, NO_ERROR, -1, -1, -1),
                        },
                        MAX_TIMESTAMP => match log.max_timestamp_offset() {
                            Ok(Some(found)) => visible(found),
                            Ok(None) => answer(index, NO_ERROR, -1, -1, -1),
                            Err(error) => {
                                warn!(%error, "max timestamp lookup failed");
                                answer(index, ErrorCode::KafkaStorageError.code(), -1, -1, -1)
                            }
                        },
                        timestamp if timestamp >= 0 => match remote
                            .get(&(partition.topic_id, index, timestamp))
                            .cloned()
                            .unwrap_or(Ok(None))
                        {
                            Ok(Some(found)) => visible(found),
                            Ok(None) => match log.offset_for_timestamp(timestamp) {
                                Ok(Some(found)) => visible(found),
                                Ok(None) => answer(index, NO_ERROR, -1, -1, -1),
                                Err(error) => {
                                    warn!(%error, "timestamp lookup failed");
                                    answer(index, ErrorCode::KafkaStorageError.code(), -1, -1, -1)
                                }
                            },
                            Err(error) => {
                                warn!(topic = %partition.topic, partition = index, %error, "remote timestamp lookup failed");
                                answer(index, ErrorCode::KafkaStorageError.code(), -1, -1, -1)
                            }
                        },
                        _ => answer(index, ErrorCode::InvalidRequest.code(), -1, -1, -1),
                    }
                })
                .map(|mut answer| {
                    if version < 4 {
                        answer.leader_epoch = -1; // not in the response before v4
                    }
                    answer
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(wanted.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
