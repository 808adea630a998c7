//! Transaction administration, the way Kafka's Admin client and `kafka-transactions.sh` do
//! it: list transactions (ListTransactions, at every broker), describe them (DescribeTransactions,
//! at each transactional id's coordinator found with FindCoordinator key type 1), the
//! producers of partitions with their open transactions (DescribeProducers, at each
//! partition's leader), hanging transactions ([`hanging`]), and aborting one by writing an
//! ABORT marker at the partition's leader (WriteTxnMarkers, as `kafka-transactions.sh abort`).
//!
//! Must not: take part in transactions. The transactional *producer* is not here; these calls
//! only observe coordinators and partitions, and the abort is an operator's last resort.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::connection::{api_key_name, negotiate, Connection};
use crate::error::{ClientError, Result};

pub mod hanging;

pub use hanging::{filter_hanging, hanging_candidates, HangingTransaction};

/// The versions of the transaction admin APIs this module speaks, as (key, min, max).
/// WriteTxnMarkers v0 left Kafka in 4.0; `kafka-protocol` 0.18 knows only v1.
pub const TRANSACTION_API_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::FindCoordinator, 1, 4),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::WriteTxnMarkers, 1, 1),
];

/// Kafka's transaction states, as the coordinator names them on the wire.
pub const TRANSACTION_STATES: &[&str] = &[
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
];

const COORDINATOR_KEY_TYPE_TRANSACTION: i8 = 1;
/// Rounds of FindCoordinator + request while coordinators load or move.
const COORDINATOR_ATTEMPTS_MAX: u32 = 10;
/// Transactional ids per FindCoordinator / DescribeTransactions request, and partitions per
/// DescribeProducers request, so one call never builds a giant request (Kafka's tool uses 500).
pub const BATCH_SIZE_MAX: usize = 500;

/// Error codes this module reacts to.
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

/// Which transactions ListTransactions returns; empty lists and `None` match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListTransactionsFilter {
    /// Wire names from [`TRANSACTION_STATES`].
    pub states: Vec<String>,
    pub producer_ids: Vec<i64>,
    /// Only transactions running longer than this (ListTransactions v1+, KIP-994).
    pub running_longer_than_ms: Option<i64>,
}

/// One transactional id as a coordinator lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    pub transactional_id: String,
    pub coordinator_id: i32,
    pub producer_id: i64,
    pub state: String,
}

/// One transactional id as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    pub transactional_id: String,
    pub coordinator_id: i32,
    pub state: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub transaction_timeout_ms: i32,
    /// `None` when no transaction is open (the wire's -1).
    pub transaction_start_time_ms: Option<i64>,
    /// The partitions in the transaction (those still waiting for a marker when preparing).
    pub partitions: BTreeSet<(String, i32)>,
}

/// One producer of one partition, as its leader describes it (DescribeProducers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProducer {
    pub topic: String,
    pub partition: i32,
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub last_sequence: i32,
    pub last_timestamp_ms: i64,
    /// The coordinator epoch of the last marker this partition saw; `None` before any.
    pub coordinator_epoch: Option<i32>,
    /// The first offset of the producer's open transaction; `None` when none is open.
    pub current_txn_start_offset: Option<i64>,
}

/// What an abort needs: the partition, and the producer whose open transaction to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortSpec {
    pub topic: String,
    pub partition: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Must be at least the partition's last coordinator epoch, or the leader refuses the
    /// marker (TRANSACTION_COORDINATOR_FENCED).
    pub coordinator_epoch: i32,
}

impl AbortSpec {
    /// The abort of `producer`'s open transaction, with its epochs as the leader reports
    /// them. A coordinator epoch the partition never saw (-1) becomes 0, as Kafka's tool
    /// does: no smaller than any epoch a coordinator can have.
    pub fn for_producer(producer: &PartitionProducer) -> Result<AbortSpec> {
        let producer_epoch =
            i16::try_from(producer.producer_epoch).map_err(|_| ClientError::InvalidConfig {
                key: "producer_epoch",
                reason: format!(
                    "producer {} reports epoch {}, outside a 16-bit epoch",
                    producer.producer_id, producer.producer_epoch
                ),
            })?;
        Ok(AbortSpec {
            topic: producer.topic.clone(),
            partition: producer.partition,
            producer_id: producer.producer_id,
            producer_epoch,
            coordinator_epoch: producer.coordinator_epoch.unwrap_or(0).max(0),
        })
    }
}

fn str_bytes(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn version(connection: &Connection, api_key: ApiKey) -> Result<i16> {
    let &(_, min, max) = TRANSACTION_API_VERSIONS
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .expect("listed");
    let broker = connection.broker_range(api_key);
    negotiate((min, max), broker).ok_or_else(|| ClientError::UnsupportedApi {
        api: api_name(api_key),
        address: connection.address().to_string(),
        client_min: min,
        client_max: max,
        broker,
    })
}

fn api_name(api_key: ApiKey) -> &'static str {
    match api_key {
        ApiKey::ListTransactions => "ListTransactions",
        ApiKey::DescribeTransactions => "DescribeTransactions",
        ApiKey::WriteTxnMarkers => "WriteTxnMarkers",
        ApiKey::FindCoordinator => "FindCoordinator",
        other => api_key_name(other),
    }
}

fn coordinator_retriable(code: i16) -> bool {
    matches!(
        code,
        COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR
    )
}

fn missing(api: &'static str, connection: &Connection, what: String) -> ClientError {
    ClientError::Decode {
        api,
        version: -1,
        address: connection.address().to_string(),
        reason: what,
    }
}

impl Admin {
    /// Every transaction every broker's coordinator knows, matching `filter`, sorted by
    /// transactional id.
    pub async fn list_transactions(
        &self,
        filter: &ListTransactionsFilter,
    ) -> Result<Vec<TransactionListing>> {
        let metadata = self.client().refresh_metadata(Some(&[]), false).await?;
        let mut listings = Vec::new();
        for &broker_id in metadata.brokers.keys() {
            listings.extend(self.list_transactions_at(broker_id, filter).await?);
        }
        listings.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        listings.dedup_by(|a, b| a.transactional_id == b.transactional_id);
        Ok(listings)
    }

    async fn list_transactions_at(
        &self,
        broker_id: i32,
        filter: &ListTransactionsFilter,
    ) -> Result<Vec<TransactionListing>> {
        let connection = self.client().broker_connection(broker_id).await?;
        let v = version(&connection, ApiKey::ListTransactions)?;
        if filter.running_longer_than_ms.is_some() && v < 1 {
            return Err(ClientError::UnsupportedApi {
                api: "ListTransactions with a duration filter",
                address: connection.address().to_string(),
                client_min: 1,
                client_max: 2,
                broker: connection.broker_range(ApiKey::ListTransactions),
            });
        }
        let request = ListTransactionsRequest::default()
            .with_state_filters(filter.states.iter().map(|s| str_bytes(s)).collect())
            .with_producer_id_filters(filter.producer_ids.iter().map(|&p| ProducerId(p)).collect())
            .with_duration_filter(filter.running_longer_than_ms.unwrap_or(-1));
        let mut attempt = 0;
        loop {
            let response = connection.send_version(&request, v).await?;
            match ClientError::from_code(
                response.error_code,
                None,
                format!("list transactions at broker {broker_id}"),
            ) {
                None => {
                    return Ok(response
                        .transaction_states
                        .into_iter()
                        .map(|t| TransactionListing {
                            transactional_id: t.transactional_id.0.to_string(),
                            coordinator_id: broker_id,
                            producer_id: t.producer_id.0,
                            state: t.transaction_state.to_string(),
                        })
                        .collect())
                }
                Some(error)
                    if coordinator_retriable(response.error_code)
                        && attempt < COORDINATOR_ATTEMPTS_MAX =>
                {
                    tracing::debug!(%error, attempt, "retrying ListTransactions");
                    tokio::time::sleep(self.client().config().backoff(attempt)).await;
                    attempt += 1;
                }
                Some(error) => return Err(error),
            }
        }
    }

    /// The coordinator (node id) of each transactional id, or why it has none.
    async fn transaction_coordinators(
        &self,
        transactional_ids: &[String],
    ) -> Result<BTreeMap<String, Result<i32>>> {
        let connection = self.client().any_connection().await?;
        let v = version(&connection, ApiKey::FindCoordinator)?;
        let mut out = BTreeMap::new();
        let mut answers: Vec<(String, i16, Option<StrBytes>, i32)> = Vec::new();
        if v >= 4 {
            for chunk in transactional_ids.chunks(BATCH_SIZE_MAX) {
                let request = FindCoordinatorRequest::default()
                    .with_key_type(COORDINATOR_KEY_TYPE_TRANSACTION)
                    .with_coordinator_keys(chunk.iter().map(|id| str_bytes(id)).collect());
                let response = connection.send_version(&request, v).await?;
                answers.extend(response.coordinators.into_iter().map(|c| {
                    (
                        c.key.to_string(),
                        c.error_code,
                        c.error_message,
                        c.node_id.0,
                    )
                }));
            }
        } else {
            for id in transactional_ids {
                let request = FindCoordinatorRequest::default()
                    .with_key_type(COORDINATOR_KEY_TYPE_TRANSACTION)
                    .with_key(str_bytes(id));
                let response = connection.send_version(&request, v).await?;
                answers.push((
                    id.clone(),
                    response.error_code,
                    response.error_message,
                    response.node_id.0,
                ));
            }
        }
        for (id, code, message, node_id) in answers {
            let result = match ClientError::from_code(
                code,
                message.as_deref(),
                format!("find the coordinator of transactional id '{id}'"),
            ) {
                Some(error) => Err(error),
                None => Ok(node_id),
            };
            out.insert(id, result);
        }
        for id in transactional_ids {
            if !out.contains_key(id) {
                out.insert(
                    id.clone(),
                    Err(missing(
                        "FindCoordinatorResponse",
                        &connection,
                        format!("no coordinator for transactional id '{id}' in the answer"),
                    )),
                );
            }
        }
        if out.values().any(|r| {
            r.as_ref()
                .is_ok_and(|id| !self.client().metadata().brokers.contains_key(id))
        }) {
            self.client().refresh_metadata(Some(&[]), false).await?;
        }
        Ok(out)
    }

    /// Describes transactional ids at their coordinators; one result per distinct id, in the
    /// order given. An id no coordinator knows is `TRANSACTIONAL_ID_NOT_FOUND` (code 105).
    pub async fn describe_transactions(
        &self,
        transactional_ids: &[String],
    ) -> Result<Vec<(String, Result<TransactionDescription>)>> {
        let mut done: BTreeMap<String, Result<TransactionDescription>> = BTreeMap::new();
        let mut pending: Vec<String> = transactional_ids.to_vec();
        pending.sort();
        pending.dedup();
        let mut attempt = 0;
        while !pending.is_empty() {
            let mut retry = Vec::new();
            let coordinators = self.transaction_coordinators(&pending).await?;
            let mut by_coordinator: BTreeMap<i32, Vec<String>> = BTreeMap::new();
            for (id, coordinator) in coordinators {
                match coordinator {
                    Ok(node_id) => by_coordinator.entry(node_id).or_default().push(id),
                    Err(error)
                        if error.code().is_some_and(coordinator_retriable)
                            && attempt < COORDINATOR_ATTEMPTS_MAX =>
                    {
                        retry.push(id)
                    }
                    Err(error) => {
                        done.insert(id, Err(error));
                    }
                }
            }
            for (node_id, ids) in by_coordinator {
                let connection = self.client().broker_connection(node_id).await?;
                let v = version(&connection, ApiKey::DescribeTransactions)?;
                for chunk in ids.chunks(BATCH_SIZE_MAX) {
                    let request = DescribeTransactionsRequest::default().with_transactional_ids(
                        chunk
                            .iter()
                            .map(|id| TransactionalId(str_bytes(id)))
                            .collect(),
                    );
                    let response = connection.send_version(&request, v).await?;
                    for state in response.transaction_states {
                        let id = state.transactional_id.0.to_string();
                        let code = state.error_code;
                        match ClientError::from_code(
                            code,
                            None,
                            format!("describe transactional id '{id}'"),
                        ) {
                            Some(_)
                                if coordinator_retriable(code)
                                    && attempt < COORDINATOR_ATTEMPTS_MAX =>
                            {
                                retry.push(id)
                            }
                            Some(error) => {
                                done.insert(id, Err(error));
                            }
                            None => {
                                let description = TransactionDescription {
                                    transactional_id: id.clone(),
                                    coordinator_id: node_id,
                                    state: state.transaction_state.to_string(),
                                    producer_id: state.producer_id.0,
                                    producer_epoch: state.producer_epoch,
                                    transaction_timeout_ms: state.transaction_timeout_ms,
                                    transaction_start_time_ms: (state.transaction_start_time_ms
                                        >= 0)
                                        .then_some(state.transaction_start_time_ms),
                                    partitions: state
                                        .topics
                                        .iter()
                                        .flat_map(|t| {
                                            t.partitions.iter().map(|&p| (t.topic.0.to_string(), p))
                                        })
                                        .collect(),
                                };
                                done.insert(id, Ok(description));
                            }
                        }
                    }
                    for id in chunk {
                        if !done.contains_key(id) && !retry.contains(id) {
                            done.insert(
                                id.clone(),
                                Err(missing(
                                    "DescribeTransactionsResponse",
                                    &connection,
                                    format!("no state for transactional id '{id}' in the answer"),
                                )),
                            );
                        }
                    }
                }
            }
            if !retry.is_empty() {
                tokio::time::sleep(self.client().config().backoff(attempt)).await;
                attempt += 1;
            }
            pending = retry;
        }
        let mut seen = BTreeSet::new();
        Ok(transactional_ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .map(|id| {
                let result = done.remove(id).expect("every pending id ends in `done`");
                (id.clone(), result)
            })
            .collect())
    }

    /// The producers of the given partitions, each asked of the partition's leader. A
    /// partition whose leader refuses is an error for the whole call, naming the partition.
    pub async fn describe_partition_producers(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<Vec<PartitionProducer>> {
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        for (topic, partition) in partitions {
            let leader = self.client().leader_for(topic, *partition).await?;
            by_leader
                .entry(leader)
                .or_default()
                .entry(topic.clone())
                .or_default()
                .push(*partition);
        }
        let mut out = Vec::new();
        for (leader, topics) in by_leader {
            let connection = self.client().broker_connection(leader).await?;
            let v = version(&connection, ApiKey::DescribeProducers)?;
            let mut flat: Vec<(String, i32)> = topics
                .into_iter()
                .flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p)))
                .collect();
            flat.sort();
            flat.dedup();
            for chunk in flat.chunks(BATCH_SIZE_MAX) {
                let mut grouped: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for (topic, partition) in chunk {
                    grouped.entry(topic).or_default().push(*partition);
                }
                let request = DescribeProducersRequest::default().with_topics(
                    grouped
                        .into_iter()
                        .map(|(topic, partitions)| {
                            TopicRequest::default()
                                .with_name(TopicName(str_bytes(topic)))
                                .with_partition_indexes(partitions)
                        })
                        .collect(),
                );
                let response = connection.send_version(&request, v).await?;
                for topic_response in response.topics {
                    let topic = topic_response.name.0.to_string();
                    for p in topic_response.partitions {
                        if let Some(error) = ClientError::from_code(
                            p.error_code,
                            p.error_message.as_deref(),
                            format!("describe producers of {topic}-{}", p.partition_index),
                        ) {
                            return Err(error);
                        }
                        out.extend(p.active_producers.into_iter().map(|s| {
                            PartitionProducer {
                                topic: topic.clone(),
                                partition: p.partition_index,
                                producer_id: s.producer_id.0,
                                producer_epoch: s.producer_epoch,
                                last_sequence: s.last_sequence,
                                last_timestamp_ms: s.last_timestamp,
                                coordinator_epoch: (s.coordinator_epoch >= 0)
                                    .then_some(s.coordinator_epoch),
                                current_txn_start_offset: (s.current_txn_start_offset >= 0)
                                    .then_some(s.current_txn_start_offset),
                            }
                        }));
                    }
                }
            }
        }
        out.sort_by(|a, b| {
            (&a.topic, a.partition, a.producer_id).cmp(&(&b.topic, b.partition, b.producer_id))
        });
        Ok(out)
    }

    /// Aborts a producer's open transaction on one partition by writing an ABORT marker at
    /// the partition's leader (WriteTxnMarkers, transaction_result = false), as
    /// `kafka-transactions.sh abort` does. For a transaction its coordinator has forgotten
    /// (hanging); a live one should be aborted by its producer or its timeout instead.
    pub async fn abort_transaction(&self, spec: &AbortSpec) -> Result<()> {
        let context = format!(
            "abort the transaction of producer {} (epoch {}) on {}-{}",
            spec.producer_id, spec.producer_epoch, spec.topic, spec.partition
        );
        let leader = self
            .client()
            .leader_for(&spec.topic, spec.partition)
            .await?;
        let connection = self.client().broker_connection(leader).await?;
        let v = version(&connection, ApiKey::WriteTxnMarkers)?;
        let request =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(spec.producer_id))
                .with_producer_epoch(spec.producer_epoch)
                .with_transaction_result(false)
                .with_coordinator_epoch(spec.coordinator_epoch)
                .with_topics(vec![WritableTxnMarkerTopic::default()
                    .with_name(TopicName(str_bytes(&spec.topic)))
                    .with_partition_indexes(vec![spec.partition])])]);
        let response = connection.send_version(&request, v).await?;
        let result = response
            .markers
            .iter()
            .filter(|m| m.producer_id.0 == spec.producer_id)
            .flat_map(|m| m.topics.iter())
            .filter(|t| t.name.0.as_str() == spec.topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == spec.partition)
            .ok_or_else(|| {
                missing(
                    "WriteTxnMarkersResponse",
                    &connection,
                    format!("no result for {}-{}", spec.topic, spec.partition),
                )
            })?;
        match ClientError::from_code(result.error_code, None, context) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Transactions left open on partitions of `topics` (every non-internal topic when
    /// `None`) that no coordinator will ever end: Kafka's `find-hanging`. A producer's open
    /// transaction is a candidate when its last write is older than
    /// `max_transaction_timeout_ms`; it is hanging unless the coordinator of its producer
    /// still lists that partition in a transaction of the producer.
    pub async fn find_hanging_transactions(
        &self,
        topics: Option<&[String]>,
        max_transaction_timeout_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<HangingTransaction>> {
        let topic_names: Vec<String> = match topics {
            Some(topics) => topics.to_vec(),
            None => self
                .list_topics(false)
                .await?
                .into_iter()
                .map(|t| t.name)
                .collect(),
        };
        let mut partitions = Vec::new();
        for topic in &topic_names {
            let metadata = self.describe_topic(topic).await?;
            partitions.extend(
                metadata
                    .partitions
                    .iter()
                    .map(|p| (topic.clone(), p.partition)),
            );
        }
        let producers = self.describe_partition_producers(&partitions).await?;
        let candidates = hanging_candidates(producers, max_transaction_timeout_ms, now_ms);
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let producer_ids: Vec<i64> = candidates
            .iter()
            .map(|c| c.producer_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let listings = self
            .list_transactions(&ListTransactionsFilter {
                producer_ids,
                ..ListTransactionsFilter::default()
            })
            .await?;
        let ids: Vec<String> = listings
            .iter()
            .map(|l| l.transactional_id.clone())
            .collect();
        let mut descriptions = BTreeMap::new();
        for (id, result) in self.describe_transactions(&ids).await? {
            match result {
                Ok(description) => {
                    descriptions.insert(id, description);
                }
                // Forgotten since it was listed: its transactions hang, like an unlisted one.
                Err(error) if error.code() == Some(TRANSACTIONAL_ID_NOT_FOUND) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(filter_hanging(candidates, &listings, &descriptions, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn producer(producer_epoch: i32, coordinator_epoch: Option<i32>) -> PartitionProducer {
        PartitionProducer {
            topic: "orders".into(),
            partition: 2,
            producer_id: 42,
            producer_epoch,
            last_sequence: 7,
            last_timestamp_ms: 1_000,
            coordinator_epoch,
            current_txn_start_offset: Some(90),
        }
    }

    #[test]
    fn given_producer_without_a_marker_yet_when_abort_is_built_should_use_coordinator_epoch_zero() {
        let spec = AbortSpec::for_producer(&producer(3, None)).expect("spec");
        assert_eq!(
            spec,
            AbortSpec {
                topic: "orders".into(),
                partition: 2,
                producer_id: 42,
                producer_epoch: 3,
                coordinator_epoch: 0,
            }
        );
        assert_eq!(
            AbortSpec::for_producer(&producer(3, Some(5)))
                .expect("spec")
                .coordinator_epoch,
            5
        );
    }

    #[test]
    fn given_epoch_beyond_16_bits_when_abort_is_built_should_refuse_naming_the_producer() {
        let error = AbortSpec::for_producer(&producer(40_000, Some(0))).unwrap_err();
        assert!(error.to_string().contains("producer 42"), "{error}");
    }
}
