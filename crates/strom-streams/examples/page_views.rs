//! Windowed page views: `page-views` (key user, value page) counted per page and per
//! minute, with 10 s of grace for late views; one final count per window, once it closes,
//! to `page-views-per-minute` (key: page bytes + 8-byte window start, Kafka's windowed
//! layout; value: 8-byte count).
//!
//! cargo run -p strom-streams --example page_views -- 127.0.0.1:9092

use strom_streams::{Serdes, StreamsApp, StreamsBuilder, StreamsConfig, TimeWindows, Topology};

const MINUTE_MS: i64 = 60_000;

fn topology() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("page-views", Serdes::string(), Serdes::string())
        .group_by(
            |_user, page| page.clone(),
            Serdes::string(),
            Serdes::string(),
        )
        .windowed_by(TimeWindows::tumbling(MINUTE_MS).grace(10_000))
        .count()
        .suppress_until_window_closes()
        .to(
            "page-views-per-minute",
            Serdes::time_windowed(Serdes::string(), MINUTE_MS),
            Serdes::i64(),
        );
    match builder.build() {
        Ok(topology) => topology,
        Err(error) => panic!("page views topology: {error}"),
    }
}

#[tokio::main]
async fn main() {
    let bootstrap = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9092".to_string());
    let app = StreamsApp::start(topology(), StreamsConfig::new("page-views", &bootstrap));
    println!("page views running against {bootstrap}; Ctrl-C stops it");
    let _ = tokio::signal::ctrl_c().await;
    if let Err(error) = app.close().await {
        eprintln!("page views stopped: {error}");
    }
}
