//! The broker's HTTP endpoint: `/health`, `/ready`, `/metrics` (Prometheus text format) and
//! the built-in web console (`/` and its JSON API under `/api/`, including the last 15
//! minutes of rates, latency, lag and partition health at `/api/history`, which the
//! console charts).
//!
//! A separate listener (`http.listener`, default `127.0.0.1:9644`, empty = off), served by
//! hyper's HTTP/1.1 connection driver. It must never slow the Kafka request path, so:
//! - every route that reads broker state runs on tokio's blocking pool
//!   ([`tokio::task::spawn_blocking`]): partition mutexes and segment reads never stall the
//!   runtime workers that serve Kafka connections;
//! - it reads the same cheap snapshots the Kafka handlers read (the metadata image `Arc`,
//!   log offsets under each partition's short lock) and never holds two locks at once;
//! - the work per request is bounded: topic lists are paged (at most [`PAGE_SIZE_MAX`]
//!   topics' logs are looked at), the message browser reads at most
//!   [`browse::BROWSE_BYTES_MAX`] bytes, request bodies at most [`BODY_BYTES_MAX`], headers
//!   at most [`HEADER_BYTES_MAX`], and at most [`CONNECTIONS_MAX`] HTTP connections are
//!   served at once (more are closed at accept).
//!
//! Mutating routes (create/delete topic, reset offsets) accept only JSON bodies and refuse
//! cross-origin requests, so a web page the operator happens to visit cannot drive them
//! with a plain form post.

mod api;
pub mod browse;
mod console;
mod groups;
pub mod health;
pub mod history;
mod history_api;
pub mod prometheus;
mod query;
mod schemas;
mod view;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::state::Broker;

/// Most HTTP connections served at once.
pub const CONNECTIONS_MAX: usize = 64;
/// Largest request body accepted (JSON for create-topic or reset-offsets).
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// Read buffer of a connection; request heads larger than this get 431.
pub const HEADER_BYTES_MAX: usize = 16 * 1024;
/// Time a client has to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is closed after this long, keep-alive or not, so none is held forever.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// Most topics one page of the topic list returns.
pub const PAGE_SIZE_MAX: usize = 200;

pub type HttpResponse = Response<Full<Bytes>>;

/// Aborts a task when dropped, so the sampler ends with the endpoint's task.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves the HTTP endpoint on `listener` until the task is aborted, and keeps the
/// console's [`history`] (sampled every [`history::SAMPLE_INTERVAL_MS`]) while it runs.
pub fn spawn(listener: TcpListener, broker: Arc<Broker>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let history: history_api::SharedHistory = Default::default();
        let _sampler = AbortOnDrop(history_api::spawn_sampler(broker.clone(), history.clone()));
        let connections = Arc::new(Semaphore::new(CONNECTIONS_MAX));
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(pair) => pair,
                Err(error) => {
                    warn!(%error, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                debug!(%peer, "http connection limit reached; closing");
                drop(stream);
                continue;
            };
            let broker = broker.clone();
            let history = history.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let broker = broker.clone();
                    let history = history.clone();
                    async move { Ok::<_, Infallible>(handle(broker, history, request).await) }
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
                    debug!(%peer, %error, "http connection ended");
                }
                drop(permit);
            });
        }
    })
}

/// Routes one request. Errors become JSON `{"error": ...}` answers with a fitting status.
async fn handle(
    broker: Arc<Broker>,
    history: history_api::SharedHistory,
    request: Request<Incoming>,
) -> HttpResponse {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = query::Query::parse(request.uri().query().unwrap_or(""));
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(query::percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();

    let mutates = method == Method::POST || method == Method::DELETE;
    if mutates && segments.first() == Some(&"api") {
        if let Err(error) = check_mutation(&request) {
            return error.into_response();
        }
    }
    let result = match (&method, segments.as_slice()) {
        (&Method::GET | &Method::HEAD, ["health"]) => Ok(health::health()),
        (&Method::GET | &Method::HEAD, ["ready"]) => blocking(broker, health::ready).await,
        (&Method::GET | &Method::HEAD, ["metrics"]) => {
            blocking(broker, prometheus::metrics_response).await
        }
        (&Method::GET | &Method::HEAD, [""] | ["index.html"]) => Ok(console::index()),
        (&Method::GET | &Method::HEAD, ["console", file]) => console::asset(file),
        (&Method::GET, ["api", "overview"]) => blocking(broker, api::overview).await,
        (&Method::GET, ["api", "history"]) => {
            blocking(broker, move |broker| {
                history_api::history(broker, &history, &query)
            })
            .await
        }
        (&Method::GET, ["api", "topics"]) => {
            blocking(broker, move |broker| api::topics(broker, &query)).await
        }
        (&Method::POST, ["api", "topics"]) => match read_json(request).await {
            Ok(body) => api::create_topic(&broker, body).await,
            Err(error) => Err(error),
        },
        (&Method::GET, ["api", "topics", name]) => {
            let name = name.to_string();
            blocking(broker, move |broker| api::topic(broker, &name)).await
        }
        (&Method::DELETE, ["api", "topics", name]) => api::delete_topic(&broker, name).await,
        (&Method::GET, ["api", "topics", name, "messages"]) => {
            let name = name.to_string();
            blocking(broker, move |broker| {
                browse::messages(broker, &name, &query)
            })
            .await
        }
        (&Method::GET, ["api", "schemas"]) => schemas::subjects(&broker).await,
        (&Method::GET, ["api", "schemas", subject]) => {
            schemas::subject(&broker, subject.to_string()).await
        }
        (&Method::GET, ["api", "groups"]) => blocking(broker, groups::list).await,
        (&Method::GET, ["api", "groups", group]) => {
            let group = group.to_string();
            blocking(broker, move |broker| groups::describe(broker, &group)).await
        }
        (&Method::POST, ["api", "groups", group, "reset-offsets"]) => {
            let group = group.to_string();
            match (
                read_json(request).await,
                broker.groups().ensure_loaded().await,
            ) {
                (Err(error), _) => Err(error),
                (_, Err(error)) => Err(HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("committed offsets are not loaded yet ({error:?}); try again"),
                )),
                // Async: the answer waits for the replicas, with no lock held.
                (Ok(body), Ok(())) => groups::reset_offsets(&broker, &group, body).await,
            }
        }
        (_, ["health" | "ready" | "metrics" | "api", ..]) => Err(HttpError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}, or no such route"),
        )),
        _ => Err(HttpError::not_found(format!("no route for {path}"))),
    };
    let mut response = result.unwrap_or_else(HttpError::into_response);
    if method == Method::HEAD {
        *response.body_mut() = Full::new(Bytes::new());
    }
    response
}

/// Runs `work` on the blocking pool (it may take partition locks or read segment files).
async fn blocking<F>(broker: Arc<Broker>, work: F) -> Result<HttpResponse, HttpError>
where
    F: FnOnce(&Broker) -> Result<HttpResponse, HttpError> + Send + 'static,
{
    match tokio::task::spawn_blocking(move || work(&broker)).await {
        Ok(result) => result,
        Err(error) => Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("request task failed: {error}"),
        )),
    }
}

/// Mutations must be JSON and same-origin: a browser sends neither a JSON content type nor
/// a foreign `Origin` from a plain form without a CORS preflight, which we never grant.
fn check_mutation(request: &Request<Incoming>) -> Result<(), HttpError> {
    let is_json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json && request.method() != Method::DELETE {
        return Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send a JSON body with Content-Type: application/json",
        ));
    }
    let origin = request
        .headers()
        .get("origin")
        .and_then(|v| v.to_str().ok());
    let host = request.headers().get("host").and_then(|v| v.to_str().ok());
    if let Some(origin) = origin {
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or(origin);
        if Some(origin_host) != host {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                "cross-origin requests may not change the cluster",
            ));
        }
    }
    Ok(())
}

async fn read_json(request: Request<Incoming>) -> Result<serde_json::Value, HttpError> {
    let body = Limited::new(request.into_body(), BODY_BYTES_MAX);
    let collected = tokio::time::timeout(BODY_READ_TIMEOUT, body.collect())
        .await
        .map_err(|_| HttpError::bad_request("request body not received in time"))?
        .map_err(|error| {
            HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body unreadable or over {BODY_BYTES_MAX} bytes: {error}"),
            )
        })?;
    serde_json::from_slice(&collected.to_bytes())
        .map_err(|error| HttpError::bad_request(format!("request body is not JSON: {error}")))
}

/// An answer that is not a success.
#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        HttpError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        HttpError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        HttpError::new(StatusCode::CONFLICT, message)
    }

    pub fn into_response(self) -> HttpResponse {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
        }
        json_response(
            self.status,
            &Body {
                error: &self.message,
            },
        )
    }
}

pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|error| {
        format!("{{\"error\":\"response encoding failed: {error}\"}}").into_bytes()
    });
    response(status, "application/json", Bytes::from(bytes))
}

pub fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> HttpResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}
