//! Shared by the Connect tests: a real broker and real `strom connect` worker processes on
//! free loopback ports, and small REST helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use strom_client::{Client, ClientConfig, Consumer, ConsumerConfig, ConsumerRecord, SeekTo};

use crate::broker_support::TestBroker;
use crate::http_support::{free_port, request, try_request, HttpResponse};

/// A broker whose groups rebalance without the initial delay, so tests do not wait 3 s
/// per rebalance.
pub fn start_broker() -> TestBroker {
    TestBroker::start(&["group.initial.rebalance.delay.ms=0"])
}

pub struct Worker {
    child: Option<Child>,
    pub rest: SocketAddr,
    log_path: PathBuf,
}

impl Worker {
    /// A distributed worker of `group` on `broker`, its topics prefixed by `group`.
    pub fn distributed(dir: &Path, broker: &TestBroker, group: &str) -> Worker {
        let port = free_port();
        let config = dir.join(format!("worker-{port}.properties"));
        std::fs::write(
            &config,
            format!(
                "bootstrap.servers={}\ngroup.id={group}\nlisteners=http://127.0.0.1:{port}\n\
                 config.storage.topic={group}-configs\noffset.storage.topic={group}-offsets\n\
                 status.storage.topic={group}-status\noffset.storage.partitions=3\n\
                 status.storage.partitions=2\nreplication.factor=1\n\
                 session.timeout.ms=6000\nheartbeat.interval.ms=500\n\
                 scheduled.rebalance.max.delay.ms=1000\n",
                broker.addr
            ),
        )
        .expect("write worker config");
        Worker::spawn(
            dir,
            port,
            &["connect", "distributed", "--config"],
            &[config],
        )
    }

    /// A standalone worker with these connector files.
    pub fn standalone(dir: &Path, broker: &TestBroker, connectors: &[PathBuf]) -> Worker {
        let port = free_port();
        let config = dir.join(format!("standalone-{port}.properties"));
        std::fs::write(
            &config,
            format!(
                "bootstrap.servers={}\nlisteners=http://127.0.0.1:{port}\noffset.storage.file.filename={}\n",
                broker.addr,
                dir.join("standalone.offsets").display()
            ),
        )
        .expect("write worker config");
        let mut args = vec![config];
        args.extend_from_slice(connectors);
        Worker::spawn(dir, port, &["connect", "standalone", "--config"], &args)
    }

    fn spawn(dir: &Path, port: u16, command: &[&str], args: &[PathBuf]) -> Worker {
        let log_path = dir.join(format!("worker-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_strom"))
            .args(command)
            .args(args)
            .env("STROM_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn strom connect");
        let worker = Worker {
            child: Some(child),
            rest: format!("127.0.0.1:{port}").parse().expect("addr"),
            log_path,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(response) = try_request(worker.rest, "GET", "/", &[], b"") {
                if response.status == 200 {
                    return worker;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("worker did not serve REST in 60 s; log:\n{}", worker.log());
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.rest)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> HttpResponse {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        request(
            self.rest,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    }

    pub fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let response = self.call(method, path, body);
        assert!(
            (200..300).contains(&response.status),
            "{method} {path}: {} {}",
            response.status,
            response.text()
        );
        if response.body.is_empty() {
            Value::Null
        } else {
            response.json()
        }
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "worker did not stop in 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it returns Some or `timeout` passes (then panics with `what`).
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The complete lines of `path` (none when it is missing).
pub fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete.lines().map(str::to_string).collect()
}

pub fn write_lines(path: &Path, from: usize, to: usize) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open input");
    let mut text = String::new();
    for i in from..to {
        text.push_str(&format!("line-{i:07}\n"));
    }
    file.write_all(text.as_bytes()).expect("write input");
}

/// True when every task of `name` is RUNNING (and there is at least one).
pub fn all_running(worker: &Worker, name: &str) -> bool {
    let response = worker.call("GET", &format!("/connectors/{name}/status"), None);
    if response.status != 200 {
        return false;
    }
    let status = response.json();
    let tasks = status["tasks"].as_array().cloned().unwrap_or_default();
    status["connector"]["state"] == "RUNNING"
        && !tasks.is_empty()
        && tasks.iter().all(|t| t["state"] == "RUNNING")
}

/// Reads `count` records of partition 0 of `topic` (waiting up to a minute for them).
pub fn consume(broker: &TestBroker, topic: &str, count: usize) -> Vec<ConsumerRecord> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = Client::connect(ClientConfig::new(&broker.addr.to_string()))
            .await
            .unwrap();
        let mut consumer = Consumer::new(
            client,
            ConsumerConfig {
                auto_offset_reset: Some(SeekTo::Earliest),
                ..ConsumerConfig::default()
            },
        );
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while got.len() < count && std::time::Instant::now() < deadline {
            if consumer.assignment().is_empty()
                && consumer.assign(&[(topic.to_string(), 0)]).await.is_err()
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            got.extend(consumer.poll().await.unwrap_or_default());
        }
        got
    })
}

/// The value of the first header `name` of `record`, as text.
pub fn header(record: &ConsumerRecord, name: &str) -> Option<String> {
    record
        .headers
        .iter()
        .find(|h| h.key.as_ref() == name.as_bytes())
        .and_then(|h| h.value.clone())
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}
