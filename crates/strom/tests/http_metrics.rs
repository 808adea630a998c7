//! The HTTP endpoint's `/metrics`, `/health` and `/ready` against the real binary: counters
//! move by exactly the traffic sent, the exposition parses strictly, and malformed HTTP
//! never hurts the broker.

mod broker_support;
mod http_support;

use std::time::{Duration, Instant};

use broker_support::*;
use http_support::*;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn commit_offset(conn: &mut Conn, group: &str, topic: &str, partition: i32, offset: i64) {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)])]);
    // The first commit creates __consumer_offsets; retry while the coordinator loads.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response: OffsetCommitResponse = conn.call(ApiKey::OffsetCommit, 8, &request);
        let code = response.topics[0].partitions[0].error_code;
        if code == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "offset commit failed with {code}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn counter(exposition: &Exposition, name: &str, labels: &[(&str, &str)]) -> u64 {
    exposition.value_or_zero(name, labels) as u64
}

#[test]
fn given_known_produce_and_fetch_traffic_when_scraped_should_count_exactly_that() {
    let broker = HttpBroker::start(&[]);
    let mut conn = broker.kafka.connect();
    create_topic(&mut conn, "metered", 2, &[]);
    let before = broker.scrape();
    assert_eq!(
        counter(&before, "strom_requests_total", &[("api", "Produce")]),
        0
    );
    assert_eq!(
        counter(
            &before,
            "strom_topic_messages_in_total",
            &[("topic", "metered")]
        ),
        0,
        "a topic is exported at zero before any traffic"
    );

    // 3 batches of 5 records to partition 0, 1 batch of 7 to partition 1: 22 records.
    let mut bytes_in = 0u64;
    let mut bytes_p0 = 0u64;
    for round in 0..3 {
        let records = batch(&format!("p0-{round}"), 5, 1_700_000_000_000);
        bytes_in += records.len() as u64;
        bytes_p0 += records.len() as u64;
        assert_eq!(produce(&mut conn, "metered", 0, records).0, 0);
    }
    let records = batch("p1", 7, 1_700_000_000_000);
    bytes_in += records.len() as u64;
    assert_eq!(produce(&mut conn, "metered", 1, records).0, 0);
    let (error, high_watermark, fetched) = fetch(&mut conn, "metered", 0, 0);
    assert_eq!((error, high_watermark), (0, 15));
    assert!(!fetched.is_empty());

    let after = broker.scrape();
    assert_eq!(
        counter(
            &after,
            "strom_topic_messages_in_total",
            &[("topic", "metered")]
        ),
        22
    );
    assert_eq!(
        counter(
            &after,
            "strom_topic_bytes_in_total",
            &[("topic", "metered")]
        ),
        bytes_in
    );
    assert_eq!(
        counter(
            &after,
            "strom_topic_bytes_out_total",
            &[("topic", "metered")]
        ),
        fetched.len() as u64
    );
    assert_eq!(
        counter(&after, "strom_requests_total", &[("api", "Produce")]),
        4
    );
    assert_eq!(
        counter(&after, "strom_requests_total", &[("api", "Fetch")]),
        1
    );
    assert_eq!(
        counter(
            &after,
            "strom_request_duration_seconds_count",
            &[("api", "Produce")]
        ),
        4,
        "one latency observation per request"
    );
    let produce_buckets = after
        .family("strom_request_duration_seconds")
        .expect("histogram family")
        .samples
        .iter()
        .filter(|s| {
            s.name.ends_with("_bucket")
                && s.labels.get("api").map(String::as_str) == Some("Produce")
        })
        .count();
    assert!(produce_buckets > 5, "fixed buckets are all exported");
    let p0 = [("topic", "metered"), ("partition", "0")];
    let p1 = [("topic", "metered"), ("partition", "1")];
    assert_eq!(
        after.value("strom_partition_log_end_offset", &p0),
        Some(15.0)
    );
    assert_eq!(
        after.value("strom_partition_log_end_offset", &p1),
        Some(7.0)
    );
    assert_eq!(
        after.value("strom_partition_log_start_offset", &p0),
        Some(0.0)
    );
    assert_eq!(
        after.value("strom_partition_log_size_bytes", &p0),
        Some(bytes_p0 as f64),
        "stored bytes are the produced batches, byte for byte"
    );
    assert_eq!(after.value("strom_connections", &[]), Some(1.0));
    assert_eq!(
        after.value("strom_under_replicated_partitions", &[]),
        Some(0.0)
    );
    assert_eq!(after.value("strom_offline_partitions", &[]), Some(0.0));
    assert_eq!(after.value("strom_active_controller", &[]), Some(1.0));
    assert_eq!(after.value("strom_topics", &[]), Some(1.0));
    assert_eq!(after.value("strom_partitions", &[]), Some(2.0));

    // An idempotent retry that appends nothing is not counted again; a closed connection
    // leaves the gauge.
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(10);
    while broker.scrape().value("strom_connections", &[]) != Some(0.0) {
        assert!(
            Instant::now() < deadline,
            "connection gauge never went back to 0"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn given_group_commits_when_scraped_should_report_lag_per_partition() {
    let broker = HttpBroker::start(&[]);
    let mut conn = broker.kafka.connect();
    create_topic(&mut conn, "lagging", 1, &[]);
    assert_eq!(
        produce(&mut conn, "lagging", 0, batch("v", 10, 1_700_000_000_000)).0,
        0
    );
    commit_offset(&mut conn, "readers", "lagging", 0, 4);
    let labels = [
        ("group", "readers"),
        ("topic", "lagging"),
        ("partition", "0"),
    ];
    assert_eq!(
        broker.scrape().value("strom_consumer_group_lag", &labels),
        Some(6.0)
    );
    commit_offset(&mut conn, "readers", "lagging", 0, 10);
    assert_eq!(
        broker.scrape().value("strom_consumer_group_lag", &labels),
        Some(0.0)
    );
    // More data raises the lag again without a commit.
    assert_eq!(
        produce(&mut conn, "lagging", 0, batch("w", 3, 1_700_000_000_000)).0,
        0
    );
    assert_eq!(
        broker.scrape().value("strom_consumer_group_lag", &labels),
        Some(3.0)
    );
}

#[test]
fn given_long_poll_fetch_when_waiting_should_be_counted_in_purgatory_until_answered() {
    let broker = HttpBroker::start(&[]);
    let mut conn = broker.kafka.connect();
    create_topic(&mut conn, "quiet", 1, &[]);
    let addr = broker.kafka.addr;
    let waiter = std::thread::spawn(move || {
        let mut conn = Conn::plain(addr);
        let response: FetchResponse =
            conn.call(ApiKey::Fetch, 11, &fetch_request("quiet", 0, 0, 20_000, 1));
        response.responses[0].partitions[0].high_watermark
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while broker.scrape().value("strom_fetch_purgatory_size", &[]) != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "the parked fetch never showed up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        produce(&mut conn, "quiet", 0, batch("wake", 1, 1_700_000_000_000)).0,
        0
    );
    assert_eq!(waiter.join().unwrap(), 1);
    assert_eq!(
        broker.scrape().value("strom_fetch_purgatory_size", &[]),
        Some(0.0)
    );
}

#[test]
fn given_started_broker_when_health_and_ready_asked_should_report_partitions_open() {
    let broker = HttpBroker::start(&[]);
    let health = broker.get("/health");
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    let mut conn = broker.kafka.connect();
    create_topic(&mut conn, "ready-a", 3, &[]);
    let ready = broker.get("/ready");
    assert_eq!(ready.status, 200, "{}", ready.text());
    let body = ready.json();
    assert_eq!(body["ready"], true);
    assert_eq!(body["metadata_loaded"], true);
    assert_eq!(body["partitions_led"], 3);
    assert_eq!(body["partitions_open"], 3);
    // HEAD answers without a body.
    let head = request(broker.http, "HEAD", "/health", &[], b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

#[test]
fn given_committed_offsets_when_restarted_should_be_ready_only_after_offsets_load() {
    let broker = HttpBroker::start(&[]);
    let mut conn = broker.kafka.connect();
    create_topic(&mut conn, "durable", 1, &[]);
    commit_offset(&mut conn, "g", "durable", 0, 0);
    let ready = broker.get_json("/ready");
    assert_eq!(ready["groups_loading"], false);
    assert_eq!(ready["ready"], true);
}

#[test]
fn given_http_listener_empty_when_started_should_not_serve_http() {
    let port = free_port();
    let _broker =
        TestBroker::start(&[&format!("http.listener=127.0.0.1:{port}"), "http.listener="]);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens on the HTTP port when http.listener is empty"
    );
}

#[test]
fn given_malformed_http_when_sent_should_answer_or_close_and_keep_serving() {
    let broker = HttpBroker::start(&[]);
    let addr = broker.http;
    // Garbage instead of a request line.
    let answer = raw_exchange(addr, b"\x00\x01\x02 garbage \xff\xfe\r\n\r\n");
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    // A request head far larger than the limit.
    let mut huge = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    let answer = raw_exchange(addr, &huge);
    assert!(
        answer.is_empty()
            || answer.starts_with(b"HTTP/1.1 431")
            || answer.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
    // Thousands of headers.
    let mut many = b"GET /health HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..5000 {
        many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let answer = raw_exchange(addr, &many);
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "5000 headers accepted"
    );
    // A body larger than the limit on a JSON route.
    let big_body = vec![b'x'; 1024 * 1024];
    let response = request(
        addr,
        "POST",
        "/api/topics",
        &[("content-type", "application/json")],
        &big_body,
    );
    assert!(
        response.status == 413 || response.status == 400,
        "status {}",
        response.status
    );
    // A declared body that never arrives, and a head that never ends: the server times out
    // (or we give up) without harm.
    let mut stalled = std::net::TcpStream::connect(addr).unwrap();
    use std::io::Write;
    stalled
        .write_all(b"POST /api/topics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    let mut half = std::net::TcpStream::connect(addr).unwrap();
    half.write_all(b"GET /metr").unwrap();
    // Wrong method, unknown path, bad query values, forms and cross-origin writes.
    assert_eq!(request(addr, "PUT", "/metrics", &[], b"").status, 405);
    assert_eq!(request(addr, "GET", "/no/such/page", &[], b"").status, 404);
    assert_eq!(
        request(addr, "GET", "/api/topics?page=zero", &[], b"").status,
        400
    );
    assert_eq!(
        request(addr, "GET", "/api/topics?page_size=100000", &[], b"").status,
        400
    );
    assert_eq!(
        request(
            addr,
            "POST",
            "/api/topics",
            &[("content-type", "application/x-www-form-urlencoded")],
            b"name=x"
        )
        .status,
        415
    );
    assert_eq!(
        request(
            addr,
            "POST",
            "/api/topics",
            &[
                ("content-type", "application/json"),
                ("origin", "http://evil.example")
            ],
            br#"{"name":"evil"}"#
        )
        .status,
        403
    );
    assert_eq!(
        request(
            addr,
            "DELETE",
            "/api/topics/x",
            &[("origin", "http://evil.example")],
            b""
        )
        .status,
        403
    );
    assert_eq!(
        request(addr, "GET", "/api/topics/%ZZ%00", &[], b"").status,
        404
    );

    // Still healthy, and the Kafka side never noticed.
    assert_eq!(broker.get("/health").status, 200);
    let mut conn = broker.kafka.connect();
    create_topic(&mut conn, "after-abuse", 1, &[]);
    assert_eq!(
        produce(
            &mut conn,
            "after-abuse",
            0,
            batch("ok", 1, 1_700_000_000_000)
        )
        .0,
        0
    );
    assert!(broker.scrape().value("strom_topics", &[]).unwrap() >= 1.0);
    drop((stalled, half));
}

#[test]
fn given_more_connections_than_the_cap_when_opened_should_still_serve_after_they_close() {
    let broker = HttpBroker::start(&[]);
    let idle: Vec<std::net::TcpStream> = (0..100)
        .map(|_| std::net::TcpStream::connect(broker.http).unwrap())
        .collect();
    // Kafka keeps working while the HTTP side is saturated.
    let mut conn = broker.kafka.connect();
    create_topic(&mut conn, "busy", 1, &[]);
    assert_eq!(
        produce(&mut conn, "busy", 0, batch("ok", 1, 1_700_000_000_000)).0,
        0
    );
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(response) = try_request(broker.http, "GET", "/health", &[], b"") {
            if response.status == 200 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "HTTP did not recover after idle connections closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn given_json_log_format_and_slow_threshold_when_requests_are_slow_should_log_json_lines() {
    use std::process::{Command, Stdio};
    let temp = tempfile::tempdir().unwrap();
    let kafka_port = free_port();
    let http_port = free_port();
    let log_path = temp.path().join("broker.log");
    let child = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["broker", "--log-format", "json"])
        .arg("--set")
        .arg(format!("log.dirs={}", temp.path().join("data").display()))
        .arg("--set")
        .arg(format!("listeners=PLAINTEXT://127.0.0.1:{kafka_port}"))
        .arg("--set")
        .arg(format!("http.listener=127.0.0.1:{http_port}"))
        // CreateTopics writes and fsyncs the metadata log: slower than 1 ms.
        .arg("--set")
        .arg("log.slow.request.ms=1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("spawn strom broker");
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = KillOnDrop(child);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{kafka_port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "broker did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut conn = Conn::plain(addr);
    for index in 0..5 {
        create_topic(&mut conn, &format!("slow-{index}"), 4, &[]);
    }
    let http: std::net::SocketAddr = format!("127.0.0.1:{http_port}").parse().unwrap();
    let metrics = parse_exposition(&request(http, "GET", "/metrics", &[], b"").text()).unwrap();
    let slow = metrics.value("strom_slow_requests_total", &[]).unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(slow >= 1.0, "no request slower than 1 ms? log:\n{log}");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let slow_line = lines
        .iter()
        .find(|line| line["fields"]["message"] == "slow request")
        .unwrap_or_else(|| panic!("no slow-request line in:\n{log}"));
    assert_eq!(slow_line["level"], "WARN");
    assert_eq!(slow_line["fields"]["api"], "CreateTopics");
    assert!(slow_line["fields"]["elapsed_ms"].as_u64().is_some());
    // The request span rides along: correlation id and API key.
    assert!(
        slow_line["span"]["correlation_id"].is_number(),
        "{slow_line}"
    );
}

#[test]
fn strict_parser_rejects_what_prometheus_rejects() {
    let good =
        "# HELP strom_a_total A.\n# TYPE strom_a_total counter\nstrom_a_total{x=\"a\\\"b\"} 1\n";
    let parsed = parse_exposition(good).unwrap();
    assert_eq!(parsed.value("strom_a_total", &[("x", "a\"b")]), Some(1.0));
    for bad in [
        "# TYPE strom_a_total counter\nstrom_a_total 1\n",               // no HELP
        "# HELP strom_a A.\n# TYPE strom_a counter\nstrom_a 1\n",         // counter w/o _total
        "# HELP strom_a A.\n# TYPE strom_a gauge\nstrom_b 1\n",           // wrong family
        "# HELP strom_a A.\n# TYPE strom_a gauge\nstrom_a{x=1} 1\n",      // unquoted
        "# HELP strom_a A.\n# TYPE strom_a gauge\nstrom_a 1",             // no final newline
        "# HELP strom_h A.\n# TYPE strom_h histogram\nstrom_h_bucket{le=\"1\"} 2\nstrom_h_bucket{le=\"+Inf\"} 1\nstrom_h_sum 1\nstrom_h_count 1\n",
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted: {bad:?}");
    }
}
