//! The group coordinator: consumer groups (classic and KIP-848) and committed offsets.
//!
//! Shape (openraft's engine/runtime split): [`coordinator::Coordinator`] is a plain state
//! machine (events in, [`Action`]s out, time passed in), [`classic`] and [`consumer`] hold
//! the two rebalance protocols, [`assignor`] the server-side assignors, [`records`] the
//! `__consumer_offsets` record format. [`GroupCoordinator`] is the thin async runtime around
//! them: it parks delayed JoinGroup/SyncGroup answers on oneshot channels, runs the timer
//! tick, and writes records through the same `PartitionLog` as user data ([`persist`]).
//!
//! Durability: a commit is answered only after its record is on the in-sync replicas of
//! its partition of `__consumer_offsets` (partition = Java `String.hashCode(group) %
//! partitions`), under the same flush policy as any topic. At start-up the topic is
//! replayed into memory, so a restart loses no acknowledged commit. The memory state is
//! changed right after the local append, under the coordinator lock, so log order and
//! memory order agree; the lock is let go before the answer waits for the replicas
//! ([`crate::internal_topics::Pending`]), so one slow write stalls no other request. Every
//! answer that reflects the state waits for the log end of its group's partition as it was
//! when read, so nothing is shown before it is durable (Kafka's rule for its coordinators).

pub mod assignor;
pub mod classic;
pub mod classic_messages;
pub mod consumer;
pub mod consumer_records;
pub mod coordinator;
pub mod persist;
pub mod records;

#[cfg(test)]
mod classic_tests;
#[cfg(test)]
mod consumer_tests;
#[cfg(test)]
mod wire_tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strom_protocol::ErrorCode;
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::config::BrokerConfig;
use crate::internal_topics::{self, Pending};
use crate::state::{now_ms, Broker};
use classic::{JoinGroup, JoinResult, SyncGroup, SyncResult};
use coordinator::Coordinator;
use records::GroupValue;

pub use persist::OFFSETS_TOPIC;

/// The wire code of an optional error (0 = none).
pub fn error_code(error: Option<ErrorCode>) -> i16 {
    error.map_or(0, |e| e.code())
}

/// Identifies a parked JoinGroup or SyncGroup request.
pub type WaiterId = u64;

/// How often the timers (sessions, rebalance deadlines) are checked.
const TICK_INTERVAL_MS: u64 = 100;
/// How often expired offsets are looked for (Kafka's offsets.retention.check.interval.ms).
const OFFSET_EXPIRY_INTERVAL_MS: u64 = 600_000;
/// How often offsets of deleted topics are looked for.
const DELETED_TOPICS_SWEEP_INTERVAL_MS: u64 = 30_000;

/// What the state machine asks the runtime to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    JoinDone {
        waiter: WaiterId,
        result: JoinResult,
    },
    SyncDone {
        waiter: WaiterId,
        result: SyncResult,
    },
    /// Write the group's metadata record (None = tombstone).
    WriteGroup {
        group_id: String,
        value: Option<GroupValue>,
    },
    /// Write a consumer-protocol group's snapshot (None = tombstone).
    WriteConsumerGroup {
        group_id: String,
        value: Option<bytes::Bytes>,
    },
    /// Write tombstones for these committed offsets.
    DeleteOffsets {
        group_id: String,
        partitions: Vec<(String, i32)>,
    },
}

/// The coordinator's settings, from the broker config.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub initial_rebalance_delay_ms: i64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_size: usize,
    pub offsets_retention_ms: i64,
    pub offset_metadata_max_bytes: usize,
    pub consumer_heartbeat_interval_ms: i32,
    pub consumer_session_timeout_ms: i64,
    /// Server-side assignors, the first being the default.
    pub consumer_assignors: Vec<String>,
}

impl GroupConfig {
    pub fn from_broker(config: &BrokerConfig) -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: config.group.initial_rebalance_delay_ms,
            min_session_timeout_ms: config.group.min_session_timeout_ms,
            max_session_timeout_ms: config.group.max_session_timeout_ms,
            max_size: config.group.max_size,
            offsets_retention_ms: config.group.offsets_retention_minutes * 60_000,
            offset_metadata_max_bytes: config.group.offset_metadata_max_bytes,
            consumer_heartbeat_interval_ms: config.group.consumer_heartbeat_interval_ms,
            consumer_session_timeout_ms: config.group.consumer_session_timeout_ms as i64,
            consumer_assignors: config.group.consumer_assignors.clone(),
        }
    }

    /// The assignor used when no member asks for one: the first configured. The broker's
    /// config refuses an empty list; should one get here anyway, `uniform` stands in.
    pub fn default_assignor(&self) -> &str {
        self.consumer_assignors
            .first()
            .map_or(assignor::UNIFORM, String::as_str)
    }
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX as usize,
            offsets_retention_ms: 10080 * 60_000,
            offset_metadata_max_bytes: 4096,
            consumer_heartbeat_interval_ms: 5000,
            consumer_session_timeout_ms: 45000,
            consumer_assignors: vec![assignor::UNIFORM.into(), assignor::RANGE.into()],
        }
    }
}

/// A parked JoinGroup or SyncGroup, with its group's offsets partition (whose log end the
/// answer waits for).
enum Waiter {
    Join(oneshot::Sender<JoinResult>, Option<i32>),
    Sync(oneshot::Sender<SyncResult>, Option<i32>),
}

/// The error a client gets when the records behind its answer were not committed.
pub fn not_committed_code(error: &persist::PersistError) -> ErrorCode {
    // As Kafka maps its coordinators' append errors: a lost leadership sends the client
    // to FindCoordinator; slow or missing replicas make it retry.
    match error {
        persist::PersistError::NotLeader { .. } | persist::PersistError::NotHosted { .. } => {
            ErrorCode::NotCoordinator
        }
        _ => ErrorCode::CoordinatorNotAvailable,
    }
}

/// The async runtime around [`Coordinator`].
pub struct GroupCoordinator {
    /// Held only for in-memory steps and local appends, never across an await.
    pub state: Mutex<Coordinator>,
    waiters: Mutex<HashMap<WaiterId, Waiter>>,
    next_waiter: AtomicU64,
    /// `__consumer_offsets` exists (created by this or an earlier run).
    topic_ready: AtomicBool,
    /// Offsets partitions this broker leads and has replayed, with the leader epoch it
    /// replayed them in: a new epoch (leadership came back) replays again.
    loaded: crate::internal_topics::LoadedPartitions,
    load_lock: tokio::sync::Mutex<()>,
    pub offsets_topic_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_segment_bytes: i32,
}

impl GroupCoordinator {
    pub fn new(config: &BrokerConfig) -> Self {
        GroupCoordinator {
            state: Mutex::new(Coordinator::new(
                GroupConfig::from_broker(config),
                rand::random(),
            )),
            waiters: Mutex::new(HashMap::new()),
            next_waiter: AtomicU64::new(1),
            topic_ready: AtomicBool::new(false),
            loaded: Default::default(),
            load_lock: tokio::sync::Mutex::new(()),
            offsets_topic_partitions: config.group.offsets_topic_num_partitions,
            offsets_topic_replication_factor: config.group.offsets_topic_replication_factor,
            offsets_topic_segment_bytes: config.group.offsets_topic_segment_bytes,
        }
    }

    /// Whether `__consumer_offsets` exists and this broker's led partitions were replayed
    /// at least once.
    pub fn is_loaded(&self) -> bool {
        self.topic_ready.load(Ordering::Acquire)
    }

    /// Whether this broker's led offsets partitions are all replayed in their current
    /// leader epochs, and no longer-led one is still held.
    fn is_current(&self, broker: &Broker) -> bool {
        self.is_loaded()
            && self
                .loaded
                .is_current(&crate::internal_topics::led_partitions(
                    broker,
                    OFFSETS_TOPIC,
                ))
    }

    /// Makes sure `__consumer_offsets` exists and every partition of it this broker leads
    /// is replayed (again, after a leadership change), and drops groups of partitions it
    /// no longer leads. While another request is loading it answers
    /// COORDINATOR_LOAD_IN_PROGRESS, as Kafka does; clients retry.
    pub async fn ensure_loaded(&self, broker: &Arc<Broker>) -> Result<(), ErrorCode> {
        if self.is_current(broker) {
            return Ok(());
        }
        let Ok(_guard) = self.load_lock.try_lock() else {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        };
        if !self.is_loaded() {
            if let Err(error) =
                crate::internal_topics::ensure_created(broker, &persist::offsets_topic(self)).await
            {
                warn!(%error, "group coordinator cannot create its topic");
                return Err(ErrorCode::CoordinatorNotAvailable);
            }
        }
        let led = crate::internal_topics::led_partitions(broker, OFFSETS_TOPIC);
        let partition_count = broker
            .image()
            .topic(OFFSETS_TOPIC)
            .map_or(1, |t| t.partition_count());
        // Groups of partitions led elsewhere now are not this coordinator's any more.
        let dropped = self.loaded.drop_unled(&led);
        if !dropped.is_empty() {
            self.state.lock().forget_groups(|group| {
                dropped.contains(&records::partition_for(group, partition_count))
            });
            info!(partitions = ?dropped, "group coordinator gave up partitions led elsewhere");
        }
        for (index, epoch) in self.loaded.to_load(&led) {
            match persist::load_partition(broker, self, index).await {
                Ok(stats) => {
                    info!(
                        partition = index,
                        leader_epoch = epoch,
                        records = stats.records,
                        "group coordinator loaded an offsets partition"
                    );
                    self.loaded.loaded(index, epoch);
                }
                Err(error) => {
                    warn!(partition = index, %error, "group coordinator load failed");
                    return Err(ErrorCode::CoordinatorNotAvailable);
                }
            }
        }
        self.topic_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// [`GroupCoordinator::ensure_loaded`], then [`GroupCoordinator::check_coordinator`]:
    /// what every request about one group needs first.
    pub async fn ensure_coordinator(
        &self,
        broker: &Arc<Broker>,
        group_id: &str,
    ) -> Result<(), ErrorCode> {
        self.ensure_loaded(broker).await?;
        self.check_coordinator(broker, group_id)
    }

    /// Whether this broker coordinates `group_id` (it leads the group's offsets
    /// partition); NOT_COORDINATOR sends the client back to FindCoordinator.
    pub fn check_coordinator(&self, broker: &Broker, group_id: &str) -> Result<(), ErrorCode> {
        let image = broker.image();
        let Some(topic) = image.topic(OFFSETS_TOPIC) else {
            return Ok(());
        };
        let index = records::partition_for(group_id, topic.partition_count());
        if crate::internal_topics::leads(broker, OFFSETS_TOPIC, index) {
            Ok(())
        } else {
            Err(ErrorCode::NotCoordinator)
        }
    }

    /// For requests that only read groups (ListGroups, DescribeGroups, OffsetFetch, ...):
    /// like [`GroupCoordinator::ensure_loaded`], but a cluster that has never used groups
    /// answers from the empty state instead of creating `__consumer_offsets`.
    pub async fn ensure_readable(&self, broker: &Arc<Broker>) -> Result<(), ErrorCode> {
        if !self.is_loaded() && broker.image().topic(OFFSETS_TOPIC).is_none() {
            return Ok(());
        }
        self.ensure_loaded(broker).await
    }

    /// The read barrier of `group_id`'s state: the log end of its offsets partition now.
    /// Taken after reading the state (under the lock or after it), awaited before answering.
    pub fn read_barrier(&self, broker: &Broker, group_id: &str) -> Pending {
        match persist::partition_of(broker, group_id) {
            Ok(index) => internal_topics::log_end(broker, OFFSETS_TOPIC, index),
            Err(_) => Pending::none(),
        }
    }

    /// Runs `f` on the state machine and appends the records of its actions while the lock
    /// is held (log order = memory order); then, with the lock let go, waits for those
    /// records (and the state `reads` names) to be committed and answers the parked
    /// requests. Fails with the code for a write that did not get committed.
    pub async fn run<R>(
        &self,
        broker: &Arc<Broker>,
        reads: Option<&str>,
        f: impl FnOnce(&mut Coordinator) -> (R, Vec<Action>),
    ) -> Result<R, ErrorCode> {
        let (result, pending, completions) = self.run_locked(broker, reads, f);
        let committed = internal_topics::all_committed(broker, pending).await;
        let failure = committed.err().map(|error| {
            warn!(%error, "group coordinator write not committed");
            not_committed_code(&error)
        });
        self.deliver(completions, failure);
        match failure {
            None => Ok(result),
            Some(code) => Err(code),
        }
    }

    /// [`GroupCoordinator::run`] for the timers: nobody waits for the outcome, so the
    /// wait for the replicas and the parked answers run on their own task.
    fn run_detached(
        self: &Arc<Self>,
        broker: &Arc<Broker>,
        f: impl FnOnce(&mut Coordinator) -> ((), Vec<Action>),
    ) {
        let ((), pending, completions) = self.run_locked(broker, None, f);
        if pending.is_empty() && completions.is_empty() {
            return;
        }
        let coordinator = self.clone();
        let broker = broker.clone();
        tokio::spawn(async move {
            let failure = internal_topics::all_committed(&broker, pending)
                .await
                .err()
                .map(|error| {
                    warn!(%error, "group coordinator write not committed");
                    not_committed_code(&error)
                });
            coordinator.deliver(completions, failure);
        });
    }

    /// The synchronous part of a run: the state change and the appends of its records,
    /// under the lock. Returns what to wait for and the answers to give after.
    fn run_locked<R>(
        &self,
        broker: &Arc<Broker>,
        reads: Option<&str>,
        f: impl FnOnce(&mut Coordinator) -> (R, Vec<Action>),
    ) -> (R, Vec<Pending>, Vec<Action>) {
        let mut completions = Vec::new();
        let mut pending = Vec::new();
        let mut state = self.state.lock();
        let (result, actions) = f(&mut state);
        for action in actions {
            let written = match action {
                Action::WriteGroup { group_id, value } => {
                    persist::write_group(broker, self, &group_id, value.as_ref())
                        .inspect_err(|error| {
                            warn!(group = %group_id, ?error, "cannot write group metadata")
                        })
                }
                Action::WriteConsumerGroup { group_id, value } => {
                    persist::write_consumer_group(broker, self, &group_id, value).inspect_err(
                        |error| warn!(group = %group_id, ?error, "cannot write consumer group snapshot"),
                    )
                }
                Action::DeleteOffsets {
                    group_id,
                    partitions,
                } => persist::write_offset_tombstones(broker, self, &group_id, &partitions)
                    .inspect_err(|error| {
                        warn!(group = %group_id, ?error, "cannot write offset tombstones")
                    }),
                other => {
                    completions.push(other);
                    continue;
                }
            };
            // A write that failed locally is logged above; the state machine already moved
            // on, as it did when writes were answered under the lock.
            if let Ok(write) = written {
                pending.push(write);
            }
        }
        // The parked answers and the caller's answer show state that earlier writes (maybe
        // still uncommitted) made: wait for their partitions' log ends too.
        let waiters = self.waiters.lock();
        let mut barriers: Vec<i32> = completions
            .iter()
            .filter_map(|action| match action {
                Action::JoinDone { waiter, .. } | Action::SyncDone { waiter, .. } => {
                    match waiters.get(waiter) {
                        Some(Waiter::Join(_, index)) | Some(Waiter::Sync(_, index)) => *index,
                        None => None,
                    }
                }
                _ => None,
            })
            .collect();
        drop(waiters);
        if let Some(index) = reads.and_then(|group| persist::partition_of(broker, group).ok()) {
            barriers.push(index);
        }
        barriers.sort_unstable();
        barriers.dedup();
        pending.extend(
            barriers
                .into_iter()
                .map(|index| internal_topics::log_end(broker, OFFSETS_TOPIC, index)),
        );
        drop(state);
        (result, pending, completions)
    }

    /// Answers parked requests; with `failure`, their records were not committed, so they
    /// get that error instead of a result that could be lost.
    fn deliver(&self, completions: Vec<Action>, failure: Option<ErrorCode>) {
        if completions.is_empty() {
            return;
        }
        let mut waiters = self.waiters.lock();
        for action in completions {
            match action {
                Action::JoinDone { waiter, result } => {
                    if let Some(Waiter::Join(sender, _)) = waiters.remove(&waiter) {
                        let result = match failure {
                            None => result,
                            Some(code) => JoinResult::error(code, &result.member_id),
                        };
                        let _ = sender.send(result);
                    }
                }
                Action::SyncDone { waiter, result } => {
                    if let Some(Waiter::Sync(sender, _)) = waiters.remove(&waiter) {
                        let _ = sender.send(failure.map_or(result, SyncResult::error));
                    }
                }
                // run_locked keeps only the answers here; writes went to the log.
                Action::WriteGroup { .. }
                | Action::WriteConsumerGroup { .. }
                | Action::DeleteOffsets { .. } => {}
            }
        }
    }

    /// JoinGroup: answered when the rebalance's join phase completes (or at once on error).
    pub async fn join(&self, broker: &Arc<Broker>, request: JoinGroup) -> JoinResult {
        let waiter = self.next_waiter.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        let index = persist::partition_of(broker, &request.group_id).ok();
        self.waiters
            .lock()
            .insert(waiter, Waiter::Join(sender, index));
        let member_id = request.member_id.clone();
        if let Err(code) = self
            .run(broker, None, |state| {
                ((), state.join(now_ms(), request, waiter))
            })
            .await
        {
            warn!(?code, "join group records not committed");
        }
        receiver
            .await
            .unwrap_or_else(|_| JoinResult::error(ErrorCode::UnknownServerError, &member_id))
    }

    /// SyncGroup: followers wait for the leader's assignment.
    pub async fn sync(&self, broker: &Arc<Broker>, request: SyncGroup) -> SyncResult {
        let waiter = self.next_waiter.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        let index = persist::partition_of(broker, &request.group_id).ok();
        self.waiters
            .lock()
            .insert(waiter, Waiter::Sync(sender, index));
        if let Err(code) = self
            .run(broker, None, |state| {
                ((), state.sync(now_ms(), request, waiter))
            })
            .await
        {
            warn!(?code, "sync group records not committed");
        }
        receiver
            .await
            .unwrap_or_else(|_| SyncResult::error(ErrorCode::UnknownServerError))
    }

    /// The timer loop: every tick checks sessions and deadlines; every few minutes expired
    /// offsets are removed.
    pub fn spawn_timers(self: &Arc<Self>, broker: Arc<Broker>) -> tokio::task::JoinHandle<()> {
        let coordinator = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(TICK_INTERVAL_MS));
            let mut expiry =
                tokio::time::interval(Duration::from_millis(OFFSET_EXPIRY_INTERVAL_MS));
            let mut sweep =
                tokio::time::interval(Duration::from_millis(DELETED_TOPICS_SWEEP_INTERVAL_MS));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        coordinator.run_detached(&broker, |state| ((), state.tick(now_ms())));
                    }
                    _ = expiry.tick() => {
                        if coordinator.is_loaded() {
                            coordinator.run_detached(&broker, |state| ((), state.expire_offsets(now_ms())));
                        }
                    }
                    _ = sweep.tick() => {
                        if coordinator.is_loaded() {
                            let image = broker.image();
                            coordinator.run_detached(&broker, |state| {
                                ((), state.forget_deleted_topics(|topic| image.topic(topic).is_some()))
                            });
                        }
                    }
                }
            }
        })
    }
}
