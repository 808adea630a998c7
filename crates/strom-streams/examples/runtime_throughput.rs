//! Records per second of a word count run by the runtime against a broker, with
//! at_least_once and exactly_once_v2. A benchmark, not a test: it writes `lines` input
//! records to a fresh topic, starts the app, and times from the app's first committed
//! offset to the one that covers every input record (so start-up and the first join are
//! not counted).
//!
//! cargo run --release -p strom-streams --example runtime_throughput -- 127.0.0.1:9092 [lines]

use std::time::{Duration, Instant};

use strom_client::{
    Admin, Client, ClientConfig, NewTopic, Producer, ProducerConfig, ProducerRecord,
};
use strom_streams::{
    ProcessingGuarantee, Serdes, StreamsApp, StreamsBuilder, StreamsConfig, Topology,
};

fn word_count(input: &str, output: &str) -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Serdes::option(Serdes::string()), Serdes::string())
        .flat_map_values(|line| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .group_by(|_, word| word.clone(), Serdes::string(), Serdes::string())
        .count()
        .to(output, Serdes::string(), Serdes::i64());
    builder.build().expect("word count topology")
}

async fn committed_total(client: &Client, group: &str, input: &str) -> i64 {
    match strom_client::groups::committed_offsets(client, group).await {
        Ok(offsets) => offsets
            .iter()
            .filter(|o| o.topic == input)
            .map(|o| o.offset)
            .sum(),
        Err(_) => 0,
    }
}

async fn run(
    client: &Client,
    bootstrap: &str,
    lines: usize,
    guarantee: ProcessingGuarantee,
    run: u32,
) -> f64 {
    let tag = format!("{guarantee:?}-{run}-{}", std::process::id()).to_lowercase();
    let (input, output, app_id) = (
        format!("in-{tag}"),
        format!("out-{tag}"),
        format!("wc-{tag}"),
    );
    let admin = Admin::new(client.clone());
    for name in [&input, &output] {
        let mut topic = NewTopic::new(name.as_str());
        topic.partitions = 2;
        admin
            .create_topic(topic, false)
            .await
            .expect("create topic");
    }
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .expect("producer");
    for i in 0..lines {
        let line = format!("w{} w{} w{}", i % 1000, i % 37, i % 5);
        producer
            .send(ProducerRecord::new(input.as_str(), line).with_key(i.to_string()))
            .await
            .expect("send");
    }
    producer.flush().await;
    let mut config = StreamsConfig::new(&app_id, bootstrap);
    config.processing_guarantee = guarantee;
    config.commit_interval = Duration::from_millis(100);
    let app = StreamsApp::start(word_count(&input, &output), config);
    let mut first: Option<(Instant, i64)> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let total = committed_total(client, &app_id, &input).await;
        let now = Instant::now();
        if total > 0 && first.is_none() {
            first = Some((now, total));
        }
        if total >= lines as i64 {
            let (start, at_start) = first.unwrap_or((now, 0));
            let seconds = now.duration_since(start).as_secs_f64().max(0.001);
            let _ = app.close().await;
            return (lines as i64 - at_start) as f64 / seconds;
        }
        assert!(Instant::now() < deadline, "not done within 10 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() {
    let bootstrap = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9092".to_string());
    let lines: usize = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let client = Client::connect(ClientConfig::new(&bootstrap))
        .await
        .expect("connect");
    for guarantee in [
        ProcessingGuarantee::AtLeastOnce,
        ProcessingGuarantee::ExactlyOnceV2,
    ] {
        let mut rates = Vec::new();
        for attempt in 0..3 {
            rates.push(run(&client, &bootstrap, lines, guarantee, attempt).await);
        }
        rates.sort_by(f64::total_cmp);
        println!("{guarantee:?}: {:.0} lines/s (median of 3 runs of {lines} lines, 3 words each; runs {rates:.0?})", rates[1]);
    }
}
