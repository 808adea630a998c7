//! `strom topic create|list|describe|delete|alter-config|reassign|reassignments`.

use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::admin::{AlterConfigOp, ConfigResource, NewTopic};
use strom_client::{Admin, ClientError, OffsetSpec};

use super::output::{join_ids, print_json, Table};
use super::{fail, parse_key_value, ConnectArgs};

#[derive(Debug, Args)]
pub struct TopicArgs {
    #[command(subcommand)]
    pub command: TopicCommand,
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create(CreateArgs),
    /// List topics.
    List(ListArgs),
    /// Show a topic's partitions (leader, replicas, ISR, offsets) and configs.
    Describe(DescribeArgs),
    /// Delete a topic and all its data.
    Delete(DeleteArgs),
    /// Set or remove per-topic config keys.
    AlterConfig(AlterConfigArgs),
    /// Move partitions to new replicas (or cancel a move); the move finishes in the
    /// background once the new replicas have caught up.
    Reassign(super::topic_reassign::ReassignArgs),
    /// List the partition moves in progress.
    Reassignments(super::topic_reassign::ReassignmentsArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub name: String,
    /// Partition count (default: the broker's num.partitions).
    #[arg(long)]
    pub partitions: Option<i32>,
    /// Replicas per partition (default: the broker's default.replication.factor).
    #[arg(long)]
    pub replication_factor: Option<i16>,
    /// A topic config, e.g. `--config retention.ms=60000`. Repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub configs: Vec<(String, String)>,
    /// Succeed if the topic already exists.
    #[arg(long)]
    pub if_not_exists: bool,
    /// Ask the broker to check the request without creating anything.
    #[arg(long)]
    pub validate_only: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Include internal topics (__consumer_offsets, ...).
    #[arg(long)]
    pub internal: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    pub name: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub name: String,
    /// Succeed if the topic does not exist.
    #[arg(long)]
    pub if_exists: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct AlterConfigArgs {
    pub name: String,
    /// Set a key, e.g. `--set retention.ms=60000`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
    /// Remove a key (back to the default). Repeatable.
    #[arg(long = "delete", value_name = "KEY")]
    pub delete: Vec<String>,
    #[arg(long)]
    pub validate_only: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: TopicArgs) -> anyhow::Result<()> {
    match args.command {
        TopicCommand::Create(args) => create(args).await,
        TopicCommand::List(args) => list(args).await,
        TopicCommand::Describe(args) => describe(args).await,
        TopicCommand::Delete(args) => delete(args).await,
        TopicCommand::AlterConfig(args) => alter_config(args).await,
        TopicCommand::Reassign(args) => super::topic_reassign::reassign(args).await,
        TopicCommand::Reassignments(args) => super::topic_reassign::reassignments(args).await,
    }
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    if let Some(partitions) = args.partitions {
        if partitions < 1 {
            return Err(fail(format!(
                "--partitions {partitions} is invalid: a topic needs at least 1 partition"
            )));
        }
    }
    if let Some(factor) = args.replication_factor {
        if factor < 1 {
            return Err(fail(format!(
                "--replication-factor {factor} is invalid: use 1 or more"
            )));
        }
    }
    let admin = Admin::new(args.connect.connect().await?);
    let topic = NewTopic {
        name: args.name.clone(),
        partitions: args.partitions.unwrap_or(-1),
        replication_factor: args.replication_factor.unwrap_or(-1),
        configs: args.configs.clone(),
    };
    let (created, existed) = match admin.create_topic(topic, args.validate_only).await {
        Ok(created) => (Some(created), false),
        Err(ClientError::Broker { code: 36, .. }) if args.if_not_exists => (None, true),
        Err(error) => return Err(error.into()),
    };
    if args.json {
        let mut value = json!({
            "topic": args.name,
            "created": created.is_some() && !args.validate_only,
            "already_existed": existed,
            "validate_only": args.validate_only,
        });
        if let Some(created) = &created {
            value["partitions"] = json!(created.partitions);
            value["replication_factor"] = json!(created.replication_factor);
            if !created.topic_id.is_nil() {
                value["topic_id"] = json!(created.topic_id.to_string());
            }
        }
        return print_json(&value);
    }
    match created {
        None => println!("Topic '{}' already exists.", args.name),
        Some(created) => {
            let shape = if created.partitions > 0 {
                format!(
                    " ({} partitions, replication factor {})",
                    created.partitions, created.replication_factor
                )
            } else {
                String::new()
            };
            if args.validate_only {
                println!("Topic '{}' would be created{shape}.", args.name);
            } else {
                println!("Created topic '{}'{shape}.", args.name);
            }
        }
    }
    Ok(())
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let topics = admin.list_topics(args.internal).await?;
    if args.json {
        let value: Vec<_> = topics
            .iter()
            .map(|t| {
                json!({
                    "topic": t.name,
                    "topic_id": (!t.topic_id.is_nil()).then(|| t.topic_id.to_string()),
                    "partitions": t.partitions.len(),
                    "replication_factor": t.partitions.first().map_or(0, |p| p.replicas.len()),
                    "internal": t.is_internal,
                })
            })
            .collect();
        return print_json(&json!(value));
    }
    let mut table = Table::new(&["TOPIC", "PARTITIONS", "REPLICATION"]);
    for topic in &topics {
        table.row(vec![
            topic.name.clone(),
            topic.partitions.len().to_string(),
            topic
                .partitions
                .first()
                .map_or(0, |p| p.replicas.len())
                .to_string(),
        ]);
    }
    table.print();
    Ok(())
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let topic = admin.describe_topic(&args.name).await?;
    let mut requests = Vec::new();
    for partition in &topic.partitions {
        for spec in [OffsetSpec::Earliest, OffsetSpec::Latest] {
            requests.push((topic.name.clone(), partition.partition, spec));
        }
    }
    let (earliest, latest): (Vec<_>, Vec<_>) = requests
        .into_iter()
        .partition(|r| r.2 == OffsetSpec::Earliest);
    let earliest = admin.list_offsets(&earliest).await?;
    let latest = admin.list_offsets(&latest).await?;
    let offset = |map: &std::collections::HashMap<(String, i32), strom_client::ListedOffset>,
                  partition: i32| {
        map.get(&(topic.name.clone(), partition))
            .map_or(-1, |l| l.offset)
    };
    let configs = admin
        .describe_configs(ConfigResource::Topic(&args.name))
        .await;
    if args.json {
        let partitions: Vec<_> = topic
            .partitions
            .iter()
            .map(|p| {
                json!({
                    "partition": p.partition,
                    "leader": p.leader,
                    "leader_epoch": p.leader_epoch,
                    "replicas": p.replicas,
                    "isr": p.isr,
                    "offline_replicas": p.offline_replicas,
                    "log_start_offset": offset(&earliest, p.partition),
                    "log_end_offset": offset(&latest, p.partition),
                })
            })
            .collect();
        let mut value = json!({
            "topic": topic.name,
            "topic_id": (!topic.topic_id.is_nil()).then(|| topic.topic_id.to_string()),
            "internal": topic.is_internal,
            "partitions": partitions,
        });
        match &configs {
            Ok(entries) => {
                value["configs"] = json!(entries
                    .iter()
                    .map(|c| json!({
                        "name": c.name,
                        "value": if c.is_sensitive { None } else { c.value.clone() },
                        "source": c.source,
                        "read_only": c.read_only,
                        "sensitive": c.is_sensitive,
                    }))
                    .collect::<Vec<_>>());
            }
            Err(error) => value["configs_error"] = json!(error.to_string()),
        }
        return print_json(&value);
    }
    println!("Topic:       {}", topic.name);
    if !topic.topic_id.is_nil() {
        println!("TopicId:     {}", topic.topic_id);
    }
    println!("Partitions:  {}", topic.partitions.len());
    println!(
        "Replication: {}",
        topic.partitions.first().map_or(0, |p| p.replicas.len())
    );
    println!();
    let mut table = Table::new(&[
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "LOG-START",
        "LOG-END",
    ]);
    for p in &topic.partitions {
        table.row(vec![
            p.partition.to_string(),
            if p.leader < 0 {
                "none".into()
            } else {
                p.leader.to_string()
            },
            join_ids(&p.replicas),
            join_ids(&p.isr),
            offset(&earliest, p.partition).to_string(),
            offset(&latest, p.partition).to_string(),
        ]);
    }
    table.print();
    println!();
    match configs {
        Ok(entries) => {
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
        Err(error) => eprintln!("warning: configs unavailable: {error}"),
    }
    Ok(())
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let deleted = match admin.delete_topic(&args.name).await {
        Ok(()) => true,
        Err(ClientError::Broker { code: 3, .. }) if args.if_exists => false,
        Err(ClientError::Broker { code: 3, .. }) => {
            return Err(ClientError::UnknownTopic { topic: args.name }.into())
        }
        Err(error) => return Err(error.into()),
    };
    if args.json {
        return print_json(&json!({ "topic": args.name, "deleted": deleted }));
    }
    if deleted {
        println!("Deleted topic '{}'.", args.name);
    } else {
        println!("Topic '{}' does not exist.", args.name);
    }
    Ok(())
}

async fn alter_config(args: AlterConfigArgs) -> anyhow::Result<()> {
    if args.set.is_empty() && args.delete.is_empty() {
        return Err(fail(
            "nothing to change: pass --set KEY=VALUE and/or --delete KEY",
        ));
    }
    let admin = Admin::new(args.connect.connect().await?);
    // Fail on a missing topic with the usual message rather than a broker code.
    admin.describe_topic(&args.name).await?;
    let mut operations: Vec<AlterConfigOp> = args
        .set
        .iter()
        .map(|(name, value)| AlterConfigOp::Set {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    operations.extend(
        args.delete
            .iter()
            .map(|name| AlterConfigOp::Delete { name: name.clone() }),
    );
    admin
        .incremental_alter_configs(
            ConfigResource::Topic(&args.name),
            &operations,
            args.validate_only,
        )
        .await?;
    if args.json {
        return print_json(&json!({
            "topic": args.name,
            "set": args.set.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "deleted": args.delete,
            "validate_only": args.validate_only,
        }));
    }
    let verb = if args.validate_only {
        "Would update"
    } else {
        "Updated"
    };
    println!(
        "{verb} topic '{}': {} set, {} removed.",
        args.name,
        args.set.len(),
        args.delete.len()
    );
    Ok(())
}
