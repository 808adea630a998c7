//! `strom group list|describe|delete|reset-offsets`, like kafka-consumer-groups.
//!
//! `describe` joins three sources: the group (members and their assignments), its committed
//! offsets, and the partitions' log-end offsets, to show the lag per partition.
//! `reset-offsets` is a dry run unless `--execute` is given, and, like Kafka, only changes
//! the offsets of a group with no active members.

use std::collections::{BTreeMap, BTreeSet};

use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;
use strom_client::groups::{self, CommittedOffset, GroupDescription};
use strom_client::{Admin, Client, ClientError, OffsetSpec};

use super::output::{print_json, Table};
use super::timestamp::parse_timestamp_ms;
use super::{fail, ConnectArgs};

#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(subcommand)]
    pub command: GroupCommand,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups with their state.
    List(ListArgs),
    /// Show a group's members, assignments, committed offsets, log-end offsets and lag.
    Describe(DescribeArgs),
    /// Delete groups (they must have no active members) and their committed offsets.
    Delete(DeleteArgs),
    /// Move a group's committed offsets (dry run unless --execute).
    ResetOffsets(ResetArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    pub group: String,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[arg(required = true)]
    pub groups: Vec<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])))]
#[command(group(ArgGroup::new("scope").required(true).args(["topic", "all_topics"])))]
pub struct ResetArgs {
    pub group: String,
    /// TOPIC or TOPIC:P,P,... (repeatable).
    #[arg(long, value_name = "TOPIC[:PARTITIONS]")]
    pub topic: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    pub all_topics: bool,
    #[arg(long)]
    pub to_earliest: bool,
    #[arg(long)]
    pub to_latest: bool,
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// Milliseconds since the epoch or ISO 8601 (e.g. 2024-05-01T12:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub to_datetime: Option<String>,
    /// Move each committed offset by N (negative: back).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Commit the new offsets (without it, only show them).
    #[arg(long)]
    pub execute: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: GroupArgs) -> anyhow::Result<()> {
    match args.command {
        GroupCommand::List(args) => list(args).await,
        GroupCommand::Describe(args) => describe(args).await,
        GroupCommand::Delete(args) => delete(args).await,
        GroupCommand::ResetOffsets(args) => reset(args).await,
    }
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let client = args.connect.connect().await?;
    let groups = groups::list_groups(&client).await?;
    if args.json {
        return print_json(&json!(groups
            .iter()
            .map(
                |g| json!({"group": g.group_id, "state": g.state, "protocol_type": g.protocol_type})
            )
            .collect::<Vec<_>>()));
    }
    let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL TYPE"]);
    for group in groups {
        table.row(vec![group.group_id, group.state, group.protocol_type]);
    }
    table.print();
    Ok(())
}

/// One row of `describe`: a partition the group owns or has committed.
struct OffsetRow {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    log_end: Option<i64>,
    member: Option<String>,
    client_id: Option<String>,
}

fn not_found(group: &str) -> anyhow::Error {
    fail(format!(
        "group '{group}' does not exist (see `strom group list`)"
    ))
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let client = args.connect.connect().await?;
    let description = groups::describe_group(&client, &args.group).await?;
    let committed = groups::committed_offsets(&client, &args.group).await?;
    if description.state == "Dead" && committed.is_empty() {
        return Err(not_found(&args.group));
    }
    let rows = offset_rows(&client, &description, &committed).await?;
    if args.json {
        return print_json(&json!({
            "group": description.group_id,
            "state": description.state,
            "type": description.group_type,
            "protocol_type": description.protocol_type,
            "protocol": description.protocol,
            "members": description.members.iter().map(|m| json!({
                "member_id": m.member_id,
                "instance_id": m.instance_id,
                "client_id": m.client_id,
                "host": m.client_host,
                "assignment": m.assignment,
            })).collect::<Vec<_>>(),
            "offsets": rows.iter().map(|r| json!({
                "topic": r.topic,
                "partition": r.partition,
                "committed_offset": r.committed,
                "log_end_offset": r.log_end,
                "lag": lag(r),
                "member_id": r.member,
            })).collect::<Vec<_>>(),
        }));
    }
    println!(
        "group {}  state {}  type {}  protocol {} {}  members {}",
        description.group_id,
        description.state,
        description.group_type,
        description.protocol_type,
        description.protocol,
        description.members.len()
    );
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "MEMBER-ID",
        "CLIENT-ID",
    ]);
    let dash = || "-".to_string();
    for row in &rows {
        table.row(vec![
            row.topic.clone(),
            row.partition.to_string(),
            row.committed.map_or_else(dash, |o| o.to_string()),
            row.log_end.map_or_else(dash, |o| o.to_string()),
            lag(row).map_or_else(dash, |l| l.to_string()),
            row.member.clone().unwrap_or_else(dash),
            row.client_id.clone().unwrap_or_else(dash),
        ]);
    }
    table.print();
    Ok(())
}

fn lag(row: &OffsetRow) -> Option<i64> {
    Some((row.log_end? - row.committed?).max(0))
}

async fn offset_rows(
    client: &Client,
    description: &GroupDescription,
    committed: &[CommittedOffset],
) -> anyhow::Result<Vec<OffsetRow>> {
    let mut rows: BTreeMap<(String, i32), OffsetRow> = BTreeMap::new();
    for c in committed {
        rows.insert(
            (c.topic.clone(), c.partition),
            OffsetRow {
                topic: c.topic.clone(),
                partition: c.partition,
                committed: Some(c.offset),
                log_end: None,
                member: None,
                client_id: None,
            },
        );
    }
    for member in &description.members {
        for (topic, partitions) in &member.assignment {
            for partition in partitions {
                let row = rows
                    .entry((topic.clone(), *partition))
                    .or_insert_with(|| OffsetRow {
                        topic: topic.clone(),
                        partition: *partition,
                        committed: None,
                        log_end: None,
                        member: None,
                        client_id: None,
                    });
                row.member = Some(member.member_id.clone());
                row.client_id = Some(member.client_id.clone());
            }
        }
    }
    let admin = Admin::new(client.clone());
    let requests: Vec<(String, i32, OffsetSpec)> = rows
        .keys()
        .map(|(topic, partition)| (topic.clone(), *partition, OffsetSpec::Latest))
        .collect();
    if !requests.is_empty() {
        match admin.list_offsets(&requests).await {
            Ok(ends) => {
                for (key, row) in rows.iter_mut() {
                    row.log_end = ends.get(key).map(|o| o.offset);
                }
            }
            // A deleted topic's offsets are still shown, without a log end.
            Err(ClientError::UnknownTopic { .. } | ClientError::UnknownPartition { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(rows.into_values().collect())
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let client = args.connect.connect().await?;
    let results = groups::delete_groups(&client, &args.groups).await?;
    let mut failed = Vec::new();
    let mut report = Vec::new();
    for (group, result) in results {
        match result {
            Ok(()) => report.push(json!({"group": group, "deleted": true})),
            Err(error) => {
                let hint = match error.code() {
                    Some(68) => " (it has active members: stop its consumers first)",
                    Some(69) => " (see `strom group list`)",
                    _ => "",
                };
                failed.push(format!("{group}: {error}{hint}"));
                report.push(json!({"group": group, "deleted": false, "error": error.to_string()}));
            }
        }
    }
    if args.json {
        print_json(&json!(report))?;
    } else {
        for entry in &report {
            if entry["deleted"] == true {
                println!(
                    "deleted group {}",
                    entry["group"].as_str().unwrap_or_default()
                );
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(fail(failed.join("; ")))
    }
}

/// Parses `TOPIC` or `TOPIC:0,2,5`.
fn parse_topic_partitions(text: &str) -> Result<(String, Option<Vec<i32>>), String> {
    match text.split_once(':') {
        None => Ok((text.to_string(), None)),
        Some((topic, list)) => {
            let partitions = list
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse::<i32>()
                        .map_err(|_| format!("'{p}' in '{text}' is not a partition number"))
                })
                .collect::<Result<Vec<i32>, String>>()?;
            Ok((topic.to_string(), Some(partitions)))
        }
    }
}

/// The reset rule, resolved against the partition's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    Offset(i64),
    Timestamp(i64),
    ShiftBy(i64),
}

/// The new offset for one partition, clamped into [earliest, latest] like Kafka does.
pub fn new_offset(
    rule: ResetTo,
    current: Option<i64>,
    earliest: i64,
    latest: i64,
    by_time: Option<i64>,
) -> i64 {
    let wanted = match rule {
        ResetTo::Earliest => earliest,
        ResetTo::Latest => latest,
        ResetTo::Offset(offset) => offset,
        ResetTo::Timestamp(_) => by_time.unwrap_or(latest),
        ResetTo::ShiftBy(delta) => current.unwrap_or(latest).saturating_add(delta),
    };
    wanted.clamp(earliest, latest.max(earliest))
}

async fn reset(args: ResetArgs) -> anyhow::Result<()> {
    let rule = if args.to_earliest {
        ResetTo::Earliest
    } else if args.to_latest {
        ResetTo::Latest
    } else if let Some(offset) = args.to_offset {
        ResetTo::Offset(offset)
    } else if let Some(text) = &args.to_datetime {
        ResetTo::Timestamp(parse_timestamp_ms(text).map_err(fail)?)
    } else if let Some(delta) = args.shift_by {
        ResetTo::ShiftBy(delta)
    } else {
        unreachable!("clap requires one target");
    };
    let client = args.connect.connect().await?;
    let admin = Admin::new(client.clone());
    let description = groups::describe_group(&client, &args.group).await?;
    if args.execute && !matches!(description.state.as_str(), "Empty" | "Dead") {
        return Err(fail(format!(
            "group '{}' is {} with {} member(s): stop its consumers before resetting offsets \
             (a dry run without --execute is always allowed)",
            args.group,
            description.state,
            description.members.len()
        )));
    }
    let committed = groups::committed_offsets(&client, &args.group).await?;
    let current: BTreeMap<(String, i32), i64> = committed
        .iter()
        .map(|c| ((c.topic.clone(), c.partition), c.offset))
        .collect();

    let mut targets: BTreeSet<(String, i32)> = BTreeSet::new();
    if args.all_topics {
        targets.extend(current.keys().cloned());
    }
    for spec in &args.topic {
        let (topic, partitions) = parse_topic_partitions(spec).map_err(fail)?;
        match partitions {
            Some(partitions) => targets.extend(partitions.into_iter().map(|p| (topic.clone(), p))),
            None => {
                let metadata = admin.describe_topic(&topic).await?;
                targets.extend(
                    metadata
                        .partitions
                        .iter()
                        .map(|p| (topic.clone(), p.partition)),
                );
            }
        }
    }
    if targets.is_empty() {
        return Err(fail(format!(
            "nothing to reset: group '{}' has no committed offsets (name topics with --topic)",
            args.group
        )));
    }
    let keys: Vec<(String, i32)> = targets.into_iter().collect();
    let lookup = |spec: OffsetSpec| -> Vec<(String, i32, OffsetSpec)> {
        keys.iter().map(|(t, p)| (t.clone(), *p, spec)).collect()
    };
    let earliest = admin.list_offsets(&lookup(OffsetSpec::Earliest)).await?;
    let latest = admin.list_offsets(&lookup(OffsetSpec::Latest)).await?;
    let by_time = match rule {
        ResetTo::Timestamp(ms) => Some(
            admin
                .list_offsets(&lookup(OffsetSpec::Timestamp(ms)))
                .await?,
        ),
        _ => None,
    };
    let mut plan: Vec<(String, i32, Option<i64>, i64)> = Vec::new();
    for key in &keys {
        let low = earliest.get(key).map(|o| o.offset).unwrap_or(0);
        let high = latest.get(key).map(|o| o.offset).unwrap_or(low);
        let found = by_time
            .as_ref()
            .and_then(|m| m.get(key))
            .map(|o| o.offset)
            .filter(|o| *o >= 0);
        let old = current.get(key).copied();
        plan.push((
            key.0.clone(),
            key.1,
            old,
            new_offset(rule, old, low, high, found),
        ));
    }
    if args.execute {
        let commits: Vec<(String, i32, i64)> = plan
            .iter()
            .map(|(t, p, _, n)| (t.clone(), *p, *n))
            .collect();
        let results = groups::commit_offsets(&client, &args.group, &commits).await?;
        let errors: Vec<String> = results
            .into_iter()
            .filter_map(|(t, p, r)| r.err().map(|e| format!("{t}-{p}: {e}")))
            .collect();
        if !errors.is_empty() {
            return Err(fail(errors.join("; ")));
        }
    }
    if args.json {
        return print_json(&json!({
            "group": args.group,
            "executed": args.execute,
            "offsets": plan.iter().map(|(t, p, old, new)| json!({
                "topic": t, "partition": p, "current_offset": old, "new_offset": new,
            })).collect::<Vec<_>>(),
        }));
    }
    let mut table = Table::new(&["TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"]);
    for (topic, partition, old, new) in &plan {
        table.row(vec![
            topic.clone(),
            partition.to_string(),
            old.map_or_else(|| "-".to_string(), |o| o.to_string()),
            new.to_string(),
        ]);
    }
    table.print();
    if !args.execute {
        eprintln!("dry run: nothing changed; add --execute to commit these offsets");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_reset_rules_when_resolved_should_clamp_into_the_log() {
        assert_eq!(new_offset(ResetTo::Earliest, Some(7), 2, 10, None), 2);
        assert_eq!(new_offset(ResetTo::Latest, Some(7), 2, 10, None), 10);
        assert_eq!(new_offset(ResetTo::Offset(50), None, 2, 10, None), 10);
        assert_eq!(new_offset(ResetTo::Offset(0), None, 2, 10, None), 2);
        assert_eq!(new_offset(ResetTo::ShiftBy(-3), Some(7), 2, 10, None), 4);
        assert_eq!(new_offset(ResetTo::ShiftBy(-30), Some(7), 2, 10, None), 2);
        assert_eq!(new_offset(ResetTo::ShiftBy(1), None, 2, 10, None), 10);
        assert_eq!(new_offset(ResetTo::Timestamp(5), None, 2, 10, Some(6)), 6);
        assert_eq!(new_offset(ResetTo::Timestamp(5), None, 2, 10, None), 10);
    }

    #[test]
    fn given_topic_specs_when_parsed_should_split_partitions() {
        assert_eq!(parse_topic_partitions("t"), Ok(("t".into(), None)));
        assert_eq!(
            parse_topic_partitions("t:0, 2"),
            Ok(("t".into(), Some(vec![0, 2])))
        );
        assert!(parse_topic_partitions("t:x").is_err());
    }
}
