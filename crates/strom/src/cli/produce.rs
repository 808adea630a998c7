//! `strom produce TOPIC`: one record per input line.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::json;
use strom_client::{
    Acks, ClientError, Compression, Producer, ProducerConfig, ProducerRecord, RecordHeader,
};

use super::output::{print_json, Table};
use super::{fail, parse_key_value, ConnectArgs};

#[derive(Debug, Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// Read records from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Text before the first SEP on a line is the key, the rest the value.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header added to every record, e.g. `--header source=cli`. Repeatable; order and
    /// repeated keys are kept.
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    pub compression: Compression,
    /// 0 (no acknowledgement), 1 (leader), all (in-sync replicas).
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    pub acks: Acks,
    /// Write every record to this partition (default: by key, Java-compatible).
    #[arg(long)]
    pub partition: Option<i32>,
    /// How long a batch waits for more records.
    #[arg(long, default_value_t = 5, value_name = "MS")]
    pub linger_ms: u64,
    /// Largest batch per partition.
    #[arg(long, default_value_t = 16_384, value_name = "BYTES")]
    pub batch_size: usize,
    /// Use an idempotent producer (acks=all only).
    #[arg(long)]
    pub idempotent: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub fn parse_compression(text: &str) -> Result<Compression, String> {
    Compression::parse(text)
        .ok_or_else(|| format!("unknown codec '{text}': use none, gzip, snappy, lz4 or zstd"))
}

pub fn parse_acks(text: &str) -> Result<Acks, String> {
    Acks::parse(text).ok_or_else(|| format!("acks '{text}' is invalid: use 0, 1 or all"))
}

/// Lines read off the input, ahead of the producer.
const LINE_QUEUE_MAX: usize = 4096;
/// Deliveries awaited at once; beyond this the reader waits for acknowledgements.
const DELIVERIES_PENDING_MAX: usize = 100_000;

#[derive(Default)]
struct PartitionSummary {
    records: u64,
    first_offset: Option<i64>,
    last_offset: Option<i64>,
}

fn split_line(line: &[u8], separator: Option<&[u8]>) -> (Option<Bytes>, Bytes) {
    if let Some(separator) = separator {
        if let Some(at) = line
            .windows(separator.len())
            .position(|window| window == separator)
        {
            return (
                Some(Bytes::copy_from_slice(&line[..at])),
                Bytes::copy_from_slice(&line[at + separator.len()..]),
            );
        }
    }
    (None, Bytes::copy_from_slice(line))
}

fn spawn_reader(
    file: Option<PathBuf>,
) -> anyhow::Result<tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>> {
    let input: Box<dyn BufRead + Send> = match &file {
        Some(path) => Box::new(std::io::BufReader::new(std::fs::File::open(path).map_err(
            |error| fail(format!("cannot read --file {}: {error}", path.display())),
        )?)),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let (lines, receiver) = tokio::sync::mpsc::channel(LINE_QUEUE_MAX);
    std::thread::spawn(move || {
        for line in input.split(b'\n') {
            let line = line.map(|mut l| {
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                l
            });
            let failed = line.is_err();
            if lines.blocking_send(line).is_err() || failed {
                return;
            }
        }
    });
    Ok(receiver)
}

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    if args.key_separator.as_deref() == Some("") {
        return Err(fail("--key-separator must not be empty"));
    }
    let mut lines = spawn_reader(args.file.clone())?;
    let client = args.connect.connect().await?;
    let config = ProducerConfig {
        acks: args.acks,
        linger: Duration::from_millis(args.linger_ms),
        batch_size_bytes: args.batch_size.max(1),
        compression: args.compression,
        enable_idempotence: args.idempotent,
        ..Default::default()
    };
    let producer = Producer::new(client, config).await?;
    let headers: Vec<RecordHeader> = args
        .headers
        .iter()
        .map(|(k, v)| RecordHeader {
            key: Bytes::from(k.clone()),
            value: Some(Bytes::from(v.clone())),
        })
        .collect();
    let separator = args.key_separator.as_deref().map(str::as_bytes);
    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut summary: BTreeMap<i32, PartitionSummary> = BTreeMap::new();
    let mut records = 0u64;
    let mut bytes = 0u64;
    let mut failures = 0u64;
    let mut first_error: Option<ClientError> = None;
    let mut absorb = |result: strom_client::Result<strom_client::RecordMetadata>,
                      failures: &mut u64| match result {
        Ok(metadata) => {
            let entry = summary.entry(metadata.partition).or_default();
            entry.records += 1;
            if metadata.offset >= 0 {
                entry.first_offset = Some(
                    entry
                        .first_offset
                        .map_or(metadata.offset, |o| o.min(metadata.offset)),
                );
                entry.last_offset = Some(
                    entry
                        .last_offset
                        .map_or(metadata.offset, |o| o.max(metadata.offset)),
                );
            }
        }
        Err(error) => {
            *failures += 1;
            first_error.get_or_insert(error);
        }
    };
    while let Some(line) = lines.recv().await {
        let line = line.map_err(|error| fail(format!("cannot read input: {error}")))?;
        let (key, value) = split_line(&line, separator);
        bytes += (key.as_ref().map_or(0, |k| k.len()) + value.len()) as u64;
        let record = ProducerRecord {
            topic: args.topic.clone(),
            partition: args.partition,
            key,
            value: Some(value),
            headers: headers.clone(),
            timestamp_ms: None,
        };
        let delivery = match producer.send(record).await {
            Ok(delivery) => delivery,
            Err(error) => {
                producer.close().await;
                return Err(error.into());
            }
        };
        records += 1;
        pending.push(delivery);
        while pending.len() >= DELIVERIES_PENDING_MAX {
            if let Some(result) = pending.next().await {
                absorb(result, &mut failures);
            }
        }
        // Reap finished deliveries without waiting.
        while let Some(Some(result)) = futures::FutureExt::now_or_never(pending.next()) {
            absorb(result, &mut failures);
        }
    }
    producer.flush().await;
    while let Some(result) = pending.next().await {
        absorb(result, &mut failures);
    }
    producer.close().await;
    let elapsed = started.elapsed();
    if args.json {
        let partitions: Vec<_> = summary
            .iter()
            .map(|(partition, s)| {
                json!({
                    "partition": partition,
                    "records": s.records,
                    "first_offset": s.first_offset,
                    "last_offset": s.last_offset,
                })
            })
            .collect();
        print_json(&json!({
            "topic": args.topic,
            "records": records,
            "acknowledged": records - failures,
            "failed": failures,
            "bytes": bytes,
            "elapsed_ms": elapsed.as_millis() as u64,
            "acks": match args.acks { Acks::None => "0", Acks::Leader => "1", Acks::All => "all" },
            "compression": args.compression.name(),
            "partitions": partitions,
            "error": first_error.as_ref().map(|e| e.to_string()),
        }))?;
    } else {
        println!(
            "Produced {} records ({} bytes) to '{}' in {:.2} s{}",
            records - failures,
            bytes,
            args.topic,
            elapsed.as_secs_f64(),
            if args.acks == Acks::None {
                " (acks=0: offsets unknown)"
            } else {
                ""
            }
        );
        if !summary.is_empty() {
            let mut table = Table::new(&["PARTITION", "RECORDS", "FIRST-OFFSET", "LAST-OFFSET"]);
            let show = |o: Option<i64>| o.map_or("-".to_string(), |o| o.to_string());
            for (partition, s) in &summary {
                table.row(vec![
                    partition.to_string(),
                    s.records.to_string(),
                    show(s.first_offset),
                    show(s.last_offset),
                ]);
            }
            print!("{}", table.render());
        }
    }
    if let Some(error) = first_error {
        return Err(fail(format!(
            "{failures} of {records} records failed; first error: {}",
            super::describe_client_error(&error).0
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_separator_when_splitting_should_cut_at_first_occurrence_only() {
        let (key, value) = split_line(b"k1::v::x", Some(b"::"));
        assert_eq!(key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(&value[..], b"v::x");
        let (key, value) = split_line(b"no-sep", Some(b"::"));
        assert_eq!(key, None);
        assert_eq!(&value[..], b"no-sep");
        let (key, value) = split_line(b"a:b", None);
        assert_eq!(key, None);
        assert_eq!(&value[..], b"a:b");
    }
}
