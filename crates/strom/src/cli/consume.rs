//! `strom consume TOPIC`: print records of assigned partitions (no consumer group).
//!
//! Without `--follow` the command stops at the log-end offsets captured when it started,
//! so `strom consume --from-beginning` prints what is there and exits.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use strom_client::{Consumer, ConsumerConfig, ConsumerRecord, SeekTo};

use super::output::bytes_json;
use super::timestamp::{format_timestamp_ms, parse_timestamp_ms};
use super::{fail, ConnectArgs};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("start").args(["from_beginning", "from_end", "offset", "timestamp"])))]
pub struct ConsumeArgs {
    pub topic: String,
    /// Start at the earliest offset.
    #[arg(long)]
    pub from_beginning: bool,
    /// Start at the log end: only new records (the default).
    #[arg(long)]
    pub from_end: bool,
    /// Start at this offset (in every consumed partition).
    #[arg(long, value_name = "OFFSET")]
    pub offset: Option<i64>,
    /// Start at the first record at or after this time: ms since the epoch or ISO 8601.
    #[arg(long, value_name = "MS_OR_ISO8601", value_parser = parse_timestamp_ms)]
    pub timestamp: Option<i64>,
    /// Consume only this partition (default: all).
    #[arg(long)]
    pub partition: Option<i32>,
    /// Stop after this many records.
    #[arg(long)]
    pub count: Option<u64>,
    /// Keep waiting for new records (default: stop at the end offsets seen at start).
    #[arg(long)]
    pub follow: bool,
    /// Print the key, then --key-separator, before the value.
    #[arg(long)]
    pub print_key: bool,
    /// Print headers as k:v,k:v (NO_HEADERS when none).
    #[arg(long)]
    pub print_headers: bool,
    /// Print Offset:N.
    #[arg(long)]
    pub print_offset: bool,
    /// Print the timestamp (type, ms and ISO 8601).
    #[arg(long)]
    pub print_timestamp: bool,
    /// Print Partition:N.
    #[arg(long)]
    pub print_partition: bool,
    /// Printed between key and value (with --print-key).
    #[arg(long, default_value = "\t", value_name = "SEP")]
    pub key_separator: String,
    /// One JSON object per record and line.
    #[arg(long)]
    pub json: bool,
    /// Longest wait of one fetch, in milliseconds.
    #[arg(long, default_value_t = 500, value_name = "MS")]
    pub max_wait_ms: u64,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

fn start_position(args: &ConsumeArgs) -> SeekTo {
    if args.from_beginning {
        SeekTo::Earliest
    } else if let Some(offset) = args.offset {
        SeekTo::Offset(offset)
    } else if let Some(timestamp) = args.timestamp {
        SeekTo::Timestamp(timestamp)
    } else {
        SeekTo::Latest
    }
}

pub fn record_json(record: &ConsumerRecord) -> serde_json::Value {
    let (key, key_base64) = bytes_json(record.key.as_deref());
    let (value, value_base64) = bytes_json(record.value.as_deref());
    let mut headers_base64 = false;
    let headers: Vec<_> = record
        .headers
        .iter()
        .map(|h| {
            let (k, kb) = bytes_json(Some(&h.key));
            let (v, vb) = bytes_json(h.value.as_deref());
            headers_base64 |= kb || vb;
            json!([k, v])
        })
        .collect();
    let mut object = json!({
        "topic": &*record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp_ms,
        "timestamp_type": if record.log_append_time { "LogAppendTime" } else { "CreateTime" },
        "key": key,
        "value": value,
        "headers": headers,
    });
    if headers_base64 {
        // Re-encode every header in base64 so one rule applies to the whole list.
        object["headers"] = json!(record
            .headers
            .iter()
            .map(|h| {
                use base64::Engine;
                let engine = &base64::engine::general_purpose::STANDARD;
                json!([
                    engine.encode(&h.key),
                    h.value.as_ref().map(|v| engine.encode(v))
                ])
            })
            .collect::<Vec<_>>());
        object["headers_encoding"] = json!("base64");
    }
    if key_base64 {
        object["key_encoding"] = json!("base64");
    }
    if value_base64 {
        object["value_encoding"] = json!("base64");
    }
    object
}

fn write_human(
    out: &mut impl Write,
    args: &ConsumeArgs,
    record: &ConsumerRecord,
) -> std::io::Result<()> {
    if args.print_partition {
        write!(out, "Partition:{}\t", record.partition)?;
    }
    if args.print_offset {
        write!(out, "Offset:{}\t", record.offset)?;
    }
    if args.print_timestamp {
        let kind = if record.log_append_time {
            "LogAppendTime"
        } else {
            "CreateTime"
        };
        write!(
            out,
            "{kind}:{} ({})\t",
            record.timestamp_ms,
            format_timestamp_ms(record.timestamp_ms)
        )?;
    }
    if args.print_headers {
        if record.headers.is_empty() {
            out.write_all(b"NO_HEADERS")?;
        }
        for (index, header) in record.headers.iter().enumerate() {
            if index > 0 {
                out.write_all(b",")?;
            }
            out.write_all(&header.key)?;
            out.write_all(b":")?;
            match &header.value {
                Some(value) => out.write_all(value)?,
                None => out.write_all(b"null")?,
            }
        }
        out.write_all(b"\t")?;
    }
    if args.print_key {
        match &record.key {
            Some(key) => out.write_all(key)?,
            None => out.write_all(b"null")?,
        }
        out.write_all(args.key_separator.as_bytes())?;
    }
    match &record.value {
        Some(value) => out.write_all(value)?,
        None => out.write_all(b"null")?,
    }
    out.write_all(b"\n")
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    if args.count == Some(0) {
        return Ok(());
    }
    let client = args.connect.connect().await?;
    let config = ConsumerConfig {
        max_wait: Duration::from_millis(args.max_wait_ms),
        ..Default::default()
    };
    let mut consumer = Consumer::new(client, config);
    match args.partition {
        Some(partition) => {
            let topic = consumer.client().topic_metadata(&args.topic, false).await?;
            if topic.partition(partition).is_none() {
                return Err(fail(format!(
                    "topic '{}' has no partition {partition} (it has {}): see `strom topic describe {}`",
                    args.topic,
                    topic.partitions.len(),
                    args.topic
                )));
            }
            consumer.assign(&[(args.topic.clone(), partition)]).await?;
        }
        None => {
            consumer.assign_topic(&args.topic).await?;
        }
    }
    consumer.seek_all(start_position(&args)).await?;
    // Where to stop when not following: the log end as it is now.
    let mut remaining: HashMap<(String, i32), i64> = if args.follow {
        HashMap::new()
    } else {
        consumer.end_offsets().await?
    };
    let done = |consumer: &Consumer, remaining: &mut HashMap<(String, i32), i64>| {
        remaining.retain(|(topic, partition), end| {
            consumer
                .position(topic, *partition)
                .is_none_or(|position| position < *end)
        });
        remaining.is_empty()
    };
    if !args.follow && done(&consumer, &mut remaining) {
        return Ok(());
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let started = Instant::now();
    loop {
        let records = consumer.poll().await?;
        for record in &records {
            if !args.follow {
                if let Some(end) = remaining.get(&(record.topic.to_string(), record.partition)) {
                    if record.offset >= *end {
                        continue;
                    }
                } else {
                    continue;
                }
            }
            if args.json {
                serde_json::to_writer(&mut out, &record_json(record))?;
                out.write_all(b"\n")?;
            } else {
                write_human(&mut out, &args, record)?;
            }
            printed += 1;
            if args.count.is_some_and(|count| printed >= count) {
                out.flush()?;
                return Ok(());
            }
        }
        out.flush()?;
        if !args.follow && done(&consumer, &mut remaining) {
            break;
        }
        tracing::trace!(
            printed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "polled"
        );
    }
    Ok(())
}
