//! The runtime: runs a [`Topology`] against a Kafka-protocol cluster.
//!
//! One [`StreamsApp`] is one instance of an application (all instances share the
//! `application_id`, which is also the consumer group and the prefix of internal topics).
//! An instance first reads its global tables whole ([`crate::global`]), then runs
//! `num_stream_threads` processing loops on the tokio runtime, each its own group member
//! with its own connections, consumer, tasks and producer. A loop joins the group, gets
//! tasks (partition numbers) from the leader's sticky assignment, restores each task's
//! stores from their changelogs, and then polls, processes, and commits every
//! `commit_interval`:
//!
//! - `AtLeastOnce`: outputs through the idempotent producer, flushed, then the consumed
//!   offsets committed as a group member; a crash replays from the last commit.
//! - `ExactlyOnceV2`: one transactional producer per thread
//!   (`<application id>-<instance id>`, with `-<thread>` appended when there are several): outputs, changelog writes and the consumed
//!   offsets commit in one transaction, fenced by the group generation; restores read
//!   changelogs read_committed.
//!
//! A rebalance (a member joins or leaves) commits, rejoins and keeps the tasks the sticky
//! assignment leaves in place (each member reports the tasks it holds; the leader keeps
//! them there up to a fair share); only newly assigned tasks restore from their
//! changelogs, heartbeating meanwhile so that a long restore keeps the member in its
//! group. No standby replicas or warm-up yet. Store work runs on the async thread
//! (redb puts are buffered in memory and written once per commit).

mod global;
mod setup;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strom_client::groups::decode_consumer_assignment;
use strom_client::member_offsets::commit_member_offsets;
use strom_client::membership::{GroupMember, HeartbeatOutcome};
use strom_client::{
    Client, ClientConfig, Consumer, ConsumerConfig, DeliveryFuture, Producer, ProducerConfig,
    ProducerRecord, SeekTo, TransactionalProducer, TxnOffsets,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::record::OutputRecord;
use crate::store::StoreBackend;
use crate::task::Task;
use crate::topology::Topology;
use crate::StreamsError;

/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingGuarantee {
    AtLeastOnce,
    ExactlyOnceV2,
}

/// Told of changelog restores, as Kafka Streams' `StateRestoreListener`
/// (`KafkaStreams#setGlobalStateRestoreListener`). Called on the stream thread between
/// fetches, with heartbeats going on between batches: keep the calls short.
pub trait StateRestoreListener: Send + Sync {
    /// Restoring `store`'s changelog partition starts at `start_offset`, ends at `end_offset`.
    fn on_restore_start(
        &self,
        _store: &str,
        _partition: i32,
        _start_offset: i64,
        _end_offset: i64,
    ) {
    }
    /// One fetched batch of `restored` records was applied, up to `batch_end_offset`.
    fn on_batch_restored(
        &self,
        _store: &str,
        _partition: i32,
        _batch_end_offset: i64,
        _restored: u64,
    ) {
    }
    /// The partition's restore finished with `total_restored` records.
    fn on_restore_end(&self, _store: &str, _partition: i32, _total_restored: u64) {}
}

/// The listener slot of [`StreamsConfig`]: shows whether one is set in `Debug`.
#[derive(Clone, Default)]
pub struct RestoreListener(pub Option<Arc<dyn StateRestoreListener>>);

impl std::fmt::Debug for RestoreListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

/// Settings of an instance (Kafka Streams' names in the docs of each).
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    /// `application.id`: the group id and the prefix of internal topics.
    pub application_id: String,
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// `processing.guarantee`.
    pub processing_guarantee: ProcessingGuarantee,
    /// `commit.interval.ms`.
    pub commit_interval: Duration,
    /// `state.dir` (with [`StoreBackend::Redb`]) or in memory.
    pub state: StoreBackend,
    /// The group session timeout; heartbeats go every third of it.
    pub session_timeout: Duration,
    /// `transaction.timeout.ms` of the exactly-once producer.
    pub transaction_timeout: Duration,
    /// Names this instance's transactional id (`<application id>-<instance id>`): keep it
    /// stable across restarts of one instance so a restart fences its predecessor.
    pub instance_id: String,
    /// `replication.factor` of internal topics (-1: the broker's default).
    pub replication_factor: i16,
    /// `default.deserialization.exception.handler`: skip (LogAndContinue) or stop.
    pub on_undeserializable: crate::OnError,
    /// `num.stream.threads`: processing loops in this instance, each a group member with
    /// its own consumer, tasks and (under exactly-once) transactional producer.
    pub num_stream_threads: usize,
    /// Told of each changelog restore ([`StreamsConfig::with_restore_listener`]).
    pub restore_listener: RestoreListener,
}

impl StreamsConfig {
    pub fn new(application_id: &str, bootstrap_servers: &str) -> StreamsConfig {
        StreamsConfig {
            application_id: application_id.to_string(),
            bootstrap_servers: bootstrap_servers.to_string(),
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            commit_interval: Duration::from_millis(200),
            state: StoreBackend::Memory,
            session_timeout: Duration::from_secs(10),
            transaction_timeout: Duration::from_secs(10),
            instance_id: format!("{}-{}", std::process::id(), crate::runtime::nanos_now()),
            replication_factor: -1,
            on_undeserializable: crate::OnError::Continue,
            num_stream_threads: 1,
            restore_listener: RestoreListener::default(),
        }
    }

    /// Tell `listener` of every changelog restore.
    pub fn with_restore_listener(
        mut self,
        listener: Arc<dyn StateRestoreListener>,
    ) -> StreamsConfig {
        self.restore_listener = RestoreListener(Some(listener));
        self
    }

    /// Persistent stores under `dir`.
    pub fn with_state_dir(mut self, dir: PathBuf) -> StreamsConfig {
        self.state = StoreBackend::Redb { dir };
        self
    }
}

fn nanos_now() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Counters of an instance, readable while it runs ([`StreamsApp::metrics`]).
#[derive(Debug, Default)]
pub struct StreamsMetrics {
    /// Changelog records applied to task stores by restores.
    pub restored_records: AtomicU64,
    /// Time spent restoring task stores, in milliseconds (for tests and logs).
    pub restore_ms: AtomicU64,
    /// Records read into global stores before processing started.
    pub global_restored_records: AtomicU64,
    /// Group generations this instance joined (1 plus one per rebalance or rejoin).
    pub generations: AtomicU64,
}

/// A running instance.
pub struct StreamsApp {
    metrics: Arc<StreamsMetrics>,
    globals: Arc<crate::GlobalStores>,
    shutdown: watch::Sender<bool>,
    /// One queue per stream thread.
    queries: Vec<mpsc::Sender<Query>>,
    handle: JoinHandle<Result<(), StreamsError>>,
}

/// Interactive queries waiting for the processing loop.
const QUERIES_QUEUED_MAX: usize = 64;

/// An interactive query: a key of a local store, answered by the processing loop between
/// two polls.
struct Query {
    store: String,
    key: Vec<u8>,
    reply: oneshot::Sender<Result<Option<Vec<u8>>, StreamsError>>,
}

impl StreamsApp {
    /// Start processing on the current tokio runtime.
    pub fn start(topology: Topology, config: StreamsConfig) -> StreamsApp {
        let (shutdown, receiver) = watch::channel(false);
        let (queries, query_receivers): (Vec<_>, Vec<_>) = (0..config.num_stream_threads.max(1))
            .map(|_| mpsc::channel(QUERIES_QUEUED_MAX))
            .unzip();
        let metrics = Arc::new(StreamsMetrics::default());
        let globals = Arc::new(crate::GlobalStores::new(topology.globals()));
        let handle = tokio::spawn(run(
            Arc::new(topology),
            config,
            Shared {
                metrics: metrics.clone(),
                globals: globals.clone(),
            },
            receiver,
            query_receivers,
        ));
        StreamsApp {
            metrics,
            globals,
            shutdown,
            queries,
            handle,
        }
    }

    /// This instance's counters.
    pub fn metrics(&self) -> &StreamsMetrics {
        &self.metrics
    }

    /// This instance's global stores (global tables), for interactive queries.
    pub fn global_stores(&self) -> &crate::GlobalStores {
        &self.globals
    }

    /// Interactive query: the value of `key` (bytes, as the store's key serde writes them)
    /// in the local store `store`. The key's task is found as the default partitioner
    /// would (murmur2); a task this instance does not hold answers
    /// [`StreamsError::NotLocal`]. Answered between two polls of the processing loop.
    pub async fn query(&self, store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StreamsError> {
        // Each thread answers for its own tasks: ask them in turn.
        let mut last = Err(StreamsError::Stopped);
        for queue in &self.queries {
            let (reply, answer) = oneshot::channel();
            let query = Query {
                store: store.to_string(),
                key: key.to_vec(),
                reply,
            };
            queue.send(query).await.map_err(|_| StreamsError::Stopped)?;
            last = answer.await.map_err(|_| StreamsError::Stopped)?;
            if !matches!(last, Err(StreamsError::NotLocal { .. })) {
                return last;
            }
        }
        last
    }

    /// [`StreamsApp::query`] with serdes.
    pub async fn query_typed<K, V>(
        &self,
        store: &str,
        keys: &crate::SerdeRef<K>,
        values: &crate::SerdeRef<V>,
        key: &K,
    ) -> Result<Option<V>, StreamsError> {
        let Some(key) = keys.serialize(key) else {
            return Ok(None);
        };
        match self.query(store, &key).await? {
            None => Ok(None),
            Some(bytes) => values
                .deserialize(Some(&bytes))
                .map(Some)
                .map_err(|source| StreamsError::CorruptStore {
                    store: store.to_string(),
                    source,
                }),
        }
    }

    /// Clean shutdown: finish the current batch, commit, write store checkpoints, leave
    /// the group. Returns the error that stopped processing, if one did.
    pub async fn close(self) -> Result<(), StreamsError> {
        let _ = self.shutdown.send(true);
        match self.handle.await {
            Ok(result) => result,
            Err(_) => Err(StreamsError::Stopped),
        }
    }

    /// Stop at once, as a crash would: no commit, no leave (the group notices after the
    /// session timeout; an open transaction is aborted by its timeout or the next owner).
    pub fn kill(self) {
        self.handle.abort();
    }

    /// Whether processing stopped (by an error, or after `close`).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// JoinGroup attempts through coordinator moves and loading before giving up.
const JOIN_ATTEMPTS_MAX: u32 = 30;

enum GenerationEnd {
    Shutdown,
    /// `committed`: the tasks' state matches the committed offsets, so tasks still
    /// assigned after the rebalance can be kept as they are.
    Rebalance {
        committed: bool,
    },
}

/// Errors after which the member rejoins instead of stopping: REBALANCE_IN_PROGRESS,
/// ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, and coordinator moves.
fn rejoin_on(error: &StreamsError) -> bool {
    match error {
        StreamsError::Client(error) => rejoin_code(error.code()),
        _ => false,
    }
}

fn rejoin_code(code: Option<i16>) -> bool {
    matches!(code, Some(14..=16) | Some(22) | Some(25) | Some(27))
}

enum Sink {
    AtLeastOnce {
        producer: Producer,
        deliveries: Vec<DeliveryFuture>,
    },
    ExactlyOnce(TransactionalProducer),
}

/// What the processing loop shares with its [`StreamsApp`].
#[derive(Clone)]
struct Shared {
    metrics: Arc<StreamsMetrics>,
    globals: Arc<crate::GlobalStores>,
}

/// The instance: internal topics and global stores once, then one processing loop per
/// stream thread (aborted together when the instance is killed).
async fn run(
    topology: Arc<Topology>,
    config: StreamsConfig,
    shared: Shared,
    shutdown: watch::Receiver<bool>,
    queries: Vec<mpsc::Receiver<Query>>,
) -> Result<(), StreamsError> {
    let client = Client::connect(ClientConfig::new(&config.bootstrap_servers)).await?;
    let partitions = setup::prepare_topics(&client, &topology, &config).await?;
    let global_restored = global::start(
        &client,
        &topology,
        &config,
        shared.globals.clone(),
        shutdown.clone(),
    )
    .await?;
    shared
        .metrics
        .global_restored_records
        .fetch_add(global_restored, Ordering::Relaxed);
    let threads = queries.len();
    let mut loops = tokio::task::JoinSet::new();
    for (thread, queries) in queries.into_iter().enumerate() {
        // One thread keeps the transactional id of a single-threaded instance.
        let transactional_id = if threads == 1 {
            format!("{}-{}", config.application_id, config.instance_id)
        } else {
            format!("{}-{}-{thread}", config.application_id, config.instance_id)
        };
        // Its own connections: a JoinGroup waits at the coordinator for the other members,
        // and must not hold up another thread's requests.
        let thread_client = if thread == 0 {
            client.clone()
        } else {
            Client::connect(ClientConfig::new(&config.bootstrap_servers)).await?
        };
        loops.spawn(run_thread(
            thread_client,
            topology.clone(),
            config.clone(),
            shared.clone(),
            partitions,
            transactional_id,
            shutdown.clone(),
            queries,
        ));
    }
    let mut result = Ok(());
    while let Some(joined) = loops.join_next().await {
        let outcome = joined.unwrap_or(Err(StreamsError::Stopped));
        if result.is_ok() {
            result = outcome;
        }
    }
    result
}

/// One stream thread: a group member with its own consumer, producer and tasks.
#[allow(clippy::too_many_arguments)]
async fn run_thread(
    client: Client,
    topology: Arc<Topology>,
    config: StreamsConfig,
    shared: Shared,
    partitions: i32,
    transactional_id: String,
    mut shutdown: watch::Receiver<bool>,
    mut queries: mpsc::Receiver<Query>,
) -> Result<(), StreamsError> {
    let source_topics = topology.source_topics(&config.application_id);
    let session_ms = config.session_timeout.as_millis().min(i32::MAX as u128) as i32;
    let mut member = GroupMember::new(
        client.clone(),
        &config.application_id,
        "consumer",
        session_ms,
        session_ms.saturating_mul(3),
    );
    let mut sink = match config.processing_guarantee {
        ProcessingGuarantee::AtLeastOnce => Sink::AtLeastOnce {
            producer: Producer::new(
                client.clone(),
                ProducerConfig {
                    enable_idempotence: true,
                    ..ProducerConfig::default()
                },
            )
            .await?,
            deliveries: Vec::new(),
        },
        ProcessingGuarantee::ExactlyOnceV2 => Sink::ExactlyOnce(
            TransactionalProducer::new(
                client.clone(),
                &transactional_id,
                config.transaction_timeout,
            )
            .await?,
        ),
    };
    let mut tasks: BTreeMap<i32, Task> = BTreeMap::new();
    loop {
        if *shutdown.borrow() {
            let _ = member.leave().await;
            return Ok(());
        }
        let held: Vec<i32> = tasks.keys().copied().collect();
        let protocols = [(
            "stream".to_string(),
            setup::encode_subscription(&source_topics, &held),
        )];
        let mut attempt = 0;
        let joined = loop {
            match member.join(&protocols).await {
                Ok(joined) => break joined,
                // The coordinator is loading or moved: find it again.
                Err(error) if rejoin_code(error.code()) && attempt < JOIN_ATTEMPTS_MAX => {
                    tokio::time::sleep(client.config().backoff(attempt)).await;
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        };
        shared.metrics.generations.fetch_add(1, Ordering::Relaxed);
        let assignments = if joined.is_leader() {
            let members: Vec<(String, Vec<i32>)> = joined
                .members
                .iter()
                .map(|(id, metadata)| (id.clone(), setup::owned_tasks(metadata)))
                .collect();
            setup::assign(&members, partitions, &source_topics)
        } else {
            Vec::new()
        };
        let mine: Bytes = match member.sync(&joined, &assignments).await {
            Ok(bytes) => bytes,
            Err(error) if rejoin_code(error.code()) => continue,
            Err(error) => return Err(error.into()),
        };
        let mut task_partitions: Vec<i32> = decode_consumer_assignment(&mine)
            .into_values()
            .flatten()
            .collect();
        task_partitions.sort_unstable();
        task_partitions.dedup();
        tracing::info!(
            application_id = %config.application_id,
            generation = joined.generation_id,
            tasks = ?task_partitions,
            "assigned tasks"
        );
        // Keep the tasks still ours (no restore); open the new ones.
        tasks.retain(|partition, _| task_partitions.contains(partition));
        let outcome = run_generation(
            &client,
            &topology,
            &config,
            &mut member,
            &mut sink,
            &mut tasks,
            &task_partitions,
            &source_topics,
            &mut shutdown,
            &mut queries,
            partitions,
            &shared,
        )
        .await;
        match outcome {
            Ok(GenerationEnd::Shutdown) => {
                let _ = member.leave().await;
                return Ok(());
            }
            Ok(GenerationEnd::Rebalance { committed }) => {
                if !committed {
                    // Their state is ahead of the committed offsets.
                    tasks.clear();
                }
                continue;
            }
            Err(error) if rejoin_on(&error) => {
                tracing::info!(%error, "rejoining the group");
                tasks.clear();
                if let Sink::ExactlyOnce(producer) = &mut sink {
                    let _ = producer.abort().await;
                }
                continue;
            }
            Err(error) => {
                if let Sink::ExactlyOnce(producer) = &mut sink {
                    let _ = producer.abort().await;
                }
                let _ = member.leave().await;
                return Err(error);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_generation(
    client: &Client,
    topology: &Arc<Topology>,
    config: &StreamsConfig,
    member: &mut GroupMember,
    sink: &mut Sink,
    tasks: &mut BTreeMap<i32, Task>,
    task_partitions: &[i32],
    source_topics: &[String],
    shutdown: &mut watch::Receiver<bool>,
    queries: &mut mpsc::Receiver<Query>,
    partitions: i32,
    shared: &Shared,
) -> Result<GenerationEnd, StreamsError> {
    for partition in task_partitions {
        if !tasks.contains_key(partition) {
            let restore = setup::Restore {
                client,
                topology,
                config,
                metrics: &shared.metrics,
            };
            match restore.open_task(member, *partition).await? {
                Some(mut task) => {
                    task.set_globals(shared.globals.clone());
                    tasks.insert(*partition, task);
                }
                // The group rebalances: give up this restore and rejoin.
                None => return Ok(GenerationEnd::Rebalance { committed: true }),
            }
        }
    }
    let exactly_once = config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2;
    let mut consumer = Consumer::new(
        client.clone(),
        ConsumerConfig {
            max_wait: Duration::from_millis(100),
            isolation_level: if exactly_once { 1 } else { 0 },
            auto_offset_reset: Some(SeekTo::Earliest),
            ..ConsumerConfig::default()
        },
    );
    let assigned: Vec<(String, i32)> = source_topics
        .iter()
        .flat_map(|topic| task_partitions.iter().map(move |p| (topic.clone(), *p)))
        .collect();
    let committed: HashMap<(String, i32), i64> =
        strom_client::groups::committed_offsets(client, &config.application_id)
            .await?
            .into_iter()
            .map(|c| ((c.topic, c.partition), c.offset))
            .collect();
    if !assigned.is_empty() {
        consumer.assign(&assigned).await?;
        for (topic, partition) in &assigned {
            let to = match committed.get(&(topic.clone(), *partition)) {
                Some(offset) => SeekTo::Offset(*offset),
                None => SeekTo::Earliest,
            };
            consumer.seek(topic, *partition, to).await?;
        }
    }
    let heartbeat_interval = config.session_timeout / 3;
    let mut last_heartbeat = Instant::now();
    let mut last_commit = Instant::now();
    let mut offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
    loop {
        if *shutdown.borrow() {
            commit(client, config, member, sink, tasks, &mut offsets).await?;
            checkpoint(client, config, topology, tasks).await?;
            return Ok(GenerationEnd::Shutdown);
        }
        while let Ok(query) = queries.try_recv() {
            let partition = strom_client::partition_for_key(&query.key, partitions.max(1));
            let answer = match tasks.get(&partition) {
                Some(task) => task.query(&query.store, &query.key),
                None => Err(StreamsError::NotLocal {
                    store: query.store.clone(),
                    partition,
                }),
            };
            let _ = query.reply.send(answer);
        }
        let records = if assigned.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = shutdown.changed() => {}
            }
            Vec::new()
        } else {
            consumer.poll().await?
        };
        for record in records {
            let Some(task) = tasks.get_mut(&record.partition) else {
                continue;
            };
            task.process(
                &record.topic,
                record.key.as_deref(),
                record.value.as_deref(),
                record.timestamp_ms,
            )?;
            offsets.insert(
                (record.topic.to_string(), record.partition),
                record.offset + 1,
            );
            route(sink, task.take_outputs()).await?;
        }
        let now_ms = strom_client::producer::now_ms();
        for task in tasks.values_mut() {
            task.wall_clock(now_ms)?;
            route(sink, task.take_outputs()).await?;
        }
        if last_commit.elapsed() >= config.commit_interval {
            commit(client, config, member, sink, tasks, &mut offsets).await?;
            last_commit = Instant::now();
        }
        if last_heartbeat.elapsed() >= heartbeat_interval {
            last_heartbeat = Instant::now();
            match member.heartbeat().await? {
                HeartbeatOutcome::Stable => {}
                HeartbeatOutcome::Rejoin | HeartbeatOutcome::Lost => {
                    // Commit what was processed (it may be refused if the generation is
                    // already gone; then it is replayed by the next owner).
                    let committed =
                        match commit(client, config, member, sink, tasks, &mut offsets).await {
                            Ok(()) => true,
                            Err(error) => {
                                tracing::info!(%error, "commit before rejoining refused");
                                if let Sink::ExactlyOnce(producer) = sink {
                                    let _ = producer.abort().await;
                                }
                                false
                            }
                        };
                    return Ok(GenerationEnd::Rebalance { committed });
                }
            }
        }
    }
}

async fn route(sink: &mut Sink, outputs: Vec<OutputRecord>) -> Result<(), StreamsError> {
    for output in outputs {
        let record = ProducerRecord {
            topic: output.topic,
            partition: output.partition,
            key: output.key.map(Bytes::from),
            value: output.value.map(Bytes::from),
            headers: Vec::new(),
            timestamp_ms: Some(output.timestamp_ms),
        };
        match sink {
            Sink::AtLeastOnce {
                producer,
                deliveries,
            } => deliveries.push(producer.send(record).await?),
            Sink::ExactlyOnce(producer) => producer.send(record).await?,
        }
    }
    Ok(())
}

async fn commit(
    client: &Client,
    config: &StreamsConfig,
    member: &mut GroupMember,
    sink: &mut Sink,
    tasks: &mut BTreeMap<i32, Task>,
    offsets: &mut BTreeMap<(String, i32), i64>,
) -> Result<(), StreamsError> {
    let list: Vec<(String, i32, i64)> = offsets
        .iter()
        .map(|((t, p), o)| (t.clone(), *p, *o))
        .collect();
    match sink {
        Sink::AtLeastOnce {
            producer,
            deliveries,
        } => {
            producer.flush().await;
            for delivery in deliveries.drain(..) {
                delivery.await?;
            }
            commit_member_offsets(
                client,
                &config.application_id,
                member.generation_id(),
                member.member_id(),
                &list,
            )
            .await?;
        }
        Sink::ExactlyOnce(producer) => {
            let txn_offsets = TxnOffsets {
                group_id: config.application_id.clone(),
                generation_id: member.generation_id(),
                member_id: member.member_id().to_string(),
                offsets: list,
            };
            producer.commit(Some(&txn_offsets)).await?;
        }
    }
    offsets.clear();
    for task in tasks.values_mut() {
        task.flush(&HashMap::new())?;
    }
    Ok(())
}

/// On a clean shutdown: record in each persistent store the changelog offset its data
/// reaches, so the next start restores only what came after.
async fn checkpoint(
    client: &Client,
    config: &StreamsConfig,
    topology: &Topology,
    tasks: &mut BTreeMap<i32, Task>,
) -> Result<(), StreamsError> {
    if matches!(config.state, StoreBackend::Memory) || tasks.is_empty() {
        return Ok(());
    }
    let mut requests = Vec::new();
    for partition in tasks.keys() {
        for spec in topology.stores() {
            requests.push((
                spec.changelog_topic(&config.application_id),
                *partition,
                strom_client::OffsetSpec::Latest,
            ));
        }
    }
    let ends = strom_client::offsets::list_offsets(client, &requests).await?;
    for (partition, task) in tasks.iter_mut() {
        let mut positions = HashMap::new();
        for spec in topology.stores() {
            if let Some(listed) =
                ends.get(&(spec.changelog_topic(&config.application_id), *partition))
            {
                positions.insert(spec.name.clone(), listed.offset);
            }
        }
        task.flush(&positions)?;
    }
    Ok(())
}
