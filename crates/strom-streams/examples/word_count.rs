//! Word count, exactly once: lines from `text-lines` (any key), counts per word to
//! `word-counts` (string keys, 8-byte big-endian counts, as Kafka's LongSerde).
//!
//! cargo run -p strom-streams --example word_count -- 127.0.0.1:9092
//! (create `text-lines` and `word-counts` first, with equal partition counts.)

use strom_streams::{
    ProcessingGuarantee, Serdes, StreamsApp, StreamsBuilder, StreamsConfig, Topology,
};

fn topology() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(
            "text-lines",
            Serdes::option(Serdes::string()),
            Serdes::string(),
        )
        .flat_map_values(|line| {
            line.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .group_by(|_, word| word.clone(), Serdes::string(), Serdes::string())
        .named("word-counts-store")
        .count()
        .to("word-counts", Serdes::string(), Serdes::i64());
    match builder.build() {
        Ok(topology) => topology,
        Err(error) => panic!("word count topology: {error}"),
    }
}

#[tokio::main]
async fn main() {
    let bootstrap = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9092".to_string());
    let mut config = StreamsConfig::new("word-count", &bootstrap);
    config.processing_guarantee = ProcessingGuarantee::ExactlyOnceV2;
    let app = StreamsApp::start(topology(), config);
    println!("word count running against {bootstrap}; Ctrl-C stops it");
    let _ = tokio::signal::ctrl_c().await;
    if let Err(error) = app.close().await {
        eprintln!("word count stopped: {error}");
    }
}
