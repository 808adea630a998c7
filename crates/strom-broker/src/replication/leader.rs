//! The leader side of one partition: followers' progress, the high watermark, ISR changes
//! to propose, and when an acks=all write is committed.
//!
//! Kafka's rules (`Partition`, `Replica` and `ReplicaManager` in the broker):
//!
//! - A follower's progress is the offset it fetches at: that is its log end.
//! - It *caught up* at the time of a fetch at or past the leader's log end, or, if it
//!   fetched at or past the leader's log end *of its previous fetch*, at the time of that
//!   previous fetch (it had everything the leader had then).
//! - The high watermark is the smallest log end among the leader and the ISR — the
//!   *maximal* ISR while an expansion is waiting for the controller, so the HW never runs
//!   ahead of a replica that may be in the ISR once the controller commits it (KIP-497's
//!   `maximalIsr`). It only moves forward.
//! - A follower joins the ISR once its log end reaches the HW and the start of the current
//!   leader epoch (so it holds every entry of earlier leaders that the new leader kept).
//! - A follower leaves the ISR when its log end differs from the leader's and it has not
//!   caught up for longer than `replica.lag.time.max.ms`. The leader never removes itself.
//! - One ISR change is in flight at a time; the committed ISR comes back through
//!   [`LeaderState::apply_isr`]. A refusal drops the pending expansion only when the
//!   controller proves it did not apply it: an answer can be lost and a resend refused
//!   *because* the first one was applied, so otherwise the leader keeps counting the
//!   proposed members until metadata brings the committed ISR (Kafka's
//!   `handleAlterPartitionError`; the simulation found this with seed 2007).

/// Offset of a follower the leader has not heard from in this epoch (Kafka's
/// `UnifiedLog.UnknownOffset`): it holds the HW back until the follower fetches.
pub const UNKNOWN_OFFSET: i64 = -1;

/// What the leader knows of one follower (Kafka's `ReplicaState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FollowerProgress {
    replica: i32,
    log_end: i64,
    /// The leader's log end when this follower last fetched.
    last_fetch_leader_log_end: i64,
    last_fetch_ms: i64,
    last_caught_up_ms: i64,
}

/// Leader-side state of one partition replica (Kafka's Partition + ReplicaManager rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderState {
    local_id: i32,
    leader_epoch: i32,
    /// The local log end when this replica became leader: every replica joining the ISR
    /// must have reached it.
    leader_epoch_start_offset: i64,
    replicas: Vec<i32>,
    /// The ISR the controller committed.
    isr: Vec<i32>,
    /// An ISR this leader proposed that is not known to be committed or refused yet.
    pending_isr: Option<Vec<i32>>,
    /// The controller refused `pending_isr` without saying whether an earlier send of it
    /// was applied: wait for metadata instead of resending.
    pending_awaits_metadata: bool,
    local_log_end: i64,
    high_watermark: i64,
    followers: Vec<FollowerProgress>,
}

/// What a follower's fetch changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerFetchOutcome {
    /// The high watermark moved to this value.
    pub high_watermark_advanced: Option<i64>,
    /// The follower caught up and is not in the ISR: propose this ISR to the controller.
    pub propose_isr: Option<Vec<i32>>,
}

/// Why an acks=all write cannot be acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckError {
    /// The write is below the HW but the ISR is smaller than `min.insync.replicas`
    /// (Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    NotEnoughReplicasAfterAppend,
}

impl LeaderState {
    /// This replica became leader of `leader_epoch`. `high_watermark` is the one it had as
    /// a follower (at most its log end); followers start unknown, and those in the ISR are
    /// given a full lag period to fetch before they count as lagging (Kafka's
    /// `resetReplicaState` for a new leader).
    pub fn new(
        local_id: i32,
        leader_epoch: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        local_log_end: i64,
        high_watermark: i64,
        now_ms: i64,
    ) -> Self {
        assert!(local_log_end >= 0, "log end {local_log_end} is negative");
        assert!(
            replicas.contains(&local_id),
            "leader {local_id} is not a replica of {replicas:?}"
        );
        assert!(
            isr.contains(&local_id),
            "leader {local_id} is not in the ISR {isr:?}"
        );
        let followers = replicas
            .iter()
            .filter(|&&replica| replica != local_id)
            .map(|&replica| FollowerProgress {
                replica,
                log_end: UNKNOWN_OFFSET,
                last_fetch_leader_log_end: UNKNOWN_OFFSET,
                last_fetch_ms: 0,
                last_caught_up_ms: if isr.contains(&replica) { now_ms } else { 0 },
            })
            .collect();
        let mut state = LeaderState {
            local_id,
            leader_epoch,
            leader_epoch_start_offset: local_log_end,
            replicas,
            isr,
            pending_isr: None,
            pending_awaits_metadata: false,
            local_log_end,
            high_watermark: high_watermark.clamp(0, local_log_end),
            followers,
        };
        state.maybe_advance_high_watermark();
        state
    }

    pub fn local_id(&self) -> i32 {
        self.local_id
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// The local log end when this epoch began.
    pub fn leader_epoch_start_offset(&self) -> i64 {
        self.leader_epoch_start_offset
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn local_log_end(&self) -> i64 {
        self.local_log_end
    }

    pub fn isr(&self) -> &[i32] {
        &self.isr
    }

    pub fn replicas(&self) -> &[i32] {
        &self.replicas
    }

    /// The ISR proposed to the controller whose fate is not known yet; its members count
    /// for the HW and no other change is proposed meanwhile.
    pub fn pending_isr(&self) -> Option<&[i32]> {
        self.pending_isr.as_deref()
    }

    /// The pending ISR while it should be (re)sent: its answer has not come back (a lost
    /// answer is resent as is, as Kafka's `AlterPartitionManager` does). None once the
    /// controller refused it in a way only metadata can settle.
    pub fn isr_proposal_to_resend(&self) -> Option<&[i32]> {
        self.pending_isr
            .as_deref()
            .filter(|_| !self.pending_awaits_metadata)
    }

    /// Whether the committed ISR has at least `min_insync_replicas` members: Kafka refuses
    /// an acks=all produce before appending (NOT_ENOUGH_REPLICAS) when it has not.
    pub fn has_min_isr(&self, min_insync_replicas: usize) -> bool {
        self.isr.len() >= min_insync_replicas
    }

    /// The leader appended: its log end is now `local_log_end`. Returns the new high
    /// watermark if it moved (with an ISR of the leader alone, HW = log end at once).
    /// `_now_ms` is unused: Kafka's rule for the HW needs no time once caught-up non-ISR
    /// replicas are covered by the pending ISR (see the module docs).
    pub fn on_local_append(&mut self, local_log_end: i64, _now_ms: i64) -> Option<i64> {
        self.set_local_log_end(local_log_end);
        self.maybe_advance_high_watermark()
    }

    /// Follower `replica` fetched at `fetch_offset` (its log end) while the leader's log end
    /// was `local_log_end`. Records its progress and caught-up time, advances the HW to the
    /// smallest log end in the ISR, and proposes an ISR expansion when a non-ISR replica has
    /// caught up to the HW and is at or past the leader epoch start offset.
    ///
    /// A replica not in `replicas` (or the leader itself) is ignored, and so is a fetch past
    /// the leader's log end (Kafka answers it OFFSET_OUT_OF_RANGE without recording it).
    pub fn on_follower_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        local_log_end: i64,
        now_ms: i64,
    ) -> FollowerFetchOutcome {
        let unchanged = FollowerFetchOutcome {
            high_watermark_advanced: None,
            propose_isr: None,
        };
        self.set_local_log_end(local_log_end);
        if fetch_offset < 0 || fetch_offset > self.local_log_end {
            return unchanged;
        }
        let Some(follower) = self.followers.iter_mut().find(|f| f.replica == replica) else {
            return unchanged;
        };
        if fetch_offset >= local_log_end {
            follower.last_caught_up_ms = follower.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= follower.last_fetch_leader_log_end {
            follower.last_caught_up_ms = follower.last_caught_up_ms.max(follower.last_fetch_ms);
        }
        follower.log_end = fetch_offset;
        follower.last_fetch_leader_log_end = follower.last_fetch_leader_log_end.max(local_log_end);
        follower.last_fetch_ms = now_ms;

        let propose_isr = self.expansion_for(replica, fetch_offset);
        if let Some(proposed) = &propose_isr {
            self.pending_isr = Some(proposed.clone());
        }
        FollowerFetchOutcome {
            high_watermark_advanced: self.maybe_advance_high_watermark(),
            propose_isr,
        }
    }

    /// Followers in the ISR that have not caught up for longer than `lag_time_max_ms`: the
    /// ISR to propose without them (never removes the leader; None when nothing changes or
    /// another change is still in flight). A follower whose log end equals the leader's is
    /// never lagging, however long ago it fetched: nothing waits for it.
    ///
    /// The HW keeps counting the removed followers until [`LeaderState::apply_isr`], which
    /// only holds it back, so nothing is recorded here.
    pub fn isr_to_shrink(&self, now_ms: i64, lag_time_max_ms: i64) -> Option<Vec<i32>> {
        if self.pending_isr.is_some() {
            return None;
        }
        let lagging = |replica: i32| {
            self.followers.iter().any(|f| {
                f.replica == replica
                    && f.log_end != self.local_log_end
                    && now_ms - f.last_caught_up_ms > lag_time_max_ms
            })
        };
        let shrunk: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|&replica| replica == self.local_id || !lagging(replica))
            .collect();
        (shrunk.len() < self.isr.len()).then_some(shrunk)
    }

    /// The controller committed a new ISR for this epoch; the HW may move (shrinking can
    /// advance it). Clears any pending proposal: the committed state supersedes it, so the
    /// runtime must pass only an ISR with a partition epoch newer than the one the pending
    /// proposal was based on (the AlterPartition answer, or newer metadata).
    pub fn apply_isr(&mut self, isr: Vec<i32>, local_log_end: i64) -> Option<i64> {
        debug_assert!(
            isr.contains(&self.local_id),
            "committed ISR {isr:?} drops leader {}",
            self.local_id
        );
        debug_assert!(
            isr.iter().all(|replica| self.replicas.contains(replica)),
            "committed ISR {isr:?} is not within replicas {:?}",
            self.replicas
        );
        self.isr = isr;
        self.pending_isr = None;
        self.pending_awaits_metadata = false;
        self.set_local_log_end(local_log_end);
        self.maybe_advance_high_watermark()
    }

    /// The controller refused the pending proposal (INVALID_UPDATE_VERSION,
    /// FENCED_LEADER_EPOCH, ...; a lost answer is resent instead). An earlier send of the same proposal
    /// may have been applied, so its members keep holding the HW back, and no other change
    /// is proposed, until [`LeaderState::apply_isr`] brings the committed ISR. Call it
    /// only for the answer to the *current* pending proposal: a late refusal of an older
    /// one would park the new one until the next metadata change.
    pub fn on_isr_proposal_rejected(&mut self) {
        self.pending_awaits_metadata = self.pending_isr.is_some();
    }

    /// The controller refused the pending proposal *and* states that nothing was applied
    /// with the partition epoch current (INELIGIBLE_REPLICA, OPERATION_NOT_ATTEMPTED): back
    /// to the committed ISR at once.
    pub fn on_isr_proposal_not_applied(&mut self) {
        self.pending_isr = None;
        self.pending_awaits_metadata = false;
    }

    /// acks=all: whether a write ending at `required_offset` (exclusive) is committed, given
    /// `min.insync.replicas`: Ok(true) committed; Ok(false) keep waiting;
    /// Err(NotEnoughReplicasAfterAppend) when the HW passed it with the ISR below the
    /// minimum (Kafka's `checkEnoughReplicasReachOffset`, counting the maximal ISR).
    pub fn check_committed(
        &self,
        required_offset: i64,
        min_insync_replicas: usize,
    ) -> Result<bool, AckError> {
        if self.high_watermark < required_offset {
            return Ok(false);
        }
        if self.maximal_isr().len() < min_insync_replicas {
            return Err(AckError::NotEnoughReplicasAfterAppend);
        }
        Ok(true)
    }

    /// The log end `replica` last fetched at in this epoch; the leader's own for itself;
    /// None for a replica it has not heard from or does not know.
    pub fn follower_log_end(&self, replica: i32) -> Option<i64> {
        if replica == self.local_id {
            return Some(self.local_log_end);
        }
        self.followers
            .iter()
            .find(|f| f.replica == replica)
            .map(|f| f.log_end)
            .filter(|&log_end| log_end != UNKNOWN_OFFSET)
    }

    /// A leader's log only grows, so a smaller value is a caller's stale read (taken before
    /// a concurrent append) and is ignored.
    fn set_local_log_end(&mut self, local_log_end: i64) {
        self.local_log_end = self.local_log_end.max(local_log_end);
    }

    /// The committed ISR plus the members of a pending expansion.
    fn maximal_isr(&self) -> Vec<i32> {
        let mut maximal = self.isr.clone();
        for replica in self.pending_isr.iter().flatten() {
            if !maximal.contains(replica) {
                maximal.push(*replica);
            }
        }
        maximal
    }

    fn expansion_for(&self, replica: i32, log_end: i64) -> Option<Vec<i32>> {
        let eligible = self.pending_isr.is_none()
            && !self.isr.contains(&replica)
            && log_end >= self.high_watermark
            && log_end >= self.leader_epoch_start_offset;
        eligible.then(|| {
            let mut expanded = self.isr.clone();
            expanded.push(replica);
            expanded
        })
    }

    fn maybe_advance_high_watermark(&mut self) -> Option<i64> {
        let mut candidate = self.local_log_end;
        for replica in self.maximal_isr() {
            if let Some(follower) = self.followers.iter().find(|f| f.replica == replica) {
                candidate = candidate.min(follower.log_end);
            }
        }
        if candidate > self.high_watermark {
            self.high_watermark = candidate;
            Some(candidate)
        } else {
            None
        }
    }
}
