//! `strom connect distributed`: two real worker processes in one `connect` group on a real
//! broker, FileStream source → topic → FileStream sink, a worker killed with -9 mid-stream,
//! and the REST API's answers to malformed requests (Kafka Connect's error bodies).

mod broker_support;
mod connect_support;
mod http_support;

use std::collections::BTreeSet;
use std::time::Duration;

use connect_support::*;
use http_support::raw_exchange;
use serde_json::{json, Value};

fn source(file: &std::path::Path, topic: &str) -> Value {
    json!({
        "connector.class": "FileStreamSource",
        "file": file.display().to_string(),
        "topic": topic,
        "tasks.max": "1",
    })
}

fn sink(file: &std::path::Path, topic: &str, tasks: u32) -> Value {
    json!({
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "file": file.display().to_string(),
        "topics": topic,
        "tasks.max": tasks.to_string(),
    })
}

fn expected(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("line-{i:07}")).collect()
}

#[test]
fn given_two_workers_when_file_flows_through_a_topic_should_arrive_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    {
        let mut conn = broker.connect();
        broker_support::create_topic(&mut conn, "lines", 3, &[]);
    }
    let a = Worker::distributed(dir.path(), &broker, "flow");
    let b = Worker::distributed(dir.path(), &broker, "flow");
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    let count = 100_000;
    write_lines(&input, 0, count);

    let created = a.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "file-in", "config": source(&input, "lines")})),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["type"], "source");
    // Created on one worker, visible on the other (the configs topic).
    let put = b.call(
        "PUT",
        "/connectors/file-out/config",
        Some(&sink(&output, "lines", 2)),
    );
    assert_eq!(put.status, 201, "{}", put.text());
    assert_eq!(
        b.ok("GET", "/connectors", None),
        json!(["file-in", "file-out"])
    );

    let got = wait_for(
        "100k lines in the sink file",
        Duration::from_secs(120),
        || {
            let got = lines(&output);
            (got.len() >= count).then_some(got)
        },
    );
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        expected(count),
        "exactly the input lines, once each"
    );

    // Both workers run something: the assignment is spread.
    wait_for("all tasks running", Duration::from_secs(30), || {
        (all_running(&a, "file-in") && all_running(&a, "file-out")).then_some(())
    });
    let status = a.ok("GET", "/connectors/file-out/status", None);
    let workers: BTreeSet<String> = std::iter::once(&status["connector"])
        .chain(status["tasks"].as_array().unwrap())
        .chain(std::iter::once(
            &a.ok("GET", "/connectors/file-in/status", None)["tasks"][0],
        ))
        .map(|s| s["worker_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(workers.len(), 2, "work on both workers: {status}");

    // Source offsets committed (KIP-875 shape): the position is the whole file.
    let size = std::fs::metadata(&input).unwrap().len();
    let offsets = wait_for(
        "the source position at the end of the file",
        Duration::from_secs(30),
        || {
            let offsets = b.ok("GET", "/connectors/file-in/offsets", None);
            (offsets["offsets"][0]["offset"]["position"] == size).then_some(offsets)
        },
    );
    assert_eq!(
        offsets["offsets"][0]["partition"]["filename"],
        input.display().to_string()
    );
    wait_for(
        "sink offsets at the end of the topic",
        Duration::from_secs(30),
        || {
            let sink_offsets = a.ok("GET", "/connectors/file-out/offsets", None);
            let total: i64 = sink_offsets["offsets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["offset"]["kafka_offset"].as_i64().unwrap())
                .sum();
            (total == count as i64).then_some(())
        },
    );
}

#[test]
fn given_a_worker_killed_mid_stream_when_the_other_takes_over_should_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    {
        let mut conn = broker.connect();
        broker_support::create_topic(&mut conn, "events", 2, &[]);
    }
    let mut a = Worker::distributed(dir.path(), &broker, "failover");
    let b = Worker::distributed(dir.path(), &broker, "failover");
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    write_lines(&input, 0, 20_000);
    b.ok(
        "POST",
        "/connectors",
        Some(&json!({"name": "src", "config": source(&input, "events")})),
    );
    b.ok(
        "POST",
        "/connectors",
        Some(&json!({"name": "dst", "config": sink(&output, "events", 2)})),
    );
    wait_for("some output", Duration::from_secs(60), || {
        (lines(&output).len() >= 5_000).then_some(())
    });
    // Mid-stream: more lines arrive while a worker dies with -9.
    write_lines(&input, 20_000, 30_000);
    a.kill();
    write_lines(&input, 30_000, 40_000);
    let total = 40_000;
    let got = wait_for(
        "every line after the failover",
        Duration::from_secs(120),
        || {
            let got: BTreeSet<String> = lines(&output).into_iter().collect();
            (got.len() >= total).then_some(got)
        },
    );
    let want: BTreeSet<String> = expected(total).into_iter().collect();
    assert_eq!(got, want, "at-least-once: every line, nothing else");
    // The survivor runs everything.
    wait_for("all tasks on the survivor", Duration::from_secs(60), || {
        let ok = ["src", "dst"].iter().all(|name| {
            let status = b.ok("GET", &format!("/connectors/{name}/status"), None);
            status["tasks"].as_array().is_some_and(|tasks| {
                tasks
                    .iter()
                    .all(|t| t["state"] == "RUNNING" && t["worker_id"] == b.rest.to_string())
            })
        });
        ok.then_some(())
    });
    // Graceful stop of the last worker: it leaves the group and exits 0.
    let mut b = b;
    assert!(b.stop().success(), "{}", b.log());
}

#[test]
fn given_malformed_requests_when_sent_should_get_kafka_connect_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    let w = Worker::distributed(dir.path(), &broker, "errors");
    let check = |method: &str, path: &str, body: &str, status: u16, message: &str| {
        let response = http_support::request(
            w.rest,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(
            response.status,
            status,
            "{method} {path} {body}: {}",
            response.text()
        );
        let json = response.json();
        assert_eq!(json["error_code"], status, "{json}");
        assert!(
            json["message"].as_str().unwrap_or("").contains(message),
            "{method} {path}: {json} lacks {message:?}"
        );
    };
    check("POST", "/connectors", "not json", 400, "JSON");
    check("POST", "/connectors", "", 400, "body is missing");
    check("POST", "/connectors", "[1,2]", 400, "name");
    check("POST", "/connectors", r#"{"name":"x"}"#, 400, "config");
    check(
        "POST",
        "/connectors",
        r#"{"name":"","config":{}}"#,
        400,
        "null or empty",
    );
    check(
        "POST",
        "/connectors",
        r#"{"name":"x","config":{"connector.class":"io.example.Nope"}}"#,
        400,
        "Failed to find any class",
    );
    check(
        "POST",
        "/connectors",
        r#"{"name":"x","config":{"connector.class":"FileStreamSink","tasks.max":"many"}}"#,
        400,
        "contains the following 3 error(s)",
    );
    check("PUT", "/connectors/x/config", "[]", 400, "JSON object");
    check(
        "PUT",
        "/connectors/x/config",
        r#"{"name":"y","connector.class":"FileStreamSink","file":"f","topics":"t"}"#,
        400,
        "doesn't match",
    );
    check(
        "PUT",
        "/connector-plugins/FileStreamSink/config/validate",
        "{",
        400,
        "JSON",
    );
    check(
        "PUT",
        "/connector-plugins/Nope/config/validate",
        "{}",
        400,
        "Failed to find any class",
    );
    check(
        "GET",
        "/connectors/missing",
        "",
        404,
        "Connector missing not found",
    );
    check("GET", "/connectors/missing/status", "", 404, "not found");
    check("DELETE", "/connectors/missing", "", 404, "not found");
    check("GET", "/nowhere", "", 404, "Not Found");

    let output = dir.path().join("o.txt");
    w.ok("PUT", "/connectors/ok/config", Some(&sink(&output, "t", 1)));
    check(
        "POST",
        "/connectors",
        &json!({"name": "ok", "config": sink(&output, "t", 1)}).to_string(),
        409,
        "already exists",
    );
    check("GET", "/connectors/ok/tasks/abc/status", "", 400, "Task id");
    check(
        "GET",
        "/connectors/ok/tasks/7/status",
        "",
        404,
        "Task ok-7 not found",
    );
    check(
        "POST",
        "/connectors/ok/restart?includeTasks=maybe",
        "",
        400,
        "includeTasks",
    );
    check(
        "PATCH",
        "/connectors/ok/offsets",
        r#"{"offsets":[]}"#,
        400,
        "STOPPED",
    );
    check("DELETE", "/connectors/ok/offsets", "", 400, "STOPPED");
    w.ok("PUT", "/connectors/ok/stop", None);
    check("PATCH", "/connectors/ok/offsets", "{}", 400, "offsets");
    check(
        "PATCH",
        "/connectors/ok/offsets",
        r#"{"offsets":[{"partition":{},"offset":{}}]}"#,
        400,
        "kafka_topic",
    );

    // A body over the limit: 413 with the error body.
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    check("POST", "/connectors", &big, 413, "too large");
    // Garbage instead of HTTP: the connection is closed or answered 400, the worker lives.
    let _ = raw_exchange(w.rest, b"\x00\x01\x02 nonsense\r\n\r\n");
    assert_eq!(w.ok("GET", "/connectors", None), json!(["ok"]));
}

#[test]
fn given_a_connector_when_paused_resumed_restarted_and_deleted_should_report_each_state() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    let w = Worker::distributed(dir.path(), &broker, "life");
    let input = dir.path().join("in.txt");
    write_lines(&input, 0, 10);
    w.ok(
        "POST",
        "/connectors",
        Some(&json!({"name": "s", "config": source(&input, "life")})),
    );
    wait_for("running", Duration::from_secs(30), || {
        all_running(&w, "s").then_some(())
    });
    assert_eq!(w.call("PUT", "/connectors/s/pause", None).status, 202);
    wait_for("paused", Duration::from_secs(30), || {
        let status = w.ok("GET", "/connectors/s/status", None);
        (status["connector"]["state"] == "PAUSED" && status["tasks"][0]["state"] == "PAUSED")
            .then_some(())
    });
    assert_eq!(w.call("PUT", "/connectors/s/resume", None).status, 202);
    wait_for("resumed", Duration::from_secs(30), || {
        all_running(&w, "s").then_some(())
    });
    let restarted = w.call("POST", "/connectors/s/restart?includeTasks=true", None);
    assert_eq!(restarted.status, 202, "{}", restarted.text());
    assert_eq!(restarted.json()["tasks"][0]["state"], "RESTARTING");
    assert_eq!(
        w.call("POST", "/connectors/s/tasks/0/restart", None).status,
        204
    );
    wait_for("running again", Duration::from_secs(30), || {
        all_running(&w, "s").then_some(())
    });
    let tasks = w.ok("GET", "/connectors/s/tasks", None);
    assert_eq!(tasks[0]["id"], json!({"connector": "s", "task": 0}));
    assert_eq!(tasks[0]["config"]["topic"], "life");

    // Stop, then reset the source offsets (KIP-875): allowed only while STOPPED.
    assert_eq!(w.call("PUT", "/connectors/s/stop", None).status, 204);
    let status = w.ok("GET", "/connectors/s/status", None);
    assert_eq!(status["connector"]["state"], "STOPPED");
    assert_eq!(status["tasks"], json!([]));
    // Ten lines of 13 bytes each were read.
    let offsets = w.ok("GET", "/connectors/s/offsets", None);
    assert_eq!(
        offsets["offsets"][0]["offset"]["position"], 130,
        "{offsets}"
    );
    let reset = w.ok("DELETE", "/connectors/s/offsets", None);
    assert!(
        reset["message"].as_str().unwrap().contains("reset"),
        "{reset}"
    );
    assert_eq!(
        w.ok("GET", "/connectors/s/offsets", None),
        json!({"offsets": []})
    );

    let plugins = w.ok("GET", "/connector-plugins", None);
    assert!(plugins.as_array().unwrap().iter().any(|p| p["class"]
        == "org.apache.kafka.connect.file.FileStreamSourceConnector"
        && p["type"] == "source"));
    let validated = w.ok(
        "PUT",
        "/connector-plugins/FileStreamSource/config/validate",
        Some(&json!({"connector.class": "FileStreamSource", "name": "v"})),
    );
    assert_eq!(
        validated["error_count"], 2,
        "file and topic missing: {validated}"
    );

    assert_eq!(w.call("DELETE", "/connectors/s", None).status, 204);
    assert_eq!(w.ok("GET", "/connectors", None), json!([]));
}
