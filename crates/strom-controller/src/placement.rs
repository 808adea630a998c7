//! Where new replicas go: Kafka's round-robin placement over the unfenced brokers, rack
//! aware when every one of them has a rack. Pure functions of the image.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{ControllerError, ReplicationFactorReason};
use crate::image::MetadataImage;

/// Where round-robin placement starts: after every partition the image and this request
/// already have, so consecutive topics start on different brokers (Kafka starts at a random
/// broker; this spreads leaders as well and stays deterministic).
pub(crate) fn placement_start(image: &MetadataImage, added_in_request: i64) -> usize {
    let existing: usize = image.topics().map(|topic| topic.partitions.len()).sum();
    existing.wrapping_add(usize::try_from(added_in_request).unwrap_or(0))
}

/// Kafka's round-robin placement over the unfenced brokers: partition `i` of this batch is
/// led by broker `(start + i) mod n`; its followers follow the leader at a shift that
/// grows by one every `n` partitions, so follower sets spread too. When every unfenced
/// broker has a rack, the broker list alternates racks and followers go to racks without a
/// replica yet (Kafka's rack-aware rule). On a single node every partition gets
/// `[node_id]`. Fewer unfenced brokers than the replication factor: INVALID_REPLICATION_FACTOR.
pub(crate) fn place_replicas(
    image: &MetadataImage,
    start: usize,
    count: i32,
    replication_factor: i16,
) -> Result<Vec<Vec<i32>>, ControllerError> {
    if replication_factor <= 0 {
        return Err(ControllerError::InvalidReplicationFactor(
            ReplicationFactorReason::NonPositive {
                requested: replication_factor,
            },
        ));
    }
    let brokers = image.unfenced_broker_ids();
    let rf = replication_factor as usize;
    if rf > brokers.len() {
        return Err(ControllerError::InvalidReplicationFactor(
            ReplicationFactorReason::NotEnoughBrokers {
                requested: replication_factor,
                available_brokers: brokers,
            },
        ));
    }
    let racks: Option<BTreeMap<i32, &str>> = brokers
        .iter()
        .map(|id| Some((*id, image.broker(*id)?.rack.as_deref()?)))
        .collect();
    Ok(match racks {
        Some(racks) => place_rack_aware(&racks, start, count, rf),
        None => place_round_robin(&brokers, start, count, rf),
    })
}

/// Kafka's `replicaIndex`: the follower `k` places after the leader at index `first`.
fn replica_index(first: usize, shift: usize, k: usize, n: usize) -> usize {
    debug_assert!(n > 1);
    (first + 1 + (shift + k) % (n - 1)) % n
}

fn place_round_robin(brokers: &[i32], start: usize, count: i32, rf: usize) -> Vec<Vec<i32>> {
    let n = brokers.len();
    let mut shift = start % n;
    (0..count as usize)
        .map(|i| {
            if i > 0 && i % n == 0 {
                shift += 1;
            }
            let first = (start + i) % n;
            let mut replicas = vec![brokers[first]];
            replicas.extend((0..rf - 1).map(|k| brokers[replica_index(first, shift, k, n)]));
            replicas
        })
        .collect()
}

/// Brokers ordered so racks alternate: the first broker of each rack, then the second of
/// each, and so on (Kafka's `getRackAlternatedBrokerList`).
fn rack_alternated(racks: &BTreeMap<i32, &str>) -> Vec<i32> {
    let mut by_rack: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (broker, rack) in racks {
        by_rack.entry(rack).or_default().push(*broker);
    }
    let deepest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    (0..deepest)
        .flat_map(|depth| by_rack.values().filter_map(move |b| b.get(depth).copied()))
        .collect()
}

fn place_rack_aware(
    racks: &BTreeMap<i32, &str>,
    start: usize,
    count: i32,
    rf: usize,
) -> Vec<Vec<i32>> {
    let arranged = rack_alternated(racks);
    let n = arranged.len();
    let rack_count = racks.values().collect::<BTreeSet<_>>().len();
    let mut shift = start % n;
    (0..count as usize)
        .map(|i| {
            if i > 0 && i % n == 0 {
                shift += 1;
            }
            let first = (start + i) % n;
            let mut replicas = vec![arranged[first]];
            let mut racks_used = BTreeSet::from([racks[&arranged[first]]]);
            let mut k = 0;
            while replicas.len() < rf {
                // Every other broker comes up within n - 1 steps, and one of them fits.
                assert!(k < rf * n, "rack-aware placement found no broker");
                let broker = arranged[replica_index(first, shift * rack_count, k, n)];
                k += 1;
                let rack = racks[&broker];
                if replicas.contains(&broker)
                    || (racks_used.contains(rack) && racks_used.len() < rack_count)
                {
                    continue;
                }
                replicas.push(broker);
                racks_used.insert(rack);
            }
            replicas
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distinct(replicas: &[i32]) -> bool {
        replicas.iter().collect::<BTreeSet<_>>().len() == replicas.len()
    }

    #[test]
    fn given_three_brokers_when_placing_rf3_should_spread_leaders_and_followers() {
        let placed = place_round_robin(&[1, 2, 3], 0, 6, 3);
        assert!(placed.iter().all(|r| r.len() == 3 && distinct(r)));
        let leaders: Vec<i32> = placed.iter().map(|r| r[0]).collect();
        assert_eq!(leaders, vec![1, 2, 3, 1, 2, 3]);
        // The follower order shifts after a full round, so second replicas vary.
        assert_ne!(placed[0][1], placed[3][1]);
        // A later batch starts elsewhere.
        assert_eq!(place_round_robin(&[1, 2, 3], 7, 1, 2)[0][0], 2);
    }

    #[test]
    fn given_racks_when_placing_should_put_replicas_on_distinct_racks_first() {
        let racks = BTreeMap::from([(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")]);
        assert_eq!(rack_alternated(&racks), vec![1, 3, 5, 2, 4, 6]);
        for replicas in place_rack_aware(&racks, 0, 12, 3) {
            let used: BTreeSet<&str> = replicas.iter().map(|b| racks[b]).collect();
            assert_eq!(used.len(), 3, "{replicas:?}");
            assert!(distinct(&replicas));
        }
        let two_racks = BTreeMap::from([(1, "a"), (2, "a"), (3, "b")]);
        for replicas in place_rack_aware(&two_racks, 1, 6, 3) {
            assert!(distinct(&replicas), "{replicas:?}");
        }
    }
}
