//! The HTTP sink against a real HTTP endpoint (a loopback server in the test): batches
//! POSTed as JSON arrays, 503s retried until they succeed, a 400 sending the batch to the
//! dead-letter topic with Kafka Connect's `__connect.errors.*` headers.

mod broker_support;
mod connect_support;
mod http_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connect_support::*;
use serde_json::{json, Value};

/// Answers `503` to the first `failures` requests, then `status`; keeps every body.
struct Endpoint {
    port: u16,
    bodies: Arc<Mutex<Vec<Value>>>,
    requests: Arc<Mutex<usize>>,
}

impl Endpoint {
    fn start(failures: usize, status: u16) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let (b, r) = (bodies.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let count = {
                    let mut n = r.lock().unwrap();
                    *n += 1;
                    *n
                };
                let answer = if count <= failures { 503 } else { status };
                if answer == 200 {
                    b.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                }
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {answer} X\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"
                );
            }
        });
        Endpoint {
            port,
            bodies,
            requests,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/ingest", self.port)
    }

    fn values(&self) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b.as_array().cloned().unwrap_or_default())
            .collect()
    }
}

fn produce(broker: &broker_support::TestBroker, topic: &str, lines: &[String]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args([
            "produce",
            topic,
            "--bootstrap-server",
            &broker.addr.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn given_a_flaky_endpoint_when_sinking_should_retry_and_deliver_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    let endpoint = Endpoint::start(3, 200);
    let lines: Vec<String> = (0..500).map(|i| json!({"n": i}).to_string()).collect();
    produce(&broker, "hooks", &lines);
    let worker = Worker::distributed(dir.path(), &broker, "http-ok");
    worker.ok(
        "POST",
        "/connectors",
        Some(&json!({"name": "hook", "config": {
        "connector.class": "HttpSink", "topics": "hooks", "http.api.url": endpoint.url(),
        "batch.max.size": "50", "retry.backoff.ms": "50"}})),
    );
    let values = wait_for("500 values posted", Duration::from_secs(60), || {
        let values = endpoint.values();
        (values.len() >= 500).then_some(values)
    });
    let numbers: Vec<i64> = values.iter().map(|v| v["n"].as_i64().unwrap()).collect();
    assert_eq!(
        numbers,
        (0..500).collect::<Vec<i64>>(),
        "in order, each once"
    );
    assert!(
        *endpoint.requests.lock().unwrap() >= 13,
        "3 failures and 10 batches"
    );
    assert!(endpoint
        .bodies
        .lock()
        .unwrap()
        .iter()
        .all(|b| b.as_array().unwrap().len() <= 50));
    assert!(all_running(&worker, "hook"));
}

#[test]
fn given_an_endpoint_refusing_records_when_sinking_should_send_them_to_the_dead_letter_topic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    let endpoint = Endpoint::start(0, 400);
    produce(
        &broker,
        "bad-hooks",
        &["one".to_string(), "two".to_string()],
    );
    let worker = Worker::distributed(dir.path(), &broker, "http-dlq");
    worker.ok(
        "POST",
        "/connectors",
        Some(&json!({"name": "dlq", "config": {
        "connector.class": "io.strom.connect.http.HttpSinkConnector", "topics": "bad-hooks",
        "http.api.url": endpoint.url(), "errors.deadletterqueue.topic.name": "hooks-dlq"}})),
    );
    let records = consume(&broker, "hooks-dlq", 2);
    assert_eq!(records.len(), 2, "both records in the dead letter topic");
    assert_eq!(records[0].value.as_deref(), Some(&b"one"[..]));
    let header = |name: &str| header(&records[1], name);
    assert_eq!(
        header("__connect.errors.topic").as_deref(),
        Some("bad-hooks")
    );
    assert_eq!(header("__connect.errors.offset").as_deref(), Some("1"));
    assert!(header("__connect.errors.exception.message")
        .unwrap()
        .contains("HTTP 400"));
    // The task goes on.
    assert!(all_running(&worker, "dlq"));
    let refused = worker.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "x", "config": {
        "connector.class": "HttpSink", "topics": "t", "http.api.url": "https://h/x"}})),
    );
    assert_eq!(refused.status, 400);
    assert!(refused.text().contains("http.api.url"));
}
