//! Reassignment decisions without sockets: images built from records, decisions checked
//! record by record, then applied to see the state a broker would see.

use super::*;
use crate::ids::SeededIds;
use crate::partition_change::AlterPartition;

const TOPIC: Uuid = Uuid::from_u128(0x0456);

fn controller() -> Controller {
    Controller::new(1, Box::new(SeededIds::new(7)))
}

/// Brokers 1..=4 and topic `t` with partition 0 on `replicas`, led by the first, all in
/// sync.
fn image(replicas: &[i32]) -> MetadataImage {
    let mut records = vec![MetadataRecord::ClusterId {
        cluster_id: "c".into(),
    }];
    for broker_id in 1..=4 {
        records.push(MetadataRecord::RegisterBroker {
            broker_id,
            host: "h".into(),
            port: 9000,
            rack: None,
            listeners: Vec::new(),
        });
    }
    records.push(MetadataRecord::Topic {
        name: "t".into(),
        topic_id: TOPIC,
    });
    records.push(MetadataRecord::Partition {
        topic_id: TOPIC,
        partition: 0,
        replicas: replicas.to_vec(),
        leader: replicas[0],
        leader_epoch: 0,
        isr: replicas.to_vec(),
    });
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

fn state(image: &MetadataImage) -> PartitionState {
    image.partition(TOPIC, 0).unwrap().clone()
}

fn reassign(target: Option<&[i32]>) -> Vec<ReassignmentRequest> {
    vec![ReassignmentRequest {
        topic_id: TOPIC,
        partition: 0,
        target: target.map(<[i32]>::to_vec),
    }]
}

/// The leader of partition 0 sets the ISR to `new_isr`.
fn grow_isr(image: &MetadataImage, new_isr: &[i32]) -> (MetadataImage, PartitionState) {
    let current = state(image);
    let decision = controller().alter_partition(
        image,
        &AlterPartition {
            broker_id: current.leader,
            topic_id: TOPIC,
            partition: 0,
            leader_epoch: current.leader_epoch,
            partition_epoch: current.partition_epoch,
            new_isr: new_isr.to_vec(),
        },
    );
    let answer = decision.response.unwrap();
    let next = applied(image, &decision.records);
    assert_eq!(answer, state(&next), "the answer is the committed state");
    (next, answer)
}

#[test]
fn given_rf2_on_1_2_when_reassigned_to_2_3_should_add_3_then_complete_once_3_is_in_sync() {
    let before = image(&[1, 2]);
    let decision = controller().alter_partition_reassignments(&before, &reassign(Some(&[2, 3])));
    assert_eq!(decision.response[0].outcome, ReassignmentOutcome::Accepted);
    let started = applied(&before, &decision.records);
    let moving = state(&started);
    assert_eq!(moving.replicas, vec![2, 3, 1]);
    assert_eq!(moving.adding_replicas, vec![3]);
    assert_eq!(moving.removing_replicas, vec![1]);
    assert_eq!((moving.leader, moving.leader_epoch), (1, 1));
    assert_eq!(moving.isr, vec![1, 2]);
    assert_eq!(moving.partition_epoch, 1);
    let listed = list_reassignments(&started, None);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].adding.clone(), listed[0].removing.clone()),
        (vec![3], vec![1])
    );

    // Nothing to complete while 3 is catching up.
    assert!(controller()
        .complete_reassignments(&started)
        .records
        .is_empty());

    // The leader adds 3 to the ISR: the reassignment completes in the same entry, and
    // leadership leaves broker 1 for the first target replica in the ISR.
    let (done, answer) = grow_isr(&started, &[1, 2, 3]);
    assert_eq!(answer.replicas, vec![2, 3]);
    assert_eq!(answer.isr, vec![2, 3]);
    assert_eq!((answer.leader, answer.leader_epoch), (2, 2));
    assert!(answer.adding_replicas.is_empty() && answer.removing_replicas.is_empty());
    assert_eq!(answer.partition_epoch, 3);
    assert!(list_reassignments(&done, None).is_empty());
}

#[test]
fn given_reassignment_in_progress_when_cancelled_should_revert_to_the_original_replicas() {
    let before = image(&[1, 2]);
    let started = applied(
        &before,
        &controller()
            .alter_partition_reassignments(&before, &reassign(Some(&[3, 4])))
            .records,
    );
    assert_eq!(state(&started).replicas, vec![3, 4, 1, 2]);
    let cancel = controller().alter_partition_reassignments(&started, &reassign(None));
    assert_eq!(cancel.response[0].outcome, ReassignmentOutcome::Accepted);
    let cancelled = state(&applied(&started, &cancel.records));
    assert_eq!(cancelled.replicas, vec![1, 2]);
    assert_eq!(cancelled.isr, vec![1, 2]);
    assert_eq!(cancelled.leader, 1);
    assert!(!is_reassigning(&cancelled));

    // A second cancel finds nothing to cancel.
    let again = controller()
        .alter_partition_reassignments(&applied(&started, &cancel.records), &reassign(None));
    assert_eq!(
        again.response[0].outcome,
        ReassignmentOutcome::NoReassignmentInProgress
    );
    assert_eq!(again.response[0].outcome.code(), 85);
    assert!(again.records.is_empty());
}

#[test]
fn given_target_already_in_sync_when_reassigned_should_complete_at_once() {
    let before = image(&[1, 2, 3]);
    let decision = controller().alter_partition_reassignments(&before, &reassign(Some(&[3, 2])));
    assert_eq!(decision.records.len(), 1);
    let after = state(&applied(&before, &decision.records));
    assert_eq!(after.replicas, vec![3, 2]);
    assert_eq!(after.isr, vec![2, 3]);
    assert_eq!((after.leader, after.leader_epoch), (3, 1));
    assert_eq!(after.partition_epoch, 1);
    assert!(!is_reassigning(&after));

    // The same replicas again: nothing to do.
    let same = controller().alter_partition_reassignments(
        &applied(&before, &decision.records),
        &reassign(Some(&[3, 2])),
    );
    assert_eq!(same.response[0].outcome, ReassignmentOutcome::Accepted);
    assert!(same.records.is_empty());
}

#[test]
fn given_bad_targets_when_reassigned_should_refuse_each_with_its_code() {
    let before = image(&[1, 2]);
    for target in [&[][..], &[2, 2], &[2, 9]] {
        let decision = controller().alter_partition_reassignments(&before, &reassign(Some(target)));
        assert_eq!(decision.response[0].outcome.code(), 39, "{target:?}");
        assert!(decision.response[0].outcome.message().is_some());
        assert!(decision.records.is_empty());
    }
    let unknown = controller().alter_partition_reassignments(
        &before,
        &[ReassignmentRequest {
            topic_id: TOPIC,
            partition: 5,
            target: Some(vec![1]),
        }],
    );
    assert_eq!(
        unknown.response[0].outcome,
        ReassignmentOutcome::UnknownTopicOrPartition
    );
}

#[test]
fn given_new_target_for_moving_partition_when_reassigned_should_replace_from_the_original() {
    let before = image(&[1, 2]);
    let started = applied(
        &before,
        &controller()
            .alter_partition_reassignments(&before, &reassign(Some(&[2, 3])))
            .records,
    );
    let replaced = controller().alter_partition_reassignments(&started, &reassign(Some(&[4, 1])));
    let after = state(&applied(&started, &replaced.records));
    assert_eq!(after.replicas, vec![4, 1, 2]);
    assert_eq!(after.adding_replicas, vec![4]);
    assert_eq!(after.removing_replicas, vec![2]);
}

#[test]
fn given_reassignment_in_progress_when_snapshotted_should_rebuild_equal_image() {
    let before = image(&[1, 2]);
    let started = applied(
        &before,
        &controller()
            .alter_partition_reassignments(&before, &reassign(Some(&[2, 3])))
            .records,
    );
    let rebuilt =
        MetadataImage::from_snapshot(&started.to_records(), started.last_offset()).unwrap();
    assert_eq!(rebuilt, started);
}

#[test]
fn given_isr_already_complete_when_liveness_tick_checks_should_complete_it() {
    // A start recorded while a replica it adds was already in the ISR cannot happen from
    // a decision; build it by hand, as a log written mid-change could hold it.
    let before = image(&[1, 2, 3]);
    let moving = applied(
        &before,
        &[MetadataRecord::PartitionReassignment {
            topic_id: TOPIC,
            partition: 0,
            replicas: vec![2, 3, 1],
            adding: vec![],
            removing: vec![1],
            leader: 1,
            leader_epoch: 1,
            isr: vec![1, 2, 3],
            partition_epoch: 1,
        }],
    );
    let decision = controller().complete_reassignments(&moving);
    assert_eq!(decision.response, 1);
    let done = state(&applied(&moving, &decision.records));
    assert_eq!(done.replicas, vec![2, 3]);
    assert_eq!(done.leader, 2);
    assert_eq!(done.isr, vec![2, 3]);
}
