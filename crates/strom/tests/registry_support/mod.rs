//! Shared by the schema registry tests: a real broker with its registry listener on a
//! known free port, and calls of the Confluent REST API over the plain HTTP client of
//! `http_support`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::broker_support::{ephemeral_port, TestBroker};
use crate::http_support::{request, try_request, HttpResponse};

pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

pub struct RegistryBroker {
    pub kafka: TestBroker,
    pub registry: SocketAddr,
    pub data_dir: PathBuf,
    kafka_port: u16,
    _temp: tempfile::TempDir,
}

impl RegistryBroker {
    pub fn start() -> RegistryBroker {
        RegistryBroker::start_with(&[])
    }

    /// A broker with more settings (`key=value`); waits for the registry to answer at all
    /// (a 401 counts).
    pub fn start_with(extra: &[&str]) -> RegistryBroker {
        let temp = tempfile::tempdir().expect("tempdir");
        let data_dir = temp.path().join("data");
        let kafka_port = ephemeral_port();
        let registry: SocketAddr = format!("127.0.0.1:{}", ephemeral_port()).parse().unwrap();
        let setting = format!("schema.registry.listener={registry}");
        let mut settings = vec![setting.as_str()];
        settings.extend_from_slice(extra);
        let kafka = TestBroker::start_in(&data_dir, kafka_port, &settings);
        let broker = RegistryBroker {
            kafka,
            registry,
            data_dir,
            kafka_port,
            _temp: temp,
        };
        broker.wait_ready();
        broker
    }

    /// kill -9, then start again on the same data directory and ports.
    pub fn kill_and_restart(&mut self) {
        self.kafka.kill();
        self.kafka = start_kafka(&self.data_dir, self.kafka_port, self.registry);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(response) = try_request(self.registry, "GET", "/subjects", &[], b"") {
                if response.status == 200 || response.status == 401 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "schema registry did not answer on {} within 30 s; log:\n{}",
            self.registry,
            self.kafka.log()
        );
    }

    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> HttpResponse {
        let body = body.map(Value::to_string).unwrap_or_default();
        request(
            self.registry,
            method,
            path,
            &[("content-type", CONTENT_TYPE)],
            body.as_bytes(),
        )
    }

    /// A call that must answer 200; its JSON.
    pub fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let response = self.call(method, path, body);
        assert_eq!(response.status, 200, "{method} {path}: {}", response.text());
        response.json()
    }

    /// A call that must fail with `status` and Confluent's `error_code`.
    pub fn fails(&self, method: &str, path: &str, body: Option<&Value>, status: u16, code: u64) {
        let response = self.call(method, path, body);
        assert_error(&response, status, code, &format!("{method} {path}"));
    }

    /// Registers `schema` (Avro unless `schema_type`) under `subject`; its id.
    pub fn register(&self, subject: &str, schema: &str, schema_type: Option<&str>) -> i64 {
        let mut body = json!({ "schema": schema });
        if let Some(schema_type) = schema_type {
            body["schemaType"] = json!(schema_type);
        }
        let answer = self.ok(
            "POST",
            &format!("/subjects/{subject}/versions"),
            Some(&body),
        );
        answer["id"].as_i64().expect("an id")
    }
}

pub fn assert_error(response: &HttpResponse, status: u16, code: u64, what: &str) {
    assert_eq!(response.status, status, "{what}: {}", response.text());
    let body = response.json();
    assert_eq!(body["error_code"].as_u64(), Some(code), "{what}: {body}");
    assert!(body["message"].is_string(), "{what}: {body}");
}

fn start_kafka(data_dir: &Path, port: u16, registry: SocketAddr) -> TestBroker {
    let setting = format!("schema.registry.listener={registry}");
    TestBroker::start_in(data_dir, port, &[&setting])
}

/// An Avro record schema named `name` with `fields` (JSON field objects).
pub fn avro_record(name: &str, fields: &[Value]) -> String {
    json!({"type": "record", "name": name, "fields": fields}).to_string()
}

/// A call to the registry at `addr`.
pub fn call_at(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> HttpResponse {
    let body = body.map(Value::to_string).unwrap_or_default();
    request(
        addr,
        method,
        path,
        &[("content-type", CONTENT_TYPE)],
        body.as_bytes(),
    )
}

/// Retries `call` until it answers 200 (a leader election, a replica catching up) or
/// `timeout` passes; the last answer.
pub fn until_ok(timeout: Duration, call: impl Fn() -> HttpResponse) -> HttpResponse {
    let deadline = Instant::now() + timeout;
    loop {
        let response = call();
        if response.status == 200 || Instant::now() > deadline {
            return response;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
