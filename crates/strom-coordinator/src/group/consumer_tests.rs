//! KIP-848 state-machine tests: epochs, revocation before assignment, fencing, expiry.

use std::collections::{BTreeMap, BTreeSet};

use strom_protocol::ErrorCode;
use uuid::Uuid;

use super::classic::JoinGroup;
use super::consumer::{Heartbeat, HeartbeatResult};
use super::coordinator::{Coordinator, Group};
use super::GroupConfig;

fn topic_id() -> Uuid {
    Uuid::from_bytes([9; 16])
}

struct Harness {
    coordinator: Coordinator,
    topics: BTreeMap<String, (Uuid, i32)>,
    now_ms: i64,
}

fn partitions(result: &HeartbeatResult) -> Option<BTreeSet<i32>> {
    result
        .assignment
        .as_ref()
        .map(|a| a.get(&topic_id()).cloned().unwrap_or_default())
}

impl Harness {
    fn new() -> Self {
        Harness {
            coordinator: Coordinator::new(GroupConfig::default(), 3),
            topics: [("t".to_string(), (topic_id(), 6))].into(),
            now_ms: 0,
        }
    }

    fn request(member_id: &str, epoch: i32, owned: Option<&BTreeSet<i32>>) -> Heartbeat {
        Heartbeat {
            group_id: "g".into(),
            member_id: member_id.into(),
            member_epoch: epoch,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: (epoch == 0).then(|| vec!["t".to_string()]),
            subscribed_topic_regex: None,
            server_assignor: None,
            owned: owned.map(|o| vec![(topic_id(), o.iter().copied().collect())]),
            client_id: "c".into(),
            client_host: String::new(),
        }
    }

    fn beat(&mut self, request: Heartbeat) -> HeartbeatResult {
        self.coordinator
            .consumer_heartbeat(self.now_ms, request, &self.topics)
            .0
    }

    fn join(&mut self) -> (String, HeartbeatResult) {
        let result = self.beat(Self::request("", 0, None));
        assert_eq!(result.error, None, "{result:?}");
        (result.member_id.clone().unwrap(), result)
    }
}

#[test]
fn given_single_member_when_joining_should_get_every_partition_and_an_epoch() {
    let mut h = Harness::new();
    let (_, result) = h.join();
    assert!(result.member_epoch > 0);
    assert_eq!(partitions(&result), Some((0..6).collect()));
    assert_eq!(result.heartbeat_interval_ms, 5000);
}

#[test]
fn given_second_member_when_joining_should_revoke_before_reassigning() {
    let mut h = Harness::new();
    let (a, first) = h.join();
    let a_epoch = first.member_epoch;
    let all: BTreeSet<i32> = (0..6).collect();
    let (b, joined) = h.join();
    // b's share is still owned by a: b gets the new epoch and nothing yet.
    assert_eq!(partitions(&joined), Some(BTreeSet::new()));
    let b_epoch = joined.member_epoch;
    assert!(b_epoch > a_epoch);

    // a learns it must give up three partitions; its epoch stays until it does.
    let revoke = h.beat(Harness::request(&a, a_epoch, Some(&all)));
    let kept = partitions(&revoke).expect("new assignment sent");
    assert_eq!(kept.len(), 3);
    assert_eq!(revoke.member_epoch, a_epoch);

    // b asks again: still unreleased.
    let still = h.beat(Harness::request(&b, b_epoch, Some(&BTreeSet::new())));
    assert_eq!(partitions(&still).unwrap_or_default(), BTreeSet::new());

    // a acknowledges the revocation: moves to the target epoch.
    let acked = h.beat(Harness::request(&a, a_epoch, Some(&kept)));
    assert_eq!(acked.error, None);
    assert_eq!(acked.member_epoch, b_epoch);

    // b now gets the released partitions.
    let got = h.beat(Harness::request(&b, b_epoch, Some(&BTreeSet::new())));
    let b_parts = partitions(&got).expect("assignment sent");
    assert_eq!(b_parts.len(), 3);
    assert!(b_parts.is_disjoint(&kept));
    match h.coordinator.groups.get("g") {
        Some(Group::Consumer(group)) => assert_eq!(group.state_name(), "Stable"),
        _ => panic!("consumer group expected"),
    }
}

#[test]
fn given_wrong_epochs_when_heartbeating_should_fence_or_reject() {
    let mut h = Harness::new();
    let (a, first) = h.join();
    let bad = h.beat(Harness::request(&a, first.member_epoch + 5, None));
    assert_eq!(bad.error, Some(ErrorCode::FencedMemberEpoch));
    let unknown = h.beat(Harness::request("ghost", 3, None));
    assert_eq!(unknown.error, Some(ErrorCode::UnknownMemberId));
    assert_eq!(
        h.coordinator
            .validate_offset_commit(0, "g", &a, None, first.member_epoch - 1),
        Err(ErrorCode::StaleMemberEpoch)
    );
    assert_eq!(
        h.coordinator
            .validate_offset_commit(0, "g", &a, None, first.member_epoch),
        Ok(())
    );
    let mut request = Harness::request("", 0, None);
    request.server_assignor = Some("sticky".into());
    assert_eq!(h.beat(request).error, Some(ErrorCode::UnsupportedAssignor));
    let mut request = Harness::request("", 0, None);
    request.subscribed_topic_names = None;
    assert_eq!(h.beat(request).error, Some(ErrorCode::InvalidRequest));
}

#[test]
fn given_member_leaves_or_expires_should_give_partitions_to_the_rest() {
    let mut h = Harness::new();
    let (a, first) = h.join();
    let all: BTreeSet<i32> = (0..6).collect();
    let (b, joined) = h.join();
    let revoke = h.beat(Harness::request(&a, first.member_epoch, Some(&all)));
    let kept = partitions(&revoke).unwrap();
    h.beat(Harness::request(&a, first.member_epoch, Some(&kept)));
    let got = h.beat(Harness::request(
        &b,
        joined.member_epoch,
        Some(&BTreeSet::new()),
    ));
    let b_parts = partitions(&got).unwrap();

    // b leaves: a gets everything back on its next heartbeat.
    let left = h.beat(Harness::request(&b, -1, None));
    assert_eq!(left.member_epoch, -1);
    let a_epoch = h.beat(Harness::request(&a, joined.member_epoch, Some(&kept)));
    assert_eq!(partitions(&a_epoch), Some(all.clone()));
    let _ = b_parts;

    // a stops heartbeating: after the session timeout the group is empty.
    h.now_ms += 45_000;
    let _ = h.coordinator.tick(h.now_ms);
    assert_eq!(
        h.beat(Harness::request(&a, a_epoch.member_epoch, None))
            .error,
        Some(ErrorCode::UnknownMemberId)
    );
}

#[test]
fn given_topic_grows_when_heartbeating_should_assign_new_partitions() {
    let mut h = Harness::new();
    let (a, first) = h.join();
    h.topics.insert("t".into(), (topic_id(), 8));
    let all: BTreeSet<i32> = (0..6).collect();
    let grown = h.beat(Harness::request(&a, first.member_epoch, Some(&all)));
    assert_eq!(partitions(&grown), Some((0..8).collect()));
    assert!(grown.member_epoch > first.member_epoch);
}

#[test]
fn given_protocol_mismatch_should_refuse_mixing_classic_and_consumer_groups() {
    let mut h = Harness::new();
    let _ = h.join();
    let actions = h.coordinator.join(
        0,
        JoinGroup {
            group_id: "g".into(),
            member_id: String::new(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: String::new(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Default::default())],
            require_known_member_id: true,
        },
        1,
    );
    assert!(matches!(
        &actions[..],
        [super::Action::JoinDone { result, .. }] if result.error == Some(ErrorCode::InconsistentGroupProtocol)
    ));

    // A non-empty classic group refuses consumer-protocol members.
    let _ = h.coordinator.join(
        0,
        JoinGroup {
            group_id: "classic".into(),
            member_id: String::new(),
            group_instance_id: Some("i".into()),
            client_id: "c".into(),
            client_host: String::new(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Default::default())],
            require_known_member_id: true,
        },
        2,
    );
    let mut request = Harness::request("", 0, None);
    request.group_id = "classic".into();
    assert_eq!(h.beat(request).error, Some(ErrorCode::GroupIdNotFound));
}

#[test]
fn given_range_assignor_requested_should_use_it() {
    let mut h = Harness::new();
    let mut request = Harness::request("", 0, None);
    request.server_assignor = Some("range".into());
    let result = h.beat(request);
    assert_eq!(result.error, None);
    match h.coordinator.groups.get("g") {
        Some(Group::Consumer(group)) => assert_eq!(group.assignor_name, "range"),
        _ => panic!("consumer group expected"),
    }
}

#[test]
fn given_regex_subscription_should_assign_matching_topics_and_pick_up_new_ones() {
    let mut h = Harness::new();
    let other = Uuid::from_bytes([7; 16]);
    h.topics.insert("orders-eu".into(), (other, 2));
    h.topics
        .insert("__consumer_offsets".into(), (Uuid::from_bytes([1; 16]), 50));
    let mut request = Harness::request("", 0, None);
    request.subscribed_topic_names = None;
    request.subscribed_topic_regex = Some("orders-.*".into());
    let joined = h.beat(request);
    assert_eq!(joined.error, None, "{joined:?}");
    let assignment = joined.assignment.unwrap();
    assert_eq!(assignment.keys().copied().collect::<Vec<_>>(), vec![other]);
    assert_eq!(assignment[&other].len(), 2);

    // A new matching topic joins the subscription on the next heartbeat.
    let later = Uuid::from_bytes([8; 16]);
    h.topics.insert("orders-us".into(), (later, 1));
    let member_id = joined.member_id.unwrap();
    let owned: Vec<(Uuid, Vec<i32>)> = vec![(other, vec![0, 1])];
    let mut request = Harness::request(&member_id, joined.member_epoch, None);
    request.owned = Some(owned);
    let grown = h.beat(request);
    assert_eq!(grown.assignment.unwrap().len(), 2);

    let mut bad = Harness::request("", 0, None);
    bad.subscribed_topic_regex = Some("orders-(".into());
    assert_eq!(h.beat(bad).error, Some(ErrorCode::InvalidRegularExpression));
}

#[test]
fn given_static_member_when_it_restarts_should_get_its_partitions_back_without_a_rebalance() {
    let mut h = Harness::new();
    let mut request = Harness::request("", 0, None);
    request.instance_id = Some("pod-1".into());
    let first = h.beat(request.clone());
    let member = first.member_id.clone().unwrap();
    let all: BTreeSet<i32> = (0..6).collect();
    assert_eq!(partitions(&first), Some(all.clone()));
    let mut leave = Harness::request(&member, -2, None);
    leave.instance_id = Some("pod-1".into());
    assert_eq!(h.beat(leave).member_epoch, -2);
    // The old incarnation is gone for good: heartbeats with its epoch are fenced.
    assert_eq!(
        h.beat(Harness::request(&member, first.member_epoch, None))
            .error,
        Some(ErrorCode::FencedMemberEpoch)
    );
    let back = h.beat(request);
    assert_eq!(back.error, None);
    assert_ne!(back.member_id.as_deref(), Some(member.as_str()));
    assert_eq!(partitions(&back), Some(all));
}

/// Seeded random joins, leaves, heartbeats and topic growth with clients that do exactly
/// what the answers say: no partition is ever owned by two clients at once, and once
/// everyone keeps heartbeating the group converges to Stable with every partition owned.
#[test]
fn given_random_membership_changes_should_never_double_assign_and_should_converge() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;

    struct Client {
        id: String,
        epoch: i32,
        owned: BTreeSet<i32>,
    }

    fn beat(h: &mut Harness, client: &mut Client) -> bool {
        let result = h.beat(Harness::request(
            &client.id,
            client.epoch,
            Some(&client.owned),
        ));
        if result.error.is_some() {
            return false;
        }
        client.epoch = result.member_epoch;
        if let Some(assigned) = partitions(&result) {
            client.owned = assigned;
        }
        true
    }

    fn check_disjoint(clients: &HashMap<usize, Client>, seed: u64) {
        let mut seen = BTreeSet::new();
        for client in clients.values() {
            for p in &client.owned {
                assert!(seen.insert(*p), "seed {seed}: partition {p} owned twice");
            }
        }
    }

    for seed in 0..50u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut h = Harness::new();
        let mut clients: HashMap<usize, Client> = HashMap::new();
        let mut next = 0usize;
        let mut partitions_now = 6;
        for _ in 0..200 {
            match rng.gen_range(0..10) {
                0 | 1 => {
                    let (id, joined) = h.join();
                    clients.insert(
                        next,
                        Client {
                            id,
                            epoch: joined.member_epoch,
                            owned: partitions(&joined).unwrap_or_default(),
                        },
                    );
                    next += 1;
                }
                2 if !clients.is_empty() => {
                    let key = *clients.keys().nth(rng.gen_range(0..clients.len())).unwrap();
                    let client = clients.remove(&key).unwrap();
                    h.beat(Harness::request(&client.id, -1, None));
                }
                3 if partitions_now < 12 => {
                    partitions_now += 1;
                    h.topics.insert("t".into(), (topic_id(), partitions_now));
                }
                _ if !clients.is_empty() => {
                    let key = *clients.keys().nth(rng.gen_range(0..clients.len())).unwrap();
                    let client = clients.get_mut(&key).unwrap();
                    if !beat(&mut h, client) {
                        // Fenced: the client drops everything and rejoins.
                        clients.remove(&key);
                    }
                }
                _ => {}
            }
            check_disjoint(&clients, seed);
        }
        if clients.is_empty() {
            continue;
        }
        for _ in 0..20 {
            let keys: Vec<usize> = clients.keys().copied().collect();
            for key in keys {
                let client = clients.get_mut(&key).unwrap();
                assert!(beat(&mut h, client), "seed {seed}: fenced while converging");
                check_disjoint(&clients, seed);
            }
        }
        let owned: BTreeSet<i32> = clients.values().flat_map(|c| c.owned.clone()).collect();
        assert_eq!(owned, (0..partitions_now).collect(), "seed {seed}");
        match h.coordinator.groups.get("g") {
            Some(Group::Consumer(group)) => assert_eq!(group.state_name(), "Stable", "seed {seed}"),
            _ => panic!("consumer group expected"),
        }
    }
}

#[test]
fn given_consumer_group_snapshot_when_replayed_should_keep_epochs_and_assignments() {
    let mut h = Harness::new();
    let (a, first) = h.join();
    let (b, joined) = h.join();
    let all: BTreeSet<i32> = (0..6).collect();
    let kept = partitions(&h.beat(Harness::request(&a, first.member_epoch, Some(&all)))).unwrap();
    h.beat(Harness::request(&a, first.member_epoch, Some(&kept)));
    let snapshot = match h.coordinator.groups.get("g") {
        Some(Group::Consumer(group)) => super::consumer_records::encode_snapshot(group),
        _ => panic!("consumer group expected"),
    };
    // Truncated snapshots are refused, never half-applied.
    for len in 0..snapshot.len() {
        assert!(super::consumer_records::decode_snapshot(
            "g",
            &snapshot[..len],
            0,
            45_000,
            "uniform"
        )
        .is_err());
    }
    let mut restarted = Harness::new();
    restarted
        .coordinator
        .replay_consumer_group(0, "g", Some(&snapshot));
    // Members carry on with their epochs: no rejoin, commits at the epoch still valid.
    let again = restarted.beat(Harness::request(&a, joined.member_epoch, Some(&kept)));
    assert_eq!(again.error, None, "{again:?}");
    assert_eq!(again.member_epoch, joined.member_epoch);
    assert_eq!(
        restarted
            .coordinator
            .validate_offset_commit(0, "g", &b, None, joined.member_epoch),
        Ok(())
    );
    let got = restarted.beat(Harness::request(
        &b,
        joined.member_epoch,
        Some(&BTreeSet::new()),
    ));
    assert_eq!(partitions(&got).unwrap().len(), 3);
    restarted.coordinator.replay_consumer_group(0, "g", None);
    assert!(!restarted.coordinator.groups.contains_key("g"));
}

#[test]
fn given_full_group_when_a_new_static_member_is_refused_should_leave_no_instance_behind() {
    let mut h = Harness::new();
    h.coordinator.config.max_size = 1;
    let (a, _) = h.join();
    let mut request = Harness::request("", 0, None);
    request.instance_id = Some("pod-1".into());
    assert_eq!(
        h.beat(request.clone()).error,
        Some(ErrorCode::GroupMaxSizeReached)
    );
    let Some(Group::Consumer(group)) = h.coordinator.groups.get("g") else {
        panic!("no consumer group g");
    };
    assert!(
        group.static_members.is_empty(),
        "{:?}",
        group.static_members
    );
    // A leave by that instance finds nobody; once there is room it joins.
    let mut leave = Harness::request("", -1, None);
    leave.instance_id = Some("pod-1".into());
    assert_eq!(h.beat(leave).error, Some(ErrorCode::UnknownMemberId));
    assert_eq!(h.beat(Harness::request(&a, -1, None)).error, None);
    assert_eq!(h.beat(request).error, None);
}

/// KIP-848 clients pick their own member ids: ids and instances that collide with other
/// members, rejoins at epoch 0 under a taken id, leaves of unknown members and instances
/// taken over back and forth are all answered, and the group keeps one member per id and
/// instance.
#[test]
fn given_client_chosen_colliding_member_ids_and_instances_should_answer_and_stay_consistent() {
    let mut h = Harness::new();
    let beat = |h: &mut Harness, member: &str, epoch: i32, instance: Option<&str>| {
        let mut request = Harness::request(member, epoch, None);
        request.instance_id = instance.map(Into::into);
        h.beat(request)
    };
    assert_eq!(beat(&mut h, "m1", 0, Some("i1")).error, None);
    assert_eq!(beat(&mut h, "m2", 0, Some("i2")).error, None);
    // m2 takes i1 from m1, then m1 comes back under i2, then m1 again under no instance.
    assert_eq!(beat(&mut h, "m2", 0, Some("i1")).error, None);
    assert_eq!(beat(&mut h, "m1", 0, Some("i2")).error, None);
    assert_eq!(beat(&mut h, "m1", 0, None).error, None);
    // Static leave by instance for an instance whose member moved on, then unknown ones.
    assert_eq!(
        beat(&mut h, "", -2, Some("i2")).error,
        Some(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        beat(&mut h, "", -1, Some("nobody")).error,
        Some(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        beat(&mut h, "ghost", 3, None).error,
        Some(ErrorCode::UnknownMemberId)
    );
    // A member leaving temporarily, then heartbeating with the leave epoch again.
    assert_eq!(beat(&mut h, "m2", -2, Some("i1")).member_epoch, -2);
    assert_eq!(beat(&mut h, "m2", -2, Some("i1")).member_epoch, -2);
    assert_eq!(beat(&mut h, "m3", 0, Some("i1")).error, None);
    let Some(Group::Consumer(group)) = h.coordinator.groups.get("g") else {
        panic!("no consumer group g");
    };
    for (instance, member_id) in &group.static_members {
        let member = group
            .members
            .get(member_id)
            .expect("mapped member is in the group");
        assert_eq!(member.instance_id.as_deref(), Some(instance.as_str()));
    }
    let ids: BTreeSet<&str> = group.members.keys().map(String::as_str).collect();
    assert_eq!(ids, ["m1", "m3"].into());
}
