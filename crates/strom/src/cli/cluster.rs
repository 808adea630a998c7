//! `strom cluster describe`: cluster id, controller, brokers.

use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::Admin;

use super::output::{print_json, Table};
use super::ConnectArgs;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show the cluster id, the controller and the brokers.
    Describe(DescribeArgs),
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::Describe(args) => describe(args).await,
    }
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let cluster = admin.describe_cluster().await?;
    if args.json {
        return print_json(&json!({
            "cluster_id": cluster.cluster_id,
            "controller_id": cluster.controller_id,
            "brokers": cluster.brokers.values().map(|b| json!({
                "id": b.node_id,
                "host": b.host,
                "port": b.port,
                "rack": b.rack,
            })).collect::<Vec<_>>(),
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
    Ok(())
}
