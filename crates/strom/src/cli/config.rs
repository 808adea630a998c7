//! `strom config describe|alter` (kafka-configs), plus `delete-records`, `log-dirs` and
//! `producers` (kafka-delete-records, kafka-log-dirs, kafka-transactions
//! describe-producers): thin layers over `strom_client::Admin`.

use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::{Admin, ConfigOp, ConfigResource};

use super::output::{print_json, Table};
use super::{fail, parse_key_value, ConnectArgs};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show a topic's or a broker's configs with their sources.
    Describe(DescribeArgs),
    /// Change configs: --set, --delete, --append, --subtract (all applied together).
    Alter(AlterArgs),
    /// Move partitions' log start (delete records before an offset; -1 = high watermark).
    DeleteRecords(DeleteRecordsArgs),
    /// Size of every partition in a broker's log directory.
    LogDirs(LogDirsArgs),
    /// Idempotent producers known to a topic's partitions.
    Producers(ProducersArgs),
}

/// Which resource: exactly one of --topic, --broker and --broker-defaults.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ResourceArgs {
    /// The topic whose configs to show or change.
    #[arg(long)]
    pub topic: Option<String>,
    /// The broker (node id) whose configs to show or change (dynamic per-broker configs).
    #[arg(long)]
    pub broker: Option<i32>,
    /// The cluster-wide defaults of the dynamic broker configs (every broker without its
    /// own value).
    #[arg(long)]
    pub broker_defaults: bool,
}

impl ResourceArgs {
    fn resource(&self) -> ConfigResource<'_> {
        match (&self.topic, self.broker) {
            (Some(topic), _) => ConfigResource::Topic(topic),
            (None, Some(id)) => ConfigResource::Broker(id),
            (None, None) => ConfigResource::BrokerDefaults,
        }
    }

    fn describe(&self) -> String {
        match (&self.topic, self.broker) {
            (Some(topic), _) => format!("topic '{topic}'"),
            (None, Some(id)) => format!("broker {id}"),
            (None, None) => "the broker defaults".to_string(),
        }
    }
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub resource: ResourceArgs,
    /// Also list keys at their default value.
    #[arg(long)]
    pub all: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct AlterArgs {
    #[command(flatten)]
    pub resource: ResourceArgs,
    /// Set a key, e.g. `--set retention.ms=60000` (kafka-configs: `--add-config`).
    /// Repeatable.
    #[arg(long = "set", visible_alias = "add-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
    /// Remove a key (back to its default; kafka-configs: `--delete-config`). Repeatable.
    #[arg(long = "delete", visible_alias = "delete-config", value_name = "KEY")]
    pub delete: Vec<String>,
    /// Add items to a list config, e.g. `--append cleanup.policy=compact`.
    #[arg(long = "append", value_name = "KEY=ITEMS", value_parser = parse_key_value)]
    pub append: Vec<(String, String)>,
    /// Remove items from a list config.
    #[arg(long = "subtract", value_name = "KEY=ITEMS", value_parser = parse_key_value)]
    pub subtract: Vec<(String, String)>,
    /// Check the changes without applying them.
    #[arg(long)]
    pub validate_only: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DeleteRecordsArgs {
    /// The topic whose records to delete.
    #[arg(long)]
    pub topic: String,
    /// `PARTITION=OFFSET` (offset -1 = the high watermark). Repeatable.
    #[arg(long = "partition", value_name = "PARTITION=OFFSET", value_parser = parse_key_value, required = true)]
    pub partitions: Vec<(String, String)>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct LogDirsArgs {
    /// Broker id (default: every broker).
    #[arg(long)]
    pub broker: Option<i32>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct ProducersArgs {
    /// The topic whose partitions to ask.
    #[arg(long)]
    pub topic: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: ConfigArgs) -> anyhow::Result<()> {
    match args.command {
        ConfigCommand::Describe(args) => describe(args).await,
        ConfigCommand::Alter(args) => alter(args).await,
        ConfigCommand::DeleteRecords(args) => delete_records(args).await,
        ConfigCommand::LogDirs(args) => log_dirs(args).await,
        ConfigCommand::Producers(args) => producers(args).await,
    }
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let entries = admin.describe_configs(args.resource.resource()).await?;
    let shown: Vec<_> = entries
        .into_iter()
        .filter(|e| args.all || !e.is_default())
        .collect();
    if args.json {
        let configs: Vec<_> = shown
            .iter()
            .map(|e| {
                json!({
                    "name": e.name,
                    "value": if e.is_sensitive { None } else { e.value.clone() },
                    "source": e.source,
                    "read_only": e.read_only,
                    "sensitive": e.is_sensitive,
                })
            })
            .collect();
        return print_json(&json!({
            "topic": args.resource.topic,
            "broker": args.resource.broker,
            "broker_defaults": args.resource.broker_defaults,
            "configs": configs,
        }));
    }
    if shown.is_empty() {
        println!("No overrides (pass --all to list every key with its default).");
        return Ok(());
    }
    let mut table = Table::new(&["NAME", "VALUE", "SOURCE", "READ-ONLY"]);
    for entry in shown {
        let value = if entry.is_sensitive {
            "(sensitive)".to_string()
        } else {
            entry.value.unwrap_or_else(|| "(null)".into())
        };
        table.row(vec![
            entry.name,
            value,
            entry.source.to_string(),
            entry.read_only.to_string(),
        ]);
    }
    table.print();
    Ok(())
}

async fn alter(args: AlterArgs) -> anyhow::Result<()> {
    let mut operations: Vec<ConfigOp> = Vec::new();
    for (name, value) in &args.set {
        operations.push(ConfigOp::Set {
            name: name.clone(),
            value: value.clone(),
        });
    }
    for name in &args.delete {
        operations.push(ConfigOp::Delete { name: name.clone() });
    }
    for (name, value) in &args.append {
        operations.push(ConfigOp::Append {
            name: name.clone(),
            value: value.clone(),
        });
    }
    for (name, value) in &args.subtract {
        operations.push(ConfigOp::Subtract {
            name: name.clone(),
            value: value.clone(),
        });
    }
    if operations.is_empty() {
        return Err(fail(
            "nothing to change: pass --set KEY=VALUE, --delete KEY, --append KEY=ITEMS or --subtract KEY=ITEMS",
        ));
    }
    let admin = Admin::new(args.connect.connect().await?);
    if let Some(topic) = &args.resource.topic {
        // A missing topic fails with the usual message rather than a broker code.
        admin.describe_topic(topic).await?;
    }
    admin
        .alter_config_ops(args.resource.resource(), &operations, args.validate_only)
        .await?;
    let target = args.resource.describe();
    if args.json {
        return print_json(&json!({
            "resource": target,
            "operations": operations.len(),
            "validate_only": args.validate_only,
        }));
    }
    let verb = if args.validate_only {
        "Would update"
    } else {
        "Updated"
    };
    println!("{verb} {target}: {} change(s).", operations.len());
    Ok(())
}

async fn delete_records(args: DeleteRecordsArgs) -> anyhow::Result<()> {
    let mut offsets = Vec::new();
    for (partition, offset) in &args.partitions {
        let partition: i32 = partition.parse().map_err(|_| {
            fail(format!(
                "--partition {partition}={offset}: the partition is not a number"
            ))
        })?;
        let offset: i64 = offset
            .parse()
            .map_err(|_| fail(format!("--partition {partition}={offset}: the offset is not a number (-1 = high watermark)")))?;
        offsets.push((partition, offset));
    }
    let admin = Admin::new(args.connect.connect().await?);
    let results = admin.delete_records(&args.topic, &offsets).await?;
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if args.json {
        let rows: Vec<_> = results
            .iter()
            .map(|(partition, result)| match result {
                Ok(low) => json!({"partition": partition, "low_watermark": low}),
                Err(error) => json!({"partition": partition, "error": error.to_string()}),
            })
            .collect();
        print_json(&json!({"topic": args.topic, "partitions": rows}))?;
    } else {
        let mut table = Table::new(&["PARTITION", "LOW-WATERMARK", "ERROR"]);
        for (partition, result) in &results {
            match result {
                Ok(low) => table.row(vec![partition.to_string(), low.to_string(), String::new()]),
                Err(error) => table.row(vec![partition.to_string(), "-".into(), error.to_string()]),
            }
        }
        table.print();
    }
    if failed > 0 {
        return Err(fail(format!("{failed} partition(s) failed")));
    }
    Ok(())
}

async fn log_dirs(args: LogDirsArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let brokers: Vec<i32> = match args.broker {
        Some(id) => vec![id],
        None => admin
            .describe_cluster()
            .await?
            .brokers
            .keys()
            .copied()
            .collect(),
    };
    let mut rows = Vec::new();
    for broker in brokers {
        for dir in admin.describe_log_dirs(broker).await? {
            rows.push((broker, dir));
        }
    }
    if args.json {
        let value: Vec<_> = rows
            .iter()
            .map(|(broker, dir)| {
                json!({
                    "broker": broker,
                    "log_dir": dir.path,
                    "total_bytes": dir.total_bytes,
                    "usable_bytes": dir.usable_bytes,
                    "partitions": dir.partitions.iter().map(|((t, p), size)| json!({"topic": t, "partition": p, "size_bytes": size})).collect::<Vec<_>>(),
                })
            })
            .collect();
        return print_json(&json!(value));
    }
    let mut table = Table::new(&["BROKER", "LOG-DIR", "TOPIC", "PARTITION", "SIZE-BYTES"]);
    for (broker, dir) in &rows {
        for ((topic, partition), size) in &dir.partitions {
            table.row(vec![
                broker.to_string(),
                dir.path.clone(),
                topic.clone(),
                partition.to_string(),
                size.to_string(),
            ]);
        }
    }
    table.print();
    Ok(())
}

async fn producers(args: ProducersArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let producers = admin.describe_producers(&args.topic).await?;
    if args.json {
        let value: Vec<_> = producers
            .iter()
            .map(|p| {
                json!({
                    "partition": p.partition,
                    "producer_id": p.producer_id,
                    "producer_epoch": p.producer_epoch,
                    "last_sequence": p.last_sequence,
                    "last_timestamp_ms": p.last_timestamp_ms,
                })
            })
            .collect();
        return print_json(&json!({"topic": args.topic, "producers": value}));
    }
    let mut table = Table::new(&[
        "PARTITION",
        "PRODUCER-ID",
        "EPOCH",
        "LAST-SEQUENCE",
        "LAST-TIMESTAMP",
    ]);
    for p in producers {
        table.row(vec![
            p.partition.to_string(),
            p.producer_id.to_string(),
            p.producer_epoch.to_string(),
            p.last_sequence.to_string(),
            p.last_timestamp_ms.to_string(),
        ]);
    }
    table.print();
    Ok(())
}
