//! Server-side assignors of the consumer protocol (KIP-848): `uniform` (balanced and sticky)
//! and `range` (per-topic contiguous ranges, as the classic range assignor).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

/// Partitions per topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";
pub const ASSIGNORS: &[&str] = &[UNIFORM, RANGE];

/// One member as an assignor sees it.
pub struct MemberSpec<'a> {
    pub member_id: &'a str,
    pub topics: BTreeSet<Uuid>,
    pub current: &'a Assignment,
}

fn count(assignment: &Assignment) -> usize {
    assignment.values().map(BTreeSet::len).sum()
}

/// Partitions `member` holds in `result` (every member has an entry from the start).
fn load(result: &HashMap<String, Assignment>, member: &str) -> usize {
    result.get(member).map_or(0, count)
}

/// Gives `partition` of `topic` to `member`.
fn give(result: &mut HashMap<String, Assignment>, member: &str, topic: Uuid, partition: i32) {
    result
        .entry(member.to_string())
        .or_default()
        .entry(topic)
        .or_default()
        .insert(partition);
}

/// `uniform`: every member keeps what it has where that stays valid, free partitions go to
/// the least loaded eligible member, then partitions move from the most to the least loaded
/// member until counts differ by at most one wherever subscriptions allow.
pub fn uniform(
    members: &[MemberSpec<'_>],
    topics: &BTreeMap<Uuid, i32>,
) -> HashMap<String, Assignment> {
    let mut result: HashMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.to_string(), Assignment::new()))
        .collect();
    if members.is_empty() {
        return result;
    }
    let mut owner: HashMap<(Uuid, i32), String> = HashMap::new();
    // Sticky: keep valid current partitions, each partition to one member only.
    for member in members {
        for (topic, partitions) in member.current {
            let Some(count) = topics.get(topic) else {
                continue;
            };
            if !member.topics.contains(topic) {
                continue;
            }
            for partition in partitions.iter().filter(|p| **p < *count) {
                if owner.contains_key(&(*topic, *partition)) {
                    continue;
                }
                owner.insert((*topic, *partition), member.member_id.to_string());
                give(&mut result, member.member_id, *topic, *partition);
            }
        }
    }
    // Free partitions to the least loaded eligible member.
    for (topic, partitions) in topics {
        for partition in 0..*partitions {
            if owner.contains_key(&(*topic, partition)) {
                continue;
            }
            let eligible = members
                .iter()
                .filter(|m| m.topics.contains(topic))
                .min_by_key(|m| (load(&result, m.member_id), m.member_id));
            if let Some(member) = eligible {
                owner.insert((*topic, partition), member.member_id.to_string());
                give(&mut result, member.member_id, *topic, partition);
            }
        }
    }
    // Balance: bounded number of single-partition moves.
    let total: usize = topics.values().map(|p| (*p).max(0) as usize).sum();
    for _ in 0..total.saturating_mul(2) {
        let Some(most) = members
            .iter()
            .max_by_key(|m| (load(&result, m.member_id), std::cmp::Reverse(m.member_id)))
        else {
            break;
        };
        let most_count = load(&result, most.member_id);
        let mut moved = false;
        let candidates: Vec<(Uuid, i32)> = result
            .get(most.member_id)
            .into_iter()
            .flat_map(|assignment| assignment.iter().rev())
            .flat_map(|(t, ps)| ps.iter().rev().map(move |p| (*t, *p)))
            .collect();
        for (topic, partition) in candidates {
            let target = members
                .iter()
                .filter(|m| m.member_id != most.member_id && m.topics.contains(&topic))
                .filter(|m| load(&result, m.member_id) + 2 <= most_count)
                .min_by_key(|m| (load(&result, m.member_id), m.member_id));
            if let Some(target) = target {
                // `candidates` lists what `most` holds, unchanged since.
                let Some(from) = result.get_mut(most.member_id) else {
                    continue;
                };
                let Some(set) = from.get_mut(&topic) else {
                    continue;
                };
                set.remove(&partition);
                if set.is_empty() {
                    from.remove(&topic);
                }
                give(&mut result, target.member_id, topic, partition);
                moved = true;
                break;
            }
        }
        if !moved {
            break;
        }
    }
    result
}

/// `range`: for each topic, its subscribers in member-id order get contiguous ranges, the
/// first `partitions % members` one partition more.
pub fn range(
    members: &[MemberSpec<'_>],
    topics: &BTreeMap<Uuid, i32>,
) -> HashMap<String, Assignment> {
    let mut result: HashMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.to_string(), Assignment::new()))
        .collect();
    for (topic, partitions) in topics {
        let mut subscribers: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.member_id)
            .collect();
        subscribers.sort_unstable();
        if subscribers.is_empty() || *partitions <= 0 {
            continue;
        }
        let per = *partitions as usize / subscribers.len();
        let extra = *partitions as usize % subscribers.len();
        let mut next = 0i32;
        for (index, member) in subscribers.iter().enumerate() {
            let take = per + usize::from(index < extra);
            if take == 0 {
                continue;
            }
            let set: BTreeSet<i32> = (next..next + take as i32).collect();
            next += take as i32;
            result
                .entry(member.to_string())
                .or_default()
                .insert(*topic, set);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn flatten(assignment: &HashMap<String, Assignment>) -> Vec<(Uuid, i32)> {
        let mut all: Vec<(Uuid, i32)> = assignment
            .values()
            .flat_map(|a| {
                a.iter()
                    .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
            })
            .collect();
        all.sort();
        all
    }

    #[test]
    fn given_three_members_six_partitions_when_uniform_should_give_two_each_disjoint() {
        let empty = Assignment::new();
        let topics: BTreeMap<Uuid, i32> = [(topic(1), 6)].into();
        let members: Vec<MemberSpec> = ["a", "b", "c"]
            .iter()
            .map(|id| MemberSpec {
                member_id: id,
                topics: [topic(1)].into(),
                current: &empty,
            })
            .collect();
        let result = uniform(&members, &topics);
        assert!(result.values().all(|a| count(a) == 2));
        assert_eq!(
            flatten(&result),
            (0..6).map(|p| (topic(1), p)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn given_member_joins_when_uniform_should_move_only_what_balance_needs() {
        let topics: BTreeMap<Uuid, i32> = [(topic(1), 6)].into();
        let a: Assignment = [(topic(1), [0, 1, 2].into())].into();
        let b: Assignment = [(topic(1), [3, 4, 5].into())].into();
        let empty = Assignment::new();
        let members = vec![
            MemberSpec {
                member_id: "a",
                topics: [topic(1)].into(),
                current: &a,
            },
            MemberSpec {
                member_id: "b",
                topics: [topic(1)].into(),
                current: &b,
            },
            MemberSpec {
                member_id: "c",
                topics: [topic(1)].into(),
                current: &empty,
            },
        ];
        let result = uniform(&members, &topics);
        assert!(result.values().all(|x| count(x) == 2));
        // a and b each keep two of their three.
        assert_eq!(
            result["a"][&topic(1)].intersection(&a[&topic(1)]).count(),
            2
        );
        assert_eq!(
            result["b"][&topic(1)].intersection(&b[&topic(1)]).count(),
            2
        );
    }

    #[test]
    fn given_two_topics_when_range_should_split_each_topic_contiguously() {
        let empty = Assignment::new();
        let topics: BTreeMap<Uuid, i32> = [(topic(1), 3), (topic(2), 2)].into();
        let members = vec![
            MemberSpec {
                member_id: "a",
                topics: [topic(1), topic(2)].into(),
                current: &empty,
            },
            MemberSpec {
                member_id: "b",
                topics: [topic(1)].into(),
                current: &empty,
            },
        ];
        let result = range(&members, &topics);
        assert_eq!(result["a"][&topic(1)], [0, 1].into());
        assert_eq!(result["b"][&topic(1)], [2].into());
        assert_eq!(result["a"][&topic(2)], [0, 1].into());
        assert!(!result["b"].contains_key(&topic(2)));
    }
}
