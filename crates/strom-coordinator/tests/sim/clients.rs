//! Simulated group members: classic consumers (JoinGroup/SyncGroup/Heartbeat/LeaveGroup,
//! static and dynamic, with a leader that assigns `orders` round-robin) and KIP-848
//! consumers (ConsumerGroupHeartbeat). They behave as well-meaning clients do, except that
//! they stall, crash, restart and lose answers; an incarnation that lost its membership
//! may still send a commit later (a zombie), which the coordinator must refuse or which
//! must at least not move an offset backwards.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use strom_protocol::ErrorCode;
use uuid::Uuid;

use super::world::{
    Answer, To, World, CLASSIC_GROUP, CONSUMER_GROUP, EVENTS, ORDERS, ORDERS_PARTITIONS,
};
use super::Rng;
use strom_coordinator::group::assignor::Assignment;
use strom_coordinator::group::classic::{JoinGroup, SyncGroup};
use strom_coordinator::group::consumer::{Heartbeat, LEAVE_EPOCH, STATIC_LEAVE_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not in the group (or must rejoin): the next act sends JoinGroup.
    Out,
    /// Joined: the next act sends SyncGroup.
    AwaitSync,
    Stable,
}

/// What an earlier incarnation of a client still holds: enough to send a stale commit.
#[derive(Debug, Clone)]
pub struct Creds {
    pub member_id: String,
    pub instance: Option<String>,
    pub generation: i32,
    pub commits: Vec<(String, i32, i64)>,
}

#[derive(Debug)]
pub struct ClassicClient {
    pub instance: Option<String>,
    pub member_id: String,
    pub generation: i32,
    pub phase: Phase,
    pub owned: Vec<i32>,
    pub positions: BTreeMap<i32, i64>,
    pub inflight: Option<u64>,
    pub busy_until: i64,
    /// Member list, when the last JoinGroup made this client the leader.
    pub leader_of: Option<Vec<String>>,
    pub zombies: Vec<Creds>,
}

impl ClassicClient {
    pub fn new(index: usize, is_static: bool) -> Self {
        ClassicClient {
            instance: is_static.then(|| format!("classic-instance-{index}")),
            member_id: String::new(),
            generation: -1,
            phase: Phase::Out,
            owned: Vec::new(),
            positions: BTreeMap::new(),
            inflight: None,
            busy_until: 0,
            leader_of: None,
            zombies: Vec::new(),
        }
    }

    fn creds(&self) -> Creds {
        Creds {
            member_id: self.member_id.clone(),
            instance: self.instance.clone(),
            generation: self.generation,
            commits: self
                .owned
                .iter()
                .map(|p| {
                    (
                        ORDERS.to_string(),
                        *p,
                        self.positions.get(p).copied().unwrap_or(0),
                    )
                })
                .collect(),
        }
    }

    /// Leaves the generation (eager protocol: everything is revoked), leaving a possible
    /// zombie behind with what it owned: a late commit of the old generation (or of the
    /// old member id, when it drops it).
    fn drop_out(&mut self, forget_id: bool) {
        if !self.owned.is_empty() {
            let creds = self.creds();
            self.zombies.push(creds);
        }
        self.owned.clear();
        self.phase = Phase::Out;
        self.leader_of = None;
        if forget_id {
            self.member_id.clear();
        }
    }
}

fn encode_partitions(partitions: &[i32]) -> Bytes {
    let mut buf = BytesMut::new();
    for p in partitions {
        buf.put_i32(*p);
    }
    buf.freeze()
}

pub fn decode_partitions(mut bytes: &[u8]) -> Vec<i32> {
    let mut out = Vec::new();
    while bytes.remaining() >= 4 {
        out.push(bytes.get_i32());
    }
    out
}

#[derive(Debug)]
pub struct ConsumerClient {
    pub index: usize,
    pub instance: Option<String>,
    pub member_id: String,
    pub epoch: i32,
    pub owned: Assignment,
    pub subscription: Vec<String>,
    /// Subscribes by regular expression instead (KIP-848, anchored like Java's).
    pub regex: Option<String>,
    pub subscription_sent: bool,
    pub assignor: Option<String>,
    pub positions: BTreeMap<(Uuid, i32), i64>,
    pub inflight: Option<u64>,
    pub busy_until: i64,
    pub zombies: Vec<Creds>,
}

impl ConsumerClient {
    pub fn new(index: usize, is_static: bool, rng: &mut Rng) -> Self {
        let assignor = match rng.below(3) {
            0 => None,
            1 => Some(strom_coordinator::group::assignor::UNIFORM.to_string()),
            _ => Some(strom_coordinator::group::assignor::RANGE.to_string()),
        };
        ConsumerClient {
            index,
            instance: is_static.then(|| format!("consumer-instance-{index}")),
            member_id: String::new(),
            epoch: 0,
            owned: Assignment::new(),
            subscription: vec![EVENTS.to_string()],
            regex: rng.chance(25).then(|| "ev.*".to_string()),
            subscription_sent: false,
            assignor,
            positions: BTreeMap::new(),
            inflight: None,
            busy_until: 0,
            zombies: Vec::new(),
        }
    }

    fn creds(&self, world_topics: &BTreeMap<String, (Uuid, i32)>) -> Creds {
        let commits = self
            .owned
            .iter()
            .flat_map(|(topic, partitions)| partitions.iter().map(move |p| (*topic, *p)))
            .filter_map(|(topic, p)| {
                let name = world_topics
                    .iter()
                    .find(|(_, (id, _))| *id == topic)
                    .map(|(name, _)| name.clone())?;
                Some((
                    name,
                    p,
                    self.positions.get(&(topic, p)).copied().unwrap_or(0),
                ))
            })
            .collect();
        Creds {
            member_id: self.member_id.clone(),
            instance: None,
            generation: self.epoch,
            commits,
        }
    }
}

impl World {
    /// One action of classic client `i`.
    pub fn classic_act(&mut self, i: usize) {
        if self.classic[i].inflight.is_some() || self.classic[i].busy_until > self.now {
            return;
        }
        if !self.classic[i].zombies.is_empty() && self.rng.chance(10) {
            let creds = self.classic[i].zombies.remove(0);
            self.trace(format!("classic {i}: zombie commit as {}", creds.member_id));
            self.offset_commit(
                To::Zombie,
                CLASSIC_GROUP,
                &creds.member_id,
                creds.instance.as_deref(),
                creds.generation,
                creds.commits,
            );
            return;
        }
        match self.classic[i].phase {
            Phase::Out => self.classic_join(i),
            Phase::AwaitSync => self.classic_sync(i),
            Phase::Stable => match self.rng.below(100) {
                0..=44 => self.classic_heartbeat(i),
                45..=74 => self.classic_commit(i),
                75..=78 => self.classic_leave(i),
                79..=82 => {
                    let client = &mut self.classic[i];
                    client.drop_out(true);
                    client.inflight = None;
                    client.busy_until = self.now + self.rng.below(20_000) as i64;
                    self.trace(format!("classic {i}: crashes (restarts later)"));
                }
                83..=86 => {
                    let stall = 3000 + self.rng.below(20_000) as i64;
                    self.classic[i].busy_until = self.now + stall;
                    self.trace(format!("classic {i}: stalls {stall} ms"));
                }
                87..=89 => {
                    self.classic[i].drop_out(false);
                    self.classic_join(i);
                }
                _ => self.classic_heartbeat(i),
            },
        }
    }

    fn classic_join(&mut self, i: usize) {
        let id = self.new_id();
        let client = &mut self.classic[i];
        client.inflight = Some(id);
        let request = JoinGroup {
            group_id: CLASSIC_GROUP.to_string(),
            member_id: client.member_id.clone(),
            group_instance_id: client.instance.clone(),
            client_id: format!("classic-{i}"),
            client_host: "sim".to_string(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 15_000,
            protocol_type: "consumer".to_string(),
            protocols: vec![("range".to_string(), Bytes::from_static(b"orders"))],
            require_known_member_id: client.instance.is_none() && i % 2 == 0,
        };
        self.trace(format!("classic {i}: join as '{}'", request.member_id));
        self.waiters.insert(id, i);
        let actions = self.groups.join(self.now, request, id);
        self.group_actions(actions);
    }

    fn classic_sync(&mut self, i: usize) {
        let id = self.new_id();
        let client = &mut self.classic[i];
        client.inflight = Some(id);
        let assignments = match &client.leader_of {
            // A static leader that came back to a stable group is told the group is
            // unchanged (no member list): nothing to assign.
            Some(members) if members.is_empty() => Vec::new(),
            None => Vec::new(),
            Some(members) => {
                let mut members = members.clone();
                members.sort();
                let mut given: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for p in 0..ORDERS_PARTITIONS {
                    let member = &members[p as usize % members.len()];
                    given.entry(member.clone()).or_default().push(p);
                }
                given
                    .into_iter()
                    .map(|(member, partitions)| (member, encode_partitions(&partitions)))
                    .collect()
            }
        };
        let request = SyncGroup {
            group_id: CLASSIC_GROUP.to_string(),
            generation_id: client.generation,
            member_id: client.member_id.clone(),
            group_instance_id: client.instance.clone(),
            protocol_type: Some("consumer".to_string()),
            protocol_name: Some("range".to_string()),
            assignments,
        };
        let line = format!(
            "classic {i}: sync {} gen {} leader={}",
            request.member_id,
            request.generation_id,
            client.leader_of.is_some()
        );
        self.trace(line);
        self.waiters.insert(id, i);
        let actions = self.groups.sync(self.now, request, id);
        self.group_actions(actions);
    }

    fn classic_heartbeat(&mut self, i: usize) {
        let id = self.new_id();
        let client = &mut self.classic[i];
        client.inflight = Some(id);
        let result = self.groups.heartbeat(
            self.now,
            CLASSIC_GROUP,
            &client.member_id,
            client.instance.as_deref(),
            client.generation,
        );
        self.park(To::Classic(i, id), Answer::Heartbeat(result));
    }

    fn classic_commit(&mut self, i: usize) {
        let id = self.new_id();
        let advance: Vec<i64> = (0..ORDERS_PARTITIONS)
            .map(|_| 1 + self.rng.below(5) as i64)
            .collect();
        let client = &mut self.classic[i];
        if client.owned.is_empty() {
            return;
        }
        client.inflight = Some(id);
        for p in client.owned.clone() {
            *client.positions.entry(p).or_default() += advance[p as usize];
        }
        let creds = client.creds();
        self.offset_commit(
            To::Classic(i, id),
            CLASSIC_GROUP,
            &creds.member_id,
            creds.instance.as_deref(),
            creds.generation,
            creds.commits,
        );
    }

    fn classic_leave(&mut self, i: usize) {
        let id = self.new_id();
        let client = &self.classic[i];
        let members = vec![(client.member_id.clone(), client.instance.clone())];
        self.trace(format!("classic {i}: leaves as {}", client.member_id));
        let (result, actions) = self.groups.leave(self.now, CLASSIC_GROUP, &members);
        self.group_actions(actions);
        let result = result.and_then(|r| r.first().copied().flatten().map_or(Ok(()), Err));
        self.park(To::Classic(i, id), Answer::Leave(result));
        let client = &mut self.classic[i];
        client.drop_out(true);
        client.inflight = None;
        client.busy_until = self.now + self.rng.below(20_000) as i64;
    }

    pub fn classic_lost(&mut self, i: usize, request: u64) {
        if self.classic[i].inflight == Some(request) {
            self.classic[i].inflight = None;
        }
    }

    pub fn classic_answer(&mut self, i: usize, request: u64, answer: Answer) {
        if self.classic[i].inflight != Some(request) {
            return;
        }
        self.classic[i].inflight = None;
        let error = match answer {
            Answer::Join(result) => {
                self.trace(format!(
                    "classic {i}: join answer {:?} gen {} member {}",
                    result.error, result.generation_id, result.member_id
                ));
                let client = &mut self.classic[i];
                match result.error {
                    None => {
                        client.member_id = result.member_id.clone();
                        client.generation = result.generation_id;
                        client.leader_of = (result.leader == result.member_id)
                            .then(|| result.members.iter().map(|(id, _, _)| id.clone()).collect());
                        client.owned.clear();
                        client.phase = Phase::AwaitSync;
                        None
                    }
                    Some(ErrorCode::MemberIdRequired) => {
                        client.member_id = result.member_id.clone();
                        client.phase = Phase::Out;
                        None
                    }
                    Some(code) => Some(code),
                }
            }
            Answer::Sync(result) => {
                self.trace(format!("classic {i}: sync answer {:?}", result.error));
                match result.error {
                    None => {
                        self.count("classic assignments received");
                        let owned = decode_partitions(&result.assignment);
                        let positions: Vec<(i32, i64)> = owned
                            .iter()
                            .map(|p| (*p, self.fetch_offset(CLASSIC_GROUP, ORDERS, *p)))
                            .collect();
                        let client = &mut self.classic[i];
                        // Back in the same generation (a rejoin that changed nothing), a
                        // late commit of it is this member's own business, as in Kafka.
                        let (member_id, generation) = (client.member_id.clone(), client.generation);
                        client
                            .zombies
                            .retain(|z| z.member_id != member_id || z.generation != generation);
                        client.owned = owned.clone();
                        client.positions = positions.into_iter().collect();
                        client.phase = Phase::Stable;
                        // A static member's restarts replace it within its generation.
                        let member = client.instance.clone().unwrap_or(client.member_id.clone());
                        let generation = client.generation;
                        if !self.answer_predates_delete {
                            if let Err(e) =
                                self.oracle
                                    .synced(CLASSIC_GROUP, generation, &member, &owned)
                            {
                                self.violation.get_or_insert(e);
                            }
                        }
                        None
                    }
                    Some(code) => Some(code),
                }
            }
            Answer::Heartbeat(result) | Answer::Leave(result) => result.err(),
            Answer::Commit { result, .. } => result.err(),
            Answer::ConsumerHeartbeat(_) => None,
        };
        let Some(code) = error else {
            return;
        };
        let busy = self.now + self.rng.below(10_000) as i64;
        let client = &mut self.classic[i];
        match code {
            ErrorCode::UnknownMemberId => client.drop_out(true),
            ErrorCode::FencedInstanceId | ErrorCode::GroupMaxSizeReached => {
                *self.stats.entry("classic fenced or refused").or_default() += 1;
                let client = &mut self.classic[i];
                client.drop_out(true);
                client.busy_until = busy;
            }
            ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration => client.drop_out(false),
            // Retried as is: JoinGroup and SyncGroup again, heartbeats and commits later.
            _ if client.phase != Phase::Stable => {
                client.phase = match client.phase {
                    Phase::AwaitSync if code != ErrorCode::NotCoordinator => Phase::Out,
                    phase => phase,
                }
            }
            _ => {}
        }
    }

    /// One action of KIP-848 client `i`.
    pub fn consumer_act(&mut self, i: usize) {
        if self.consumers[i].inflight.is_some() || self.consumers[i].busy_until > self.now {
            return;
        }
        if !self.consumers[i].zombies.is_empty() && self.rng.chance(10) {
            let creds = self.consumers[i].zombies.remove(0);
            let client = &self.consumers[i];
            if creds.member_id == client.member_id && creds.generation == client.epoch {
                // Still this member's epoch (revocations keep it, as in Kafka): a commit
                // of revoked partitions now would be the client's own mistake.
                return;
            }
            self.trace(format!(
                "consumer {i}: zombie commit as {}",
                creds.member_id
            ));
            self.offset_commit(
                To::Zombie,
                CONSUMER_GROUP,
                &creds.member_id,
                None,
                creds.generation,
                creds.commits,
            );
            return;
        }
        if self.consumers[i].epoch == 0 {
            // Rejoining under the same member id, this process leaves its old commits
            // behind: they would be sent before the rejoin or not at all. (Its epochs can
            // repeat once the group is deleted and created again, as in Kafka.)
            let client = &mut self.consumers[i];
            let member_id = client.member_id.clone();
            client.zombies.retain(|z| z.member_id != member_id);
            return self.consumer_heartbeat(i, 0);
        }
        match self.rng.below(100) {
            0..=59 => {
                let epoch = self.consumers[i].epoch;
                self.consumer_heartbeat(i, epoch)
            }
            60..=79 => self.consumer_commit(i),
            80..=83 => self.consumer_leave(i, LEAVE_EPOCH),
            84..=86 if self.consumers[i].instance.is_some() => {
                self.consumer_leave(i, STATIC_LEAVE_EPOCH)
            }
            87..=89 => {
                let creds = self.consumers[i].creds(&self.topics);
                let busy = self.now + self.rng.below(20_000) as i64;
                let client = &mut self.consumers[i];
                client.zombies.push(creds);
                client.owned.clear();
                client.epoch = 0;
                client.member_id.clear();
                client.subscription_sent = false;
                client.busy_until = busy;
                self.trace(format!("consumer {i}: crashes (restarts later)"));
            }
            90..=93 => {
                let stall = 3000 + self.rng.below(20_000) as i64;
                self.consumers[i].busy_until = self.now + stall;
                self.trace(format!("consumer {i}: stalls {stall} ms"));
            }
            94..=96 => {
                let client = &mut self.consumers[i];
                if let Some(regex) = &mut client.regex {
                    *regex = if regex == "ev.*" { "(ev|or).*" } else { "ev.*" }.to_string();
                } else if client.subscription.len() == 1 {
                    client.subscription.push(ORDERS.to_string());
                } else {
                    client.subscription.truncate(1);
                }
                client.subscription_sent = false;
                let epoch = client.epoch;
                self.consumer_heartbeat(i, epoch);
            }
            _ => {}
        }
    }

    fn consumer_heartbeat(&mut self, i: usize, epoch: i32) {
        let id = self.new_id();
        let client = &mut self.consumers[i];
        client.inflight = Some(id);
        let joining = epoch == 0;
        let request = Heartbeat {
            group_id: CONSUMER_GROUP.to_string(),
            member_id: client.member_id.clone(),
            member_epoch: epoch,
            instance_id: client.instance.clone(),
            rack_id: None,
            rebalance_timeout_ms: if joining { 15_000 } else { -1 },
            subscribed_topic_names: (client.regex.is_none()
                && (joining || !client.subscription_sent))
                .then(|| client.subscription.clone()),
            subscribed_topic_regex: (joining || !client.subscription_sent)
                .then(|| client.regex.clone())
                .flatten(),
            server_assignor: client.assignor.clone(),
            owned: Some(
                client
                    .owned
                    .iter()
                    .map(|(t, ps)| (*t, ps.iter().copied().collect()))
                    .collect(),
            ),
            client_id: format!("consumer-{i}"),
            client_host: "sim".to_string(),
        };
        let (result, actions) = self
            .groups
            .consumer_heartbeat(self.now, request, &self.topics);
        self.group_actions(actions);
        self.trace(format!(
            "consumer {i}: heartbeat '{}' epoch {epoch} -> {:?} epoch {} {:?}",
            self.consumers[i].member_id, result.error, result.member_epoch, result.assignment
        ));
        self.park(To::Consumer(i, id), Answer::ConsumerHeartbeat(result));
    }

    fn consumer_commit(&mut self, i: usize) {
        let id = self.new_id();
        let client = &self.consumers[i];
        if client.owned.is_empty() {
            return;
        }
        let keys: Vec<(Uuid, i32)> = client
            .owned
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
            .collect();
        for key in keys {
            let step = 1 + self.rng.below(5) as i64;
            *self.consumers[i].positions.entry(key).or_default() += step;
        }
        self.consumers[i].inflight = Some(id);
        let creds = self.consumers[i].creds(&self.topics);
        self.offset_commit(
            To::Consumer(i, id),
            CONSUMER_GROUP,
            &creds.member_id,
            None,
            creds.generation,
            creds.commits,
        );
    }

    fn consumer_leave(&mut self, i: usize, epoch: i32) {
        self.consumer_heartbeat(i, epoch);
        let busy = self.now + self.rng.below(20_000) as i64;
        let client = &mut self.consumers[i];
        client.inflight = None;
        client.owned.clear();
        client.epoch = 0;
        client.member_id.clear();
        client.subscription_sent = false;
        client.busy_until = busy;
    }

    pub fn consumer_lost(&mut self, i: usize, request: u64) {
        if self.consumers[i].inflight == Some(request) {
            self.consumers[i].inflight = None;
        }
    }

    pub fn consumer_answer(&mut self, i: usize, request: u64, answer: Answer) {
        if self.consumers[i].inflight != Some(request) {
            return;
        }
        self.consumers[i].inflight = None;
        let result = match answer {
            Answer::ConsumerHeartbeat(result) => result,
            // Commit errors show up on the next heartbeat.
            _ => return,
        };
        match result.error {
            None => {
                let added: Vec<(Uuid, i32)> = result
                    .assignment
                    .iter()
                    .flat_map(|a| a.iter())
                    .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
                    .filter(|(t, p)| {
                        !self.consumers[i]
                            .owned
                            .get(t)
                            .is_some_and(|set| set.contains(p))
                    })
                    .collect();
                let fetched: Vec<((Uuid, i32), i64)> = added
                    .into_iter()
                    .map(|(t, p)| {
                        let name = self
                            .topics
                            .iter()
                            .find(|(_, (id, _))| *id == t)
                            .map(|(n, _)| n.clone())
                            .unwrap_or_default();
                        ((t, p), self.fetch_offset(CONSUMER_GROUP, &name, p))
                    })
                    .collect();
                // Partitions given up leave a possible late commit behind; its epoch is
                // stale once the revocation is reported (the member moves on then).
                if let Some(assignment) = &result.assignment {
                    let mut creds = self.consumers[i].creds(&self.topics);
                    creds.commits.retain(|(name, p, _)| {
                        !self.topics.get(name).is_some_and(|(id, _)| {
                            assignment.get(id).is_some_and(|set| set.contains(p))
                        })
                    });
                    if !creds.commits.is_empty() {
                        self.consumers[i].zombies.push(creds);
                    }
                }
                let client = &mut self.consumers[i];
                if let Some(member_id) = result.member_id {
                    client.member_id = member_id;
                }
                client.epoch = result.member_epoch;
                client.subscription_sent = true;
                if let Some(assignment) = result.assignment {
                    *self
                        .stats
                        .entry("consumer assignments received")
                        .or_default() += 1;
                    let client = &mut self.consumers[i];
                    client.owned = assignment;
                    client.positions.extend(fetched);
                }
            }
            Some(ErrorCode::FencedMemberEpoch) | Some(ErrorCode::UnknownMemberId) => {
                self.count("consumer members fenced");
                let creds = self.consumers[i].creds(&self.topics);
                let client = &mut self.consumers[i];
                if !client.owned.is_empty() {
                    client.zombies.push(creds);
                }
                client.owned.clear();
                client.epoch = 0;
                client.subscription_sent = false;
            }
            Some(ErrorCode::GroupMaxSizeReached) => {
                self.consumers[i].busy_until = self.now + self.rng.below(10_000) as i64;
            }
            Some(_) => {}
        }
    }
}
