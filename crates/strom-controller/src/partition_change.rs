//! Leadership and ISR decisions (KRaft's `ReplicationControlManager` rules): fencing and
//! unfencing brokers, AlterPartition from partition leaders, leader elections and
//! controlled shutdown. Like the rest of [`Controller`], pure: image in, records and
//! answers out; the quorum proposes the records.
//!
//! Rules, everywhere:
//! - A leader is chosen in assignment order among replicas that are in the ISR and
//!   unfenced. None: the partition goes offline (leader -1), unless the topic sets
//!   `unclean.leader.election.enable=true`; then the first unfenced replica leads with an
//!   ISR of itself (it may lack acknowledged writes: that is what "unclean" means).
//! - A fenced broker leaves every ISR, except that the ISR is never emptied: its last
//!   member stays, so the partition can come back when that broker does.
//! - The leader epoch goes up by one whenever the leader changes (to -1 included); the
//!   partition epoch goes up by one on every change. A change that changes nothing writes
//!   nothing.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::controller::{Controller, Decision};
use crate::image::{MetadataImage, PartitionState, TopicImage};
use crate::reassignment::completion_record;
use crate::record::MetadataRecord;

/// The topic config that allows electing a leader outside the ISR.
pub const UNCLEAN_LEADER_ELECTION_CONFIG: &str = "unclean.leader.election.enable";
/// The leader of an offline partition.
pub const NO_LEADER: i32 = -1;

/// Kafka's AlterPartition for one partition: the partition leader `broker_id` asks to set
/// the ISR to `new_isr`, naming the leader and partition epochs it knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartition {
    pub broker_id: i32,
    #[serde(with = "crate::record::uuid_text")]
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<i32>,
}

/// Why an AlterPartition is refused. Each variant is one Kafka error code
/// ([`PartitionChangeError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PartitionChangeError {
    /// UNKNOWN_TOPIC_ID (100)
    #[error("topic id {topic_id} does not exist")]
    UnknownTopicId {
        #[serde(with = "crate::record::uuid_text")]
        topic_id: Uuid,
    },
    /// UNKNOWN_TOPIC_OR_PARTITION (3)
    #[error("partition {partition} of topic id {topic_id} does not exist")]
    UnknownPartition {
        #[serde(with = "crate::record::uuid_text")]
        topic_id: Uuid,
        partition: i32,
    },
    /// FENCED_LEADER_EPOCH (74): the sender's leader epoch is not the current one.
    #[error("leader epoch {given} is not the current leader epoch {current}")]
    FencedLeaderEpoch { current: i32, given: i32 },
    /// INVALID_REQUEST (42): the sender does not lead the partition (at the current epoch).
    #[error("broker {broker_id} is not the leader of the partition (the leader is {leader})")]
    NotPartitionLeader { broker_id: i32, leader: i32 },
    /// INVALID_UPDATE_VERSION (95): the sender's partition epoch is not the current one.
    #[error("partition epoch {given} is not the current partition epoch {current}")]
    InvalidUpdateVersion { current: i32, given: i32 },
    /// INELIGIBLE_REPLICA (107): the new ISR names a replica that may not be in it.
    #[error("replica {broker_id} may not be in the ISR: {reason}")]
    IneligibleReplica {
        broker_id: i32,
        reason: IneligibleReason,
    },
}

impl PartitionChangeError {
    /// The Kafka protocol error code for this error.
    pub fn code(&self) -> i16 {
        match self {
            PartitionChangeError::UnknownTopicId { .. } => 100,
            PartitionChangeError::UnknownPartition { .. } => 3,
            PartitionChangeError::FencedLeaderEpoch { .. } => 74,
            PartitionChangeError::NotPartitionLeader { .. } => 42,
            PartitionChangeError::InvalidUpdateVersion { .. } => 95,
            PartitionChangeError::IneligibleReplica { .. } => 107,
        }
    }
}

/// Why a replica may not be in a new ISR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum IneligibleReason {
    #[error("it is not assigned to the partition")]
    NotAssigned,
    #[error("it is fenced")]
    Fenced,
    #[error("it is listed twice")]
    Duplicate,
    #[error("the ISR must contain the leader")]
    LeaderMissing,
}

/// The answer for one partition of an ElectLeaders request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionResult {
    #[serde(with = "crate::record::uuid_text")]
    pub topic_id: Uuid,
    pub partition: i32,
    pub outcome: ElectionOutcome,
}

/// What an election did for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionOutcome {
    /// NONE (0): `leader` now leads (the change is committed).
    Elected { leader: i32 },
    /// ELECTION_NOT_NEEDED (84): the preferred replica already leads (preferred), or the
    /// partition has a leader (unclean).
    ElectionNotNeeded,
    /// PREFERRED_LEADER_NOT_AVAILABLE (80): the first replica is fenced or out of the ISR.
    PreferredLeaderNotAvailable,
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE (83): an unclean election found no unfenced replica.
    EligibleLeadersNotAvailable,
    /// UNKNOWN_TOPIC_OR_PARTITION (3)
    UnknownTopicOrPartition,
}

impl ElectionOutcome {
    /// The Kafka protocol error code of this outcome (0 for [`ElectionOutcome::Elected`]).
    pub fn code(&self) -> i16 {
        match self {
            ElectionOutcome::Elected { .. } => 0,
            ElectionOutcome::ElectionNotNeeded => 84,
            ElectionOutcome::PreferredLeaderNotAvailable => 80,
            ElectionOutcome::EligibleLeadersNotAvailable => 83,
            ElectionOutcome::UnknownTopicOrPartition => 3,
        }
    }
}

/// A partition's leader and ISR after a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaderAndIsr {
    pub(crate) leader: i32,
    pub(crate) isr: Vec<i32>,
}

/// Chooses a leader: the first replica (assignment order) in `isr` that `eligible`
/// accepts; else, with `unclean`, the first replica `eligible` accepts, with an ISR of
/// itself; else [`NO_LEADER`] with `isr` unchanged.
pub(crate) fn elect_leader(
    replicas: &[i32],
    isr: &[i32],
    eligible: impl Fn(i32) -> bool,
    unclean: bool,
) -> LeaderAndIsr {
    if let Some(leader) = replicas
        .iter()
        .copied()
        .find(|r| isr.contains(r) && eligible(*r))
    {
        return LeaderAndIsr {
            leader,
            isr: isr.to_vec(),
        };
    }
    if unclean {
        if let Some(leader) = replicas.iter().copied().find(|r| eligible(*r)) {
            return LeaderAndIsr {
                leader,
                isr: vec![leader],
            };
        }
    }
    LeaderAndIsr {
        leader: NO_LEADER,
        isr: isr.to_vec(),
    }
}

/// `isr` without `broker_id`, unless that would empty it (the last member stays).
pub(crate) fn isr_without(isr: &[i32], broker_id: i32) -> Vec<i32> {
    let shrunk: Vec<i32> = isr.iter().copied().filter(|r| *r != broker_id).collect();
    if shrunk.is_empty() {
        isr.to_vec()
    } else {
        shrunk
    }
}

/// Checks an AlterPartition against the partition's current state (Kafka's order: leader
/// epoch, leader, partition epoch, then the new ISR).
pub(crate) fn check_alter_partition(
    state: &PartitionState,
    request: &AlterPartition,
    is_unfenced: impl Fn(i32) -> bool,
) -> Result<(), PartitionChangeError> {
    if request.leader_epoch != state.leader_epoch {
        return Err(PartitionChangeError::FencedLeaderEpoch {
            current: state.leader_epoch,
            given: request.leader_epoch,
        });
    }
    if request.broker_id != state.leader {
        return Err(PartitionChangeError::NotPartitionLeader {
            broker_id: request.broker_id,
            leader: state.leader,
        });
    }
    if request.partition_epoch != state.partition_epoch {
        return Err(PartitionChangeError::InvalidUpdateVersion {
            current: state.partition_epoch,
            given: request.partition_epoch,
        });
    }
    let ineligible =
        |broker_id, reason| PartitionChangeError::IneligibleReplica { broker_id, reason };
    if !request.new_isr.contains(&state.leader) {
        return Err(ineligible(state.leader, IneligibleReason::LeaderMissing));
    }
    for (index, broker_id) in request.new_isr.iter().copied().enumerate() {
        if request.new_isr[..index].contains(&broker_id) {
            return Err(ineligible(broker_id, IneligibleReason::Duplicate));
        }
        if !state.replicas.contains(&broker_id) {
            return Err(ineligible(broker_id, IneligibleReason::NotAssigned));
        }
        if !is_unfenced(broker_id) {
            return Err(ineligible(broker_id, IneligibleReason::Fenced));
        }
    }
    Ok(())
}

/// The record that moves `state` to `next`, or `None` when nothing changes.
fn change_record(
    topic_id: Uuid,
    state: &PartitionState,
    next: LeaderAndIsr,
) -> Option<MetadataRecord> {
    if next.leader == state.leader && next.isr == state.isr {
        return None;
    }
    let leader_epoch = if next.leader == state.leader {
        state.leader_epoch
    } else {
        state.leader_epoch + 1
    };
    Some(MetadataRecord::PartitionChange {
        topic_id,
        partition: state.partition,
        leader: next.leader,
        leader_epoch,
        isr: next.isr,
        partition_epoch: state.partition_epoch + 1,
    })
}

fn unclean_allowed(topic: &TopicImage) -> bool {
    topic
        .configs
        .get(UNCLEAN_LEADER_ELECTION_CONFIG)
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

/// Decides `request` against `scratch` and applies the resulting records to it: the
/// records and the partition's state after them, or why it is refused (nothing applied).
fn alter_one(
    scratch: &mut MetadataImage,
    request: &AlterPartition,
) -> Result<(Vec<MetadataRecord>, PartitionState), PartitionChangeError> {
    let Some(topic_id) = scratch.topic_by_id(request.topic_id).map(|t| t.topic_id) else {
        return Err(PartitionChangeError::UnknownTopicId {
            topic_id: request.topic_id,
        });
    };
    let Some(state) = scratch.partition(request.topic_id, request.partition) else {
        return Err(PartitionChangeError::UnknownPartition {
            topic_id: request.topic_id,
            partition: request.partition,
        });
    };
    check_alter_partition(state, request, |r| scratch.is_broker_unfenced(r))?;
    let next = LeaderAndIsr {
        leader: state.leader,
        isr: request.new_isr.clone(),
    };
    let mut records: Vec<MetadataRecord> =
        change_record(topic_id, state, next).into_iter().collect();
    apply_all(scratch, &records);
    let after = scratch
        .partition(request.topic_id, request.partition)
        .expect("the partition exists");
    // The ISR now holding every target replica of a reassignment completes it, in the
    // same entry (KIP-455); the answer is the state after both.
    if let Some(complete) = completion_record(scratch, topic_id, after) {
        apply_all(scratch, std::slice::from_ref(&complete));
        records.push(complete);
    }
    let after = scratch
        .partition(request.topic_id, request.partition)
        .expect("the partition exists")
        .clone();
    Ok((records, after))
}

/// Applies `records` to `image` (records this module built always fit).
fn apply_all(image: &mut MetadataImage, records: &[MetadataRecord]) {
    for record in records {
        image
            .apply(record)
            .expect("a partition change decided against this image fits it");
    }
}

impl Controller {
    /// Fences each of `broker_ids` that is registered and unfenced: a `FenceBroker`, then a
    /// `PartitionChange` for every partition it leads (a new leader from the ISR) or is in
    /// the ISR of (it leaves the ISR).
    pub fn fence_brokers(&self, image: &MetadataImage, broker_ids: &[i32]) -> Decision<()> {
        let mut scratch = image.clone();
        let mut records = Vec::new();
        for broker_id in broker_ids.iter().copied() {
            if !scratch.is_broker_unfenced(broker_id) {
                continue;
            }
            let fenced = move_away(&scratch, broker_id, true);
            apply_all(&mut scratch, &fenced);
            records.extend(fenced);
        }
        Decision {
            records,
            response: (),
        }
    }

    /// Unfences `broker_id` when it is registered and fenced: an `UnfenceBroker`, then it
    /// leads every offline partition whose ISR contains it (or, with unclean election
    /// allowed on the topic, whose replicas do).
    pub fn unfence_broker(&self, image: &MetadataImage, broker_id: i32) -> Decision<()> {
        let fenced = image.broker(broker_id).is_some_and(|b| b.fenced);
        if !fenced {
            return Decision {
                records: Vec::new(),
                response: (),
            };
        }
        let mut records = vec![MetadataRecord::UnfenceBroker { broker_id }];
        for topic in image.topics() {
            let unclean = unclean_allowed(topic);
            for state in &topic.partitions {
                if state.leader != NO_LEADER || !state.replicas.contains(&broker_id) {
                    continue;
                }
                let eligible = |r: i32| r == broker_id || image.is_broker_unfenced(r);
                let next = elect_leader(&state.replicas, &state.isr, eligible, unclean);
                records.extend(change_record(topic.topic_id, state, next));
            }
        }
        Decision {
            records,
            response: (),
        }
    }

    /// Controlled shutdown of `broker_id`: fences it and moves every leadership away and
    /// takes it out of every ISR, as a missed session would, but before it stops, so no
    /// partition it led waits for a session timeout. `false` when it is not registered.
    pub fn controlled_shutdown(&self, image: &MetadataImage, broker_id: i32) -> Decision<bool> {
        if image.broker(broker_id).is_none() {
            return Decision {
                records: Vec::new(),
                response: false,
            };
        }
        let fence = image.is_broker_unfenced(broker_id);
        Decision {
            records: move_away(image, broker_id, fence),
            response: true,
        }
    }

    /// Decides an AlterPartition; the answer is the partition's state once the change is
    /// applied (the current state, and no record, when the ISR is already `new_isr`).
    pub fn alter_partition(
        &self,
        image: &MetadataImage,
        request: &AlterPartition,
    ) -> Decision<Result<PartitionState, PartitionChangeError>> {
        let mut scratch = image.clone();
        match alter_one(&mut scratch, request) {
            Ok((records, after)) => Decision {
                records,
                response: Ok(after),
            },
            Err(error) => Decision {
                records: Vec::new(),
                response: Err(error),
            },
        }
    }

    /// Decides one AlterPartition request that carries many partitions (Kafka's request
    /// holds every ISR change a broker has pending): each entry is decided as
    /// [`Controller::alter_partition`] would, against the image as the earlier entries left
    /// it, and answered on its own, in order. The records of every accepted entry form one
    /// decision, so the whole request is one metadata log entry.
    pub fn alter_partitions(
        &self,
        image: &MetadataImage,
        requests: &[AlterPartition],
    ) -> Decision<Vec<Result<PartitionState, PartitionChangeError>>> {
        let mut scratch = image.clone();
        let mut records = Vec::new();
        let answers = requests
            .iter()
            .map(|request| {
                alter_one(&mut scratch, request).map(|(changes, after)| {
                    records.extend(changes);
                    after
                })
            })
            .collect();
        Decision {
            records,
            response: answers,
        }
    }

    /// Decides an ElectLeaders request. `preferred`: the first replica leads if it is in
    /// the ISR and unfenced. Otherwise (unclean): a partition without a leader gets the
    /// first unfenced replica, in the ISR or not. One answer per entry, in order.
    pub fn elect_leaders(
        &self,
        image: &MetadataImage,
        partitions: &[(Uuid, i32)],
        preferred: bool,
    ) -> Decision<Vec<ElectionResult>> {
        let mut scratch = image.clone();
        let mut records = Vec::new();
        let mut results = Vec::new();
        for (topic_id, partition) in partitions.iter().copied() {
            let outcome = match scratch.partition(topic_id, partition) {
                None => ElectionOutcome::UnknownTopicOrPartition,
                Some(state) => {
                    let (outcome, record) = elect_one(&scratch, topic_id, state, preferred);
                    if let Some(record) = record {
                        apply_all(&mut scratch, std::slice::from_ref(&record));
                        records.push(record);
                    }
                    outcome
                }
            };
            results.push(ElectionResult {
                topic_id,
                partition,
                outcome,
            });
        }
        Decision {
            records,
            response: results,
        }
    }
}

/// Partitions one automatic rebalance moves at most (Kafka's
/// `max.elections.per.imbalance` is 1000); the next check takes the rest.
pub const REBALANCE_ELECTIONS_MAX: usize = 1000;

/// Whether `state`'s preferred (first) replica could lead but does not: in the ISR,
/// unfenced, and not the leader. What automatic leader rebalancing corrects.
pub fn leader_imbalanced(image: &MetadataImage, state: &PartitionState) -> bool {
    state.replicas.first().is_some_and(|&first| {
        state.leader != first && state.isr.contains(&first) && image.is_broker_unfenced(first)
    })
}

impl Controller {
    /// Automatic leader rebalancing (`auto.leader.rebalance.enable`, as KRaft does it):
    /// every partition whose preferred replica could lead but does not gets it as leader,
    /// at most [`REBALANCE_ELECTIONS_MAX`] partitions per call. Answers how many moved.
    pub fn rebalance_leaders(&self, image: &MetadataImage) -> Decision<usize> {
        let imbalanced: Vec<(Uuid, i32)> = image
            .topics()
            .flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .filter(|state| leader_imbalanced(image, state))
                    .map(move |state| (topic.topic_id, state.partition))
            })
            .take(REBALANCE_ELECTIONS_MAX)
            .collect();
        let decision = self.elect_leaders(image, &imbalanced, true);
        let moved = decision
            .response
            .iter()
            .filter(|result| matches!(result.outcome, ElectionOutcome::Elected { .. }))
            .count();
        Decision {
            records: decision.records,
            response: moved,
        }
    }
}

fn elect_one(
    image: &MetadataImage,
    topic_id: Uuid,
    state: &PartitionState,
    preferred: bool,
) -> (ElectionOutcome, Option<MetadataRecord>) {
    let elected = |leader: i32, isr: Vec<i32>| {
        let record = change_record(topic_id, state, LeaderAndIsr { leader, isr });
        (ElectionOutcome::Elected { leader }, record)
    };
    if preferred {
        let Some(first) = state.replicas.first().copied() else {
            return (ElectionOutcome::PreferredLeaderNotAvailable, None);
        };
        if state.leader == first {
            (ElectionOutcome::ElectionNotNeeded, None)
        } else if state.isr.contains(&first) && image.is_broker_unfenced(first) {
            elected(first, state.isr.clone())
        } else {
            (ElectionOutcome::PreferredLeaderNotAvailable, None)
        }
    } else if state.leader != NO_LEADER {
        (ElectionOutcome::ElectionNotNeeded, None)
    } else {
        let next = elect_leader(
            &state.replicas,
            &state.isr,
            |r| image.is_broker_unfenced(r),
            true,
        );
        if next.leader == NO_LEADER {
            (ElectionOutcome::EligibleLeadersNotAvailable, None)
        } else {
            elected(next.leader, next.isr)
        }
    }
}

/// Records that take `broker_id` out of leadership and ISRs (preceded by `FenceBroker`
/// when `fence`), decided against `image` as if it were already fenced.
fn move_away(image: &MetadataImage, broker_id: i32, fence: bool) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    if fence {
        records.push(MetadataRecord::FenceBroker { broker_id });
    }
    let eligible = |r: i32| r != broker_id && image.is_broker_unfenced(r);
    for topic in image.topics() {
        let unclean = unclean_allowed(topic);
        for state in &topic.partitions {
            if state.leader != broker_id && !state.isr.contains(&broker_id) {
                continue;
            }
            let isr = isr_without(&state.isr, broker_id);
            let next = if state.leader == broker_id || state.leader == NO_LEADER {
                elect_leader(&state.replicas, &isr, eligible, unclean)
            } else {
                LeaderAndIsr {
                    leader: state.leader,
                    isr,
                }
            };
            records.extend(change_record(topic.topic_id, state, next));
        }
    }
    records
}

#[cfg(test)]
#[path = "partition_change_tests.rs"]
mod tests;
