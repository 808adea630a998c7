//! The coordinator's pure core: every group this broker coordinates and every committed
//! offset, changed only by method calls that take the time and return [`Action`]s.
//!
//! Offsets are kept apart from group membership, as in Kafka: a group that only commits
//! (an "admin" or manually assigned consumer) is an Empty classic group with offsets.

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use strom_protocol::ErrorCode;

use super::classic::{ClassicGroup, ClassicState, JoinGroup, JoinResult, SyncGroup, SyncResult};
use super::consumer::ConsumerGroup;
use super::records::{GroupValue, OffsetValue};
use super::{Action, GroupConfig, WaiterId};

/// Longest group id accepted. Kafka sets none, but its record keys carry the id as an
/// INT16-length string; a bound this size keeps every key small.
pub const GROUP_ID_BYTES_MAX: usize = 1024;

pub enum Group {
    Classic(ClassicGroup),
    Consumer(ConsumerGroup),
}

impl Group {
    pub fn state_name(&self) -> &'static str {
        match self {
            Group::Classic(group) => group.state.name(),
            Group::Consumer(group) => group.state_name(),
        }
    }

    pub fn protocol_type(&self) -> String {
        match self {
            Group::Classic(group) => group.protocol_type.clone().unwrap_or_default(),
            Group::Consumer(_) => "consumer".to_string(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Group::Classic(_) => "classic",
            Group::Consumer(_) => "consumer",
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Group::Classic(group) => group.is_empty(),
            Group::Consumer(group) => group.members.is_empty(),
        }
    }
}

pub fn validate_group_id(group_id: &str) -> Result<(), ErrorCode> {
    if group_id.is_empty() || group_id.len() > GROUP_ID_BYTES_MAX {
        Err(ErrorCode::InvalidGroupId)
    } else {
        Ok(())
    }
}

/// One partition of an OffsetCommit or TxnOffsetCommit, checked: the partition exists
/// (`partition_count` of its topic, `None` when the topic is unknown) and the metadata fits
/// `offset.metadata.max.bytes`.
pub fn checked_commit(
    partition_count: Option<i32>,
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: Option<&str>,
    metadata_max_bytes: usize,
    now_ms: i64,
) -> Result<OffsetValue, ErrorCode> {
    if !partition_count.is_some_and(|count| partition >= 0 && partition < count) {
        return Err(ErrorCode::UnknownTopicOrPartition);
    }
    let metadata = metadata.unwrap_or_default();
    if metadata.len() > metadata_max_bytes {
        return Err(ErrorCode::OffsetMetadataTooLarge);
    }
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata: metadata.to_string(),
        commit_timestamp_ms: now_ms,
    })
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    pub group_type: &'static str,
}

pub struct Coordinator {
    pub config: GroupConfig,
    pub groups: HashMap<String, Group>,
    /// group -> (topic, partition) -> committed offset.
    pub offsets: HashMap<String, BTreeMap<(String, i32), OffsetValue>>,
    /// Offsets committed inside open transactions (TxnOffsetCommit), by producer id: they
    /// are in the log already and become visible when the commit marker is written.
    pub pending_txn_offsets: HashMap<i64, Vec<PendingTxnOffset>>,
    rng: StdRng,
}

/// An offset committed inside a transaction that has not ended yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTxnOffset {
    pub group_id: String,
    pub topic: String,
    pub partition: i32,
    pub value: OffsetValue,
}

impl Coordinator {
    pub fn new(config: GroupConfig, seed: u64) -> Self {
        Coordinator {
            config,
            groups: HashMap::new(),
            offsets: HashMap::new(),
            pending_txn_offsets: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// `prefix-<uuid>`, Kafka's member id shape; the uuid comes from the seeded RNG so tests
    /// are reproducible.
    pub fn new_member_id(&mut self, prefix: &str) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
        if prefix.is_empty() {
            uuid.to_string()
        } else {
            format!("{prefix}-{uuid}")
        }
    }

    pub fn join(&mut self, now_ms: i64, request: JoinGroup, waiter: WaiterId) -> Vec<Action> {
        let mut actions = Vec::new();
        let fail = |error: ErrorCode, request: &JoinGroup| {
            vec![Action::JoinDone {
                waiter,
                result: JoinResult::error(error, &request.member_id),
            }]
        };
        if let Err(error) = validate_group_id(&request.group_id) {
            return fail(error, &request);
        }
        if request.session_timeout_ms < self.config.min_session_timeout_ms
            || request.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return fail(ErrorCode::InvalidSessionTimeout, &request);
        }
        let prefix = request
            .group_instance_id
            .clone()
            .unwrap_or_else(|| request.client_id.clone());
        let new_member_id = self.new_member_id(&prefix);
        match self.groups.get_mut(&request.group_id) {
            Some(Group::Classic(group)) => {
                group.join(
                    &self.config,
                    now_ms,
                    request,
                    waiter,
                    new_member_id,
                    &mut actions,
                );
                return actions;
            }
            Some(Group::Consumer(group)) => {
                if !group.members.is_empty() {
                    return fail(ErrorCode::InconsistentGroupProtocol, &request);
                }
                actions.push(Action::WriteConsumerGroup {
                    group_id: request.group_id.clone(),
                    value: None,
                });
            }
            None => {
                if !request.member_id.is_empty() {
                    return fail(ErrorCode::UnknownMemberId, &request);
                }
            }
        }
        // A new classic group (or one replacing an empty consumer group): it joins first,
        // then takes its place.
        let group_id = request.group_id.clone();
        let mut group = ClassicGroup::new(&group_id, now_ms);
        group.join(
            &self.config,
            now_ms,
            request,
            waiter,
            new_member_id,
            &mut actions,
        );
        self.groups.insert(group_id, Group::Classic(group));
        actions
    }

    pub fn sync(&mut self, now_ms: i64, request: SyncGroup, waiter: WaiterId) -> Vec<Action> {
        let mut actions = Vec::new();
        let error = match validate_group_id(&request.group_id) {
            Err(error) => Some(error),
            Ok(()) => match self.groups.get_mut(&request.group_id) {
                Some(Group::Classic(group)) => {
                    group.sync(now_ms, request, waiter, &mut actions);
                    None
                }
                Some(Group::Consumer(_)) => Some(ErrorCode::InconsistentGroupProtocol),
                None => Some(ErrorCode::UnknownMemberId),
            },
        };
        if let Some(error) = error {
            actions.push(Action::SyncDone {
                waiter,
                result: SyncResult::error(error),
            });
        }
        actions
    }

    pub fn heartbeat(
        &mut self,
        now_ms: i64,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ErrorCode> {
        validate_group_id(group_id)?;
        match self.groups.get_mut(group_id) {
            Some(Group::Classic(group)) => {
                group.heartbeat(now_ms, member_id, instance, generation_id)
            }
            Some(Group::Consumer(_)) => Err(ErrorCode::InconsistentGroupProtocol),
            None => Err(ErrorCode::UnknownMemberId),
        }
    }

    /// LeaveGroup for a batch of members: a top-level error, or one result per member.
    pub fn leave(
        &mut self,
        now_ms: i64,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> (Result<Vec<Option<ErrorCode>>, ErrorCode>, Vec<Action>) {
        let mut actions = Vec::new();
        if let Err(error) = validate_group_id(group_id) {
            return (Err(error), actions);
        }
        let group = match self.groups.get_mut(group_id) {
            Some(Group::Classic(group)) => group,
            Some(Group::Consumer(_)) => {
                return (Err(ErrorCode::InconsistentGroupProtocol), actions)
            }
            None => return (Err(ErrorCode::UnknownMemberId), actions),
        };
        let results = members
            .iter()
            .map(|(member_id, instance)| {
                group
                    .leave(
                        &self.config,
                        now_ms,
                        member_id,
                        instance.as_deref(),
                        &mut actions,
                    )
                    .err()
            })
            .collect();
        (Ok(results), actions)
    }

    /// Checks an OffsetCommit's group, member and generation (or member epoch). A commit
    /// with generation -1 to a group that does not exist creates it (Empty, offsets only).
    pub fn validate_offset_commit(
        &mut self,
        now_ms: i64,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation_or_epoch: i32,
    ) -> Result<(), ErrorCode> {
        validate_group_id(group_id)?;
        match self.groups.get(group_id) {
            Some(Group::Classic(group)) => {
                group.validate_commit(member_id, instance, generation_or_epoch)
            }
            Some(Group::Consumer(group)) => group.validate_commit(member_id, generation_or_epoch),
            None if generation_or_epoch < 0 => {
                self.groups.insert(
                    group_id.to_string(),
                    Group::Classic(ClassicGroup::new(group_id, now_ms)),
                );
                Ok(())
            }
            None => Err(ErrorCode::IllegalGeneration),
        }
    }

    /// Makes a commit visible; called once its record is in the log.
    pub fn apply_commit(
        &mut self,
        group_id: &str,
        topic: &str,
        partition: i32,
        value: OffsetValue,
    ) {
        self.offsets
            .entry(group_id.to_string())
            .or_default()
            .insert((topic.to_string(), partition), value);
    }

    /// Drops every group (members, offsets, pending transactional offsets) `in_partition`
    /// says belongs to an offsets partition this coordinator reloads or no longer leads.
    pub fn forget_groups(&mut self, in_partition: impl Fn(&str) -> bool) {
        self.groups.retain(|group, _| !in_partition(group));
        self.offsets.retain(|group, _| !in_partition(group));
        for pending in self.pending_txn_offsets.values_mut() {
            pending.retain(|offset| !in_partition(&offset.group_id));
        }
        self.pending_txn_offsets
            .retain(|_, pending| !pending.is_empty());
    }

    /// Remembers offsets a transaction committed (their records are in the log).
    pub fn add_pending_txn_offsets(&mut self, producer_id: i64, offsets: Vec<PendingTxnOffset>) {
        self.pending_txn_offsets
            .entry(producer_id)
            .or_default()
            .extend(offsets);
    }

    /// A transaction marker for `producer_id` reached the offsets partition `partition`
    /// (`partition_of(group)` says which partition a group lives in): a commit makes the
    /// pending offsets of groups in that partition visible, an abort drops them.
    pub fn complete_txn_offsets(
        &mut self,
        now_ms: i64,
        producer_id: i64,
        commit: bool,
        in_partition: impl Fn(&str) -> bool,
    ) {
        let Some(pending) = self.pending_txn_offsets.remove(&producer_id) else {
            return;
        };
        let (done, keep): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|offset| in_partition(&offset.group_id));
        if !keep.is_empty() {
            self.pending_txn_offsets.insert(producer_id, keep);
        }
        if commit {
            for offset in done {
                self.replay_offset(
                    now_ms,
                    &offset.group_id,
                    &offset.topic,
                    offset.partition,
                    Some(offset.value),
                );
            }
        }
    }

    /// Whether a transaction still holds an uncommitted offset for this partition of the
    /// group (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT then).
    pub fn has_pending_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.pending_txn_offsets.values().flatten().any(|offset| {
            offset.group_id == group_id && offset.topic == topic && offset.partition == partition
        })
    }

    pub fn remove_offset(&mut self, group_id: &str, topic: &str, partition: i32) {
        if let Some(offsets) = self.offsets.get_mut(group_id) {
            offsets.remove(&(topic.to_string(), partition));
            if offsets.is_empty() {
                self.offsets.remove(group_id);
            }
        }
    }

    pub fn committed(&self, group_id: &str, topic: &str, partition: i32) -> Option<&OffsetValue> {
        self.offsets
            .get(group_id)?
            .get(&(topic.to_string(), partition))
    }

    /// Every committed (topic, partition) of a group, in order.
    pub fn committed_partitions(&self, group_id: &str) -> Vec<(String, i32, OffsetValue)> {
        self.offsets
            .get(group_id)
            .map(|offsets| {
                offsets
                    .iter()
                    .map(|((topic, partition), value)| (topic.clone(), *partition, value.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn list_groups(&self, states: &[String], types: &[String]) -> Vec<ListedGroup> {
        let mut groups: Vec<ListedGroup> = self
            .groups
            .iter()
            .filter(|(_, group)| group.state_name() != "Dead")
            .map(|(id, group)| ListedGroup {
                group_id: id.clone(),
                protocol_type: group.protocol_type(),
                state: group.state_name(),
                group_type: group.type_name(),
            })
            .filter(|g| states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(g.state)))
            .filter(|g| {
                types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(g.group_type))
            })
            .collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups
    }

    /// Deletes an empty group and its offsets; returns the offsets to tombstone.
    pub fn delete_group(
        &mut self,
        now_ms: i64,
        group_id: &str,
    ) -> Result<Vec<(String, i32)>, ErrorCode> {
        validate_group_id(group_id)?;
        let exists = self.groups.contains_key(group_id) || self.offsets.contains_key(group_id);
        if !exists {
            return Err(ErrorCode::GroupIdNotFound);
        }
        if let Some(group) = self.groups.get_mut(group_id) {
            if !group.is_empty() {
                return Err(ErrorCode::NonEmptyGroup);
            }
            if let Group::Classic(classic) = group {
                if classic.state == ClassicState::Dead {
                    return Err(ErrorCode::GroupIdNotFound);
                }
                classic.mark_dead(now_ms);
            }
        }
        self.groups.remove(group_id);
        let offsets = self.offsets.remove(group_id).unwrap_or_default();
        Ok(offsets.into_keys().collect())
    }

    /// OffsetDelete's group check: the group must exist; partitions of topics the group is
    /// subscribed to are refused one by one ([`Coordinator::is_subscribed`]).
    pub fn check_offset_delete(&self, group_id: &str) -> Result<(), ErrorCode> {
        validate_group_id(group_id)?;
        if self.groups.contains_key(group_id) || self.offsets.contains_key(group_id) {
            Ok(())
        } else {
            Err(ErrorCode::GroupIdNotFound)
        }
    }

    pub fn is_subscribed(&self, group_id: &str, topic: &str) -> bool {
        match self.groups.get(group_id) {
            Some(Group::Classic(group)) => group.is_subscribed_to(topic),
            Some(Group::Consumer(group)) => group.is_subscribed_to(topic),
            None => false,
        }
    }

    /// Timers: classic session and rebalance deadlines, consumer-group session expiry.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Action> {
        let mut actions = Vec::new();
        for group in self.groups.values_mut() {
            match group {
                Group::Classic(group) => group.tick(&self.config, now_ms, &mut actions),
                Group::Consumer(group) => {
                    group.tick(&self.config, now_ms);
                    if let Some(value) = group.snapshot_if_changed() {
                        actions.push(Action::WriteConsumerGroup {
                            group_id: group.group_id.clone(),
                            value: Some(value),
                        });
                    }
                }
            }
        }
        actions
    }

    /// Offsets of empty groups older than `offsets.retention.minutes` (counted from the
    /// commit, or from when the group became empty if later), as Kafka 2.1+ does. Removes
    /// them from memory and returns the tombstones to write; an empty group left with no
    /// offsets is removed too.
    pub fn expire_offsets(&mut self, now_ms: i64) -> Vec<Action> {
        let retention_ms = self.config.offsets_retention_ms;
        let mut actions = Vec::new();
        let group_ids: Vec<String> = self.offsets.keys().cloned().collect();
        for group_id in group_ids {
            let empty_since = match self.groups.get(&group_id) {
                Some(Group::Classic(group)) if group.state == ClassicState::Empty => {
                    Some(group.state_timestamp_ms)
                }
                Some(Group::Consumer(group)) if group.members.is_empty() => Some(i64::MIN),
                None => Some(i64::MIN),
                Some(_) => None,
            };
            let Some(empty_since) = empty_since else {
                continue;
            };
            let Some(offsets) = self.offsets.get_mut(&group_id) else {
                continue;
            };
            let expired: Vec<(String, i32)> = offsets
                .iter()
                .filter(|(_, v)| v.commit_timestamp_ms.max(empty_since) + retention_ms <= now_ms)
                .map(|(k, _)| k.clone())
                .collect();
            if expired.is_empty() {
                continue;
            }
            for key in &expired {
                offsets.remove(key);
            }
            let now_empty = offsets.is_empty();
            if now_empty {
                self.offsets.remove(&group_id);
            }
            actions.push(Action::DeleteOffsets {
                group_id: group_id.clone(),
                partitions: expired,
            });
            let group_is_empty = self.groups.get(&group_id).is_none_or(Group::is_empty);
            if now_empty && group_is_empty {
                self.groups.remove(&group_id);
                actions.push(Action::WriteGroup {
                    group_id,
                    value: None,
                });
            }
        }
        actions
    }

    /// Committed offsets of topics that no longer exist (Kafka drops them when a topic is
    /// deleted). Removes them from memory and returns the tombstones to write.
    pub fn forget_deleted_topics(&mut self, exists: impl Fn(&str) -> bool) -> Vec<Action> {
        let mut actions = Vec::new();
        for (group_id, offsets) in self.offsets.iter_mut() {
            let gone: Vec<(String, i32)> = offsets
                .keys()
                .filter(|(topic, _)| !exists(topic))
                .cloned()
                .collect();
            if gone.is_empty() {
                continue;
            }
            for key in &gone {
                offsets.remove(key);
            }
            actions.push(Action::DeleteOffsets {
                group_id: group_id.clone(),
                partitions: gone,
            });
        }
        self.offsets.retain(|_, offsets| !offsets.is_empty());
        actions
    }

    /// Replay of one offset record (None = tombstone).
    pub fn replay_offset(
        &mut self,
        now_ms: i64,
        group_id: &str,
        topic: &str,
        partition: i32,
        value: Option<OffsetValue>,
    ) {
        match value {
            Some(value) => {
                self.apply_commit(group_id, topic, partition, value);
                self.groups
                    .entry(group_id.to_string())
                    .or_insert_with(|| Group::Classic(ClassicGroup::new(group_id, now_ms)));
            }
            None => self.remove_offset(group_id, topic, partition),
        }
    }

    /// Replay of one group metadata record (None = the group was deleted).
    pub fn replay_group(&mut self, now_ms: i64, group_id: &str, value: Option<GroupValue>) {
        match value {
            Some(value) => {
                self.groups.insert(
                    group_id.to_string(),
                    Group::Classic(ClassicGroup::from_record(group_id, value, now_ms)),
                );
            }
            None => {
                self.groups.remove(group_id);
            }
        }
    }
}

impl Coordinator {
    /// ConsumerGroupHeartbeat: creates the group on a first join, converts an empty classic
    /// group, and refuses a non-empty classic group (GROUP_ID_NOT_FOUND, as Kafka). The
    /// group's snapshot is written when the heartbeat changed it.
    pub fn consumer_heartbeat(
        &mut self,
        now_ms: i64,
        request: super::consumer::Heartbeat,
        topics: &dyn super::consumer::TopicLookup,
    ) -> (super::consumer::HeartbeatResult, Vec<Action>) {
        let group_id = request.group_id.clone();
        let result = self.consumer_heartbeat_inner(now_ms, request, topics);
        let actions = match self.groups.get_mut(&group_id) {
            Some(Group::Consumer(group)) => group
                .snapshot_if_changed()
                .map(|value| Action::WriteConsumerGroup {
                    group_id,
                    value: Some(value),
                })
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        (result, actions)
    }

    /// Replay of a consumer-protocol group snapshot (None = the group went away).
    pub fn replay_consumer_group(&mut self, now_ms: i64, group_id: &str, value: Option<&[u8]>) {
        let Some(value) = value else {
            if matches!(self.groups.get(group_id), Some(Group::Consumer(_))) {
                self.groups.remove(group_id);
            }
            return;
        };
        match super::consumer_records::decode_snapshot(
            group_id,
            value,
            now_ms,
            self.config.consumer_session_timeout_ms,
            self.config.default_assignor(),
        ) {
            Ok(group) => {
                self.groups
                    .insert(group_id.to_string(), Group::Consumer(group));
            }
            Err(error) => {
                tracing::warn!(group = %group_id, %error, "skipping undecodable consumer group snapshot")
            }
        }
    }

    fn consumer_heartbeat_inner(
        &mut self,
        now_ms: i64,
        request: super::consumer::Heartbeat,
        topics: &dyn super::consumer::TopicLookup,
    ) -> super::consumer::HeartbeatResult {
        use super::consumer::HeartbeatResult;
        if let Err(error) = validate_group_id(&request.group_id) {
            return HeartbeatResult::error(error, "the group id is empty or too long");
        }
        let exists_as_consumer =
            matches!(self.groups.get(&request.group_id), Some(Group::Consumer(_)));
        if !exists_as_consumer {
            match self.groups.get(&request.group_id) {
                Some(Group::Classic(group)) if !group.is_empty() => {
                    return HeartbeatResult::error(
                        ErrorCode::GroupIdNotFound,
                        format!("group {} is not a consumer group", request.group_id),
                    );
                }
                _ => {}
            }
            if request.member_epoch != 0 {
                return HeartbeatResult::error(
                    ErrorCode::UnknownMemberId,
                    format!(
                        "group {} has no member {}",
                        request.group_id, request.member_id
                    ),
                );
            }
        }
        let new_member_id = self.new_member_id("");
        if let Some(Group::Consumer(group)) = self.groups.get_mut(&request.group_id) {
            return group.heartbeat(&self.config, now_ms, request, topics, new_member_id);
        }
        // A new consumer group (or one replacing an empty classic group): its first
        // member joins, then it takes its place.
        let group_id = request.group_id.clone();
        let mut group = ConsumerGroup::new(&group_id, &self.config);
        let result = group.heartbeat(&self.config, now_ms, request, topics, new_member_id);
        self.groups.insert(group_id, Group::Consumer(group));
        result
    }
}
