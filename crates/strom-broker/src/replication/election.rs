//! Choosing a partition leader (Kafka's `PartitionLeaderElectionAlgorithms`).

/// Leader election from the ISR (Kafka's rule: first replica in assignment order that is
/// alive and in the ISR; unclean: first alive replica in assignment order if allowed and no
/// ISR member is alive). Returns the new leader or None (offline).
///
/// Assignment order, not ISR order, so the preferred (first) replica wins whenever it is
/// eligible and leadership spreads the way placement intended.
pub fn elect_leader(
    replicas: &[i32],
    isr: &[i32],
    alive: impl Fn(i32) -> bool,
    unclean_allowed: bool,
) -> Option<i32> {
    let clean = replicas
        .iter()
        .copied()
        .find(|&replica| isr.contains(&replica) && alive(replica));
    match clean {
        Some(leader) => Some(leader),
        None if unclean_allowed => replicas.iter().copied().find(|&replica| alive(replica)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_live_isr_members_when_electing_should_take_the_first_in_assignment_order() {
        assert_eq!(
            elect_leader(&[3, 1, 2], &[1, 2, 3], |_| true, false),
            Some(3)
        );
        assert_eq!(elect_leader(&[3, 1, 2], &[2, 1], |_| true, false), Some(1));
        assert_eq!(
            elect_leader(&[3, 1, 2], &[1, 2, 3], |id| id != 3, false),
            Some(1)
        );
    }

    #[test]
    fn given_no_live_isr_member_when_unclean_is_off_should_leave_the_partition_offline() {
        assert_eq!(elect_leader(&[1, 2, 3], &[1], |id| id != 1, false), None);
    }

    #[test]
    fn given_no_live_isr_member_when_unclean_is_allowed_should_take_the_first_live_replica() {
        assert_eq!(elect_leader(&[1, 2, 3], &[1], |id| id != 1, true), Some(2));
        assert_eq!(elect_leader(&[1, 2, 3], &[1], |_| false, true), None);
    }

    #[test]
    fn given_a_live_isr_member_when_unclean_is_allowed_should_still_elect_cleanly() {
        assert_eq!(elect_leader(&[1, 2, 3], &[3], |_| true, true), Some(3));
    }
}
