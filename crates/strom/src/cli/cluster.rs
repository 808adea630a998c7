//! `strom cluster describe`: cluster id, controller, brokers.

use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::admin::ConfigResource;
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
    }
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
