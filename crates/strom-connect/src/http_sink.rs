//! The HTTP sink: each batch of records is POSTed (or PUT) to `http.api.url` as a JSON
//! array of the record values (a value that is JSON goes in as is, any other as a string).
//! A connection failure, a 5xx or a 429 is retried `max.retries` times with doubling backoff
//! from `retry.backoff.ms`; another status fails the batch at once. A batch that fails for
//! good goes to `errors.deadletterqueue.topic.name` when one is set, each record with
//! Kafka Connect's `__connect.errors.*` headers, and the task goes on; without one the task
//! fails. It runs on the sink driver ([`crate::sink`]): transforms and `errors.*` apply,
//! and offsets are committed to group `connect-<name>` after each batch: at-least-once.
//!
//! Plain `http://` only (no TLS yet).

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tracing::warn;

use crate::error::{ConnectError, Result};
use crate::errors::{ErrorHandler, Stage};
use crate::file_connectors::{idle, required};
use crate::plugins::Config;
use crate::sink::{self, SinkWriter};
use crate::transforms::ConnectRecord;
use crate::worker::{Control, TaskContext};

/// Largest answer read from the endpoint (only its status line matters).
const RESPONSE_BYTES_MAX: u64 = 64 * 1024;

struct Settings {
    address: String,
    host: String,
    path: String,
    method: String,
    headers: Vec<(String, String)>,
    batch_max: usize,
    max_retries: u32,
    backoff: Duration,
    timeout: Duration,
}

fn bad(message: impl Into<String>) -> ConnectError {
    ConnectError::bad_request(message)
}

/// `http://host[:port][/path]` as (address, host header, path).
pub fn parse_url(url: &str) -> Result<(String, String, String)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        bad(format!(
            "Invalid value {url} for configuration http.api.url: must start with http:// (https is not supported yet)"
        ))
    })?;
    let (host, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if host.is_empty() {
        return Err(bad(format!(
            "Invalid value {url} for configuration http.api.url: no host"
        )));
    }
    let address = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    Ok((address, host.to_string(), path.to_string()))
}

fn settings(config: &Config) -> Result<Settings> {
    let (address, host, path) = parse_url(required(config, "http.api.url")?)?;
    let get = |key: &str, default: &str| config.get(key).cloned().unwrap_or(default.to_string());
    let method = get("request.method", "POST").to_ascii_uppercase();
    if !matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
        return Err(bad(format!(
            "Invalid value {method} for configuration request.method: must be POST, PUT or PATCH"
        )));
    }
    let headers = get("headers", "")
        .split('|')
        .filter(|h| !h.trim().is_empty())
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| bad(format!("Invalid value {h} for configuration headers: expected NAME:VALUE, separated by |")))
        })
        .collect::<Result<Vec<_>>>()?;
    let number = |key: &str, default: u64, max: u64| -> Result<u64> {
        let text = get(key, &default.to_string());
        match text.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(bad(format!(
                "Invalid value {text} for configuration {key}: must be an integer in [0, {max}]"
            ))),
        }
    };
    Ok(Settings {
        address,
        host,
        path,
        method,
        headers,
        batch_max: number("batch.max.size", 100, 10_000)?.max(1) as usize,
        max_retries: number("max.retries", 5, 100)? as u32,
        backoff: Duration::from_millis(number("retry.backoff.ms", 1000, 600_000)?),
        timeout: Duration::from_millis(number("request.timeout.ms", 30_000, 600_000)?.max(1)),
    })
}

/// The errors of this connector's own keys, by key (for validation).
pub fn check(config: &Config) -> Vec<(&'static str, String)> {
    if !config.contains_key("http.api.url") {
        return Vec::new();
    }
    match settings(config) {
        Ok(_) => Vec::new(),
        Err(error) => {
            let text = error.to_string();
            let key = [
                "http.api.url",
                "request.method",
                "headers",
                "batch.max.size",
                "max.retries",
                "retry.backoff.ms",
                "request.timeout.ms",
            ]
            .into_iter()
            .find(|k| text.contains(&format!("configuration {k}")))
            .unwrap_or("http.api.url");
            vec![(key, text)]
        }
    }
}

/// Why a request failed, and whether trying again may help.
struct Failure {
    message: String,
    retriable: bool,
}

async fn send(settings: &Settings, body: &[u8]) -> std::result::Result<(), Failure> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&settings.address).await?;
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            settings.method,
            settings.path,
            settings.host,
            body.len()
        );
        for (name, value) in &settings.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut answer = Vec::new();
        stream
            .take(RESPONSE_BYTES_MAX)
            .read_to_end(&mut answer)
            .await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = match tokio::time::timeout(settings.timeout, exchange).await {
        Err(_) => {
            return Err(Failure {
                message: format!(
                    "no answer from {} in {:?}",
                    settings.address, settings.timeout
                ),
                retriable: true,
            })
        }
        Ok(Err(error)) => {
            return Err(Failure {
                message: format!("{} {}: {error}", settings.method, settings.address),
                retriable: true,
            })
        }
        Ok(Ok(answer)) => answer,
    };
    let text = String::from_utf8_lossy(&answer);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    match status {
        200..=299 => Ok(()),
        _ => Err(Failure {
            message: format!(
                "HTTP {status} from {}{}: {}",
                settings.host,
                settings.path,
                text.split_once("\r\n\r\n")
                    .map(|(_, b)| b)
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect::<String>()
            ),
            retriable: status == 0 || status == 429 || status >= 500,
        }),
    }
}

fn body_of(records: &[ConnectRecord]) -> Vec<u8> {
    let values: Vec<Value> = records
        .iter()
        .map(|r| match &r.value {
            None => Value::Null,
            Some(bytes) => serde_json::from_slice(bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
        })
        .collect();
    Value::Array(values).to_string().into_bytes()
}

struct HttpSink {
    connector: String,
    settings: Settings,
}

impl SinkWriter for HttpSink {
    async fn put(
        &mut self,
        records: &[ConnectRecord],
        errors: &ErrorHandler,
        control: &mut watch::Receiver<Control>,
    ) -> Result<()> {
        let settings = &self.settings;
        for batch in records.chunks(settings.batch_max) {
            let body = body_of(batch);
            let mut attempt = 0;
            let mut wait = settings.backoff;
            loop {
                match send(settings, &body).await {
                    Ok(()) => break,
                    Err(failure) if failure.retriable && attempt < settings.max_retries => {
                        attempt += 1;
                        warn!(connector = %self.connector, attempt, message = %failure.message, "HTTP sink request failed; retrying");
                        idle(control, wait).await;
                        wait = (wait * 2).min(Duration::from_secs(60));
                    }
                    Err(failure) => match errors.dead_letter_topic() {
                        Some(topic) => {
                            warn!(connector = %self.connector, message = %failure.message, topic, "HTTP sink batch sent to the dead letter queue");
                            errors
                                .dead_letter(topic, batch, Stage::TaskPut, &failure.message, true)
                                .await?;
                            break;
                        }
                        None => {
                            return Err(ConnectError::bad_request(format!(
                                "HTTP sink gave up after {attempt} retries: {}",
                                failure.message
                            )))
                        }
                    },
                }
            }
        }
        Ok(())
    }
}

pub async fn run(
    context: TaskContext,
    config: Config,
    task_count: u32,
    control: watch::Receiver<Control>,
) -> Result<()> {
    let writer = HttpSink {
        connector: context.connector.clone(),
        settings: settings(&config)?,
    };
    sink::run(context, config, task_count, control, writer).await
}
