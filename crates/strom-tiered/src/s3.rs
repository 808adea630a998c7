//! A small S3 client: PUT, ranged GET, DELETE and bucket creation on an S3-compatible
//! endpoint over plain HTTP/1.1 (path-style URLs, SigV4 header signing). One connection
//! per request, each bounded by [`REQUEST_TIMEOUT`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

use crate::sigv4::{self, Credentials};
use crate::TieredError;

/// Longest one request (connect, send, whole answer) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub struct S3Client {
    /// `host:port` of the endpoint.
    authority: String,
    bucket: String,
    credentials: Credentials,
}

impl S3Client {
    /// `endpoint` is `http://host:port` (TLS endpoints are not supported yet).
    pub fn new(
        endpoint: &str,
        bucket: &str,
        credentials: Credentials,
    ) -> Result<Self, TieredError> {
        let authority = endpoint
            .strip_prefix("http://")
            .ok_or_else(|| TieredError::Config {
                key: "remote.log.storage.s3.endpoint",
                reason: format!(
                    "{endpoint:?} must start with http:// (https is not supported yet)"
                ),
            })?
            .trim_end_matches('/')
            .to_string();
        if authority.is_empty() || bucket.is_empty() {
            return Err(TieredError::Config {
                key: "remote.log.storage.s3.bucket",
                reason: "the endpoint and the bucket must both be set".into(),
            });
        }
        Ok(S3Client {
            authority,
            bucket: bucket.to_string(),
            credentials,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket; one that exists already (owned by us) is fine.
    pub async fn create_bucket(&self) -> Result<(), TieredError> {
        let path = format!("/{}", self.bucket);
        match self.send("PUT", &path, Bytes::new(), None).await {
            Ok(_) => Ok(()),
            Err(TieredError::Status { status: 409, .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), TieredError> {
        self.send("PUT", &self.object_path(key), body, None)
            .await
            .map(|_| ())
    }

    /// The whole object, or `length` bytes from `position`.
    pub async fn get(&self, key: &str, range: Option<(u64, u64)>) -> Result<Bytes, TieredError> {
        self.send("GET", &self.object_path(key), Bytes::new(), range)
            .await
    }

    /// Deletes an object; a missing one is not an error (S3 answers 204 either way).
    pub async fn delete(&self, key: &str) -> Result<(), TieredError> {
        self.send("DELETE", &self.object_path(key), Bytes::new(), None)
            .await
            .map(|_| ())
    }

    fn object_path(&self, key: &str) -> String {
        format!("/{}/{}", self.bucket, key)
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        range: Option<(u64, u64)>,
    ) -> Result<Bytes, TieredError> {
        let request = self.send_once(method, path, body, range);
        match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Ok(result) => result,
            Err(_) => Err(TieredError::Transport {
                operation: method.to_string(),
                path: path.to_string(),
                reason: format!("no answer within {REQUEST_TIMEOUT:?}"),
            }),
        }
    }

    async fn send_once(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        range: Option<(u64, u64)>,
    ) -> Result<Bytes, TieredError> {
        let transport = |reason: String| TieredError::Transport {
            operation: method.to_string(),
            path: path.to_string(),
            reason,
        };
        let unix_seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs() as i64)
            .unwrap_or(0);
        let (date, amz_date) = sigv4::amz_dates(unix_seconds);
        let payload_sha256 = if body.is_empty() {
            sigv4::EMPTY_SHA256.to_string()
        } else {
            sigv4::sha256_hex(&body)
        };
        let encoded_path = sigv4::encode_path(path);
        let authorization = sigv4::authorization(
            &self.credentials,
            method,
            &encoded_path,
            "",
            &self.authority,
            &payload_sha256,
            &amz_date,
            &date,
        );
        let mut builder = Request::builder()
            .method(method)
            .uri(&encoded_path)
            .header("host", &self.authority)
            .header("x-amz-date", &amz_date)
            .header("x-amz-content-sha256", &payload_sha256)
            .header("authorization", authorization)
            .header("content-length", body.len());
        if let Some((position, length)) = range {
            builder = builder.header(
                "range",
                format!("bytes={position}-{}", position + length.max(1) - 1),
            );
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|error| transport(error.to_string()))?;
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|error| transport(format!("connect: {error}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| transport(error.to_string()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| transport(error.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|error| transport(error.to_string()))?
            .to_bytes();
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_string();
            return Err(TieredError::Status {
                operation: method.to_string(),
                path: path.to_string(),
                status,
                body: text,
            });
        }
        Ok(bytes)
    }
}
