//! The transaction coordinator's runtime: exactly-once producers (transactional ids,
//! epochs that fence zombies, transactions over many partitions, commit/abort markers) over
//! an [`InternalLog`].
//!
//! Shape, like the group coordinator: [`TxnStateMachine`] is the plain state machine
//! (Kafka's `TransactionCoordinator` rules; time passed in) and [`records`] the
//! `__transaction_state` format; [`TransactionCoordinator`] is the thin runtime that writes
//! state to `__transaction_state` (partition = Java `String.hashCode(transactional.id) %
//! partitions`) before installing it, so a restart replays exactly what was acknowledged.
//!
//! Ending a transaction: PrepareCommit/PrepareAbort is written, the markers are written to
//! every partition of the transaction, then CompleteCommit/CompleteAbort. A restart that
//! finds a Prepare state writes the markers again (a repeated marker is harmless). Each
//! step decides and appends its record under the lock of the id's shard (`shards`: one
//! state machine per `__transaction_state` partition; log order = memory order), then
//! lets the lock go: the wait for the in-sync replicas, the markers (partitions led here
//! through [`InternalLog::write_marker`], partitions led by other nodes with one
//! [`InternalLog::send_markers`] per node, sent concurrently) and the completion run with
//! no lock held, so other transactions go on meanwhile. The producer gets its EndTxn
//! answer once the markers and the completion are written. One task ends a given
//! transaction at a time (`ending`, registered under the lock together with the Prepare
//! state).
//!
//! On a cluster the coordinator of an id is the leader of its `__transaction_state`
//! partition; every node replays the partitions it leads (again after a leadership
//! change, finishing half-ended transactions) and answers NOT_COORDINATOR for the rest.
//!
//! KIP-890 defence: a transactional write is checked against the coordinator
//! ([`TransactionCoordinator::verify`]: the producer's id and epoch are current, the
//! transaction is open, the partition was added) and holds a [`TxnGuard`] that the start
//! of the transaction's end invalidates, so a write verified before its transaction ended
//! cannot land after the end marker and hang the partition. (Where the partition leader is
//! not the coordinator the broker asks the coordinator over the wire instead.)
//!
//! Transaction version 2 (KIP-890 part 2): EndTxn v5 bumps the epoch on every end
//! ([`TxnStateMachine::end_transaction_v2`]), and a transactional write adds its own
//! partition ([`TransactionCoordinator::add_and_verify`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use strom_protocol::ErrorCode;
use tracing::{info, warn};

use super::records;
use super::state::{
    InitOutcome, ProducerIdAndEpoch, TopicPartition, Transition, TxnLimits, TxnMetadata, TxnResult,
    TxnStateMachine,
};
use crate::clock::Clock;
use crate::group::GroupCoordinator;
use crate::log::{InternalLog, InternalTopic, LogError, Pending, TxnMarker};

pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Rounds of abort-then-retry an InitProducerId may need (one open transaction to end).
const INIT_ROUNDS_MAX: usize = 3;

/// Proof that a transactional write was verified; invalid once the transaction's end began.
pub struct TxnGuard {
    generation: Arc<AtomicU64>,
    expected: u64,
}

impl TxnGuard {
    /// A guard that is always valid (no local coordinator to verify against).
    pub fn unchecked() -> Self {
        TxnGuard {
            generation: Arc::new(AtomicU64::new(0)),
            expected: 0,
        }
    }

    /// Check under the partition's log lock, right before appending.
    pub fn is_valid(&self) -> bool {
        self.generation.load(Ordering::Acquire) == self.expected
    }
}

/// Where new producer ids come from (an id that starts over: InitProducerId, an exhausted
/// epoch). Ids must be unique across restarts and nodes.
pub trait ProducerIds: Send + Sync + 'static {
    fn next_producer_id(&self) -> Result<i64, String>;
}

/// The runtime's settings.
#[derive(Debug, Clone)]
pub struct TxnRuntimeConfig {
    /// The state machine's limits.
    pub limits: TxnLimits,
    /// How `__transaction_state` is created on first use.
    pub state_topic: InternalTopic,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_timed_out_interval_ms: u64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval_ms: u64,
}

/// One `__transaction_state` partition's state, loaded in one leader epoch.
pub(super) struct TxnShard {
    pub(super) epoch: i32,
    /// Held only for in-memory steps and local appends, never across an await.
    pub(super) state: Arc<Mutex<TxnStateMachine>>,
}

impl crate::shards::Epoch for TxnShard {
    fn epoch(&self) -> i32 {
        self.epoch
    }
}

/// Removes a partition from the loading set when its load ends or is abandoned.
pub(super) struct Loading<'a>(pub(super) &'a Mutex<HashSet<i32>>, pub(super) i32);

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

pub struct TransactionCoordinator {
    /// One state machine and lock per `__transaction_state` partition this broker leads,
    /// loaded and dropped on its own when the partition's leadership moves.
    pub(super) shards: parking_lot::RwLock<HashMap<i32, TxnShard>>,
    /// Partitions being replayed now.
    pub(super) loading: Mutex<HashSet<i32>>,
    pub(super) config: TxnRuntimeConfig,
    pub(super) log: Arc<dyn InternalLog>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) producer_ids: Arc<dyn ProducerIds>,
    /// Loaded before `__transaction_state` (transactional offset commits settle against
    /// its state).
    pub(super) groups: Arc<GroupCoordinator>,
    /// This coordinator, for the tasks it spawns.
    pub(super) me: Weak<TransactionCoordinator>,
    /// Transactional ids whose end (markers, completion) a task is carrying out; taken
    /// while the state lock is held, so no two tasks end one transaction.
    pub(super) ending: Mutex<HashSet<String>>,
    /// Per transactional id, bumped when a transaction's end begins (see [`TxnGuard`]).
    pub(super) generations: Mutex<HashMap<String, Arc<AtomicU64>>>,
    /// `__transaction_state` exists and this broker's led partitions were replayed once.
    pub(super) topic_ready: AtomicBool,
    /// One creation of `__transaction_state` at a time.
    pub(super) create_lock: tokio::sync::Mutex<()>,
}

impl TransactionCoordinator {
    pub fn new(
        config: TxnRuntimeConfig,
        log: Arc<dyn InternalLog>,
        clock: Arc<dyn Clock>,
        producer_ids: Arc<dyn ProducerIds>,
        groups: Arc<GroupCoordinator>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| TransactionCoordinator {
            shards: parking_lot::RwLock::new(HashMap::new()),
            loading: Mutex::new(HashSet::new()),
            config,
            log,
            clock,
            producer_ids,
            groups,
            me: me.clone(),
            ending: Mutex::new(HashSet::new()),
            generations: Mutex::new(HashMap::new()),
            topic_ready: AtomicBool::new(false),
            create_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A new producer id for an id that starts over.
    fn next_producer_id(&self) -> Result<i64, ErrorCode> {
        self.producer_ids.next_producer_id().map_err(|failure| {
            warn!(%failure, "cannot allocate a producer id");
            ErrorCode::CoordinatorNotAvailable
        })
    }

    pub fn is_loaded(&self) -> bool {
        self.topic_ready.load(Ordering::Acquire)
    }

    /// NOT_COORDINATOR unless this node leads the id's `__transaction_state` partition.
    pub(super) fn check_coordinator(&self, transactional_id: &str) -> Result<(), ErrorCode> {
        let index = self.state_partition(transactional_id)?;
        if self.log.leads(TRANSACTION_STATE_TOPIC, index) {
            Ok(())
        } else {
            Err(ErrorCode::NotCoordinator)
        }
    }

    /// Whether this node coordinates `transactional_id` (KIP-890 checks run only then).
    pub fn is_coordinator(&self, transactional_id: &str) -> bool {
        self.check_coordinator(transactional_id).is_ok()
    }

    /// Appends `metadata` to the transactional id's partition of `__transaction_state`
    /// (under the state lock); the caller awaits the [`Pending`] after letting it go.
    fn persist(&self, metadata: &TxnMetadata) -> Result<Pending, ErrorCode> {
        let index = self.state_partition(&metadata.transactional_id)?;
        self.log
            .append(
                TRANSACTION_STATE_TOPIC,
                index,
                vec![(
                    records::encode_key(&metadata.transactional_id),
                    Some(records::encode_value(metadata)),
                )],
                None,
            )
            .map_err(|error| {
                warn!(transactional_id = %metadata.transactional_id, %error, "cannot write transaction state");
                ErrorCode::CoordinatorNotAvailable
            })
    }

    /// The `__transaction_state` partition of `transactional_id`.
    pub fn state_partition(&self, transactional_id: &str) -> Result<i32, ErrorCode> {
        let partitions = self
            .log
            .partition_count(TRANSACTION_STATE_TOPIC)
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        Ok(crate::partition_for(transactional_id, partitions))
    }

    /// The read barrier of `transactional_id`'s state: its partition's log end now.
    fn read_barrier(&self, transactional_id: &str) -> Pending {
        match self.state_partition(transactional_id) {
            Ok(index) => self.log.log_end(TRANSACTION_STATE_TOPIC, index),
            Err(_) => Pending::none(),
        }
    }

    /// One step of the state machine for `transactional_id`: `step` decides under the
    /// lock, and its transition's record is appended and installed under the same lock.
    /// The lock is let go before the answer waits for the record's replicas (or, with no
    /// transition, for the state it read) and, for an ending transaction, for its markers
    /// and completion.
    async fn transact<T>(
        &self,
        transactional_id: &str,
        step: impl FnOnce(&mut TxnStateMachine) -> Result<(Option<Transition>, T), ErrorCode>,
    ) -> Result<T, ErrorCode> {
        let (shard, _) = self.shard_of(transactional_id)?;
        let (pending, ends, value) = {
            let mut state = shard.lock();
            let (transition, value) = step(&mut state)?;
            match transition {
                None => (self.read_barrier(transactional_id), false, value),
                Some(transition) => {
                    let pending = self.persist(&transition.write)?;
                    let ends = transition.markers.is_some()
                        && self.ending.lock().insert(transactional_id.to_string());
                    state.install(transition.write);
                    (pending, ends, value)
                }
            }
        };
        if ends {
            self.end_registered(transactional_id, pending).await?;
        } else {
            committed(pending).await?;
        }
        Ok(value)
    }

    /// Ends a preparing transaction whose id this task registered in `ending`: waits for
    /// the Prepare record, writes the markers, then the completion. On a failed step the
    /// transaction stays preparing; the timer tries again.
    async fn end_registered(
        &self,
        transactional_id: &str,
        prepare: Pending,
    ) -> Result<(), ErrorCode> {
        struct Registered<'a>(&'a Mutex<HashSet<String>>, &'a str);
        impl Drop for Registered<'_> {
            fn drop(&mut self) {
                self.0.lock().remove(self.1);
            }
        }
        let _registered = Registered(&self.ending, transactional_id);
        // Markers go out only once the decision is durable (a new coordinator would
        // otherwise find no Prepare and could decide otherwise).
        committed(prepare).await?;
        let (shard, coordinator_epoch) = self.shard_of(transactional_id)?;
        let Some(markers) = shard.lock().markers_of(transactional_id) else {
            return Ok(());
        };
        self.generation(transactional_id)
            .fetch_add(1, Ordering::AcqRel);
        let marker = TxnMarker {
            producer_id: markers.producer_id,
            producer_epoch: markers.producer_epoch,
            commit: markers.result == TxnResult::Commit,
            coordinator_epoch,
        };
        let mut local = Vec::new();
        let mut remote: HashMap<i32, Vec<TopicPartition>> = HashMap::new();
        for (topic, index) in &markers.partitions {
            match self.log.write_marker(topic, *index, marker) {
                Ok(pending) => local.push(pending),
                // A deleted topic or partition needs no marker.
                Err(ErrorCode::UnknownTopicOrPartition) => {}
                // Led by another node (or leaderless for now): send it there.
                Err(ErrorCode::NotLeaderOrFollower) => remote
                    .entry(self.log.leader_of(topic, *index))
                    .or_default()
                    .push((topic.clone(), *index)),
                Err(code) => return Err(code),
            }
        }
        let mut sends = tokio::task::JoinSet::new();
        for (leader, partitions) in remote {
            if leader < 0 {
                return Err(ErrorCode::NotLeaderOrFollower);
            }
            sends.spawn(self.log.send_markers(leader, partitions, marker));
        }
        let mut outcome = Ok(());
        for pending in local {
            if let Err(error) = pending.committed().await {
                warn!(%error, "transaction marker not replicated");
                outcome = Err(ErrorCode::RequestTimedOut);
            }
        }
        while let Some(sent) = sends.join_next().await {
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(code)) => outcome = Err(code),
                Err(error) => {
                    warn!(%error, "transaction marker task failed");
                    outcome = Err(ErrorCode::UnknownServerError);
                }
            }
        }
        outcome?;
        let completed = {
            let mut state = shard.lock();
            match state.complete(transactional_id, self.now_ms()) {
                None => Pending::none(),
                Some(completion) => {
                    let pending = self.persist(&completion.write)?;
                    state.install(completion.write);
                    pending
                }
            }
        };
        committed(completed).await
    }

    fn generation(&self, transactional_id: &str) -> Arc<AtomicU64> {
        self.generations
            .lock()
            .entry(transactional_id.to_string())
            .or_default()
            .clone()
    }

    /// Starts a task ending each preparing transaction nobody is ending yet (after a load,
    /// or on the timer after a failed step).
    pub(super) fn complete_preparing(&self) {
        let mut ids: Vec<String> = Vec::new();
        for shard in self.all_shards() {
            let state = shard.lock();
            let mut ending = self.ending.lock();
            ids.extend(
                state
                    .preparing()
                    .into_iter()
                    .filter(|id| ending.insert(id.clone())),
            );
        }
        for transactional_id in ids {
            self.spawn_end(transactional_id, Pending::none());
        }
    }

    /// Ends a registered transaction on its own task (nobody waits for the answer).
    fn spawn_end(&self, transactional_id: String, prepare: Pending) {
        let Some(coordinator) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            if let Err(code) = coordinator.end_registered(&transactional_id, prepare).await {
                warn!(%transactional_id, ?code, "cannot finish a transaction yet; will retry");
            }
        });
    }

    /// InitProducerId with a transactional id.
    pub async fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
    ) -> Result<ProducerIdAndEpoch, ErrorCode> {
        self.ensure_id(transactional_id).await?;
        for _ in 0..INIT_ROUNDS_MAX {
            let ready = self
                .transact(transactional_id, |state| {
                    let outcome = state.init_producer_id(
                        transactional_id,
                        timeout_ms,
                        expected,
                        self.now_ms(),
                        || self.next_producer_id(),
                    )?;
                    Ok(match outcome {
                        InitOutcome::Ready(ids) => (None, Some(ids)),
                        InitOutcome::Write(transition) => {
                            let ids = transition.write.ids();
                            // Ending the old instance's transaction fences it: then bump
                            // again for the new instance, which named no (or the old)
                            // epoch.
                            let ends_a_transaction = transition.markers.is_some();
                            (Some(transition), (!ends_a_transaction).then_some(ids))
                        }
                    })
                })
                .await?;
            if let Some(ids) = ready {
                return Ok(ids);
            }
        }
        Err(ErrorCode::ConcurrentTransactions)
    }

    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partitions: &[TopicPartition],
    ) -> Result<(), ErrorCode> {
        self.ensure_id(transactional_id).await?;
        self.transact(transactional_id, |state| {
            Ok((
                state.add_partitions(transactional_id, producer, partitions, self.now_ms())?,
                (),
            ))
        })
        .await
    }

    /// EndTxn. `bump_epoch` for transaction version 2 (EndTxn v5+). Answers the producer id
    /// and epoch the producer continues with: the bumped (or new) ones after a version-2
    /// end, its own otherwise.
    pub async fn end_transaction(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        result: TxnResult,
        bump_epoch: bool,
    ) -> Result<ProducerIdAndEpoch, ErrorCode> {
        self.ensure_id(transactional_id).await?;
        self.transact(transactional_id, |state| {
            let now = self.now_ms();
            let transition = if bump_epoch {
                state.end_transaction_v2(transactional_id, producer, result, now, || {
                    self.next_producer_id()
                })?
            } else {
                state.end_transaction(transactional_id, producer, result, now)?
            };
            if !bump_epoch {
                return Ok((transition, producer));
            }
            // Decided here, under the lock: once the lock is let go another request may
            // move the id on before this answer is given.
            let continues = match &transition {
                // The completion moves an exhausted epoch to the next producer id.
                Some(transition) if transition.write.next_producer_id >= 0 => ProducerIdAndEpoch {
                    producer_id: transition.write.next_producer_id,
                    producer_epoch: 0,
                },
                Some(transition) => transition.write.ids(),
                None => state
                    .get(transactional_id)
                    .map(TxnMetadata::ids)
                    .ok_or(ErrorCode::InvalidProducerIdMapping)?,
            };
            Ok((transition, continues))
        })
        .await
    }

    /// Transaction version 2: a transactional write (Produce v12+, TxnOffsetCommit v5+)
    /// adds its partition to the producer's transaction, starting one if none is open,
    /// then is checked as [`Self::verify`] checks it.
    pub async fn add_and_verify(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partition: &TopicPartition,
    ) -> Result<TxnGuard, ErrorCode> {
        self.ensure_id(transactional_id).await?;
        self.transact(transactional_id, |state| {
            let transition = state.add_partitions(
                transactional_id,
                producer,
                std::slice::from_ref(partition),
                self.now_ms(),
            )?;
            Ok((transition, ()))
        })
        .await?;
        // Checked again after the wait: the transaction may have ended meanwhile.
        self.verified_guard(transactional_id, producer, partition)
    }

    /// KIP-890: checks a transactional write before it is appended.
    pub async fn verify(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partition: &TopicPartition,
    ) -> Result<TxnGuard, ErrorCode> {
        self.ensure_id(transactional_id).await?;
        self.verified_guard(transactional_id, producer, partition)
    }

    /// The write is checked against the open transaction, and its guard taken, under one
    /// hold of the lock, so no end can slip in between.
    fn verified_guard(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partition: &TopicPartition,
    ) -> Result<TxnGuard, ErrorCode> {
        let (shard, _) = self.shard_of(transactional_id)?;
        let state = shard.lock();
        state.verify(transactional_id, producer, partition)?;
        let generation = self.generation(transactional_id);
        let expected = generation.load(Ordering::Acquire);
        Ok(TxnGuard {
            generation,
            expected,
        })
    }

    /// Aborts transactions open longer than their timeout (fencing their producers),
    /// retries unfinished ends, and forgets expired transactional ids. The decisions and
    /// appends happen under the lock; the ends run on their own tasks.
    pub fn tick(&self, remove_expired: bool) {
        let now = self.now_ms();
        let mut ends = Vec::new();
        for shard in self.all_shards() {
            let mut state = shard.lock();
            for transactional_id in state.timed_out(now) {
                let Some(current) = state.get(&transactional_id).cloned() else {
                    continue;
                };
                info!(%transactional_id, producer_id = current.producer_id, "aborting a transaction past its timeout");
                let transition = state.fence_and_abort(&current, now);
                match self.persist(&transition.write) {
                    Ok(pending) => {
                        state.install(transition.write);
                        if self.ending.lock().insert(transactional_id.clone()) {
                            ends.push((transactional_id, pending));
                        }
                    }
                    Err(code) => {
                        warn!(%transactional_id, ?code, "cannot abort a timed-out transaction yet")
                    }
                }
            }
            if remove_expired {
                for transactional_id in state.expired(now) {
                    let Ok(index) = self.state_partition(&transactional_id) else {
                        break;
                    };
                    // Forgotten at once: nobody waits for the tombstone, and a lost one
                    // only brings back an expired id on the next load, to expire again.
                    let written = self.log.append(
                        TRANSACTION_STATE_TOPIC,
                        index,
                        vec![(records::encode_key(&transactional_id), None)],
                        None,
                    );
                    match written {
                        Ok(_pending) => {
                            state.remove(&transactional_id);
                            self.generations.lock().remove(&transactional_id);
                            info!(%transactional_id, "transactional id expired");
                        }
                        Err(error) => {
                            warn!(%transactional_id, %error, "cannot expire a transactional id")
                        }
                    }
                }
            }
        }
        for (transactional_id, pending) in ends {
            self.spawn_end(transactional_id, pending);
        }
        self.complete_preparing();
    }

    /// The timer loop (`transaction.abort.timed.out.transaction.cleanup.interval.ms`,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`).
    pub fn spawn_timers(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let coordinator = self.clone();
        let abort_every = Duration::from_millis(self.config.abort_timed_out_interval_ms.max(1));
        let expire_every = Duration::from_millis(self.config.remove_expired_interval_ms.max(1));
        tokio::spawn(async move {
            let mut abort = tokio::time::interval(abort_every);
            let mut expire = tokio::time::interval(expire_every);
            abort.tick().await;
            expire.tick().await;
            loop {
                let remove_expired = tokio::select! {
                    _ = abort.tick() => false,
                    _ = expire.tick() => true,
                };
                if coordinator.is_loaded() {
                    coordinator.tick(remove_expired);
                }
            }
        })
    }
}

/// Waits for a coordinator write (or read barrier) to be committed; the error tells the
/// producer to find the coordinator again or to retry.
async fn committed(pending: Pending) -> Result<(), ErrorCode> {
    pending.committed().await.map_err(|error: LogError| {
        warn!(%error, "transaction state not committed");
        crate::group::not_committed_code(&error)
    })
}
