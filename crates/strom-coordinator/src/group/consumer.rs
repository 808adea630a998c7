//! The consumer rebalance protocol (KIP-848): ConsumerGroupHeartbeat drives everything.
//!
//! The group epoch rises on every membership, subscription or topic-metadata change; the
//! server-side assignor then computes a target assignment for that epoch. Each member moves
//! towards its target on its own heartbeats (Kafka's CurrentAssignmentBuilder): first it
//! revokes what it must give up (keeping its epoch), then it takes the partitions nobody
//! else still owns and moves to the target epoch. No member ever waits for a group-wide
//! barrier, which is the protocol's point.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use strom_protocol::ErrorCode;
use uuid::Uuid;

use super::assignor::{self, Assignment, MemberSpec};
use super::GroupConfig;

/// Topic metadata the coordinator needs, from the broker's metadata image.
pub trait TopicLookup {
    /// (topic id, partition count) of a topic by name.
    fn by_name(&self, name: &str) -> Option<(Uuid, i32)>;
    fn name_of(&self, topic_id: Uuid) -> Option<String>;
    /// Every topic name, for regex subscriptions.
    fn names(&self) -> Vec<String>;
}

impl TopicLookup for BTreeMap<String, (Uuid, i32)> {
    fn by_name(&self, name: &str) -> Option<(Uuid, i32)> {
        self.get(name).copied()
    }
    fn names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
    fn name_of(&self, topic_id: Uuid) -> Option<String> {
        self.iter()
            .find(|(_, (id, _))| *id == topic_id)
            .map(|(name, _)| name.clone())
    }
}

/// Member epoch sent to leave the group.
pub const LEAVE_EPOCH: i32 = -1;
/// Member epoch sent by a static member leaving temporarily.
pub const STATIC_LEAVE_EPOCH: i32 = -2;

#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// Partitions the member owns, when it reports them (null = unchanged).
    pub owned: Option<Vec<(Uuid, Vec<i32>)>>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResult {
    /// None on success.
    pub error: Option<ErrorCode>,
    pub error_message: Option<String>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    pub assignment: Option<Assignment>,
}

impl HeartbeatResult {
    pub fn error(error: ErrorCode, message: impl Into<String>) -> Self {
        HeartbeatResult {
            error: Some(error),
            error_message: Some(message.into()),
            member_id: None,
            member_epoch: 0,
            heartbeat_interval_ms: 0,
            assignment: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    /// Must first give up `pending_revocation`.
    UnrevokedPartitions,
    /// Waits for partitions other members still own.
    UnreleasedPartitions,
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    /// `subscribed_topic_regex` compiled, anchored at both ends like Java's `matches()`.
    pub(super) topic_pattern: Option<regex_automata::meta::Regex>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    pub(super) session_deadline_ms: i64,
    pub(super) revocation_deadline_ms: Option<i64>,
}

impl ConsumerMember {
    fn matches_pattern(&self, topic: &str) -> bool {
        // Internal topics are never matched by a pattern, as in Kafka.
        !topic.starts_with("__")
            && self
                .topic_pattern
                .as_ref()
                .is_some_and(|pattern| pattern.is_match(topic))
    }

    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topic_names.iter().any(|t| t == topic) || self.matches_pattern(topic)
    }
}

/// Compiles a subscription regex so it must match the whole topic name (Java's
/// `Pattern.matcher(topic).matches()`, which Kafka uses).
pub fn compile_topic_regex(regex: &str) -> Result<regex_automata::meta::Regex, String> {
    regex_automata::meta::Regex::new(&format!("^(?:{regex})$"))
        .map_err(|error| format!("invalid SubscribedTopicRegex '{regex}': {error}"))
}

#[derive(Debug)]
pub struct ConsumerGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: HashMap<String, Assignment>,
    pub(super) static_members: HashMap<String, String>,
    /// Subscribed topic name -> (id, partitions) when the target was last computed.
    pub(super) subscription_metadata: BTreeMap<String, (Uuid, i32)>,
    pub assignor_name: String,
    /// The snapshot last written to `__consumer_offsets`, to write only changes.
    pub(super) last_snapshot: Option<bytes::Bytes>,
    pub(super) last_fingerprint: u64,
}

fn is_subset(owned: &[(Uuid, Vec<i32>)], of: &Assignment) -> bool {
    owned.iter().all(|(topic, partitions)| {
        partitions
            .iter()
            .all(|p| of.get(topic).is_some_and(|set| set.contains(p)))
    })
}

fn owns_any(owned: &[(Uuid, Vec<i32>)], of: &Assignment) -> bool {
    owned.iter().any(|(topic, partitions)| {
        partitions
            .iter()
            .any(|p| of.get(topic).is_some_and(|set| set.contains(p)))
    })
}

fn same(owned: &[(Uuid, Vec<i32>)], assignment: &Assignment) -> bool {
    let owned: Assignment = owned
        .iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(t, ps)| (*t, ps.iter().copied().collect()))
        .collect();
    owned == *assignment
}

impl ConsumerGroup {
    pub fn new(group_id: &str, config: &GroupConfig) -> Self {
        ConsumerGroup {
            group_id: group_id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: HashMap::new(),
            static_members: HashMap::new(),
            subscription_metadata: BTreeMap::new(),
            assignor_name: config.default_assignor().to_string(),
            last_snapshot: None,
            last_fingerprint: 0,
        }
    }

    /// The group's snapshot when it changed since the last one written (see
    /// `consumer_records`), remembered as written.
    pub fn snapshot_if_changed(&mut self) -> Option<bytes::Bytes> {
        // Most heartbeats change nothing: compare a cheap fingerprint before encoding the
        // whole group. Assignments only change together with an epoch, a member state or
        // a partition count, so those are what it covers.
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (self.group_epoch, self.assignment_epoch, self.members.len()).hash(&mut hasher);
        for member in self.members.values() {
            (
                &member.member_id,
                member.member_epoch,
                member.state as u8,
                member.assigned.values().map(BTreeSet::len).sum::<usize>(),
                member
                    .pending_revocation
                    .values()
                    .map(BTreeSet::len)
                    .sum::<usize>(),
            )
                .hash(&mut hasher);
        }
        let fingerprint = hasher.finish();
        if self.last_snapshot.is_some() && self.last_fingerprint == fingerprint {
            return None;
        }
        self.last_fingerprint = fingerprint;
        let snapshot = super::consumer_records::encode_snapshot(self);
        if self.last_snapshot.as_ref() == Some(&snapshot) {
            return None;
        }
        self.last_snapshot = Some(snapshot.clone());
        Some(snapshot)
    }

    /// Kafka's consumer-group states: Empty, Assigning, Reconciling, Stable.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        self.members.values().any(|m| m.is_subscribed_to(topic))
    }

    pub fn validate_commit(&self, member_id: &str, member_epoch: i32) -> Result<(), ErrorCode> {
        if member_epoch < 0 && member_id.is_empty() {
            return if self.members.is_empty() {
                Ok(())
            } else {
                Err(ErrorCode::UnknownMemberId)
            };
        }
        let member = self
            .members
            .get(member_id)
            .ok_or(ErrorCode::UnknownMemberId)?;
        if member_epoch != member.member_epoch {
            return Err(ErrorCode::StaleMemberEpoch);
        }
        Ok(())
    }

    fn remove_member(&mut self, member_id: &str) {
        if let Some(member) = self.members.remove(member_id) {
            if let Some(instance) = member.instance_id {
                if self.static_members.get(&instance).map(String::as_str) == Some(member_id) {
                    self.static_members.remove(&instance);
                }
            }
            self.target.remove(member_id);
            self.group_epoch += 1;
        }
    }

    pub fn heartbeat(
        &mut self,
        config: &GroupConfig,
        now_ms: i64,
        request: Heartbeat,
        topics: &dyn TopicLookup,
        new_member_id: String,
    ) -> HeartbeatResult {
        let interval = config.consumer_heartbeat_interval_ms;
        if request.member_epoch == LEAVE_EPOCH || request.member_epoch == STATIC_LEAVE_EPOCH {
            let member_id = if request.member_id.is_empty() {
                request
                    .instance_id
                    .as_ref()
                    .and_then(|i| self.static_members.get(i).cloned())
                    .unwrap_or_default()
            } else {
                request.member_id.clone()
            };
            let Some(member) = self.members.get_mut(&member_id) else {
                return HeartbeatResult::error(ErrorCode::UnknownMemberId, "unknown member");
            };
            if request.member_epoch == STATIC_LEAVE_EPOCH && member.instance_id.is_some() {
                // A static member going away briefly (a restart) keeps its partitions until
                // its session expires; the instance coming back takes them over at once.
                member.member_epoch = STATIC_LEAVE_EPOCH;
            } else {
                self.remove_member(&member_id);
            }
            return HeartbeatResult {
                error: None,
                error_message: None,
                member_id: Some(member_id),
                member_epoch: request.member_epoch,
                heartbeat_interval_ms: 0,
                assignment: None,
            };
        }
        if let Some(assignor) = &request.server_assignor {
            if !config.consumer_assignors.iter().any(|a| a == assignor) {
                return HeartbeatResult::error(
                    ErrorCode::UnsupportedAssignor,
                    format!("server assignor {assignor} is not supported"),
                );
            }
        }
        let pattern = match request.subscribed_topic_regex.as_deref() {
            Some(regex) if !regex.is_empty() => match compile_topic_regex(regex) {
                Ok(pattern) => Some(pattern),
                Err(message) => {
                    return HeartbeatResult::error(ErrorCode::InvalidRegularExpression, message)
                }
            },
            _ => None,
        };
        let before_assigned;
        let member_id;
        if request.member_epoch == 0 {
            if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none()
            {
                return HeartbeatResult::error(
                    ErrorCode::InvalidRequest,
                    "SubscribedTopicNames or SubscribedTopicRegex must be set on join",
                );
            }
            if request.rebalance_timeout_ms <= 0 {
                return HeartbeatResult::error(
                    ErrorCode::InvalidRequest,
                    "RebalanceTimeoutMs must be provided on join",
                );
            }
            member_id = if request.member_id.is_empty() {
                new_member_id
            } else {
                request.member_id.clone()
            };
            // A full group refuses a new member before anything changes: a static instance
            // must not stay mapped to a member that never joined. A returning static
            // instance replaces its predecessor, so it takes no new place.
            let replaces = request
                .instance_id
                .as_ref()
                .and_then(|instance| self.static_members.get(instance))
                .is_some_and(|old_id| *old_id != member_id && self.members.contains_key(old_id));
            if !replaces
                && !self.members.contains_key(&member_id)
                && self.members.len() >= config.max_size
            {
                return HeartbeatResult::error(
                    ErrorCode::GroupMaxSizeReached,
                    format!(
                        "the group has reached its maximum size of {}",
                        config.max_size
                    ),
                );
            }
            // A static member that comes back takes over its predecessor's assignment.
            let mut inherited = Assignment::new();
            if let Some(instance) = &request.instance_id {
                if let Some(old_id) = self.static_members.get(instance).cloned() {
                    if old_id != member_id {
                        if let Some(old) = self.members.remove(&old_id) {
                            inherited = old.assigned;
                            if let Some(target) = self.target.remove(&old_id) {
                                self.target.insert(member_id.clone(), target);
                            }
                        }
                    }
                }
                self.static_members
                    .insert(instance.clone(), member_id.clone());
            }
            if self.members.contains_key(&member_id) {
                // Rejoin of a fenced or restarted member: it starts over with nothing.
                self.remove_member(&member_id);
                if let Some(instance) = &request.instance_id {
                    self.static_members
                        .insert(instance.clone(), member_id.clone());
                }
            }
            let epoch_zero = inherited.is_empty();
            self.members.insert(
                member_id.clone(),
                ConsumerMember {
                    member_id: member_id.clone(),
                    instance_id: request.instance_id.clone(),
                    rack_id: request.rack_id.clone(),
                    client_id: request.client_id.clone(),
                    client_host: request.client_host.clone(),
                    member_epoch: if epoch_zero { 0 } else { self.assignment_epoch },
                    previous_member_epoch: -1,
                    state: MemberState::Stable,
                    subscribed_topic_names: Vec::new(),
                    subscribed_topic_regex: None,
                    topic_pattern: None,
                    server_assignor: None,
                    rebalance_timeout_ms: request.rebalance_timeout_ms,
                    assigned: inherited,
                    pending_revocation: Assignment::new(),
                    session_deadline_ms: 0,
                    revocation_deadline_ms: None,
                },
            );
            self.group_epoch += 1;
            before_assigned = None;
        } else {
            member_id = request.member_id.clone();
            let Some(member) = self.members.get(&member_id) else {
                return HeartbeatResult::error(
                    ErrorCode::UnknownMemberId,
                    format!("member {member_id} is not in group {}", self.group_id),
                );
            };
            if request.member_epoch != member.member_epoch {
                let lost_response = request.member_epoch == member.previous_member_epoch
                    && request
                        .owned
                        .as_ref()
                        .is_some_and(|owned| is_subset(owned, &member.assigned));
                if !lost_response {
                    return HeartbeatResult::error(
                        ErrorCode::FencedMemberEpoch,
                        format!(
                            "member epoch {} does not match the current epoch {}",
                            request.member_epoch, member.member_epoch
                        ),
                    );
                }
            }
            before_assigned = Some((member.assigned.clone(), member.member_epoch));
        }

        // Present: inserted by the join above, or looked up by the epoch check.
        let Some(member) = self.members.get_mut(&member_id) else {
            return HeartbeatResult::error(
                ErrorCode::UnknownMemberId,
                format!("member {member_id} is not in group {}", self.group_id),
            );
        };
        member.session_deadline_ms = now_ms + config.consumer_session_timeout_ms;
        if request.rebalance_timeout_ms > 0 {
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        if request.rack_id.is_some() {
            member.rack_id = request.rack_id.clone();
        }
        if request.server_assignor.is_some() {
            member.server_assignor = request.server_assignor.clone();
        }
        let mut subscription_changed = false;
        if let Some(names) = &request.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            if names != member.subscribed_topic_names {
                member.subscribed_topic_names = names;
                subscription_changed = true;
            }
        }
        if request.subscribed_topic_regex.is_some()
            && request.subscribed_topic_regex != member.subscribed_topic_regex
        {
            // An empty regex clears the regex subscription.
            member.subscribed_topic_regex = request
                .subscribed_topic_regex
                .clone()
                .filter(|r| !r.is_empty());
            member.topic_pattern = pattern;
            subscription_changed = true;
        }
        if subscription_changed && request.member_epoch != 0 {
            self.group_epoch += 1;
        }
        self.refresh_metadata(topics);
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(config);
        }
        self.reconcile(&member_id, now_ms, request.owned.as_deref());

        let Some(member) = self.members.get(&member_id) else {
            return HeartbeatResult::error(
                ErrorCode::UnknownMemberId,
                format!("member {member_id} is not in group {}", self.group_id),
            );
        };
        let send_assignment = match &before_assigned {
            None => true,
            Some((assigned, epoch)) => {
                *assigned != member.assigned
                    || *epoch != member.member_epoch
                    || request
                        .owned
                        .as_ref()
                        .is_some_and(|owned| !same(owned, &member.assigned))
            }
        };
        HeartbeatResult {
            error: None,
            error_message: None,
            member_id: Some(member_id.clone()),
            member_epoch: member.member_epoch,
            heartbeat_interval_ms: interval,
            assignment: send_assignment.then(|| member.assigned.clone()),
        }
    }

    /// Bumps the group epoch when a subscribed topic appears, disappears or grows.
    fn refresh_metadata(&mut self, topics: &dyn TopicLookup) {
        let mut names: BTreeSet<String> = self
            .members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter().cloned())
            .collect();
        if self.members.values().any(|m| m.topic_pattern.is_some()) {
            for name in topics.names() {
                if self.members.values().any(|m| m.matches_pattern(&name)) {
                    names.insert(name);
                }
            }
        }
        let metadata: BTreeMap<String, (Uuid, i32)> = names
            .into_iter()
            .filter_map(|name| topics.by_name(&name).map(|info| (name, info)))
            .collect();
        if metadata != self.subscription_metadata {
            self.subscription_metadata = metadata;
            self.group_epoch += 1;
        }
    }

    fn compute_target(&mut self, config: &GroupConfig) {
        // The assignor most members ask for, else the broker's first.
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(name) = &member.server_assignor {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let chosen = votes
            .iter()
            .max_by_key(|(name, count)| (**count, std::cmp::Reverse(**name)))
            .map(|(name, _)| name.to_string())
            .unwrap_or_else(|| config.default_assignor().to_string());
        let topics: BTreeMap<Uuid, i32> = self.subscription_metadata.values().copied().collect();
        let specs: Vec<MemberSpec<'_>> = self
            .members
            .values()
            .map(|m| MemberSpec {
                member_id: &m.member_id,
                topics: self
                    .subscription_metadata
                    .iter()
                    .filter(|(name, _)| m.is_subscribed_to(name))
                    .map(|(_, (id, _))| *id)
                    .collect(),
                current: self.target.get(&m.member_id).unwrap_or(&m.assigned),
            })
            .collect();
        let target = if chosen == assignor::RANGE {
            assignor::range(&specs, &topics)
        } else {
            assignor::uniform(&specs, &topics)
        };
        self.target = target;
        self.assignor_name = chosen;
        self.assignment_epoch = self.group_epoch;
    }

    /// Partitions other members still hold (assigned or not yet revoked).
    fn held_by_others(&self, member_id: &str) -> BTreeSet<(Uuid, i32)> {
        self.members
            .values()
            .filter(|m| m.member_id != member_id)
            .flat_map(|m| {
                m.assigned
                    .iter()
                    .chain(m.pending_revocation.iter())
                    .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
            })
            .collect()
    }

    /// Kafka's CurrentAssignmentBuilder for one member.
    fn reconcile(&mut self, member_id: &str, now_ms: i64, owned: Option<&[(Uuid, Vec<i32>)]>) {
        let target_epoch = self.assignment_epoch;
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let held = self.held_by_others(member_id);
        let Some(member) = self.members.get_mut(member_id) else {
            // The heartbeat answers UNKNOWN_MEMBER_ID for a member that is not there.
            return;
        };
        match member.state {
            MemberState::UnrevokedPartitions => {
                let revoked = owned.is_some_and(|o| !owns_any(o, &member.pending_revocation));
                if !revoked {
                    return;
                }
                member.pending_revocation.clear();
                member.revocation_deadline_ms = None;
            }
            MemberState::Stable if member.member_epoch == target_epoch => return,
            _ => {}
        }
        let mut keep = Assignment::new();
        let mut revoke = Assignment::new();
        let mut add = Assignment::new();
        let mut unreleased = false;
        let topics: BTreeSet<Uuid> = member
            .assigned
            .keys()
            .chain(target.keys())
            .copied()
            .collect();
        let empty = BTreeSet::new();
        for topic in topics {
            let current = member.assigned.get(&topic).unwrap_or(&empty);
            let wanted = target.get(&topic).unwrap_or(&empty);
            let kept: BTreeSet<i32> = current.intersection(wanted).copied().collect();
            let revoked: BTreeSet<i32> = current.difference(wanted).copied().collect();
            let mut added = BTreeSet::new();
            for partition in wanted.difference(current) {
                if held.contains(&(topic, *partition)) {
                    unreleased = true;
                } else {
                    added.insert(*partition);
                }
            }
            if !kept.is_empty() {
                keep.insert(topic, kept);
            }
            if !revoked.is_empty() {
                revoke.insert(topic, revoked);
            }
            if !added.is_empty() {
                add.insert(topic, added);
            }
        }
        if !revoke.is_empty() {
            member.assigned = keep;
            member.pending_revocation = revoke;
            member.state = MemberState::UnrevokedPartitions;
            member.revocation_deadline_ms = Some(now_ms + member.rebalance_timeout_ms as i64);
            return;
        }
        for (topic, partitions) in add {
            keep.entry(topic).or_default().extend(partitions);
        }
        member.assigned = keep;
        if member.member_epoch != target_epoch {
            member.previous_member_epoch = member.member_epoch;
            member.member_epoch = target_epoch;
        }
        member.state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
    }

    /// Session expiry and revocation timeouts: such members are fenced (removed).
    pub fn tick(&mut self, _config: &GroupConfig, now_ms: i64) {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline_ms <= now_ms
                    || m.revocation_deadline_ms.is_some_and(|d| d <= now_ms)
            })
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in expired {
            tracing::info!(group = %self.group_id, member = %member_id, "consumer group member fenced (session or revocation timeout)");
            self.remove_member(&member_id);
        }
    }
}
