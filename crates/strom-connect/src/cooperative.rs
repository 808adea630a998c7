//! KIP-415's incremental cooperative assignment, computed by the group's leader.
//!
//! Each member's JoinGroup metadata carries what it runs now (its last assignment). The
//! leader keeps every connector and task where it is, takes from the most loaded members
//! only what must move to even the load (*revoked*: not given to anyone in this
//! generation), and hands what nobody runs to the least loaded. A member with revocations
//! stops them and rejoins at once; in that next generation they are unowned and placed.
//! So a task never runs on two workers at once, and a task that stays put never stops.
//!
//! A worker that leaves: its connectors and tasks (*lost*: assigned by this leader before,
//! run by nobody now) stay unassigned for `scheduled.rebalance.max.delay.ms`, so a worker
//! that restarts gets them back without moving anything else; every member is told the
//! delay left and rejoins when it runs out, and then the lost work is placed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::distributed::Assignment;
use crate::state::{all_tasks, ConnectorEntry, TaskId};

/// What this worker remembers as the leader, from one generation to the next.
#[derive(Debug, Default)]
pub struct LeaderMemory {
    connectors: BTreeSet<String>,
    tasks: BTreeSet<TaskId>,
    /// When the lost work is placed anyway.
    deadline: Option<Instant>,
}

/// One member's share in a cooperative generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CooperativeAssignment {
    /// Everything it should run now.
    pub assigned: Assignment,
    /// What it ran and must stop (already left out of `assigned`).
    pub revoked: Assignment,
    /// Rejoin after this long (the scheduled rebalance for lost work), when non-zero.
    pub delay: Duration,
}

/// Places `items` over `members` (sorted ids): keeps owned items, revokes the excess of
/// the most loaded, gives the unowned (less `held`) to the least loaded.
#[allow(clippy::type_complexity)]
fn balance<T: Ord + Clone>(
    members: &[String],
    owned: &BTreeMap<String, BTreeSet<T>>,
    items: &BTreeSet<T>,
    held: &BTreeSet<T>,
) -> (BTreeMap<String, BTreeSet<T>>, BTreeMap<String, BTreeSet<T>>) {
    let mut kept: BTreeMap<String, BTreeSet<T>> = BTreeMap::new();
    let mut claimed: BTreeSet<T> = BTreeSet::new();
    for member in members {
        let mine: BTreeSet<T> = owned
            .get(member)
            .into_iter()
            .flatten()
            .filter(|item| items.contains(*item) && !claimed.contains(*item))
            .cloned()
            .collect();
        claimed.extend(mine.iter().cloned());
        kept.insert(member.clone(), mine);
    }
    let mut revoked: BTreeMap<String, BTreeSet<T>> = BTreeMap::new();
    if members.is_empty() {
        return (kept, revoked);
    }
    let placed = items.iter().filter(|i| !held.contains(*i)).count();
    let (base, extra) = (placed / members.len(), placed % members.len());
    // The `extra` members allowed one more are those that run the most now.
    let mut order: Vec<&String> = members.iter().collect();
    order.sort_by_key(|m| (std::cmp::Reverse(kept[*m].len()), (*m).clone()));
    let allowed: BTreeMap<String, usize> = order
        .iter()
        .enumerate()
        .map(|(rank, m)| ((*m).clone(), base + usize::from(rank < extra)))
        .collect();
    for member in members {
        let mine = kept.entry(member.clone()).or_default();
        while mine.len() > allowed[member] {
            if let Some(last) = mine.iter().next_back().cloned() {
                mine.remove(&last);
                revoked.entry(member.clone()).or_default().insert(last);
            }
        }
    }
    let revoked_all: BTreeSet<&T> = revoked.values().flatten().collect();
    for item in items {
        if claimed.contains(item) || held.contains(item) || revoked_all.contains(item) {
            continue;
        }
        let target = members
            .iter()
            .max_by_key(|m| {
                let deficit = allowed[*m] as i64 - kept[*m].len() as i64;
                (deficit, std::cmp::Reverse((*m).clone()))
            })
            .cloned();
        if let Some(target) = target {
            kept.entry(target).or_default().insert(item.clone());
        }
    }
    (kept, revoked)
}

/// The leader's cooperative assignment for `members` (id, what it runs now).
pub fn assign(
    members: &[(String, Assignment)],
    connectors: &BTreeMap<String, ConnectorEntry>,
    memory: &mut LeaderMemory,
    max_delay: Duration,
    now: Instant,
) -> BTreeMap<String, CooperativeAssignment> {
    let mut ids: Vec<String> = members.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    let owned_connectors: BTreeMap<String, BTreeSet<String>> = members
        .iter()
        .map(|(id, a)| (id.clone(), a.connectors.clone()))
        .collect();
    let owned_tasks: BTreeMap<String, BTreeSet<TaskId>> = members
        .iter()
        .map(|(id, a)| (id.clone(), a.tasks.clone()))
        .collect();
    let all_connectors: BTreeSet<String> = connectors.keys().cloned().collect();
    let all: BTreeSet<TaskId> = all_tasks(connectors).into_iter().collect();
    let running_connectors: BTreeSet<&String> = owned_connectors.values().flatten().collect();
    let running_tasks: BTreeSet<&TaskId> = owned_tasks.values().flatten().collect();
    let lost_connectors: BTreeSet<String> = memory
        .connectors
        .iter()
        .filter(|c| all_connectors.contains(*c) && !running_connectors.contains(c))
        .cloned()
        .collect();
    let lost_tasks: BTreeSet<TaskId> = memory
        .tasks
        .iter()
        .filter(|t| all.contains(*t) && !running_tasks.contains(t))
        .cloned()
        .collect();
    let mut delay = Duration::ZERO;
    let (held_connectors, held_tasks) =
        if (lost_connectors.is_empty() && lost_tasks.is_empty()) || max_delay.is_zero() {
            memory.deadline = None;
            (BTreeSet::new(), BTreeSet::new())
        } else {
            let deadline = *memory.deadline.get_or_insert(now + max_delay);
            if now < deadline {
                delay = deadline - now;
                (lost_connectors, lost_tasks)
            } else {
                memory.deadline = None;
                (BTreeSet::new(), BTreeSet::new())
            }
        };
    let (connectors_kept, connectors_revoked) =
        balance(&ids, &owned_connectors, &all_connectors, &held_connectors);
    let (tasks_kept, tasks_revoked) = balance(&ids, &owned_tasks, &all, &held_tasks);
    memory.connectors = connectors_kept
        .values()
        .flatten()
        .chain(held_connectors.iter())
        .cloned()
        .collect();
    memory.tasks = tasks_kept
        .values()
        .flatten()
        .chain(held_tasks.iter())
        .cloned()
        .collect();
    ids.iter()
        .map(|id| {
            let out = CooperativeAssignment {
                assigned: Assignment {
                    connectors: connectors_kept.get(id).cloned().unwrap_or_default(),
                    tasks: tasks_kept.get(id).cloned().unwrap_or_default(),
                },
                revoked: Assignment {
                    connectors: connectors_revoked.get(id).cloned().unwrap_or_default(),
                    tasks: tasks_revoked.get(id).cloned().unwrap_or_default(),
                },
                delay,
            };
            (id.clone(), out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{RestartRequest, TargetState};

    fn connectors(tasks: u32) -> BTreeMap<String, ConnectorEntry> {
        let entry = ConnectorEntry {
            config: [
                ("connector.class".to_string(), "FileStreamSink".to_string()),
                ("tasks.max".to_string(), tasks.to_string()),
            ]
            .into(),
            target: TargetState::Started,
            restart: RestartRequest::default(),
            task_restarts: BTreeMap::new(),
        };
        [("c".to_string(), entry)].into()
    }

    fn run(
        members: &[(&str, &Assignment)],
        memory: &mut LeaderMemory,
        delay_ms: u64,
        now: Instant,
    ) -> BTreeMap<String, CooperativeAssignment> {
        let members: Vec<(String, Assignment)> = members
            .iter()
            .map(|(id, a)| (id.to_string(), (*a).clone()))
            .collect();
        assign(
            &members,
            &connectors(6),
            memory,
            Duration::from_millis(delay_ms),
            now,
        )
    }

    #[test]
    fn a_joining_member_takes_only_what_moves_and_nothing_runs_twice() {
        let now = Instant::now();
        let mut memory = LeaderMemory::default();
        let empty = Assignment::default();
        let first = run(&[("a", &empty), ("b", &empty)], &mut memory, 0, now);
        let (a1, b1) = (first["a"].assigned.clone(), first["b"].assigned.clone());
        assert_eq!(a1.tasks.len() + b1.tasks.len(), 6);
        assert_eq!((a1.tasks.len(), b1.tasks.len()), (3, 3));
        // c joins: a and b keep two tasks each and give one up; c gets nothing yet.
        let second = run(
            &[("a", &a1), ("b", &b1), ("c", &empty)],
            &mut memory,
            0,
            now,
        );
        assert!(second["a"].assigned.tasks.is_subset(&a1.tasks));
        assert!(second["b"].assigned.tasks.is_subset(&b1.tasks));
        assert_eq!(second["a"].revoked.tasks.len(), 1);
        assert_eq!(second["b"].revoked.tasks.len(), 1);
        assert!(second["c"].assigned.tasks.is_empty());
        // After the revocation: c gets the two freed tasks; a and b keep theirs.
        let (a2, b2) = (second["a"].assigned.clone(), second["b"].assigned.clone());
        let third = run(
            &[("a", &a2), ("b", &b2), ("c", &empty)],
            &mut memory,
            0,
            now,
        );
        assert_eq!(third["a"].assigned, a2);
        assert_eq!(third["b"].assigned, b2);
        assert_eq!(third["c"].assigned.tasks.len(), 2);
        assert!(third.values().all(|a| a.revoked == Assignment::default()));
    }

    #[test]
    fn a_departed_members_work_waits_for_the_delay_then_moves() {
        let now = Instant::now();
        let mut memory = LeaderMemory::default();
        let empty = Assignment::default();
        let first = run(&[("a", &empty), ("b", &empty)], &mut memory, 1000, now);
        let a1 = first["a"].assigned.clone();
        let held = run(&[("a", &a1)], &mut memory, 1000, now);
        assert_eq!(held["a"].assigned, a1, "b's work held back");
        assert_eq!(held["a"].delay, Duration::from_millis(1000));
        let later = run(
            &[("a", &a1)],
            &mut memory,
            1000,
            now + Duration::from_millis(1500),
        );
        assert_eq!(later["a"].assigned.tasks.len(), 6);
        assert_eq!(later["a"].delay, Duration::ZERO);
    }
}
