//! The REST listener (`schema.registry.listener`): hyper's HTTP/1.1 server, Confluent's
//! routes, error bodies `{"error_code":N,"message":...}` and media types.
//!
//! Bounded like the broker's HTTP endpoint: at most [`CONNECTIONS_MAX`] connections,
//! request heads of [`HEADER_BYTES_MAX`], bodies of [`BODY_BYTES_MAX`] (413 beyond), and
//! every route that takes the state's lock or reads the log runs on the blocking pool.

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

use crate::error::RegistryError;
use crate::ops::{self, SchemaRequest};
use crate::registry::Registry;

mod forward;
pub mod security;

use forward::{forward, FORWARDED_HEADER};
pub use security::{Access, Connect, Handshake, Io, Operation, Serving};

/// Most connections served at once; more are closed at accept.
pub const CONNECTIONS_MAX: usize = 256;
/// Largest request body (a schema with its JSON envelope); larger gets 413.
pub const BODY_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Read buffer of a connection; larger request heads are refused.
pub const HEADER_BYTES_MAX: usize = 16 * 1024;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is closed after this long, so none is held forever.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(600);
/// The media type of every answer.
pub const CONTENT_TYPE_V1: &str = "application/vnd.schemaregistry.v1+json";
/// Request media types accepted (besides none at all).
const ACCEPTED_TYPES: [&str; 4] = [
    "application/vnd.schemaregistry.v1+json",
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/octet-stream",
];

pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// Serves the registry's REST API on `listener` until the task is aborted: plain HTTP,
/// anyone may call.
pub fn spawn(listener: TcpListener, registry: Arc<Registry>) -> tokio::task::JoinHandle<()> {
    spawn_with(listener, registry, Serving::default())
}

/// Serves the registry's REST API on `listener` with `serving`'s TLS handshake and access
/// checks until the task is aborted.
pub fn spawn_with(
    listener: TcpListener,
    registry: Arc<Registry>,
    serving: Serving,
) -> tokio::task::JoinHandle<()> {
    let serving = Arc::new(serving);
    tokio::spawn(async move {
        let connections = Arc::new(Semaphore::new(CONNECTIONS_MAX));
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(pair) => pair,
                Err(error) => {
                    warn!(%error, "schema registry accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                debug!(%peer, "schema registry connection limit reached; closing");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let registry = registry.clone();
            let serving = serving.clone();
            tokio::spawn(async move {
                let io: Box<dyn Io> = match &serving.handshake {
                    None => Box::new(stream),
                    Some(handshake) => {
                        match tokio::time::timeout(HEADER_READ_TIMEOUT, handshake(stream)).await {
                            Ok(Ok(io)) => io,
                            Ok(Err(error)) => {
                                debug!(%peer, %error, "schema registry TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                debug!(%peer, "schema registry TLS handshake timed out");
                                return;
                            }
                        }
                    }
                };
                let service = service_fn(move |request| {
                    let registry = registry.clone();
                    let serving = serving.clone();
                    async move {
                        Ok::<_, Infallible>(handle(registry, &serving, peer.ip(), request).await)
                    }
                });
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .max_buf_size(HEADER_BYTES_MAX)
                    .keep_alive(true);
                let connection = builder.serve_connection(TokioIo::new(io), service);
                if let Ok(Err(error)) = tokio::time::timeout(CONNECTION_LIFETIME, connection).await
                {
                    debug!(%peer, %error, "schema registry connection ended");
                }
                drop(permit);
            });
        }
    })
}

/// The query string's parameters, percent-decoded.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str) -> Query {
        Query(
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(key, true), decode(value, true))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

fn percent_decode(text: &str) -> String {
    decode(text, false)
}

/// Percent-decodes `text`; `plus_is_space` in a query string.
fn decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[at] {
            b'%' if at + 2 < bytes.len() => match (hex(bytes[at + 1]), hex(bytes[at + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    at += 3;
                }
                _ => {
                    out.push(b'%');
                    at += 1;
                }
            },
            b'+' if plus_is_space => {
                out.push(b' ');
                at += 1;
            }
            byte => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_V1));
    response
}

pub(crate) fn error_response(error: &RegistryError) -> HttpResponse {
    let (status, code) = error.codes();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(
        status,
        &json!({"error_code": code, "message": error.to_string()}),
    )
}

/// An answer: a JSON value, or a schema's text as is.
enum Answer {
    Json(Value),
    Text(String),
}

impl From<Value> for Answer {
    fn from(value: Value) -> Answer {
        Answer::Json(value)
    }
}

/// A request as routed: its body already read (bounded), so a write can be forwarded.
pub(crate) struct Call {
    method: Method,
    path: String,
    query: Query,
    /// `path?query` as received, for forwarding.
    path_and_query: String,
    content_type: Option<HeaderValue>,
    body: Bytes,
    /// Sent here by another broker: answer, never forward again.
    forwarded: bool,
    /// The caller's `Authorization` header, passed on when forwarding.
    authorization: Option<HeaderValue>,
}

async fn handle(
    registry: Arc<Registry>,
    serving: &Serving,
    peer: std::net::IpAddr,
    request: Request<Incoming>,
) -> HttpResponse {
    let method = request.method().clone();
    let result = match read_call(request, serving, peer).await {
        Err(error) => Err(error),
        Ok((call, user)) => match route(registry, &call).await {
            Err(RegistryError::Forward { writer }) => {
                return forward(&writer, serving.connect.as_ref(), call).await
            }
            Ok(Answer::Json(value)) => Ok(Answer::Json(security::filter_subjects(
                serving,
                user.as_deref(),
                peer,
                &call,
                value,
            ))),
            other => other,
        },
    };
    let mut response = match result {
        Ok(Answer::Json(value)) => json_response(StatusCode::OK, &value),
        Ok(Answer::Text(text)) => {
            let mut response = json_response(StatusCode::OK, &Value::Null);
            *response.body_mut() = Full::new(Bytes::from(text));
            response
        }
        Err(error) => {
            if error.codes().0 >= 500 {
                warn!(%error, "schema registry request failed");
            }
            error_response(&error)
        }
    };
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"SchemaRegistry\""),
        );
    }
    if method == Method::HEAD {
        *response.body_mut() = Full::new(Bytes::new());
    }
    response
}

/// Reads a request: its head, and its body (for POST and PUT) after checking its media type
/// and size.
/// Authenticates and authorises the request by its head (before its body is read: a caller
/// without credentials cannot make the registry read a body); the user, when
/// authentication is on.
async fn read_call(
    request: Request<Incoming>,
    serving: &Serving,
    peer: std::net::IpAddr,
) -> Result<(Call, Option<String>), RegistryError> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query_text = request.uri().query().unwrap_or("").to_string();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_string());
    let forwarded = request.headers().contains_key(FORWARDED_HEADER);
    let content_type = request.headers().get(CONTENT_TYPE).cloned();
    let authorization = request.headers().get(hyper::header::AUTHORIZATION).cloned();
    let mut call = Call {
        method,
        path,
        query: Query::parse(&query_text),
        path_and_query,
        content_type,
        body: Bytes::new(),
        forwarded,
        authorization,
    };
    let user = security::check(serving, peer, &call)?;
    if call.method != Method::POST && call.method != Method::PUT {
        return Ok((call, user));
    }
    if let Some(content_type) = &call.content_type {
        let essence = content_type
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !essence.is_empty() && !ACCEPTED_TYPES.contains(&essence.as_str()) {
            return Err(RegistryError::request(
                415,
                format!("HTTP 415 Unsupported Media Type: {essence}"),
            ));
        }
    }
    let declared = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_BYTES_MAX as u64) {
        return Err(too_large());
    }
    let body = Limited::new(request.into_body(), BODY_BYTES_MAX);
    call.body = match tokio::time::timeout(BODY_READ_TIMEOUT, body.collect()).await {
        Err(_) => return Err(RegistryError::request(408, "request body not sent in time")),
        Ok(Err(error))
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(too_large())
        }
        Ok(Err(error)) => {
            return Err(RegistryError::request(
                400,
                format!("bad request body: {error}"),
            ))
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    Ok((call, user))
}

/// The body as JSON (an empty body reads as `{}`).
fn read_json(call: &Call) -> Result<Value, RegistryError> {
    if call.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&call.body).map_err(|error| {
        if error.is_data() {
            RegistryError::request(422, format!("Unrecognized or mistyped field: {error}"))
        } else {
            RegistryError::request(400, format!("Malformed JSON: {error}"))
        }
    })
}

fn too_large() -> RegistryError {
    RegistryError::request(
        413,
        format!("Request body larger than {BODY_BYTES_MAX} bytes"),
    )
}

fn schema_request(call: &Call, normalize: bool) -> Result<ops::NewSchema, RegistryError> {
    let body = read_json(call)?;
    if !body.is_object() {
        return Err(RegistryError::request(
            422,
            "the body must be a JSON object",
        ));
    }
    let parsed: SchemaRequest = serde_json::from_value(body)
        .map_err(|e| RegistryError::request(422, format!("Unrecognized or mistyped field: {e}")))?;
    parsed.check(normalize)
}

async fn route(registry: Arc<Registry>, call: &Call) -> Result<Answer, RegistryError> {
    let (method, path, query) = (&call.method, &call.path, &call.query);
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let deleted = query.flag("deleted");
    let permanent = query.flag("permanent");
    let normalize = query.flag("normalize");
    let default_to_global = query.flag("defaultToGlobal");
    let format = query.get("format").map(str::to_string);
    let owned = |s: &str| s.to_string();
    let get = *method == Method::GET || *method == Method::HEAD;

    let answer: Answer = match (method, segments.as_slice()) {
        (_, [""]) if get => json!({}).into(),
        (_, ["subjects"]) if get => {
            let prefix = query.get("subjectPrefix").unwrap_or("").to_string();
            registry
                .read_async(call.forwarded, move |s| {
                    Ok(ops::list_subjects(s, deleted, &prefix))
                })
                .await?
                .into()
        }
        (_, ["subjects", subject, "versions"]) if get => {
            let subject = owned(subject);
            registry
                .read_async(call.forwarded, move |s| {
                    ops::list_versions(s, &subject, deleted)
                })
                .await?
                .into()
        }
        (&Method::POST, ["subjects", subject, "versions"]) => {
            let subject = owned(subject);
            let new = schema_request(call, normalize)?;
            registry
                .write(call.forwarded, move |s| ops::register(s, &subject, &new))
                .await?
                .into()
        }
        (_, ["subjects", subject, "versions", version]) if get => {
            let (subject, version) = (owned(subject), ops::parse_version(version)?);
            registry
                .read_async(call.forwarded, move |s| {
                    ops::get_version(s, &subject, version, deleted, format.as_deref())
                })
                .await?
                .into()
        }
        (_, ["subjects", subject, "versions", version, "schema"]) if get => {
            let (subject, version) = (owned(subject), ops::parse_version(version)?);
            Answer::Text(
                registry
                    .read_async(call.forwarded, move |s| {
                        ops::get_version_text(s, &subject, version, deleted, format.as_deref())
                    })
                    .await?,
            )
        }
        (_, ["subjects", subject, "versions", version, "referencedby"]) if get => {
            let (subject, version) = (owned(subject), ops::parse_version(version)?);
            registry
                .read_async(call.forwarded, move |s| {
                    ops::referenced_by(s, &subject, version)
                })
                .await?
                .into()
        }
        (&Method::DELETE, ["subjects", subject, "versions", version]) => {
            let (subject, version) = (owned(subject), ops::parse_version(version)?);
            registry
                .write(call.forwarded, move |s| {
                    ops::delete_version(s, &subject, version, permanent)
                })
                .await?
                .into()
        }
        (&Method::POST, ["subjects", subject]) => {
            let subject = owned(subject);
            let new = schema_request(call, normalize)?;
            registry
                .read_async(call.forwarded, move |s| {
                    ops::lookup(s, &subject, &new, deleted)
                })
                .await?
                .into()
        }
        (&Method::DELETE, ["subjects", subject]) => {
            let subject = owned(subject);
            registry
                .write(call.forwarded, move |s| {
                    ops::delete_subject(s, &subject, permanent)
                })
                .await?
                .into()
        }
        (_, ["schemas", "types"]) if get => ops::schema_types().into(),
        (_, ["schemas"]) if get => {
            let prefix = query.get("subjectPrefix").unwrap_or("").to_string();
            let latest_only = query.flag("latestOnly");
            registry
                .read_async(call.forwarded, move |s| {
                    Ok(ops::list_schemas(s, deleted, latest_only, &prefix))
                })
                .await?
                .into()
        }
        (_, ["schemas", "ids", id]) if get => {
            let id = ops::parse_id(id)?;
            registry
                .read_async(call.forwarded, move |s| {
                    ops::schema_by_id(s, id, format.as_deref())
                })
                .await?
                .into()
        }
        (_, ["schemas", "ids", id, "schema"]) if get => {
            let id = ops::parse_id(id)?;
            Answer::Text(
                registry
                    .read_async(call.forwarded, move |s| {
                        ops::schema_text_by_id(s, id, format.as_deref())
                    })
                    .await?,
            )
        }
        (_, ["schemas", "ids", id, "versions"]) if get => {
            let id = ops::parse_id(id)?;
            registry
                .read_async(call.forwarded, move |s| ops::id_versions(s, id, deleted))
                .await?
                .into()
        }
        (_, ["schemas", "ids", id, "subjects"]) if get => {
            let id = ops::parse_id(id)?;
            registry
                .read_async(call.forwarded, move |s| ops::id_subjects(s, id, deleted))
                .await?
                .into()
        }
        (_, ["config"]) if get => registry
            .read_async(call.forwarded, |s| ops::get_config(s, None, true))
            .await?
            .into(),
        (_, ["config", subject]) if get => {
            let subject = owned(subject);
            registry
                .read_async(call.forwarded, move |s| {
                    ops::get_config(s, Some(&subject), default_to_global)
                })
                .await?
                .into()
        }
        (&Method::PUT, ["config", rest @ ..]) if rest.len() <= 1 => {
            let subject = rest.first().map(|s| owned(s));
            let level = ops::parse_level(&read_json(call)?)?;
            registry
                .write(call.forwarded, move |_| {
                    ops::set_config(subject.as_deref(), level)
                })
                .await?
                .into()
        }
        (&Method::DELETE, ["config", rest @ ..]) if rest.len() <= 1 => {
            let subject = rest.first().map(|s| owned(s));
            registry
                .write(call.forwarded, move |s| {
                    ops::delete_config(s, subject.as_deref())
                })
                .await?
                .into()
        }
        (_, ["mode"]) if get => registry
            .read_async(call.forwarded, |s| ops::get_mode(s, None, true))
            .await?
            .into(),
        (_, ["mode", subject]) if get => {
            let subject = owned(subject);
            registry
                .read_async(call.forwarded, move |s| {
                    ops::get_mode(s, Some(&subject), default_to_global)
                })
                .await?
                .into()
        }
        (&Method::PUT, ["mode", rest @ ..]) if rest.len() <= 1 => {
            let subject = rest.first().map(|s| owned(s));
            let mode = ops::parse_mode(&read_json(call)?)?;
            let force = query.flag("force");
            registry
                .write(call.forwarded, move |s| {
                    ops::set_mode(s, subject.as_deref(), mode, force)
                })
                .await?
                .into()
        }
        (&Method::DELETE, ["mode", rest @ ..]) if rest.len() <= 1 => {
            let subject = rest.first().map(|s| owned(s));
            registry
                .write(call.forwarded, move |s| {
                    ops::delete_mode(s, subject.as_deref())
                })
                .await?
                .into()
        }
        (&Method::POST, ["compatibility", "subjects", subject, "versions", rest @ ..])
            if rest.len() <= 1 =>
        {
            let subject = owned(subject);
            let version = rest.first().map(|v| ops::parse_version(v)).transpose()?;
            let verbose = query.flag("verbose");
            let new = schema_request(call, normalize)?;
            registry
                .read_async(call.forwarded, move |s| {
                    ops::compatibility(s, &subject, version, &new, verbose)
                })
                .await?
                .into()
        }
        (_, ["subjects" | "schemas" | "config" | "mode" | "compatibility", ..]) => {
            return Err(RegistryError::request(
                405,
                format!("HTTP 405 Method Not Allowed: {method} {path}"),
            ))
        }
        _ => return Err(RegistryError::request(404, "HTTP 404 Not Found")),
    };
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_encoded_text_when_decoded_should_restore_bytes_and_keep_stray_percent() {
        assert_eq!(percent_decode("a%2Fb%20c"), "a/b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
