//! The follower's truncation rule when it starts following a new leader epoch
//! (KIP-101, refined by KIP-279).
//!
//! The follower asks the leader OffsetForLeaderEpoch for its own latest epoch. The leader
//! answers `(epoch, end offset)`: the largest epoch it has at or below the one asked for,
//! and where that epoch ends in its log (the start of its next epoch, or its log end).
//! Everything the follower holds beyond that point either is not in the leader's log or
//! may differ from it, so it goes. KIP-101 truncated to the leader's end offset alone;
//! KIP-279 added that the follower must also stop at *its own* end of the epoch the leader
//! named, because past it the follower holds a later epoch the leader never saw (the case
//! of two quick leader changes where both logs diverge inside the same offsets).
//!
//! When the leader names an epoch the follower does not have, but the follower has an older
//! one, neither end offset is known to agree: the follower cuts back to the end of its own
//! largest epoch below the leader's and asks again with that epoch ([`truncation_step`]).
//! Each round lowers the epoch asked for, so the exchange ends.

/// The epoch Kafka answers when it knows none (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET).
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// Kafka's truncation rule on becoming a follower (KIP-101/279), one round: given the
/// leader's answer to OffsetForLeaderEpoch for the follower's latest epoch — (leader's
/// epoch, end offset) — the follower's own end offset for *exactly* the epoch the leader
/// named (None when it has no entries of that epoch), and its log end, the offset to
/// truncate to:
///
/// - the leader knows no epoch (offset -1, UNDEFINED_EPOCH_OFFSET): the follower's high
///   watermark, the last point it knows it shares with the leader (Kafka's fallback to
///   the initial fetch offset);
/// - the leader answered an offset without an epoch (a pre-KIP-279 leader), or the follower
///   does not have the epoch named: min(leader end offset, local log end);
/// - otherwise min(leader end offset, local end offset of that epoch, local log end).
///
/// The result never exceeds `local_log_end`. When the follower has an *older* epoch than
/// the one the leader named but not that one, one round is not enough: use
/// [`truncation_step`].
pub fn truncation_offset(
    local_log_end: i64,
    local_end_for_leader_epoch: Option<i64>,
    leader_answer: (i32, i64),
    local_high_watermark: i64,
) -> i64 {
    let (leader_epoch, leader_end_offset) = leader_answer;
    if leader_end_offset < 0 {
        return local_high_watermark.clamp(0, local_log_end.max(0));
    }
    if leader_epoch < 0 {
        return leader_end_offset.min(local_log_end);
    }
    match local_end_for_leader_epoch {
        Some(local_end) => leader_end_offset.min(local_end).min(local_log_end),
        None => leader_end_offset.min(local_log_end),
    }
}

/// One round of the truncation exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncationStep {
    /// Truncate to this offset and start fetching there.
    Done(i64),
    /// Truncate to this offset, then ask OffsetForLeaderEpoch again for the (now lower)
    /// latest local epoch.
    Retry(i64),
}

/// Kafka's full rule (`AbstractFetcherThread.getOffsetTruncationState`): like
/// [`truncation_offset`], but `local_epoch_end` is the follower's own answer for the
/// leader's epoch — `(largest local epoch <= the leader's, its end offset)` as the epoch
/// cache's `end_offset_for` gives it, or None when the follower has no such epoch.
pub fn truncation_step(
    local_log_end: i64,
    local_epoch_end: Option<(i32, i64)>,
    leader_answer: (i32, i64),
    local_high_watermark: i64,
) -> TruncationStep {
    let (leader_epoch, leader_end_offset) = leader_answer;
    match local_epoch_end {
        Some((local_epoch, local_end))
            if leader_end_offset >= 0 && leader_epoch >= 0 && local_epoch != leader_epoch =>
        {
            debug_assert!(
                local_epoch < leader_epoch,
                "local answer {local_epoch} above the requested epoch {leader_epoch}"
            );
            TruncationStep::Retry(local_end.min(local_log_end))
        }
        local => TruncationStep::Done(truncation_offset(
            local_log_end,
            local.map(|(_, end)| end),
            leader_answer,
            local_high_watermark,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_leader_has_the_epoch_when_it_ends_earlier_should_truncate_to_the_leader_end() {
        // Follower: epoch 3 covers [5, 12); the leader's epoch 3 ends at 9.
        assert_eq!(truncation_offset(12, Some(12), (3, 9), 4), 9);
    }

    #[test]
    fn given_the_leader_has_the_epoch_when_the_follower_moved_on_earlier_should_stop_at_the_local_end(
    ) {
        // KIP-279: the follower's epoch 3 ends at 7 (epoch 5 follows), the leader's at 9.
        assert_eq!(truncation_offset(12, Some(7), (3, 9), 4), 7);
    }

    #[test]
    fn given_the_leader_is_ahead_when_truncating_should_never_go_past_the_log_end() {
        assert_eq!(truncation_offset(6, Some(6), (3, 20), 4), 6);
        assert_eq!(truncation_offset(6, None, (3, 20), 4), 6);
    }

    #[test]
    fn given_the_leader_only_has_an_older_epoch_when_the_follower_lacks_it_should_use_the_leader_end(
    ) {
        assert_eq!(truncation_offset(12, None, (2, 5), 4), 5);
    }

    #[test]
    fn given_the_leader_answers_unknown_when_truncating_should_fall_back_to_the_high_watermark() {
        let unknown = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        assert_eq!(truncation_offset(12, Some(12), unknown, 4), 4);
        // A high watermark past a (damaged) log end is capped.
        assert_eq!(truncation_offset(3, None, unknown, 4), 3);
    }

    #[test]
    fn given_an_answer_without_epoch_when_truncating_should_use_the_leader_offset() {
        assert_eq!(truncation_offset(12, Some(8), (UNDEFINED_EPOCH, 10), 4), 10);
    }

    #[test]
    fn given_the_follower_has_an_older_epoch_only_when_stepping_should_cut_back_and_retry() {
        // The leader named epoch 4; the follower's largest epoch <= 4 is 2, ending at 6.
        assert_eq!(
            truncation_step(12, Some((2, 6)), (4, 9), 3),
            TruncationStep::Retry(6)
        );
    }

    #[test]
    fn given_matching_epochs_when_stepping_should_finish_with_the_single_round_rule() {
        assert_eq!(
            truncation_step(12, Some((4, 7)), (4, 9), 3),
            TruncationStep::Done(7)
        );
        assert_eq!(
            truncation_step(12, None, (4, 9), 3),
            TruncationStep::Done(9)
        );
        assert_eq!(
            truncation_step(
                12,
                Some((2, 6)),
                (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET),
                3
            ),
            TruncationStep::Done(3)
        );
    }
}
