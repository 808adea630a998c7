//! `/api/history` against the real binary: malformed parameters get 400 with a message, an
//! unknown topic 404, and produced records show up as rates (in total and for the topic),
//! with every series aligned to the times.

mod broker_support;
mod http_support;

use std::time::{Duration, Instant};

use broker_support::*;
use http_support::*;

#[test]
fn given_malformed_parameters_when_history_asked_should_answer_400_with_a_message() {
    let broker = HttpBroker::start(&[]);
    for (query, message) in [
        ("minutes=0", "1..=15"),
        ("minutes=16", "1..=15"),
        ("minutes=-3", "1..=15"),
        ("minutes=ten", "`minutes`"),
        ("minutes=99999999999999999999", "`minutes`"),
        ("minute=5", "unknown query parameter `minute`"),
        ("topic=a%2Fb", "topic name"),
        ("topic=%00", "topic name"),
    ] {
        let response = broker.get(&format!("/api/history?{query}"));
        assert_eq!(response.status, 400, "{query}: {}", response.text());
        let error = response.json()["error"].as_str().unwrap_or("").to_string();
        assert!(error.contains(message), "{query}: {error}");
    }
    let long = format!("/api/history?topic={}", "t".repeat(250));
    assert_eq!(broker.get(&long).status, 400);
    let long_group = format!("/api/history?group={}", "g".repeat(1025));
    assert_eq!(broker.get(&long_group).status, 400);
    let unknown = broker.get("/api/history?topic=no-such-topic");
    assert_eq!(unknown.status, 404, "{}", unknown.text());
}

#[test]
fn given_produced_records_when_history_asked_should_show_the_rates_in_total_and_per_topic() {
    let broker = HttpBroker::start(&[]);
    let mut conn = broker.kafka.connect();
    create_topic(&mut conn, "charted", 1, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let history = loop {
        // Keep producing until a point (kept or "now") shows the records.
        assert_eq!(produce(&mut conn, "charted", 0, batch("c", 20, 0)).0, 0);
        let history = broker.get_json("/api/history?topic=charted");
        let messages = history["topic"]["messages_in_per_s"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if messages.iter().any(|v| v.as_f64().unwrap_or(0.0) > 0.0) {
            break history;
        }
        assert!(
            Instant::now() < deadline,
            "no messages-in rate for the topic in 60 s: {history}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let points = history["times_ms"].as_array().unwrap().len();
    assert!(points >= 1);
    for series in [
        &history["total"]["messages_in_per_s"],
        &history["total"]["bytes_in_per_s"],
        &history["total"]["bytes_out_per_s"],
        &history["topic"]["bytes_in_per_s"],
        &history["under_replicated_partitions"],
        &history["offline_partitions"],
    ] {
        assert_eq!(series.as_array().unwrap().len(), points, "{history}");
    }
    assert!(history["topics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "charted"));
    let produce_p99 = history["request_p99_ms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|api| api["api"] == "Produce")
        .unwrap_or_else(|| panic!("no Produce latency series: {history}"));
    assert_eq!(produce_p99["p99_ms"].as_array().unwrap().len(), points);
    let total_bytes: f64 = history["total"]["bytes_in_per_s"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_f64())
        .sum();
    assert!(total_bytes > 0.0, "{history}");
    assert!(history["under_replicated_partitions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v == 0));
}
