//! Records per second of the processing engine alone (no broker, no network): a word
//! count and a windowed count through the `TopologyTestDriver`, in memory. A benchmark,
//! not a test; run it in release:
//!
//! cargo run --release -p strom-streams --example driver_throughput

use std::time::Instant;

use strom_streams::{Serdes, StreamsBuilder, TestTopic, TimeWindows, Topology, TopologyTestDriver};

const RECORDS: usize = 200_000;
const RUNS: usize = 5;

fn word_count() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("lines", Serdes::option(Serdes::string()), Serdes::string())
        .flat_map_values(|line| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .group_by(|_, word| word.clone(), Serdes::string(), Serdes::string())
        .count()
        .to("counts", Serdes::string(), Serdes::i64());
    builder.build().expect("word count topology")
}

fn windowed() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("lines", Serdes::option(Serdes::string()), Serdes::string())
        .group_by(|_, page| page.clone(), Serdes::string(), Serdes::string())
        .windowed_by(TimeWindows::tumbling(1_000).grace(100))
        .count()
        .to(
            "counts",
            Serdes::time_windowed(Serdes::string(), 1_000),
            Serdes::i64(),
        );
    builder.build().expect("windowed topology")
}

/// Input records per second, the median of `RUNS`.
fn measure(make: fn() -> Topology, line: fn(usize) -> String) -> f64 {
    let input = TestTopic::new("lines", Serdes::option(Serdes::string()), Serdes::string());
    let mut rates = Vec::new();
    for _ in 0..RUNS {
        let mut driver = TopologyTestDriver::new(make()).expect("driver");
        let lines: Vec<String> = (0..RECORDS).map(line).collect();
        let start = Instant::now();
        for (i, text) in lines.iter().enumerate() {
            driver.pipe(&input, &None, text, i as i64).expect("pipe");
            if i % 1000 == 0 {
                driver.read_raw("counts");
                driver.read_raw("test-KSTREAM-AGGREGATE-0000000005-store-changelog");
            }
        }
        rates.push(RECORDS as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[RUNS / 2]
}

fn main() {
    let words = measure(word_count, |i| {
        format!("w{} w{} w{}", i % 97, i % 13, i % 7)
    });
    println!(
        "word count (3 words a line): {words:.0} lines/s (median of {RUNS} runs of {RECORDS})"
    );
    let pages = measure(windowed, |i| format!("page-{}", i % 100));
    println!("tumbling-window count: {pages:.0} records/s (median of {RUNS} runs of {RECORDS})");
}
