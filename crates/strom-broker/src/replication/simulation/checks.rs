//! The simulation's invariants, checked after every step, and the final convergence.
//!
//! The committed prefix is tracked incrementally so each step costs O(replicas): every
//! log's agreement with it (the length of their common prefix) only moves forward on
//! appends and back on truncation.

use super::{Event, World, REPLICAS};
use super::{CONVERGENCE_ROUNDS_MAX, LAG_TIME_MAX_MS, MIN_INSYNC_REPLICAS};

impl World {
    /// Every leader (deposed ones included): one per epoch, a high watermark that never
    /// goes back, and a log that agrees with the committed prefix below it; the prefix
    /// grows by what the high watermark newly covers.
    pub(super) fn observe_leaders(&mut self) {
        for index in 0..self.nodes.len() {
            self.advance_agreement(index);
            let node = &mut self.nodes[index];
            let Some(leader) = node.leader.as_ref() else {
                continue;
            };
            let (id, epoch) = (node.id, leader.leader_epoch());
            let high_watermark = leader.high_watermark();
            assert!(
                high_watermark <= node.log.end(),
                "leader {id} HW {high_watermark} past its log end {}",
                node.log.end()
            );
            node.high_watermark = high_watermark;
            let holder = *self.leader_of_epoch.entry(epoch).or_insert(id);
            assert_eq!(holder, id, "two leaders of epoch {epoch}");
            let previous = self
                .high_watermark_of_leader
                .insert((id, epoch), high_watermark)
                .unwrap_or(0);
            assert!(
                high_watermark >= previous,
                "leader {id} of epoch {epoch} moved its HW back from {previous} to {high_watermark}"
            );
            let covered = high_watermark as usize;
            let agreement = node.agreement;
            if covered <= self.committed.len() {
                assert!(
                    agreement >= covered,
                    "leader {id} of epoch {epoch} disagrees with the committed prefix at \
                     {agreement}, below its HW {covered}"
                );
                continue;
            }
            assert_eq!(
                agreement,
                self.committed.len(),
                "leader {id} of epoch {epoch} rewrote the committed prefix at {agreement}"
            );
            for entry in &node.log.entries()[self.committed.len()..covered] {
                assert!(
                    self.committed_payloads.insert(entry.payload),
                    "payload {} committed twice (second at offset {})",
                    entry.payload,
                    entry.offset
                );
                self.committed.push(*entry);
            }
            self.nodes[index].agreement = covered;
        }
    }

    fn advance_agreement(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let entries = node.log.entries();
        let limit = entries.len().min(self.committed.len());
        while node.agreement < limit && entries[node.agreement] == self.committed[node.agreement] {
            node.agreement += 1;
        }
    }

    /// Answers the acks=all writes whose outcome is known now.
    pub(super) fn settle_writes(&mut self) {
        let mut index = 0;
        while index < self.pending.len() {
            let write = &self.pending[index];
            let node = &self.nodes[write.node as usize];
            let leading = node
                .leader
                .as_ref()
                .filter(|leader| !node.crashed && leader.leader_epoch() == write.leader_epoch);
            let outcome = match leading {
                None => Some(false),
                Some(_) if self.now_ms > write.deadline_ms => Some(false),
                Some(leader) => match leader.check_committed(write.end_offset, MIN_INSYNC_REPLICAS)
                {
                    Ok(true) => Some(true),
                    Ok(false) => None,
                    Err(_) => Some(false),
                },
            };
            let Some(acknowledged) = outcome else {
                index += 1;
                continue;
            };
            let write = self.pending.swap_remove(index);
            let offsets = (write.first_offset, write.end_offset);
            if !acknowledged {
                self.stats.failed += 1;
                self.record(Event::WriteFailed { offsets });
                continue;
            }
            for offset in write.first_offset..write.end_offset {
                let payload = write.first_payload + (offset - write.first_offset) as u64;
                let at_leader = self.nodes[write.node as usize].log.entry(offset);
                assert_eq!(
                    at_leader.map(|e| e.payload),
                    Some(payload),
                    "leader lost a write"
                );
                let committed = self.committed.get(offset as usize);
                assert_eq!(
                    committed.map(|e| e.payload),
                    Some(payload),
                    "acknowledged payload {payload} at {offset} is not committed"
                );
                self.acked.push((payload, offset));
            }
            self.stats.acked += 1;
            self.record(Event::Ack { offsets });
        }
    }

    pub(super) fn check_invariants(&mut self) {
        for index in 0..self.nodes.len() {
            self.advance_agreement(index);
        }
        let metadata = self.controller.metadata();
        assert!(
            metadata.leader_epoch >= self.controller_epoch_seen,
            "leader epoch went back from {} to {}",
            self.controller_epoch_seen,
            metadata.leader_epoch
        );
        if metadata.leader_epoch > self.controller_epoch_seen {
            self.controller_epoch_seen = metadata.leader_epoch;
            if let Some(leader) = metadata.leader {
                self.stats.elections += 1;
                let holder = *self
                    .leader_of_epoch
                    .entry(metadata.leader_epoch)
                    .or_insert(leader);
                assert_eq!(
                    holder, leader,
                    "epoch {} has two leaders",
                    metadata.leader_epoch
                );
            }
        }
        for &member in &metadata.isr {
            let node = &self.nodes[member as usize];
            assert!(
                node.agreement >= self.committed.len(),
                "ISR member {member} holds only {} of {} committed entries (log end {}): \
                 its tail {:?}, committed tail {:?}",
                node.agreement,
                self.committed.len(),
                node.log.end(),
                &node.log.entries()[node.agreement.saturating_sub(2)..],
                &self.committed[node.agreement.saturating_sub(2)..]
            );
        }
        for node in &self.nodes {
            if let Some(last) = node.log.entries().last() {
                assert_eq!(
                    last.offset,
                    node.log.end() - 1,
                    "replica {} has a hole",
                    node.id
                );
            }
            if let Some(known) = &node.known {
                assert!(known.leader_epoch <= metadata.leader_epoch);
            }
        }
    }

    /// Heals everything, lets the cluster settle without new writes, and checks that every
    /// replica ends with the same log, holding every acknowledged write once.
    pub(super) fn converge(&mut self) {
        for id in REPLICAS {
            self.heal(id);
            self.restart(id);
        }
        let mut converged = false;
        for _ in 0..CONVERGENCE_ROUNDS_MAX {
            self.step += 1;
            self.now_ms += LAG_TIME_MAX_MS / 4;
            self.controller_tick();
            for id in REPLICAS {
                self.deliver_metadata(id);
            }
            for id in REPLICAS {
                self.fetch(id, usize::MAX);
                self.maintain_isr(id);
            }
            while !self.alter_inbox.is_empty() {
                self.answer_alter_partition();
            }
            self.after_step();
            converged = self.is_converged();
            if converged {
                break;
            }
        }
        let metadata = self.controller.metadata().clone();
        assert!(converged, "no convergence: {metadata:?}");
        let leader = self.node(metadata.leader.expect("converged"));
        let log = leader.log.entries();
        for node in &self.nodes {
            assert_eq!(node.log.entries(), log, "replica {} differs", node.id);
        }
        assert_eq!(&log[..self.committed.len()], &self.committed[..]);
        let mut seen = std::collections::HashSet::new();
        for entry in log {
            assert!(
                seen.insert(entry.payload),
                "payload {} twice",
                entry.payload
            );
        }
        for &(payload, offset) in &self.acked {
            assert_eq!(
                log[offset as usize].payload, payload,
                "acknowledged write lost"
            );
        }
    }

    /// One leader the controller and the replica agree on, every replica in the ISR with
    /// the leader's log, and the HW at the log end.
    fn is_converged(&self) -> bool {
        let metadata = self.controller.metadata();
        let Some(leader_id) = metadata.leader else {
            return false;
        };
        let leader_node = self.node(leader_id);
        let Some(leader) = leader_node.leader.as_ref() else {
            return false;
        };
        leader.leader_epoch() == metadata.leader_epoch
            && metadata.isr.len() == REPLICAS.len()
            && leader.high_watermark() == leader_node.log.end()
            && self
                .nodes
                .iter()
                .all(|node| node.log.entries() == leader_node.log.entries())
    }
}
