//! Transaction version 2 on a cluster: a partition leader that is not the coordinator of a
//! transactional id adds a partition to that id's transaction with AddPartitionsToTxn v5
//! (broker to broker, `verify_only` false), as Kafka's `AddPartitionsToTxnManager` does
//! for Produce v12+.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;
use tracing::warn;

use super::state::{ProducerIdAndEpoch, TopicPartition};
use crate::internal_topics;
use crate::state::Broker;

/// Longest the coordinator may take to answer (a produce waits for it).
const REMOTE_ADD_TIMEOUT: Duration = Duration::from_secs(5);

/// The AddPartitionsToTxn version brokers send for an implicit add (KIP-890 part 2).
const ADD_PARTITIONS_VERSION: i16 = 5;

/// Asks the coordinator of `transactional_id` to add `partition` to the producer's
/// transaction. The coordinator's own error codes come back unchanged (PRODUCER_FENCED,
/// CONCURRENT_TRANSACTIONS, ...); an unreachable coordinator is NOT_COORDINATOR, which the
/// producer answers by looking the coordinator up again.
pub async fn add_partition(
    broker: &Arc<Broker>,
    transactional_id: &str,
    producer: ProducerIdAndEpoch,
    partition: &TopicPartition,
) -> Result<(), ErrorCode> {
    let partitions = broker
        .image()
        .topic(super::TRANSACTION_STATE_TOPIC)
        .map(|t| t.partition_count())
        .ok_or(ErrorCode::CoordinatorNotAvailable)?;
    let index = internal_topics::partition_for(transactional_id, partitions);
    let coordinator = internal_topics::leader_of(broker, super::TRANSACTION_STATE_TOPIC, index);
    let image = broker.image();
    let (host, port) = image
        .brokers()
        .get(&coordinator)
        .and_then(|registration| registration.endpoint(&broker.config.inter_broker_listener))
        .ok_or(ErrorCode::NotCoordinator)?;
    let address = format!("{host}:{port}");
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(
                transactional_id.to_string(),
            )))
            .with_producer_id(ProducerId(producer.producer_id))
            .with_producer_epoch(producer.producer_epoch)
            .with_verify_only(false)
            .with_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(partition.0.clone())))
                .with_partitions(vec![partition.1])]),
    ]);
    let config = crate::inter_broker::connection_config(
        &broker.inter_broker_security,
        format!("strom-txn-partition-leader-{}", broker.config.node_id),
        REMOTE_ADD_TIMEOUT,
        REMOTE_ADD_TIMEOUT,
    );
    let response = async {
        let connection = strom_client::connection::Connection::connect(&address, config).await?;
        connection
            .send_version(&request, ADD_PARTITIONS_VERSION)
            .await
    }
    .await
    .map_err(|error| {
        warn!(coordinator, %error, "cannot add a partition to a transaction remotely");
        ErrorCode::NotCoordinator
    })?;
    if let Some(code) = ErrorCode::try_from_code(response.error_code) {
        return Err(code);
    }
    let code = response
        .results_by_transaction
        .iter()
        .filter(|result| result.transactional_id.as_str() == transactional_id)
        .flat_map(|result| result.topic_results.iter())
        .filter(|topic| topic.name.as_str() == partition.0)
        .flat_map(|topic| topic.results_by_partition.iter())
        .find(|result| result.partition_index == partition.1)
        .map(|result| result.partition_error_code)
        .ok_or(ErrorCode::UnknownServerError)?;
    match ErrorCode::try_from_code(code) {
        None => Ok(()),
        Some(code) => Err(code),
    }
}
