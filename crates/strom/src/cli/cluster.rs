//! `strom cluster describe|status|quorum|elect-leaders|decommission`: cluster id, controller, brokers,
//! their liveness and the partitions that need attention; the controller quorum's voters
//! and observers with their replication progress; preferred leader elections.

use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::admin::ConfigResource;
use strom_client::cluster::PartitionMetadata;
use strom_client::{Admin, ClientError, ElectionType, QuorumReplicaStatus, QuorumStatus};

use super::output::{join_ids, print_json, Table};
use super::{fail, ConnectArgs};

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show the cluster id, the controller and the brokers.
    Describe(DescribeArgs),
    /// Show broker liveness, the active controller, and under-replicated and offline
    /// partitions.
    Status(StatusArgs),
    /// Show the controller quorum: the active controller, its epoch, and how far each
    /// voter and observer has replicated the metadata log (DescribeQuorum).
    Quorum(QuorumArgs),
    /// Move partition leadership back to each partition's preferred (first) replica.
    ElectLeaders(ElectLeadersArgs),
    /// Move every replica off a broker (reassignments, throttled as configured), wait, then
    /// unregister it: the broker leaves the cluster for good.
    Decommission(super::cluster_decommission::DecommissionArgs),
}

#[derive(Debug, Args)]
pub struct QuorumArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct ElectLeadersArgs {
    /// Only this topic's partitions (default: every partition of the cluster).
    #[arg(long)]
    pub topic: Option<String>,
    /// Only this partition of --topic.
    #[arg(long, requires = "topic")]
    pub partition: Option<i32>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Also show each broker's configs (DescribeConfigs).
    #[arg(long)]
    pub configs: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::Describe(args) => describe(args).await,
        ClusterCommand::Status(args) => status(args).await,
        ClusterCommand::Quorum(args) => quorum(args).await,
        ClusterCommand::ElectLeaders(args) => elect_leaders(args).await,
        ClusterCommand::Decommission(args) => super::cluster_decommission::decommission(args).await,
    }
}

fn replica_json(replica: &QuorumReplicaStatus, high_watermark: i64) -> serde_json::Value {
    json!({
        "id": replica.node_id,
        "log_end_offset": replica.log_end_offset,
        "lag": (high_watermark - replica.log_end_offset).max(0),
        "last_fetch_timestamp": replica.last_fetch_timestamp,
        "last_caught_up_timestamp": replica.last_caught_up_timestamp,
    })
}

fn quorum_json(quorum: &QuorumStatus) -> serde_json::Value {
    json!({
        "leader_id": quorum.leader_id,
        "leader_epoch": quorum.leader_epoch,
        "high_watermark": quorum.high_watermark,
        "voters": quorum.voters.iter().map(|r| replica_json(r, quorum.high_watermark)).collect::<Vec<_>>(),
        "observers": quorum.observers.iter().map(|r| replica_json(r, quorum.high_watermark)).collect::<Vec<_>>(),
    })
}

async fn quorum(args: QuorumArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let quorum = admin.describe_quorum().await?;
    if args.json {
        return print_json(&quorum_json(&quorum));
    }
    println!("Active controller: {}", quorum.leader_id);
    println!("Leader epoch:      {}", quorum.leader_epoch);
    println!("High watermark:    {}", quorum.high_watermark);
    println!();
    let mut table = Table::new(&["ID", "ROLE", "LOG-END-OFFSET", "LAG"]);
    let roles = quorum
        .voters
        .iter()
        .map(|r| {
            (
                r,
                if r.node_id == quorum.leader_id {
                    "leader"
                } else {
                    "voter"
                },
            )
        })
        .chain(quorum.observers.iter().map(|r| (r, "observer")));
    for (replica, role) in roles {
        table.row(vec![
            replica.node_id.to_string(),
            role.to_string(),
            replica.log_end_offset.to_string(),
            (quorum.high_watermark - replica.log_end_offset)
                .max(0)
                .to_string(),
        ]);
    }
    table.print();
    Ok(())
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let cluster = admin.describe_cluster().await?;
    let mut broker_configs = Vec::new();
    if args.configs {
        for id in cluster.brokers.keys() {
            broker_configs.push((
                *id,
                admin.describe_configs(ConfigResource::Broker(*id)).await?,
            ));
        }
    }
    if args.json {
        let configs_of = |id: i32| {
            broker_configs
                .iter()
                .find(|(b, _)| *b == id)
                .map(|(_, entries)| {
                    entries
                        .iter()
                        .map(|c| {
                            json!({
                                "name": c.name,
                                "value": if c.is_sensitive { None } else { c.value.clone() },
                                "source": c.source,
                                "read_only": c.read_only,
                                "sensitive": c.is_sensitive,
                            })
                        })
                        .collect::<Vec<_>>()
                })
        };
        return print_json(&json!({
            "cluster_id": cluster.cluster_id,
            "controller_id": cluster.controller_id,
            "brokers": cluster.brokers.values().map(|b| {
                let mut broker = json!({
                    "id": b.node_id,
                    "host": b.host,
                    "port": b.port,
                    "rack": b.rack,
                });
                if let Some(configs) = configs_of(b.node_id) {
                    broker["configs"] = json!(configs);
                }
                broker
            }).collect::<Vec<_>>(),
        }));
    }
    println!(
        "Cluster id: {}",
        cluster.cluster_id.as_deref().unwrap_or("(none)")
    );
    println!(
        "Controller: {}",
        if cluster.controller_id < 0 {
            "(unknown)".to_string()
        } else {
            cluster.controller_id.to_string()
        }
    );
    println!();
    let mut table = Table::new(&["ID", "HOST", "PORT", "RACK"]);
    for broker in cluster.brokers.values() {
        table.row(vec![
            broker.node_id.to_string(),
            broker.host.clone(),
            broker.port.to_string(),
            broker.rack.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table.print();
    for (id, entries) in &broker_configs {
        println!();
        println!("Broker {id} configs:");
        let mut table = Table::new(&["CONFIG", "VALUE", "SOURCE"]);
        for entry in entries {
            let value = if entry.is_sensitive {
                "(sensitive)".to_string()
            } else {
                entry.value.clone().unwrap_or_else(|| "(null)".into())
            };
            table.row(vec![entry.name.clone(), value, entry.source.to_string()]);
        }
        table.print();
    }
    Ok(())
}

/// Why a partition needs attention. The two are disjoint: an offline partition is not also
/// counted as under-replicated.
fn partition_state(partition: &PartitionMetadata) -> Option<&'static str> {
    if partition.leader < 0 {
        Some("offline")
    } else if partition.isr.len() < partition.replicas.len() {
        Some("under-replicated")
    } else {
        None
    }
}

async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let cluster = admin.describe_brokers().await?;
    let topics = admin.list_topics(true).await?;
    let partitions_total: usize = topics.iter().map(|t| t.partitions.len()).sum();
    let mut troubled = Vec::new();
    for topic in &topics {
        for partition in &topic.partitions {
            if let Some(state) = partition_state(partition) {
                troubled.push((topic.name.as_str(), partition, state));
            }
        }
    }
    let count = |wanted: &str| troubled.iter().filter(|(_, _, s)| *s == wanted).count();
    let (under_replicated, offline) = (count("under-replicated"), count("offline"));
    let fenced = cluster.brokers.iter().filter(|b| b.fenced).count();
    // Brokers that do not serve DescribeQuorum (older Kafka) leave it out.
    let quorum = admin.describe_quorum().await.ok();

    if args.json {
        let partition_json = |state: &str| {
            troubled
                .iter()
                .filter(|(_, _, s)| *s == state)
                .map(|(topic, p, _)| {
                    json!({
                        "topic": topic,
                        "partition": p.partition,
                        "leader": p.leader,
                        "leader_epoch": p.leader_epoch,
                        "replicas": p.replicas,
                        "isr": p.isr,
                        "offline_replicas": p.offline_replicas,
                    })
                })
                .collect::<Vec<_>>()
        };
        return print_json(&json!({
            "cluster_id": cluster.cluster_id,
            "controller_id": cluster.controller_id,
            "brokers": cluster.brokers.iter().map(|b| json!({
                "id": b.node_id,
                "host": b.host,
                "port": b.port,
                "rack": b.rack,
                "fenced": b.fenced,
            })).collect::<Vec<_>>(),
            "fenced_brokers_listed": cluster.includes_fenced,
            "quorum": quorum.as_ref().map(quorum_json),
            "counts": {
                "brokers": cluster.brokers.len(),
                "fenced_brokers": fenced,
                "partitions": partitions_total,
                "under_replicated": under_replicated,
                "offline": offline,
            },
            "under_replicated": partition_json("under-replicated"),
            "offline": partition_json("offline"),
        }));
    }

    println!("Cluster id: {}", cluster.cluster_id);
    println!(
        "Controller: {}",
        if cluster.controller_id < 0 {
            "(unknown: no controller quorum?)".to_string()
        } else {
            cluster.controller_id.to_string()
        }
    );
    if let Some(quorum) = &quorum {
        let ids = |replicas: &[QuorumReplicaStatus]| {
            join_ids(&replicas.iter().map(|r| r.node_id).collect::<Vec<_>>())
        };
        println!(
            "Controller quorum: leader {} (epoch {}), voters {}, observers {}",
            quorum.leader_id,
            quorum.leader_epoch,
            ids(&quorum.voters),
            if quorum.observers.is_empty() {
                "-".to_string()
            } else {
                ids(&quorum.observers)
            }
        );
    }
    println!();
    let mut table = Table::new(&["ID", "ADDRESS", "RACK", "STATUS"]);
    for broker in &cluster.brokers {
        table.row(vec![
            broker.node_id.to_string(),
            broker.address(),
            broker.rack.clone().unwrap_or_else(|| "-".into()),
            if broker.fenced { "fenced" } else { "alive" }.to_string(),
        ]);
    }
    table.print();
    if !cluster.includes_fenced {
        println!("(this broker lists live brokers only; fenced ones are not shown)");
    }
    println!();
    println!(
        "Brokers: {} ({} alive, {} fenced). Partitions: {}, {} under-replicated, {} offline.",
        cluster.brokers.len(),
        cluster.brokers.len() - fenced,
        fenced,
        partitions_total,
        under_replicated,
        offline
    );
    if troubled.is_empty() {
        return Ok(());
    }
    println!();
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "STATE",
        "LEADER",
        "REPLICAS",
        "ISR",
        "OFFLINE-REPLICAS",
    ]);
    for (topic, partition, state) in &troubled {
        table.row(vec![
            topic.to_string(),
            partition.partition.to_string(),
            state.to_string(),
            if partition.leader < 0 {
                "none".to_string()
            } else {
                partition.leader.to_string()
            },
            join_ids(&partition.replicas),
            join_ids(&partition.isr),
            if partition.offline_replicas.is_empty() {
                "-".to_string()
            } else {
                join_ids(&partition.offline_replicas)
            },
        ]);
    }
    table.print();
    Ok(())
}

/// ELECTION_NOT_NEEDED: the preferred replica already leads.
const ELECTION_NOT_NEEDED: i16 = 84;

async fn elect_leaders(args: ElectLeadersArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let named = match &args.topic {
        None => None,
        Some(topic) => {
            let described = admin.describe_topic(topic).await?;
            let partitions = match args.partition {
                Some(partition) if described.partition(partition).is_none() => {
                    return Err(ClientError::UnknownPartition {
                        topic: topic.clone(),
                        partition,
                    }
                    .into())
                }
                Some(partition) => vec![partition],
                None => described.partitions.iter().map(|p| p.partition).collect(),
            };
            Some(vec![(topic.clone(), partitions)])
        }
    };
    let results = admin
        .elect_leaders(ElectionType::Preferred, named.as_deref())
        .await?;
    let failed: Vec<_> = results
        .iter()
        .filter(|r| r.error_code != 0 && r.error_code != ELECTION_NOT_NEEDED)
        .collect();

    if args.json {
        print_json(&json!({
            "results": results.iter().map(|r| json!({
                "topic": r.topic,
                "partition": r.partition,
                "error_code": r.error_code,
                "error": if r.error_code == 0 { None } else { Some(r.error_name()) },
                "message": r.error_message,
                "elected": r.error_code == 0,
            })).collect::<Vec<_>>(),
        }))?;
    } else if results.is_empty() {
        println!("Every partition is already led by its preferred replica; nothing to elect.");
    } else {
        let mut table = Table::new(&["TOPIC", "PARTITION", "RESULT", "DETAIL"]);
        for result in &results {
            let outcome = match result.error_code {
                0 => "elected".to_string(),
                ELECTION_NOT_NEEDED => "already preferred".to_string(),
                _ => result.error_name(),
            };
            table.row(vec![
                result.topic.clone(),
                result.partition.to_string(),
                outcome,
                result.error_message.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        table.print();
    }
    if !failed.is_empty() {
        let names: Vec<String> = failed
            .iter()
            .map(|r| format!("{}-{} ({})", r.topic, r.partition, r.error_name()))
            .collect();
        return Err(fail(format!(
            "{} partition(s) could not move to their preferred replica: {}. The preferred \
             replica must be alive and in the ISR: see `strom cluster status`, wait for it to \
             catch up, then run this again",
            failed.len(),
            names.join(", ")
        )));
    }
    Ok(())
}
