//! The simulation's stand-ins for the parts of a cluster that are not under test: a
//! replica's log with its leader-epoch cache, and the controller's partition record.
//! They follow Kafka's (and `strom-storage`'s) rules closely enough that a safety bug in
//! the replication rules shows up as a broken invariant, not as a quirk of the model.

use std::collections::BTreeSet;

use crate::replication::election::elect_leader;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub offset: i64,
    pub epoch: i32,
    pub payload: u64,
}

/// A replica's log: entries at offsets 0.. without holes, and the leader-epoch cache
/// (`(epoch, start offset)`, epochs increasing). The only ways to change it check both.
#[derive(Debug, Clone, Default)]
pub(super) struct SimLog {
    entries: Vec<Entry>,
    epochs: Vec<(i32, i64)>,
}

impl SimLog {
    pub fn end(&self) -> i64 {
        self.entries.len() as i64
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entry(&self, offset: i64) -> Option<&Entry> {
        usize::try_from(offset)
            .ok()
            .and_then(|index| self.entries.get(index))
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.last().map(|&(epoch, _)| epoch)
    }

    /// Records that `epoch` starts at `start_offset` if it is newer than the latest (the
    /// leader does it on election, a follower on appending the first entry of an epoch).
    pub fn assign_epoch(&mut self, epoch: i32, start_offset: i64) {
        if self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return;
        }
        if let Some(&(_, last_start)) = self.epochs.last() {
            assert!(
                start_offset >= last_start,
                "epoch {epoch} would start at {start_offset}, before {last_start}"
            );
        }
        self.epochs.push((epoch, start_offset));
    }

    pub fn append(&mut self, entry: Entry) {
        assert_eq!(entry.offset, self.end(), "append would leave a hole");
        if let Some(last) = self.entries.last() {
            assert!(
                entry.epoch >= last.epoch,
                "epoch {} after {} at offset {}",
                entry.epoch,
                last.epoch,
                entry.offset
            );
        }
        self.assign_epoch(entry.epoch, entry.offset);
        assert_eq!(
            self.epoch_at(entry.offset),
            Some(entry.epoch),
            "epoch cache {:?} disagrees with the entry at {}",
            self.epochs,
            entry.offset
        );
        self.entries.push(entry);
    }

    /// Kafka's `truncateTo`: cuts the log at `offset` if it is shorter, and always drops
    /// cached epochs that start at or past the (new) log end — an epoch a leader assigned
    /// on election but never wrote to would otherwise claim the entries a new leader sends.
    pub fn truncate_to(&mut self, offset: i64) {
        assert!(offset >= 0, "truncation to {offset}");
        let end = offset.min(self.end());
        self.entries.truncate(end as usize);
        let keep = self.epochs.partition_point(|&(_, start)| start < end);
        self.epochs.truncate(keep);
    }

    /// Kafka's `LeaderEpochFileCache.endOffsetFor`: `(largest epoch <= requested, the
    /// start of the next epoch)`, or the log end for the latest epoch; `(requested, first
    /// start)` below the first epoch; None (UNDEFINED) above the latest or when empty.
    pub fn end_offset_for(&self, requested: i32) -> Option<(i32, i64)> {
        let latest = self.latest_epoch()?;
        if requested < 0 || requested > latest {
            return None;
        }
        if requested == latest {
            return Some((latest, self.end()));
        }
        let higher = self
            .epochs
            .partition_point(|&(epoch, _)| epoch <= requested);
        let next_start = self.epochs[higher].1;
        match higher {
            0 => Some((requested, next_start)),
            n => Some((self.epochs[n - 1].0, next_start)),
        }
    }

    /// The epoch the cache says `offset` was written in.
    fn epoch_at(&self, offset: i64) -> Option<i32> {
        let in_force = self.epochs.partition_point(|&(_, start)| start <= offset);
        in_force.checked_sub(1).map(|index| self.epochs[index].0)
    }
}

/// What the controller publishes about the partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Metadata {
    pub leader: Option<i32>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AlterError {
    /// Not the current leader's epoch (a deposed leader).
    FencedLeaderEpoch,
    /// Based on an ISR that has changed since.
    InvalidUpdateVersion,
    /// Adds a fenced replica (KIP-841) or drops the leader, or names a non-replica.
    IneligibleReplica,
}

/// The controller's record of one partition (KRaft's `ReplicationControlManager` rules):
/// fencing a broker drops it from the ISR (never the last member) and re-elects if it led;
/// an offline partition gets a leader when an ISR member returns. Every leader change
/// bumps the leader epoch, every change the partition epoch.
#[derive(Debug, Clone)]
pub(super) struct Controller {
    replicas: Vec<i32>,
    metadata: Metadata,
    fenced: BTreeSet<i32>,
}

impl Controller {
    pub fn new(replicas: Vec<i32>) -> Self {
        let leader = elect_leader(&replicas, &replicas, |_| true, false);
        Controller {
            metadata: Metadata {
                leader,
                leader_epoch: 0,
                partition_epoch: 0,
                isr: replicas.clone(),
            },
            replicas,
            fenced: BTreeSet::new(),
        }
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    pub fn is_fenced(&self, replica: i32) -> bool {
        self.fenced.contains(&replica)
    }

    /// The broker's session expired (or it registered again after a restart).
    pub fn fence(&mut self, replica: i32) {
        if !self.fenced.insert(replica) {
            return;
        }
        let metadata = &mut self.metadata;
        if metadata.isr.contains(&replica) && metadata.isr.len() > 1 {
            metadata.isr.retain(|&member| member != replica);
            metadata.partition_epoch += 1;
        }
        if metadata.leader == Some(replica) {
            self.install_leader(self.candidate());
        }
    }

    pub fn unfence(&mut self, replica: i32) {
        if self.fenced.remove(&replica) && self.metadata.leader.is_none() {
            if let Some(leader) = self.candidate() {
                self.install_leader(Some(leader));
            }
        }
    }

    /// AlterPartition from `from`, which believes it leads `leader_epoch` with the ISR of
    /// `partition_epoch`. Returns the committed ISR and its partition epoch.
    pub fn alter_partition(
        &mut self,
        from: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        proposed: &[i32],
    ) -> Result<(Vec<i32>, i32), AlterError> {
        let metadata = &mut self.metadata;
        if metadata.leader != Some(from) || metadata.leader_epoch != leader_epoch {
            return Err(AlterError::FencedLeaderEpoch);
        }
        if metadata.partition_epoch != partition_epoch {
            return Err(AlterError::InvalidUpdateVersion);
        }
        let distinct: BTreeSet<i32> = proposed.iter().copied().collect();
        let eligible = distinct.len() == proposed.len()
            && proposed.contains(&from)
            && proposed.iter().all(|replica| {
                self.replicas.contains(replica)
                    && (metadata.isr.contains(replica) || !self.fenced.contains(replica))
            });
        if !eligible {
            return Err(AlterError::IneligibleReplica);
        }
        metadata.isr = proposed.to_vec();
        metadata.partition_epoch += 1;
        Ok((metadata.isr.clone(), metadata.partition_epoch))
    }

    /// The clean choice from the ISR among unfenced replicas.
    fn candidate(&self) -> Option<i32> {
        elect_leader(
            &self.replicas,
            &self.metadata.isr,
            |replica| !self.fenced.contains(&replica),
            false,
        )
    }

    fn install_leader(&mut self, leader: Option<i32>) {
        self.metadata.leader = leader;
        self.metadata.leader_epoch += 1;
        self.metadata.partition_epoch += 1;
    }
}
