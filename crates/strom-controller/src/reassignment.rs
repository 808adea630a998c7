//! Partition reassignment (KIP-455): move a partition's replicas to a new set of brokers
//! without losing availability. Pure decisions, like the rest of [`Controller`].
//!
//! A reassignment runs in two steps, each one `PartitionReassignment` record:
//! - **Start**: the replicas become `target ∪ original` (target order first), with
//!   `adding = target − original` and `removing = original − target`. New replicas open
//!   as followers on their brokers and catch up through replication; the partition leader
//!   adds them to the ISR (AlterPartition) once they have.
//! - **Completion**, as soon as the ISR holds every target replica (checked after every
//!   ISR change and on the controller's liveness tick): replicas = target,
//!   ISR = ISR ∩ target; a leader outside the target hands over to the first target
//!   replica in the ISR. Removed replicas then delete their logs.
//!
//! A cancel (null target) reverts the replicas to the original set (`replicas − adding`).
//! A new target for a partition already moving replaces the old one, from the original
//! replicas. Every reassignment record bumps the leader epoch (so the leader rebuilds its
//! follower set and followers truncate to a known boundary) and the partition epoch.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::controller::{Controller, Decision};
use crate::image::{MetadataImage, PartitionState};
use crate::partition_change::{elect_leader, NO_LEADER};
use crate::record::MetadataRecord;

/// One partition of an AlterPartitionReassignments request: its new replicas (the first
/// is the preferred leader), or `None` to cancel the reassignment in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignmentRequest {
    #[serde(with = "crate::record::uuid_text")]
    pub topic_id: Uuid,
    pub partition: i32,
    pub target: Option<Vec<i32>>,
}

/// What a reassignment request did for one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReassignmentOutcome {
    /// NONE (0): started, replaced, completed at once, or cancelled (committed).
    Accepted,
    /// UNKNOWN_TOPIC_OR_PARTITION (3)
    UnknownTopicOrPartition,
    /// INVALID_REPLICA_ASSIGNMENT (39): with the reason.
    InvalidReplicaAssignment { reason: String },
    /// NO_REASSIGNMENT_IN_PROGRESS (85): a cancel of a partition that is not moving.
    NoReassignmentInProgress,
}

impl ReassignmentOutcome {
    /// The Kafka protocol error code of this outcome (0 for [`ReassignmentOutcome::Accepted`]).
    pub fn code(&self) -> i16 {
        match self {
            ReassignmentOutcome::Accepted => 0,
            ReassignmentOutcome::UnknownTopicOrPartition => 3,
            ReassignmentOutcome::InvalidReplicaAssignment { .. } => 39,
            ReassignmentOutcome::NoReassignmentInProgress => 85,
        }
    }

    /// A message for the client, when the code alone does not say enough.
    pub fn message(&self) -> Option<String> {
        match self {
            ReassignmentOutcome::InvalidReplicaAssignment { reason } => Some(reason.clone()),
            _ => None,
        }
    }
}

/// The answer for one partition of an AlterPartitionReassignments request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignmentResult {
    #[serde(with = "crate::record::uuid_text")]
    pub topic_id: Uuid,
    pub partition: i32,
    pub outcome: ReassignmentOutcome,
}

/// A partition whose replicas are moving, as ListPartitionReassignments shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OngoingReassignment {
    pub topic: String,
    #[serde(with = "crate::record::uuid_text")]
    pub topic_id: Uuid,
    pub partition: i32,
    /// Target and original replicas together (target first).
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// Most partitions one reassignment request may name, so its decision and its log entry
/// stay small (each partition is one record of ~200 bytes).
pub const REASSIGNMENTS_PER_REQUEST_MAX: usize = 10_000;

/// Every partition with a reassignment in progress, ordered by topic name and partition;
/// with `only`, just those partitions (unknown ones and those not moving are left out).
pub fn list_reassignments(
    image: &MetadataImage,
    only: Option<&[(Uuid, i32)]>,
) -> Vec<OngoingReassignment> {
    let mut ongoing = Vec::new();
    for topic in image.topics() {
        for state in &topic.partitions {
            if !is_reassigning(state) {
                continue;
            }
            if only.is_some_and(|only| !only.contains(&(topic.topic_id, state.partition))) {
                continue;
            }
            ongoing.push(OngoingReassignment {
                topic: topic.name.clone(),
                topic_id: topic.topic_id,
                partition: state.partition,
                replicas: state.replicas.clone(),
                adding: state.adding_replicas.clone(),
                removing: state.removing_replicas.clone(),
            });
        }
    }
    ongoing
}

/// Whether `state` has a reassignment in progress.
pub fn is_reassigning(state: &PartitionState) -> bool {
    !state.adding_replicas.is_empty() || !state.removing_replicas.is_empty()
}

/// The replicas a partition moves to: its replicas without those being removed.
fn target_of(state: &PartitionState) -> Vec<i32> {
    without(&state.replicas, &state.removing_replicas)
}

/// The replicas a partition had before its reassignment: without those being added.
fn original_of(state: &PartitionState) -> Vec<i32> {
    without(&state.replicas, &state.adding_replicas)
}

fn without(list: &[i32], gone: &[i32]) -> Vec<i32> {
    list.iter().copied().filter(|r| !gone.contains(r)).collect()
}

/// Whether a reassigning partition's ISR holds every target replica.
pub(crate) fn ready_to_complete(state: &PartitionState) -> bool {
    is_reassigning(state) && target_of(state).iter().all(|r| state.isr.contains(r))
}

fn check_target(image: &MetadataImage, target: &[i32]) -> Result<(), String> {
    if target.is_empty() {
        return Err("the target replica list is empty".to_string());
    }
    let mut seen = BTreeSet::new();
    for broker_id in target.iter().copied() {
        if !seen.insert(broker_id) {
            return Err(format!("broker {broker_id} is listed twice"));
        }
        if image.broker(broker_id).is_none() {
            return Err(format!(
                "broker {broker_id} is not registered (registered brokers: {:?})",
                image.broker_ids()
            ));
        }
    }
    Ok(())
}

/// The record that gives a partition `replicas`, `isr` (and the leader chosen for them),
/// with `adding`/`removing` in progress (both empty: no reassignment).
fn reassignment_record(
    image: &MetadataImage,
    topic_id: Uuid,
    state: &PartitionState,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    adding: Vec<i32>,
    removing: Vec<i32>,
) -> MetadataRecord {
    let (leader, isr) = if state.leader != NO_LEADER && replicas.contains(&state.leader) {
        (state.leader, isr)
    } else {
        // The leader leaves (or there was none): the first of the new replicas in the ISR
        // leads. No ISR member left at all: keep the replicas as the ISR, offline until
        // one returns, as for a partition created on fenced brokers.
        let chosen = elect_leader(&replicas, &isr, |r| image.is_broker_unfenced(r), false);
        if chosen.isr.is_empty() {
            (NO_LEADER, replicas.clone())
        } else {
            (chosen.leader, chosen.isr)
        }
    };
    debug_assert!(isr.iter().all(|r| replicas.contains(r)));
    MetadataRecord::PartitionReassignment {
        topic_id,
        partition: state.partition,
        replicas,
        adding,
        removing,
        leader,
        leader_epoch: state.leader_epoch + 1,
        isr,
        partition_epoch: state.partition_epoch + 1,
    }
}

/// The completion record of a partition whose ISR holds every target replica.
pub(crate) fn completion_record(
    image: &MetadataImage,
    topic_id: Uuid,
    state: &PartitionState,
) -> Option<MetadataRecord> {
    if !ready_to_complete(state) {
        return None;
    }
    let target = target_of(state);
    let isr: Vec<i32> = state
        .isr
        .iter()
        .copied()
        .filter(|r| target.contains(r))
        .collect();
    Some(reassignment_record(
        image,
        topic_id,
        state,
        target,
        isr,
        Vec::new(),
        Vec::new(),
    ))
}

impl Controller {
    /// Decides an AlterPartitionReassignments request, one answer per entry in order.
    /// Entries are decided one after the other (a later entry sees an earlier one's
    /// effect). A target whose replicas are already all in the ISR completes at once.
    pub fn alter_partition_reassignments(
        &self,
        image: &MetadataImage,
        requests: &[ReassignmentRequest],
    ) -> Decision<Vec<ReassignmentResult>> {
        let mut scratch = image.clone();
        let mut records = Vec::new();
        let mut results = Vec::new();
        for request in requests {
            let (outcome, decided) = decide_one(&scratch, request);
            for record in decided {
                scratch
                    .apply(&record)
                    .expect("a reassignment decided against this image fits it");
                records.push(record);
            }
            results.push(ReassignmentResult {
                topic_id: request.topic_id,
                partition: request.partition,
                outcome,
            });
        }
        Decision {
            records,
            response: results,
        }
    }

    /// Completes every reassignment whose ISR holds all its target replicas (the
    /// liveness tick's fallback; AlterPartition completes them as the ISR grows).
    pub fn complete_reassignments(&self, image: &MetadataImage) -> Decision<usize> {
        let mut records = Vec::new();
        for topic in image.topics() {
            for state in &topic.partitions {
                records.extend(completion_record(image, topic.topic_id, state));
            }
        }
        Decision {
            response: records.len(),
            records,
        }
    }
}

fn decide_one(
    image: &MetadataImage,
    request: &ReassignmentRequest,
) -> (ReassignmentOutcome, Vec<MetadataRecord>) {
    let Some(state) = image.partition(request.topic_id, request.partition) else {
        return (ReassignmentOutcome::UnknownTopicOrPartition, Vec::new());
    };
    let topic_id = request.topic_id;
    let original = original_of(state);
    let Some(target) = &request.target else {
        if !is_reassigning(state) {
            return (ReassignmentOutcome::NoReassignmentInProgress, Vec::new());
        }
        let isr = state
            .isr
            .iter()
            .copied()
            .filter(|r| original.contains(r))
            .collect();
        let record = reassignment_record(
            image,
            topic_id,
            state,
            original,
            isr,
            Vec::new(),
            Vec::new(),
        );
        return (ReassignmentOutcome::Accepted, vec![record]);
    };
    if let Err(reason) = check_target(image, target) {
        return (
            ReassignmentOutcome::InvalidReplicaAssignment { reason },
            Vec::new(),
        );
    }
    if !is_reassigning(state) && *target == state.replicas {
        return (ReassignmentOutcome::Accepted, Vec::new());
    }
    let mut replicas = target.clone();
    replicas.extend(original.iter().copied().filter(|r| !target.contains(r)));
    let adding = without(target, &original);
    let removing = without(&original, target);
    let isr = state
        .isr
        .iter()
        .copied()
        .filter(|r| replicas.contains(r))
        .collect();
    let start = reassignment_record(image, topic_id, state, replicas, isr, adding, removing);
    let mut started = image.clone();
    started
        .apply(&start)
        .expect("a reassignment decided against this image fits it");
    let after = started
        .partition(topic_id, request.partition)
        .expect("the partition was just changed");
    let mut records = vec![start.clone()];
    if let Some(complete) = completion_record(&started, topic_id, after) {
        // The target is already in sync (a shrink, a reorder): finish in the same entry,
        // with no half-moved state ever visible.
        records = vec![complete_from(image, topic_id, state, complete)];
    }
    (ReassignmentOutcome::Accepted, records)
}

/// A start and its immediate completion folded into one record decided against the
/// state before the start: the epochs go up by one, not two.
fn complete_from(
    image: &MetadataImage,
    topic_id: Uuid,
    before: &PartitionState,
    complete: MetadataRecord,
) -> MetadataRecord {
    let MetadataRecord::PartitionReassignment { replicas, isr, .. } = complete else {
        unreachable!("completion_record builds a PartitionReassignment");
    };
    reassignment_record(
        image,
        topic_id,
        before,
        replicas,
        isr,
        Vec::new(),
        Vec::new(),
    )
}

#[cfg(test)]
#[path = "reassignment_tests.rs"]
mod tests;
