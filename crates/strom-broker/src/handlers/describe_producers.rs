//! DescribeProducers: the idempotent producers each partition knows (id, epoch, last
//! sequence, last batch timestamp), from the log's producer state. No transactions yet:
//! coordinator epoch and transaction start offset are -1.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;

use crate::state::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let image = broker.image();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let found = image.topic(topic.name.0.as_str());
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&index| {
                    let response = PartitionResponse::default().with_partition_index(index);
                    let Some(partition) =
                        found.and_then(|t| broker.partitions().get(t.topic_id, index))
                    else {
                        return response
                            .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "{}-{index} is not hosted by this broker",
                                topic.name.0
                            ))));
                    };
                    let producers = partition.log.lock().active_producers();
                    response.with_active_producers(
                        producers
                            .into_iter()
                            .map(|p| {
                                ProducerState::default()
                                    .with_producer_id(ProducerId(p.producer_id))
                                    .with_producer_epoch(p.producer_epoch as i32)
                                    .with_last_sequence(p.last_sequence)
                                    .with_last_timestamp(p.last_timestamp_ms)
                                    .with_coordinator_epoch(p.coordinator_epoch)
                                    .with_current_txn_start_offset(p.current_txn_start_offset)
                            })
                            .collect(),
                    )
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
