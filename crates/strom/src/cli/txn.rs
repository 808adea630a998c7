//! `strom txn list|describe|describe-producers|find-hanging|abort`, like kafka-transactions.sh.
//!
//! `list` asks every broker's transaction coordinator; `describe` asks each transactional
//! id's coordinator. `find-hanging` looks for partitions whose open transaction no
//! coordinator will ever end (they hold back the last stable offset, so read_committed
//! consumers stop there), and `abort` ends one by writing an ABORT marker at the
//! partition's leader, with the producer's epochs as the leader reports them.

use std::time::{SystemTime, UNIX_EPOCH};

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{json, Value};
use strom_client::transactions::{TRANSACTIONAL_ID_NOT_FOUND, TRANSACTION_STATES};
use strom_client::{
    AbortSpec, Admin, ClientError, HangingTransaction, ListTransactionsFilter, PartitionProducer,
    TransactionDescription,
};

use super::output::{print_json, Table};
use super::timestamp::format_timestamp_ms;
use super::{fail, ConnectArgs};

#[derive(Debug, Args)]
pub struct TxnArgs {
    #[command(subcommand)]
    pub command: TxnCommand,
}

#[derive(Debug, Subcommand)]
pub enum TxnCommand {
    /// List transactional ids with their producer id and state (every coordinator).
    List(ListArgs),
    /// Show transactional ids: state, producer id and epoch, timeout, start, partitions.
    Describe(DescribeArgs),
    /// Producers of a topic's partitions with their epochs and open transactions.
    DescribeProducers(DescribeProducersArgs),
    /// Find open transactions no coordinator will end (they block read_committed consumers).
    FindHanging(FindHangingArgs),
    /// Abort a hanging transaction on one partition (writes an ABORT marker at its leader).
    Abort(AbortArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only transactions in this state: Empty, Ongoing, PrepareCommit, PrepareAbort,
    /// CompleteCommit, CompleteAbort, Dead, PrepareEpochFence (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "STATE", value_parser = parse_state)]
    pub state: Vec<String>,
    /// Only these producer ids (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    pub producer_id: Vec<i64>,
    /// Only transactions open for longer than this (needs ListTransactions v1, Kafka 3.8+).
    #[arg(long, value_name = "MS")]
    pub running_longer_than_ms: Option<i64>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    #[arg(required = true, value_name = "TRANSACTIONAL-ID")]
    pub transactional_ids: Vec<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DescribeProducersArgs {
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    /// Only this partition (repeatable); default: every partition of the topic.
    #[arg(long, value_name = "P")]
    pub partition: Vec<i32>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct FindHangingArgs {
    /// The largest transaction.timeout.ms any producer uses: an open transaction whose
    /// last write is older than this is checked with its coordinator.
    #[arg(long, default_value_t = 900_000, value_name = "MS")]
    pub max_transaction_timeout_ms: i64,
    /// Search only these topics (repeatable); default: every non-internal topic.
    #[arg(long, value_name = "TOPIC")]
    pub topic: Vec<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["producer_id", "start_offset"])))]
pub struct AbortArgs {
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    #[arg(long, value_name = "P")]
    pub partition: i32,
    /// The offset the open transaction starts at (as `find-hanging` shows): picks its
    /// producer and epochs from the partition leader.
    #[arg(long, value_name = "OFFSET", conflicts_with = "producer_id")]
    pub start_offset: Option<i64>,
    /// The producer whose open transaction to abort.
    #[arg(long, value_name = "ID")]
    pub producer_id: Option<i64>,
    /// With --producer-id: its epoch (default: as the partition leader reports it).
    #[arg(long, value_name = "EPOCH", requires = "producer_id")]
    pub producer_epoch: Option<i16>,
    /// With --producer-id: the coordinator epoch for the marker (default: the partition's
    /// last one as its leader reports it; -1 means 0).
    #[arg(
        long,
        value_name = "EPOCH",
        requires = "producer_id",
        allow_hyphen_values = true
    )]
    pub coordinator_epoch: Option<i32>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: TxnArgs) -> anyhow::Result<()> {
    match args.command {
        TxnCommand::List(args) => list(args).await,
        TxnCommand::Describe(args) => describe(args).await,
        TxnCommand::DescribeProducers(args) => describe_producers(args).await,
        TxnCommand::FindHanging(args) => find_hanging(args).await,
        TxnCommand::Abort(args) => abort(args).await,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A state name as the coordinator spells it, whatever the case and separators given.
fn parse_state(text: &str) -> Result<String, String> {
    let wanted: String = text
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    TRANSACTION_STATES
        .iter()
        .find(|s| s.to_ascii_lowercase() == wanted)
        .map(|s| s.to_string())
        .ok_or_else(|| {
            format!(
                "unknown transaction state '{text}': use one of {}",
                TRANSACTION_STATES.join(", ")
            )
        })
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let listings = admin
        .list_transactions(&ListTransactionsFilter {
            states: args.state.clone(),
            producer_ids: args.producer_id.clone(),
            running_longer_than_ms: args.running_longer_than_ms,
        })
        .await?;
    if args.json {
        return print_json(&json!(listings
            .iter()
            .map(|l| json!({
                "transactional_id": l.transactional_id,
                "coordinator": l.coordinator_id,
                "producer_id": l.producer_id,
                "state": l.state,
            }))
            .collect::<Vec<_>>()));
    }
    let mut table = Table::new(&["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"]);
    for l in listings {
        table.row(vec![
            l.transactional_id,
            l.coordinator_id.to_string(),
            l.producer_id.to_string(),
            l.state,
        ]);
    }
    table.print();
    Ok(())
}

fn partitions_text(description: &TransactionDescription) -> String {
    description
        .partitions
        .iter()
        .map(|(topic, partition)| format!("{topic}-{partition}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn description_json(d: &TransactionDescription, now_ms: i64) -> Value {
    json!({
        "transactional_id": d.transactional_id,
        "coordinator": d.coordinator_id,
        "state": d.state,
        "producer_id": d.producer_id,
        "producer_epoch": d.producer_epoch,
        "transaction_timeout_ms": d.transaction_timeout_ms,
        "transaction_start_time_ms": d.transaction_start_time_ms,
        "transaction_duration_ms": d.transaction_start_time_ms.map(|start| now_ms - start),
        "partitions": d.partitions.iter().map(|(t, p)| json!({"topic": t, "partition": p})).collect::<Vec<_>>(),
    })
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let results = admin.describe_transactions(&args.transactional_ids).await?;
    let now = now_ms();
    let mut described = Vec::new();
    let mut failed = Vec::new();
    for (id, result) in results {
        match result {
            Ok(description) => described.push(description),
            Err(error) if error.code() == Some(TRANSACTIONAL_ID_NOT_FOUND) => failed.push(format!(
                "transactional id '{id}' not found: no coordinator knows it (it never called \
                 init_transactions, or expired after transactional.id.expiration.ms); see \
                 `strom txn list`"
            )),
            Err(error) => failed.push(format!("{id}: {error}")),
        }
    }
    if args.json {
        print_json(&json!(described
            .iter()
            .map(|d| description_json(d, now))
            .collect::<Vec<_>>()))?;
    } else if !described.is_empty() {
        let mut table = Table::new(&[
            "TRANSACTIONAL-ID",
            "COORDINATOR",
            "PRODUCER-ID",
            "EPOCH",
            "STATE",
            "TIMEOUT-MS",
            "START-TIME",
            "DURATION-MS",
            "PARTITIONS",
        ]);
        let dash = || "-".to_string();
        for d in &described {
            table.row(vec![
                d.transactional_id.clone(),
                d.coordinator_id.to_string(),
                d.producer_id.to_string(),
                d.producer_epoch.to_string(),
                d.state.clone(),
                d.transaction_timeout_ms.to_string(),
                d.transaction_start_time_ms
                    .map_or_else(dash, format_timestamp_ms),
                d.transaction_start_time_ms
                    .map_or_else(dash, |start| (now - start).to_string()),
                Some(partitions_text(d))
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(dash),
            ]);
        }
        table.print();
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(fail(failed.join("; ")))
    }
}

async fn describe_producers(args: DescribeProducersArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let metadata = admin
        .describe_topic(&args.topic)
        .await
        .map_err(missing_topic)?;
    let mut wanted: Vec<i32> = metadata.partitions.iter().map(|p| p.partition).collect();
    if !args.partition.is_empty() {
        if let Some(&partition) = args
            .partition
            .iter()
            .find(|p| metadata.partition(**p).is_none())
        {
            return Err(ClientError::UnknownPartition {
                topic: args.topic.clone(),
                partition,
            }
            .into());
        }
        wanted.retain(|p| args.partition.contains(p));
    }
    let partitions: Vec<(String, i32)> = wanted
        .into_iter()
        .map(|p| (args.topic.clone(), p))
        .collect();
    let producers = admin.describe_partition_producers(&partitions).await?;
    if args.json {
        return print_json(&json!(producers
            .iter()
            .map(|p| json!({
                "topic": p.topic,
                "partition": p.partition,
                "producer_id": p.producer_id,
                "producer_epoch": p.producer_epoch,
                "coordinator_epoch": p.coordinator_epoch,
                "last_sequence": p.last_sequence,
                "last_timestamp_ms": p.last_timestamp_ms,
                "current_txn_start_offset": p.current_txn_start_offset,
            }))
            .collect::<Vec<_>>()));
    }
    let mut table = Table::new(&[
        "PARTITION",
        "PRODUCER-ID",
        "EPOCH",
        "COORDINATOR-EPOCH",
        "LAST-SEQUENCE",
        "LAST-TIMESTAMP",
        "TXN-START-OFFSET",
    ]);
    let dash = || "-".to_string();
    for p in producers {
        table.row(vec![
            p.partition.to_string(),
            p.producer_id.to_string(),
            p.producer_epoch.to_string(),
            p.coordinator_epoch.map_or_else(dash, |e| e.to_string()),
            p.last_sequence.to_string(),
            if p.last_timestamp_ms >= 0 {
                format_timestamp_ms(p.last_timestamp_ms)
            } else {
                dash()
            },
            p.current_txn_start_offset
                .map_or_else(dash, |o| o.to_string()),
        ]);
    }
    table.print();
    Ok(())
}

fn hanging_json(h: &HangingTransaction) -> Value {
    let p = &h.producer;
    json!({
        "topic": p.topic,
        "partition": p.partition,
        "producer_id": p.producer_id,
        "producer_epoch": p.producer_epoch,
        "coordinator_epoch": p.coordinator_epoch,
        "start_offset": p.current_txn_start_offset,
        "last_timestamp_ms": p.last_timestamp_ms,
        "open_for_ms": h.open_for_ms,
        "transactional_id": h.transactional_id,
    })
}

async fn find_hanging(args: FindHangingArgs) -> anyhow::Result<()> {
    if args.max_transaction_timeout_ms < 0 {
        return Err(fail(format!(
            "--max-transaction-timeout-ms must be 0 or more, got {}",
            args.max_transaction_timeout_ms
        )));
    }
    let admin = Admin::new(args.connect.connect().await?);
    let topics = (!args.topic.is_empty()).then_some(args.topic.as_slice());
    let hanging = admin
        .find_hanging_transactions(topics, args.max_transaction_timeout_ms, now_ms())
        .await
        .map_err(missing_topic)?;
    if args.json {
        return print_json(&json!(hanging.iter().map(hanging_json).collect::<Vec<_>>()));
    }
    if hanging.is_empty() {
        println!(
            "no hanging transactions (open transactions idle for more than {} ms checked)",
            args.max_transaction_timeout_ms
        );
        return Ok(());
    }
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "PRODUCER-ID",
        "EPOCH",
        "COORDINATOR-EPOCH",
        "START-OFFSET",
        "LAST-TIMESTAMP",
        "OPEN-MS",
        "TRANSACTIONAL-ID",
    ]);
    let dash = || "-".to_string();
    for h in &hanging {
        let p = &h.producer;
        table.row(vec![
            p.topic.clone(),
            p.partition.to_string(),
            p.producer_id.to_string(),
            p.producer_epoch.to_string(),
            p.coordinator_epoch.map_or_else(dash, |e| e.to_string()),
            p.current_txn_start_offset
                .map_or_else(dash, |o| o.to_string()),
            format_timestamp_ms(p.last_timestamp_ms),
            h.open_for_ms.to_string(),
            h.transactional_id.clone().unwrap_or_else(dash),
        ]);
    }
    table.print();
    eprintln!("abort one with `strom txn abort --topic TOPIC --partition P --start-offset OFFSET`");
    Ok(())
}

/// The producer of the open transaction to abort, as the partition's leader reports it.
async fn find_producer(
    admin: &Admin,
    args: &AbortArgs,
) -> anyhow::Result<Option<PartitionProducer>> {
    let producers = admin
        .describe_partition_producers(&[(args.topic.clone(), args.partition)])
        .await
        .map_err(missing_topic)?;
    let open: Vec<&PartitionProducer> = producers
        .iter()
        .filter(|p| p.current_txn_start_offset.is_some())
        .collect();
    let open_list = || {
        if open.is_empty() {
            "it has none".to_string()
        } else {
            open.iter()
                .map(|p| {
                    format!(
                        "producer {} at offset {}",
                        p.producer_id,
                        p.current_txn_start_offset.unwrap_or(-1)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let where_ = format!("{}-{}", args.topic, args.partition);
    if let Some(offset) = args.start_offset {
        return match open
            .iter()
            .find(|p| p.current_txn_start_offset == Some(offset))
        {
            Some(p) => Ok(Some((*p).clone())),
            None => Err(fail(format!(
                "no open transaction starts at offset {offset} on {where_} (open transactions \
                 there: {}); see `strom txn find-hanging --topic {}`",
                open_list(),
                args.topic
            ))),
        };
    }
    let producer_id = args.producer_id.expect("clap requires one of the two");
    Ok(producers.into_iter().find(|p| p.producer_id == producer_id))
}

async fn abort(args: AbortArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let spec = match (
        args.producer_id,
        args.producer_epoch,
        args.coordinator_epoch,
    ) {
        (Some(producer_id), Some(producer_epoch), Some(coordinator_epoch)) => AbortSpec {
            topic: args.topic.clone(),
            partition: args.partition,
            producer_id,
            producer_epoch,
            coordinator_epoch: coordinator_epoch.max(0),
        },
        _ => {
            let producer = find_producer(&admin, &args).await?.ok_or_else(|| {
                fail(format!(
                    "producer {} has no state on {}-{}: pass --producer-epoch and \
                     --coordinator-epoch, or see `strom txn find-hanging --topic {}`",
                    args.producer_id.unwrap_or(-1),
                    args.topic,
                    args.partition,
                    args.topic
                ))
            })?;
            let mut spec = AbortSpec::for_producer(&producer)?;
            if let Some(epoch) = args.producer_epoch {
                spec.producer_epoch = epoch;
            }
            if let Some(epoch) = args.coordinator_epoch {
                spec.coordinator_epoch = epoch.max(0);
            }
            spec
        }
    };
    if let Err(error) = admin.abort_transaction(&spec).await {
        return Err(match error {
            ClientError::UnknownTopic { .. } => missing_topic(error),
            other => abort_error(other),
        });
    }
    if args.json {
        return print_json(&json!({
            "topic": spec.topic,
            "partition": spec.partition,
            "producer_id": spec.producer_id,
            "producer_epoch": spec.producer_epoch,
            "coordinator_epoch": spec.coordinator_epoch,
            "aborted": true,
        }));
    }
    println!(
        "aborted the open transaction of producer {} (epoch {}, coordinator epoch {}) on {}-{}",
        spec.producer_id, spec.producer_epoch, spec.coordinator_epoch, spec.topic, spec.partition
    );
    Ok(())
}

/// A topic that does not exist is a typo here, not something to create.
fn missing_topic(error: ClientError) -> anyhow::Error {
    match error {
        ClientError::UnknownTopic { topic } => fail(format!(
            "topic '{topic}' does not exist: check the name with `strom topic list`"
        )),
        other => other.into(),
    }
}

/// The abort's broker errors with what to do about them.
fn abort_error(error: ClientError) -> anyhow::Error {
    let hint = match error.code() {
        // CLUSTER_AUTHORIZATION_FAILED
        Some(31) => " (writing markers needs ClusterAction on the cluster: run as a super user)",
        // INVALID_PRODUCER_EPOCH, PRODUCER_FENCED
        Some(47) | Some(90) => {
            " (the producer's epoch on the partition is newer: omit --producer-epoch to use \
             the one its leader reports)"
        }
        // TRANSACTION_COORDINATOR_FENCED
        Some(52) => {
            " (the partition saw a marker from a newer coordinator epoch: omit \
             --coordinator-epoch to use the one its leader reports)"
        }
        _ => "",
    };
    if hint.is_empty() {
        return error.into();
    }
    fail(format!("{error}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_state_in_any_case_when_parsed_should_use_the_wire_name() {
        assert_eq!(parse_state("ongoing"), Ok("Ongoing".to_string()));
        assert_eq!(
            parse_state("PREPARE_COMMIT"),
            Ok("PrepareCommit".to_string())
        );
        assert_eq!(
            parse_state("complete-abort"),
            Ok("CompleteAbort".to_string())
        );
        let error = parse_state("open").unwrap_err();
        assert!(
            error.contains("'open'") && error.contains("Ongoing"),
            "{error}"
        );
    }
}
