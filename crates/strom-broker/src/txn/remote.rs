//! A partition leader that is not the coordinator of a transactional id asks that
//! coordinator about a transactional write, broker to broker, as Kafka's
//! `AddPartitionsToTxnManager` does: with transaction version 2 (Produce v12+) it adds the
//! partition to the transaction (AddPartitionsToTxn v5, `verify_only` false); with version 1
//! it checks that the producer already added it (AddPartitionsToTxn v4, `verify_only`
//! true, KIP-890 part 1).

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
/// The AddPartitionsToTxn version brokers send to verify a transaction version 1 write
/// (KIP-890 part 1; the first version with `verify_only`).
const VERIFY_PARTITIONS_VERSION: i16 = 4;

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
    ask(broker, transactional_id, producer, partition, false).await
}

/// Asks the coordinator of `transactional_id` whether `partition` is in the producer's
/// open transaction at its current epoch, changing nothing (`verify_only`): INVALID_TXN_STATE
/// when it is not, INVALID_PRODUCER_EPOCH / PRODUCER_FENCED for an old epoch. Errors as
/// [`add_partition`]'s.
pub async fn verify_partition(
    broker: &Arc<Broker>,
    transactional_id: &str,
    producer: ProducerIdAndEpoch,
    partition: &TopicPartition,
) -> Result<(), ErrorCode> {
    ask(broker, transactional_id, producer, partition, true).await
}

async fn ask(
    broker: &Arc<Broker>,
    transactional_id: &str,
    producer: ProducerIdAndEpoch,
    partition: &TopicPartition,
    verify_only: bool,
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
        .and_then(|registration| registration.endpoint(&broker.config().inter_broker_listener))
        .ok_or(ErrorCode::NotCoordinator)?;
    let address = format!("{host}:{port}");
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(
                transactional_id.to_string(),
            )))
            .with_producer_id(ProducerId(producer.producer_id))
            .with_producer_epoch(producer.producer_epoch)
            .with_verify_only(verify_only)
            .with_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(partition.0.clone())))
                .with_partitions(vec![partition.1])]),
    ]);
    let client_id = format!("strom-txn-partition-leader-{}", broker.config().node_id);
    let response = async {
        let connection =
            super::connections::connection(broker, &address, client_id.clone(), REMOTE_ADD_TIMEOUT)
                .await?;
        connection
            .send_version(
                &request,
                if verify_only {
                    VERIFY_PARTITIONS_VERSION
                } else {
                    ADD_PARTITIONS_VERSION
                },
            )
            .await
    }
    .await
    .map_err(|error| {
        super::connections::forget(&client_id, &address);
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
