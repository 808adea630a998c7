//! The leader's rules with a controlled clock: HW, ISR changes, acks=all.

use super::leader::*;

const LAG_MS: i64 = 30_000;
const T0: i64 = 1_000_000;

/// Leader 1 of epoch 5 over replicas [1, 2, 3] with the given ISR, log end 10, HW 10.
fn leader(isr: &[i32]) -> LeaderState {
    LeaderState::new(1, 5, vec![1, 2, 3], isr.to_vec(), 10, 10, T0)
}

fn no_change() -> FollowerFetchOutcome {
    FollowerFetchOutcome {
        high_watermark_advanced: None,
        propose_isr: None,
    }
}

#[test]
fn given_an_isr_of_the_leader_alone_when_appending_should_advance_the_hw_at_once() {
    let mut state = leader(&[1]);
    assert_eq!(state.on_local_append(15, T0), Some(15));
    assert_eq!(state.high_watermark(), 15);
}

#[test]
fn given_two_isr_members_when_the_follower_fetches_should_advance_the_hw_to_its_log_end() {
    let mut state = leader(&[1, 2]);
    assert_eq!(state.on_local_append(15, T0), None, "waits for follower 2");
    let outcome = state.on_follower_fetch(2, 12, 15, T0 + 1);
    assert_eq!(outcome.high_watermark_advanced, Some(12));
    assert_eq!(outcome.propose_isr, None);
    assert_eq!(
        state
            .on_follower_fetch(2, 15, 15, T0 + 2)
            .high_watermark_advanced,
        Some(15)
    );
    assert_eq!(state.follower_log_end(2), Some(15));
}

#[test]
fn given_three_isr_members_when_one_fetches_should_wait_for_the_slowest() {
    let mut state = leader(&[1, 2, 3]);
    state.on_local_append(20, T0);
    assert_eq!(state.on_follower_fetch(2, 20, 20, T0 + 1), no_change());
    assert_eq!(state.high_watermark(), 10, "follower 3 has not fetched");
    assert_eq!(
        state
            .on_follower_fetch(3, 14, 20, T0 + 2)
            .high_watermark_advanced,
        Some(14)
    );
    assert_eq!(
        state
            .on_follower_fetch(3, 20, 20, T0 + 3)
            .high_watermark_advanced,
        Some(20)
    );
}

#[test]
fn given_a_new_leader_when_isr_followers_have_not_fetched_should_not_move_the_hw() {
    let mut state = LeaderState::new(1, 5, vec![1, 2, 3], vec![1, 2], 10, 4, T0);
    assert_eq!(state.high_watermark(), 4);
    assert_eq!(state.follower_log_end(2), None);
    assert_eq!(state.on_local_append(11, T0), None);
    assert_eq!(
        state
            .on_follower_fetch(2, 10, 11, T0)
            .high_watermark_advanced,
        Some(10)
    );
}

#[test]
fn given_a_follower_outside_the_isr_when_it_reaches_the_hw_should_propose_expansion_once() {
    let mut state = leader(&[1, 2]);
    state.on_local_append(20, T0);
    assert_eq!(
        state
            .on_follower_fetch(2, 16, 20, T0)
            .high_watermark_advanced,
        Some(16)
    );
    assert_eq!(
        state.on_follower_fetch(3, 12, 20, T0),
        no_change(),
        "below the HW"
    );
    let outcome = state.on_follower_fetch(3, 16, 20, T0);
    assert_eq!(outcome.propose_isr, Some(vec![1, 2, 3]));
    assert_eq!(state.pending_isr(), Some(&[1, 2, 3][..]));
    assert_eq!(
        state.on_follower_fetch(3, 17, 20, T0).propose_isr,
        None,
        "in flight"
    );
    // The pending member holds the HW back already.
    assert_eq!(
        state
            .on_follower_fetch(2, 20, 20, T0)
            .high_watermark_advanced,
        Some(17)
    );
    assert_eq!(state.apply_isr(vec![1, 2, 3], 20), None);
    assert_eq!(state.isr(), &[1, 2, 3]);
    assert_eq!(state.pending_isr(), None);
}

#[test]
fn given_a_follower_at_the_hw_when_below_the_epoch_start_should_not_propose_expansion() {
    // New leader with log end 10 and a lagging HW of 4: the follower must reach 10.
    let mut state = LeaderState::new(1, 5, vec![1, 2, 3], vec![1], 10, 4, T0);
    assert_eq!(
        state.high_watermark(),
        10,
        "an ISR of one commits the log end"
    );
    let mut state_lagging = LeaderState::new(1, 5, vec![1, 2, 3], vec![1, 2], 10, 4, T0);
    assert_eq!(
        state_lagging.on_follower_fetch(3, 6, 10, T0).propose_isr,
        None
    );
    assert_eq!(state.on_follower_fetch(3, 9, 10, T0).propose_isr, None);
    assert_eq!(
        state.on_follower_fetch(3, 10, 10, T0).propose_isr,
        Some(vec![1, 3])
    );
}

#[test]
fn given_a_proposal_not_applied_when_the_follower_fetches_again_should_propose_again() {
    let mut state = leader(&[1]);
    assert_eq!(
        state.on_follower_fetch(2, 10, 10, T0).propose_isr,
        Some(vec![1, 2])
    );
    state.on_isr_proposal_not_applied();
    assert_eq!(state.pending_isr(), None);
    assert_eq!(
        state.on_follower_fetch(2, 10, 10, T0).propose_isr,
        Some(vec![1, 2])
    );
}

#[test]
fn given_a_refusal_that_may_follow_a_lost_commit_when_appending_should_keep_counting_the_proposed_member(
) {
    // Simulation seed 2007: the answer committing [1, 2, 3] was lost, the resend was refused
    // for its stale partition epoch, and dropping follower 3 from the HW let it run past 3.
    let mut state = leader(&[1, 2]);
    state.on_follower_fetch(2, 10, 10, T0);
    assert_eq!(
        state.on_follower_fetch(3, 10, 10, T0).propose_isr,
        Some(vec![1, 2, 3])
    );
    assert_eq!(state.isr_proposal_to_resend(), Some(&[1, 2, 3][..]));
    state.on_isr_proposal_rejected();
    assert_eq!(
        state.isr_proposal_to_resend(),
        None,
        "only metadata can settle it"
    );
    state.on_local_append(14, T0 + 1);
    assert_eq!(
        state
            .on_follower_fetch(2, 14, 14, T0 + 2)
            .high_watermark_advanced,
        None
    );
    assert_eq!(state.check_committed(14, 2), Ok(false));
    let outcome = state.on_follower_fetch(3, 12, 14, T0 + 2);
    assert_eq!(
        outcome.high_watermark_advanced,
        Some(12),
        "follower 3 still counts"
    );
    assert_eq!(outcome.propose_isr, None);
    assert_eq!(
        state.isr_to_shrink(T0 + 10 * LAG_MS, LAG_MS),
        None,
        "a change in flight"
    );
    // Metadata brings the committed ISR: the proposal had been applied.
    assert_eq!(state.apply_isr(vec![1, 2, 3], 14), None);
    assert_eq!(state.isr_proposal_to_resend(), None);
    assert_eq!(state.pending_isr(), None);
}

#[test]
fn given_an_unknown_replica_when_it_fetches_should_change_nothing() {
    let mut state = leader(&[1, 2]);
    state.on_local_append(20, T0);
    assert_eq!(state.on_follower_fetch(9, 20, 20, T0), no_change());
    assert_eq!(state.on_follower_fetch(1, 20, 20, T0), no_change());
    assert_eq!(
        state.on_follower_fetch(2, 21, 20, T0),
        no_change(),
        "past the log end"
    );
    assert_eq!(state.follower_log_end(9), None);
    assert_eq!(state.follower_log_end(2), None);
}

#[test]
fn given_a_follower_that_stopped_fetching_when_the_lag_time_passes_should_shrink_without_it() {
    let mut state = leader(&[1, 2, 3]);
    state.on_follower_fetch(2, 10, 10, T0);
    state.on_follower_fetch(3, 10, 10, T0);
    state.on_local_append(20, T0 + 10);
    state.on_follower_fetch(2, 20, 20, T0 + 20);
    assert_eq!(state.isr_to_shrink(T0 + LAG_MS, LAG_MS), None, "not yet");
    assert_eq!(
        state.isr_to_shrink(T0 + LAG_MS + 1, LAG_MS),
        Some(vec![1, 2])
    );
}

#[test]
fn given_a_follower_at_the_leader_log_end_when_idle_long_should_stay_in_the_isr() {
    let mut state = leader(&[1, 2]);
    state.on_follower_fetch(2, 10, 10, T0);
    assert_eq!(state.isr_to_shrink(T0 + 10 * LAG_MS, LAG_MS), None);
}

#[test]
fn given_a_follower_that_fetched_the_previous_log_end_when_behind_now_should_count_as_caught_up_then(
) {
    let mut state = leader(&[1, 2]);
    state.on_follower_fetch(2, 10, 10, T0); // caught up at T0; the leader's log end was 10
    state.on_local_append(30, T0 + 100);
    // It reaches 10, the leader's log end at its previous fetch: caught up as of that
    // previous fetch (T0), not now.
    state.on_follower_fetch(2, 10, 30, T0 + 20_000);
    assert_eq!(state.isr_to_shrink(T0 + LAG_MS + 1, LAG_MS), Some(vec![1]));
    state.on_local_append(40, T0 + 20_100);
    // It reaches 30, the leader's log end at its previous fetch: caught up as of T0 + 20s.
    state.on_follower_fetch(2, 30, 40, T0 + 25_000);
    assert_eq!(state.isr_to_shrink(T0 + LAG_MS + 1, LAG_MS), None);
    assert_eq!(
        state.isr_to_shrink(T0 + 20_000 + LAG_MS + 1, LAG_MS),
        Some(vec![1])
    );
}

#[test]
fn given_a_new_leader_when_an_isr_follower_never_fetches_should_shrink_after_the_lag_time() {
    let mut state = leader(&[1, 2]);
    state.on_local_append(11, T0);
    assert_eq!(
        state.isr_to_shrink(T0 + LAG_MS, LAG_MS),
        None,
        "grace from election"
    );
    assert_eq!(state.isr_to_shrink(T0 + LAG_MS + 1, LAG_MS), Some(vec![1]));
}

#[test]
fn given_a_pending_expansion_when_checking_lag_should_not_propose_a_second_change() {
    let mut state = leader(&[1, 2]);
    state.on_local_append(11, T0);
    state.on_follower_fetch(2, 10, 11, T0);
    assert_eq!(
        state.on_follower_fetch(3, 10, 11, T0).propose_isr,
        Some(vec![1, 2, 3])
    );
    assert_eq!(state.isr_to_shrink(T0 + 10 * LAG_MS, LAG_MS), None);
}

#[test]
fn given_a_lagging_follower_when_the_shrunk_isr_is_committed_should_advance_the_hw() {
    let mut state = leader(&[1, 2, 3]);
    state.on_local_append(20, T0);
    state.on_follower_fetch(2, 20, 20, T0);
    state.on_follower_fetch(3, 12, 20, T0);
    assert_eq!(state.high_watermark(), 12);
    let shrunk = state
        .isr_to_shrink(T0 + LAG_MS + 1, LAG_MS)
        .expect("3 lags");
    assert_eq!(shrunk, vec![1, 2]);
    assert_eq!(state.high_watermark(), 12, "only the committed ISR counts");
    assert_eq!(state.apply_isr(shrunk, 20), Some(20));
}

#[test]
fn given_min_isr_two_when_checking_acks_should_wait_commit_or_fail() {
    let mut state = leader(&[1, 2]);
    state.on_local_append(13, T0);
    assert_eq!(state.check_committed(13, 2), Ok(false));
    state.on_follower_fetch(2, 13, 13, T0);
    assert_eq!(state.check_committed(13, 2), Ok(true));
    assert_eq!(state.check_committed(11, 2), Ok(true));
    assert!(state.has_min_isr(2));

    // The follower falls behind, is removed, and the HW passes the write with an ISR of one.
    state.on_local_append(16, T0 + 1);
    assert_eq!(state.check_committed(16, 2), Ok(false));
    state.apply_isr(vec![1], 16);
    assert_eq!(
        state.check_committed(16, 2),
        Err(AckError::NotEnoughReplicasAfterAppend)
    );
    assert!(!state.has_min_isr(2));
    assert_eq!(state.check_committed(16, 1), Ok(true));
}

#[test]
fn given_a_stale_log_end_when_a_fetch_reports_it_should_keep_the_newer_one() {
    let mut state = leader(&[1, 2]);
    state.on_local_append(20, T0);
    state.on_follower_fetch(2, 10, 15, T0);
    assert_eq!(state.local_log_end(), 20);
    assert_eq!(state.follower_log_end(1), Some(20));
}
