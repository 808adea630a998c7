//! The REST API, with Kafka Connect's routes, status codes and error bodies
//! (`{"error_code": <HTTP status>, "message": ...}`).
//!
//! Bounded like the broker's HTTP endpoint: at most [`CONNECTIONS_MAX`] connections,
//! request heads of [`HEADER_BYTES_MAX`] and bodies of [`BODY_BYTES_MAX`] (413 beyond).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::error::{ConnectError, Result};
use crate::herder::Herder;
use crate::plugins::Plugin;
use crate::state::{config_from_json, TargetState};

/// Most connections served at once; more are closed at accept.
pub const CONNECTIONS_MAX: usize = 128;
/// Largest request body (a connector config); larger gets 413.
pub const BODY_BYTES_MAX: usize = 1024 * 1024;
/// Read buffer of a connection; larger request heads are refused.
pub const HEADER_BYTES_MAX: usize = 16 * 1024;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECTION_LIFETIME: Duration = Duration::from_secs(600);

type HttpResponse = Response<Full<Bytes>>;

/// Serves the REST API on `listener` until the task is aborted.
pub fn spawn(listener: TcpListener, herder: Arc<Herder>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let connections = Arc::new(Semaphore::new(CONNECTIONS_MAX));
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(pair) => pair,
                Err(error) => {
                    warn!(%error, "connect REST accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                debug!(%peer, "connect REST connection limit reached; closing");
                continue;
            };
            let herder = herder.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let herder = herder.clone();
                    async move { Ok::<_, Infallible>(handle(herder, request).await) }
                });
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .max_buf_size(HEADER_BYTES_MAX)
                    .keep_alive(true);
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                if let Ok(Err(error)) = tokio::time::timeout(CONNECTION_LIFETIME, connection).await
                {
                    debug!(%peer, %error, "connect REST connection ended");
                }
                drop(permit);
            });
        }
    })
}

fn json_response(status: u16, body: Option<&Value>) -> HttpResponse {
    let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if body.is_some() {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}

fn error_response(status: u16, message: &str) -> HttpResponse {
    json_response(
        status,
        Some(&json!({"error_code": status, "message": message})),
    )
}

/// An answer: status and optional body.
type Answer = (u16, Option<Value>);

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[at] == b'%' && at + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[at + 1]), hex(bytes[at + 2])) {
                out.push((high * 16 + low) as u8);
                at += 3;
                continue;
            }
        }
        out.push(bytes[at]);
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_flag(query: &str, key: &str) -> Result<bool> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == key {
            return match v.to_ascii_lowercase().as_str() {
                "true" | "" => Ok(true),
                "false" => Ok(false),
                _ => Err(ConnectError::bad_request(format!(
                    "Query parameter {key} must be true or false, not {v:?}"
                ))),
            };
        }
    }
    Ok(false)
}

fn parse_body(body: &Bytes) -> Result<Value> {
    if body.is_empty() {
        return Err(ConnectError::bad_request("Request body is missing"));
    }
    serde_json::from_slice(body).map_err(|e| {
        ConnectError::bad_request(format!("Cannot deserialize the request body as JSON: {e}"))
    })
}

fn config_body(body: &Bytes) -> Result<crate::plugins::Config> {
    let value = parse_body(body)?;
    if !value.is_object() {
        return Err(ConnectError::bad_request(
            "The connector config must be a JSON object of string values",
        ));
    }
    Ok(config_from_json(&value))
}

fn task_id(text: &str) -> Result<u32> {
    text.parse().map_err(|_| {
        ConnectError::bad_request(format!("Task id {text:?} is not a non-negative integer"))
    })
}

async fn handle(herder: Arc<Herder>, request: Request<Incoming>) -> HttpResponse {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let body = match tokio::time::timeout(
        BODY_READ_TIMEOUT,
        Limited::new(request.into_body(), BODY_BYTES_MAX).collect(),
    )
    .await
    {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => return error_response(413, "Request body is too large"),
        Err(_) => return error_response(408, "Request body was not received in time"),
    };
    match route(&herder, &method, &path, &query, &body).await {
        Ok((status, body)) => json_response(status, body.as_ref()),
        Err(error) => error_response(error.status(), &error.to_string()),
    }
}

async fn route(
    herder: &Herder,
    method: &Method,
    path: &str,
    query: &str,
    body: &Bytes,
) -> Result<Answer> {
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let answer = match (method.clone(), segments.as_slice()) {
        (Method::GET, []) => (
            200,
            Some(
                json!({"version": env!("CARGO_PKG_VERSION"), "commit": "strom", "kafka_cluster_id": null}),
            ),
        ),
        (Method::GET, ["connector-plugins"]) => (
            200,
            Some(Value::Array(
                Plugin::ALL.iter().map(|p| p.describe()).collect(),
            )),
        ),
        (Method::PUT, ["connector-plugins", plugin, "config", "validate"]) => {
            let config = config_body(body)?;
            let plugin = Plugin::find(plugin).ok_or_else(|| ConnectError::UnknownPlugin {
                class: plugin.to_string(),
            })?;
            (200, Some(plugin.validate(&config)))
        }
        (Method::GET, ["connectors"]) => {
            let names = herder.list();
            let expand: Vec<&str> = query
                .split('&')
                .filter_map(|p| p.strip_prefix("expand="))
                .collect();
            if expand.is_empty() {
                (200, Some(json!(names)))
            } else {
                let mut out = serde_json::Map::new();
                for name in names {
                    let mut item = serde_json::Map::new();
                    if expand.contains(&"status") {
                        item.insert("status".into(), herder.status(&name)?);
                    }
                    if expand.contains(&"info") {
                        item.insert("info".into(), herder.info(&name)?);
                    }
                    out.insert(name, Value::Object(item));
                }
                (200, Some(Value::Object(out)))
            }
        }
        (Method::POST, ["connectors"]) => {
            let value = parse_body(body)?;
            let name = value["name"].as_str().ok_or_else(|| {
                ConnectError::bad_request("Connector name is null or empty: the body needs {\"name\": ..., \"config\": {...}}")
            })?;
            if !value["config"].is_object() {
                return Err(ConnectError::bad_request(
                    "Connector config is missing or not a JSON object",
                ));
            }
            let config = config_from_json(&value["config"]);
            herder.put_config(name, config, true).await?;
            (201, Some(herder.info(name)?))
        }
        (Method::GET, ["connectors", name]) => (200, Some(herder.info(name)?)),
        (Method::DELETE, ["connectors", name]) => {
            herder.delete(name).await?;
            (204, None)
        }
        (Method::GET, ["connectors", name, "config"]) => (200, Some(herder.config(name)?)),
        (Method::PUT, ["connectors", name, "config"]) => {
            let config = config_body(body)?;
            let created = herder.put_config(name, config, false).await?;
            (if created { 201 } else { 200 }, Some(herder.info(name)?))
        }
        (Method::GET, ["connectors", name, "status"]) => (200, Some(herder.status(name)?)),
        (Method::GET, ["connectors", name, "tasks"]) => (200, Some(herder.tasks(name)?)),
        (Method::GET, ["connectors", name, "tasks", id, "status"]) => {
            (200, Some(herder.task_status(name, task_id(id)?)?))
        }
        (Method::POST, ["connectors", name, "tasks", id, "restart"]) => {
            herder.restart_task(name, task_id(id)?).await?;
            (204, None)
        }
        (Method::POST, ["connectors", name, "restart"]) => {
            let include_tasks = query_flag(query, "includeTasks")?;
            let only_failed = query_flag(query, "onlyFailed")?;
            let status = herder.restart(name, include_tasks, only_failed).await?;
            if include_tasks || only_failed {
                (202, Some(status))
            } else {
                (204, None)
            }
        }
        (Method::PUT, ["connectors", name, "pause"]) => {
            herder.set_target(name, TargetState::Paused).await?;
            (202, None)
        }
        (Method::PUT, ["connectors", name, "resume"]) => {
            herder.set_target(name, TargetState::Started).await?;
            (202, None)
        }
        (Method::PUT, ["connectors", name, "stop"]) => {
            herder.set_target(name, TargetState::Stopped).await?;
            (204, None)
        }
        (Method::GET, ["connectors", name, "offsets"]) => (200, Some(herder.offsets(name).await?)),
        (Method::PATCH, ["connectors", name, "offsets"]) => {
            let value = parse_body(body)?;
            (200, Some(herder.alter_offsets(name, Some(&value)).await?))
        }
        (Method::DELETE, ["connectors", name, "offsets"]) => {
            (200, Some(herder.alter_offsets(name, None).await?))
        }
        _ => {
            return Ok((
                404,
                Some(json!({"error_code": 404, "message": "HTTP 404 Not Found"})),
            ));
        }
    };
    Ok(answer)
}
