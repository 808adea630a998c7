//! `strom produce` then `strom consume`: what goes in comes back, byte for byte.

mod cli_support;

use base64::Engine;
use cli_support::Broker;
use serde_json::Value;

fn header_pairs(record: &Value) -> Vec<(String, String)> {
    record["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().expect("key").to_string(),
                pair[1].as_str().expect("value").to_string(),
            )
        })
        .collect()
}

#[test]
fn given_keys_and_repeated_headers_when_produced_should_consume_identical_records() {
    let broker = Broker::start();
    broker.ok(&["topic", "create", "events", "--partitions", "3"]);
    let input: Vec<(String, String)> = (0..60)
        .map(|i| {
            (
                format!("user-{}", i % 7),
                format!("event {i} with spaces, commas: and\ttabs"),
            )
        })
        .collect();
    let stdin: String = input.iter().map(|(k, v)| format!("{k}|{v}\n")).collect();
    let summary = broker.json_from_stdin(
        &[
            "produce",
            "events",
            "--key-separator",
            "|",
            "--header",
            "trace=a",
            "--header",
            "trace=b",
            "--header",
            "source=cli",
            "--json",
        ],
        stdin.as_bytes(),
    );
    assert_eq!(summary["records"], 60);
    assert_eq!(summary["failed"], 0);
    let per_partition: i64 = summary["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            let records = p["records"].as_i64().expect("records");
            assert_eq!(
                p["last_offset"].as_i64().expect("last")
                    - p["first_offset"].as_i64().expect("first")
                    + 1,
                records,
                "offsets contiguous: {p}"
            );
            records
        })
        .sum();
    assert_eq!(per_partition, 60);

    let records = broker.json_lines(&["consume", "events", "--from-beginning", "--json"]);
    assert_eq!(records.len(), 60);
    let mut got: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            assert_eq!(r["topic"], "events");
            assert_eq!(
                header_pairs(r),
                vec![
                    ("trace".to_string(), "a".to_string()),
                    ("trace".to_string(), "b".to_string()),
                    ("source".to_string(), "cli".to_string()),
                ],
                "headers keep order and repeated keys"
            );
            (
                r["key"].as_str().expect("key").to_string(),
                r["value"].as_str().expect("value").to_string(),
            )
        })
        .collect();
    // Per key, order is kept (one key, one partition).
    for key in (0..7).map(|i| format!("user-{i}")) {
        let sent: Vec<_> = input.iter().filter(|(k, _)| *k == key).collect();
        let received: Vec<_> = got.iter().filter(|(k, _)| *k == key).collect();
        assert_eq!(sent.len(), received.len());
        for (s, r) in sent.iter().zip(&received) {
            assert_eq!(*s, *r);
        }
    }
    got.sort();
    let mut want = input.clone();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn given_each_compression_codec_when_produced_should_consume_same_bytes() {
    let broker = Broker::start();
    broker.ok(&["topic", "create", "codecs", "--partitions", "1"]);
    let mut expected = Vec::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let lines: Vec<String> = (0..200)
            .map(|i| format!("{codec}-{i}-{}", "compressible ".repeat(i % 9)))
            .collect();
        let stdin = lines.join("\n") + "\n";
        let summary = broker.json_from_stdin(
            &["produce", "codecs", "--compression", codec, "--json"],
            stdin.as_bytes(),
        );
        assert_eq!(summary["records"], 200, "{codec}");
        assert_eq!(summary["compression"], codec);
        expected.extend(lines);
    }
    let records = broker.json_lines(&["consume", "codecs", "--from-beginning", "--json"]);
    let values: Vec<String> = records
        .iter()
        .map(|r| r["value"].as_str().expect("value").to_string())
        .collect();
    let first_difference = values
        .iter()
        .zip(&expected)
        .position(|(got, want)| got != want);
    assert_eq!(
        (values.len(), first_difference),
        (expected.len(), None),
        "first difference: {:?}",
        first_difference.map(|i| (&values[i], &expected[i]))
    );
    let offsets: Vec<i64> = records
        .iter()
        .map(|r| r["offset"].as_i64().expect("offset"))
        .collect();
    assert_eq!(
        offsets,
        (0..1000).collect::<Vec<i64>>(),
        "offsets contiguous from 0"
    );
}

#[test]
fn given_keys_when_partitioned_should_match_java_murmur2_placement() {
    let broker = Broker::start();
    broker.ok(&["topic", "create", "placed", "--partitions", "5"]);
    let keys: Vec<String> = (0..100).map(|i| format!("key-{i}")).collect();
    let stdin: String = keys.iter().map(|k| format!("{k}=v\n")).collect();
    broker.ok_with_stdin(
        &["produce", "placed", "--key-separator", "="],
        stdin.as_bytes(),
    );
    let records = broker.json_lines(&["consume", "placed", "--from-beginning", "--json"]);
    assert_eq!(records.len(), 100);
    for record in &records {
        let key = record["key"].as_str().expect("key");
        let expected = (strom_client::murmur2(key.as_bytes()) & 0x7fff_ffff) % 5;
        assert_eq!(record["partition"], expected, "key {key}");
    }
}

#[test]
fn given_non_utf8_value_when_consumed_as_json_should_be_base64_with_marker() {
    let broker = Broker::start();
    broker.ok(&["topic", "create", "binary", "--partitions", "1"]);
    let value: &[u8] = &[0xff, 0xfe, 0x00, 0x80, b'a'];
    let mut stdin = value.to_vec();
    stdin.push(b'\n');
    broker.ok_with_stdin(&["produce", "binary"], &stdin);
    let records = broker.json_lines(&["consume", "binary", "--from-beginning", "--json"]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["value_encoding"], "base64");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(records[0]["value"].as_str().expect("value"))
        .expect("base64");
    assert_eq!(decoded, value);
    assert!(records[0]["key"].is_null());
    // Raw output is the same bytes.
    let raw = broker.strom(&["consume", "binary", "--from-beginning"]);
    assert_eq!(raw.stdout, stdin);
}

#[test]
fn given_offset_count_and_partition_options_when_consuming_should_select_records() {
    let broker = Broker::start();
    broker.ok(&["topic", "create", "pick", "--partitions", "2"]);
    let stdin: String = (0..10).map(|i| format!("p0-{i}\n")).collect();
    broker.ok_with_stdin(&["produce", "pick", "--partition", "0"], stdin.as_bytes());
    broker.ok_with_stdin(&["produce", "pick", "--partition", "1"], b"p1-0\n");

    let from_offset = broker.ok(&["consume", "pick", "--partition", "0", "--offset", "7"]);
    assert_eq!(from_offset, "p0-7\np0-8\np0-9\n");

    let counted = broker.ok(&[
        "consume",
        "pick",
        "--partition",
        "0",
        "--from-beginning",
        "--count",
        "2",
        "--print-offset",
        "--print-partition",
    ]);
    assert_eq!(
        counted,
        "Partition:0\tOffset:0\tp0-0\nPartition:0\tOffset:1\tp0-1\n"
    );

    let from_end = broker.ok(&["consume", "pick"]);
    assert_eq!(
        from_end, "",
        "default --from-end stops at once on a quiet topic"
    );

    let far_future = broker.ok(&["consume", "pick", "--timestamp", "2999-01-01T00:00:00Z"]);
    assert_eq!(far_future, "");
    let since_epoch = broker.ok(&[
        "consume",
        "pick",
        "--partition",
        "1",
        "--timestamp",
        "1970-01-01",
    ]);
    assert_eq!(since_epoch, "p1-0\n");
}

#[test]
fn given_acks_zero_and_one_when_producing_should_deliver() {
    let broker = Broker::start();
    broker.ok(&["topic", "create", "acks", "--partitions", "1"]);
    for acks in ["0", "1", "all"] {
        let summary = broker.json_from_stdin(
            &["produce", "acks", "--acks", acks, "--json"],
            format!("acks-{acks}\n").as_bytes(),
        );
        assert_eq!(summary["failed"], 0, "{summary}");
    }
    // Separate processes: no order between them is promised, only that all arrive.
    let values = broker.ok(&["consume", "acks", "--from-beginning"]);
    let mut values: Vec<&str> = values.lines().collect();
    values.sort();
    assert_eq!(values, vec!["acks-0", "acks-1", "acks-all"]);
}

#[test]
fn given_bench_when_run_with_json_should_report_throughput_and_latency() {
    let broker = Broker::start();
    let produced = broker.json(&[
        "bench",
        "produce",
        "--topic",
        "bench",
        "--create",
        "--partitions",
        "2",
        "--record-size",
        "64",
        "--count",
        "2000",
        "--acks",
        "all",
        "--runs",
        "2",
        "--json",
    ]);
    assert_eq!(produced["runs"].as_array().expect("runs").len(), 2);
    assert_eq!(produced["median"]["records"], 2000.0);
    assert!(
        produced["median"]["records_per_sec"]
            .as_f64()
            .expect("rate")
            > 0.0
    );
    assert!(produced["median"]["latency_p99_ms"].as_f64().is_some());

    let consumed = broker.json(&["bench", "consume", "--topic", "bench", "--json"]);
    assert_eq!(consumed["median"]["records"], 4000.0);
}

trait JsonFromStdin {
    fn json_from_stdin(&self, args: &[&str], stdin: &[u8]) -> Value;
}

impl JsonFromStdin for Broker {
    fn json_from_stdin(&self, args: &[&str], stdin: &[u8]) -> Value {
        let stdout = self.ok_with_stdin(args, stdin);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("strom {args:?} printed invalid JSON ({e}): {stdout}"))
    }
}

#[test]
fn given_follow_when_records_arrive_later_should_print_them_and_stop_at_count() {
    let broker = Broker::start();
    broker.ok(&["topic", "create", "live", "--partitions", "2"]);
    let follower = broker.spawn(&[
        "consume",
        "live",
        "--from-beginning",
        "--follow",
        "--count",
        "3",
        "--max-wait-ms",
        "100",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    broker.ok_with_stdin(
        &["produce", "live", "--partition", "1"],
        b"one\ntwo\nthree\n",
    );
    let output = cli_support::finish(
        follower,
        std::time::Duration::from_secs(30),
        "consume --follow",
    );
    assert!(output.status.success(), "{}", cli_support::stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "one\ntwo\nthree\n");
}
