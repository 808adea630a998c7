//! The invariants, checked after every step, and what the simulation remembers to check
//! them (the [`Oracle`]): acknowledged commits, the assignments each classic generation
//! handed out, which transactions were asked to commit, which producer incarnation is the
//! newest.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::clients::decode_partitions;
use super::log;
use super::txn::{DataEntry, DataPartition, TxnKey};
use super::world::{World, CLASSIC_GROUP, CONSUMER_GROUP, ORDERS_PARTITIONS, TXN_GROUP};
use strom_coordinator::group::classic::ClassicState;
use strom_coordinator::group::consumer_records::encode_snapshot;
use strom_coordinator::group::coordinator::{Coordinator, Group};

#[derive(Debug, Default)]
pub struct Oracle {
    /// (group, topic, partition) -> the highest offset whose commit reached the replicas
    /// and was answered.
    floors: HashMap<(String, String, i32), i64>,
    /// Where in the offsets log the last explicit reset or delete of an offset (or of its
    /// whole group) was appended: commits appended before it no longer count.
    reset_at: HashMap<(String, String, i32), usize>,
    deleted_at: HashMap<String, usize>,
    /// (group, generation) -> member -> partitions, from successful SyncGroup answers.
    generations: HashMap<(String, i32), BTreeMap<String, Vec<i32>>>,
    /// Transactional offset value -> the transaction that committed it.
    txn_offsets: HashMap<i64, TxnKey>,
    next_txn_offset: i64,
    /// Transactions an EndTxn(commit) was accepted for.
    commits_requested: HashSet<TxnKey>,
    /// Per producer: the newest incarnation that got an InitProducerId answer.
    latest_init: HashMap<usize, u32>,
    pub last_txn_tick: i64,
}

impl Oracle {
    /// A commit appended before offsets-log position `appended` reached the replicas.
    pub fn acked_commit(
        &mut self,
        group: &str,
        topic: &str,
        partition: i32,
        offset: i64,
        appended: usize,
    ) {
        let key = (group.to_string(), topic.to_string(), partition);
        let reset = self
            .reset_at
            .get(&key)
            .copied()
            .max(self.deleted_at.get(group).copied());
        if reset.is_some_and(|at| appended <= at) {
            return;
        }
        let floor = self
            .floors
            .entry((group.to_string(), topic.to_string(), partition))
            .or_insert(offset);
        *floor = (*floor).max(offset);
    }

    /// An explicit reset or delete of an offset, appended at `at`: it may go down.
    pub fn reset(&mut self, group: &str, topic: &str, partition: i32, at: usize) {
        let key = (group.to_string(), topic.to_string(), partition);
        self.floors.remove(&key);
        self.reset_at.insert(key, at);
    }

    /// A group and all its offsets deleted, appended at `at`.
    pub fn deleted(&mut self, group: &str, at: usize) {
        self.floors.retain(|(g, _, _), _| g != group);
        // A group created again counts its generations from the start.
        self.generations.retain(|(g, _), _| g != group);
        self.deleted_at.insert(group.to_string(), at);
    }

    /// Whether the group was deleted at or after offsets-log position `at`.
    pub fn deleted_since(&self, group: &str, at: usize) -> bool {
        self.deleted_at.get(group).is_some_and(|d| *d >= at)
    }

    /// A member got its assignment for `generation`: no other member of that generation
    /// may have any of it, and the member gets one assignment per generation.
    pub fn synced(
        &mut self,
        group: &str,
        generation: i32,
        member: &str,
        partitions: &[i32],
    ) -> Result<(), String> {
        let members = self
            .generations
            .entry((group.to_string(), generation))
            .or_default();
        for (other, theirs) in members.iter() {
            if other == member {
                if theirs != partitions {
                    return Err(format!(
                        "{group}: member {member} got two assignments in generation {generation}: {theirs:?} and {partitions:?}"
                    ));
                }
                continue;
            }
            if let Some(p) = partitions.iter().find(|p| theirs.contains(p)) {
                return Err(format!(
                    "{group}: partition {p} given to {other} and {member} in generation {generation}"
                ));
            }
        }
        members.insert(member.to_string(), partitions.to_vec());
        Ok(())
    }

    pub fn txn_offset(&mut self, txn: TxnKey) -> i64 {
        self.next_txn_offset += 1;
        self.txn_offsets.insert(self.next_txn_offset, txn);
        self.next_txn_offset
    }

    pub fn commit_requested(&mut self, txn: TxnKey) {
        self.commits_requested.insert(txn);
    }

    pub fn initialised(&mut self, producer: usize, incarnation: u32) {
        let latest = self.latest_init.entry(producer).or_insert(incarnation);
        *latest = (*latest).max(incarnation);
    }

    /// Whether a newer incarnation than `incarnation` was given its producer id: the older
    /// one is fenced.
    pub fn initialised_after(&self, producer: usize, incarnation: u32) -> bool {
        self.latest_init
            .get(&producer)
            .is_some_and(|latest| *latest > incarnation)
    }

    /// An EndTxn was answered with success: every write of the transaction has its marker,
    /// with the same outcome.
    pub fn ended(&self, data: &[DataPartition], txn: TxnKey, commit: bool) -> Result<(), String> {
        let outcomes = outcomes(data);
        for (index, partition) in data.iter().enumerate() {
            for (at, entry) in partition.entries.iter().enumerate() {
                let DataEntry::Data { txn: key, .. } = entry else {
                    continue;
                };
                if *key != txn {
                    continue;
                }
                match outcomes.get(&(index, at)) {
                    None => {
                        return Err(format!(
                            "transaction {txn:?} was answered as ended but its write at data-{index}@{at} has no marker"
                        ))
                    }
                    Some(outcome) if *outcome != commit => {
                        return Err(format!(
                            "transaction {txn:?} was answered as {} but its write at data-{index}@{at} got the other marker",
                            if commit { "committed" } else { "aborted" }
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }
}

/// (partition, entry index) of each data write -> whether its transaction committed (the
/// next marker of its producer id), for decided writes.
fn outcomes(data: &[DataPartition]) -> HashMap<(usize, usize), bool> {
    decided_writes(data)
        .into_iter()
        .map(|(at, (commit, _, _))| (at, commit))
        .collect()
}

/// Like [`outcomes`], with the epochs of the write and of its marker.
fn decided_writes(data: &[DataPartition]) -> HashMap<(usize, usize), (bool, i16, i16)> {
    let mut decided = HashMap::new();
    for (index, partition) in data.iter().enumerate() {
        let mut open: HashMap<i64, Vec<(usize, i16)>> = HashMap::new();
        for (at, entry) in partition.entries.iter().enumerate() {
            match entry {
                DataEntry::Data {
                    producer_id, epoch, ..
                } => open.entry(*producer_id).or_default().push((at, *epoch)),
                DataEntry::Marker {
                    producer_id,
                    epoch,
                    commit,
                } => {
                    for (write, written_at) in open.remove(producer_id).unwrap_or_default() {
                        decided.insert((index, write), (*commit, written_at, *epoch));
                    }
                }
            }
        }
    }
    decided
}

impl World {
    /// Every invariant; `Err` names the first one broken.
    pub fn check(&mut self) -> Result<(), String> {
        if let Some(violation) = &self.violation {
            return Err(violation.clone());
        }
        self.check_offsets()?;
        self.check_classic()?;
        self.check_consumer_group()?;
        self.check_transactions()
    }

    /// Committed offsets never go backwards, and an acknowledged commit is never lost.
    fn check_offsets(&self) -> Result<(), String> {
        for ((group, topic, partition), floor) in &self.oracle.floors {
            match self.groups.committed(group, topic, *partition) {
                None => {
                    return Err(format!(
                        "{group}: the acknowledged offset {floor} of {topic}-{partition} is lost"
                    ))
                }
                Some(value) if value.offset < *floor => {
                    return Err(format!(
                        "{group}: the committed offset of {topic}-{partition} went backwards from {floor} to {}",
                        value.offset
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// A stable classic group's assignments are disjoint and cover `orders`.
    fn check_classic(&self) -> Result<(), String> {
        let Some(Group::Classic(group)) = self.groups.groups.get(CLASSIC_GROUP) else {
            return Ok(());
        };
        if group.state != ClassicState::Stable {
            return Ok(());
        }
        let mut seen: BTreeMap<i32, &str> = BTreeMap::new();
        for member in group.members.values() {
            for p in decode_partitions(&member.assignment) {
                if let Some(other) = seen.insert(p, &member.member_id) {
                    return Err(format!(
                        "{CLASSIC_GROUP} is stable in generation {} with partition {p} assigned to {other} and {}",
                        group.generation_id, member.member_id
                    ));
                }
            }
        }
        if seen.len() != ORDERS_PARTITIONS as usize {
            return Err(format!(
                "{CLASSIC_GROUP} is stable in generation {} but only {:?} of {ORDERS_PARTITIONS} partitions are assigned",
                group.generation_id,
                seen.keys().collect::<Vec<_>>()
            ));
        }
        Ok(())
    }

    /// KIP-848: no partition is held by two members (assigned or not yet revoked), nor
    /// owned by two clients the coordinator counts as members; a stable group assigns
    /// every partition of its subscribed topics.
    fn check_consumer_group(&self) -> Result<(), String> {
        let Some(Group::Consumer(group)) = self.groups.groups.get(CONSUMER_GROUP) else {
            return Ok(());
        };
        let mut held: BTreeMap<(uuid::Uuid, i32), &str> = BTreeMap::new();
        for member in group.members.values() {
            for (topic, partitions) in member.assigned.iter().chain(&member.pending_revocation) {
                for p in partitions {
                    if let Some(other) = held.insert((*topic, *p), &member.member_id) {
                        if other != member.member_id {
                            return Err(format!(
                                "{CONSUMER_GROUP}: partition {topic}-{p} held by {other} and {}",
                                member.member_id
                            ));
                        }
                    }
                }
            }
        }
        let mut owned: BTreeMap<(uuid::Uuid, i32), usize> = BTreeMap::new();
        for client in &self.consumers {
            if !group.members.contains_key(&client.member_id) {
                continue;
            }
            for (topic, partitions) in &client.owned {
                for p in partitions {
                    if let Some(other) = owned.insert((*topic, *p), client.index) {
                        return Err(format!(
                            "{CONSUMER_GROUP}: clients {other} and {} both own {topic}-{p}",
                            client.index
                        ));
                    }
                }
            }
        }
        if group.state_name() == "Stable" {
            let mut wanted = BTreeSet::new();
            for (name, id, count) in subscription_metadata(&encode_snapshot(group)) {
                if group.members.values().any(|m| m.is_subscribed_to(&name)) {
                    wanted.extend((0..count).map(|p| (id, p)));
                }
            }
            let assigned: BTreeSet<(uuid::Uuid, i32)> = group
                .members
                .values()
                .flat_map(|m| m.assigned.iter())
                .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
                .collect();
            if assigned != wanted {
                return Err(format!(
                    "{CONSUMER_GROUP} is stable at epoch {} but assigns {assigned:?}, not {wanted:?}",
                    group.group_epoch
                ));
            }
        }
        Ok(())
    }

    /// A transaction's writes all get the same marker; only transactions asked to commit
    /// commit; transactional offsets become visible only with their transaction's commit.
    fn check_transactions(&self) -> Result<(), String> {
        let decided = decided_writes(&self.data);
        let mut by_txn: HashMap<TxnKey, bool> = HashMap::new();
        for ((index, at), (commit, written_at, marker_at)) in &decided {
            if marker_at < written_at {
                return Err(format!(
                    "the marker ending data-{index}@{at} has epoch {marker_at}, older than the write's {written_at}"
                ));
            }
            let DataEntry::Data { txn, .. } = &self.data[*index].entries[*at] else {
                continue;
            };
            if let Some(other) = by_txn.insert(*txn, *commit) {
                if other != *commit {
                    return Err(format!(
                        "transaction {txn:?} got both a commit and an abort marker"
                    ));
                }
            }
            if *commit && !self.oracle.commits_requested.contains(txn) {
                return Err(format!(
                    "transaction {txn:?} committed (data-{index}@{at}) though no commit of it was accepted"
                ));
            }
        }
        if let Some(offsets) = self.groups.offsets.get(TXN_GROUP) {
            for ((topic, partition), value) in offsets {
                let Some(txn) = self.oracle.txn_offsets.get(&value.offset) else {
                    continue;
                };
                if !self.oracle.commits_requested.contains(txn) || by_txn.get(txn) == Some(&false) {
                    return Err(format!(
                        "{TXN_GROUP}: offset {} of {topic}-{partition} from transaction {txn:?} is visible though it did not commit",
                        value.offset
                    ));
                }
            }
        }
        Ok(())
    }

    /// Records the first mismatch between the live group state and a replay of every
    /// record the coordinator wrote (what a new leader would load if all of it arrived).
    pub fn check_group_replay(&mut self, when: &str) {
        let replayed =
            log::replay_groups(&self.offsets_log.entries, self.config.clone(), 0, self.now);
        if let Err(message) = compare_groups(&self.groups, &replayed) {
            self.violation
                .get_or_insert(format!("{when}: replayed group state differs: {message}"));
        }
    }

    pub fn check_txn_replay(&mut self, when: &str) {
        let replayed = log::replay_txns(&self.txn_log.entries, self.limits);
        let ids: BTreeSet<&String> = self
            .txns
            .transactions
            .keys()
            .chain(replayed.transactions.keys())
            .collect();
        for id in ids {
            let normalise = |m: Option<&strom_coordinator::txn::state::TxnMetadata>| {
                m.cloned().map(|mut m| {
                    // Not persisted: the epoch before the last bump; and the previous
                    // producer id, which only transaction version 2 reads, is written
                    // only while that version is in use (value v1).
                    m.last_producer_epoch = -1;
                    if m.client_transaction_version
                        < strom_coordinator::txn::state::TRANSACTION_VERSION_2
                    {
                        m.previous_producer_id = -1;
                    }
                    m
                })
            };
            let live = normalise(self.txns.get(id));
            let again = normalise(replayed.get(id));
            if live != again {
                self.violation.get_or_insert(format!(
                    "{when}: replayed transaction state of {id} differs: live {live:?}, replayed {again:?}"
                ));
                return;
            }
        }
    }

    /// Lets the run settle (replicas catch up, timers run, no client acts), then checks
    /// what must hold at rest.
    pub fn finish(&mut self) -> Result<(), String> {
        for _ in 0..80 {
            self.offsets_log.replicate_to(usize::MAX);
            self.txn_log.replicate_to(usize::MAX);
            self.now += 1000;
            self.settle_step();
            self.check()?;
        }
        if let Some(id) = self.txns.preparing().first() {
            return Err(format!("transaction {id} is still preparing at rest"));
        }
        for (producer_id, pending) in &self.groups.pending_txn_offsets {
            let open = self.txns.transactions.values().any(|t| {
                t.producer_id == *producer_id
                    && t.state == strom_coordinator::txn::state::TxnState::Ongoing
            });
            if !open && !pending.is_empty() {
                return Err(format!(
                    "producer {producer_id} has no open transaction but {} pending offsets",
                    pending.len()
                ));
            }
        }
        self.check_group_replay("at rest");
        self.check_txn_replay("at rest");
        self.check()
    }

    /// Test support: an offset moved back below what was acknowledged.
    pub fn break_an_offset_for_the_test(&mut self) {
        self.oracle
            .acked_commit(CLASSIC_GROUP, "orders", 0, 1_000_000, usize::MAX);
        self.groups.apply_commit(
            CLASSIC_GROUP,
            "orders",
            0,
            strom_coordinator::group::records::OffsetValue {
                offset: 1,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 0,
            },
        );
    }
}

/// The topic metadata a consumer group computed its target from, read from the head of
/// its snapshot (version, two epochs, assignor, then name, id, partitions per topic).
fn subscription_metadata(snapshot: &[u8]) -> Vec<(String, uuid::Uuid, i32)> {
    use bytes::Buf;
    let mut buf = snapshot;
    let string = |buf: &mut &[u8]| {
        let len = buf.get_i16().max(0) as usize;
        let text = String::from_utf8_lossy(&buf[..len]).into_owned();
        buf.advance(len);
        text
    };
    buf.advance(2 + 4 + 4);
    string(&mut buf);
    let count = buf.get_i32();
    (0..count)
        .map(|_| {
            let name = string(&mut buf);
            let mut id = [0u8; 16];
            buf.copy_to_slice(&mut id);
            (name, uuid::Uuid::from_bytes(id), buf.get_i32())
        })
        .collect()
}

fn compare_groups(live: &Coordinator, replayed: &Coordinator) -> Result<(), String> {
    if live.offsets != replayed.offsets {
        return Err(format!(
            "offsets: live {:?}, replayed {:?}",
            live.offsets, replayed.offsets
        ));
    }
    let pending = |c: &Coordinator| {
        let mut all: Vec<(i64, String, String, i32, i64)> = c
            .pending_txn_offsets
            .iter()
            .flat_map(|(pid, offsets)| {
                offsets.iter().map(move |o| {
                    (
                        *pid,
                        o.group_id.clone(),
                        o.topic.clone(),
                        o.partition,
                        o.value.offset,
                    )
                })
            })
            .collect();
        all.sort();
        all
    };
    if pending(live) != pending(replayed) {
        return Err(format!(
            "pending transactional offsets: live {:?}, replayed {:?}",
            pending(live),
            pending(replayed)
        ));
    }
    for (id, group) in &live.groups {
        match (group, replayed.groups.get(id)) {
            (Group::Classic(live), Some(Group::Classic(again))) => {
                let durable = live.state == ClassicState::Stable
                    || (live.state == ClassicState::Empty && live.generation_id > 0);
                if !durable {
                    continue;
                }
                let mut a = live.to_record();
                let mut b = again.to_record();
                a.current_state_timestamp_ms = 0;
                b.current_state_timestamp_ms = 0;
                if a != b || live.state != again.state {
                    return Err(format!(
                        "classic group {id}: live {:?} {a:?}, replayed {:?} {b:?}",
                        live.state, again.state
                    ));
                }
            }
            (Group::Classic(live), None) => {
                // Only Stable (after SyncGroup) and an emptied group write their record.
                if live.state == ClassicState::Stable
                    || (live.state == ClassicState::Empty && live.generation_id > 0)
                {
                    return Err(format!(
                        "classic group {id} ({:?}, generation {}) is missing from the replay",
                        live.state, live.generation_id
                    ));
                }
            }
            (Group::Consumer(live), Some(Group::Consumer(again))) => {
                if encode_snapshot(live) != encode_snapshot(again) {
                    return Err(format!(
                        "consumer group {id}: live {live:?}, replayed {again:?}"
                    ));
                }
            }
            (live, again) => {
                return Err(format!(
                    "group {id} is {} live but {} in the replay",
                    live.type_name(),
                    again.map_or("missing", Group::type_name)
                ));
            }
        }
    }
    Ok(())
}
