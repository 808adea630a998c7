//! The classic rebalance protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup) as a
//! plain state machine: every method takes the time and the request, changes the group,
//! and pushes [`Action`]s (answers to delayed requests, records to write). Nothing here
//! sleeps or does I/O.
//!
//! States follow Kafka: Empty -> PreparingRebalance -> CompletingRebalance -> Stable, back
//! to PreparingRebalance on any membership change, Dead once deleted. Assignments are
//! computed by the leader client and passed through as opaque bytes.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use strom_protocol::ErrorCode;

pub use super::classic_messages::{
    subscription_topics, JoinGroup, JoinResult, SyncGroup, SyncResult,
};
use super::records::{GroupValue, MemberValue};
use super::{Action, GroupConfig, WaiterId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl ClassicState {
    /// The name Kafka uses in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
            ClassicState::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClassicMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    join_waiter: Option<WaiterId>,
    sync_waiter: Option<WaiterId>,
    heartbeat_deadline_ms: i64,
}

impl ClassicMember {
    /// Metadata of `protocol`, for DescribeGroups and the leader's JoinGroup answer.
    pub fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|p| self.protocols.iter().find(|(name, _)| name == p))
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug)]
pub struct ClassicGroup {
    pub group_id: String,
    pub state: ClassicState,
    pub state_timestamp_ms: i64,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    pub members: BTreeMap<String, ClassicMember>,
    /// group.instance.id -> member id of the static member holding it.
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the time they expire.
    pending_members: HashMap<String, i64>,
    join_deadline_ms: i64,
    /// While set, the first rebalance of an empty group waits for more members
    /// (`group.initial.rebalance.delay.ms`), but never past this time.
    initial_delay_until_ms: Option<i64>,
    sync_deadline_ms: Option<i64>,
}

impl ClassicGroup {
    pub fn new(group_id: &str, now_ms: i64) -> Self {
        ClassicGroup {
            group_id: group_id.to_string(),
            state: ClassicState::Empty,
            state_timestamp_ms: now_ms,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            join_deadline_ms: 0,
            initial_delay_until_ms: None,
            sync_deadline_ms: None,
        }
    }

    /// A group loaded from its metadata record: members come back with fresh session
    /// timers, so consumers that keep heartbeating carry on without a rebalance.
    pub fn from_record(group_id: &str, value: GroupValue, now_ms: i64) -> Self {
        let mut group = ClassicGroup::new(group_id, now_ms);
        group.generation_id = value.generation;
        group.protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
        group.protocol_name = value.protocol.clone();
        group.leader_id = value.leader;
        for member in value.members {
            if let Some(instance) = &member.group_instance_id {
                group
                    .static_members
                    .insert(instance.clone(), member.member_id.clone());
            }
            let protocols = match &value.protocol {
                Some(protocol) => vec![(protocol.clone(), member.subscription.clone())],
                None => Vec::new(),
            };
            group.members.insert(
                member.member_id.clone(),
                ClassicMember {
                    member_id: member.member_id,
                    group_instance_id: member.group_instance_id,
                    client_id: member.client_id,
                    client_host: member.client_host,
                    session_timeout_ms: member.session_timeout_ms,
                    rebalance_timeout_ms: member.rebalance_timeout_ms,
                    protocols,
                    assignment: member.assignment,
                    join_waiter: None,
                    sync_waiter: None,
                    heartbeat_deadline_ms: now_ms + member.session_timeout_ms as i64,
                },
            );
        }
        if !group.members.is_empty() {
            group.state = ClassicState::Stable;
        } else {
            group.leader_id = None;
        }
        group
    }

    /// The record Kafka writes for the group after each rebalance.
    pub fn to_record(&self) -> GroupValue {
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(self.protocol_name.as_deref()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending_members.is_empty()
    }

    fn transition(&mut self, state: ClassicState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    fn write(&self, actions: &mut Vec<Action>) {
        actions.push(Action::WriteGroup {
            group_id: self.group_id.clone(),
            value: Some(self.to_record()),
        });
    }

    /// Kafka's rule: an empty group takes any protocol type with at least one protocol;
    /// otherwise the type must match and one protocol must be supported by everyone.
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    fn validate_member(&self, member_id: &str, instance: Option<&str>) -> Result<(), ErrorCode> {
        if let Some(instance) = instance {
            match self.static_members.get(instance) {
                // A record read back from the log can name an instance twice; its mapping
                // then outlives the member, so the holder must still be a member.
                Some(holder) if holder == member_id && self.members.contains_key(member_id) => {
                    return Ok(())
                }
                Some(holder) if holder == member_id => return Err(ErrorCode::UnknownMemberId),
                Some(_) => return Err(ErrorCode::FencedInstanceId),
                None if self.members.contains_key(member_id) => {
                    return Err(ErrorCode::FencedInstanceId)
                }
                None => return Err(ErrorCode::UnknownMemberId),
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(ErrorCode::UnknownMemberId)
        }
    }

    fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
    }

    fn is_full(&self, config: &GroupConfig) -> bool {
        self.members.len() + self.pending_members.len() >= config.max_size
    }

    pub fn join(
        &mut self,
        config: &GroupConfig,
        now_ms: i64,
        request: JoinGroup,
        waiter: WaiterId,
        new_member_id: String,
        actions: &mut Vec<Action>,
    ) {
        let fail = |actions: &mut Vec<Action>, error: ErrorCode, member_id: &str| {
            actions.push(Action::JoinDone {
                waiter,
                result: JoinResult::error(error, member_id),
            });
        };
        if self.state == ClassicState::Dead {
            return fail(
                actions,
                ErrorCode::CoordinatorNotAvailable,
                &request.member_id,
            );
        }
        if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            return fail(
                actions,
                ErrorCode::InconsistentGroupProtocol,
                &request.member_id,
            );
        }
        if request.member_id.is_empty() {
            if let Some(instance) = request.group_instance_id.clone() {
                // A mapping whose member is gone (see `validate_member`) is no replacement:
                // the instance joins as a new static member.
                let old = self
                    .static_members
                    .get(&instance)
                    .cloned()
                    .and_then(|old_id| self.members.remove(&old_id));
                if let Some(old) = old {
                    return self.replace_static_member(
                        config,
                        now_ms,
                        request,
                        instance,
                        old,
                        new_member_id,
                        waiter,
                        actions,
                    );
                }
                if self.is_full(config) {
                    return fail(actions, ErrorCode::GroupMaxSizeReached, "");
                }
                return self.add_member(config, now_ms, request, new_member_id, waiter, actions);
            }
            if self.is_full(config) {
                return fail(actions, ErrorCode::GroupMaxSizeReached, "");
            }
            if request.require_known_member_id {
                self.pending_members.insert(
                    new_member_id.clone(),
                    now_ms + request.session_timeout_ms as i64,
                );
                return fail(actions, ErrorCode::MemberIdRequired, &new_member_id);
            }
            return self.add_member(config, now_ms, request, new_member_id, waiter, actions);
        }

        let member_id = request.member_id.clone();
        if self.pending_members.remove(&member_id).is_some() {
            if self.members.len() >= config.max_size {
                self.try_complete_join(now_ms, actions);
                return fail(actions, ErrorCode::GroupMaxSizeReached, &member_id);
            }
            return self.add_member(config, now_ms, request, member_id, waiter, actions);
        }
        if let Err(error) = self.validate_member(&member_id, request.group_instance_id.as_deref()) {
            return fail(actions, error, &member_id);
        }
        let Some(member) = self.members.get_mut(&member_id) else {
            return fail(actions, ErrorCode::UnknownMemberId, &member_id);
        };
        let protocols_changed = member.protocols != request.protocols;
        member.heartbeat_deadline_ms = now_ms + request.session_timeout_ms as i64;
        match self.state {
            ClassicState::PreparingRebalance => {
                update_member(member, &request);
                if let Some(old) = member.join_waiter.replace(waiter) {
                    actions.push(Action::JoinDone {
                        waiter: old,
                        result: JoinResult::error(ErrorCode::RebalanceInProgress, &member_id),
                    });
                }
                self.try_complete_join(now_ms, actions);
            }
            ClassicState::CompletingRebalance if !protocols_changed => {
                // The member lost its JoinGroup answer: send it again.
                let result = self.join_result(&member_id);
                actions.push(Action::JoinDone { waiter, result });
            }
            ClassicState::Stable
                if !protocols_changed && self.leader_id.as_deref() != Some(&member_id) =>
            {
                let mut result = self.join_result(&member_id);
                result.members.clear();
                actions.push(Action::JoinDone { waiter, result });
            }
            ClassicState::CompletingRebalance | ClassicState::Stable => {
                update_member(member, &request);
                member.join_waiter = Some(waiter);
                self.prepare_rebalance(config, now_ms, actions);
            }
            ClassicState::Empty | ClassicState::Dead => {
                fail(actions, ErrorCode::UnknownMemberId, &member_id)
            }
        }
    }

    fn add_member(
        &mut self,
        config: &GroupConfig,
        now_ms: i64,
        request: JoinGroup,
        member_id: String,
        waiter: WaiterId,
        actions: &mut Vec<Action>,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        if let Some(instance) = &request.group_instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        self.members.insert(
            member_id.clone(),
            ClassicMember {
                member_id,
                group_instance_id: request.group_instance_id,
                client_id: request.client_id,
                client_host: request.client_host,
                session_timeout_ms: request.session_timeout_ms,
                rebalance_timeout_ms: request.rebalance_timeout_ms,
                protocols: request.protocols,
                assignment: Bytes::new(),
                join_waiter: Some(waiter),
                sync_waiter: None,
                heartbeat_deadline_ms: now_ms + request.session_timeout_ms as i64,
            },
        );
        match self.state {
            ClassicState::PreparingRebalance => {
                if let Some(until) = self.initial_delay_until_ms {
                    // Kafka's InitialDelayedJoin: each new member buys another delay.
                    self.join_deadline_ms = (now_ms + config.initial_rebalance_delay_ms).min(until);
                }
                self.try_complete_join(now_ms, actions);
            }
            _ => self.prepare_rebalance(config, now_ms, actions),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn replace_static_member(
        &mut self,
        config: &GroupConfig,
        now_ms: i64,
        request: JoinGroup,
        instance: String,
        mut member: ClassicMember,
        new_id: String,
        waiter: WaiterId,
        actions: &mut Vec<Action>,
    ) {
        // `member` was just taken out of `members` by the caller.
        let old_id = std::mem::take(&mut member.member_id);
        // The old instance is fenced: whatever it is waiting for ends now.
        if let Some(old_waiter) = member.join_waiter.take() {
            actions.push(Action::JoinDone {
                waiter: old_waiter,
                result: JoinResult::error(ErrorCode::FencedInstanceId, &old_id),
            });
        }
        if let Some(old_waiter) = member.sync_waiter.take() {
            actions.push(Action::SyncDone {
                waiter: old_waiter,
                result: SyncResult::error(ErrorCode::FencedInstanceId),
            });
        }
        member.member_id = new_id.clone();
        update_member(&mut member, &request);
        member.heartbeat_deadline_ms = now_ms + request.session_timeout_ms as i64;
        if self.leader_id.as_deref() == Some(old_id.as_str()) {
            self.leader_id = Some(new_id.clone());
        }
        self.static_members.insert(instance, new_id.clone());
        self.members.insert(new_id.clone(), member);
        // As in Kafka, only a change of the group's protocol forces a rebalance. The metadata
        // bytes differ on every restart (the Java consumer's subscription carries its owned
        // partitions and generation, empty for a new incarnation), so comparing them would
        // rebalance every static restart.
        let protocol_changes = self.select_protocol() != self.protocol_name;
        match self.state {
            ClassicState::Stable if !protocol_changes => {
                // Static membership's point: a restarted instance gets its old assignment
                // back without a rebalance.
                let mut result = self.join_result(&new_id);
                result.members.clear();
                actions.push(Action::JoinDone { waiter, result });
                self.write(actions);
            }
            ClassicState::PreparingRebalance => {
                self.park_join(&new_id, waiter, actions);
                self.try_complete_join(now_ms, actions);
            }
            _ => {
                self.park_join(&new_id, waiter, actions);
                self.prepare_rebalance(config, now_ms, actions);
            }
        }
    }

    /// Parks `waiter` as the member's JoinGroup until the join phase completes; a member
    /// that is not there (none today: callers park members they just inserted) is answered
    /// UNKNOWN_MEMBER_ID rather than left waiting.
    fn park_join(&mut self, member_id: &str, waiter: WaiterId, actions: &mut Vec<Action>) {
        match self.members.get_mut(member_id) {
            Some(member) => member.join_waiter = Some(waiter),
            None => actions.push(Action::JoinDone {
                waiter,
                result: JoinResult::error(ErrorCode::UnknownMemberId, member_id),
            }),
        }
    }

    fn prepare_rebalance(&mut self, config: &GroupConfig, now_ms: i64, actions: &mut Vec<Action>) {
        if self.state == ClassicState::CompletingRebalance {
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(waiter) = member.sync_waiter.take() {
                    actions.push(Action::SyncDone {
                        waiter,
                        result: SyncResult::error(ErrorCode::RebalanceInProgress),
                    });
                }
            }
        }
        let was_empty = self.state == ClassicState::Empty;
        self.transition(ClassicState::PreparingRebalance, now_ms);
        self.sync_deadline_ms = None;
        let rebalance_timeout_ms = self.max_rebalance_timeout_ms();
        if was_empty && config.initial_rebalance_delay_ms > 0 {
            let until = now_ms + rebalance_timeout_ms;
            self.initial_delay_until_ms = Some(until);
            self.join_deadline_ms = (now_ms + config.initial_rebalance_delay_ms).min(until);
        } else {
            self.initial_delay_until_ms = None;
            self.join_deadline_ms = now_ms + rebalance_timeout_ms;
        }
        self.try_complete_join(now_ms, actions);
    }

    fn try_complete_join(&mut self, now_ms: i64, actions: &mut Vec<Action>) {
        if self.state != ClassicState::PreparingRebalance || self.initial_delay_until_ms.is_some() {
            return;
        }
        let all_joined = self.pending_members.is_empty()
            && self.members.values().all(|m| m.join_waiter.is_some());
        if all_joined {
            self.complete_join(now_ms, actions);
        }
    }

    /// Ends the join phase: members that did not rejoin are dropped, a new generation
    /// starts, and every waiting member gets its answer (the leader with the member list).
    fn complete_join(&mut self, now_ms: i64, actions: &mut Vec<Action>) {
        self.initial_delay_until_ms = None;
        self.pending_members.clear();
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in gone {
            self.forget_member(&member_id);
        }
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader_id = None;
            self.transition(ClassicState::Empty, now_ms);
            self.write(actions);
            return;
        }
        self.protocol_name = self.select_protocol();
        if !self
            .leader_id
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.transition(ClassicState::CompletingRebalance, now_ms);
        self.sync_deadline_ms = Some(now_ms + self.max_rebalance_timeout_ms());
        let results: Vec<JoinResult> = self
            .members
            .keys()
            .map(|member_id| self.join_result(member_id))
            .collect();
        // Same map, unchanged in between: `values_mut` walks the members in the order
        // `keys` did, one result each.
        for (member, result) in self.members.values_mut().zip(results) {
            member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms as i64;
            if let Some(waiter) = member.join_waiter.take() {
                actions.push(Action::JoinDone { waiter, result });
            }
        }
    }

    fn join_result(&self, member_id: &str) -> JoinResult {
        let leader = self.leader_id.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| {
                    (
                        m.member_id.clone(),
                        m.group_instance_id.clone(),
                        m.metadata(self.protocol_name.as_deref()),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    /// Each member votes for its most preferred protocol that all members support; the
    /// most votes win, ties going to the earlier protocol in the first member's list.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let mut votes: Vec<usize> = vec![0; candidates.len()];
        for member in self.members.values() {
            if let Some(choice) = member
                .protocols
                .iter()
                .find_map(|(name, _)| candidates.iter().position(|c| *c == name))
            {
                votes[choice] += 1;
            }
        }
        let mut best: Option<usize> = None;
        for (index, count) in votes.iter().enumerate() {
            if best.is_none_or(|b| *count > votes[b]) {
                best = Some(index);
            }
        }
        best.map(|index| candidates[index].clone())
    }

    fn forget_member(&mut self, member_id: &str) -> Option<ClassicMember> {
        let member = self.members.remove(member_id)?;
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        Some(member)
    }

    /// Removes a member (left, or its session expired) and rebalances the rest.
    fn remove_member(
        &mut self,
        config: &GroupConfig,
        now_ms: i64,
        member_id: &str,
        actions: &mut Vec<Action>,
    ) {
        let Some(mut member) = self.forget_member(member_id) else {
            return;
        };
        if let Some(waiter) = member.join_waiter.take() {
            actions.push(Action::JoinDone {
                waiter,
                result: JoinResult::error(ErrorCode::UnknownMemberId, member_id),
            });
        }
        if let Some(waiter) = member.sync_waiter.take() {
            actions.push(Action::SyncDone {
                waiter,
                result: SyncResult::error(ErrorCode::UnknownMemberId),
            });
        }
        match self.state {
            ClassicState::Stable | ClassicState::CompletingRebalance => {
                self.prepare_rebalance(config, now_ms, actions)
            }
            ClassicState::PreparingRebalance => self.try_complete_join(now_ms, actions),
            ClassicState::Empty | ClassicState::Dead => {}
        }
    }

    pub fn sync(
        &mut self,
        now_ms: i64,
        request: SyncGroup,
        waiter: WaiterId,
        actions: &mut Vec<Action>,
    ) {
        let fail = |actions: &mut Vec<Action>, error: ErrorCode| {
            actions.push(Action::SyncDone {
                waiter,
                result: SyncResult::error(error),
            });
        };
        if self.state == ClassicState::Dead {
            return fail(actions, ErrorCode::CoordinatorNotAvailable);
        }
        if let Err(error) =
            self.validate_member(&request.member_id, request.group_instance_id.as_deref())
        {
            return fail(actions, error);
        }
        if request.generation_id != self.generation_id {
            return fail(actions, ErrorCode::IllegalGeneration);
        }
        let type_mismatch = request
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref());
        let name_mismatch = request
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n) != self.protocol_name.as_ref());
        if type_mismatch || name_mismatch {
            return fail(actions, ErrorCode::InconsistentGroupProtocol);
        }
        match self.state {
            ClassicState::Empty | ClassicState::Dead => fail(actions, ErrorCode::UnknownMemberId),
            ClassicState::PreparingRebalance => fail(actions, ErrorCode::RebalanceInProgress),
            ClassicState::CompletingRebalance => {
                let Some(member) = self.members.get_mut(&request.member_id) else {
                    return fail(actions, ErrorCode::UnknownMemberId);
                };
                member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms as i64;
                if let Some(old) = member.sync_waiter.replace(waiter) {
                    actions.push(Action::SyncDone {
                        waiter: old,
                        result: SyncResult::error(ErrorCode::RebalanceInProgress),
                    });
                }
                if self.leader_id.as_deref() != Some(request.member_id.as_str()) {
                    return;
                }
                let mut given: HashMap<String, Bytes> = request.assignments.into_iter().collect();
                for member in self.members.values_mut() {
                    member.assignment = given.remove(&member.member_id).unwrap_or_default();
                }
                self.transition(ClassicState::Stable, now_ms);
                self.sync_deadline_ms = None;
                for member in self.members.values_mut() {
                    if let Some(waiter) = member.sync_waiter.take() {
                        actions.push(Action::SyncDone {
                            waiter,
                            result: SyncResult {
                                error: None,
                                protocol_type: self.protocol_type.clone(),
                                protocol_name: self.protocol_name.clone(),
                                assignment: member.assignment.clone(),
                            },
                        });
                    }
                }
                self.write(actions);
            }
            ClassicState::Stable => {
                let Some(member) = self.members.get_mut(&request.member_id) else {
                    return fail(actions, ErrorCode::UnknownMemberId);
                };
                member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms as i64;
                actions.push(Action::SyncDone {
                    waiter,
                    result: SyncResult {
                        error: None,
                        protocol_type: self.protocol_type.clone(),
                        protocol_name: self.protocol_name.clone(),
                        assignment: member.assignment.clone(),
                    },
                });
            }
        }
    }

    pub fn heartbeat(
        &mut self,
        now_ms: i64,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ErrorCode> {
        if self.state == ClassicState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        self.validate_member(member_id, instance)?;
        if generation_id != self.generation_id {
            return Err(ErrorCode::IllegalGeneration);
        }
        let member = self
            .members
            .get_mut(member_id)
            .ok_or(ErrorCode::UnknownMemberId)?;
        member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms as i64;
        match self.state {
            ClassicState::PreparingRebalance => Err(ErrorCode::RebalanceInProgress),
            ClassicState::CompletingRebalance | ClassicState::Stable => Ok(()),
            ClassicState::Empty | ClassicState::Dead => Err(ErrorCode::UnknownMemberId),
        }
    }

    /// LeaveGroup for one member: by member id, or by instance id when the member id is
    /// empty (LeaveGroup v3+ as sent by admin tools for static members).
    pub fn leave(
        &mut self,
        config: &GroupConfig,
        now_ms: i64,
        member_id: &str,
        instance: Option<&str>,
        actions: &mut Vec<Action>,
    ) -> Result<(), ErrorCode> {
        if self.state == ClassicState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        let member_id = if member_id.is_empty() {
            let instance = instance.ok_or(ErrorCode::UnknownMemberId)?;
            self.static_members
                .get(instance)
                .cloned()
                .ok_or(ErrorCode::UnknownMemberId)?
        } else {
            if self.pending_members.remove(member_id).is_some() {
                self.try_complete_join(now_ms, actions);
                return Ok(());
            }
            self.validate_member(member_id, instance)?;
            member_id.to_string()
        };
        self.remove_member(config, now_ms, &member_id, actions);
        Ok(())
    }

    /// Commits by members are checked against the generation, as Kafka does; a commit with
    /// generation -1 and no member id is an admin commit, allowed while the group is empty.
    pub fn validate_commit(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ErrorCode> {
        if self.state == ClassicState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        if generation_id < 0 && self.state == ClassicState::Empty {
            return Ok(());
        }
        self.validate_member(member_id, instance)?;
        if generation_id != self.generation_id {
            return Err(ErrorCode::IllegalGeneration);
        }
        if self.state == ClassicState::CompletingRebalance {
            return Err(ErrorCode::RebalanceInProgress);
        }
        Ok(())
    }

    /// Session expiry, the join deadline, the sync deadline and expired pending ids.
    pub fn tick(&mut self, config: &GroupConfig, now_ms: i64, actions: &mut Vec<Action>) {
        let before = self.pending_members.len();
        self.pending_members
            .retain(|_, deadline| *deadline > now_ms);
        if self.pending_members.len() != before {
            self.try_complete_join(now_ms, actions);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.sync_waiter.is_none())
            .filter(|m| m.heartbeat_deadline_ms <= now_ms)
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in expired {
            tracing::info!(group = %self.group_id, member = %member_id, "session expired");
            self.remove_member(config, now_ms, &member_id, actions);
        }
        if self.state == ClassicState::PreparingRebalance && self.join_deadline_ms <= now_ms {
            self.complete_join(now_ms, actions);
        }
        if self.state == ClassicState::CompletingRebalance
            && self.sync_deadline_ms.is_some_and(|d| d <= now_ms)
        {
            // The leader never sent the assignment: drop those that did not sync, retry.
            let unsynced: Vec<String> = self
                .members
                .values()
                .filter(|m| m.sync_waiter.is_none())
                .map(|m| m.member_id.clone())
                .collect();
            for member_id in &unsynced {
                self.forget_member(member_id);
            }
            self.prepare_rebalance(config, now_ms, actions);
        }
    }

    /// Marks the group deleted; only empty groups get here.
    pub fn mark_dead(&mut self, now_ms: i64) {
        self.transition(ClassicState::Dead, now_ms);
    }

    /// Topics a member of a "consumer" group subscribed to (from its ConsumerProtocol
    /// subscription), for OffsetDelete's GROUP_SUBSCRIBED_TO_TOPIC check.
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        if self.protocol_type.as_deref() != Some("consumer") || self.protocol_name.is_none() {
            return false;
        }
        self.members.values().any(|m| {
            subscription_topics(&m.metadata(self.protocol_name.as_deref()))
                .iter()
                .any(|t| t == topic)
        })
    }
}

fn update_member(member: &mut ClassicMember, request: &JoinGroup) {
    member.protocols = request.protocols.clone();
    member.session_timeout_ms = request.session_timeout_ms;
    member.rebalance_timeout_ms = request.rebalance_timeout_ms;
    member.client_id = request.client_id.clone();
    member.client_host = request.client_host.clone();
}
