//! Simulated transactional producers and the transaction coordinator's runtime: requests
//! step the state machine and append its records; an ending transaction waits for its
//! Prepare record, writes markers (to data partitions and, for transactional offset
//! commits, to `__consumer_offsets`), waits for them, then writes its completion; the
//! timer aborts transactions past their timeout and finishes any left preparing.

use std::collections::{BTreeSet, HashMap, HashSet};

use strom_protocol::ErrorCode;

use super::log::{self, Entry};
use super::world::{Answer, To, World, OFFSETS_TOPIC, TXN_GROUP};
use strom_coordinator::group::coordinator::PendingTxnOffset;
use strom_coordinator::group::records::{encode_offset_key, encode_offset_value, OffsetValue};
use strom_coordinator::txn::state as crate_state;
use strom_coordinator::txn::state::{
    InitOutcome, ProducerIdAndEpoch, TopicPartition, Transition, TxnResult,
};

pub const DATA: &str = "data";
const TXN_TIMEOUT_MS: i32 = 20_000;
/// How often the transaction timer runs (simulated time).
const TXN_TICK_MS: i64 = 1000;

/// Which transaction a write belongs to: (producer, incarnation, transaction number).
pub type TxnKey = (usize, u32, u64);

#[derive(Debug, Clone)]
pub enum DataEntry {
    Data {
        producer_id: i64,
        epoch: i16,
        txn: TxnKey,
    },
    Marker {
        producer_id: i64,
        epoch: i16,
        commit: bool,
    },
}

/// A user partition (never moves in the simulation): data and markers.
#[derive(Debug, Default)]
pub struct DataPartition {
    pub entries: Vec<DataEntry>,
    /// The highest epoch seen per producer id (the partition refuses older ones).
    pub epochs: HashMap<i64, i16>,
}

#[derive(Debug)]
pub struct Producer {
    pub transactional_id: String,
    /// Transaction version 2: every end bumps the epoch.
    pub v2: bool,
    pub incarnation: u32,
    pub ids: Option<ProducerIdAndEpoch>,
    /// Partitions the open transaction holds (as acknowledged).
    pub added: BTreeSet<TopicPartition>,
    pub txn: u64,
    /// An EndTxn sent and not answered yet: retried until it is.
    pub ending: Option<TxnResult>,
    pub inflight: Option<u64>,
    pub busy_until: i64,
    /// Ids of earlier incarnations, which may still send requests.
    pub zombies: Vec<(u32, u64, ProducerIdAndEpoch)>,
}

impl Producer {
    pub fn new(index: usize, v2: bool) -> Self {
        Producer {
            transactional_id: format!("sim-txn-{index}"),
            v2,
            incarnation: 0,
            ids: None,
            added: BTreeSet::new(),
            txn: 0,
            ending: None,
            inflight: None,
            busy_until: 0,
            zombies: Vec::new(),
        }
    }

    /// A new incarnation (a restart): the old one's ids stay with a zombie.
    fn restart(&mut self) {
        if let Some(ids) = self.ids.take() {
            self.zombies.push((self.incarnation, self.txn, ids));
        }
        self.incarnation += 1;
        self.added.clear();
        self.txn += 1;
        self.ending = None;
        self.inflight = None;
    }
}

#[derive(Debug, Clone)]
pub enum TxnReply {
    Init(Result<ProducerIdAndEpoch, ErrorCode>),
    Add(Result<Vec<TopicPartition>, ErrorCode>),
    End(Result<ProducerIdAndEpoch, ErrorCode>),
}

/// An answer of the transaction coordinator waiting for `__transaction_state` to reach
/// `need`.
#[derive(Debug, Clone)]
pub struct ParkedTxn {
    pub need: usize,
    pub leader_epoch: u32,
    pub producer: usize,
    pub request: u64,
    pub reply: TxnReply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The Prepare record must reach the replicas.
    Prepare { need: usize },
    /// Markers go out now.
    Markers,
    /// The marker on `__consumer_offsets` (if any) must reach the replicas.
    MarkersWritten { need: usize, offsets_epoch: u32 },
    /// The completion record must reach the replicas.
    Complete { need: usize },
}

/// One ending transaction, as the runtime's `end_registered` task.
#[derive(Debug, Clone)]
pub struct EndTask {
    transactional_id: String,
    stage: Stage,
    txn_epoch: u32,
    /// The producer waiting for the answer, and what it continues with.
    client: Option<(usize, u64, ProducerIdAndEpoch)>,
}

impl World {
    fn txn_tp(&self, partition: usize) -> TopicPartition {
        (DATA.to_string(), partition as i32)
    }

    fn park_txn(&mut self, producer: usize, request: u64, reply: TxnReply) {
        self.parked_txn.push(ParkedTxn {
            need: self.txn_log.end(),
            leader_epoch: self.txn_log.leader_epoch,
            producer,
            request,
            reply,
        });
    }

    /// Appends a transition's record and installs it; an ending one gets its task.
    fn apply_transition(
        &mut self,
        transition: Transition,
        client: Option<(usize, u64, ProducerIdAndEpoch)>,
    ) {
        self.txn_log.append(log::txn_entry(&transition.write));
        let id = transition.write.transactional_id.clone();
        let ends = transition.markers.is_some();
        self.trace(format!(
            "txn {id}: {:?} pid {} epoch {} {:?}",
            transition.write.state,
            transition.write.producer_id,
            transition.write.producer_epoch,
            transition.write.partitions
        ));
        self.txns.install(transition.write);
        if ends && !self.ends.iter().any(|t| t.transactional_id == id) {
            self.ends.push(EndTask {
                transactional_id: id,
                stage: Stage::Prepare {
                    need: self.txn_log.end(),
                },
                txn_epoch: self.txn_log.leader_epoch,
                client,
            });
        } else if let Some((producer, request, ids)) = client {
            self.park_txn(producer, request, TxnReply::End(Ok(ids)));
        }
    }

    pub fn producer_act(&mut self, i: usize) {
        if self.producers[i].inflight.is_some() || self.producers[i].busy_until > self.now {
            return;
        }
        if !self.producers[i].zombies.is_empty() && self.rng.chance(15) {
            return self.zombie_act(i);
        }
        let Some(ids) = self.producers[i].ids else {
            return self.init(i, None);
        };
        if let Some(result) = self.producers[i].ending {
            return self.end_txn(i, ids, result);
        }
        if self.producers[i].added.is_empty() {
            return self.add_partitions(i, ids);
        }
        match self.rng.below(100) {
            0..=39 => {
                let p = self.rng.below(self.data.len() as u64) as usize;
                let tp = self.txn_tp(p);
                if self.producers[i].added.contains(&tp) {
                    let txn = (i, self.producers[i].incarnation, self.producers[i].txn);
                    self.produce(i, ids, p, txn);
                }
            }
            40..=54 => self.txn_offset_commit(i, ids, None),
            55..=64 => self.add_partitions(i, ids),
            65..=79 => self.end_txn(i, ids, TxnResult::Commit),
            80..=86 => self.end_txn(i, ids, TxnResult::Abort),
            87..=89 => {
                self.trace(format!("producer {i}: restarts"));
                self.producers[i].restart();
            }
            90..=93 => {
                let stall = 5000 + self.rng.below(25_000) as i64;
                self.producers[i].busy_until = self.now + stall;
                self.trace(format!("producer {i}: stalls {stall} ms"));
            }
            94..=95 => self.init(i, Some(ids)),
            _ => {}
        }
    }

    /// An earlier incarnation, unaware it was fenced, writes, commits offsets or ends.
    fn zombie_act(&mut self, i: usize) {
        let (incarnation, txn, ids) = self.producers[i].zombies[0];
        if self.rng.chance(30) {
            self.producers[i].zombies.remove(0);
        }
        let id = self.producers[i].transactional_id.clone();
        self.trace(format!(
            "producer {i}: zombie incarnation {incarnation} acts"
        ));
        match self.rng.below(3) {
            0 => {
                let p = self.rng.below(self.data.len() as u64) as usize;
                self.produce(i, ids, p, (i, incarnation, txn));
            }
            1 => self.txn_offset_commit(i, ids, Some((incarnation, txn))),
            _ => {
                let result = if self.producers[i].v2 {
                    self.txns
                        .end_transaction_v2(&id, ids, TxnResult::Commit, self.now, || Ok(-1))
                } else {
                    self.txns
                        .end_transaction(&id, ids, TxnResult::Commit, self.now)
                };
                let fenced = self.oracle.initialised_after(i, incarnation);
                if let Ok(Some(transition)) = result {
                    self.oracle.commit_requested((i, incarnation, txn));
                    if !fenced {
                        self.apply_transition(transition, None);
                        return;
                    }
                    let message = format!(
                        "a fenced producer (sim-txn-{i} incarnation {incarnation}, {ids:?}) ended its transaction with a commit: {:?}",
                        transition.write.state
                    );
                    self.violation.get_or_insert(message);
                    self.apply_transition(transition, None);
                }
            }
        }
    }

    fn init(&mut self, i: usize, expected: Option<ProducerIdAndEpoch>) {
        let request = self.new_id();
        self.producers[i].inflight = Some(request);
        let id = self.producers[i].transactional_id.clone();
        let mut next = self.next_producer_id;
        let outcome = self
            .txns
            .init_producer_id(&id, TXN_TIMEOUT_MS, expected, self.now, || {
                next += 1;
                Ok(next)
            });
        self.next_producer_id = next;
        self.trace(format!("producer {i}: init {expected:?} -> {outcome:?}"));
        match outcome {
            Err(code) => self.park_txn(i, request, TxnReply::Init(Err(code))),
            Ok(InitOutcome::Ready(ids)) => self.park_txn(i, request, TxnReply::Init(Ok(ids))),
            Ok(InitOutcome::Write(transition)) => {
                let reply = if transition.markers.is_some() {
                    Err(ErrorCode::ConcurrentTransactions)
                } else {
                    Ok(transition.write.ids())
                };
                self.apply_transition(transition, None);
                self.park_txn(i, request, TxnReply::Init(reply));
            }
        }
    }

    fn add_partitions(&mut self, i: usize, ids: ProducerIdAndEpoch) {
        let request = self.new_id();
        self.producers[i].inflight = Some(request);
        let mut partitions: Vec<TopicPartition> = Vec::new();
        for p in 0..self.data.len() {
            if self.rng.chance(50) {
                partitions.push(self.txn_tp(p));
            }
        }
        if self.rng.chance(50) {
            partitions.push((OFFSETS_TOPIC.to_string(), 0));
        }
        if partitions.is_empty() {
            partitions.push(self.txn_tp(0));
        }
        let id = self.producers[i].transactional_id.clone();
        let result = self.txns.add_partitions(&id, ids, &partitions, self.now);
        match result {
            Err(code) => self.park_txn(i, request, TxnReply::Add(Err(code))),
            Ok(None) => self.park_txn(i, request, TxnReply::Add(Ok(partitions))),
            Ok(Some(transition)) => {
                self.apply_transition(transition, None);
                self.park_txn(i, request, TxnReply::Add(Ok(partitions)));
            }
        }
    }

    /// A transactional write to a data partition: checked against the open transaction
    /// (KIP-890), then appended, unless the partition knows a newer epoch.
    fn produce(&mut self, i: usize, ids: ProducerIdAndEpoch, p: usize, txn: TxnKey) {
        let id = self.producers[i].transactional_id.clone();
        let tp = self.txn_tp(p);
        if self.txns.verify(&id, ids, &tp).is_err() {
            return;
        }
        let partition = &mut self.data[p];
        let known = partition.epochs.get(&ids.producer_id).copied();
        if known.is_some_and(|e| e > ids.producer_epoch) {
            return;
        }
        partition.epochs.insert(ids.producer_id, ids.producer_epoch);
        partition.entries.push(DataEntry::Data {
            producer_id: ids.producer_id,
            epoch: ids.producer_epoch,
            txn,
        });
        self.trace(format!(
            "producer {i}: writes to {DATA}-{p} as {ids:?} txn {txn:?}"
        ));
    }

    /// TxnOffsetCommit of a generation-less (producer-only) group: the offsets partition
    /// must be in the transaction; the records carry the producer; they become visible
    /// with the commit marker. The offset is unique per write, so the oracle knows whose it is.
    fn txn_offset_commit(&mut self, i: usize, ids: ProducerIdAndEpoch, zombie: Option<(u32, u64)>) {
        let id = self.producers[i].transactional_id.clone();
        let offsets_tp = (OFFSETS_TOPIC.to_string(), 0);
        if self.txns.verify(&id, ids, &offsets_tp).is_err() {
            return;
        }
        if self
            .groups
            .validate_offset_commit(self.now, TXN_GROUP, "", None, -1)
            .is_err()
        {
            return;
        }
        let (incarnation, txn) =
            zombie.unwrap_or((self.producers[i].incarnation, self.producers[i].txn));
        let offset = self.oracle.txn_offset((i, incarnation, txn));
        let partition = self.rng.below(3) as i32;
        let value = OffsetValue {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: self.now,
        };
        self.offsets_log.append(Entry::Record {
            key: encode_offset_key(TXN_GROUP, DATA, partition),
            value: Some(encode_offset_value(&value)),
            writer: Some((ids.producer_id, ids.producer_epoch)),
        });
        self.groups.add_pending_txn_offsets(
            ids.producer_id,
            vec![PendingTxnOffset {
                group_id: TXN_GROUP.to_string(),
                topic: DATA.to_string(),
                partition,
                value,
            }],
        );
        self.trace(format!(
            "producer {i}: txn offset commit {DATA}-{partition}={offset} as {ids:?}"
        ));
        // Answered once on the replicas; nothing in the client depends on it here.
        self.park(To::Zombie, Answer::Heartbeat(Ok(())));
    }

    fn end_txn(&mut self, i: usize, ids: ProducerIdAndEpoch, result: TxnResult) {
        let request = self.new_id();
        self.producers[i].inflight = Some(request);
        self.producers[i].ending = Some(result);
        let id = self.producers[i].transactional_id.clone();
        let txn = (i, self.producers[i].incarnation, self.producers[i].txn);
        let v2 = self.producers[i].v2;
        let mut next = self.next_producer_id;
        let outcome = if v2 {
            self.txns
                .end_transaction_v2(&id, ids, result, self.now, || {
                    next += 1;
                    Ok(next)
                })
        } else {
            self.txns.end_transaction(&id, ids, result, self.now)
        };
        self.next_producer_id = next;
        self.trace(format!(
            "producer {i}: end {result:?} as {ids:?} -> {outcome:?}"
        ));
        match outcome {
            Err(code) => self.park_txn(i, request, TxnReply::End(Err(code))),
            Ok(None) => {
                let continues = if v2 {
                    self.txns.get(&id).map_or(ids, |m| m.ids())
                } else {
                    ids
                };
                self.park_txn(i, request, TxnReply::End(Ok(continues)));
            }
            Ok(Some(transition)) => {
                if result == TxnResult::Commit {
                    self.oracle.commit_requested(txn);
                }
                let continues = if !v2 {
                    ids
                } else if transition.write.next_producer_id >= 0 {
                    ProducerIdAndEpoch {
                        producer_id: transition.write.next_producer_id,
                        producer_epoch: 0,
                    }
                } else {
                    transition.write.ids()
                };
                self.apply_transition(transition, Some((i, request, continues)));
            }
        }
    }

    /// The transaction timer: aborts what ran past its timeout, finishes what is left
    /// preparing (after a load, or after a failed end).
    pub fn txn_tick(&mut self) {
        if self.now / TXN_TICK_MS == self.oracle.last_txn_tick {
            return;
        }
        self.oracle.last_txn_tick = self.now / TXN_TICK_MS;
        for id in self.txns.timed_out(self.now) {
            let Some(current) = self.txns.get(&id).cloned() else {
                continue;
            };
            let transition = self.txns.fence_and_abort(&current, self.now);
            self.trace(format!("txn {id}: timed out"));
            self.count("transactions timed out");
            self.apply_transition(transition, None);
        }
        for id in self.txns.expired(self.now) {
            // As the runtime: forgotten at once, the tombstone not waited for.
            self.txn_log.append(Entry::Record {
                key: strom_coordinator::txn::records::encode_key(&id),
                value: None,
                writer: None,
            });
            self.txns.remove(&id);
            self.trace(format!("txn {id}: expired"));
            self.count("transactional ids expired");
        }
        let busy: HashSet<String> = self
            .ends
            .iter()
            .map(|t| t.transactional_id.clone())
            .collect();
        for id in self.txns.preparing() {
            if !busy.contains(&id) {
                self.ends.push(EndTask {
                    transactional_id: id,
                    stage: Stage::Markers,
                    txn_epoch: self.txn_log.leader_epoch,
                    client: None,
                });
            }
        }
    }

    /// Moves every end task on as far as the replicas allow.
    pub fn run_ends(&mut self) {
        let tasks = std::mem::take(&mut self.ends);
        for mut task in tasks {
            loop {
                match self.advance_end(&mut task) {
                    Some(true) => continue,
                    Some(false) => {
                        self.ends.push(task);
                        break;
                    }
                    None => break,
                }
            }
        }
    }

    /// `Some(true)`: moved on; `Some(false)`: waits; `None`: done or failed (answered).
    fn advance_end(&mut self, task: &mut EndTask) -> Option<bool> {
        if task.txn_epoch != self.txn_log.leader_epoch {
            self.end_failed(task, ErrorCode::NotCoordinator);
            return None;
        }
        match task.stage {
            Stage::Prepare { need } => {
                if self.txn_log.committed < need {
                    return Some(false);
                }
                task.stage = Stage::Markers;
                Some(true)
            }
            Stage::Markers => {
                let Some(markers) = self.txns.markers_of(&task.transactional_id) else {
                    self.end_done(task);
                    return None;
                };
                let commit = markers.result == TxnResult::Commit;
                let mut need = 0;
                for (topic, index) in &markers.partitions {
                    if topic == OFFSETS_TOPIC {
                        self.offsets_log.append(Entry::Marker {
                            producer_id: markers.producer_id,
                            commit,
                        });
                        self.groups.complete_txn_offsets(
                            self.now,
                            markers.producer_id,
                            commit,
                            |_| true,
                        );
                        need = self.offsets_log.end();
                        continue;
                    }
                    let partition = &mut self.data[*index as usize];
                    let known = partition.epochs.get(&markers.producer_id).copied();
                    if known.is_some_and(|e| e > markers.producer_epoch) {
                        let message = format!(
                            "{topic}-{index} refuses the marker of {} at epoch {} (it saw epoch {known:?})",
                            task.transactional_id, markers.producer_epoch
                        );
                        self.violation.get_or_insert(message);
                        continue;
                    }
                    partition
                        .epochs
                        .insert(markers.producer_id, markers.producer_epoch);
                    partition.entries.push(DataEntry::Marker {
                        producer_id: markers.producer_id,
                        epoch: markers.producer_epoch,
                        commit,
                    });
                }
                self.trace(format!(
                    "txn {}: markers {:?} pid {} epoch {} on {:?}",
                    task.transactional_id,
                    markers.result,
                    markers.producer_id,
                    markers.producer_epoch,
                    markers.partitions
                ));
                task.stage = Stage::MarkersWritten {
                    need,
                    offsets_epoch: self.offsets_log.leader_epoch,
                };
                Some(true)
            }
            Stage::MarkersWritten {
                need,
                offsets_epoch,
            } => {
                if need > 0 && offsets_epoch != self.offsets_log.leader_epoch {
                    self.end_failed(task, ErrorCode::RequestTimedOut);
                    return None;
                }
                if self.offsets_log.committed < need {
                    return Some(false);
                }
                match self.txns.complete(&task.transactional_id, self.now) {
                    None => {
                        self.end_done(task);
                        None
                    }
                    Some(completion) => {
                        self.trace(format!(
                            "txn {}: {:?}",
                            task.transactional_id, completion.write.state
                        ));
                        self.count(match completion.write.state {
                            crate_state::TxnState::CompleteCommit => "transactions committed",
                            _ => "transactions aborted",
                        });
                        self.txn_log.append(log::txn_entry(&completion.write));
                        self.txns.install(completion.write);
                        task.stage = Stage::Complete {
                            need: self.txn_log.end(),
                        };
                        Some(true)
                    }
                }
            }
            Stage::Complete { need } => {
                if self.txn_log.committed < need {
                    return Some(false);
                }
                self.end_done(task);
                None
            }
        }
    }

    fn end_done(&mut self, task: &EndTask) {
        if let Some((producer, request, ids)) = task.client {
            self.park_txn(producer, request, TxnReply::End(Ok(ids)));
        }
    }

    fn end_failed(&mut self, task: &EndTask, code: ErrorCode) {
        self.trace(format!(
            "txn {}: end failed {code:?}",
            task.transactional_id
        ));
        if let Some((producer, request, _)) = task.client {
            self.answer_txn(producer, request, TxnReply::End(Err(code)));
        }
    }

    /// The offsets partition moved: ends waiting for a marker there fail (the timer
    /// writes the markers again).
    pub fn offsets_moved(&mut self) {
        self.run_ends();
    }

    /// The transaction state partition moved: every end task and parked answer of the old
    /// leader fails; the new leader's timer finishes what it finds preparing.
    pub fn txn_moved(&mut self) {
        self.run_ends();
        self.deliver_txn();
        self.oracle.last_txn_tick = i64::MIN;
    }

    pub fn deliver_txn(&mut self) {
        let committed = self.txn_log.committed;
        let epoch = self.txn_log.leader_epoch;
        let (ready, waiting): (Vec<ParkedTxn>, Vec<ParkedTxn>) =
            std::mem::take(&mut self.parked_txn)
                .into_iter()
                .partition(|p| p.leader_epoch != epoch || p.need <= committed);
        self.parked_txn = waiting;
        for parked in ready {
            let reply = if parked.leader_epoch != epoch {
                match parked.reply {
                    TxnReply::Init(_) => TxnReply::Init(Err(ErrorCode::NotCoordinator)),
                    TxnReply::Add(_) => TxnReply::Add(Err(ErrorCode::NotCoordinator)),
                    TxnReply::End(_) => TxnReply::End(Err(ErrorCode::NotCoordinator)),
                }
            } else {
                parked.reply
            };
            if self.rng.chance(self.loss_percent) {
                if self.producers[parked.producer].inflight == Some(parked.request) {
                    self.producers[parked.producer].inflight = None;
                }
                continue;
            }
            self.answer_txn(parked.producer, parked.request, reply);
        }
    }

    fn answer_txn(&mut self, i: usize, request: u64, reply: TxnReply) {
        if self.producers[i].inflight != Some(request) {
            return;
        }
        self.producers[i].inflight = None;
        self.trace(format!("producer {i}: answer {reply:?}"));
        let error = match reply {
            TxnReply::Init(Ok(ids)) => {
                let producer = &mut self.producers[i];
                producer.ids = Some(ids);
                producer.added.clear();
                producer.txn += 1;
                let incarnation = producer.incarnation;
                self.oracle.initialised(i, incarnation);
                None
            }
            TxnReply::Add(Ok(partitions)) => {
                self.producers[i].added.extend(partitions);
                None
            }
            TxnReply::End(Ok(ids)) => {
                let producer = &mut self.producers[i];
                let txn = (i, producer.incarnation, producer.txn);
                if let Some(result) = producer.ending.take() {
                    let commit = result == TxnResult::Commit;
                    if let Err(message) = self.oracle.ended(&self.data, txn, commit) {
                        self.violation.get_or_insert(message);
                    }
                }
                let producer = &mut self.producers[i];
                producer.ids = Some(ids);
                producer.added.clear();
                producer.txn += 1;
                None
            }
            TxnReply::Init(Err(code)) | TxnReply::Add(Err(code)) | TxnReply::End(Err(code)) => {
                Some(code)
            }
        };
        match error {
            None => {}
            Some(
                ErrorCode::ProducerFenced
                | ErrorCode::InvalidProducerEpoch
                | ErrorCode::InvalidProducerIdMapping
                | ErrorCode::InvalidTxnState,
            ) => {
                self.trace(format!(
                    "producer {i}: fenced or lost its transaction; restarts"
                ));
                self.count("producers fenced");
                self.producers[i].restart();
            }
            Some(ErrorCode::ConcurrentTransactions) if self.producers[i].ending.is_some() => {
                // The end did not start (another one runs): the producer sends it again.
                self.producers[i].busy_until = self.now + self.rng.below(2000) as i64;
            }
            Some(_) => {
                self.producers[i].busy_until = self.now + self.rng.below(2000) as i64;
            }
        }
    }
}
