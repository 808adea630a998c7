//! The broker's AlterPartition sender (Kafka's `AlterPartitionManager`): ISR changes that
//! the partitions this broker leads propose wait in one queue, and a single task sends
//! them to the controller, one request at a time, each request carrying every change
//! queued when it leaves (up to [`PARTITIONS_PER_REQUEST_MAX`]). Changes proposed while a
//! request is in flight go into the next one.
//!
//! Why: after a broker restarts, its followers catch up on thousands of partitions within
//! seconds, and each leader proposes that many expansions at once. Sent one partition per
//! request (a few in flight), each was its own controller decision and metadata log entry,
//! and each new image made every broker walk all its partitions again: about 30 ISR
//! rejoins per second on a 2-core machine, 20,000 partitions never got back to full ISR,
//! and the controller, busy with them, answered heartbeats late enough to fence brokers.
//! Batched, the controller decides the whole request against one image and commits it as
//! one entry.
//!
//! Answers are per partition: a refusal is handled as before for that partition alone
//! ([`on_refused`]). When the whole answer is lost (a transport error, a timeout, no
//! controller leader), every proposal of the request that is still the leader's pending
//! one is queued again (unless a newer one for its partition is queued already) and sent
//! after a growing pause, as Kafka retries.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::IsrProposal;
use crate::metadata::IsrRefusal;
use crate::partition::ReplicaRole;
use crate::state::Broker;

/// Most partitions one request carries; bounds the metadata log entry it becomes (a
/// partition change is a few hundred bytes) and how long the controller decides it.
pub const PARTITIONS_PER_REQUEST_MAX: usize = 5_000;
/// First pause before resending a request whose answer was lost; doubles up to the max.
const RESEND_BACKOFF_FIRST: Duration = Duration::from_millis(100);
const RESEND_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The queue of ISR changes not sent yet, at most one per partition (the newest).
#[derive(Default)]
pub struct IsrSender {
    queue: Mutex<Queue>,
    wake: Notify,
}

#[derive(Default)]
struct Queue {
    proposals: HashMap<(Uuid, i32), IsrProposal>,
    /// The keys of `proposals`, oldest first.
    order: VecDeque<(Uuid, i32)>,
}

impl Queue {
    /// Queues `proposal`, replacing a queued one for the same partition (keeping its place)
    /// unless `keep_queued`.
    fn put(&mut self, proposal: IsrProposal, keep_queued: bool) {
        let key = (proposal.topic_id, proposal.partition);
        match self.proposals.get_mut(&key) {
            Some(_) if keep_queued => {}
            Some(queued) => *queued = proposal,
            None => {
                self.proposals.insert(key, proposal);
                self.order.push_back(key);
            }
        }
    }
}

impl IsrSender {
    /// Queues `proposal` for the next request.
    pub fn enqueue(&self, proposal: IsrProposal) {
        self.queue.lock().put(proposal, false);
        // Stores a permit when the sender is not waiting, so no wake-up is lost.
        self.wake.notify_one();
    }

    /// How many proposals wait for a request.
    pub fn queued(&self) -> usize {
        self.queue.lock().proposals.len()
    }

    /// The oldest queued proposals, at most [`PARTITIONS_PER_REQUEST_MAX`].
    fn take_batch(&self) -> Vec<IsrProposal> {
        let mut queue = self.queue.lock();
        let count = queue.order.len().min(PARTITIONS_PER_REQUEST_MAX);
        let keys: Vec<(Uuid, i32)> = queue.order.drain(..count).collect();
        keys.iter()
            .filter_map(|key| queue.proposals.remove(key))
            .collect()
    }

    /// Queues again proposals whose answer was lost; a newer proposal queued meanwhile
    /// for the same partition wins.
    fn requeue(&self, proposals: impl IntoIterator<Item = IsrProposal>) {
        let mut queue = self.queue.lock();
        for proposal in proposals {
            queue.put(proposal, true);
        }
        drop(queue);
        self.wake.notify_one();
    }

    async fn next_batch(&self) -> Vec<IsrProposal> {
        loop {
            let batch = self.take_batch();
            if !batch.is_empty() {
                return batch;
            }
            self.wake.notified().await;
        }
    }
}

/// Sends the queued ISR changes of `broker`, one request at a time, for as long as the
/// broker runs.
pub fn spawn(broker: Arc<Broker>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = RESEND_BACKOFF_FIRST;
        loop {
            let batch = broker.isr_sender().next_batch().await;
            info!(partitions = batch.len(), "sending AlterPartition");
            match broker.metadata().alter_partitions(&broker, &batch).await {
                Ok(answers) => {
                    backoff = RESEND_BACKOFF_FIRST;
                    let mut refused = 0;
                    for (proposal, answer) in batch.iter().zip(answers) {
                        if let Err(refusal) = answer {
                            refused += 1;
                            on_refused(&broker, proposal, &refusal);
                        }
                    }
                    if refused > 0 {
                        warn!(
                            partitions = batch.len(),
                            refused, "ISR changes refused for some partitions"
                        );
                    }
                }
                Err(refusal) if refusal.answer_lost => {
                    info!(partitions = batch.len(), error = %refusal.message, ?backoff, "ISR change answer lost; resending");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RESEND_BACKOFF_MAX);
                    let broker = &broker;
                    broker.isr_sender().requeue(
                        batch
                            .into_iter()
                            .filter(|proposal| still_to_resend(broker, proposal)),
                    );
                }
                Err(refusal) => {
                    warn!(partitions = batch.len(), error = %refusal.message, "AlterPartition refused as a whole");
                    for proposal in &batch {
                        on_refused(&broker, proposal, &refusal);
                    }
                }
            }
        }
    })
}

/// The controller refused `proposal` (a newer leader or partition epoch exists, or the
/// ISR is ineligible): the image brings the current state. Only the answer to the
/// proposal still pending counts; one proven not applied is dropped at once, any other
/// waits for the image (it may have been applied by an earlier send whose answer was lost).
fn on_refused(broker: &Broker, proposal: &IsrProposal, refusal: &IsrRefusal) {
    debug!(topic_id = %proposal.topic_id, partition = proposal.partition, error = %refusal.message, "ISR change refused");
    let Some(partition) = broker
        .partitions()
        .get(proposal.topic_id, proposal.partition)
    else {
        return;
    };
    let mut role = partition.role.lock();
    if let ReplicaRole::Leader(state) = &mut *role {
        if state.pending_isr() == Some(proposal.isr.as_slice()) {
            if refusal.nothing_applied {
                state.on_isr_proposal_not_applied();
            } else {
                state.on_isr_proposal_rejected();
            }
        }
    }
}

/// Whether this broker still leads the partition in the proposal's epochs and still waits
/// for an answer to that very proposal (the image did not settle it meanwhile).
fn still_to_resend(broker: &Broker, proposal: &IsrProposal) -> bool {
    let Some(partition) = broker
        .partitions()
        .get(proposal.topic_id, proposal.partition)
    else {
        return false;
    };
    if partition.leader_epoch() != proposal.leader_epoch
        || partition.partition_epoch() != proposal.partition_epoch
    {
        return false;
    }
    let role = partition.role.lock();
    match &*role {
        ReplicaRole::Leader(state) => {
            state.isr_proposal_to_resend() == Some(proposal.isr.as_slice())
        }
        ReplicaRole::Follower { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(partition: i32, isr: &[i32]) -> IsrProposal {
        IsrProposal {
            topic_id: Uuid::from_u128(7),
            partition,
            leader_epoch: 0,
            partition_epoch: 0,
            isr: isr.to_vec(),
        }
    }

    #[test]
    fn given_queued_changes_when_taken_should_send_each_partition_once_oldest_first() {
        let sender = IsrSender::default();
        sender.enqueue(proposal(0, &[1]));
        sender.enqueue(proposal(1, &[1]));
        sender.enqueue(proposal(0, &[1, 2]));
        assert_eq!(sender.queued(), 2);
        assert_eq!(
            sender.take_batch(),
            vec![proposal(0, &[1, 2]), proposal(1, &[1])]
        );
        assert!(sender.take_batch().is_empty());
    }

    #[test]
    fn given_more_than_a_request_holds_when_taken_should_split_into_requests() {
        let sender = IsrSender::default();
        let total = PARTITIONS_PER_REQUEST_MAX as i32 + 3;
        for partition in 0..total {
            sender.enqueue(proposal(partition, &[1, 2]));
        }
        assert_eq!(sender.take_batch().len(), PARTITIONS_PER_REQUEST_MAX);
        let rest = sender.take_batch();
        assert_eq!(rest.len(), 3);
        assert_eq!(rest[0].partition, PARTITIONS_PER_REQUEST_MAX as i32);
    }

    #[test]
    fn given_a_lost_answer_when_requeued_should_not_replace_a_newer_change() {
        let sender = IsrSender::default();
        sender.enqueue(proposal(0, &[1]));
        sender.requeue([proposal(0, &[1, 2]), proposal(1, &[1, 2])]);
        assert_eq!(
            sender.take_batch(),
            vec![proposal(0, &[1]), proposal(1, &[1, 2])]
        );
    }
}
