//! `strom bench produce|consume`: end-to-end throughput and latency, like Kafka's
//! producer/consumer perf tests. A progress line updates on stderr about once a second;
//! the final report (or `--json`) goes to stdout. With `--runs K` each run is reported
//! and the median of each metric is the headline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Subcommand};
use futures::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::{json, Value};
use strom_client::admin::NewTopic;
use strom_client::{
    Acks, Admin, ClientError, Compression, Consumer, ConsumerConfig, Producer, ProducerConfig,
    ProducerRecord, SeekTo,
};

use super::output::{print_json, Table};
use super::produce::{parse_acks, parse_compression};
use super::{fail, ConnectArgs};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Produce fixed-size records as fast as allowed; report throughput and ack latency.
    Produce(BenchProduceArgs),
    /// Consume a topic from the beginning; report throughput.
    Consume(BenchConsumeArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("amount").args(["count", "duration"]).required(true)))]
pub struct BenchProduceArgs {
    /// The topic to write to / read from.
    #[arg(long)]
    pub topic: String,
    /// Create the topic first if it does not exist.
    #[arg(long)]
    pub create: bool,
    /// Partitions of a topic created with --create.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Replication factor of a topic created with --create (default: the broker's).
    #[arg(long)]
    pub replication_factor: Option<i16>,
    /// Bytes of each record's value.
    #[arg(long, default_value_t = 100, value_name = "BYTES")]
    pub record_size: usize,
    /// Records per run.
    #[arg(long)]
    pub count: Option<u64>,
    /// Seconds per run.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// 0 (no acknowledgement), 1 (leader), all (in-sync replicas).
    #[arg(long, default_value = "1", value_parser = parse_acks)]
    pub acks: Acks,
    /// Records per second to aim for; -1 for as fast as possible.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true, value_name = "MSGS_PER_SEC")]
    pub throughput: i64,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    pub compression: Compression,
    /// How long a batch waits for more records.
    #[arg(long, default_value_t = 5, value_name = "MS")]
    pub linger_ms: u64,
    /// Largest batch per partition.
    #[arg(long, default_value_t = 65_536, value_name = "BYTES")]
    pub batch_size: usize,
    /// Use an idempotent producer (acks=all only).
    #[arg(long)]
    pub idempotent: bool,
    /// Repeat the run K times and report the median.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub runs: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct BenchConsumeArgs {
    /// The topic to write to / read from.
    #[arg(long)]
    pub topic: String,
    /// Records per run (default: everything up to the end offsets at start).
    #[arg(long)]
    pub count: Option<u64>,
    /// Seconds per run.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Bytes per fetch per partition.
    #[arg(long, default_value_t = 1_048_576, value_name = "BYTES")]
    pub fetch_size: i32,
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub runs: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Produce(args) => produce(args).await,
        BenchCommand::Consume(args) => consume(args).await,
    }
}

/// The result of one run.
#[derive(Debug, Clone, Default)]
struct RunReport {
    records: u64,
    failed: u64,
    bytes: u64,
    elapsed: Duration,
    latency_us: Option<Histogram<u64>>,
}

impl RunReport {
    fn records_per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn megabytes_per_second(&self) -> f64 {
        self.bytes as f64 / 1_048_576.0 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn latency_ms(&self, quantile: f64) -> Option<f64> {
        let histogram = self.latency_us.as_ref().filter(|h| !h.is_empty())?;
        Some(histogram.value_at_quantile(quantile) as f64 / 1000.0)
    }

    fn max_ms(&self) -> Option<f64> {
        let histogram = self.latency_us.as_ref().filter(|h| !h.is_empty())?;
        Some(histogram.max() as f64 / 1000.0)
    }

    fn metrics(&self) -> Vec<(&'static str, Option<f64>)> {
        vec![
            ("records", Some(self.records as f64)),
            ("failed", Some(self.failed as f64)),
            ("elapsed_s", Some(self.elapsed.as_secs_f64())),
            ("records_per_sec", Some(self.records_per_second())),
            ("mb_per_sec", Some(self.megabytes_per_second())),
            ("latency_p50_ms", self.latency_ms(0.5)),
            ("latency_p99_ms", self.latency_ms(0.99)),
            ("latency_p999_ms", self.latency_ms(0.999)),
            ("latency_max_ms", self.max_ms()),
        ]
    }

    fn json(&self) -> Value {
        let mut object = serde_json::Map::new();
        for (name, value) in self.metrics() {
            object.insert(name.to_string(), json!(value));
        }
        Value::Object(object)
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// Median of each metric over the runs.
fn median_json(runs: &[RunReport]) -> Value {
    let names: Vec<&str> = runs[0].metrics().iter().map(|(n, _)| *n).collect();
    let mut object = serde_json::Map::new();
    for (index, name) in names.iter().enumerate() {
        let mut values: Vec<f64> = runs.iter().filter_map(|r| r.metrics()[index].1).collect();
        let value = if values.is_empty() {
            Value::Null
        } else {
            json!(median(&mut values))
        };
        object.insert(name.to_string(), value);
    }
    Value::Object(object)
}

fn print_report(kind: &str, latency_label: &str, runs: &[RunReport]) {
    let fmt = |value: Option<f64>, digits: usize| {
        value.map_or("-".to_string(), |v| format!("{v:.digits$}"))
    };
    let mut table = Table::new(&[
        "RUN", "RECORDS", "MSGS/S", "MB/S", "P50-MS", "P99-MS", "P99.9-MS", "MAX-MS",
    ]);
    let row = |label: String, metrics: &Value| {
        let get = |name: &str| metrics.get(name).and_then(|v| v.as_f64());
        vec![
            label,
            fmt(get("records"), 0),
            fmt(get("records_per_sec"), 1),
            fmt(get("mb_per_sec"), 2),
            fmt(get("latency_p50_ms"), 2),
            fmt(get("latency_p99_ms"), 2),
            fmt(get("latency_p999_ms"), 2),
            fmt(get("latency_max_ms"), 2),
        ]
    };
    for (index, run) in runs.iter().enumerate() {
        table.row(row((index + 1).to_string(), &run.json()));
    }
    if runs.len() > 1 {
        table.row(row("median".into(), &median_json(runs)));
    }
    println!("bench {kind} ({latency_label}):");
    table.print();
    let failed: u64 = runs.iter().map(|r| r.failed).sum();
    if failed > 0 {
        println!("{failed} records failed");
    }
}

fn progress(
    label: &str,
    records: u64,
    bytes: u64,
    since: Instant,
    latency: Option<&Histogram<u64>>,
) {
    let seconds = since.elapsed().as_secs_f64().max(1e-9);
    let latency = latency
        .filter(|h| !h.is_empty())
        .map(|h| format!(", p99 {:.2} ms", h.value_at_quantile(0.99) as f64 / 1000.0))
        .unwrap_or_default();
    eprint!(
        "\r{label}: {records} records, {:.1} msgs/s, {:.2} MB/s{latency}   ",
        records as f64 / seconds,
        bytes as f64 / 1_048_576.0 / seconds
    );
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 10 min at 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static bounds are valid")
}

async fn produce(args: BenchProduceArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        return Err(fail("--runs must be at least 1"));
    }
    if args.record_size == 0 {
        return Err(fail("--record-size must be at least 1"));
    }
    let client = args.connect.connect().await?;
    if args.create {
        let admin = Admin::new(client.clone());
        let topic = NewTopic {
            name: args.topic.clone(),
            partitions: args.partitions,
            replication_factor: args.replication_factor.unwrap_or(-1),
            configs: Vec::new(),
        };
        match admin.create_topic(topic, false).await {
            Ok(_) | Err(ClientError::Broker { code: 36, .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    // Kafka's perf test sends one random payload over and over; so do we.
    let payload: Bytes = {
        let mut rng = rand::thread_rng();
        (0..args.record_size)
            .map(|_| rng.gen_range(b'A'..=b'Z'))
            .collect::<Vec<u8>>()
            .into()
    };
    let mut runs = Vec::new();
    for run in 0..args.runs {
        let config = ProducerConfig {
            acks: args.acks,
            linger: Duration::from_millis(args.linger_ms),
            batch_size_bytes: args.batch_size.max(1),
            compression: args.compression,
            enable_idempotence: args.idempotent,
            ..Default::default()
        };
        let producer = Arc::new(Producer::new(client.clone(), config).await?);
        let report = produce_run(&args, &producer, payload.clone(), run + 1).await?;
        producer.close().await;
        runs.push(report);
    }
    eprintln!();
    if args.json {
        return print_json(&json!({
            "mode": "produce",
            "topic": args.topic,
            "record_size": args.record_size,
            "acks": match args.acks { Acks::None => "0", Acks::Leader => "1", Acks::All => "all" },
            "compression": args.compression.name(),
            "runs": runs.iter().map(RunReport::json).collect::<Vec<_>>(),
            "median": median_json(&runs),
        }));
    }
    print_report("produce", "latency = send to acknowledgement", &runs);
    Ok(())
}

/// Deliveries awaited at once before `send` pauses; the producer's buffer bounds memory
/// too, this keeps the bookkeeping small.
const BENCH_PENDING_MAX: usize = 1_000_000;

async fn produce_run(
    args: &BenchProduceArgs,
    producer: &Arc<Producer>,
    payload: Bytes,
    run: u32,
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let deadline = args
        .duration
        .map(|s| started + Duration::from_secs_f64(s.max(0.0)));
    let limit = args.count.unwrap_or(u64::MAX);
    let mut histogram = new_histogram();
    let mut pending = FuturesUnordered::new();
    let mut sent = 0u64;
    let mut acknowledged = 0u64;
    let mut failed = 0u64;
    let mut first_error = None;
    let mut last_progress = Instant::now();
    let label = format!("run {run}");
    let mut absorb = |result: (Instant, strom_client::Result<strom_client::RecordMetadata>),
                      histogram: &mut Histogram<u64>| {
        match result.1 {
            Ok(_) => {
                acknowledged += 1;
                let micros = result.0.elapsed().as_micros().max(1) as u64;
                histogram.saturating_record(micros);
            }
            Err(error) => {
                failed += 1;
                first_error.get_or_insert(error);
            }
        }
    };
    while sent < limit && deadline.is_none_or(|d| Instant::now() < d) {
        if args.throughput > 0 {
            let due = Duration::from_secs_f64(sent as f64 / args.throughput as f64);
            let elapsed = started.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
        let record = ProducerRecord {
            topic: args.topic.clone(),
            value: Some(payload.clone()),
            ..Default::default()
        };
        let at = Instant::now();
        let delivery = producer.send(record).await?;
        pending.push(async move { (at, delivery.await) });
        sent += 1;
        while let Some(Some(result)) = futures::FutureExt::now_or_never(pending.next()) {
            absorb(result, &mut histogram);
        }
        while pending.len() >= BENCH_PENDING_MAX {
            if let Some(result) = pending.next().await {
                absorb(result, &mut histogram);
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            progress(
                &label,
                sent,
                sent * args.record_size as u64,
                started,
                Some(&histogram),
            );
        }
    }
    producer.flush().await;
    while let Some(result) = pending.next().await {
        absorb(result, &mut histogram);
    }
    let elapsed = started.elapsed();
    progress(
        &label,
        sent,
        sent * args.record_size as u64,
        started,
        Some(&histogram),
    );
    if acknowledged == 0 {
        if let Some(error) = first_error {
            return Err(error.into());
        }
    }
    Ok(RunReport {
        records: acknowledged,
        failed,
        bytes: acknowledged * args.record_size as u64,
        elapsed,
        latency_us: (args.acks != Acks::None).then_some(histogram),
    })
}

async fn consume(args: BenchConsumeArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        return Err(fail("--runs must be at least 1"));
    }
    let client = args.connect.connect().await?;
    let mut runs = Vec::new();
    for run in 0..args.runs {
        let config = ConsumerConfig {
            partition_max_bytes: args.fetch_size.max(1024),
            auto_offset_reset: Some(SeekTo::Earliest),
            ..Default::default()
        };
        let mut consumer = Consumer::new(client.clone(), config);
        consumer.assign_topic(&args.topic).await?;
        consumer.seek_all(SeekTo::Earliest).await?;
        let ends = consumer.end_offsets().await?;
        let available: i64 = ends
            .iter()
            .map(|(key, end)| end - consumer.position(&key.0, key.1).unwrap_or(0))
            .sum();
        if args.count.is_none() && args.duration.is_none() && available <= 0 {
            return Err(fail(format!(
                "topic '{}' is empty: fill it first, e.g. `strom bench produce --topic {} --count 100000`",
                args.topic, args.topic
            )));
        }
        let limit = args.count.unwrap_or(available.max(0) as u64);
        let started = Instant::now();
        let deadline = args
            .duration
            .map(|s| started + Duration::from_secs_f64(s.max(0.0)));
        let mut histogram = new_histogram();
        let mut records = 0u64;
        let mut bytes = 0u64;
        let mut last_progress = Instant::now();
        let mut last_record = Instant::now();
        let label = format!("run {}", run + 1);
        while records < limit && deadline.is_none_or(|d| Instant::now() < d) {
            let polled = consumer.poll_with_wait(Duration::from_millis(100)).await?;
            if polled.is_empty() {
                if last_record.elapsed() > Duration::from_secs(10) {
                    eprintln!("\nno records for 10 s; stopping at {records}");
                    break;
                }
                continue;
            }
            last_record = Instant::now();
            let now_ms = strom_client::producer::now_ms();
            for record in polled.iter().take((limit - records) as usize) {
                bytes += record.value.as_ref().map_or(0, |v| v.len()) as u64
                    + record.key.as_ref().map_or(0, |k| k.len()) as u64;
                let age_ms = (now_ms - record.timestamp_ms).max(0) as u64;
                histogram.saturating_record(age_ms.saturating_mul(1000).max(1));
                records += 1;
            }
            if last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                progress(&label, records, bytes, started, None);
            }
        }
        let elapsed = started.elapsed();
        progress(&label, records, bytes, started, None);
        runs.push(RunReport {
            records,
            failed: 0,
            bytes,
            elapsed,
            latency_us: Some(histogram),
        });
    }
    eprintln!();
    if args.json {
        return print_json(&json!({
            "mode": "consume",
            "topic": args.topic,
            "runs": runs.iter().map(RunReport::json).collect::<Vec<_>>(),
            "median": median_json(&runs),
        }));
    }
    print_report("consume", "latency = record age when consumed", &runs);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_runs_when_summarised_should_take_median_of_each_metric() {
        let run = |records: u64, seconds: f64| RunReport {
            records,
            failed: 0,
            bytes: records * 10,
            elapsed: Duration::from_secs_f64(seconds),
            latency_us: None,
        };
        let runs = vec![run(100, 1.0), run(300, 1.0), run(200, 1.0)];
        let median = median_json(&runs);
        assert_eq!(median["records"], json!(200.0));
        assert_eq!(median["records_per_sec"], json!(200.0));
        assert_eq!(median["latency_p99_ms"], Value::Null);
        assert_eq!(median_of(&[1.0, 4.0, 2.0, 3.0]), 2.5);
    }

    fn median_of(values: &[f64]) -> f64 {
        median(&mut values.to_vec())
    }
}
