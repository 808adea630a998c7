//! The AlterPartition exchange between a leader and the controller, asynchronous as in
//! Kafka: a proposal waits in the controller's inbox, and the answer is lost when the
//! leader cannot be reached by then (the leader then resends, or learns the outcome from
//! metadata). One request per leader is in flight, as Kafka's `AlterPartitionManager`
//! keeps it.

use super::model::AlterError;
use super::{Event, World};

#[derive(Debug, Clone)]
pub(super) struct AlterRequest {
    from: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    proposed: Vec<i32>,
}

impl World {
    /// Leader `id` sends `proposed` if it can reach the controller and has nothing in
    /// flight; otherwise an expansion stays pending in its state and is resent later.
    pub(super) fn propose(&mut self, id: i32, proposed: Vec<i32>) {
        let node = &self.nodes[id as usize];
        let (Some(leader), Some(known)) = (node.leader.as_ref(), node.known.as_ref()) else {
            return;
        };
        if !node.reachable() || self.alter_inbox.iter().any(|request| request.from == id) {
            return;
        }
        self.alter_inbox.push_back(AlterRequest {
            from: id,
            leader_epoch: leader.leader_epoch(),
            partition_epoch: known.partition_epoch,
            proposed: proposed.clone(),
        });
        self.record(Event::Propose {
            leader: id,
            isr: proposed,
        });
    }

    /// The controller handles the oldest request and answers its sender, if reachable and
    /// still leading that epoch.
    pub(super) fn answer_alter_partition(&mut self) {
        let Some(request) = self.alter_inbox.pop_front() else {
            return;
        };
        let isr_len_before = self.controller.metadata().isr.len();
        let result = self.controller.alter_partition(
            request.from,
            request.leader_epoch,
            request.partition_epoch,
            &request.proposed,
        );
        let committed = result.is_ok();
        match &result {
            Ok(_) if request.proposed.len() < isr_len_before => self.stats.isr_shrinks += 1,
            Ok(_) => self.stats.isr_expansions += 1,
            Err(_) => self.stats.proposals_rejected += 1,
        }
        let node = &mut self.nodes[request.from as usize];
        let end = node.log.end();
        let reachable = node.reachable();
        let leader = node
            .leader
            .as_mut()
            .filter(|leader| reachable && leader.leader_epoch() == request.leader_epoch);
        let delivered = leader.is_some();
        match (result, leader, node.known.as_mut()) {
            // Metadata may have brought this ISR (or a newer one) already.
            (Ok((isr, partition_epoch)), Some(leader), Some(known))
                if partition_epoch > known.partition_epoch =>
            {
                known.isr = isr.clone();
                known.partition_epoch = partition_epoch;
                leader.apply_isr(isr, end);
            }
            // Only an answer to the pending proposal itself: one refused before metadata
            // cleared it must not mark the next proposal as unsettled.
            (Err(error), Some(leader), Some(known))
                if known.partition_epoch == request.partition_epoch
                    && leader.pending_isr() == Some(&request.proposed[..]) =>
            {
                match error {
                    AlterError::IneligibleReplica => leader.on_isr_proposal_not_applied(),
                    AlterError::FencedLeaderEpoch | AlterError::InvalidUpdateVersion => {
                        leader.on_isr_proposal_rejected()
                    }
                }
            }
            _ => {}
        }
        self.record(Event::AlterAnswered {
            leader: request.from,
            isr: request.proposed,
            committed,
            delivered,
        });
    }
}
