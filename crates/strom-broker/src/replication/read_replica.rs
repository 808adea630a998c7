//! KIP-392: which replica a consumer should read from. Kafka's `RackAwareReplicaSelector`
//! rule, as a pure function the leader's fetch handler calls.
//!
//! A consumer that names its rack (`client.rack`, Fetch v11+) reads from a replica in that
//! rack when the leader is elsewhere: the cross-rack (often cross-zone, billed) traffic
//! shrinks to replication only. Only in-sync, unfenced replicas that already hold the
//! fetch offset are candidates, so a redirected consumer never lands on a replica that
//! cannot serve it; among those in the rack the one furthest ahead wins.

/// One replica the leader could send a consumer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCandidate<'a> {
    pub broker_id: i32,
    pub rack: Option<&'a str>,
    /// Where the leader knows this replica's log ends.
    pub log_end: i64,
}

/// The replica in `client_rack` a consumer fetching at `fetch_offset` should read from
/// instead of the leader, or `None` to stay on the leader (no rack given, the leader is in
/// that rack, or no in-sync replica there holds the offset). `followers` are the leader's
/// in-sync, unfenced followers.
pub fn preferred_read_replica(
    client_rack: &str,
    leader_rack: Option<&str>,
    followers: &[ReadCandidate<'_>],
    fetch_offset: i64,
) -> Option<i32> {
    if client_rack.is_empty() || leader_rack == Some(client_rack) {
        return None;
    }
    followers
        .iter()
        .filter(|c| c.rack == Some(client_rack) && c.log_end >= fetch_offset)
        .max_by_key(|c| (c.log_end, std::cmp::Reverse(c.broker_id)))
        .map(|c| c.broker_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(broker_id: i32, rack: &str, log_end: i64) -> ReadCandidate<'_> {
        ReadCandidate {
            broker_id,
            rack: Some(rack),
            log_end,
        }
    }

    #[test]
    fn given_client_rack_when_choosing_should_prefer_the_furthest_replica_in_that_rack() {
        let followers = [
            candidate(2, "b", 90),
            candidate(3, "c", 100),
            candidate(4, "c", 120),
            candidate(5, "c", 120),
        ];
        assert_eq!(
            preferred_read_replica("c", Some("a"), &followers, 50),
            Some(4)
        );
        assert_eq!(
            preferred_read_replica("b", Some("a"), &followers, 50),
            Some(2)
        );
    }

    #[test]
    fn given_no_reason_to_move_when_choosing_should_stay_on_the_leader() {
        let followers = [candidate(2, "b", 90)];
        // No rack given; the leader is in the client's rack; no replica in that rack;
        // the one there does not hold the offset yet; a follower without a rack.
        assert_eq!(preferred_read_replica("", Some("a"), &followers, 0), None);
        assert_eq!(preferred_read_replica("b", Some("b"), &followers, 0), None);
        assert_eq!(preferred_read_replica("z", Some("a"), &followers, 0), None);
        assert_eq!(preferred_read_replica("b", Some("a"), &followers, 91), None);
        let rackless = [ReadCandidate {
            broker_id: 2,
            rack: None,
            log_end: 90,
        }];
        assert_eq!(preferred_read_replica("b", None, &rackless, 0), None);
    }
}
