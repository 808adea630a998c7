//! One TCP connection to one broker, with pipelined requests.
//!
//! A writer task drains a bounded queue of encoded frames onto the socket; a reader task
//! reads response frames and hands each to the caller waiting on its correlation id. A
//! semaphore caps the requests in flight, every request has a timeout, and a response's
//! declared size is checked against a cap before a byte of it is buffered.
//!
//! At connect the connection asks the broker for its API versions (ApiVersions v3, falling
//! back to v0 as Kafka's own clients do) and from then on sends each API at
//! `min(client max, broker max)`, so the same client works against Strom and real Kafka.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;

use crate::error::{ClientError, Result};

/// Largest response the client buffers. Fetch responses are bounded by the request's
/// `max_bytes`; this is the backstop against a broken or hostile peer.
pub const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;

/// The versions of each API this client can speak, as (key, min, max). The highest
/// version actually sent is the lower of this max and the broker's.
///
/// Produce stops at v12 because v13 addresses topics by id only; Fetch goes to v16, where
/// v13+ addresses topics by id (the consumer handles both).
pub const CLIENT_API_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
];

/// The range this client speaks for `api_key`, if any.
pub fn client_range(api_key: ApiKey) -> Option<(i16, i16)> {
    CLIENT_API_VERSIONS
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .map(|&(_, min, max)| (min, max))
}

/// Picks the version to send: the highest both sides speak.
pub fn negotiate(client: (i16, i16), broker: Option<(i16, i16)>) -> Option<i16> {
    let (broker_min, broker_max) = broker?;
    let max = client.1.min(broker_max);
    (max >= client.0.max(broker_min)).then_some(max)
}

#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub client_id: String,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Requests sent but not yet answered, per connection.
    pub in_flight_requests_max: usize,
    pub response_bytes_max: usize,
    /// Highest version to send per API, below what both sides support (for testing old
    /// code paths, or working around a broker bug).
    pub version_caps: Vec<(ApiKey, i16)>,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: "strom".to_string(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            in_flight_requests_max: 64,
            response_bytes_max: RESPONSE_BYTES_MAX,
            version_caps: Vec::new(),
        }
    }
}

/// Frames queued for the writer task. Small: the in-flight semaphore is the real bound.
const WRITE_QUEUE_FRAMES_MAX: usize = 64;

type Waiter = oneshot::Sender<Result<Bytes>>;

/// A frame for the writer task; `written` is told once it is flushed to the socket.
struct OutgoingFrame {
    frame: Bytes,
    written: Option<oneshot::Sender<()>>,
}

struct State {
    address: String,
    pending: Mutex<HashMap<i32, Waiter>>,
    closed: AtomicBool,
}

impl State {
    fn fail_all(&self, error: impl Fn() -> ClientError) {
        self.closed.store(true, Ordering::SeqCst);
        let waiters: Vec<Waiter> = {
            let mut pending = self.pending.lock().expect("pending lock");
            pending.drain().map(|(_, waiter)| waiter).collect()
        };
        for waiter in waiters {
            let _ = waiter.send(Err(error()));
        }
    }
}

struct Shared {
    state: Arc<State>,
    config: ConnectionConfig,
    frames: mpsc::Sender<OutgoingFrame>,
    next_correlation_id: AtomicI32,
    in_flight: Arc<Semaphore>,
    broker_versions: HashMap<i16, (i16, i16)>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// A connection to one broker. Cheap to clone; the socket closes when the last clone
/// is dropped.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.shared.state.address)
            .field("closed", &self.is_closed())
            .finish()
    }
}

fn api_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// Encodes one request frame: size, header (v1/v2 per API and version), body.
pub fn encode_request_frame<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) -> Result<Bytes> {
    let encode_error = |reason: String| ClientError::Encode {
        api: api_name::<R>(),
        version,
        reason,
    };
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut frame = BytesMut::with_capacity(256);
    frame.put_i32(0);
    header
        .encode(&mut frame, R::header_version(version))
        .map_err(|e| encode_error(e.to_string()))?;
    request
        .encode(&mut frame, version)
        .map_err(|e| encode_error(e.to_string()))?;
    let size = (frame.len() - 4) as i32;
    frame[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame.freeze())
}

impl Connection {
    /// Connects and performs the ApiVersions handshake.
    pub async fn connect(address: &str, config: ConnectionConfig) -> Result<Connection> {
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| ClientError::ConnectTimeout {
                address: address.to_string(),
                timeout_ms: config.connect_timeout.as_millis() as u64,
            })?
            .map_err(|source| ClientError::Connect {
                address: address.to_string(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let unversioned = Connection::start(stream, address, config, HashMap::new());
        let versions = unversioned.api_versions_handshake().await?;
        tracing::debug!(
            broker = address,
            negotiated = ?CLIENT_API_VERSIONS
                .iter()
                .map(|&(key, min, max)| (api_key_name(key), negotiate((min, max), versions.get(&(key as i16)).copied())))
                .collect::<Vec<_>>(),
            "connected"
        );
        let stream_parts = Arc::try_unwrap(unversioned.shared);
        // The handshake ran on a connection without a version table; rebuild the shared
        // part around the same tasks and socket with the table filled in.
        let shared = match stream_parts {
            Ok(mut shared) => {
                shared.broker_versions = versions;
                shared
            }
            Err(_) => unreachable!("the handshake keeps no clone of the connection"),
        };
        Ok(Connection {
            shared: Arc::new(shared),
        })
    }

    fn start(
        stream: TcpStream,
        address: &str,
        config: ConnectionConfig,
        broker_versions: HashMap<i16, (i16, i16)>,
    ) -> Connection {
        let (read_half, write_half) = stream.into_split();
        let state = Arc::new(State {
            address: address.to_string(),
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        let (frames, frames_rx) = mpsc::channel(WRITE_QUEUE_FRAMES_MAX);
        let reader = tokio::spawn(read_loop(
            BufReader::with_capacity(64 * 1024, read_half),
            state.clone(),
            config.response_bytes_max,
        ));
        let writer = tokio::spawn(write_loop(
            BufWriter::with_capacity(64 * 1024, write_half),
            frames_rx,
            state.clone(),
        ));
        let in_flight = Arc::new(Semaphore::new(config.in_flight_requests_max.max(1)));
        Connection {
            shared: Arc::new(Shared {
                state,
                config,
                frames,
                next_correlation_id: AtomicI32::new(0),
                in_flight,
                broker_versions,
                reader,
                writer,
            }),
        }
    }

    pub fn address(&self) -> &str {
        &self.shared.state.address
    }

    /// True once the socket failed or closed; the owner should reconnect.
    pub fn is_closed(&self) -> bool {
        self.shared.state.closed.load(Ordering::SeqCst)
    }

    /// The broker's (min, max) for an API, as learned at connect.
    pub fn broker_range(&self, api_key: ApiKey) -> Option<(i16, i16)> {
        self.shared.broker_versions.get(&(api_key as i16)).copied()
    }

    /// True when both sides speak some version of the API.
    pub fn supports(&self, api_key: ApiKey) -> bool {
        self.version_for_key(api_key).is_ok()
    }

    pub fn version_for_key(&self, api_key: ApiKey) -> Result<i16> {
        let mut client = client_range(api_key).unwrap_or((0, -1));
        if let Some(&(_, cap)) = self
            .shared
            .config
            .version_caps
            .iter()
            .find(|(key, _)| *key == api_key)
        {
            client.1 = client.1.min(cap);
        }
        let broker = self.broker_range(api_key);
        negotiate(client, broker).ok_or_else(|| ClientError::UnsupportedApi {
            api: api_key_name(api_key),
            address: self.address().to_string(),
            client_min: client.0,
            client_max: client.1,
            broker,
        })
    }

    /// Sends a request at the negotiated version and waits for its response.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response> {
        let version = self.version_for_key(api_key_of::<R>())?;
        self.send_version(request, version).await
    }

    /// Sends a request at an explicit version.
    pub async fn send_version<R: Request>(&self, request: &R, version: i16) -> Result<R::Response> {
        let frame = self
            .round_trip::<R>(request, version, true)
            .await?
            .expect("a response was expected");
        decode_response::<R>(frame, version, self.address())
    }

    /// Sends a request the broker will not answer (Produce with acks=0). Returns once
    /// the frame is queued for the socket.
    pub async fn send_no_response<R: Request>(&self, request: &R) -> Result<()> {
        let version = self.version_for_key(api_key_of::<R>())?;
        self.round_trip::<R>(request, version, false).await?;
        Ok(())
    }

    async fn round_trip<R: Request>(
        &self,
        request: &R,
        version: i16,
        expect_response: bool,
    ) -> Result<Option<Bytes>> {
        match self.enqueue(request, version, expect_response).await? {
            Some(pending) => pending.wait_frame().await.map(Some),
            None => Ok(None),
        }
    }

    /// Queues a request for the socket and returns a handle on its response. Requests
    /// queued one after another from one task reach the broker in that order (the
    /// in-flight semaphore and the write queue are both FIFO), which is what keeps a
    /// partition's batches in order when several are in flight.
    pub async fn enqueue_version<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<PendingResponse<R>> {
        let pending = self
            .enqueue(request, version, true)
            .await?
            .expect("a response was expected");
        Ok(PendingResponse {
            pending,
            version,
            marker: std::marker::PhantomData,
        })
    }

    /// [`Connection::enqueue_version`] at the negotiated version.
    pub async fn enqueue_request<R: Request>(&self, request: &R) -> Result<PendingResponse<R>> {
        let version = self.version_for_key(api_key_of::<R>())?;
        self.enqueue_version(request, version).await
    }

    async fn enqueue<R: Request>(
        &self,
        request: &R,
        version: i16,
        expect_response: bool,
    ) -> Result<Option<PendingFrame>> {
        let shared = &self.shared;
        let closed = || ClientError::ConnectionClosed {
            address: shared.state.address.clone(),
        };
        if self.is_closed() {
            return Err(closed());
        }
        let timeout = shared.config.request_timeout;
        let api = api_name::<R>();
        let permit = tokio::time::timeout(timeout, shared.in_flight.clone().acquire_owned())
            .await
            .map_err(|_| ClientError::Timeout {
                api,
                address: shared.state.address.clone(),
                timeout_ms: timeout.as_millis() as u64,
            })?
            .map_err(|_| closed())?;
        let correlation_id = shared
            .next_correlation_id
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |id| {
                Some(id.checked_add(1).unwrap_or(0))
            })
            .expect("update closure always returns Some");
        let frame =
            encode_request_frame(request, version, correlation_id, &shared.config.client_id)?;
        if !expect_response {
            // No response will come, so "sent" must mean flushed to the socket: a caller
            // that exits right after would otherwise lose the frame.
            let (written, flushed) = oneshot::channel();
            shared
                .frames
                .send(OutgoingFrame {
                    frame,
                    written: Some(written),
                })
                .await
                .map_err(|_| closed())?;
            drop(permit);
            return match tokio::time::timeout(timeout, flushed).await {
                Ok(Ok(())) => Ok(None),
                Ok(Err(_)) => Err(closed()),
                Err(_) => Err(ClientError::Timeout {
                    api,
                    address: shared.state.address.clone(),
                    timeout_ms: timeout.as_millis() as u64,
                }),
            };
        }
        let (waiter, response) = oneshot::channel();
        shared
            .state
            .pending
            .lock()
            .expect("pending lock")
            .insert(correlation_id, waiter);
        let pending = PendingFrame {
            state: shared.state.clone(),
            correlation_id,
            response,
            timeout,
            api,
            _permit: permit,
        };
        // The reader may have failed between the check above and the insert; it drains
        // `pending` only once, so look again.
        let outgoing = OutgoingFrame {
            frame,
            written: None,
        };
        if self.is_closed() || shared.frames.send(outgoing).await.is_err() {
            pending.forget();
            return Err(closed());
        }
        Ok(Some(pending))
    }

    async fn api_versions_handshake(&self) -> Result<HashMap<i16, (i16, i16)>> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strom"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut version = 3;
        for _attempt in 0..2 {
            let frame = self
                .round_trip(&request, version, true)
                .await?
                .expect("a response was expected");
            let response = decode_api_versions(frame, version, self.address())?;
            if response.error_code == 35 && version > 0 {
                // UNSUPPORTED_VERSION: the broker answered in v0 and listed its range.
                let broker_max = response
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map(|k| k.max_version)
                    .unwrap_or(0);
                version = broker_max.clamp(0, 2);
                continue;
            }
            if let Some(error) =
                ClientError::from_code(response.error_code, None, "ApiVersions handshake")
            {
                return Err(error);
            }
            return Ok(response
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect());
        }
        Err(ClientError::UnsupportedApi {
            api: "ApiVersions",
            address: self.address().to_string(),
            client_min: 0,
            client_max: 3,
            broker: None,
        })
    }
}

/// A request on the wire, waiting for its response frame. Holds its in-flight permit.
struct PendingFrame {
    state: Arc<State>,
    correlation_id: i32,
    response: oneshot::Receiver<Result<Bytes>>,
    timeout: Duration,
    api: &'static str,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl PendingFrame {
    fn forget(&self) {
        self.state
            .pending
            .lock()
            .expect("pending lock")
            .remove(&self.correlation_id);
    }

    async fn wait_frame(mut self) -> Result<Bytes> {
        let closed = || ClientError::ConnectionClosed {
            address: self.state.address.clone(),
        };
        match tokio::time::timeout(self.timeout, &mut self.response).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(closed()),
            Err(_) => {
                self.forget();
                Err(ClientError::Timeout {
                    api: self.api,
                    address: self.state.address.clone(),
                    timeout_ms: self.timeout.as_millis() as u64,
                })
            }
        }
    }
}

/// The response to a request queued with [`Connection::enqueue_version`].
pub struct PendingResponse<R: Request> {
    pending: PendingFrame,
    version: i16,
    marker: std::marker::PhantomData<fn() -> R>,
}

impl<R: Request> PendingResponse<R> {
    pub async fn wait(self) -> Result<R::Response> {
        let address = self.pending.state.address.clone();
        let frame = self.pending.wait_frame().await?;
        decode_response::<R>(frame, self.version, &address)
    }
}

fn api_key_of<R: Request>() -> ApiKey {
    ApiKey::try_from(R::KEY).expect("generated requests carry known keys")
}

pub fn api_key_name(api_key: ApiKey) -> &'static str {
    match api_key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::DescribeCluster => "DescribeCluster",
        _ => "request",
    }
}

/// Splits off the response header (its version depends on the API and version) and
/// decodes the body.
pub fn decode_response<R: Request>(
    mut frame: Bytes,
    version: i16,
    address: &str,
) -> Result<R::Response> {
    let decode_error = |reason: String| ClientError::Decode {
        api: api_name::<R>(),
        version,
        address: address.to_string(),
        reason,
    };
    let header_version = <R::Response as HeaderVersion>::header_version(version);
    kafka_protocol::messages::ResponseHeader::decode(&mut frame, header_version)
        .map_err(|e| decode_error(e.to_string()))?;
    R::Response::decode(&mut frame, version).map_err(|e| decode_error(e.to_string()))
}

/// ApiVersions answers UNSUPPORTED_VERSION in the v0 layout whatever version was asked,
/// so peek at the error code before choosing the layout.
fn decode_api_versions(
    mut frame: Bytes,
    version: i16,
    address: &str,
) -> Result<ApiVersionsResponse> {
    if frame.len() >= 6 {
        let error_code = i16::from_be_bytes([frame[4], frame[5]]);
        if error_code == 35 {
            frame.advance(4);
            return ApiVersionsResponse::decode(&mut frame, 0).map_err(|e| ClientError::Decode {
                api: "ApiVersionsResponse",
                version: 0,
                address: address.to_string(),
                reason: e.to_string(),
            });
        }
    }
    decode_response::<ApiVersionsRequest>(frame, version, address)
}

async fn read_loop(
    mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    state: Arc<State>,
    response_bytes_max: usize,
) {
    let address = state.address.clone();
    let result: Result<()> = async {
        loop {
            let size = match reader.read_i32().await {
                Ok(size) => size,
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(ClientError::ConnectionClosed {
                        address: address.clone(),
                    })
                }
                Err(source) => {
                    return Err(ClientError::Io {
                        address: address.clone(),
                        source,
                    })
                }
            };
            if size < 4 || size as i64 > response_bytes_max as i64 {
                return Err(ClientError::ResponseTooLarge {
                    address: address.clone(),
                    size_bytes: size as i64,
                    max_bytes: response_bytes_max,
                });
            }
            let mut frame = BytesMut::zeroed(size as usize);
            reader
                .read_exact(&mut frame)
                .await
                .map_err(|source| ClientError::Io {
                    address: address.clone(),
                    source,
                })?;
            let correlation_id = i32::from_be_bytes(frame[0..4].try_into().expect("4 bytes"));
            let waiter = state
                .pending
                .lock()
                .expect("pending lock")
                .remove(&correlation_id);
            match waiter {
                Some(waiter) => {
                    let _ = waiter.send(Ok(frame.freeze()));
                }
                None => tracing::debug!(
                    broker = %address,
                    correlation_id,
                    "response for a request no longer waited on (timed out)"
                ),
            }
        }
    }
    .await;
    if let Err(error) = result {
        tracing::debug!(broker = %address, %error, "connection reader stopped");
        let message = error.to_string();
        state.fail_all(|| match &error {
            ClientError::ConnectionClosed { address } => ClientError::ConnectionClosed {
                address: address.clone(),
            },
            _ => ClientError::Io {
                address: address.clone(),
                source: std::io::Error::other(message.clone()),
            },
        });
    }
}

async fn write_loop(
    mut writer: BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    mut frames: mpsc::Receiver<OutgoingFrame>,
    state: Arc<State>,
) {
    while let Some(first) = frames.recv().await {
        let mut written = Vec::new();
        let mut result = writer.write_all(&first.frame).await;
        written.extend(first.written);
        // Coalesce whatever else is queued into the same flush.
        while result.is_ok() {
            match frames.try_recv() {
                Ok(next) => {
                    result = writer.write_all(&next.frame).await;
                    written.extend(next.written);
                }
                Err(_) => break,
            }
        }
        if result.is_ok() {
            result = writer.flush().await;
        }
        if let Err(source) = result {
            let message = source.to_string();
            state.fail_all(|| ClientError::Io {
                address: state.address.clone(),
                source: std::io::Error::other(message.clone()),
            });
            return;
        }
        for done in written {
            let _ = done.send(());
        }
    }
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse, ResponseHeader};
    use tokio::net::TcpListener;

    async fn read_frame(stream: &mut TcpStream) -> Option<Bytes> {
        let size = stream.read_i32().await.ok()?;
        let mut frame = vec![0u8; size as usize];
        stream.read_exact(&mut frame).await.ok()?;
        Some(Bytes::from(frame))
    }

    fn response_frame<T: Encodable>(
        correlation_id: i32,
        header_version: i16,
        body: &T,
        version: i16,
    ) -> Vec<u8> {
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        ResponseHeader::default()
            .with_correlation_id(correlation_id)
            .encode(&mut buf, header_version)
            .expect("header");
        body.encode(&mut buf, version).expect("body");
        let size = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&size.to_be_bytes());
        buf.to_vec()
    }

    /// A fake broker: answers ApiVersions v3 with UNSUPPORTED_VERSION (forcing the v0
    /// fallback), then answers pipelined Metadata requests in reverse order, naming each
    /// response's cluster id after the request's correlation id.
    async fn fake_broker(
        listener: TcpListener,
        metadata_requests: usize,
    ) -> Vec<(i16, i16, i32, String)> {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut seen = Vec::new();
        let mut parse = |frame: &Bytes| {
            let api_key = i16::from_be_bytes([frame[0], frame[1]]);
            let version = i16::from_be_bytes([frame[2], frame[3]]);
            let correlation_id = i32::from_be_bytes(frame[4..8].try_into().expect("4"));
            let client_id_length = i16::from_be_bytes([frame[8], frame[9]]) as usize;
            let client_id =
                String::from_utf8(frame[10..10 + client_id_length].to_vec()).expect("utf8");
            seen.push((api_key, version, correlation_id, client_id));
            (api_key, version, correlation_id)
        };
        for _ in 0..2 {
            let frame = read_frame(&mut stream).await.expect("api versions");
            let (api_key, version, correlation_id) = parse(&frame);
            assert_eq!(api_key, ApiKey::ApiVersions as i16);
            let mut response = ApiVersionsResponse::default().with_api_keys(vec![
                ApiVersion::default()
                    .with_api_key(18)
                    .with_min_version(0)
                    .with_max_version(2),
                ApiVersion::default()
                    .with_api_key(3)
                    .with_min_version(0)
                    .with_max_version(9),
            ]);
            if version == 3 {
                response.error_code = 35;
            }
            let body_version = if version == 3 { 0 } else { version };
            stream
                .write_all(&response_frame(correlation_id, 0, &response, body_version))
                .await
                .expect("write");
        }
        let mut requests = Vec::new();
        for _ in 0..metadata_requests {
            let frame = read_frame(&mut stream).await.expect("metadata");
            let (_, version, correlation_id) = parse(&frame);
            requests.push((version, correlation_id));
        }
        for (version, correlation_id) in requests.into_iter().rev() {
            let response = MetadataResponse::default()
                .with_cluster_id(Some(StrBytes::from_string(format!("c{correlation_id}"))));
            let header_version = MetadataResponse::header_version(version);
            stream
                .write_all(&response_frame(
                    correlation_id,
                    header_version,
                    &response,
                    version,
                ))
                .await
                .expect("write");
        }
        // Hold the socket until the client is done reading.
        let _ = read_frame(&mut stream).await;
        seen
    }

    #[tokio::test]
    async fn given_pipelined_requests_answered_out_of_order_should_match_by_correlation_id() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        let broker = tokio::spawn(fake_broker(listener, 3));
        let connection = Connection::connect(&address, ConnectionConfig::default())
            .await
            .expect("connect");
        assert_eq!(connection.broker_range(ApiKey::Metadata), Some((0, 9)));
        assert_eq!(connection.version_for_key(ApiKey::Metadata).expect("v"), 9);
        assert!(!connection.supports(ApiKey::Produce));
        let request = MetadataRequest::default();
        let (a, b, c) = tokio::join!(
            connection.send(&request),
            connection.send(&request),
            connection.send(&request)
        );
        let mut ids: Vec<String> = [a, b, c]
            .into_iter()
            .map(|r| r.expect("response").cluster_id.expect("id").to_string())
            .collect();
        ids.sort();
        assert_eq!(ids, vec!["c2", "c3", "c4"]);
        drop(connection);
        let seen = broker.await.expect("broker");
        assert_eq!(seen[0].0, 18);
        assert_eq!(seen[0].1, 3, "handshake starts at v3");
        assert_eq!(seen[1].1, 2, "then falls back to the broker's max");
        assert!(seen.iter().all(|s| s.3 == "strom"));
        let correlation_ids: Vec<i32> = seen.iter().map(|s| s.2).collect();
        assert_eq!(correlation_ids, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn given_request_when_framed_should_prefix_size_and_use_header_v1_or_v2() {
        let request = MetadataRequest::default();
        let frame = encode_request_frame(&request, 4, 7, "strom").expect("frame");
        let size = i32::from_be_bytes(frame[0..4].try_into().expect("4"));
        assert_eq!(size as usize, frame.len() - 4);
        assert_eq!(&frame[4..6], &3i16.to_be_bytes());
        assert_eq!(&frame[6..8], &4i16.to_be_bytes());
        assert_eq!(&frame[8..12], &7i32.to_be_bytes());
        assert_eq!(
            &frame[12..14],
            &5i16.to_be_bytes(),
            "header v1: INT16 client id length"
        );
        assert_eq!(&frame[14..19], b"strom");
        let flexible = encode_request_frame(&request, 9, 7, "strom").expect("frame");
        assert_eq!(
            &flexible[12..14],
            &5i16.to_be_bytes(),
            "header v2 keeps INT16 client id"
        );
        assert_eq!(flexible[19], 0, "header v2 ends with an empty tag section");
    }

    #[test]
    fn given_client_and_broker_ranges_when_negotiated_should_pick_highest_common() {
        assert_eq!(negotiate((3, 12), Some((3, 13))), Some(12));
        assert_eq!(negotiate((3, 12), Some((0, 9))), Some(9));
        assert_eq!(negotiate((3, 12), Some((0, 2))), None);
        assert_eq!(negotiate((3, 12), None), None);
    }

    #[tokio::test]
    async fn given_oversized_response_should_fail_pending_requests_not_buffer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let frame = read_frame(&mut stream).await.expect("frame");
            let correlation_id = i32::from_be_bytes(frame[4..8].try_into().expect("4"));
            let response =
                ApiVersionsResponse::default().with_api_keys(vec![ApiVersion::default()
                    .with_api_key(3)
                    .with_min_version(0)
                    .with_max_version(12)]);
            stream
                .write_all(&response_frame(correlation_id, 0, &response, 3))
                .await
                .expect("write");
            let _ = read_frame(&mut stream).await;
            stream
                .write_all(&i32::MAX.to_be_bytes())
                .await
                .expect("write");
            let _ = read_frame(&mut stream).await;
        });
        let config = ConnectionConfig {
            response_bytes_max: 1024,
            ..Default::default()
        };
        let connection = Connection::connect(&address, config)
            .await
            .expect("connect");
        let error = connection
            .send(&MetadataRequest::default())
            .await
            .expect_err("must fail");
        assert!(
            error.to_string().contains("limit is 1024") || connection.is_closed(),
            "{error}"
        );
        assert!(connection.is_closed());
    }
}
