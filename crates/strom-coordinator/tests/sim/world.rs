//! The simulated cluster: the two coordinators, their logs, the clients, the clock and the
//! scheduler that picks what happens next. The runtime rules mirror the broker's: records
//! are appended as the machines ask, answers wait until the log end they saw is committed,
//! and a new leader starts from a replay of the committed records.

use std::collections::{BTreeMap, HashMap};

use strom_protocol::ErrorCode;
use uuid::Uuid;

use super::check::Oracle;
use super::clients::{ClassicClient, ConsumerClient};
use super::log::{self, Log};
use super::txn::{DataPartition, EndTask, ParkedTxn, Producer};
use super::Rng;
use strom_coordinator::group::classic::{JoinResult, SyncResult};
use strom_coordinator::group::consumer::HeartbeatResult;
use strom_coordinator::group::coordinator::Coordinator;
use strom_coordinator::group::{Action, GroupConfig};
use strom_coordinator::txn::state::{TxnLimits, TxnStateMachine};

pub const CLASSIC_GROUP: &str = "sim-classic";
pub const CONSUMER_GROUP: &str = "sim-consumer";
pub const TXN_GROUP: &str = "sim-txn";
/// The classic group's topic (fixed size).
pub const ORDERS: &str = "orders";
pub const ORDERS_PARTITIONS: i32 = 6;
/// The KIP-848 group's topic; it may grow during a run.
pub const EVENTS: &str = "events";
pub const EVENTS_MAX_PARTITIONS: i32 = 8;
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Who an answer goes to: a client and the id of the request it waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    Classic(usize, u64),
    Consumer(usize, u64),
    /// A commit by a client's earlier, fenced incarnation: nobody reads the answer.
    Zombie,
}

#[derive(Debug, Clone)]
pub enum Answer {
    Join(JoinResult),
    Sync(SyncResult),
    Heartbeat(Result<(), ErrorCode>),
    Leave(Result<(), ErrorCode>),
    Commit {
        group: String,
        commits: Vec<(String, i32, i64)>,
        result: Result<(), ErrorCode>,
    },
    ConsumerHeartbeat(HeartbeatResult),
}

/// An answer of the group coordinator waiting for the offsets log to reach `need`.
#[derive(Debug, Clone)]
pub struct Parked {
    pub need: usize,
    pub leader_epoch: u32,
    pub to: To,
    pub answer: Answer,
}

pub struct World {
    pub rng: Rng,
    pub now: i64,
    pub config: GroupConfig,
    pub limits: TxnLimits,
    pub groups: Coordinator,
    pub txns: TxnStateMachine,
    pub offsets_log: Log,
    pub txn_log: Log,
    pub topics: BTreeMap<String, (Uuid, i32)>,
    pub parked: Vec<Parked>,
    pub parked_txn: Vec<ParkedTxn>,
    /// Classic JoinGroup/SyncGroup waiters parked inside the coordinator.
    pub waiters: HashMap<u64, usize>,
    pub next_id: u64,
    pub classic: Vec<ClassicClient>,
    pub consumers: Vec<ConsumerClient>,
    pub producers: Vec<Producer>,
    pub data: Vec<DataPartition>,
    pub ends: Vec<EndTask>,
    pub next_producer_id: i64,
    pub oracle: Oracle,
    /// Set by a step that found a broken invariant on the way (a replay mismatch).
    pub violation: Option<String>,
    trace: Vec<String>,
    steps: u64,
    /// Percent of answers lost on the way back.
    pub loss_percent: u64,
    /// How often each interesting thing happened (`STROM_SIM_STATS=1` prints the sums).
    pub stats: BTreeMap<&'static str, u64>,
    /// Percent of steps in which the replicas fetch.
    replicate_percent: u64,
    replicas_paused_until: u64,
    last_expiry_check: i64,
    pub answer_predates_delete: bool,
}

impl World {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let config = GroupConfig {
            initial_rebalance_delay_ms: if rng.chance(50) { 0 } else { 3000 },
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 60_000,
            max_size: if rng.chance(20) { 3 } else { 100 },
            consumer_heartbeat_interval_ms: 2000,
            consumer_session_timeout_ms: 10_000,
            offsets_retention_ms: if rng.chance(30) {
                60_000
            } else {
                7 * 24 * 3_600_000
            },
            ..GroupConfig::default()
        };
        let limits = TxnLimits {
            max_timeout_ms: 60_000,
            // Some runs forget idle transactional ids quickly.
            id_expiration_ms: if rng.chance(30) {
                60_000
            } else {
                7 * 24 * 3_600_000
            },
        };
        let mut topics = BTreeMap::new();
        topics.insert(ORDERS.to_string(), (Uuid::from_u128(1), ORDERS_PARTITIONS));
        topics.insert(
            EVENTS.to_string(),
            (Uuid::from_u128(2), 3 + rng.below(3) as i32),
        );
        let classic_count = 2 + rng.below(4) as usize;
        let consumer_count = 2 + rng.below(4) as usize;
        let producer_count = 1 + rng.below(3) as usize;
        let classic = (0..classic_count)
            .map(|i| ClassicClient::new(i, rng.chance(40)))
            .collect();
        let consumers = (0..consumer_count)
            .map(|i| ConsumerClient::new(i, rng.chance(30), &mut rng))
            .collect();
        let producers = (0..producer_count)
            .map(|i| Producer::new(i, rng.chance(50)))
            .collect();
        let groups = Coordinator::new(config.clone(), rng.next_u64());
        // Some transactional ids start near the end of their epochs (as if replayed), so
        // the runs reach the new-producer-id paths.
        let mut txns = TxnStateMachine::new(limits);
        let mut txn_log = Log::default();
        let mut next_producer_id = 1000;
        for i in 0..producer_count {
            if rng.chance(30) {
                next_producer_id += 1;
                let mut metadata = strom_coordinator::txn::state::TxnMetadata::new(
                    format!("sim-txn-{i}"),
                    next_producer_id,
                    20_000,
                    1_000_000,
                );
                metadata.producer_epoch = i16::MAX - 2 - rng.below(4) as i16;
                txn_log.append(log::txn_entry(&metadata));
                txns.install(metadata);
            }
        }
        txn_log.replicate_to(txn_log.end());
        let loss_percent = rng.below(6);
        World {
            now: 1_000_000,
            txns,
            groups,
            config,
            limits,
            offsets_log: Log::default(),
            txn_log,
            topics,
            parked: Vec::new(),
            parked_txn: Vec::new(),
            waiters: HashMap::new(),
            next_id: 1,
            classic,
            consumers,
            producers,
            data: (0..3).map(|_| DataPartition::default()).collect(),
            ends: Vec::new(),
            next_producer_id,
            oracle: Oracle::default(),
            violation: None,
            trace: Vec::new(),
            steps: 0,
            loss_percent,
            stats: BTreeMap::new(),
            replicate_percent: 40 + rng.below(50),
            replicas_paused_until: 0,
            last_expiry_check: 0,
            answer_predates_delete: false,
            rng,
        }
    }

    pub fn count(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }

    pub fn trace(&mut self, line: String) {
        self.trace
            .push(format!("[{} t={}] {line}", self.steps, self.now));
    }

    pub fn trace_tail(&self, lines: usize) -> Vec<String> {
        let start = self.trace.len().saturating_sub(lines);
        self.trace[start..].to_vec()
    }

    pub fn failure(&self, seed: u64, message: &str) -> String {
        format!(
            "seed {seed}, step {}: {message}\nlast steps:\n  {}",
            self.steps,
            // A replayed seed shows its whole run.
            self.trace_tail(if std::env::var_os("STROM_SIM_SEED").is_some() {
                usize::MAX
            } else {
                40
            })
            .join("\n  ")
        )
    }

    pub fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// One thing happens.
    pub fn step(&mut self) {
        self.steps += 1;
        self.now += self.rng.below(400) as i64;
        let roll = self.rng.below(100);
        match roll {
            0..=4 => {
                let jump = 1000 + self.rng.below(15_000) as i64;
                self.now += jump;
                self.trace(format!("time +{jump} ms"));
            }
            5 => self.move_offsets_leader(),
            6 => self.move_txn_leader(),
            7 if self.rng.chance(20) => self.grow_events(),
            8..=39 => {
                let i = self.rng.below(self.classic.len() as u64) as usize;
                self.classic_act(i);
            }
            40..=69 => {
                let i = self.rng.below(self.consumers.len() as u64) as usize;
                self.consumer_act(i);
            }
            70..=94 => {
                let i = self.rng.below(self.producers.len() as u64) as usize;
                self.producer_act(i);
            }
            95..=96 => self.admin_act(),
            97 => {
                let pause = 5 + self.rng.below(40);
                self.replicas_paused_until = self.steps + pause;
                self.trace(format!("replicas stop fetching for {pause} steps"));
            }
            _ => {}
        }
        self.tick();
        // The replicas usually keep up; sometimes they lag behind for a while.
        let paused = self.steps < self.replicas_paused_until;
        if !paused && self.rng.chance(self.replicate_percent) {
            let end = self.offsets_log.end();
            let to = self.offsets_log.committed + self.rng.below(end as u64 + 1) as usize;
            self.offsets_log.replicate_to(to);
        }
        if !paused && self.rng.chance(self.replicate_percent) {
            let end = self.txn_log.end();
            let to = self.txn_log.committed + self.rng.below(end as u64 + 1) as usize;
            self.txn_log.replicate_to(to);
        }
        self.deliver();
        self.run_ends();
        self.deliver_txn();
    }

    /// A step with no client: timers, answers, ends.
    pub fn settle_step(&mut self) {
        self.tick();
        self.deliver();
        self.run_ends();
        self.deliver_txn();
    }

    /// The timers of both coordinators.
    fn tick(&mut self) {
        let mut actions = self.groups.tick(self.now);
        if self.now / 10_000 != self.last_expiry_check / 10_000 {
            self.last_expiry_check = self.now;
            actions.extend(self.groups.expire_offsets(self.now));
        }
        self.group_actions(actions);
        self.txn_tick();
    }

    /// Appends the records of `actions` and parks their answers on the log end.
    pub fn group_actions(&mut self, actions: Vec<Action>) {
        // Expired or deleted offsets may go away (or come back lower): that is explicit.
        let at = self.offsets_log.end() + actions.len() * ORDERS_PARTITIONS as usize;
        for action in &actions {
            match action {
                Action::DeleteOffsets {
                    group_id,
                    partitions,
                } => {
                    for (topic, partition) in partitions {
                        self.oracle.reset(group_id, topic, *partition, at);
                    }
                    self.count("offset deletes (expiry, group delete)");
                }
                Action::WriteGroup {
                    group_id,
                    value: None,
                } => {
                    self.oracle.deleted(group_id, at);
                    self.count("groups deleted");
                    // A group created again (after DeleteGroups or offset expiry) counts its
                    // epochs and generations from the start, so credentials from before
                    // would become valid again (as in Kafka): the simulation drops its
                    // zombies of the deleted group.
                    if group_id == CLASSIC_GROUP {
                        self.classic.iter_mut().for_each(|c| c.zombies.clear());
                    } else if group_id == CONSUMER_GROUP {
                        self.consumers.iter_mut().for_each(|c| c.zombies.clear());
                    }
                }
                _ => {}
            }
        }
        let answers = log::write_group_actions(&mut self.offsets_log, actions);
        for answer in answers {
            let (waiter, answer) = match answer {
                Action::JoinDone { waiter, result } => (waiter, Answer::Join(result)),
                Action::SyncDone { waiter, result } => (waiter, Answer::Sync(result)),
                _ => continue,
            };
            if let Some(client) = self.waiters.remove(&waiter) {
                self.park(To::Classic(client, waiter), answer);
            }
        }
    }

    /// Parks an answer on the offsets log end as it is now.
    pub fn park(&mut self, to: To, answer: Answer) {
        self.parked.push(Parked {
            need: self.offsets_log.end(),
            leader_epoch: self.offsets_log.leader_epoch,
            to,
            answer,
        });
    }

    /// Answers whose records are committed go out (a few are lost on the way).
    fn deliver(&mut self) {
        let committed = self.offsets_log.committed;
        let epoch = self.offsets_log.leader_epoch;
        let (ready, waiting): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| p.leader_epoch != epoch || p.need <= committed);
        self.parked = waiting;
        for parked in ready {
            let answer = if parked.leader_epoch != epoch {
                not_coordinator(parked.answer)
            } else {
                parked.answer
            };
            if let Answer::Commit {
                group,
                commits,
                result: Ok(()),
            } = &answer
            {
                // Acknowledged or not, these are on the replicas now.
                for (topic, partition, offset) in commits {
                    self.oracle
                        .acked_commit(group, topic, *partition, *offset, parked.need);
                }
                *self.stats.entry("offset commits durable").or_default() += 1;
            }
            if self.rng.chance(self.loss_percent) {
                self.count("group answers lost");
                self.trace(format!("answer to {:?} lost", parked.to));
                self.lost_answer(parked.to);
                continue;
            }
            // An answer computed before its group was deleted says nothing about the
            // generations of the group created since.
            self.answer_predates_delete = self.oracle.deleted_since(CLASSIC_GROUP, parked.need);
            self.answer(parked.to, answer);
            self.answer_predates_delete = false;
        }
    }

    fn answer(&mut self, to: To, answer: Answer) {
        match to {
            To::Classic(i, request) => self.classic_answer(i, request, answer),
            To::Consumer(i, request) => self.consumer_answer(i, request, answer),
            To::Zombie => {
                if let Answer::Commit {
                    result: Ok(()),
                    commits,
                    group,
                } = &answer
                {
                    self.trace(format!("zombie commit accepted: {group} {commits:?}"));
                    self.count("zombie commits accepted (still valid)");
                } else if let Answer::Commit { result: Err(_), .. } = &answer {
                    self.count("zombie commits refused");
                }
            }
        }
    }

    fn lost_answer(&mut self, to: To) {
        match to {
            To::Classic(i, request) => self.classic_lost(i, request),
            To::Consumer(i, request) => self.consumer_lost(i, request),
            To::Zombie => {}
        }
    }

    /// The leader of the group coordinator's partition moves: the records not on the
    /// replicas are lost, the new leader replays the rest, and everything waiting on the
    /// old leader gets NOT_COORDINATOR.
    pub fn move_offsets_leader(&mut self) {
        self.check_group_replay("before an offsets leadership move");
        // What is on the replicas is answered by the old leader first.
        self.deliver();
        let lost = self.offsets_log.end() - self.offsets_log.committed;
        self.trace(format!("offsets leader moves; {lost} records lost"));
        self.count("offsets leadership moves");
        *self.stats.entry("offsets records lost").or_default() += lost as u64;
        self.offsets_log.move_leader();
        let seed = self.rng.next_u64();
        self.groups = log::replay_groups(
            &self.offsets_log.entries,
            self.config.clone(),
            seed,
            self.now,
        );
        // In waiter order, not the map's, so one seed always gives one run.
        let mut waiters: Vec<(u64, usize)> = self.waiters.drain().collect();
        waiters.sort_unstable();
        for (waiter, client) in waiters {
            self.answer(
                To::Classic(client, waiter),
                Answer::Join(JoinResult::error(ErrorCode::NotCoordinator, "")),
            );
        }
        self.deliver();
        self.offsets_moved();
    }

    /// The leader of the transaction coordinator's partition moves.
    pub fn move_txn_leader(&mut self) {
        self.check_txn_replay("before a transaction leadership move");
        let lost = self.txn_log.end() - self.txn_log.committed;
        self.trace(format!("transaction leader moves; {lost} records lost"));
        self.count("transaction leadership moves");
        *self.stats.entry("transaction records lost").or_default() += lost as u64;
        self.txn_log.move_leader();
        self.txns = log::replay_txns(&self.txn_log.entries, self.limits);
        self.txn_moved();
    }

    fn grow_events(&mut self) {
        if let Some((_, count)) = self.topics.get_mut(EVENTS) {
            if *count < EVENTS_MAX_PARTITIONS {
                *count += 1;
                let count = *count;
                self.trace(format!("{EVENTS} grows to {count} partitions"));
            }
        }
    }

    /// An offset commit by a group member (or a fenced incarnation of one), as the
    /// OffsetCommit handler does it: checked, appended, made visible, answered once
    /// committed.
    pub fn offset_commit(
        &mut self,
        to: To,
        group: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        commits: Vec<(String, i32, i64)>,
    ) {
        let checked = self
            .groups
            .validate_offset_commit(self.now, group, member_id, instance, generation);
        let result = match checked {
            Err(code) => Err(code),
            Ok(()) => {
                for (topic, partition, offset) in &commits {
                    let value = strom_coordinator::group::coordinator::checked_commit(
                        self.topics.get(topic).map(|(_, count)| *count),
                        *partition,
                        *offset,
                        -1,
                        None,
                        self.config.offset_metadata_max_bytes,
                        self.now,
                    );
                    let Ok(value) = value else {
                        continue;
                    };
                    self.offsets_log.append(log::Entry::Record {
                        key: strom_coordinator::group::records::encode_offset_key(
                            group, topic, *partition,
                        ),
                        value: Some(strom_coordinator::group::records::encode_offset_value(
                            &value,
                        )),
                        writer: None,
                    });
                    self.groups.apply_commit(group, topic, *partition, value);
                }
                Ok(())
            }
        };
        self.trace(format!(
            "commit {to:?} {group} member={member_id} gen={generation} {commits:?} -> {result:?}"
        ));
        self.park(
            to,
            Answer::Commit {
                group: group.to_string(),
                commits,
                result,
            },
        );
    }

    /// An operator: resets offsets of an empty group (a generation-less commit, often
    /// lower), or deletes an empty group.
    fn admin_act(&mut self) {
        let group = if self.rng.chance(50) {
            CLASSIC_GROUP
        } else {
            CONSUMER_GROUP
        };
        let empty = self.groups.groups.get(group).is_none_or(|g| g.is_empty());
        if !empty {
            return;
        }
        if self.rng.chance(60) {
            let topic = if group == CLASSIC_GROUP {
                ORDERS
            } else {
                EVENTS
            };
            let partition = self.rng.below(3) as i32;
            let offset = self.rng.below(5) as i64;
            // The reset counts from where it is appended.
            let at = self.offsets_log.end() + 1;
            if self
                .groups
                .validate_offset_commit(self.now, group, "", None, -1)
                .is_ok()
            {
                self.oracle.reset(group, topic, partition, at);
                self.count("admin offset resets");
            }
            let commits = vec![(topic.to_string(), partition, offset)];
            self.offset_commit(To::Zombie, group, "", None, -1, commits);
        } else {
            let result = self.groups.delete_group(self.now, group);
            self.trace(format!("admin deletes {group}: {result:?}"));
            if let Ok(partitions) = result {
                self.group_actions(vec![
                    Action::DeleteOffsets {
                        group_id: group.to_string(),
                        partitions,
                    },
                    Action::WriteGroup {
                        group_id: group.to_string(),
                        value: None,
                    },
                ]);
            }
        }
    }

    /// The committed offset a new owner of a partition starts from.
    pub fn fetch_offset(&self, group: &str, topic: &str, partition: i32) -> i64 {
        self.groups
            .committed(group, topic, partition)
            .map_or(0, |v| v.offset)
    }
}

/// The same answer as an error: its records never reached the replicas.
fn not_coordinator(answer: Answer) -> Answer {
    let code = ErrorCode::NotCoordinator;
    match answer {
        Answer::Join(result) => Answer::Join(JoinResult::error(code, &result.member_id)),
        Answer::Sync(_) => Answer::Sync(SyncResult::error(code)),
        Answer::Heartbeat(_) => Answer::Heartbeat(Err(code)),
        Answer::Leave(_) => Answer::Leave(Err(code)),
        Answer::Commit { group, commits, .. } => Answer::Commit {
            group,
            commits,
            result: Err(code),
        },
        Answer::ConsumerHeartbeat(_) => {
            Answer::ConsumerHeartbeat(HeartbeatResult::error(code, "not committed"))
        }
    }
}
