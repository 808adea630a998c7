//! DescribeTransactions: the coordinator's view of transactional ids (state, producer id
//! and epoch, timeout, start time, partitions). DESCRIBE on each id, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use strom_controller::acl::{operation as op, resource_type as rt};
use strom_protocol::ErrorCode;

use crate::authz::Check;
use crate::state::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    check: &Check<'_>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let loaded = broker.txns().ensure_loaded().await;
    let states = request
        .transactional_ids
        .into_iter()
        .map(|id| {
            let failed = |code: ErrorCode| {
                TransactionState::default()
                    .with_transactional_id(id.clone())
                    .with_error_code(code.code())
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
                    .with_transaction_start_time_ms(-1)
            };
            if !check.allows(op::DESCRIBE, rt::TRANSACTIONAL_ID, &id) {
                return failed(ErrorCode::TransactionalIdAuthorizationFailed);
            }
            if let Err(code) = loaded {
                return failed(code);
            }
            let Some(metadata) = broker
                .txns()
                .read_id(&id, |state| state.get(&id).cloned())
                .flatten()
            else {
                return failed(ErrorCode::TransactionalIdNotFound);
            };
            let mut topics: Vec<TopicData> = Vec::new();
            for (topic, partition) in &metadata.partitions {
                match topics.last_mut() {
                    Some(last) if last.topic.as_str() == topic.as_str() => {
                        last.partitions.push(*partition)
                    }
                    _ => topics.push(
                        TopicData::default()
                            .with_topic(StrBytes::from_string(topic.clone()).into())
                            .with_partitions(vec![*partition]),
                    ),
                }
            }
            TransactionState::default()
                .with_transactional_id(id.clone())
                .with_transaction_state(StrBytes::from_static_str(metadata.state.name()))
                .with_transaction_timeout_ms(metadata.timeout_ms)
                .with_transaction_start_time_ms(metadata.txn_start_ms)
                .with_producer_id(ProducerId(metadata.producer_id))
                .with_producer_epoch(metadata.producer_epoch)
                .with_topics(topics)
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
