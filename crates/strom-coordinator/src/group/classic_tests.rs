//! Classic protocol state-machine tests with a controlled clock: no sockets, no sleeps.

use std::collections::HashMap;

use bytes::Bytes;
use strom_protocol::ErrorCode;

use super::classic::subscription_topics;
use super::classic::{ClassicState, JoinGroup, JoinResult, SyncGroup, SyncResult};
use super::coordinator::{Coordinator, Group};
use super::records::{GroupValue, MemberValue, OffsetValue};
use super::{Action, GroupConfig, WaiterId};

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;
const DELAY_MS: i64 = 3_000;

struct Harness {
    coordinator: Coordinator,
    now_ms: i64,
    next_waiter: WaiterId,
    joins: HashMap<WaiterId, JoinResult>,
    syncs: HashMap<WaiterId, SyncResult>,
    writes: usize,
}

impl Harness {
    fn new() -> Self {
        Self::with(GroupConfig {
            initial_rebalance_delay_ms: DELAY_MS,
            ..GroupConfig::default()
        })
    }

    fn with(config: GroupConfig) -> Self {
        Harness {
            coordinator: Coordinator::new(config, 7),
            now_ms: 1_000_000,
            next_waiter: 1,
            joins: HashMap::new(),
            syncs: HashMap::new(),
            writes: 0,
        }
    }

    fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::JoinDone { waiter, result } => {
                    assert!(
                        self.joins.insert(waiter, result).is_none(),
                        "answered twice"
                    );
                }
                Action::SyncDone { waiter, result } => {
                    assert!(
                        self.syncs.insert(waiter, result).is_none(),
                        "answered twice"
                    );
                }
                Action::WriteGroup { .. }
                | Action::WriteConsumerGroup { .. }
                | Action::DeleteOffsets { .. } => self.writes += 1,
            }
        }
    }

    fn join_request(member_id: &str, instance: Option<&str>, protocols: &[&str]) -> JoinGroup {
        JoinGroup {
            group_id: "g".into(),
            member_id: member_id.into(),
            group_instance_id: instance.map(Into::into),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: REBALANCE_MS,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
                .collect(),
            require_known_member_id: true,
        }
    }

    fn join_with(&mut self, request: JoinGroup) -> WaiterId {
        let waiter = self.next_waiter;
        self.next_waiter += 1;
        let actions = self.coordinator.join(self.now_ms, request, waiter);
        self.apply(actions);
        waiter
    }

    fn join(&mut self, member_id: &str) -> WaiterId {
        self.join_with(Self::join_request(member_id, None, &["range"]))
    }

    /// Dynamic member: MEMBER_ID_REQUIRED round trip, then the real join (parked).
    fn new_member(&mut self) -> (String, WaiterId) {
        let first = self.join("");
        let answer = self.joins.remove(&first).expect("answered at once");
        assert_eq!(answer.error, Some(ErrorCode::MemberIdRequired));
        assert!(answer.member_id.starts_with("client-"));
        let waiter = self.join(&answer.member_id);
        (answer.member_id, waiter)
    }

    fn sync(&mut self, member_id: &str, generation: i32, assignments: &[(&str, &str)]) -> WaiterId {
        let waiter = self.next_waiter;
        self.next_waiter += 1;
        let request = SyncGroup {
            group_id: "g".into(),
            generation_id: generation,
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: assignments
                .iter()
                .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
                .collect(),
        };
        let actions = self.coordinator.sync(self.now_ms, request, waiter);
        self.apply(actions);
        waiter
    }

    fn heartbeat(&mut self, member_id: &str, generation: i32) -> Result<(), ErrorCode> {
        self.coordinator
            .heartbeat(self.now_ms, "g", member_id, None, generation)
    }

    fn advance(&mut self, ms: i64) {
        // Tick in steps like the runtime does, so deadlines fire in order.
        let end = self.now_ms + ms;
        while self.now_ms < end {
            self.now_ms = (self.now_ms + 100).min(end);
            let actions = self.coordinator.tick(self.now_ms);
            self.apply(actions);
        }
    }

    fn state(&self) -> ClassicState {
        match self.coordinator.groups.get("g") {
            Some(Group::Classic(group)) => group.state,
            _ => panic!("no classic group g"),
        }
    }

    /// Two members joined, leader synced: Stable at generation 1.
    fn stable_pair(&mut self) -> (String, String) {
        let (a, wa) = self.new_member();
        let (b, wb) = self.new_member();
        self.advance(DELAY_MS);
        let ja = self.joins.remove(&wa).unwrap();
        let jb = self.joins.remove(&wb).unwrap();
        assert_eq!(ja.generation_id, 1);
        let (leader, follower) = if ja.leader == a { (a, b) } else { (b, a) };
        assert_eq!(jb.leader, leader);
        let sf = self.sync(&follower, 1, &[]);
        let sl = self.sync(&leader, 1, &[(&leader, "L"), (&follower, "F")]);
        assert_eq!(self.syncs.remove(&sf).unwrap().assignment, Bytes::from("F"));
        assert_eq!(self.syncs.remove(&sl).unwrap().assignment, Bytes::from("L"));
        assert_eq!(self.state(), ClassicState::Stable);
        (leader, follower)
    }
}

#[test]
fn given_new_member_when_joining_v4_should_require_member_id_then_wait_initial_delay() {
    let mut h = Harness::new();
    let (member, waiter) = h.new_member();
    assert_eq!(h.state(), ClassicState::PreparingRebalance);
    h.advance(DELAY_MS - 200);
    assert!(
        h.joins.is_empty(),
        "answered before the initial rebalance delay"
    );
    h.advance(200);
    let join = h.joins.remove(&waiter).expect("answered after the delay");
    assert_eq!(join.error, None);
    assert_eq!(join.generation_id, 1);
    assert_eq!(join.leader, member);
    assert_eq!(join.protocol_name.as_deref(), Some("range"));
    assert_eq!(join.members.len(), 1);
    assert_eq!(join.members[0].2, Bytes::from("meta-range"));
    assert_eq!(h.state(), ClassicState::CompletingRebalance);
}

#[test]
fn given_two_members_when_leader_syncs_should_hand_each_its_assignment() {
    let mut h = Harness::new();
    let (leader, follower) = h.stable_pair();
    assert_ne!(leader, follower);
    assert!(h.writes >= 1, "group metadata written when Stable");
    // A late SyncGroup in Stable returns the same assignment.
    let again = h.sync(&follower, 1, &[]);
    assert_eq!(h.syncs.remove(&again).unwrap().assignment, Bytes::from("F"));
}

#[test]
fn given_stable_group_when_heartbeats_are_wrong_should_answer_kafka_errors() {
    let mut h = Harness::new();
    let (leader, _) = h.stable_pair();
    assert_eq!(h.heartbeat(&leader, 1), Ok(()));
    assert_eq!(h.heartbeat(&leader, 0), Err(ErrorCode::IllegalGeneration));
    assert_eq!(h.heartbeat("nobody", 1), Err(ErrorCode::UnknownMemberId));
    assert_eq!(
        h.coordinator.heartbeat(h.now_ms, "other", &leader, None, 1),
        Err(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        h.coordinator.heartbeat(h.now_ms, "", &leader, None, 1),
        Err(ErrorCode::InvalidGroupId)
    );
}

#[test]
fn given_member_stops_heartbeating_when_session_expires_should_rebalance_without_it() {
    let mut h = Harness::new();
    let (leader, follower) = h.stable_pair();
    for _ in 0..(SESSION_MS / 1000 + 1) {
        h.advance(1000);
        let _ = h.heartbeat(&leader, 1);
    }
    assert_eq!(h.state(), ClassicState::PreparingRebalance);
    assert_eq!(h.heartbeat(&leader, 1), Err(ErrorCode::RebalanceInProgress));
    assert_eq!(h.heartbeat(&follower, 1), Err(ErrorCode::UnknownMemberId));
    // The survivor rejoins: everyone (one member) has joined, so no waiting.
    let waiter = h.join(&leader);
    let join = h.joins.remove(&waiter).expect("completed at once");
    assert_eq!(join.generation_id, 2);
    assert_eq!(join.members.len(), 1);
}

#[test]
fn given_rebalance_when_a_member_never_rejoins_should_complete_at_rebalance_timeout() {
    let mut h = Harness::new();
    let (leader, follower) = h.stable_pair();
    let (newcomer, wn) = h.new_member();
    assert_eq!(h.state(), ClassicState::PreparingRebalance);
    let wl = h.join(&leader);
    // The follower keeps heartbeating (it is told to rejoin) but never rejoins.
    for _ in 0..(REBALANCE_MS / 1000) {
        assert!(h.joins.is_empty());
        let _ = h.heartbeat(&follower, 1);
        h.advance(1000);
    }
    let join = h
        .joins
        .remove(&wl)
        .expect("completed at the rebalance timeout");
    assert_eq!(join.generation_id, 2);
    let ids: Vec<&str> = join.members.iter().map(|m| m.0.as_str()).collect();
    assert!(ids.contains(&newcomer.as_str()) && !ids.contains(&follower.as_str()));
    assert!(h.joins.remove(&wn).is_some());
}

#[test]
fn given_static_member_when_it_rejoins_should_keep_assignment_and_fence_old_id() {
    let mut h = Harness::new();
    let w = h.join_with(Harness::join_request("", Some("instance-1"), &["range"]));
    h.advance(DELAY_MS);
    let join = h.joins.remove(&w).unwrap();
    assert_eq!(join.error, None, "static members skip MEMBER_ID_REQUIRED");
    let old_id = join.member_id.clone();
    let s = h.sync(&old_id, 1, &[(&old_id, "A")]);
    assert_eq!(h.syncs.remove(&s).unwrap().assignment, Bytes::from("A"));

    // Restarted instance: empty member id, same instance id.
    let w = h.join_with(Harness::join_request("", Some("instance-1"), &["range"]));
    let join = h.joins.remove(&w).expect("answered at once, no rebalance");
    assert_eq!(join.error, None);
    assert_eq!(join.generation_id, 1);
    assert_ne!(join.member_id, old_id);
    assert_eq!(h.state(), ClassicState::Stable);
    let s = h.sync(&join.member_id, 1, &[]);
    assert_eq!(h.syncs.remove(&s).unwrap().assignment, Bytes::from("A"));
    // The old incarnation is fenced.
    assert_eq!(
        h.coordinator
            .heartbeat(h.now_ms, "g", &old_id, Some("instance-1"), 1),
        Err(ErrorCode::FencedInstanceId)
    );
    let w = h.join_with(Harness::join_request(
        &old_id,
        Some("instance-1"),
        &["range"],
    ));
    assert_eq!(
        h.joins.remove(&w).unwrap().error,
        Some(ErrorCode::FencedInstanceId)
    );
}

#[test]
fn given_restarted_static_member_with_new_metadata_should_keep_assignment() {
    let mut h = Harness::new();
    let w = h.join_with(Harness::join_request("", Some("instance-1"), &["range"]));
    h.advance(DELAY_MS);
    let old_id = h.joins.remove(&w).unwrap().member_id;
    let s = h.sync(&old_id, 1, &[(&old_id, "A")]);
    assert_eq!(h.syncs.remove(&s).unwrap().assignment, Bytes::from("A"));

    // The Java consumer's subscription bytes name its owned partitions and generation, so a
    // restarted incarnation sends different metadata for the same protocol.
    let mut restarted = Harness::join_request("", Some("instance-1"), &["range"]);
    restarted.protocols[0].1 = Bytes::from_static(b"meta-range-no-owned-partitions");
    let w = h.join_with(restarted);
    let join = h.joins.remove(&w).expect("answered at once, no rebalance");
    assert_eq!(join.error, None);
    assert_eq!(join.generation_id, 1);
    assert_eq!(h.state(), ClassicState::Stable);
    let s = h.sync(&join.member_id, 1, &[]);
    assert_eq!(h.syncs.remove(&s).unwrap().assignment, Bytes::from("A"));
}

#[test]
fn given_incompatible_protocols_when_joining_should_answer_inconsistent_group_protocol() {
    let mut h = Harness::new();
    let (_member, _) = h.new_member();
    let w = h.join_with(Harness::join_request("", None, &["roundrobin"]));
    assert_eq!(
        h.joins.remove(&w).unwrap().error,
        Some(ErrorCode::InconsistentGroupProtocol)
    );
    let mut other_type = Harness::join_request("", None, &["range"]);
    other_type.protocol_type = "connect".into();
    let w = h.join_with(other_type);
    assert_eq!(
        h.joins.remove(&w).unwrap().error,
        Some(ErrorCode::InconsistentGroupProtocol)
    );
}

#[test]
fn given_members_preferring_different_protocols_when_joined_should_pick_most_votes() {
    let mut h = Harness::new();
    let a = h.join_with(Harness::join_request("", Some("a"), &["sticky", "range"]));
    let b = h.join_with(Harness::join_request("", Some("b"), &["range", "sticky"]));
    let c = h.join_with(Harness::join_request("", Some("c"), &["range", "sticky"]));
    h.advance(DELAY_MS);
    for w in [a, b, c] {
        assert_eq!(h.joins[&w].protocol_name.as_deref(), Some("range"));
    }
}

#[test]
fn given_bad_join_requests_should_answer_invalid_group_id_session_timeout_and_max_size() {
    let mut h = Harness::with(GroupConfig {
        max_size: 1,
        ..GroupConfig::default()
    });
    let mut bad = Harness::join_request("", None, &["range"]);
    bad.group_id = String::new();
    let w = h.join_with(bad);
    assert_eq!(
        h.joins.remove(&w).unwrap().error,
        Some(ErrorCode::InvalidGroupId)
    );
    let mut bad = Harness::join_request("", None, &["range"]);
    bad.session_timeout_ms = 10;
    let w = h.join_with(bad);
    assert_eq!(
        h.joins.remove(&w).unwrap().error,
        Some(ErrorCode::InvalidSessionTimeout)
    );
    let w = h.join_with(Harness::join_request("unknown", None, &["range"]));
    assert_eq!(
        h.joins.remove(&w).unwrap().error,
        Some(ErrorCode::UnknownMemberId)
    );
    let (_first, _) = h.new_member();
    let w = h.join("");
    assert_eq!(
        h.joins.remove(&w).unwrap().error,
        Some(ErrorCode::GroupMaxSizeReached)
    );
}

#[test]
fn given_leader_leaves_when_follower_rejoins_should_become_leader_of_next_generation() {
    let mut h = Harness::new();
    let (leader, follower) = h.stable_pair();
    let (result, actions) = h
        .coordinator
        .leave(h.now_ms, "g", &[(leader.clone(), None)]);
    h.apply(actions);
    assert_eq!(result, Ok(vec![None]));
    assert_eq!(h.state(), ClassicState::PreparingRebalance);
    let w = h.join(&follower);
    let join = h.joins.remove(&w).unwrap();
    assert_eq!(join.generation_id, 2);
    assert_eq!(join.leader, follower);
    let (result, _) = h
        .coordinator
        .leave(h.now_ms, "g", &[("ghost".into(), None)]);
    assert_eq!(result, Ok(vec![Some(ErrorCode::UnknownMemberId)]));
}

#[test]
fn given_last_member_leaves_should_become_empty_and_deletable() {
    let mut h = Harness::new();
    let (leader, follower) = h.stable_pair();
    assert_eq!(
        h.coordinator.delete_group(h.now_ms, "g"),
        Err(ErrorCode::NonEmptyGroup)
    );
    let (_, actions) = h
        .coordinator
        .leave(h.now_ms, "g", &[(leader, None), (follower, None)]);
    h.apply(actions);
    assert_eq!(h.state(), ClassicState::Empty);
    assert_eq!(h.coordinator.delete_group(h.now_ms, "g"), Ok(vec![]));
    assert_eq!(
        h.coordinator.delete_group(h.now_ms, "g"),
        Err(ErrorCode::GroupIdNotFound)
    );
}

#[test]
fn given_leader_never_syncs_when_rebalance_timeout_passes_should_drop_unsynced_and_retry() {
    let mut h = Harness::new();
    let (a, wa) = h.new_member();
    let (b, wb) = h.new_member();
    h.advance(DELAY_MS);
    let leader = h.joins.remove(&wa).unwrap().leader;
    h.joins.remove(&wb);
    let follower = if leader == a { b } else { a };
    let sf = h.sync(&follower, 1, &[]);
    // The leader stays alive (heartbeats) but never sends SyncGroup.
    for _ in 0..(REBALANCE_MS / 1000) {
        h.advance(1000);
        let _ = h.heartbeat(&leader, 1);
    }
    assert_eq!(
        h.syncs.remove(&sf).unwrap().error,
        Some(ErrorCode::RebalanceInProgress)
    );
    assert_eq!(h.state(), ClassicState::PreparingRebalance);
    assert_eq!(h.heartbeat(&leader, 1), Err(ErrorCode::UnknownMemberId));
}

#[test]
fn given_commits_when_validated_should_follow_generation_rules() {
    let mut h = Harness::new();
    let now = h.now_ms;
    // Admin commit to an unknown group creates an empty group.
    assert_eq!(
        h.coordinator
            .validate_offset_commit(now, "admin", "", None, -1),
        Ok(())
    );
    assert_eq!(
        h.coordinator
            .validate_offset_commit(now, "fresh", "m", None, 3),
        Err(ErrorCode::IllegalGeneration)
    );
    let (a, wa) = h.new_member();
    h.advance(DELAY_MS);
    h.joins.remove(&wa);
    assert_eq!(
        h.coordinator
            .validate_offset_commit(h.now_ms, "g", &a, None, 1),
        Err(ErrorCode::RebalanceInProgress),
        "commits wait for SyncGroup"
    );
    let s = h.sync(&a, 1, &[(&a, "x")]);
    h.syncs.remove(&s);
    assert_eq!(
        h.coordinator
            .validate_offset_commit(h.now_ms, "g", &a, None, 1),
        Ok(())
    );
    assert_eq!(
        h.coordinator
            .validate_offset_commit(h.now_ms, "g", &a, None, 0),
        Err(ErrorCode::IllegalGeneration)
    );
    assert_eq!(
        h.coordinator
            .validate_offset_commit(h.now_ms, "g", "", None, -1),
        Err(ErrorCode::UnknownMemberId),
        "no admin commits while the group has members"
    );
    assert_eq!(
        h.coordinator
            .validate_offset_commit(h.now_ms, "", "", None, -1),
        Err(ErrorCode::InvalidGroupId)
    );
}

#[test]
fn given_empty_group_offsets_when_retention_passes_should_expire_them() {
    let mut h = Harness::with(GroupConfig {
        offsets_retention_ms: 60_000,
        ..GroupConfig::default()
    });
    let now = h.now_ms;
    h.coordinator
        .validate_offset_commit(now, "old", "", None, -1)
        .unwrap();
    let value = OffsetValue {
        offset: 5,
        leader_epoch: -1,
        metadata: "m".into(),
        commit_timestamp_ms: now,
    };
    h.coordinator.apply_commit("old", "t", 0, value);
    assert!(h.coordinator.expire_offsets(now + 59_000).is_empty());
    let actions = h.coordinator.expire_offsets(now + 60_000);
    assert!(actions.contains(&Action::DeleteOffsets {
        group_id: "old".into(),
        partitions: vec![("t".into(), 0)]
    }));
    assert!(h.coordinator.committed("old", "t", 0).is_none());
    assert!(h.coordinator.list_groups(&[], &[]).is_empty());
}

#[test]
fn given_group_record_when_replayed_should_restore_stable_members() {
    let mut h = Harness::new();
    let (leader, follower) = h.stable_pair();
    let record = match h.coordinator.groups.get("g") {
        Some(Group::Classic(group)) => group.to_record(),
        _ => unreachable!(),
    };
    let mut restarted = Harness::new();
    restarted
        .coordinator
        .replay_group(restarted.now_ms, "g", Some(record));
    assert_eq!(restarted.state(), ClassicState::Stable);
    assert_eq!(restarted.heartbeat(&leader, 1), Ok(()));
    let s = restarted.sync(&follower, 1, &[]);
    assert_eq!(
        restarted.syncs.remove(&s).unwrap().assignment,
        Bytes::from("F")
    );
    let listed = restarted.coordinator.list_groups(&["stable".into()], &[]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].protocol_type, "consumer");
}

#[test]
fn given_deleted_topic_when_swept_should_drop_its_offsets_only() {
    let mut h = Harness::new();
    let value = |offset| OffsetValue {
        offset,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: 0,
    };
    h.coordinator.apply_commit("g1", "kept", 0, value(1));
    h.coordinator.apply_commit("g1", "gone", 0, value(2));
    h.coordinator.apply_commit("g2", "gone", 3, value(3));
    let mut actions = h.coordinator.forget_deleted_topics(|topic| topic == "kept");
    actions.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(
        actions,
        vec![
            Action::DeleteOffsets {
                group_id: "g1".into(),
                partitions: vec![("gone".into(), 0)]
            },
            Action::DeleteOffsets {
                group_id: "g2".into(),
                partitions: vec![("gone".into(), 3)]
            },
        ]
    );
    assert!(h.coordinator.committed("g1", "kept", 0).is_some());
    assert!(h.coordinator.committed("g1", "gone", 0).is_none());
    assert!(h.coordinator.committed_partitions("g2").is_empty());
}

/// Seeded random event sequences (joins, static joins, syncs with right and stale
/// generations, heartbeats, leaves, time passing): no panic, every parked request is
/// answered exactly once (checked in `apply`) and eventually, generations never go back,
/// and a Stable group has no member left waiting.
#[test]
fn given_random_event_sequences_should_answer_every_request_and_keep_invariants() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    for seed in 0..150u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut h = Harness::new();
        let mut ids: Vec<String> = Vec::new();
        let mut last_generation = 0;
        for _ in 0..250 {
            let pick = |rng: &mut StdRng, ids: &Vec<String>| {
                if ids.is_empty() || rng.gen_bool(0.1) {
                    "unknown".to_string()
                } else {
                    ids[rng.gen_range(0..ids.len())].clone()
                }
            };
            match rng.gen_range(0..8) {
                0 => {
                    let w = h.join("");
                    if let Some(answer) = h.joins.get(&w) {
                        if answer.error == Some(ErrorCode::MemberIdRequired) {
                            ids.push(answer.member_id.clone());
                        }
                    }
                }
                1 => {
                    let id = pick(&mut rng, &ids);
                    h.join(&id);
                }
                2 => {
                    let instance = format!("instance-{}", rng.gen_range(0..3));
                    let w = h.join_with(Harness::join_request("", Some(&instance), &["range"]));
                    if let Some(answer) = h.joins.get(&w) {
                        ids.push(answer.member_id.clone());
                    }
                }
                3 => {
                    let id = pick(&mut rng, &ids);
                    let generation = match h.coordinator.groups.get("g") {
                        Some(Group::Classic(group)) => group.generation_id,
                        _ => 0,
                    } - rng.gen_range(0..2);
                    let assignments: Vec<(String, String)> = ids
                        .iter()
                        .map(|m| (m.clone(), format!("for-{m}")))
                        .collect();
                    let refs: Vec<(&str, &str)> = assignments
                        .iter()
                        .map(|(m, a)| (m.as_str(), a.as_str()))
                        .collect();
                    h.sync(&id, generation, &refs);
                }
                4 => {
                    let id = pick(&mut rng, &ids);
                    let generation = match h.coordinator.groups.get("g") {
                        Some(Group::Classic(group)) => group.generation_id,
                        _ => 0,
                    };
                    let _ = h.heartbeat(&id, generation);
                }
                5 => {
                    let id = pick(&mut rng, &ids);
                    let (_, actions) = h.coordinator.leave(h.now_ms, "g", &[(id, None)]);
                    h.apply(actions);
                }
                _ => {
                    let ms = rng.gen_range(0..4000);
                    h.advance(ms);
                }
            }
            if let Some(Group::Classic(group)) = h.coordinator.groups.get("g") {
                assert!(group.generation_id >= last_generation, "seed {seed}");
                last_generation = group.generation_id;
                if group.state == ClassicState::Stable {
                    let waiting = h.next_waiter - 1 - (h.joins.len() + h.syncs.len()) as u64;
                    assert_eq!(waiting, 0, "seed {seed}: a request is parked in Stable");
                }
            }
        }
        // Long enough for every session, rebalance and sync deadline to pass.
        h.advance(5 * REBALANCE_MS as i64);
        for waiter in 1..h.next_waiter {
            assert!(
                h.joins.contains_key(&waiter) || h.syncs.contains_key(&waiter),
                "seed {seed}: request {waiter} never answered"
            );
        }
        assert_eq!(h.state(), ClassicState::Empty, "seed {seed}");
    }
}

/// A group record that names member `x` twice, once per instance, as only a damaged log
/// can: `x` keeps `i2`, and `i1` stays mapped to it. When a restart of `i2` takes `x`'s
/// place, `i1` points at a member that is gone. Stable at generation 5.
fn group_with_stale_instance() -> (Harness, String) {
    let member = |instance: &str| MemberValue {
        member_id: "x".into(),
        group_instance_id: Some(instance.into()),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        rebalance_timeout_ms: REBALANCE_MS,
        session_timeout_ms: SESSION_MS,
        subscription: Bytes::from("meta-range"),
        assignment: Bytes::from("A"),
    };
    let record = GroupValue {
        protocol_type: "consumer".into(),
        generation: 5,
        protocol: Some("range".into()),
        leader: Some("x".into()),
        current_state_timestamp_ms: 0,
        members: vec![member("i1"), member("i2")],
    };
    let mut h = Harness::new();
    h.coordinator.replay_group(h.now_ms, "g", Some(record));
    assert_eq!(h.state(), ClassicState::Stable);
    let restart = h.join_with(Harness::join_request("", Some("i2"), &["range"]));
    let answer = h.joins.remove(&restart).expect("answered at once");
    assert_eq!(answer.error, None);
    assert_eq!(answer.generation_id, 5);
    assert_eq!(h.state(), ClassicState::Stable);
    (h, answer.member_id)
}

#[test]
fn given_instance_mapped_to_a_gone_member_when_it_joins_heartbeats_or_syncs_should_answer_unknown_member_id(
) {
    let (mut h, _) = group_with_stale_instance();
    // These used to panic on "validated": the instance check passed for a member that
    // is not in the group.
    let join = h.join_with(Harness::join_request("x", Some("i1"), &["range"]));
    let answer = h.joins.remove(&join).expect("answered at once");
    assert_eq!(answer.error, Some(ErrorCode::UnknownMemberId));
    assert_eq!(
        h.coordinator.heartbeat(h.now_ms, "g", "x", Some("i1"), 5),
        Err(ErrorCode::UnknownMemberId)
    );
    let waiter = h.next_waiter;
    h.next_waiter += 1;
    let sync = SyncGroup {
        group_id: "g".into(),
        generation_id: 5,
        member_id: "x".into(),
        group_instance_id: Some("i1".into()),
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: vec![("x".into(), Bytes::from("A"))],
    };
    let actions = h.coordinator.sync(h.now_ms, sync, waiter);
    h.apply(actions);
    let answer = h.syncs.remove(&waiter).expect("answered at once");
    assert_eq!(answer.error, Some(ErrorCode::UnknownMemberId));
    // Nothing changed for the live member.
    assert_eq!(h.state(), ClassicState::Stable);
}

#[test]
fn given_instance_mapped_to_a_gone_member_when_it_rejoins_should_join_as_a_new_static_member() {
    let (mut h, restarted) = group_with_stale_instance();
    // This used to panic on "static member present".
    let join = h.join_with(Harness::join_request("", Some("i1"), &["range"]));
    assert!(!h.joins.contains_key(&join), "parked for the rebalance");
    assert_eq!(h.state(), ClassicState::PreparingRebalance);
    let again = h.join_with(Harness::join_request(&restarted, Some("i2"), &["range"]));
    let first = h.joins.remove(&join).expect("rebalance completed");
    let second = h.joins.remove(&again).expect("rebalance completed");
    assert_eq!(first.error, None);
    assert_eq!(second.error, None);
    assert_eq!(first.generation_id, 6);
    assert_ne!(first.member_id, "x");
    assert_eq!(h.state(), ClassicState::CompletingRebalance);
}

#[test]
fn given_short_or_truncated_subscription_metadata_should_read_no_or_fewer_topics() {
    for len in 0..6 {
        assert!(subscription_topics(&[0, 1, 0, 0, 0, 1][..len]).is_empty());
    }
    // Two topics announced, the second cut short.
    let metadata = [0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 5, b'b'];
    assert_eq!(subscription_topics(&metadata), vec!["a".to_string()]);
    // A negative count or length reads nothing more.
    assert!(subscription_topics(&[0, 1, 0xff, 0xff, 0xff, 0xff, 0, 1, b'a']).is_empty());
    assert!(subscription_topics(&[0, 1, 0, 0, 0, 1, 0xff, 0xff]).is_empty());
}
