//! The producer: partition, batch, compress, send, retry.
//!
//! `send` picks the partition and appends the record to its partition's open batch
//! (waiting if `buffer_bytes_max` is used up). One sender task drains batches that are
//! full or have lingered, groups them by leader, and sends one Produce request per
//! broker, with at most `in_flight_batches_per_partition_max` batches per partition
//! outstanding. Retriable errors refresh metadata and resend the same encoded batch after
//! a backoff; with idempotence the batch keeps its producer id, epoch and sequence, so
//! the broker drops a duplicate. Idempotence limits each partition to one batch in
//! flight, which keeps order and sequences simple at some cost in throughput.

pub mod accumulator;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::batch::{Compression, NO_PRODUCER_ID};
use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordHeader, RecordToEncode};
use tokio::sync::{oneshot, Notify, Semaphore};

use crate::cluster::Client;
use crate::error::{needs_metadata_refresh, ClientError, Result};
use crate::partitioner::{Partitioner, PartitionerKind};
use accumulator::{record_size_bytes, Accumulator, ProducerBatch, TopicPartition};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// No response: the record may be lost; offsets are unknown (-1).
    None,
    /// The leader wrote it.
    Leader,
    /// All in-sync replicas have it.
    #[default]
    All,
}

impl Acks {
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    pub fn parse(text: &str) -> Option<Acks> {
        match text {
            "0" => Some(Acks::None),
            "1" => Some(Acks::Leader),
            "all" | "-1" => Some(Acks::All),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub acks: Acks,
    /// How long a batch waits for more records before it is sent.
    pub linger: Duration,
    pub batch_size_bytes: usize,
    pub compression: Compression,
    /// Bytes of records accepted but not yet acknowledged; `send` waits beyond this.
    pub buffer_bytes_max: usize,
    pub in_flight_batches_per_partition_max: usize,
    /// Retries of one batch after retriable errors.
    pub retries_max: u32,
    /// The broker's time to wait for acks (Produce `timeout_ms`).
    pub ack_timeout: Duration,
    pub enable_idempotence: bool,
    pub partitioner: PartitionerKind,
    /// Ask the broker to create a missing topic (if it is configured to).
    pub allow_auto_topic_creation: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size_bytes: 16 * 1024,
            compression: Compression::None,
            buffer_bytes_max: 32 * 1024 * 1024,
            in_flight_batches_per_partition_max: 5,
            retries_max: 10,
            ack_timeout: Duration::from_secs(30),
            enable_idempotence: false,
            partitioner: PartitionerKind::Default,
            allow_auto_topic_creation: true,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
    /// Milliseconds since the epoch; `None` means now.
    pub timestamp_ms: Option<i64>,
}

impl ProducerRecord {
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    pub fn with_header(mut self, key: impl Into<Bytes>, value: Option<Bytes>) -> Self {
        self.headers.push(RecordHeader {
            key: key.into(),
            value,
        });
        self
    }

    pub fn with_timestamp_ms(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: Arc<str>,
    pub partition: i32,
    /// -1 when unknown (acks=0, or a duplicate the broker dropped).
    pub offset: i64,
    pub timestamp_ms: i64,
}

/// Resolves when the record is acknowledged (or has failed for good).
pub struct DeliveryFuture {
    receiver: oneshot::Receiver<Result<RecordMetadata>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver)
            .poll(cx)
            .map(|result| result.unwrap_or(Err(ClientError::ProducerClosed)))
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct State {
    accumulator: Accumulator,
    partitioner: Partitioner,
    flushes_waiting: usize,
    in_flight: HashMap<TopicPartition, usize>,
    sequences: HashMap<TopicPartition, i32>,
}

struct Inner {
    client: Client,
    config: ProducerConfig,
    state: Mutex<State>,
    /// Wakes the sender: new full batch, flush, close, a request completed.
    wakeup: Notify,
    buffer: Semaphore,
    buffer_bytes_total: usize,
    /// Records accepted and not yet resolved.
    outstanding: AtomicUsize,
    idle: Notify,
    closed: AtomicBool,
    producer_id: i64,
    producer_epoch: i16,
}

/// An async producer. Share it behind an `Arc`; dropping the last handle flushes what
/// is buffered in the background.
pub struct Producer {
    inner: Arc<Inner>,
}

impl Producer {
    pub async fn new(client: Client, config: ProducerConfig) -> Result<Producer> {
        if config.enable_idempotence && config.acks != Acks::All {
            return Err(ClientError::InvalidConfig {
                key: "acks",
                reason: "idempotence needs acks=all".into(),
            });
        }
        if config.enable_idempotence && config.retries_max == 0 {
            return Err(ClientError::InvalidConfig {
                key: "retries_max",
                reason: "idempotence needs retries".into(),
            });
        }
        let (producer_id, producer_epoch) = if config.enable_idempotence {
            init_producer_id(&client).await?
        } else {
            (NO_PRODUCER_ID, -1)
        };
        let buffer_bytes_total = config.buffer_bytes_max.clamp(1, u32::MAX as usize);
        let seed = now_ms() as u64 ^ std::process::id() as u64;
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                accumulator: Accumulator::new(config.batch_size_bytes, config.linger),
                partitioner: Partitioner::new(config.partitioner, seed)
                    .with_sticky_bytes_max(config.batch_size_bytes),
                flushes_waiting: 0,
                in_flight: HashMap::new(),
                sequences: HashMap::new(),
            }),
            client,
            config,
            wakeup: Notify::new(),
            buffer: Semaphore::new(buffer_bytes_total),
            buffer_bytes_total,
            outstanding: AtomicUsize::new(0),
            idle: Notify::new(),
            closed: AtomicBool::new(false),
            producer_id,
            producer_epoch,
        });
        tokio::spawn(sender_loop(inner.clone()));
        Ok(Producer { inner })
    }

    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The producer id and epoch (-1, -1 without idempotence).
    pub fn producer_id_and_epoch(&self) -> (i64, i16) {
        (self.inner.producer_id, self.inner.producer_epoch)
    }

    /// Queues a record. The outer future completes when the record is buffered (it waits
    /// while the buffer is full); the returned [`DeliveryFuture`] when it is acknowledged.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::SeqCst) {
            return Err(ClientError::ProducerClosed);
        }
        let partitions = match inner.client.cached_partition_count(&record.topic) {
            Some(count) => count,
            None => inner
                .client
                .cached_topic(&record.topic, inner.config.allow_auto_topic_creation)
                .await?
                .partitions
                .len() as i32,
        };
        if let Some(partition) = record.partition {
            if partition < 0 || partition >= partitions {
                return Err(ClientError::UnknownPartition {
                    topic: record.topic,
                    partition,
                });
            }
        }
        let encoded = RecordToEncode {
            key: record.key,
            value: record.value,
            headers: record.headers,
            timestamp_ms: record.timestamp_ms.unwrap_or_else(now_ms),
        };
        let size = record_size_bytes(&encoded);
        if size > inner.buffer_bytes_total {
            return Err(ClientError::RecordTooLarge {
                size_bytes: size,
                max_bytes: inner.buffer_bytes_total,
            });
        }
        inner
            .buffer
            .acquire_many(size as u32)
            .await
            .map_err(|_| ClientError::ProducerClosed)?
            .forget();
        let (waiter, receiver) = oneshot::channel();
        inner.outstanding.fetch_add(1, Ordering::SeqCst);
        let wake = {
            let mut state = inner.state.lock().expect("producer state");
            let partition = match record.partition {
                Some(partition) => partition,
                None => {
                    state
                        .partitioner
                        .partition(&record.topic, encoded.key.as_deref(), partitions)
                }
            };
            let topic_partition = TopicPartition {
                topic: Arc::from(record.topic.as_str()),
                partition,
            };
            let keyless = record.partition.is_none() && encoded.key.is_none();
            let size = record_size_bytes(&encoded);
            let outcome =
                state
                    .accumulator
                    .append(topic_partition, encoded, waiter, Instant::now());
            if outcome.batch_closed {
                state
                    .partitioner
                    .on_batch_closed(&record.topic, partition, partitions);
            } else if keyless {
                state
                    .partitioner
                    .on_keyless_appended(&record.topic, partition, size, partitions);
            }
            // A closed batch can go now; a new batch brings a new linger deadline.
            outcome.batch_closed || outcome.batch_created
        };
        if wake {
            inner.wakeup.notify_one();
        }
        Ok(DeliveryFuture { receiver })
    }

    /// Sends a record and waits for its acknowledgement.
    pub async fn send_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.send(record).await?.await
    }

    /// Records accepted and not yet acknowledged or failed.
    pub fn outstanding(&self) -> usize {
        self.inner.outstanding.load(Ordering::SeqCst)
    }

    /// Sends everything buffered now (ignoring linger) and waits until every record
    /// accepted so far is acknowledged or failed.
    pub async fn flush(&self) {
        let inner = &self.inner;
        inner.state.lock().expect("producer state").flushes_waiting += 1;
        inner.wakeup.notify_one();
        loop {
            let idle = inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if inner.outstanding.load(Ordering::SeqCst) == 0 {
                break;
            }
            idle.await;
        }
        inner.state.lock().expect("producer state").flushes_waiting -= 1;
    }

    /// Flushes and stops the sender. Later sends fail with `ProducerClosed`.
    pub async fn close(&self) {
        self.flush().await;
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.wakeup.notify_one();
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.wakeup.notify_one();
    }
}

async fn init_producer_id(client: &Client) -> Result<(i64, i16)> {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(-1)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1);
    let mut attempt = 0;
    loop {
        let result = async {
            let connection = client.any_connection().await?;
            let response = connection.send(&request).await?;
            if let Some(error) =
                ClientError::from_code(response.error_code, None, "InitProducerId (idempotence)")
            {
                return Err(error);
            }
            Ok((response.producer_id.0, response.producer_epoch))
        }
        .await;
        match result {
            Err(error) if error.is_retriable() && attempt < client.config().retries_max => {
                tokio::time::sleep(client.config().backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn release(inner: &Inner, acquired_bytes: usize, records: usize) {
    inner.buffer.add_permits(acquired_bytes);
    if inner.outstanding.fetch_sub(records, Ordering::SeqCst) == records {
        inner.idle.notify_waiters();
    }
}

/// Resolves every record of a batch and gives its buffer space back.
fn complete(
    inner: &Inner,
    batch: ProducerBatch,
    outcome: std::result::Result<(i64, i64), &ClientError>,
) {
    let records = batch.waiters.len();
    let topic = batch.topic_partition.topic.clone();
    for (index, (waiter, timestamp_ms)) in batch
        .waiters
        .into_iter()
        .zip(&batch.timestamps_ms)
        .enumerate()
    {
        let result = match outcome {
            Ok((base_offset, log_append_time_ms)) => Ok(RecordMetadata {
                topic: topic.clone(),
                partition: batch.topic_partition.partition,
                offset: if base_offset < 0 {
                    -1
                } else {
                    base_offset + index as i64
                },
                timestamp_ms: if log_append_time_ms >= 0 {
                    log_append_time_ms
                } else {
                    *timestamp_ms
                },
            }),
            Err(error) => Err(clone_error(error)),
        };
        let _ = waiter.send(result);
    }
    // Exactly what `send` acquired for these records.
    release(inner, batch.size_bytes, records);
}

/// `ClientError` holds `io::Error`s and is not `Clone`; every waiter of a failed batch
/// gets an equivalent error.
fn clone_error(error: &ClientError) -> ClientError {
    match error {
        ClientError::Broker {
            code,
            name,
            message,
            context,
        } => ClientError::Broker {
            code: *code,
            name: name.clone(),
            message: message.clone(),
            context: context.clone(),
        },
        ClientError::UnknownTopic { topic } => ClientError::UnknownTopic {
            topic: topic.clone(),
        },
        ClientError::UnknownPartition { topic, partition } => ClientError::UnknownPartition {
            topic: topic.clone(),
            partition: *partition,
        },
        ClientError::ProducerClosed => ClientError::ProducerClosed,
        ClientError::Timeout {
            api,
            address,
            timeout_ms,
        } => ClientError::Timeout {
            api,
            address: address.clone(),
            timeout_ms: *timeout_ms,
        },
        ClientError::ConnectionClosed { address } => ClientError::ConnectionClosed {
            address: address.clone(),
        },
        other => ClientError::Io {
            address: String::new(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

fn in_flight_limit(config: &ProducerConfig) -> usize {
    if config.enable_idempotence {
        1
    } else {
        config.in_flight_batches_per_partition_max.max(1)
    }
}

async fn sender_loop(inner: Arc<Inner>) {
    let limit = in_flight_limit(&inner.config);
    loop {
        let wakeup = inner.wakeup.notified();
        tokio::pin!(wakeup);
        wakeup.as_mut().enable();
        let now = Instant::now();
        let closing = inner.closed.load(Ordering::SeqCst);
        let (batches, deadline, finished) = {
            let mut state = inner.state.lock().expect("producer state");
            let flush = closing || state.flushes_waiting > 0;
            let State {
                accumulator,
                in_flight,
                ..
            } = &mut *state;
            let (batches, _closed) = accumulator.drain(now, flush, |tp| {
                in_flight.get(tp).copied().unwrap_or(0) < limit
            });
            for batch in &batches {
                *in_flight.entry(batch.topic_partition.clone()).or_insert(0) += 1;
            }
            let finished = closing
                && state.accumulator.is_empty()
                && state.in_flight.values().all(|n| *n == 0)
                && batches.is_empty();
            (batches, state.accumulator.next_deadline(now), finished)
        };
        if finished {
            return;
        }
        if !batches.is_empty() {
            dispatch(&inner, batches).await;
            continue;
        }
        match deadline {
            Some(deadline) => {
                tokio::select! {
                    _ = &mut wakeup => {}
                    _ = tokio::time::sleep_until(deadline.into()) => {}
                }
            }
            None => wakeup.await,
        }
    }
}

/// Encodes (first send only), groups by leader, and starts one request per broker.
async fn dispatch(inner: &Arc<Inner>, batches: Vec<ProducerBatch>) {
    let mut by_leader: BTreeMap<i32, Vec<ProducerBatch>> = BTreeMap::new();
    for mut batch in batches {
        if batch.encoded.is_none() {
            let base_sequence = if inner.config.enable_idempotence {
                let mut state = inner.state.lock().expect("producer state");
                let next = state
                    .sequences
                    .entry(batch.topic_partition.clone())
                    .or_insert(0);
                let base = *next;
                *next =
                    ((*next as i64 + batch.record_count() as i64) % (i32::MAX as i64 + 1)) as i32;
                base
            } else {
                -1
            };
            let options = BatchBuilderOptions {
                compression: inner.config.compression,
                producer_id: inner.producer_id,
                producer_epoch: inner.producer_epoch,
                base_sequence,
                transactional: false,
                partition_leader_epoch: -1,
            };
            match encode_batch(&batch.records, &options) {
                Ok(bytes) => {
                    batch.encoded = Some(bytes);
                    batch.records = Vec::new();
                }
                Err(error) => {
                    finish(inner, batch, Err(&ClientError::from(error)));
                    continue;
                }
            }
        }
        let topic = batch.topic_partition.topic.clone();
        match inner
            .client
            .leader_for(&topic, batch.topic_partition.partition)
            .await
        {
            Ok(leader) => by_leader.entry(leader).or_default().push(batch),
            Err(error) => retry_or_fail(inner, batch, error),
        }
    }
    // Requests are queued on the sockets here, in drain order, so a partition's batches
    // reach the broker in order; only the wait for the responses runs in parallel.
    for (leader, batches) in by_leader {
        produce_to(inner, leader, batches).await;
    }
}

fn finish(
    inner: &Inner,
    batch: ProducerBatch,
    outcome: std::result::Result<(i64, i64), &ClientError>,
) {
    let topic_partition = batch.topic_partition.clone();
    complete(inner, batch, outcome);
    let mut state = inner.state.lock().expect("producer state");
    if let Some(count) = state.in_flight.get_mut(&topic_partition) {
        *count = count.saturating_sub(1);
    }
    drop(state);
    inner.wakeup.notify_one();
}

fn retry_or_fail(inner: &Inner, mut batch: ProducerBatch, error: ClientError) {
    let retriable = error.is_retriable() || matches!(error, ClientError::UnknownTopic { .. });
    if !retriable || batch.attempts >= inner.config.retries_max {
        finish(inner, batch, Err(&error));
        return;
    }
    tracing::debug!(
        topic = %batch.topic_partition.topic,
        partition = batch.topic_partition.partition,
        attempt = batch.attempts,
        %error,
        "produce failed; retrying"
    );
    if error.code().is_none_or(needs_metadata_refresh) {
        inner.client.invalidate_topic(&batch.topic_partition.topic);
    }
    let backoff = inner.client.config().backoff(batch.attempts);
    batch.attempts += 1;
    batch.retry_at = Some(Instant::now() + backoff);
    let topic_partition = batch.topic_partition.clone();
    let mut state = inner.state.lock().expect("producer state");
    state.accumulator.requeue(batch);
    if let Some(count) = state.in_flight.get_mut(&topic_partition) {
        *count = count.saturating_sub(1);
    }
    drop(state);
    inner.wakeup.notify_one();
}

async fn produce_to(inner: &Arc<Inner>, leader: i32, batches: Vec<ProducerBatch>) {
    let mut topics: BTreeMap<Arc<str>, Vec<PartitionProduceData>> = BTreeMap::new();
    for batch in &batches {
        topics
            .entry(batch.topic_partition.topic.clone())
            .or_default()
            .push(
                PartitionProduceData::default()
                    .with_index(batch.topic_partition.partition)
                    .with_records(batch.encoded.clone()),
            );
    }
    let request = ProduceRequest::default()
        .with_acks(inner.config.acks.as_i16())
        .with_timeout_ms(inner.config.ack_timeout.as_millis().min(i32::MAX as u128) as i32)
        .with_topic_data(
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partition_data(partitions)
                })
                .collect(),
        );
    let connection = match inner.client.broker_connection(leader).await {
        Ok(connection) => connection,
        Err(error) => {
            for batch in batches {
                retry_or_fail(inner, batch, clone_error(&error));
            }
            return;
        }
    };
    if inner.config.acks == Acks::None {
        let result = connection.send_no_response(&request).await;
        for batch in batches {
            match &result {
                Ok(()) => finish(inner, batch, Ok((-1, -1))),
                Err(error) => retry_or_fail(inner, batch, clone_error(error)),
            }
        }
        return;
    }
    let pending = match connection.enqueue_request(&request).await {
        Ok(pending) => pending,
        Err(error) => {
            for batch in batches {
                retry_or_fail(inner, batch, clone_error(&error));
            }
            return;
        }
    };
    let inner = inner.clone();
    tokio::spawn(async move {
        match pending.wait().await {
            Ok(response) => absorb_response(&inner, connection.address(), response, batches),
            Err(error) => {
                for batch in batches {
                    retry_or_fail(&inner, batch, clone_error(&error));
                }
            }
        }
    });
}

fn absorb_response(
    inner: &Inner,
    address: &str,
    response: kafka_protocol::messages::ProduceResponse,
    batches: Vec<ProducerBatch>,
) {
    let mut results: HashMap<(String, i32), _> = HashMap::new();
    for topic in response.responses {
        for partition in topic.partition_responses {
            results.insert((topic.name.0.to_string(), partition.index), partition);
        }
    }
    for batch in batches {
        let key = (
            batch.topic_partition.topic.to_string(),
            batch.topic_partition.partition,
        );
        let Some(result) = results.remove(&key) else {
            let error = ClientError::Decode {
                api: "ProduceResponse",
                version: -1,
                address: address.to_string(),
                reason: format!("no result for {}-{}", key.0, key.1),
            };
            finish(inner, batch, Err(&error));
            continue;
        };
        match result.error_code {
            0 => finish(
                inner,
                batch,
                Ok((result.base_offset, result.log_append_time_ms)),
            ),
            // DUPLICATE_SEQUENCE_NUMBER: an earlier send of this batch was written.
            46 => finish(inner, batch, Ok((-1, -1))),
            code => {
                let message = result
                    .error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .or_else(|| {
                        result
                            .record_errors
                            .first()
                            .and_then(|e| e.batch_index_error_message.as_ref())
                            .map(|m| m.to_string())
                    });
                let error = ClientError::from_code(
                    code,
                    message.as_deref(),
                    format!("produce to {}-{}", key.0, key.1),
                )
                .expect("non-zero code");
                retry_or_fail(inner, batch, error);
            }
        }
    }
}
