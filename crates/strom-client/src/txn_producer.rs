//! A transactional producer for exactly-once read-process-write loops (the streams
//! runtime's exactly_once_v2): records and consumed offsets commit or abort together.
//!
//! Records are buffered in memory and sent when the transaction commits: AddPartitionsToTxn,
//! then one Produce of transactional, idempotent batches per leader, then
//! AddOffsetsToTxn + TxnOffsetCommit for the consumer group's offsets, then EndTxn. A
//! read_committed reader sees nothing of a transaction before EndTxn, so sending late
//! costs no visibility; it keeps the client simple (no per-partition in-flight state
//! across awaits). The buffer is bounded by [`TRANSACTION_BYTES_MAX`]: the caller commits
//! more often than that fills.
//!
//! A second producer with the same transactional id fences this one: its next request
//! fails with PRODUCER_FENCED / INVALID_PRODUCER_EPOCH and it must be dropped.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strom_protocol::batch::Compression;
use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordToEncode};

use crate::cluster::Client;
use crate::connection::{api_key_name, negotiate, Connection};
use crate::error::{ClientError, Result};
use crate::partitioner::partition_for_key;
use crate::producer::ProducerRecord;

/// The versions of the transaction APIs spoken here, as (key, min, max).
pub const TXN_API_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::FindCoordinator, 1, 4),
];

/// Bytes of records one transaction may buffer.
pub const TRANSACTION_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Records per produced batch, and bytes (well under the default message.max.bytes).
const BATCH_RECORDS_MAX: usize = 2000;
const BATCH_BYTES_MAX: usize = 512 * 1024;
/// Attempts of one request through retriable errors (CONCURRENT_TRANSACTIONS, leader and
/// coordinator moves).
const ATTEMPTS_MAX: u32 = 20;
const COORDINATOR_KEY_TYPE_TRANSACTION: i8 = 1;
const CONCURRENT_TRANSACTIONS: i16 = 51;

fn str_bytes(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn version(connection: &Connection, api_key: ApiKey) -> Result<i16> {
    let (min, max) = TXN_API_VERSIONS
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .map(|&(_, min, max)| (min, max))
        .unwrap_or((0, -1));
    let broker = connection.broker_range(api_key);
    negotiate((min, max), broker).ok_or_else(|| ClientError::UnsupportedApi {
        api: api_key_name(api_key),
        address: connection.address().to_string(),
        client_min: min,
        client_max: max,
        broker,
    })
}

fn retriable(error: &ClientError) -> bool {
    error.is_retriable()
        || matches!(error.code(), Some(14..=16) | Some(CONCURRENT_TRANSACTIONS))
        || error.code().is_none()
}

/// Offsets to commit in a transaction, for a consumer group member.
#[derive(Debug, Clone)]
pub struct TxnOffsets {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    /// (topic, partition, next offset to consume).
    pub offsets: Vec<(String, i32, i64)>,
}

pub struct TransactionalProducer {
    client: Client,
    transactional_id: String,
    transaction_timeout: Duration,
    coordinator: Option<Connection>,
    producer_id: i64,
    producer_epoch: i16,
    sequences: HashMap<(String, i32), i32>,
    pending: BTreeMap<(String, i32), Vec<RecordToEncode>>,
    pending_bytes: usize,
    round_robin: i32,
    /// Records of the open transaction were sent by [`Self::flush`]: it must be ended.
    flushed: bool,
}

impl TransactionalProducer {
    /// InitProducerId for `transactional_id`: fences any older producer with the same id
    /// and aborts its open transaction.
    pub async fn new(
        client: Client,
        transactional_id: &str,
        transaction_timeout: Duration,
    ) -> Result<TransactionalProducer> {
        let mut producer = TransactionalProducer {
            client,
            transactional_id: transactional_id.to_string(),
            transaction_timeout,
            coordinator: None,
            producer_id: -1,
            producer_epoch: -1,
            sequences: HashMap::new(),
            pending: BTreeMap::new(),
            pending_bytes: 0,
            round_robin: 0,
            flushed: false,
        };
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(str_bytes(transactional_id))))
            .with_transaction_timeout_ms(
                transaction_timeout.as_millis().min(i32::MAX as u128) as i32
            )
            .with_producer_id((-1).into())
            .with_producer_epoch(-1);
        let mut attempt = 0;
        loop {
            let result = async {
                let connection = producer.coordinator().await?;
                let response = connection.send(&request).await?;
                match ClientError::from_code(
                    response.error_code,
                    None,
                    format!("InitProducerId of '{transactional_id}'"),
                ) {
                    Some(error) => Err(error),
                    None => Ok((response.producer_id.0, response.producer_epoch)),
                }
            }
            .await;
            match result {
                Ok((id, epoch)) => {
                    producer.producer_id = id;
                    producer.producer_epoch = epoch;
                    return Ok(producer);
                }
                Err(error) if retriable(&error) && attempt < ATTEMPTS_MAX => {
                    producer.coordinator = None;
                    tokio::time::sleep(producer.client.config().backoff(attempt)).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    pub fn producer_id_and_epoch(&self) -> (i64, i16) {
        (self.producer_id, self.producer_epoch)
    }

    pub fn transaction_timeout(&self) -> Duration {
        self.transaction_timeout
    }

    async fn coordinator(&mut self) -> Result<Connection> {
        if let Some(connection) = &self.coordinator {
            if !connection.is_closed() {
                return Ok(connection.clone());
            }
        }
        let connection = self.client.any_connection().await?;
        let v = version(&connection, ApiKey::FindCoordinator)?;
        let request = if v >= 4 {
            FindCoordinatorRequest::default()
                .with_key_type(COORDINATOR_KEY_TYPE_TRANSACTION)
                .with_coordinator_keys(vec![str_bytes(&self.transactional_id)])
        } else {
            FindCoordinatorRequest::default()
                .with_key_type(COORDINATOR_KEY_TYPE_TRANSACTION)
                .with_key(str_bytes(&self.transactional_id))
        };
        let response = connection.send_version(&request, v).await?;
        let (code, node) = if v >= 4 {
            match response.coordinators.first() {
                Some(c) => (c.error_code, c.node_id.0),
                None => (15, -1),
            }
        } else {
            (response.error_code, response.node_id.0)
        };
        if let Some(error) = ClientError::from_code(
            code,
            None,
            format!("find the coordinator of '{}'", self.transactional_id),
        ) {
            return Err(error);
        }
        if !self.client.metadata().brokers.contains_key(&node) {
            self.client.refresh_metadata(Some(&[]), false).await?;
        }
        let connection = self.client.broker_connection(node).await?;
        self.coordinator = Some(connection.clone());
        Ok(connection)
    }

    /// Buffer a record in the open transaction. Without a partition, a keyed record goes
    /// to murmur2(key) % partitions (Kafka's default), an unkeyed one round-robin.
    pub async fn send(&mut self, record: ProducerRecord) -> Result<()> {
        let partition = match record.partition {
            Some(partition) => partition,
            None => {
                let partitions = match self.client.cached_partition_count(&record.topic) {
                    Some(count) => count,
                    None => self
                        .client
                        .topic_metadata(&record.topic, false)
                        .await?
                        .partitions
                        .len() as i32,
                };
                if partitions <= 0 {
                    return Err(ClientError::UnknownTopic {
                        topic: record.topic.clone(),
                    });
                }
                match &record.key {
                    Some(key) => partition_for_key(key, partitions),
                    None => {
                        self.round_robin = self.round_robin.wrapping_add(1);
                        self.round_robin.rem_euclid(partitions)
                    }
                }
            }
        };
        let size = record.key.as_ref().map_or(0, Bytes::len)
            + record.value.as_ref().map_or(0, Bytes::len)
            + 32;
        if self.pending_bytes + size > TRANSACTION_BYTES_MAX {
            return Err(ClientError::Encode {
                api: "Produce",
                version: -1,
                reason: format!("a transaction may buffer at most {TRANSACTION_BYTES_MAX} bytes; commit more often"),
            });
        }
        self.pending_bytes += size;
        self.pending
            .entry((record.topic, partition))
            .or_default()
            .push(RecordToEncode {
                key: record.key,
                value: record.value,
                headers: record.headers,
                timestamp_ms: record.timestamp_ms.unwrap_or_else(crate::producer::now_ms),
            });
        Ok(())
    }

    /// Records buffered in the open transaction.
    pub fn pending_records(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }

    /// Send the buffered records and commit them, with `offsets` if given, atomically.
    /// On error the transaction is not committed; call [`Self::abort`] (or drop the
    /// producer if it was fenced).
    pub async fn commit(&mut self, offsets: Option<&TxnOffsets>) -> Result<()> {
        if self.pending.is_empty() && !self.flushed && offsets.is_none_or(|o| o.offsets.is_empty())
        {
            return Ok(());
        }
        let partitions: Vec<(String, i32)> = self.pending.keys().cloned().collect();
        if !partitions.is_empty() {
            self.add_partitions(&partitions).await?;
            self.produce_pending().await?;
        }
        if let Some(offsets) = offsets.filter(|o| !o.offsets.is_empty()) {
            self.add_offsets(&offsets.group_id).await?;
            self.txn_offset_commit(offsets).await?;
        }
        self.end(true).await?;
        self.flushed = false;
        Ok(())
    }

    /// Sends the buffered records inside the open transaction, as Kafka's `flush()`: they
    /// reach the log, hidden from read_committed consumers, until [`Self::commit`] or
    /// [`Self::abort`] decides them.
    pub async fn flush(&mut self) -> Result<()> {
        let partitions: Vec<(String, i32)> = self.pending.keys().cloned().collect();
        if partitions.is_empty() {
            return Ok(());
        }
        self.add_partitions(&partitions).await?;
        self.flushed = true;
        self.produce_pending().await
    }

    /// Abort the open transaction (whatever of it reached the brokers) and drop the buffer.
    pub async fn abort(&mut self) -> Result<()> {
        self.pending.clear();
        self.pending_bytes = 0;
        self.end(false).await?;
        self.flushed = false;
        Ok(())
    }

    async fn add_partitions(&mut self, partitions: &[(String, i32)]) -> Result<()> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in partitions {
            by_topic.entry(topic).or_default().push(*partition);
        }
        let request = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(str_bytes(&self.transactional_id)))
            .with_v3_and_below_producer_id(self.producer_id.into())
            .with_v3_and_below_producer_epoch(self.producer_epoch)
            .with_v3_and_below_topics(
                by_topic
                    .into_iter()
                    .map(|(topic, partitions)| {
                        AddPartitionsToTxnTopic::default()
                            .with_name(TopicName(str_bytes(topic)))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let mut attempt = 0;
        loop {
            let result = async {
                let connection = self.coordinator().await?;
                let v = version(&connection, ApiKey::AddPartitionsToTxn)?;
                let response = connection.send_version(&request, v).await?;
                for topic in response.results_by_topic_v3_and_below {
                    for partition in topic.results_by_partition {
                        if let Some(error) = ClientError::from_code(
                            partition.partition_error_code,
                            None,
                            format!(
                                "add {}-{} to transaction",
                                topic.name.as_str(),
                                partition.partition_index
                            ),
                        ) {
                            return Err(error);
                        }
                    }
                }
                Ok(())
            }
            .await;
            match result {
                Err(error) => {
                    if !self
                        .pause_before_coordinator_retry(&error, &mut attempt)
                        .await
                    {
                        return Err(error);
                    }
                }
                done => return done,
            }
        }
    }

    async fn produce_pending(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        for ((topic, partition), records) in pending {
            let mut chunk = Vec::new();
            let mut chunk_bytes = 0;
            let count = records.len();
            for (index, record) in records.into_iter().enumerate() {
                chunk_bytes += record.key.as_ref().map_or(0, Bytes::len)
                    + record.value.as_ref().map_or(0, Bytes::len)
                    + 32;
                chunk.push(record);
                if chunk.len() >= BATCH_RECORDS_MAX
                    || chunk_bytes >= BATCH_BYTES_MAX
                    || index + 1 == count
                {
                    self.produce_batch(&topic, partition, std::mem::take(&mut chunk))
                        .await?;
                    chunk_bytes = 0;
                }
            }
        }
        Ok(())
    }

    async fn produce_batch(
        &mut self,
        topic: &str,
        partition: i32,
        records: Vec<RecordToEncode>,
    ) -> Result<()> {
        let key = (topic.to_string(), partition);
        let base_sequence = *self.sequences.get(&key).unwrap_or(&0);
        let options = BatchBuilderOptions {
            compression: Compression::None,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence,
            transactional: true,
            partition_leader_epoch: -1,
        };
        let encoded = encode_batch(&records, &options)?;
        let request = ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(str_bytes(&self.transactional_id))))
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(encoded))])]);
        let mut attempt = 0;
        loop {
            let result = async {
                let leader = self.client.leader_for(topic, partition).await?;
                let connection = self.client.broker_connection(leader).await?;
                let response = connection.send(&request).await?;
                for t in response.responses {
                    for p in t.partition_responses {
                        // DUPLICATE_SEQUENCE_NUMBER: an earlier try of this batch was written.
                        if p.error_code == 46 {
                            continue;
                        }
                        if let Some(error) = ClientError::from_code(
                            p.error_code,
                            p.error_message.as_ref().map(|m| m.as_str()),
                            format!("produce to {topic}-{partition} in a transaction"),
                        ) {
                            return Err(error);
                        }
                    }
                }
                Ok(())
            }
            .await;
            match result {
                Ok(()) => {
                    let next =
                        (base_sequence as i64 + records.len() as i64) % (i32::MAX as i64 + 1);
                    self.sequences.insert(key, next as i32);
                    return Ok(());
                }
                Err(error) if error.is_retriable() && attempt < ATTEMPTS_MAX => {
                    self.client.invalidate_topic(topic);
                    tokio::time::sleep(self.client.config().backoff(attempt)).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn add_offsets(&mut self, group_id: &str) -> Result<()> {
        let request = AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(str_bytes(&self.transactional_id)))
            .with_producer_id(self.producer_id.into())
            .with_producer_epoch(self.producer_epoch)
            .with_group_id(GroupId(str_bytes(group_id)));
        let mut attempt = 0;
        loop {
            let result = async {
                let connection = self.coordinator().await?;
                let v = version(&connection, ApiKey::AddOffsetsToTxn)?;
                let response = connection.send_version(&request, v).await?;
                match ClientError::from_code(
                    response.error_code,
                    None,
                    format!("add offsets of group '{group_id}' to transaction"),
                ) {
                    Some(error) => Err(error),
                    None => Ok(()),
                }
            }
            .await;
            match result {
                Err(error) => {
                    if !self
                        .pause_before_coordinator_retry(&error, &mut attempt)
                        .await
                    {
                        return Err(error);
                    }
                }
                done => return done,
            }
        }
    }

    async fn txn_offset_commit(&mut self, offsets: &TxnOffsets) -> Result<()> {
        let mut by_topic: BTreeMap<&str, Vec<TxnOffsetCommitRequestPartition>> = BTreeMap::new();
        for (topic, partition, offset) in &offsets.offsets {
            by_topic.entry(topic).or_default().push(
                TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(*partition)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(Some(StrBytes::default())),
            );
        }
        let topics: Vec<TxnOffsetCommitRequestTopic> = by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(str_bytes(topic)))
                    .with_partitions(partitions)
            })
            .collect();
        let mut attempt = 0;
        loop {
            let result = async {
                let connection =
                    crate::groups::coordinator(&self.client, &offsets.group_id).await?;
                let v = version(&connection, ApiKey::TxnOffsetCommit)?;
                let mut request = TxnOffsetCommitRequest::default()
                    .with_transactional_id(TransactionalId(str_bytes(&self.transactional_id)))
                    .with_group_id(GroupId(str_bytes(&offsets.group_id)))
                    .with_producer_id(self.producer_id.into())
                    .with_producer_epoch(self.producer_epoch)
                    .with_topics(topics.clone());
                if v >= 3 {
                    request = request
                        .with_generation_id(offsets.generation_id)
                        .with_member_id(str_bytes(&offsets.member_id));
                }
                let response = connection.send_version(&request, v).await?;
                for topic in response.topics {
                    for partition in topic.partitions {
                        if let Some(error) = ClientError::from_code(
                            partition.error_code,
                            None,
                            format!(
                                "commit offset of {}-{} in a transaction for group '{}'",
                                topic.name.as_str(),
                                partition.partition_index,
                                offsets.group_id
                            ),
                        ) {
                            return Err(error);
                        }
                    }
                }
                Ok(())
            }
            .await;
            match result {
                Err(error) if retriable(&error) && attempt < ATTEMPTS_MAX => {
                    tokio::time::sleep(self.client.config().backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// After a failed call to the transaction coordinator: whether to call again. When the
    /// error is retriable and attempts are left, forgets the coordinator if it moved
    /// (codes 14-16) and pauses by the client's backoff first.
    async fn pause_before_coordinator_retry(
        &mut self,
        error: &ClientError,
        attempt: &mut u32,
    ) -> bool {
        if !retriable(error) || *attempt >= ATTEMPTS_MAX {
            return false;
        }
        if matches!(error.code(), Some(14..=16)) {
            self.coordinator = None;
        }
        tokio::time::sleep(self.client.config().backoff(*attempt)).await;
        *attempt += 1;
        true
    }

    async fn end(&mut self, committed: bool) -> Result<()> {
        let request = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(str_bytes(&self.transactional_id)))
            .with_producer_id(self.producer_id.into())
            .with_producer_epoch(self.producer_epoch)
            .with_committed(committed);
        let mut attempt = 0;
        loop {
            let result = async {
                let connection = self.coordinator().await?;
                let v = version(&connection, ApiKey::EndTxn)?;
                let response = connection.send_version(&request, v).await?;
                match ClientError::from_code(
                    response.error_code,
                    None,
                    format!("end transaction of '{}'", self.transactional_id),
                ) {
                    Some(error) => Err(error),
                    None => Ok(()),
                }
            }
            .await;
            match result {
                // INVALID_TXN_STATE on abort: nothing was open.
                Err(error) if !committed && error.code() == Some(48) => return Ok(()),
                Err(error) => {
                    if !self
                        .pause_before_coordinator_retry(&error, &mut attempt)
                        .await
                    {
                        return Err(error);
                    }
                }
                done => return done,
            }
        }
    }
}
