//! The transaction coordinator: exactly-once producers (transactional ids, epochs that
//! fence zombies, transactions over many partitions, commit/abort markers).
//!
//! Shape, like the group coordinator: [`state::TxnStateMachine`] is a plain state machine
//! (Kafka's `TransactionCoordinator` rules; time passed in), [`records`] the
//! `__transaction_state` format, [`markers`] the marker writes, and
//! [`TransactionCoordinator`] the thin runtime that writes state to
//! `__transaction_state` (partition = Java `String.hashCode(transactional.id) %
//! partitions`) before installing it, so a restart replays exactly what was acknowledged.
//!
//! Ending a transaction: PrepareCommit/PrepareAbort is written, the markers are written to
//! every partition of the transaction, then CompleteCommit/CompleteAbort. A restart that
//! finds a Prepare state writes the markers again (a repeated marker is harmless). Each
//! step decides and appends its record under the coordinator lock (log order = memory
//! order), then lets the lock go: the wait for the in-sync replicas, the markers (local
//! partitions appended directly, partitions led by other brokers with one WriteTxnMarkers
//! request per broker, sent concurrently) and the completion run with no lock held, so
//! other transactions go on meanwhile. The producer gets its EndTxn answer once the
//! markers and the completion are written. One task ends a given transaction at a time
//! (`ending`, registered under the lock together with the Prepare state).
//!
//! On a cluster the coordinator of an id is the leader of its `__transaction_state`
//! partition; every broker replays the partitions it leads (again after a leadership
//! change, finishing half-ended transactions) and answers NOT_COORDINATOR for the rest.
//!
//! KIP-890 defence: a transactional Produce is checked against the coordinator (the
//! producer's id and epoch are current, the transaction is open, the partition was added),
//! and holds a [`TxnGuard`] that a marker invalidates, so a write verified before its
//! transaction ended cannot land after the end marker and hang the partition. The check
//! runs where the partition leader is also the coordinator; elsewhere only the storage's
//! epoch fencing applies (a remote check, AddPartitionsToTxn v4 `verify_only`, is later
//! work).
//!
//! Transaction version 2 (KIP-890 part 2, `transaction.version` 2 in ApiVersions): EndTxn
//! v5 bumps the epoch on every end ([`state::TxnStateMachine::end_transaction_v2`]), and a
//! transactional Produce v12+ / TxnOffsetCommit v5+ adds its own partition
//! ([`TransactionCoordinator::add_and_verify`] here, [`remote::add_partition`] with
//! AddPartitionsToTxn v5 when the coordinator is another broker).

pub mod markers;
pub mod records;
pub mod remote;
pub mod state;

#[cfg(test)]
mod state_tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strom_protocol::ErrorCode;
use tracing::{info, warn};

use crate::config::BrokerConfig;
use crate::internal_topics::{self, InternalTopic, Pending, ReplayItem};
use crate::state::{now_ms, Broker};
use state::{
    InitOutcome, ProducerIdAndEpoch, TopicPartition, Transition, TxnLimits, TxnMetadata, TxnResult,
    TxnStateMachine,
};

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

/// A new producer id for an id that starts over (InitProducerId, an exhausted epoch).
fn next_producer_id(broker: &Broker) -> Result<i64, ErrorCode> {
    broker.producer_ids.lock().next().map_err(|failure| {
        warn!(%failure, "cannot allocate a producer id");
        ErrorCode::CoordinatorNotAvailable
    })
}

pub struct TransactionCoordinator {
    /// Held only for in-memory steps and local appends, never across an await.
    pub state: Mutex<TxnStateMachine>,
    /// Transactional ids whose end (markers, completion) a task is carrying out; taken
    /// while the state lock is held, so no two tasks end one transaction.
    ending: Mutex<std::collections::HashSet<String>>,
    /// Per transactional id, bumped when a transaction's end begins (see [`TxnGuard`]).
    generations: Mutex<HashMap<String, Arc<AtomicU64>>>,
    /// `__transaction_state` exists and this broker's led partitions were replayed once.
    topic_ready: AtomicBool,
    /// State partitions this broker leads and has replayed, with their leader epochs.
    loaded: internal_topics::LoadedPartitions,
    load_lock: tokio::sync::Mutex<()>,
    settings: crate::config::TransactionSettings,
}

impl TransactionCoordinator {
    pub fn new(config: &BrokerConfig) -> Self {
        TransactionCoordinator {
            state: Mutex::new(TxnStateMachine::new(TxnLimits {
                max_timeout_ms: config.transaction.max_timeout_ms,
                id_expiration_ms: config.transaction.id_expiration_ms,
            })),
            ending: Mutex::new(std::collections::HashSet::new()),
            generations: Mutex::new(HashMap::new()),
            topic_ready: AtomicBool::new(false),
            loaded: Default::default(),
            load_lock: tokio::sync::Mutex::new(()),
            settings: config.transaction.clone(),
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.topic_ready.load(Ordering::Acquire)
    }

    fn is_current(&self, broker: &Broker) -> bool {
        self.is_loaded()
            && self.loaded.is_current(&internal_topics::led_partitions(
                broker,
                TRANSACTION_STATE_TOPIC,
            ))
    }

    fn partition_count(broker: &Broker) -> i32 {
        broker
            .image()
            .topic(TRANSACTION_STATE_TOPIC)
            .map_or(1, |t| t.partition_count())
    }

    /// Makes sure `__transaction_state` exists and every partition of it this broker leads
    /// is replayed (again, after a leadership change), forgets ids of partitions led
    /// elsewhere now, and finishes transactions a restart or a leadership change caught
    /// between Prepare and Complete. COORDINATOR_LOAD_IN_PROGRESS while another request
    /// loads it.
    pub async fn ensure_loaded(&self, broker: &Arc<Broker>) -> Result<(), ErrorCode> {
        if self.is_current(broker) {
            return Ok(());
        }
        let Ok(_guard) = self.load_lock.try_lock() else {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        };
        // Transactional offset commits settle against the group coordinator's state.
        broker.groups.ensure_loaded(broker).await?;
        if !self.is_loaded() {
            let topic = InternalTopic {
                name: TRANSACTION_STATE_TOPIC,
                partitions: self.settings.state_log_num_partitions,
                replication_factor: self.settings.state_log_replication_factor,
                segment_bytes: self.settings.state_log_segment_bytes,
            };
            if let Err(error) = internal_topics::ensure_created(broker, &topic).await {
                warn!(%error, "transaction coordinator cannot create its topic");
                return Err(ErrorCode::CoordinatorNotAvailable);
            }
        }
        let led = internal_topics::led_partitions(broker, TRANSACTION_STATE_TOPIC);
        let partition_count = Self::partition_count(broker);
        let in_partitions = |indexes: &[i32], id: &str| {
            indexes.contains(&internal_topics::partition_for(id, partition_count))
        };
        let dropped = self.loaded.drop_unled(&led);
        if !dropped.is_empty() {
            self.state
                .lock()
                .transactions
                .retain(|id, _| !in_partitions(&dropped, id));
        }
        for (index, epoch) in self.loaded.to_load(&led) {
            let reader = broker.clone();
            let items = match tokio::task::spawn_blocking(move || {
                internal_topics::read_partition(&reader, TRANSACTION_STATE_TOPIC, index)
            })
            .await
            {
                Ok(Ok(items)) => items,
                Ok(Err(error)) => {
                    warn!(partition = index, %error, "transaction coordinator load failed");
                    return Err(ErrorCode::CoordinatorNotAvailable);
                }
                Err(error) => {
                    warn!(partition = index, %error, "transaction coordinator load task failed");
                    return Err(ErrorCode::CoordinatorNotAvailable);
                }
            };
            let records = items.len();
            let mut state = self.state.lock();
            state
                .transactions
                .retain(|id, _| !in_partitions(&[index], id));
            for item in items {
                let ReplayItem::Record { key, value, .. } = item else {
                    continue;
                };
                let Ok(Some(transactional_id)) = records::decode_key(&key) else {
                    continue;
                };
                match value {
                    None => state.remove(&transactional_id),
                    Some(value) => match records::decode_value(&transactional_id, &value) {
                        Ok(metadata) => state.install(metadata),
                        Err(error) => {
                            warn!(%transactional_id, %error, "skipping undecodable transaction record")
                        }
                    },
                }
            }
            info!(
                partition = index,
                leader_epoch = epoch,
                records,
                "transaction coordinator loaded a state partition"
            );
            self.loaded.loaded(index, epoch);
        }
        self.topic_ready.store(true, Ordering::Release);
        self.complete_preparing(broker);
        Ok(())
    }

    /// NOT_COORDINATOR unless this broker leads the id's `__transaction_state` partition.
    fn check_coordinator(&self, broker: &Broker, transactional_id: &str) -> Result<(), ErrorCode> {
        let index = internal_topics::partition_for(transactional_id, Self::partition_count(broker));
        if internal_topics::leads(broker, TRANSACTION_STATE_TOPIC, index) {
            Ok(())
        } else {
            Err(ErrorCode::NotCoordinator)
        }
    }

    /// Whether this broker coordinates `transactional_id` (KIP-890 checks run only then).
    pub fn is_coordinator(&self, broker: &Broker, transactional_id: &str) -> bool {
        self.check_coordinator(broker, transactional_id).is_ok()
    }

    /// Appends `metadata` to the transactional id's partition of `__transaction_state`
    /// (under the state lock); the caller awaits the [`Pending`] after letting it go.
    fn persist(&self, broker: &Broker, metadata: &TxnMetadata) -> Result<Pending, ErrorCode> {
        let index = self.state_partition(broker, &metadata.transactional_id)?;
        internal_topics::append(
            broker,
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

    fn state_partition(&self, broker: &Broker, transactional_id: &str) -> Result<i32, ErrorCode> {
        let partitions = broker
            .image()
            .topic(TRANSACTION_STATE_TOPIC)
            .map(|t| t.partition_count())
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        Ok(internal_topics::partition_for(transactional_id, partitions))
    }

    /// The read barrier of `transactional_id`'s state: its partition's log end now.
    fn read_barrier(&self, broker: &Broker, transactional_id: &str) -> Pending {
        match self.state_partition(broker, transactional_id) {
            Ok(index) => internal_topics::log_end(broker, TRANSACTION_STATE_TOPIC, index),
            Err(_) => Pending::none(),
        }
    }

    /// The coordinator epoch markers carry: the leader epoch of the id's state partition.
    fn coordinator_epoch(&self, broker: &Broker, transactional_id: &str) -> i32 {
        let image = broker.image();
        let Some(topic) = image.topic(TRANSACTION_STATE_TOPIC) else {
            return 0;
        };
        let index = internal_topics::partition_for(transactional_id, topic.partition_count());
        topic
            .partitions
            .get(index as usize)
            .map_or(0, |p| p.leader_epoch)
    }

    /// One step of the state machine for `transactional_id`: `step` decides under the
    /// lock, and its transition's record is appended and installed under the same lock.
    /// The lock is let go before the answer waits for the record's replicas (or, with no
    /// transition, for the state it read) and, for an ending transaction, for its markers
    /// and completion.
    async fn transact<T>(
        &self,
        broker: &Arc<Broker>,
        transactional_id: &str,
        step: impl FnOnce(&mut TxnStateMachine) -> Result<(Option<Transition>, T), ErrorCode>,
    ) -> Result<T, ErrorCode> {
        let (pending, ends, value) = {
            let mut state = self.state.lock();
            let (transition, value) = step(&mut state)?;
            match transition {
                None => (self.read_barrier(broker, transactional_id), false, value),
                Some(transition) => {
                    let pending = self.persist(broker, &transition.write)?;
                    let ends = transition.markers.is_some()
                        && self.ending.lock().insert(transactional_id.to_string());
                    state.install(transition.write);
                    (pending, ends, value)
                }
            }
        };
        if ends {
            self.end_registered(broker, transactional_id, pending)
                .await?;
        } else {
            committed(broker, pending).await?;
        }
        Ok(value)
    }

    /// Ends a preparing transaction whose id this task registered in `ending`: waits for
    /// the Prepare record, writes the markers, then the completion. On a failed step the
    /// transaction stays preparing; the timer tries again.
    async fn end_registered(
        &self,
        broker: &Arc<Broker>,
        transactional_id: &str,
        prepare: Pending,
    ) -> Result<(), ErrorCode> {
        struct Registered<'a>(&'a Mutex<std::collections::HashSet<String>>, &'a str);
        impl Drop for Registered<'_> {
            fn drop(&mut self) {
                self.0.lock().remove(self.1);
            }
        }
        let _registered = Registered(&self.ending, transactional_id);
        // Markers go out only once the decision is durable (a new coordinator would
        // otherwise find no Prepare and could decide otherwise).
        committed(broker, prepare).await?;
        let Some(markers) = self.state.lock().markers_of(transactional_id) else {
            return Ok(());
        };
        self.generation(transactional_id)
            .fetch_add(1, Ordering::AcqRel);
        let coordinator_epoch = self.coordinator_epoch(broker, transactional_id);
        let commit = markers.result == TxnResult::Commit;
        let mut local = Vec::new();
        let mut remote: HashMap<i32, Vec<TopicPartition>> = HashMap::new();
        for (topic, index) in &markers.partitions {
            match markers::write_marker(
                broker,
                topic,
                *index,
                markers.producer_id,
                markers.producer_epoch,
                commit,
                coordinator_epoch,
            ) {
                Ok(pending) => local.push(pending),
                // A deleted topic or partition needs no marker.
                Err(ErrorCode::UnknownTopicOrPartition) => {}
                // Led by another broker (or leaderless for now): send it there.
                Err(ErrorCode::NotLeaderOrFollower) => remote
                    .entry(internal_topics::leader_of(broker, topic, *index))
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
            let broker = broker.clone();
            sends.spawn(async move {
                markers::write_remote_markers(
                    &broker,
                    leader,
                    &partitions,
                    markers.producer_id,
                    markers.producer_epoch,
                    commit,
                    coordinator_epoch,
                )
                .await
            });
        }
        let mut outcome = Ok(());
        for pending in local {
            if let Err(code) = markers::marker_committed(broker, pending).await {
                outcome = Err(code);
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
            let mut state = self.state.lock();
            match state.complete(transactional_id, now_ms()) {
                None => Pending::none(),
                Some(completion) => {
                    let pending = self.persist(broker, &completion.write)?;
                    state.install(completion.write);
                    pending
                }
            }
        };
        committed(broker, completed).await
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
    fn complete_preparing(&self, broker: &Arc<Broker>) {
        let ids: Vec<String> = {
            let state = self.state.lock();
            let mut ending = self.ending.lock();
            state
                .preparing()
                .into_iter()
                .filter(|id| ending.insert(id.clone()))
                .collect()
        };
        for transactional_id in ids {
            self.spawn_end(broker, transactional_id, Pending::none());
        }
    }

    /// Ends a registered transaction on its own task (nobody waits for the answer).
    fn spawn_end(&self, broker: &Arc<Broker>, transactional_id: String, prepare: Pending) {
        let broker = broker.clone();
        tokio::spawn(async move {
            let coordinator = broker.txns.clone();
            if let Err(code) = coordinator
                .end_registered(&broker, &transactional_id, prepare)
                .await
            {
                warn!(%transactional_id, ?code, "cannot finish a transaction yet; will retry");
            }
        });
    }

    /// InitProducerId with a transactional id.
    pub async fn init_producer_id(
        &self,
        broker: &Arc<Broker>,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
    ) -> Result<ProducerIdAndEpoch, ErrorCode> {
        self.ensure_loaded(broker).await?;
        self.check_coordinator(broker, transactional_id)?;
        for _ in 0..INIT_ROUNDS_MAX {
            let ready = self
                .transact(broker, transactional_id, |state| {
                    let outcome = state.init_producer_id(
                        transactional_id,
                        timeout_ms,
                        expected,
                        now_ms(),
                        || next_producer_id(broker),
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
        broker: &Arc<Broker>,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partitions: &[TopicPartition],
    ) -> Result<(), ErrorCode> {
        self.ensure_loaded(broker).await?;
        self.check_coordinator(broker, transactional_id)?;
        self.transact(broker, transactional_id, |state| {
            Ok((
                state.add_partitions(transactional_id, producer, partitions, now_ms())?,
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
        broker: &Arc<Broker>,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        result: TxnResult,
        bump_epoch: bool,
    ) -> Result<ProducerIdAndEpoch, ErrorCode> {
        self.ensure_loaded(broker).await?;
        self.check_coordinator(broker, transactional_id)?;
        self.transact(broker, transactional_id, |state| {
            let transition = if bump_epoch {
                state.end_transaction_v2(transactional_id, producer, result, now_ms(), || {
                    next_producer_id(broker)
                })?
            } else {
                state.end_transaction(transactional_id, producer, result, now_ms())?
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
        broker: &Arc<Broker>,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partition: &TopicPartition,
    ) -> Result<TxnGuard, ErrorCode> {
        self.ensure_loaded(broker).await?;
        self.check_coordinator(broker, transactional_id)?;
        self.transact(broker, transactional_id, |state| {
            let transition = state.add_partitions(
                transactional_id,
                producer,
                std::slice::from_ref(partition),
                now_ms(),
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
        broker: &Arc<Broker>,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partition: &TopicPartition,
    ) -> Result<TxnGuard, ErrorCode> {
        self.ensure_loaded(broker).await?;
        self.check_coordinator(broker, transactional_id)?;
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
        let state = self.state.lock();
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
    fn tick(&self, broker: &Arc<Broker>, remove_expired: bool) {
        let now = now_ms();
        let mut ends = Vec::new();
        {
            let mut state = self.state.lock();
            for transactional_id in state.timed_out(now) {
                let Some(current) = state.get(&transactional_id).cloned() else {
                    continue;
                };
                info!(%transactional_id, producer_id = current.producer_id, "aborting a transaction past its timeout");
                let transition = state.fence_and_abort(&current, now);
                match self.persist(broker, &transition.write) {
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
                    let Ok(index) = self.state_partition(broker, &transactional_id) else {
                        break;
                    };
                    // Forgotten at once: nobody waits for the tombstone, and a lost one
                    // only brings back an expired id on the next load, to expire again.
                    let written = internal_topics::append(
                        broker,
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
            self.spawn_end(broker, transactional_id, pending);
        }
        self.complete_preparing(broker);
    }

    /// The timer loop (`transaction.abort.timed.out.transaction.cleanup.interval.ms`,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`).
    pub fn spawn_timers(self: &Arc<Self>, broker: Arc<Broker>) -> tokio::task::JoinHandle<()> {
        let coordinator = self.clone();
        let abort_every = Duration::from_millis(self.settings.abort_timed_out_interval_ms as u64);
        let expire_every = Duration::from_millis(self.settings.remove_expired_interval_ms as u64);
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
                    coordinator.tick(&broker, remove_expired);
                }
            }
        })
    }
}

/// Waits for a coordinator write (or read barrier) to be committed; the error tells the
/// producer to find the coordinator again or to retry.
async fn committed(broker: &Broker, pending: Pending) -> Result<(), ErrorCode> {
    pending.committed(broker).await.map_err(|error| {
        warn!(%error, "transaction state not committed");
        crate::group::not_committed_code(&error)
    })
}
