//! `strom cluster decommission BROKER`: a broker leaves the cluster for good. Every replica
//! it holds moves to another broker through reassignments (KIP-455, so the configured
//! `follower.replication.throttled.rate` applies to the catch-up), the command shows the
//! progress and waits for every move to complete, then unregisters the broker
//! (UnregisterBroker), after which Metadata, DescribeCluster and DescribeQuorum no longer
//! list it. The broker process may then be stopped (it is no longer sent anything).
//!
//! Where a replica goes: a broker that does not already hold the partition; when the
//! leaving broker has a rack, one of the same rack if there is one (so the partition's
//! rack spread stays as it was), else one whose rack the partition does not use yet;
//! among those the one holding the fewest replicas (counting the moves planned so far),
//! the lowest id on a tie. The replacement takes the leaving broker's place in the replica
//! list, so the preferred leader order is kept. Partitions created while the moves run may
//! be placed on the leaving broker: the command plans again until none is left.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use clap::Args;
use strom_client::cluster::{BrokerMetadata, TopicMetadata};
use strom_client::{Admin, PartitionMove};

use super::{fail, ConnectArgs};

/// How often the moves' progress is checked.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Moves sent in one AlterPartitionReassignments request.
const MOVES_PER_REQUEST: usize = 1_000;
/// Planning rounds (a round moves what the last left behind, e.g. a partition created on
/// the broker meanwhile) before giving up.
const ROUNDS_MAX: usize = 5;

#[derive(Debug, Args)]
pub struct DecommissionArgs {
    /// The id of the broker that leaves.
    pub broker: i32,
    /// Give up (leaving the moves started running, and the broker registered) after this
    /// many seconds.
    #[arg(long, default_value_t = 3_600, value_name = "SECONDS")]
    pub timeout_secs: u64,
    /// Only print the moves; start nothing and unregister nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// One planned move: a partition's new replica list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMove {
    pub topic: String,
    pub partition: i32,
    pub from: Vec<i32>,
    pub to: Vec<i32>,
}

/// Plans moving every replica of `leaving` to the other `brokers` (see the module docs).
/// Errors name a partition no broker can take.
pub fn plan_moves(
    leaving: i32,
    brokers: &BTreeMap<i32, BrokerMetadata>,
    topics: &[TopicMetadata],
) -> Result<Vec<PlannedMove>, String> {
    let mut load: BTreeMap<i32, usize> = brokers
        .keys()
        .filter(|id| **id != leaving)
        .map(|id| (*id, 0))
        .collect();
    for topic in topics {
        for partition in &topic.partitions {
            for replica in &partition.replicas {
                if let Some(count) = load.get_mut(replica) {
                    *count += 1;
                }
            }
        }
    }
    let rack = |id: i32| brokers.get(&id).and_then(|b| b.rack.clone());
    let leaving_rack = rack(leaving);
    let mut moves = Vec::new();
    for topic in topics {
        for partition in &topic.partitions {
            let Some(position) = partition.replicas.iter().position(|r| *r == leaving) else {
                continue;
            };
            let used_racks: BTreeSet<Option<String>> = partition
                .replicas
                .iter()
                .filter(|r| **r != leaving)
                .map(|r| rack(*r))
                .collect();
            let free: Vec<i32> = load
                .keys()
                .copied()
                .filter(|id| !partition.replicas.contains(id))
                .collect();
            let same_rack: Vec<i32> = free
                .iter()
                .copied()
                .filter(|id| leaving_rack.is_some() && rack(*id) == leaving_rack)
                .collect();
            let new_rack: Vec<i32> = free
                .iter()
                .copied()
                .filter(|id| rack(*id).is_some() && !used_racks.contains(&rack(*id)))
                .collect();
            let candidates = [same_rack, new_rack, free]
                .into_iter()
                .find(|c| !c.is_empty())
                .ok_or_else(|| {
                    format!(
                        "partition {}-{} has replicas {:?} and no other broker can take \
                         broker {leaving}'s replica: add a broker first",
                        topic.name, partition.partition, partition.replicas
                    )
                })?;
            let chosen = candidates
                .iter()
                .copied()
                .min_by_key(|id| (load[id], *id))
                .unwrap_or(candidates[0]);
            if let Some(count) = load.get_mut(&chosen) {
                *count += 1;
            }
            let mut to = partition.replicas.clone();
            to[position] = chosen;
            moves.push(PlannedMove {
                topic: topic.name.clone(),
                partition: partition.partition,
                from: partition.replicas.clone(),
                to,
            });
        }
    }
    Ok(moves)
}

pub async fn decommission(args: DecommissionArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let cluster = admin.describe_cluster().await?;
    if !cluster.brokers.contains_key(&args.broker) {
        return Err(fail(format!(
            "broker {} is not registered (brokers: {:?})",
            args.broker,
            cluster.brokers.keys().collect::<Vec<_>>()
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    for round in 0..ROUNDS_MAX {
        let cluster = admin.describe_cluster().await?;
        let topics = admin.list_topics(true).await?;
        let moves = plan_moves(args.broker, &cluster.brokers, &topics).map_err(fail)?;
        if moves.is_empty() {
            break;
        }
        if args.dry_run {
            for planned in &moves {
                println!(
                    "{}-{}: {:?} -> {:?}",
                    planned.topic, planned.partition, planned.from, planned.to
                );
            }
            println!(
                "{} partition(s) would move off broker {}; nothing was started",
                moves.len(),
                args.broker
            );
            return Ok(());
        }
        if round > 0 {
            println!(
                "{} more partition(s) found on broker {}",
                moves.len(),
                args.broker
            );
        }
        start_moves(&admin, &moves).await?;
        wait_for_moves(&admin, args.broker, &moves, deadline).await?;
    }
    let topics = admin.list_topics(true).await?;
    let left = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .filter(|(_, p)| p.replicas.contains(&args.broker))
        .count();
    if left > 0 {
        return Err(fail(format!(
            "{left} partition(s) still have a replica on broker {} after {ROUNDS_MAX} rounds; \
             the broker stays registered",
            args.broker
        )));
    }
    if args.dry_run {
        println!("broker {} holds no replica; nothing to move", args.broker);
        return Ok(());
    }
    admin.unregister_broker(args.broker).await?;
    println!(
        "broker {} holds no replica and is unregistered; it may be stopped",
        args.broker
    );
    Ok(())
}

async fn start_moves(admin: &Admin, moves: &[PlannedMove]) -> anyhow::Result<()> {
    println!("moving {} partition(s)", moves.len());
    for chunk in moves.chunks(MOVES_PER_REQUEST) {
        let request: Vec<PartitionMove> = chunk
            .iter()
            .map(|planned| PartitionMove {
                topic: planned.topic.clone(),
                partition: planned.partition,
                replicas: Some(planned.to.clone()),
            })
            .collect();
        let results = admin.alter_partition_reassignments(&request).await?;
        let failed: Vec<String> = results
            .iter()
            .filter(|r| r.error_code != 0)
            .map(|r| format!("{}-{} ({})", r.topic, r.partition, r.error_name()))
            .collect();
        if !failed.is_empty() {
            return Err(fail(format!(
                "{} move(s) were refused: {}; the others keep running, see `strom topic \
                 reassignments`",
                failed.len(),
                failed.join(", ")
            )));
        }
    }
    Ok(())
}

/// Waits until no partition of `moves` still has a reassignment in progress or a replica on
/// `leaving`, printing the progress whenever it changes.
async fn wait_for_moves(
    admin: &Admin,
    leaving: i32,
    moves: &[PlannedMove],
    deadline: Instant,
) -> anyhow::Result<()> {
    let wanted: BTreeSet<(String, i32)> = moves
        .iter()
        .map(|m| (m.topic.clone(), m.partition))
        .collect();
    let mut last_printed = None;
    loop {
        let ongoing: BTreeSet<(String, i32)> = admin
            .list_partition_reassignments(None)
            .await?
            .into_iter()
            .map(|o| (o.topic, o.partition))
            .filter(|key| wanted.contains(key))
            .collect();
        let remaining = if ongoing.is_empty() {
            // Every move completed: check that the leaving broker is out of each.
            let topics = admin.list_topics(true).await?;
            topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t.name.clone(), p)))
                .filter(|(name, p)| {
                    wanted.contains(&(name.clone(), p.partition)) && p.replicas.contains(&leaving)
                })
                .count()
        } else {
            ongoing.len()
        };
        let done = wanted.len() - remaining.min(wanted.len());
        if last_printed != Some(done) {
            println!("moved {done} of {} partition(s)", wanted.len());
            last_printed = Some(done);
        }
        if remaining == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(fail(format!(
                "{remaining} move(s) still running at the timeout; they keep running (see \
                 `strom topic reassignments`) and broker {leaving} stays registered"
            )));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use strom_client::cluster::PartitionMetadata;
    use uuid::Uuid;

    use super::*;

    fn brokers(racks: &[(i32, Option<&str>)]) -> BTreeMap<i32, BrokerMetadata> {
        racks
            .iter()
            .map(|(id, rack)| {
                (
                    *id,
                    BrokerMetadata {
                        node_id: *id,
                        host: "localhost".into(),
                        port: 9000 + id,
                        rack: rack.map(str::to_string),
                    },
                )
            })
            .collect()
    }

    fn topic(name: &str, replicas: &[&[i32]]) -> TopicMetadata {
        TopicMetadata {
            name: name.into(),
            topic_id: Uuid::nil(),
            is_internal: false,
            error_code: 0,
            partitions: (0..)
                .zip(replicas)
                .map(|(partition, replicas)| PartitionMetadata {
                    partition,
                    leader: replicas[0],
                    leader_epoch: 0,
                    replicas: replicas.to_vec(),
                    isr: replicas.to_vec(),
                    offline_replicas: Vec::new(),
                    error_code: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn given_no_racks_when_planned_should_replace_in_place_on_the_least_loaded_broker() {
        let brokers = brokers(&[(1, None), (2, None), (3, None), (4, None)]);
        let topics = vec![topic("t", &[&[1, 2], &[2, 3], &[3, 1], &[1, 4]])];
        let moves = plan_moves(1, &brokers, &topics).unwrap();
        let targets: Vec<&[i32]> = moves.iter().map(|m| m.to.as_slice()).collect();
        // Loads before: 2 -> 2, 3 -> 2, 4 -> 1. p0 [1,2]: 4 (1 replica); p2 [3,1]: 4 has 2
        // now, 2 has 2: the lower id; p3 [1,4]: 3 (2) vs 2 (3).
        assert_eq!(targets, vec![&[4, 2][..], &[3, 2][..], &[3, 4][..]]);
        assert!(moves.iter().all(|m| !m.to.contains(&1)));
    }

    #[test]
    fn given_racks_when_planned_should_prefer_the_leaving_brokers_rack() {
        let brokers = brokers(&[
            (1, Some("a")),
            (2, Some("b")),
            (3, Some("a")),
            (4, Some("b")),
        ]);
        let topics = vec![topic("t", &[&[1, 2], &[2, 1]])];
        let moves = plan_moves(1, &brokers, &topics).unwrap();
        assert!(moves.iter().all(|m| m.to.contains(&3)), "{moves:?}");
    }

    #[test]
    fn given_replication_factor_equal_to_the_other_brokers_when_planned_should_fail() {
        let brokers = brokers(&[(1, None), (2, None), (3, None)]);
        let topics = vec![topic("t", &[&[1, 2, 3]])];
        let error = plan_moves(1, &brokers, &topics).unwrap_err();
        assert!(error.contains("t-0"), "{error}");
    }
}
