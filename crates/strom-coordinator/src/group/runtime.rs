//! The group coordinator's runtime: consumer groups (classic and KIP-848) and committed
//! offsets, sharded by `__consumer_offsets` partition, over an [`InternalLog`].
//!
//! Shape (openraft's engine/runtime split): [`Coordinator`] is the plain state machine;
//! [`GroupCoordinator`] is the async runtime around it. It holds one shard per offsets
//! partition this node leads, each with its own [`Coordinator`] and its own lock, loaded
//! (replayed from the log) and dropped on its own when the partition's leadership moves,
//! so loading one partition or a slow write to one stalls no group of another. It parks
//! delayed JoinGroup/SyncGroup answers on oneshot channels and runs the timer tick.
//!
//! Durability: a commit is answered only after its record is committed on its partition
//! of `__consumer_offsets` (partition = Java `String.hashCode(group) % partitions`). The
//! shard's memory is changed right after the append, under the shard lock, so log order
//! and memory order agree; the lock is let go before the answer waits for the replicas
//! ([`Pending`]). Every answer that reflects the state waits for the log end of its
//! group's partition as it was when read, so nothing is shown before it is durable
//! (Kafka's rule for its coordinators).

use std::collections::{HashMap, HashSet};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RawMutex, RwLock};
use strom_protocol::ErrorCode;
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::classic::{JoinGroup, JoinResult, SyncGroup, SyncResult};
use super::coordinator::Coordinator;
use super::persist::{self, OFFSETS_TOPIC};
use super::{Action, GroupConfig, WaiterId};
use crate::clock::Clock;
use crate::log::{all_committed, InternalLog, InternalTopic, LogError, Pending};

/// How often the timers (sessions, rebalance deadlines) are checked.
const TICK_INTERVAL_MS: u64 = 100;
/// How often expired offsets are looked for (Kafka's offsets.retention.check.interval.ms).
const OFFSET_EXPIRY_INTERVAL_MS: u64 = 600_000;
/// How often offsets of deleted topics are looked for.
const DELETED_TOPICS_SWEEP_INTERVAL_MS: u64 = 30_000;

/// Replays of one partition a request tries while its leadership keeps moving.
const LOAD_ROUNDS_MAX: usize = 3;

/// What the runtime needs besides the state machine's settings.
#[derive(Debug, Clone)]
pub struct GroupRuntimeConfig {
    pub group: GroupConfig,
    /// How `__consumer_offsets` is created on first use.
    pub offsets_topic: InternalTopic,
}

/// A parked JoinGroup or SyncGroup.
enum Waiter {
    Join(oneshot::Sender<JoinResult>),
    Sync(oneshot::Sender<SyncResult>),
}

/// The error a client gets when the records behind its answer were not committed.
pub fn not_committed_code(error: &LogError) -> ErrorCode {
    // As Kafka maps its coordinators' append errors: a lost leadership sends the client
    // to FindCoordinator; slow or missing replicas make it retry.
    match error {
        LogError::NotLeader { .. } | LogError::NotHosted { .. } => ErrorCode::NotCoordinator,
        _ => ErrorCode::CoordinatorNotAvailable,
    }
}

/// One offsets partition's state, loaded in one leader epoch.
struct Shard {
    epoch: i32,
    state: Arc<Mutex<Coordinator>>,
}

impl crate::shards::Epoch for Shard {
    fn epoch(&self) -> i32 {
        self.epoch
    }
}

/// The locked state of one shard, with the partition its records go to. Writes made
/// through it ([`persist`]) are appended while the lock is held, so log order and memory
/// order agree; await their [`Pending`] after dropping it.
pub struct GroupShard<'a> {
    pub(super) coordinator: &'a GroupCoordinator,
    /// The shard's `__consumer_offsets` partition.
    pub index: i32,
    state: parking_lot::ArcMutexGuard<RawMutex, Coordinator>,
}

impl Deref for GroupShard<'_> {
    type Target = Coordinator;
    fn deref(&self) -> &Coordinator {
        &self.state
    }
}

impl DerefMut for GroupShard<'_> {
    fn deref_mut(&mut self) -> &mut Coordinator {
        &mut self.state
    }
}

/// Removes a partition from the loading set when its load ends or is abandoned.
struct LoadingGuard<'a> {
    loading: &'a Mutex<HashSet<i32>>,
    index: i32,
}

impl Drop for LoadingGuard<'_> {
    fn drop(&mut self) {
        self.loading.lock().remove(&self.index);
    }
}

/// The async runtime around [`Coordinator`], one shard per led offsets partition.
pub struct GroupCoordinator {
    config: GroupRuntimeConfig,
    pub(super) log: Arc<dyn InternalLog>,
    clock: Arc<dyn Clock>,
    /// Led offsets partitions, replayed, by partition index.
    shards: RwLock<HashMap<i32, Shard>>,
    /// Partitions being replayed now.
    loading: Mutex<HashSet<i32>>,
    /// One creation of `__consumer_offsets` at a time.
    create_lock: tokio::sync::Mutex<()>,
    waiters: Mutex<HashMap<WaiterId, Waiter>>,
    next_waiter: AtomicU64,
    /// `__consumer_offsets` exists and every led partition was replayed at least once.
    topic_ready: AtomicBool,
    /// What reads see of a group no shard holds: nothing.
    empty: Mutex<Coordinator>,
}

impl GroupCoordinator {
    pub fn new(
        config: GroupRuntimeConfig,
        log: Arc<dyn InternalLog>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        GroupCoordinator {
            empty: Mutex::new(Coordinator::new(config.group.clone(), 0)),
            config,
            log,
            clock,
            shards: RwLock::new(HashMap::new()),
            loading: Mutex::new(HashSet::new()),
            create_lock: tokio::sync::Mutex::new(()),
            waiters: Mutex::new(HashMap::new()),
            next_waiter: AtomicU64::new(1),
            topic_ready: AtomicBool::new(false),
        }
    }

    /// The state machine's settings.
    pub fn group_config(&self) -> &GroupConfig {
        &self.config.group
    }

    /// The coordinator's clock, in milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// How `__consumer_offsets` is created on first use.
    pub fn offsets_topic(&self) -> &InternalTopic {
        &self.config.offsets_topic
    }

    /// Whether `__consumer_offsets` exists and this node's led partitions were replayed
    /// at least once.
    pub fn is_loaded(&self) -> bool {
        self.topic_ready.load(Ordering::Acquire)
    }

    /// The partition of `__consumer_offsets` that holds `group_id`'s records, by the
    /// topic's real partition count (None: the topic does not exist).
    pub fn partition_of(&self, group_id: &str) -> Option<i32> {
        let count = self.log.partition_count(OFFSETS_TOPIC)?;
        Some(crate::partition_for(group_id, count))
    }

    /// The offsets partitions with a loaded shard, with their leader epochs.
    pub fn loaded_partitions(&self) -> Vec<(i32, i32)> {
        let mut loaded: Vec<(i32, i32)> = self
            .shards
            .read()
            .iter()
            .map(|(index, shard)| (*index, shard.epoch))
            .collect();
        loaded.sort_unstable();
        loaded
    }

    /// Creates `__consumer_offsets` unless this coordinator saw it already.
    async fn ensure_topic(&self) -> Result<(), ErrorCode> {
        crate::shards::ensure_topic(
            self.log.as_ref(),
            &self.create_lock,
            self.is_loaded(),
            OFFSETS_TOPIC,
            &self.config.offsets_topic,
        )
        .await
    }

    /// Drops the shards of partitions not led any more, or led in another epoch (those
    /// are replayed again). Other shards are not touched.
    fn drop_stale(&self, led: &[(i32, i32)]) {
        let dropped = crate::shards::drop_stale(&self.shards, led);
        if !dropped.is_empty() {
            info!(partitions = ?dropped, "group coordinator gave up offsets partitions led elsewhere or in an older epoch");
        }
    }

    fn is_current(&self, index: i32, epoch: i32) -> bool {
        crate::shards::is_current(&self.shards, index, epoch)
    }

    /// Replays partition `index` into a new shard (leader epoch `epoch`; not installed if
    /// the leadership moved meanwhile). False when another request is replaying it now.
    async fn load_shard(&self, index: i32, epoch: i32) -> Result<bool, LogError> {
        if !self.loading.lock().insert(index) {
            return Ok(false);
        }
        let _loading = LoadingGuard {
            loading: &self.loading,
            index,
        };
        let items = self.log.replay(OFFSETS_TOPIC, index).await?;
        let mut state = Coordinator::new(self.config.group.clone(), rand::random());
        let records = persist::replay(&mut state, items, self.now_ms());
        // The leadership may have moved during the replay: install only a current shard.
        if !self
            .log
            .led_partitions(OFFSETS_TOPIC)
            .contains(&(index, epoch))
        {
            return Ok(true);
        }
        info!(
            partition = index,
            leader_epoch = epoch,
            records,
            groups = state.groups.len(),
            "group coordinator loaded an offsets partition"
        );
        self.shards.write().insert(
            index,
            Shard {
                epoch,
                state: Arc::new(Mutex::new(state)),
            },
        );
        Ok(true)
    }

    fn mark_ready_if_current(&self, led: &[(i32, i32)]) {
        if !self.is_loaded() && led.iter().all(|(i, e)| self.is_current(*i, *e)) {
            self.topic_ready.store(true, Ordering::Release);
        }
    }

    /// Makes sure `__consumer_offsets` exists and every partition of it this node leads
    /// is replayed (again, after a leadership change), and drops shards of partitions it
    /// no longer leads. While another request is loading a partition it answers
    /// COORDINATOR_LOAD_IN_PROGRESS, as Kafka does; clients retry.
    pub async fn ensure_loaded(&self) -> Result<(), ErrorCode> {
        self.ensure_topic().await?;
        let led = self.log.led_partitions(OFFSETS_TOPIC);
        self.drop_stale(&led);
        let mut busy = false;
        for &(index, epoch) in &led {
            if self.is_current(index, epoch) {
                continue;
            }
            match self.load_shard(index, epoch).await {
                Ok(true) => {}
                Ok(false) => busy = true,
                Err(error) => {
                    warn!(partition = index, %error, "group coordinator load failed");
                    return Err(ErrorCode::CoordinatorNotAvailable);
                }
            }
        }
        self.mark_ready_if_current(&led);
        if busy {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        }
        Ok(())
    }

    /// What every request about one group needs first: the topic exists, this node leads
    /// the group's partition (NOT_COORDINATOR otherwise, which sends the client back to
    /// FindCoordinator) and that partition's shard is loaded. Only that partition is
    /// replayed if it is not.
    pub async fn ensure_coordinator(&self, group_id: &str) -> Result<(), ErrorCode> {
        self.ensure_topic().await?;
        let Some(index) = self.partition_of(group_id) else {
            return Err(ErrorCode::CoordinatorNotAvailable);
        };
        // A leadership change during the replay (a new epoch) replays again.
        for _ in 0..LOAD_ROUNDS_MAX {
            let led = self.log.led_partitions(OFFSETS_TOPIC);
            self.drop_stale(&led);
            let Some(&(_, epoch)) = led.iter().find(|(i, _)| *i == index) else {
                return Err(ErrorCode::NotCoordinator);
            };
            if self.is_current(index, epoch) {
                return self.check_coordinator(group_id);
            }
            match self.load_shard(index, epoch).await {
                Ok(true) => {
                    // Until every led partition has been loaded once (a topic created by
                    // this request, or a request ahead of the startup load), load the rest
                    // too, so readiness does not wait for requests to reach every shard.
                    if !self.is_loaded() {
                        let _ = Box::pin(self.ensure_loaded()).await;
                    }
                    self.mark_ready_if_current(&led)
                }
                Ok(false) => return Err(ErrorCode::CoordinatorLoadInProgress),
                Err(error) => {
                    warn!(partition = index, %error, "group coordinator load failed");
                    return Err(ErrorCode::CoordinatorNotAvailable);
                }
            }
        }
        Err(ErrorCode::CoordinatorLoadInProgress)
    }

    /// Whether this node coordinates `group_id` (it leads the group's offsets partition);
    /// NOT_COORDINATOR sends the client back to FindCoordinator.
    pub fn check_coordinator(&self, group_id: &str) -> Result<(), ErrorCode> {
        match self.partition_of(group_id) {
            None => Ok(()),
            Some(index) if self.log.leads(OFFSETS_TOPIC, index) => Ok(()),
            Some(_) => Err(ErrorCode::NotCoordinator),
        }
    }

    /// For requests that only read groups (ListGroups, DescribeGroups, OffsetFetch, ...):
    /// like [`GroupCoordinator::ensure_loaded`], but a cluster that has never used groups
    /// answers from the empty state instead of creating `__consumer_offsets`.
    pub async fn ensure_readable(&self) -> Result<(), ErrorCode> {
        if !self.is_loaded() && self.log.partition_count(OFFSETS_TOPIC).is_none() {
            return Ok(());
        }
        self.ensure_loaded().await
    }

    /// The read barrier of `group_id`'s state: the log end of its offsets partition now.
    /// Taken after reading the state (under the lock or after it), awaited before answering.
    pub fn read_barrier(&self, group_id: &str) -> Pending {
        match self.partition_of(group_id) {
            Some(index) => self.log.log_end(OFFSETS_TOPIC, index),
            None => Pending::none(),
        }
    }

    /// Locks the shard of offsets partition `index`, if loaded.
    pub fn lock_shard(&self, index: i32) -> Option<GroupShard<'_>> {
        let state = self.shards.read().get(&index)?.state.clone();
        Some(GroupShard {
            coordinator: self,
            index,
            state: state.lock_arc(),
        })
    }

    /// Locks the shard holding `group_id`: NOT_COORDINATOR when no loaded shard does
    /// (the partition is led elsewhere, or its leadership just moved), GROUP_ID_NOT_FOUND
    /// when `__consumer_offsets` does not exist (no group can).
    pub fn lock_group(&self, group_id: &str) -> Result<GroupShard<'_>, ErrorCode> {
        let index = self
            .partition_of(group_id)
            .ok_or(ErrorCode::GroupIdNotFound)?;
        if self.loading.lock().contains(&index) {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        }
        self.lock_shard(index).ok_or(ErrorCode::NotCoordinator)
    }

    /// Reads the state of the shard holding `group_id` (an empty state when none does).
    pub fn read_group<R>(&self, group_id: &str, f: impl FnOnce(&Coordinator) -> R) -> R {
        match self.partition_of(group_id).and_then(|i| self.lock_shard(i)) {
            Some(shard) => f(&shard),
            None => f(&self.empty.lock()),
        }
    }

    /// Reads every loaded shard, one at a time, in partition order.
    pub fn read_all(&self, mut f: impl FnMut(&Coordinator)) {
        let mut states: Vec<(i32, Arc<Mutex<Coordinator>>)> = self
            .shards
            .read()
            .iter()
            .map(|(index, shard)| (*index, shard.state.clone()))
            .collect();
        states.sort_unstable_by_key(|(index, _)| *index);
        for (_, state) in states {
            f(&state.lock());
        }
    }

    /// Runs `f` on the state machine of `group_id`'s shard and appends the records of its
    /// actions while the shard lock is held (log order = memory order); then, with the
    /// lock let go, waits for those records (and, with `reads`, the group's partition log
    /// end) to be committed and answers the parked requests. Fails with the code for a
    /// write that did not get committed, or for a group no loaded shard holds.
    pub async fn run<R>(
        &self,
        group_id: &str,
        reads: bool,
        f: impl FnOnce(&mut Coordinator) -> (R, Vec<Action>),
    ) -> Result<R, ErrorCode> {
        let shard = self.lock_group(group_id)?;
        let (result, pending, completions) = self.run_locked(shard, reads, f);
        let failure = all_committed(pending).await.err().map(|error| {
            warn!(%error, "group coordinator write not committed");
            not_committed_code(&error)
        });
        self.deliver(completions, failure);
        match failure {
            None => Ok(result),
            Some(code) => Err(code),
        }
    }

    /// [`GroupCoordinator::run`] on every shard, for the timers: nobody waits for the
    /// outcome, so the wait for the replicas and the parked answers run on their own task.
    fn run_detached(self: &Arc<Self>, f: impl Fn(&mut Coordinator) -> Vec<Action>) {
        let indexes: Vec<i32> = self.shards.read().keys().copied().collect();
        for index in indexes {
            let Some(shard) = self.lock_shard(index) else {
                continue;
            };
            let ((), pending, completions) = self.run_locked(shard, false, |state| ((), f(state)));
            if pending.is_empty() && completions.is_empty() {
                continue;
            }
            let coordinator = self.clone();
            tokio::spawn(async move {
                let failure = all_committed(pending).await.err().map(|error| {
                    warn!(%error, "group coordinator write not committed");
                    not_committed_code(&error)
                });
                coordinator.deliver(completions, failure);
            });
        }
    }

    /// The synchronous part of a run: the state change and the appends of its records,
    /// under the shard lock. Returns what to wait for and the answers to give after.
    fn run_locked<R>(
        &self,
        mut shard: GroupShard<'_>,
        reads: bool,
        f: impl FnOnce(&mut Coordinator) -> (R, Vec<Action>),
    ) -> (R, Vec<Pending>, Vec<Action>) {
        let mut completions = Vec::new();
        let mut pending = Vec::new();
        let (result, actions) = f(&mut shard);
        for action in actions {
            let written = match action {
                Action::WriteGroup { group_id, value } => shard
                    .write_group(&group_id, value.as_ref())
                    .inspect_err(|error| {
                        warn!(group = %group_id, ?error, "cannot write group metadata")
                    }),
                Action::WriteConsumerGroup { group_id, value } => shard
                    .write_consumer_group(&group_id, value)
                    .inspect_err(|error| {
                        warn!(group = %group_id, ?error, "cannot write consumer group snapshot")
                    }),
                Action::DeleteOffsets {
                    group_id,
                    partitions,
                } => shard
                    .write_offset_tombstones(&group_id, &partitions)
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
        // still uncommitted) made: wait for the shard's log end too.
        let needs_barrier = reads
            || completions
                .iter()
                .any(|a| matches!(a, Action::JoinDone { .. } | Action::SyncDone { .. }));
        if needs_barrier {
            pending.push(self.log.log_end(OFFSETS_TOPIC, shard.index));
        }
        drop(shard);
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
                    if let Some(Waiter::Join(sender)) = waiters.remove(&waiter) {
                        let result = match failure {
                            None => result,
                            Some(code) => JoinResult::error(code, &result.member_id),
                        };
                        let _ = sender.send(result);
                    }
                }
                Action::SyncDone { waiter, result } => {
                    if let Some(Waiter::Sync(sender)) = waiters.remove(&waiter) {
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
    pub async fn join(&self, request: JoinGroup) -> JoinResult {
        let waiter = self.next_waiter.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        self.waiters.lock().insert(waiter, Waiter::Join(sender));
        let member_id = request.member_id.clone();
        let group_id = request.group_id.clone();
        let now = self.now_ms();
        let shard = match self.lock_group(&group_id) {
            Ok(shard) => shard,
            Err(code) => {
                self.waiters.lock().remove(&waiter);
                return JoinResult::error(code, &member_id);
            }
        };
        let ((), pending, completions) =
            self.run_locked(shard, false, |state| ((), state.join(now, request, waiter)));
        self.finish(pending, completions).await;
        receiver
            .await
            .unwrap_or_else(|_| JoinResult::error(ErrorCode::UnknownServerError, &member_id))
    }

    /// SyncGroup: followers wait for the leader's assignment.
    pub async fn sync(&self, request: SyncGroup) -> SyncResult {
        let waiter = self.next_waiter.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        self.waiters.lock().insert(waiter, Waiter::Sync(sender));
        let now = self.now_ms();
        let shard = match self.lock_group(&request.group_id) {
            Ok(shard) => shard,
            Err(code) => {
                self.waiters.lock().remove(&waiter);
                return SyncResult::error(code);
            }
        };
        let ((), pending, completions) =
            self.run_locked(shard, false, |state| ((), state.sync(now, request, waiter)));
        self.finish(pending, completions).await;
        receiver
            .await
            .unwrap_or_else(|_| SyncResult::error(ErrorCode::UnknownServerError))
    }

    /// Waits for a run's writes, then answers its parked requests.
    async fn finish(&self, pending: Vec<Pending>, completions: Vec<Action>) {
        let failure = all_committed(pending).await.err().map(|error| {
            warn!(%error, "group coordinator write not committed");
            not_committed_code(&error)
        });
        self.deliver(completions, failure);
    }

    /// The timer loop: every tick checks sessions and deadlines; every few minutes expired
    /// offsets are removed, and offsets of topics `topic_exists` no longer knows.
    pub fn spawn_timers(
        self: &Arc<Self>,
        topic_exists: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    ) -> tokio::task::JoinHandle<()> {
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
                        let now = coordinator.now_ms();
                        coordinator.run_detached(|state| state.tick(now));
                    }
                    _ = expiry.tick() => {
                        if coordinator.is_loaded() {
                            let now = coordinator.now_ms();
                            coordinator.run_detached(|state| state.expire_offsets(now));
                        }
                    }
                    _ = sweep.tick() => {
                        if coordinator.is_loaded() {
                            coordinator.run_detached(|state| {
                                state.forget_deleted_topics(|topic| topic_exists(topic))
                            });
                        }
                    }
                }
            }
        })
    }
}
