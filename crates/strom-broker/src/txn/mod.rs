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
//! finds a Prepare state writes the markers again (a repeated marker is harmless). The
//! runtime writes markers in line, under the coordinator lock: local partitions directly,
//! partitions led by other brokers with one WriteTxnMarkers request per broker; the
//! producer gets its EndTxn answer once they are all written.
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
use crate::internal_topics::{self, InternalTopic, ReplayItem};
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

pub struct TransactionCoordinator {
    pub state: crate::state_lock::StateLock<TxnStateMachine>,
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
            state: crate::state_lock::StateLock::new(TxnStateMachine::new(TxnLimits {
                max_timeout_ms: config.transaction.max_timeout_ms,
                id_expiration_ms: config.transaction.id_expiration_ms,
            })),
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

    /// Writes `metadata` to the transactional id's partition of `__transaction_state`.
    fn persist(&self, broker: &Broker, metadata: &TxnMetadata) -> Result<(), ErrorCode> {
        let partitions = broker
            .image()
            .topic(TRANSACTION_STATE_TOPIC)
            .map(|t| t.partition_count())
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let index = internal_topics::partition_for(&metadata.transactional_id, partitions);
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

    /// Carries out a transition under the state lock: write, install, and for an ending
    /// transaction write its markers and its completion.
    fn apply(
        &self,
        broker: &Arc<Broker>,
        state: &mut TxnStateMachine,
        transition: Transition,
    ) -> Result<(), ErrorCode> {
        self.persist(broker, &transition.write)?;
        let transactional_id = transition.write.transactional_id.clone();
        state.install(transition.write);
        if transition.markers.is_some() {
            self.finish(broker, state, &transactional_id)?;
        }
        Ok(())
    }

    /// Writes the markers of a preparing transaction, then its completion. On a failed
    /// marker the transaction stays preparing; the timer tries again.
    fn finish(
        &self,
        broker: &Arc<Broker>,
        state: &mut TxnStateMachine,
        transactional_id: &str,
    ) -> Result<(), ErrorCode> {
        let Some(markers) = state.markers_of(transactional_id) else {
            return Ok(());
        };
        self.generation(transactional_id)
            .fetch_add(1, Ordering::AcqRel);
        let coordinator_epoch = self.coordinator_epoch(broker, transactional_id);
        let commit = markers.result == TxnResult::Commit;
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
                Ok(()) => {}
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
        for (leader, partitions) in remote {
            if leader < 0 {
                return Err(ErrorCode::NotLeaderOrFollower);
            }
            markers::write_remote_markers(
                broker,
                leader,
                &partitions,
                markers.producer_id,
                markers.producer_epoch,
                commit,
                coordinator_epoch,
            )?;
        }
        if let Some(completion) = state.complete(transactional_id, now_ms()) {
            self.persist(broker, &completion.write)?;
            state.install(completion.write);
        }
        Ok(())
    }

    fn generation(&self, transactional_id: &str) -> Arc<AtomicU64> {
        self.generations
            .lock()
            .entry(transactional_id.to_string())
            .or_default()
            .clone()
    }

    fn complete_preparing(&self, broker: &Arc<Broker>) {
        let mut state = self.state.lock();
        for transactional_id in state.preparing() {
            if let Err(code) = self.finish(broker, &mut state, &transactional_id) {
                warn!(%transactional_id, ?code, "cannot finish a transaction yet; will retry");
            }
        }
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
        let mut state = self.state.lock();
        for _ in 0..INIT_ROUNDS_MAX {
            let outcome =
                state.init_producer_id(transactional_id, timeout_ms, expected, now_ms(), || {
                    broker.producer_ids.lock().next().map_err(|failure| {
                        warn!(%failure, "cannot allocate a producer id");
                        ErrorCode::CoordinatorNotAvailable
                    })
                })?;
            match outcome {
                InitOutcome::Ready(ids) => return Ok(ids),
                InitOutcome::Write(transition) => {
                    let ends_a_transaction = transition.markers.is_some();
                    let ids = ProducerIdAndEpoch {
                        producer_id: transition.write.producer_id,
                        producer_epoch: transition.write.producer_epoch,
                    };
                    self.apply(broker, &mut state, transition)?;
                    if !ends_a_transaction {
                        return Ok(ids);
                    }
                    // The old instance's transaction is aborted and it is fenced: now
                    // bump for the new instance, which named no (or the old) epoch.
                }
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
        let mut state = self.state.lock();
        match state.add_partitions(transactional_id, producer, partitions, now_ms())? {
            None => Ok(()),
            Some(transition) => self.apply(broker, &mut state, transition),
        }
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
        let mut state = self.state.lock();
        let transition = if bump_epoch {
            state.end_transaction_v2(transactional_id, producer, result, now_ms(), || {
                broker.producer_ids.lock().next().map_err(|failure| {
                    warn!(%failure, "cannot allocate a producer id");
                    ErrorCode::CoordinatorNotAvailable
                })
            })?
        } else {
            state.end_transaction(transactional_id, producer, result, now_ms())?
        };
        if let Some(transition) = transition {
            self.apply(broker, &mut state, transition)?;
        }
        if !bump_epoch {
            return Ok(producer);
        }
        state
            .get(transactional_id)
            .map(|current| ProducerIdAndEpoch {
                producer_id: current.producer_id,
                producer_epoch: current.producer_epoch,
            })
            .ok_or(ErrorCode::InvalidProducerIdMapping)
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
        let mut state = self.state.lock();
        if let Some(transition) = state.add_partitions(
            transactional_id,
            producer,
            std::slice::from_ref(partition),
            now_ms(),
        )? {
            self.apply(broker, &mut state, transition)?;
        }
        state.verify(transactional_id, producer, partition)?;
        let generation = self.generation(transactional_id);
        let expected = generation.load(Ordering::Acquire);
        Ok(TxnGuard {
            generation,
            expected,
        })
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
    /// retries unfinished ends, and forgets expired transactional ids.
    fn tick(&self, broker: &Arc<Broker>, remove_expired: bool) {
        let now = now_ms();
        let mut state = self.state.lock();
        for transactional_id in state.timed_out(now) {
            let Some(current) = state.get(&transactional_id).cloned() else {
                continue;
            };
            info!(%transactional_id, producer_id = current.producer_id, "aborting a transaction past its timeout");
            let transition = state.fence_and_abort(&current, now);
            if let Err(code) = self.apply(broker, &mut state, transition) {
                warn!(%transactional_id, ?code, "cannot abort a timed-out transaction yet");
            }
        }
        for transactional_id in state.preparing() {
            if let Err(code) = self.finish(broker, &mut state, &transactional_id) {
                warn!(%transactional_id, ?code, "cannot finish a transaction yet");
            }
        }
        if remove_expired {
            for transactional_id in state.expired(now) {
                let Ok(partitions) = broker
                    .image()
                    .topic(TRANSACTION_STATE_TOPIC)
                    .map(|t| t.partition_count())
                    .ok_or(())
                else {
                    break;
                };
                let index = internal_topics::partition_for(&transactional_id, partitions);
                let written = internal_topics::append(
                    broker,
                    TRANSACTION_STATE_TOPIC,
                    index,
                    vec![(records::encode_key(&transactional_id), None)],
                    None,
                );
                match written {
                    Ok(()) => {
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
