//! The transaction coordinator's state machine: one [`TxnMetadata`] per transactional id,
//! and the rules of Kafka's `TransactionCoordinator` for moving between states.
//!
//! Plain data, no I/O: every operation takes the current time and returns a [`Transition`]
//! — the metadata to write to `__transaction_state` (then install) and, when a transaction
//! ends, the markers to write before its completion is written. The runtime
//! (the broker's `TransactionCoordinator`) does the writes in that order.

use std::collections::{BTreeSet, HashMap};

use strom_protocol::ErrorCode;

pub type TopicPartition = (String, i32);

/// Kafka's transaction states, with their `__transaction_state` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_code(code: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    fn is_preparing(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// What the coordinator knows about one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, so a retried InitProducerId (KIP-360) is recognised;
    /// -1 when unknown. Not persisted (Kafka's v0 value has no room for it either).
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Partitions of the open (or ending) transaction.
    pub partitions: BTreeSet<TopicPartition>,
    /// When the open transaction began; -1 when none is open.
    pub txn_start_ms: i64,
    pub last_update_ms: i64,
    /// The producer id before the last transition: a transaction-version-2 EndTxn retried
    /// after its end moved the id to a new one (epoch overflow) names this one.
    pub previous_producer_id: i64,
    /// While a transaction-version-2 end overflows the epoch: the producer id the
    /// completion moves to (with epoch 0); -1 otherwise.
    pub next_producer_id: i64,
    /// Kafka's `transaction.version` the last end of a transaction came with
    /// ([`TRANSACTION_VERSION_2`] bumps the epoch on every end). Persisted with the two
    /// producer ids above in the value v1 tags (see [`super::records`]).
    pub client_transaction_version: i16,
}

impl TxnMetadata {
    /// The producer id and epoch this transactional id is at.
    pub fn ids(&self) -> ProducerIdAndEpoch {
        ProducerIdAndEpoch {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
        }
    }

    /// A new transactional id: the first InitProducerId bumps the epoch to 0.
    pub fn new(transactional_id: String, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnMetadata {
            transactional_id,
            producer_id,
            producer_epoch: -1,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            txn_start_ms: -1,
            last_update_ms: now_ms,
            previous_producer_id: -1,
            next_producer_id: -1,
            client_transaction_version: 0,
        }
    }

    /// Whether the last end of a transaction bumped the epoch (transaction version 2).
    fn bumps_epoch_per_transaction(&self) -> bool {
        self.client_transaction_version >= TRANSACTION_VERSION_2
    }
}

/// Kafka's `transaction.version` feature level at which every EndTxn bumps the producer
/// epoch and a transactional Produce (v12+) adds its partition implicitly (KIP-890 part 2).
pub const TRANSACTION_VERSION_2: i16 = 2;

/// Which way a transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnResult {
    Commit,
    Abort,
}

/// Markers to write to every partition of an ending transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markers {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub result: TxnResult,
    pub partitions: Vec<TopicPartition>,
}

/// What the runtime must do: write `write` (then install it in memory); if `markers` is
/// set, write them next and then call [`TxnStateMachine::complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub write: TxnMetadata,
    pub markers: Option<Markers>,
}

/// The coordinator's limits.
#[derive(Debug, Clone, Copy)]
pub struct TxnLimits {
    pub max_timeout_ms: i32,
    pub id_expiration_ms: i64,
}

/// A request's view of the producer: the id and epoch it says it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// The answer InitProducerId gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    /// Nothing to write (a retried bump): answer with these.
    Ready(ProducerIdAndEpoch),
    /// Write this, then answer with its producer id and epoch.
    Write(Transition),
}

pub struct TxnStateMachine {
    pub transactions: HashMap<String, TxnMetadata>,
    pub limits: TxnLimits,
}

/// Epochs stop short of i16::MAX so a fenced producer's epoch + 1 still fits.
const EPOCH_MAX: i16 = i16::MAX - 1;

impl TxnStateMachine {
    pub fn new(limits: TxnLimits) -> Self {
        TxnStateMachine {
            transactions: HashMap::new(),
            limits,
        }
    }

    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.transactions.get(transactional_id)
    }

    /// Installs metadata after it was written (or replayed).
    pub fn install(&mut self, metadata: TxnMetadata) {
        self.transactions
            .insert(metadata.transactional_id.clone(), metadata);
    }

    pub fn remove(&mut self, transactional_id: &str) {
        self.transactions.remove(transactional_id);
    }

    /// InitProducerId with a transactional id. An open transaction is aborted first (the
    /// returned transition fences the old producer: epoch + 1, PrepareAbort); the client
    /// then retries (CONCURRENT_TRANSACTIONS in Kafka; the runtime retries for it).
    pub fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
        now_ms: i64,
        mut new_producer_id: impl FnMut() -> Result<i64, ErrorCode>,
    ) -> Result<InitOutcome, ErrorCode> {
        if timeout_ms <= 0 || timeout_ms > self.limits.max_timeout_ms {
            return Err(ErrorCode::InvalidTransactionTimeout);
        }
        let current = match self.transactions.get(transactional_id) {
            Some(current) => current.clone(),
            None => {
                if expected.is_some() {
                    // KIP-360: a producer that names an id we have never seen was fenced
                    // long ago (its id expired).
                    return Err(ErrorCode::InvalidProducerIdMapping);
                }
                TxnMetadata::new(
                    transactional_id.to_string(),
                    new_producer_id()?,
                    timeout_ms,
                    now_ms,
                )
            }
        };
        if let Some(expected) = expected {
            let is_current = expected.producer_id == current.producer_id
                && expected.producer_epoch == current.producer_epoch;
            let is_retry = expected.producer_id == current.producer_id
                && current.last_producer_epoch >= 0
                && expected.producer_epoch == current.last_producer_epoch;
            // i16::MAX is a fenced exhausted epoch (`fence_and_abort`): never handed out.
            if is_retry
                && !current.state.is_preparing()
                && current.state != TxnState::Ongoing
                && current.producer_epoch < i16::MAX
            {
                return Ok(InitOutcome::Ready(current.ids()));
            }
            if !is_current {
                return Err(ErrorCode::ProducerFenced);
            }
        }
        match current.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(ErrorCode::ConcurrentTransactions)
            }
            TxnState::Dead => Err(ErrorCode::ConcurrentTransactions),
            TxnState::Ongoing => Ok(InitOutcome::Write(self.fence_and_abort(&current, now_ms))),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let mut next = current.clone();
                if current.producer_epoch >= EPOCH_MAX {
                    next.producer_id = new_producer_id()?;
                    next.producer_epoch = 0;
                    next.last_producer_epoch = -1;
                } else {
                    next.last_producer_epoch = current.producer_epoch;
                    next.producer_epoch = current.producer_epoch + 1;
                }
                next.timeout_ms = timeout_ms;
                next.state = TxnState::Empty;
                next.partitions.clear();
                next.txn_start_ms = -1;
                next.last_update_ms = now_ms;
                Ok(InitOutcome::Write(Transition {
                    write: next,
                    markers: None,
                }))
            }
        }
    }

    /// Ends an open transaction by the coordinator's decision (a new producer instance or a
    /// timeout): the epoch is bumped so the old instance is fenced, and the transaction is
    /// aborted with markers at the new epoch. An exhausted epoch (EPOCH_MAX) is fenced too,
    /// to i16::MAX, as Kafka does: that epoch is never handed to a producer, and the next
    /// InitProducerId moves the id to a new producer id.
    pub fn fence_and_abort(&self, current: &TxnMetadata, now_ms: i64) -> Transition {
        debug_assert_eq!(current.state, TxnState::Ongoing);
        let mut next = current.clone();
        if current.producer_epoch < i16::MAX {
            next.last_producer_epoch = current.producer_epoch;
            next.producer_epoch = current.producer_epoch + 1;
        }
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now_ms;
        let markers = Markers {
            producer_id: next.producer_id,
            producer_epoch: next.producer_epoch,
            result: TxnResult::Abort,
            partitions: next.partitions.iter().cloned().collect(),
        };
        Transition {
            write: next,
            markers: Some(markers),
        }
    }

    /// Checks a producer against the coordinator's view of its transactional id.
    fn check_producer(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
    ) -> Result<&TxnMetadata, ErrorCode> {
        let current = self
            .transactions
            .get(transactional_id)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?;
        if current.producer_id != producer.producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if current.producer_epoch != producer.producer_epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        Ok(current)
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's offsets partition).
    /// `Ok(None)`: every partition is already in the open transaction.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partitions: &[TopicPartition],
        now_ms: i64,
    ) -> Result<Option<Transition>, ErrorCode> {
        let current = self.check_producer(transactional_id, producer)?;
        match current.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                return Err(ErrorCode::ConcurrentTransactions)
            }
            TxnState::PrepareEpochFence | TxnState::Dead => return Err(ErrorCode::ProducerFenced),
            TxnState::Ongoing
                if partitions
                    .iter()
                    .all(|partition| current.partitions.contains(partition)) =>
            {
                return Ok(None)
            }
            TxnState::Ongoing
            | TxnState::Empty
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort => {}
        }
        let mut next = current.clone();
        if current.state != TxnState::Ongoing {
            next.partitions.clear();
            next.txn_start_ms = now_ms;
            next.state = TxnState::Ongoing;
        }
        next.partitions.extend(partitions.iter().cloned());
        next.last_update_ms = now_ms;
        Ok(Some(Transition {
            write: next,
            markers: None,
        }))
    }

    /// Whether `partition` is in the open transaction of this producer (KIP-890's check
    /// before a transactional write, and TxnOffsetCommit's).
    pub fn verify(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partition: &TopicPartition,
    ) -> Result<(), ErrorCode> {
        let current = self.check_producer(transactional_id, producer)?;
        if current.state != TxnState::Ongoing || !current.partitions.contains(partition) {
            return Err(ErrorCode::InvalidTxnState);
        }
        Ok(())
    }

    /// EndTxn from the producer (transaction version 1: the epoch stays). `Ok(None)`: a
    /// retry of an end that already completed.
    pub fn end_transaction(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        result: TxnResult,
        now_ms: i64,
    ) -> Result<Option<Transition>, ErrorCode> {
        let current = self.check_producer(transactional_id, producer)?;
        match (current.state, result) {
            (TxnState::Ongoing, _) => {
                Ok(Some(Self::prepare_end(current, result, false, -1, now_ms)))
            }
            (state, result) => Self::end_in_state(state, result),
        }
    }

    /// EndTxn v5+ (transaction version 2, KIP-890 part 2): the end bumps the producer epoch
    /// and its markers carry the bumped epoch, so a write of the old epoch that arrives
    /// after the end is fenced by the partition itself. An epoch that would reach
    /// `i16::MAX` moves the producer to a new id (epoch 0) once the markers are written.
    /// `Ok(None)`: a retry of an end that already completed; the producer learns its id
    /// and epoch from the installed metadata either way.
    ///
    /// Kafka's retry rules: after a version-2 end, the retry names the epoch before the
    /// bump (or, after an overflow, the previous producer id and the last epoch); any other
    /// epoch is fenced, because the same epoch now means the producer's next transaction.
    pub fn end_transaction_v2(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        result: TxnResult,
        now_ms: i64,
        new_producer_id: impl FnOnce() -> Result<i64, ErrorCode>,
    ) -> Result<Option<Transition>, ErrorCode> {
        let current = self
            .transactions
            .get(transactional_id)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?;
        let bumped = current.bumps_epoch_per_transaction();
        let retry_on_epoch_bump =
            bumped && current.producer_epoch as i32 == producer.producer_epoch as i32 + 1;
        let retry_on_overflow = bumped
            && current.previous_producer_id == producer.producer_id
            && producer.producer_epoch == EPOCH_MAX
            && current.producer_epoch == 0;
        let same_epoch = producer.producer_epoch == current.producer_epoch;
        let valid_epoch = if bumped {
            match current.state {
                TxnState::Ongoing
                | TxnState::Empty
                | TxnState::Dead
                | TxnState::PrepareEpochFence => same_epoch,
                TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_epoch_bump,
                // A retry is answered with the current epoch, which must not be the
                // i16::MAX of a fenced exhausted epoch (`fence_and_abort`).
                TxnState::CompleteCommit | TxnState::CompleteAbort => {
                    (retry_on_epoch_bump && current.producer_epoch < i16::MAX) || retry_on_overflow
                }
            }
        } else {
            same_epoch
        };
        if current.producer_id != producer.producer_id && !retry_on_overflow {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if !valid_epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        match (current.state, result) {
            (TxnState::Ongoing, _) => {
                let next_producer_id = if current.producer_epoch >= EPOCH_MAX {
                    new_producer_id()?
                } else {
                    -1
                };
                Ok(Some(Self::prepare_end(
                    current,
                    result,
                    true,
                    next_producer_id,
                    now_ms,
                )))
            }
            (state, result) => Self::end_in_state(state, result),
        }
    }

    /// PrepareCommit/PrepareAbort of an open transaction, with its markers.
    fn prepare_end(
        current: &TxnMetadata,
        result: TxnResult,
        bump_epoch: bool,
        next_producer_id: i64,
        now_ms: i64,
    ) -> Transition {
        debug_assert_eq!(current.state, TxnState::Ongoing);
        let mut next = current.clone();
        next.state = match result {
            TxnResult::Commit => TxnState::PrepareCommit,
            TxnResult::Abort => TxnState::PrepareAbort,
        };
        next.previous_producer_id = current.producer_id;
        if bump_epoch {
            // An exhausted epoch reaches i16::MAX here, for the markers only: the
            // completion moves the producer to `next_producer_id`.
            // Holds: an open transaction's epoch is at most EPOCH_MAX. InitProducerId never
            // bumps past it; `fence_and_abort` bumps EPOCH_MAX to i16::MAX but ends the
            // transaction, and no answer hands that epoch out (see the retry checks), so
            // no producer opens a transaction with it; the only other bump to i16::MAX is
            // this one, which leaves Ongoing with `next_producer_id` set (the caller asks
            // for a new id whenever the epoch is EPOCH_MAX), so `complete` restarts at 0.
            debug_assert!(current.producer_epoch < i16::MAX);
            next.last_producer_epoch = current.producer_epoch;
            next.producer_epoch = current.producer_epoch.saturating_add(1);
            next.next_producer_id = next_producer_id;
            next.client_transaction_version = TRANSACTION_VERSION_2;
        } else {
            next.next_producer_id = -1;
            next.client_transaction_version = 0;
        }
        next.last_update_ms = now_ms;
        let markers = Markers {
            producer_id: next.producer_id,
            producer_epoch: next.producer_epoch,
            result,
            partitions: next.partitions.iter().cloned().collect(),
        };
        Transition {
            write: next,
            markers: Some(markers),
        }
    }

    /// EndTxn on a transaction that is not open: a retry, or a wrong state.
    fn end_in_state(state: TxnState, result: TxnResult) -> Result<Option<Transition>, ErrorCode> {
        match (state, result) {
            (TxnState::CompleteCommit, TxnResult::Commit)
            | (TxnState::CompleteAbort, TxnResult::Abort) => Ok(None),
            (TxnState::PrepareCommit, TxnResult::Commit)
            | (TxnState::PrepareAbort, TxnResult::Abort) => Err(ErrorCode::ConcurrentTransactions),
            (TxnState::PrepareEpochFence | TxnState::Dead, _) => Err(ErrorCode::ProducerFenced),
            _ => Err(ErrorCode::InvalidTxnState),
        }
    }

    /// After the markers of a PrepareCommit/PrepareAbort are written: the completion to
    /// write. `None` if the id is not (or no longer) preparing.
    pub fn complete(&self, transactional_id: &str, now_ms: i64) -> Option<Transition> {
        let current = self.transactions.get(transactional_id)?;
        let state = match current.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return None,
        };
        let mut next = current.clone();
        next.state = state;
        next.partitions.clear();
        next.txn_start_ms = -1;
        next.last_update_ms = now_ms;
        next.previous_producer_id = current.producer_id;
        if current.next_producer_id >= 0 {
            // The markers carried the exhausted epoch; the producer continues on a new id.
            next.producer_id = current.next_producer_id;
            next.producer_epoch = 0;
            next.last_producer_epoch = -1;
            next.next_producer_id = -1;
        }
        Some(Transition {
            write: next,
            markers: None,
        })
    }

    /// Transactions open longer than their timeout, to fence and abort.
    pub fn timed_out(&self, now_ms: i64) -> Vec<String> {
        let mut ids: Vec<String> = self
            .transactions
            .values()
            .filter(|t| {
                t.state == TxnState::Ongoing
                    && t.txn_start_ms >= 0
                    && now_ms > t.txn_start_ms.saturating_add(t.timeout_ms as i64)
            })
            .map(|t| t.transactional_id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Transactions whose markers must still be written (after a restart mid-end).
    pub fn preparing(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .transactions
            .values()
            .filter(|t| t.state.is_preparing())
            .map(|t| t.transactional_id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Markers of a preparing transaction (for completing it after a restart).
    pub fn markers_of(&self, transactional_id: &str) -> Option<Markers> {
        let current = self.transactions.get(transactional_id)?;
        let result = match current.state {
            TxnState::PrepareCommit => TxnResult::Commit,
            TxnState::PrepareAbort => TxnResult::Abort,
            _ => return None,
        };
        Some(Markers {
            producer_id: current.producer_id,
            producer_epoch: current.producer_epoch,
            result,
            partitions: current.partitions.iter().cloned().collect(),
        })
    }

    /// Ids with no open transaction that have not been used for `transactional.id.expiration.ms`.
    pub fn expired(&self, now_ms: i64) -> Vec<String> {
        let mut ids: Vec<String> = self
            .transactions
            .values()
            .filter(|t| {
                matches!(
                    t.state,
                    TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                ) && now_ms - t.last_update_ms > self.limits.id_expiration_ms
            })
            .map(|t| t.transactional_id.clone())
            .collect();
        ids.sort();
        ids
    }
}
