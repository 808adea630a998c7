//! AddPartitionsToTxn: a transactional producer adds the partitions it is about to write
//! (v0-3, one transaction, from the client), or a partition leader checks or adds
//! partitions for many transactions (v4+, broker to broker; `verify_only` is KIP-890's
//! check before a write).
//!
//! Kafka's rules: a refused or unknown partition fails with its own code and every other
//! partition of the request gets OPERATION_NOT_ATTEMPTED; nothing is added then.

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use strom_controller::acl::{operation as op, resource_type as rt};
use strom_protocol::ErrorCode;

use crate::authz::Check;
use crate::state::Broker;
use crate::txn::state::{ProducerIdAndEpoch, TopicPartition};

/// Requests may name at most this many partitions per transaction (bounded work per request).
const PARTITIONS_PER_TRANSACTION_MAX: usize = 10_000;

/// The code a client of `version` understands for `code`.
pub fn for_version(code: ErrorCode, version: i16) -> ErrorCode {
    if code == ErrorCode::ProducerFenced && version < 2 {
        ErrorCode::InvalidProducerEpoch
    } else {
        code
    }
}

fn topic_results(
    topics: &[AddPartitionsToTxnTopic],
    code_of: impl Fn(&str, i32) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|topic| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(
                    topic
                        .partitions
                        .iter()
                        .map(|&partition| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(partition)
                                .with_partition_error_code(code_of(&topic.name, partition))
                        })
                        .collect(),
                )
        })
        .collect()
}

/// Handles one transaction's partitions; the per-partition results.
async fn add(
    broker: &Arc<Broker>,
    check: &Check<'_>,
    transaction: &AddPartitionsToTxnTransaction,
    version: i16,
    from_broker: bool,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let topics = &transaction.topics;
    let all = |code: Option<ErrorCode>| topic_results(topics, |_, _| code.map_or(0, |c| c.code()));
    let transactional_id = transaction.transactional_id.as_str();
    if !from_broker && !check.allows(op::WRITE, rt::TRANSACTIONAL_ID, transactional_id) {
        return all(Some(ErrorCode::TransactionalIdAuthorizationFailed));
    }
    let count: usize = topics.iter().map(|t| t.partitions.len()).sum();
    if count > PARTITIONS_PER_TRANSACTION_MAX {
        return all(Some(ErrorCode::InvalidRequest));
    }
    // Per partition: refused by ACL or unknown.
    let image = broker.image();
    let refusal = |topic: &str, partition: i32| -> Option<ErrorCode> {
        if !from_broker && !check.allows(op::WRITE, rt::TOPIC, topic) {
            return Some(ErrorCode::TopicAuthorizationFailed);
        }
        match image.topic(topic) {
            Some(t) if partition >= 0 && (partition as usize) < t.partitions.len() => None,
            _ => Some(ErrorCode::UnknownTopicOrPartition),
        }
    };
    let refused: Vec<(String, i32, ErrorCode)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |&p| (t.name.to_string(), p)))
        .filter_map(|(topic, partition)| {
            refusal(&topic, partition).map(|code| (topic, partition, code))
        })
        .collect();
    if !refused.is_empty() {
        return topic_results(topics, |topic, partition| {
            refused
                .iter()
                .find(|(t, p, _)| t == topic && *p == partition)
                .map_or(ErrorCode::OperationNotAttempted, |(_, _, code)| *code)
                .code()
        });
    }
    let partitions: Vec<TopicPartition> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |&p| (t.name.to_string(), p)))
        .collect();
    let producer = ProducerIdAndEpoch {
        producer_id: transaction.producer_id.0,
        producer_epoch: transaction.producer_epoch,
    };
    let result = if transaction.verify_only {
        let mut outcome = Ok(());
        for partition in &partitions {
            outcome = broker
                .txns()
                .verify(transactional_id, producer, partition)
                .await
                .map(|_| ());
            if outcome.is_err() {
                break;
            }
        }
        outcome
    } else {
        broker
            .txns()
            .add_partitions(transactional_id, producer, &partitions)
            .await
    };
    match result {
        Ok(()) => all(None),
        Err(code) => all(Some(for_version(code, version))),
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    check: &Check<'_>,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    if version <= 3 {
        let transaction = AddPartitionsToTxnTransaction::default()
            .with_transactional_id(request.v3_and_below_transactional_id)
            .with_producer_id(request.v3_and_below_producer_id)
            .with_producer_epoch(request.v3_and_below_producer_epoch)
            .with_topics(request.v3_and_below_topics);
        let results = add(broker, check, &transaction, version, false).await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    // v4+: sent by brokers; Kafka requires CLUSTER_ACTION.
    if !check.allows_cluster(op::CLUSTER_ACTION) {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(ErrorCode::ClusterAuthorizationFailed.code());
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for transaction in &request.transactions {
        let topic_results = add(broker, check, transaction, version, true).await;
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(transaction.transactional_id.clone())
                .with_topic_results(topic_results),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}
