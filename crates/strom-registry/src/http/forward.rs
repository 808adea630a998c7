//! Writes (and, on a broker without a replica of `_schemas`, reads) sent on to the writer's
//! registry listener, as Confluent's followers forward to their leader. The caller's
//! `Authorization` header goes along, so the writer checks the same credentials; with
//! HTTPS listeners the connection is TLS too ([`Connect`]).

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::security::{Connect, Io};
use super::{error_response, Call, HttpResponse, BODY_BYTES_MAX, CONTENT_TYPE_V1};
use crate::error::RegistryError;

/// Marks a request forwarded by another broker (so it is never forwarded again).
pub(super) const FORWARDED_HEADER: &str = "x-strom-registry-forwarded";
/// Longest a forwarded write may take, connection included.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends a write to the writer's registry listener and relays its answer, as Confluent's
/// followers forward to their leader.
pub(super) async fn forward(writer: &str, connect: Option<&Connect>, call: Call) -> HttpResponse {
    match tokio::time::timeout(FORWARD_TIMEOUT, forward_call(writer, connect, call)).await {
        Ok(Ok(response)) => response,
        Ok(Err(message)) => error_response(&RegistryError::Forwarding { message }),
        Err(_) => error_response(&RegistryError::Forwarding {
            message: format!("{writer} did not answer within {FORWARD_TIMEOUT:?}"),
        }),
    }
}

async fn forward_call(
    writer: &str,
    connect: Option<&Connect>,
    call: Call,
) -> Result<HttpResponse, String> {
    let stream = tokio::net::TcpStream::connect(writer)
        .await
        .map_err(|e| format!("cannot connect to {writer}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let io: Box<dyn Io> = match connect {
        None => Box::new(stream),
        Some(connect) => {
            let host = writer.rsplit_once(':').map_or(writer, |(host, _)| host);
            connect(stream, host.to_string())
                .await
                .map_err(|e| format!("TLS with {writer}: {e}"))?
        }
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("{writer}: {e}"))?;
    let driver = tokio::spawn(connection);
    let mut request = Request::builder()
        .method(call.method)
        .uri(call.path_and_query)
        .header(hyper::header::HOST, writer)
        .header(FORWARDED_HEADER, "1");
    if let Some(content_type) = call.content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    if let Some(authorization) = call.authorization {
        request = request.header(AUTHORIZATION, authorization);
    }
    let request = request
        .body(Full::new(call.body))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{writer}: {e}"));
    let result = match answer {
        Ok(answer) => {
            let status = answer.status();
            let content_type = answer.headers().get(CONTENT_TYPE).cloned();
            match Limited::new(answer.into_body(), BODY_BYTES_MAX)
                .collect()
                .await
            {
                Ok(body) => {
                    let mut response = Response::new(Full::new(body.to_bytes()));
                    *response.status_mut() = status;
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        content_type.unwrap_or(HeaderValue::from_static(CONTENT_TYPE_V1)),
                    );
                    Ok(response)
                }
                Err(error) => Err(format!("{writer}: answer unreadable: {error}")),
            }
        }
        Err(error) => Err(error),
    };
    driver.abort();
    result
}
