//! OffsetForLeaderEpoch: the end offset of a leader epoch, so a follower or consumer can
//! find where its log diverges from the leader's.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use strom_protocol::ErrorCode;

use crate::errors::NO_ERROR;

use crate::state::Broker;

fn answer(partition: i32, error: i16, epoch: i32, end_offset: i64) -> EpochEndOffset {
    EpochEndOffset::default()
        .with_partition(partition)
        .with_error_code(error)
        .with_leader_epoch(epoch)
        .with_end_offset(end_offset)
}

pub fn handle(
    broker: &Arc<Broker>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let image = broker.image();
    let topics = request
        .topics
        .into_iter()
        .map(|wanted| {
            let topic = image.topic(wanted.topic.0.as_str());
            let partitions = wanted
                .partitions
                .iter()
                .map(|p| {
                    let Some(partition) =
                        topic.and_then(|t| broker.partitions().get(t.topic_id, p.partition))
                    else {
                        return answer(
                            p.partition,
                            ErrorCode::UnknownTopicOrPartition.code(),
                            -1,
                            -1,
                        );
                    };
                    let current = partition.leader_epoch();
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch != current {
                        let error: i16 = if p.current_leader_epoch < current {
                            ErrorCode::FencedLeaderEpoch.code()
                        } else {
                            ErrorCode::UnknownLeaderEpoch.code()
                        };
                        return answer(p.partition, error, -1, -1);
                    }
                    let log = partition.log.lock();
                    if p.leader_epoch > current {
                        return answer(p.partition, NO_ERROR, -1, -1);
                    }
                    if p.leader_epoch == current {
                        return answer(p.partition, NO_ERROR, current, log.log_end_offset());
                    }
                    match log.end_offset_for_epoch(p.leader_epoch) {
                        Some((epoch, end_offset)) => {
                            answer(p.partition, NO_ERROR, epoch, end_offset)
                        }
                        None => answer(p.partition, NO_ERROR, -1, -1),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(wanted.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
