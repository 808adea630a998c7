//! `strom topic reassign` and `strom topic reassignments`: move partitions to new replica
//! sets (KIP-455) and list the moves in progress.

use clap::Args;
use serde_json::json;
use strom_client::{Admin, ClientError, PartitionMove};

use super::output::{join_ids, print_json, Table};
use super::{fail, ConnectArgs};

#[derive(Debug, Args)]
pub struct ReassignArgs {
    pub topic: String,
    /// Only this partition (default: every partition of the topic).
    #[arg(long)]
    pub partition: Option<i32>,
    /// The new replicas, by broker id, the preferred leader first: `--replicas 2,3`.
    #[arg(
        long,
        value_delimiter = ',',
        required_unless_present = "cancel",
        conflicts_with = "cancel"
    )]
    pub replicas: Vec<i32>,
    /// Cancel the move in progress: the partition goes back to its original replicas.
    #[arg(long)]
    pub cancel: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct ReassignmentsArgs {
    /// Only this topic's partitions (default: every move in progress).
    #[arg(long)]
    pub topic: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn reassign(args: ReassignArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let described = admin.describe_topic(&args.topic).await?;
    let partitions: Vec<i32> = match args.partition {
        Some(partition) if described.partition(partition).is_none() => {
            return Err(ClientError::UnknownPartition {
                topic: args.topic.clone(),
                partition,
            }
            .into())
        }
        Some(partition) => vec![partition],
        None => described.partitions.iter().map(|p| p.partition).collect(),
    };
    let target = (!args.cancel).then(|| args.replicas.clone());
    let moves: Vec<PartitionMove> = partitions
        .iter()
        .map(|partition| PartitionMove {
            topic: args.topic.clone(),
            partition: *partition,
            replicas: target.clone(),
        })
        .collect();
    let results = admin.alter_partition_reassignments(&moves).await?;
    let failed: Vec<_> = results.iter().filter(|r| r.error_code != 0).collect();
    let done = if args.cancel { "cancelled" } else { "started" };
    if args.json {
        print_json(&json!({
            "results": results.iter().map(|r| json!({
                "topic": r.topic,
                "partition": r.partition,
                "replicas": target,
                "error_code": r.error_code,
                "error": if r.error_code == 0 { None } else { Some(r.error_name()) },
                "message": r.error_message,
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        let mut table = Table::new(&["TOPIC", "PARTITION", "RESULT", "DETAIL"]);
        for result in &results {
            table.row(vec![
                result.topic.clone(),
                result.partition.to_string(),
                match result.error_code {
                    0 => done.to_string(),
                    _ => result.error_name(),
                },
                result.error_message.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        table.print();
        if failed.len() < results.len() && !args.cancel {
            println!(
                "The new replicas catch up in the background; `strom topic reassignments` \
                 shows the moves still in progress."
            );
        }
    }
    if !failed.is_empty() {
        let names: Vec<String> = failed
            .iter()
            .map(|r| format!("{}-{} ({})", r.topic, r.partition, r.error_name()))
            .collect();
        return Err(fail(format!(
            "{} partition(s) could not be {done}: {}. Replicas must be distinct ids of \
             registered brokers (see `strom cluster describe`)",
            failed.len(),
            names.join(", ")
        )));
    }
    Ok(())
}

pub async fn reassignments(args: ReassignmentsArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let only = match &args.topic {
        None => None,
        Some(topic) => {
            let described = admin.describe_topic(topic).await?;
            let partitions = described.partitions.iter().map(|p| p.partition).collect();
            Some(vec![(topic.clone(), partitions)])
        }
    };
    let ongoing = admin.list_partition_reassignments(only.as_deref()).await?;
    if args.json {
        print_json(&json!({
            "reassignments": ongoing.iter().map(|r| json!({
                "topic": r.topic,
                "partition": r.partition,
                "replicas": r.replicas,
                "adding": r.adding,
                "removing": r.removing,
            })).collect::<Vec<_>>(),
        }))?;
    } else if ongoing.is_empty() {
        println!("No partition reassignments in progress.");
    } else {
        let mut table = Table::new(&["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"]);
        for moving in &ongoing {
            table.row(vec![
                moving.topic.clone(),
                moving.partition.to_string(),
                join_ids(&moving.replicas),
                join_ids(&moving.adding),
                join_ids(&moving.removing),
            ]);
        }
        table.print();
    }
    Ok(())
}
