//! The leadership and ISR rules without sockets: images built from records, decisions
//! checked record by record.

use super::*;
use crate::ids::SeededIds;

const TOPIC: Uuid = Uuid::from_u128(0x0123);

fn controller() -> Controller {
    Controller::new(1, Box::new(SeededIds::new(7)))
}

/// Brokers 1..=3 (the `fenced` ones fenced) and topic `t` with the given partitions as
/// `(replicas, leader, isr)`.
fn image(fenced: &[i32], partitions: &[(&[i32], i32, &[i32])]) -> MetadataImage {
    let mut records = vec![MetadataRecord::ClusterId {
        cluster_id: "c".into(),
    }];
    for broker_id in 1..=3 {
        records.push(MetadataRecord::RegisterBroker {
            broker_id,
            host: "h".into(),
            port: 9000,
            rack: None,
            listeners: Vec::new(),
        });
    }
    records.extend(fenced.iter().map(|broker_id| MetadataRecord::FenceBroker {
        broker_id: *broker_id,
    }));
    records.push(MetadataRecord::Topic {
        name: "t".into(),
        topic_id: TOPIC,
    });
    for (partition, (replicas, leader, isr)) in (0..).zip(partitions) {
        records.push(MetadataRecord::Partition {
            topic_id: TOPIC,
            partition,
            replicas: replicas.to_vec(),
            leader: *leader,
            leader_epoch: 0,
            isr: isr.to_vec(),
        });
    }
    let mut image = MetadataImage::empty();
    image.apply_entry(0, &records).unwrap();
    image
}

fn applied(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
    let mut next = image.clone();
    next.apply_entry(next.last_offset().unwrap() + 1, records)
        .unwrap();
    next
}

fn state(image: &MetadataImage, partition: i32) -> PartitionState {
    image.partition(TOPIC, partition).unwrap().clone()
}

#[test]
fn given_isr_and_fenced_replicas_when_electing_should_follow_assignment_order() {
    let unfenced = |r: i32| r != 2;
    let chosen = elect_leader(&[2, 3, 1], &[1, 2, 3], unfenced, false);
    assert_eq!(
        chosen,
        LeaderAndIsr {
            leader: 3,
            isr: vec![1, 2, 3]
        }
    );
    let offline = elect_leader(&[2, 3], &[2], unfenced, false);
    assert_eq!(
        offline,
        LeaderAndIsr {
            leader: NO_LEADER,
            isr: vec![2]
        }
    );
    let unclean = elect_leader(&[2, 3], &[2], unfenced, true);
    assert_eq!(
        unclean,
        LeaderAndIsr {
            leader: 3,
            isr: vec![3]
        }
    );
    assert_eq!(isr_without(&[1, 2], 2), vec![1]);
    assert_eq!(isr_without(&[2], 2), vec![2], "the last ISR member stays");
}

#[test]
fn given_leader_fenced_when_deciding_should_elect_from_isr_and_bump_epochs() {
    let image = image(
        &[],
        &[
            (&[2, 1, 3], 2, &[2, 1, 3]),
            (&[1, 2], 1, &[1, 2]),
            (&[3, 1], 3, &[3, 1]),
            (&[2], 2, &[2]),
        ],
    );
    let decision = controller().fence_brokers(&image, &[2]);
    assert_eq!(
        decision.records[0],
        MetadataRecord::FenceBroker { broker_id: 2 }
    );
    assert_eq!(decision.records.len(), 4, "p2 does not involve broker 2");
    let after = applied(&image, &decision.records);
    assert!(!after.is_broker_unfenced(2));
    let p0 = state(&after, 0);
    assert_eq!((p0.leader, p0.leader_epoch, p0.partition_epoch), (1, 1, 1));
    assert_eq!(p0.isr, vec![1, 3]);
    let p1 = state(&after, 1);
    assert_eq!((p1.leader, p1.leader_epoch, p1.partition_epoch), (1, 0, 1));
    assert_eq!(p1.isr, vec![1]);
    assert_eq!(state(&after, 2), state(&image, 2));
    let p3 = state(&after, 3);
    assert_eq!(
        (p3.leader, p3.leader_epoch, p3.isr.clone()),
        (NO_LEADER, 1, vec![2])
    );

    // Fencing again writes nothing; unfencing brings the offline partition back.
    assert!(controller().fence_brokers(&after, &[2]).records.is_empty());
    let back = controller().unfence_broker(&after, 2);
    assert_eq!(
        back.records[0],
        MetadataRecord::UnfenceBroker { broker_id: 2 }
    );
    let restored = applied(&after, &back.records);
    let p3 = state(&restored, 3);
    assert_eq!((p3.leader, p3.leader_epoch, p3.partition_epoch), (2, 2, 2));
    assert_eq!(
        state(&restored, 0).leader,
        1,
        "an online partition keeps its leader"
    );
}

#[test]
fn given_unclean_election_enabled_when_last_isr_member_fenced_should_elect_out_of_sync_replica() {
    let mut image = image(&[], &[(&[2, 3], 2, &[2])]);
    image
        .apply(&MetadataRecord::TopicConfig {
            topic_id: TOPIC,
            key: UNCLEAN_LEADER_ELECTION_CONFIG.into(),
            value: Some("true".into()),
        })
        .unwrap();
    let after = applied(&image, &controller().fence_brokers(&image, &[2]).records);
    let p0 = state(&after, 0);
    assert_eq!(
        (p0.leader, p0.isr.clone(), p0.leader_epoch),
        (3, vec![3], 1)
    );
}

#[test]
fn given_alter_partition_when_checked_should_refuse_stale_or_ineligible_requests() {
    let image = image(&[3], &[(&[1, 2, 3], 1, &[1])]);
    let request = |broker_id, leader_epoch, partition_epoch, new_isr: &[i32]| AlterPartition {
        broker_id,
        topic_id: TOPIC,
        partition: 0,
        leader_epoch,
        partition_epoch,
        new_isr: new_isr.to_vec(),
    };
    let refused = |request: AlterPartition| {
        let decision = controller().alter_partition(&image, &request);
        assert!(decision.records.is_empty());
        decision.response.unwrap_err()
    };
    assert_eq!(
        refused(request(1, 5, 0, &[1, 2])),
        PartitionChangeError::FencedLeaderEpoch {
            current: 0,
            given: 5
        }
    );
    assert_eq!(
        refused(request(2, 0, 0, &[1, 2])),
        PartitionChangeError::NotPartitionLeader {
            broker_id: 2,
            leader: 1
        }
    );
    assert_eq!(
        refused(request(1, 0, 3, &[1, 2])).code(),
        95,
        "InvalidUpdateVersion"
    );
    for (isr, broker_id, reason) in [
        (&[2][..], 1, IneligibleReason::LeaderMissing),
        (&[1, 3][..], 3, IneligibleReason::Fenced),
        (&[1, 4][..], 4, IneligibleReason::NotAssigned),
        (&[1, 2, 2][..], 2, IneligibleReason::Duplicate),
    ] {
        assert_eq!(
            refused(request(1, 0, 0, isr)),
            PartitionChangeError::IneligibleReplica { broker_id, reason }
        );
    }
    let missing = AlterPartition {
        partition: 9,
        ..request(1, 0, 0, &[1])
    };
    assert_eq!(refused(missing).code(), 3);

    let decision = controller().alter_partition(&image, &request(1, 0, 0, &[1, 2]));
    let answered = decision.response.unwrap();
    assert_eq!(
        (
            answered.isr.clone(),
            answered.partition_epoch,
            answered.leader_epoch
        ),
        (vec![1, 2], 1, 0)
    );
    assert_eq!(state(&applied(&image, &decision.records), 0), answered);
    // The same ISR again: nothing to write, the current state back.
    let unchanged = controller().alter_partition(&image, &request(1, 0, 0, &[1]));
    assert!(unchanged.records.is_empty());
    assert_eq!(unchanged.response.unwrap(), state(&image, 0));
}

#[test]
fn given_many_partitions_in_one_alter_partition_when_decided_should_answer_each_and_write_one_decision(
) {
    let image = image(
        &[3],
        &[
            (&[1, 2, 3], 1, &[1]),
            (&[1, 2, 3], 1, &[1]),
            (&[2, 1, 3], 2, &[2]),
            (&[1, 2, 3], 1, &[1, 2]),
        ],
    );
    let request = |partition, new_isr: &[i32]| AlterPartition {
        broker_id: 1,
        topic_id: TOPIC,
        partition,
        leader_epoch: 0,
        partition_epoch: 0,
        new_isr: new_isr.to_vec(),
    };
    let requests = [
        request(0, &[1, 2]),
        // Refused: broker 3 is fenced; the others still go through.
        request(1, &[1, 3]),
        // Refused: broker 1 does not lead partition 2.
        request(2, &[2, 1]),
        // Already the ISR: answered, nothing written.
        request(3, &[1, 2]),
        // A second change of partition 0 in the same request names an epoch the first
        // one has just replaced.
        request(0, &[1, 2, 3]),
        request(1, &[1, 2]),
    ];
    let decision = controller().alter_partitions(&image, &requests);
    let answers = decision.response;
    assert_eq!(answers.len(), requests.len(), "one answer per entry");
    assert_eq!(answers[0].as_ref().unwrap().isr, vec![1, 2]);
    assert_eq!(
        answers[1],
        Err(PartitionChangeError::IneligibleReplica {
            broker_id: 3,
            reason: IneligibleReason::Fenced
        })
    );
    assert_eq!(
        answers[2],
        Err(PartitionChangeError::NotPartitionLeader {
            broker_id: 1,
            leader: 2
        })
    );
    assert_eq!(answers[3].as_ref().unwrap(), &state(&image, 3));
    assert_eq!(
        answers[4],
        Err(PartitionChangeError::InvalidUpdateVersion {
            current: 1,
            given: 0
        })
    );
    assert_eq!(answers[5].as_ref().unwrap().isr, vec![1, 2]);
    assert_eq!(decision.records.len(), 2, "{:?}", decision.records);
    let after = applied(&image, &decision.records);
    assert_eq!(&state(&after, 0), answers[0].as_ref().unwrap());
    assert_eq!(&state(&after, 1), answers[5].as_ref().unwrap());
    assert_eq!(state(&after, 2), state(&image, 2));
}

#[test]
fn given_preferred_election_when_decided_should_answer_per_partition() {
    let image = image(
        &[3],
        &[
            (&[1, 2], 2, &[1, 2]),
            (&[1, 2], 1, &[1, 2]),
            (&[2, 1], 1, &[1]),
            (&[3, 1], 1, &[1, 3]),
        ],
    );
    let decision = controller().elect_leaders(
        &image,
        &[(TOPIC, 0), (TOPIC, 1), (TOPIC, 2), (TOPIC, 3), (TOPIC, 7)],
        true,
    );
    let outcomes: Vec<ElectionOutcome> = decision.response.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            ElectionOutcome::Elected { leader: 1 },
            ElectionOutcome::ElectionNotNeeded,
            ElectionOutcome::PreferredLeaderNotAvailable,
            ElectionOutcome::PreferredLeaderNotAvailable,
            ElectionOutcome::UnknownTopicOrPartition,
        ]
    );
    assert_eq!(decision.records.len(), 1);
    let p0 = state(&applied(&image, &decision.records), 0);
    assert_eq!((p0.leader, p0.leader_epoch, p0.partition_epoch), (1, 1, 1));
}

#[test]
fn given_controlled_shutdown_when_decided_should_move_leadership_and_leave_isrs() {
    let image = image(&[], &[(&[2, 1], 2, &[2, 1]), (&[1, 2], 1, &[1, 2])]);
    let decision = controller().controlled_shutdown(&image, 2);
    assert!(decision.response);
    let after = applied(&image, &decision.records);
    assert!(!after.is_broker_unfenced(2));
    assert_eq!(
        (state(&after, 0).leader, state(&after, 0).isr.clone()),
        (1, vec![1])
    );
    assert_eq!(state(&after, 1).isr, vec![1]);
    assert!(!controller().controlled_shutdown(&image, 9).response);
}

#[test]
fn given_preferred_leaders_that_could_lead_when_rebalancing_should_move_only_those() {
    let image = image(
        &[3],
        &[
            (&[1, 2], 2, &[1, 2]), // 1 could lead: moves
            (&[1, 2], 1, &[1, 2]), // already balanced
            (&[2, 1], 1, &[1]),    // 2 out of sync: stays
            (&[3, 1], 1, &[1, 3]), // 3 fenced: stays
            (&[2, 3], 3, &[2, 3]), // 2 could lead: moves
        ],
    );
    let imbalanced: Vec<i32> = (0..5)
        .filter(|p| leader_imbalanced(&image, &state(&image, *p)))
        .collect();
    assert_eq!(imbalanced, vec![0, 4]);
    let decision = controller().rebalance_leaders(&image);
    assert_eq!(decision.response, 2);
    let after = applied(&image, &decision.records);
    assert_eq!(state(&after, 0).leader, 1);
    assert_eq!(state(&after, 4).leader, 2);
    assert_eq!(state(&after, 4).leader_epoch, 1);
    assert_eq!(state(&after, 2).leader, 1);
    // Balanced now: nothing left to move, and no records.
    let again = controller().rebalance_leaders(&after);
    assert_eq!(again.response, 0);
    assert!(again.records.is_empty());
}
