//! A distributed worker's group membership: a classic group of protocol type `connect`.
//! A worker offers the protocols its `connect.protocol` names (`sessioned`, `compatible`,
//! `default`, most preferred first) and the coordinator picks one every member offers.
//!
//! - `default` (Kafka Connect's eager protocol): the leader assigns every connector and
//!   task round-robin over the members sorted by id; each member stops all its tasks
//!   before it rejoins, so no task ever runs on two workers of one generation.
//! - `compatible` / `sessioned` (KIP-415, incremental cooperative): members keep running
//!   through a rebalance and the leader moves only what must move
//!   ([`crate::cooperative`]): revoked first, placed in the next generation.
//!
//! Metadata (JSON): `{"url": ..., "config_fingerprint": ..., "assignment": {"connectors":
//! [...], "tasks": [...]}}` (what the member runs). Assignment (JSON): `{"error": 0,
//! "leader": ..., "leader_url": ..., "config_fingerprint": ..., "connectors": [...],
//! "tasks": [{"connector": ..., "task": ...}], "revoked": {...}, "delay_ms": ...}`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use strom_client::membership::{GroupMember, HeartbeatOutcome, JoinedGroup};
use strom_client::Client;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::WorkerConfig;
use crate::cooperative::{self, CooperativeAssignment, LeaderMemory};
use crate::herder::Herder;
use crate::state::{self, all_tasks, assignment_fingerprint, ConnectorEntry, TaskId};
use crate::worker::Worker;

pub const PROTOCOL_TYPE: &str = "connect";
pub const PROTOCOL_EAGER: &str = "default";

/// One member's share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    pub connectors: BTreeSet<String>,
    pub tasks: BTreeSet<TaskId>,
}

/// Round-robin over the members sorted by id: connectors first, then tasks, each list
/// continuing where the previous one stopped so the load evens out.
pub fn assign(
    members: &[String],
    connectors: &BTreeMap<String, ConnectorEntry>,
) -> BTreeMap<String, Assignment> {
    let mut sorted: Vec<&String> = members.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut out: BTreeMap<String, Assignment> = sorted
        .iter()
        .map(|m| ((*m).clone(), Assignment::default()))
        .collect();
    if sorted.is_empty() {
        return out;
    }
    let mut next = 0usize;
    for name in connectors.keys() {
        let member = sorted[next % sorted.len()];
        out.entry(member.clone())
            .or_default()
            .connectors
            .insert(name.clone());
        next += 1;
    }
    for task in all_tasks(connectors) {
        let member = sorted[next % sorted.len()];
        out.entry(member.clone()).or_default().tasks.insert(task);
        next += 1;
    }
    out
}

fn tasks_json(tasks: &BTreeSet<TaskId>) -> Vec<Value> {
    tasks
        .iter()
        .map(|t| json!({"connector": t.connector, "task": t.task}))
        .collect()
}

fn assignment_json(assignment: &Assignment) -> Value {
    json!({"connectors": assignment.connectors, "tasks": tasks_json(&assignment.tasks)})
}

fn encode_assignment(
    assignment: &CooperativeAssignment,
    leader: &str,
    leader_url: &str,
    fingerprint: u64,
) -> Bytes {
    Bytes::from(
        json!({
            "error": 0,
            "leader": leader,
            "leader_url": leader_url,
            "config_fingerprint": fingerprint.to_string(),
            "connectors": assignment.assigned.connectors,
            "tasks": tasks_json(&assignment.assigned.tasks),
            "revoked": assignment_json(&assignment.revoked),
            "delay_ms": assignment.delay.as_millis() as u64,
        })
        .to_string(),
    )
}

/// `{"connectors": [...], "tasks": [...]}` (missing lists: empty).
fn decode_sets(value: &Value) -> Assignment {
    let connectors = value["connectors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    let tasks = value["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(TaskId {
                connector: t["connector"].as_str()?.to_string(),
                task: u32::try_from(t["task"].as_u64()?).ok()?,
            })
        })
        .collect();
    Assignment { connectors, tasks }
}

fn decode_assignment(bytes: &[u8]) -> Option<(CooperativeAssignment, u64)> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    value["connectors"].as_array()?;
    value["tasks"].as_array()?;
    let fingerprint = value["config_fingerprint"].as_str()?.parse().ok()?;
    Some((
        CooperativeAssignment {
            assigned: decode_sets(&value),
            revoked: decode_sets(&value["revoked"]),
            delay: Duration::from_millis(value["delay_ms"].as_u64().unwrap_or(0)),
        },
        fingerprint,
    ))
}

/// Runs the member until `shutdown` turns true: join, (lead,) sync, run the assignment,
/// heartbeat; rejoin when the group rebalances or the connectors change.
pub async fn run(
    config: WorkerConfig,
    client: Client,
    worker: Arc<Worker>,
    herder: Arc<Herder>,
    url: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut member = GroupMember::new(
        client,
        &config.group_id,
        PROTOCOL_TYPE,
        config.session_timeout_ms,
        config.rebalance_timeout_ms,
    );
    let heartbeat_interval = Duration::from_millis(config.heartbeat_interval_ms);
    let max_delay = Duration::from_millis(config.scheduled_rebalance_max_delay_ms);
    let mut changes = herder.configs.subscribe();
    let mut attempt: u32 = 0;
    // What this worker runs (its last assignment), and whether that generation was eager.
    let mut current = Assignment::default();
    let mut eager = true;
    let mut memory = LeaderMemory::default();
    'membership: while !*shutdown.borrow() {
        if eager {
            // Eager: give everything up before joining.
            worker.stop_all().await;
            current = Assignment::default();
        }
        if let Err(error) = herder.configs.read_to_end().await {
            warn!(%error, "reading the configs topic failed");
        }
        let fingerprint = assignment_fingerprint(&herder.connectors());
        let metadata = Bytes::from(
            json!({"url": url, "config_fingerprint": fingerprint.to_string(),
                   "assignment": assignment_json(&current)})
            .to_string(),
        );
        let protocols: Vec<(String, Bytes)> = config
            .connect_protocol
            .offered()
            .iter()
            .map(|name| (name.to_string(), metadata.clone()))
            .collect();
        let joined = match member.join(&protocols).await {
            Ok(joined) => joined,
            Err(error) => {
                warn!(%error, "joining the connect group failed; retrying");
                backoff(&mut attempt, &mut shutdown).await;
                continue;
            }
        };
        let cooperative = joined.protocol_name != PROTOCOL_EAGER;
        if !cooperative && !eager {
            // A member that speaks only `default` joined: stop everything, as it expects.
            worker.stop_all().await;
        }
        eager = !cooperative;
        let assignments = if joined.is_leader() {
            leader_assignments(&joined, &herder, &url, cooperative, &mut memory, max_delay).await
        } else {
            Vec::new()
        };
        let bytes = match member.sync(&joined, &assignments).await {
            Ok(bytes) => bytes,
            Err(error) => {
                warn!(%error, "syncing the connect group failed; rejoining");
                backoff(&mut attempt, &mut shutdown).await;
                continue;
            }
        };
        let Some((share, assigned_fingerprint)) = decode_assignment(&bytes) else {
            warn!("the connect group's assignment cannot be read; rejoining");
            backoff(&mut attempt, &mut shutdown).await;
            continue;
        };
        let assignment = share.assigned.clone();
        attempt = 0;
        worker.set_generation(joined.generation_id);
        info!(
            generation = joined.generation_id,
            leader = joined.is_leader(),
            protocol = %joined.protocol_name,
            connectors = assignment.connectors.len(),
            tasks = assignment.tasks.len(),
            revoked_tasks = share.revoked.tasks.len(),
            delay_ms = share.delay.as_millis() as u64,
            "connect group assignment"
        );
        if share.revoked != Assignment::default() {
            // Stop what moves, then rejoin so the next generation can place it.
            worker
                .reconcile(
                    &assignment.connectors,
                    &assignment.tasks,
                    &herder.connectors(),
                )
                .await;
            current = assignment;
            continue 'membership;
        }
        current = assignment.clone();
        let rejoin_at = (!share.delay.is_zero()).then(|| tokio::time::Instant::now() + share.delay);
        let mut heartbeat = tokio::time::interval(heartbeat_interval);
        heartbeat.tick().await;
        loop {
            let connectors = herder.connectors();
            if assignment_fingerprint(&connectors) != assigned_fingerprint {
                // Behind the leader, or the connectors changed since: read to the end and
                // look again before asking for a rebalance.
                let _ = herder.configs.read_to_end().await;
                if assignment_fingerprint(&herder.connectors()) != assigned_fingerprint {
                    info!("connectors changed; rejoining the connect group");
                    continue 'membership;
                }
            }
            worker
                .reconcile(
                    &assignment.connectors,
                    &assignment.tasks,
                    &herder.connectors(),
                )
                .await;
            tokio::select! {
                _ = heartbeat.tick() => match member.heartbeat().await {
                    Ok(HeartbeatOutcome::Stable) => {}
                    Ok(HeartbeatOutcome::Lost) => {
                        // Out of the group: its work may be given to others already.
                        info!("left the connect group (session lost); stopping every task");
                        worker.stop_all().await;
                        current = Assignment::default();
                        continue 'membership;
                    }
                    Ok(outcome) => {
                        info!(?outcome, "connect group rebalancing");
                        continue 'membership;
                    }
                    Err(error) => warn!(%error, "connect group heartbeat failed"),
                },
                changed = changes.changed() => if changed.is_err() { break 'membership },
                _ = sleep_until_some(rejoin_at) => {
                    info!("scheduled rebalance: placing the work of departed workers");
                    continue 'membership;
                }
                _ = shutdown.changed() => break 'membership,
            }
        }
    }
    worker.stop_all().await;
    if let Err(error) = member.leave().await {
        warn!(%error, "leaving the connect group failed");
    }
}

async fn leader_assignments(
    joined: &JoinedGroup,
    herder: &Herder,
    url: &str,
    cooperative: bool,
    memory: &mut LeaderMemory,
    max_delay: Duration,
) -> Vec<(String, Bytes)> {
    if let Err(error) = herder.configs.read_to_end().await {
        warn!(%error, "the leader could not read the configs topic to its end");
    }
    let connectors = state::connectors(&herder.configs.snapshot());
    let fingerprint = assignment_fingerprint(&connectors);
    let shares: BTreeMap<String, CooperativeAssignment> = if cooperative {
        let members: Vec<(String, Assignment)> = joined
            .members
            .iter()
            .map(|(id, metadata)| {
                let owned = serde_json::from_slice::<Value>(metadata)
                    .map(|m| decode_sets(&m["assignment"]))
                    .unwrap_or_default();
                (id.clone(), owned)
            })
            .collect();
        cooperative::assign(
            &members,
            &connectors,
            memory,
            max_delay,
            std::time::Instant::now(),
        )
    } else {
        *memory = LeaderMemory::default();
        let members: Vec<String> = joined.members.iter().map(|(id, _)| id.clone()).collect();
        assign(&members, &connectors)
            .into_iter()
            .map(|(member, assigned)| {
                let share = CooperativeAssignment {
                    assigned,
                    ..CooperativeAssignment::default()
                };
                (member, share)
            })
            .collect()
    };
    shares
        .into_iter()
        .map(|(member, share)| {
            let bytes = encode_assignment(&share, &joined.member_id, url, fingerprint);
            (member, bytes)
        })
        .collect()
}

/// Waits until `at`, or forever when there is none.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn backoff(attempt: &mut u32, shutdown: &mut watch::Receiver<bool>) {
    let wait = Duration::from_millis(200 * (1u64 << (*attempt).min(4)));
    *attempt += 1;
    let _ = tokio::time::timeout(wait, shutdown.changed()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{RestartRequest, TargetState};

    fn entry(class: &str, tasks: &str) -> ConnectorEntry {
        ConnectorEntry {
            config: [
                ("connector.class".to_string(), class.to_string()),
                ("tasks.max".to_string(), tasks.to_string()),
            ]
            .into(),
            target: TargetState::Started,
            restart: RestartRequest::default(),
            task_restarts: BTreeMap::new(),
        }
    }

    #[test]
    fn given_two_members_when_assigned_should_place_every_task_once_and_evenly() {
        let connectors: BTreeMap<String, ConnectorEntry> = [
            ("a".to_string(), entry("FileStreamSink", "3")),
            ("b".to_string(), entry("FileStreamSource", "1")),
        ]
        .into();
        let members = vec!["m2".to_string(), "m1".to_string()];
        let out = assign(&members, &connectors);
        let tasks: Vec<&TaskId> = out.values().flat_map(|a| a.tasks.iter()).collect();
        assert_eq!(tasks.len(), 4);
        let unique: BTreeSet<&TaskId> = tasks.iter().copied().collect();
        assert_eq!(unique.len(), 4);
        let loads: Vec<usize> = out
            .values()
            .map(|a| a.tasks.len() + a.connectors.len())
            .collect();
        assert_eq!(loads, vec![3, 3]);
        let share = CooperativeAssignment {
            assigned: out["m1"].clone(),
            ..CooperativeAssignment::default()
        };
        let bytes = encode_assignment(&share, "m1", "http://x", 7);
        assert_eq!(decode_assignment(&bytes), Some((share, 7)));
    }

    #[test]
    fn given_a_stopped_connector_when_assigned_should_give_it_no_tasks() {
        let mut stopped = entry("FileStreamSink", "2");
        stopped.target = TargetState::Stopped;
        let connectors: BTreeMap<String, ConnectorEntry> = [("a".to_string(), stopped)].into();
        let out = assign(&["m".to_string()], &connectors);
        assert!(out["m"].tasks.is_empty());
        assert_eq!(out["m"].connectors.len(), 1);
    }
}
