//! One TCP connection to one broker, with pipelined requests, plaintext or over TLS, and
//! authenticated with SASL when the [`ClientSecurity`] says so.
//!
//! A writer task drains a bounded queue of encoded frames onto the socket; a reader task
//! reads response frames and hands each to the caller waiting on its correlation id. A
//! semaphore caps the requests in flight, every request has a timeout, and a response's
//! declared size is checked against a cap before a byte of it is buffered.
//!
//! At connect the connection asks the broker for its API versions (ApiVersions v3, falling
//! back to v0 as Kafka's own clients do) and from then on sends each API at
//! `min(client max, broker max)`, so the same client works against Strom and real Kafka.
//!
//! Security ([`security`], [`tls`], [`sasl`], [`scram`]): with SSL or SASL_SSL the TLS
//! handshake runs right after the TCP connect; with SASL_PLAINTEXT or SASL_SSL the SASL
//! exchange runs right after ApiVersions, before the connection is handed out. The socket
//! tasks are generic over the stream, so the plaintext path stays a bare `TcpStream` split
//! in two (no lock, no indirection).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncWrite, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;

use crate::error::{ClientError, Result};

mod io;
pub mod sasl;
pub mod scram;
pub mod security;
#[cfg(test)]
mod tests;
pub mod tls;
mod versions;

use io::{read_loop, write_loop};
pub use scram::ScramError;
pub use security::{
    ClientSecurity, SaslCredentials, SaslMechanism, SecurityProtocol, SECURITY_PROPERTY_KEYS,
};
pub use tls::{TlsConnector, TlsOptions};
pub use versions::{api_key_name, client_range, negotiate, CLIENT_API_VERSIONS};

/// Largest response the client buffers. Fetch responses are bounded by the request's
/// `max_bytes`; this is the backstop against a broken or hostile peer.
pub const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;

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
    /// PLAINTEXT (the default), SSL, SASL_PLAINTEXT or SASL_SSL, with its settings.
    pub security: ClientSecurity,
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
            security: ClientSecurity::default(),
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
    /// The SASL session's lifetime (KIP-368), when the broker gave it one.
    session: Option<sasl::Session>,
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
            .field("session_expires_at", &self.session_expires_at())
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
    /// Connects, runs the TLS handshake (SSL, SASL_SSL), the ApiVersions handshake and the
    /// SASL exchange (SASL_PLAINTEXT, SASL_SSL).
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
        let security = config.security.clone();
        let unversioned = match security.tls() {
            None => {
                let (read_half, write_half) = stream.into_split();
                Connection::start(read_half, write_half, address, config)
            }
            Some(tls) => {
                let stream = tls
                    .handshake(address, stream, config.connect_timeout)
                    .await?;
                let (read_half, write_half) = tokio::io::split(stream);
                Connection::start(read_half, write_half, address, config)
            }
        };
        let versions = match (unversioned.api_versions_handshake().await, security.tls()) {
            (Ok(versions), _) => versions,
            (Err(error), Some(tls)) => return Err(tls_refusal(error, tls)),
            (Err(error), None) => return Err(error),
        };
        tracing::debug!(
            broker = address,
            security = security.protocol().name(),
            negotiated = ?CLIENT_API_VERSIONS
                .iter()
                .map(|&(key, min, max)| (api_key_name(key), negotiate((min, max), versions.get(&(key as i16)).copied())))
                .collect::<Vec<_>>(),
            "connected"
        );
        let connection = unversioned.rebuilt(|shared| shared.broker_versions = versions);
        let Some(credentials) = security.sasl() else {
            return Ok(connection);
        };
        let session = sasl::authenticate(&connection, credentials).await?;
        Ok(connection.rebuilt(|shared| shared.session = session))
    }

    /// The connection with its shared part edited: for filling in what the connect
    /// handshakes learn, before the connection is handed out.
    fn rebuilt(self, edit: impl FnOnce(&mut Shared)) -> Connection {
        let Ok(mut shared) = Arc::try_unwrap(self.shared) else {
            unreachable!("the connect handshakes keep no clone of the connection")
        };
        edit(&mut shared);
        Connection {
            shared: Arc::new(shared),
        }
    }

    fn start<R, W>(
        read_half: R,
        write_half: W,
        address: &str,
        config: ConnectionConfig,
    ) -> Connection
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
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
                broker_versions: HashMap::new(),
                session: None,
                reader,
                writer,
            }),
        }
    }

    pub fn address(&self) -> &str {
        &self.shared.state.address
    }

    /// True when the owner should stop reusing this connection and open a new one: the
    /// socket failed or closed, or the SASL session is about to expire (KIP-368: within a
    /// tenth of its lifetime, and at least [`sasl::SESSION_MARGIN_MIN`], of the end; the
    /// broker would cut the connection at its first request after it). Requests are still
    /// sent until the socket itself closes, so callers holding a clone finish their work.
    pub fn is_closed(&self) -> bool {
        self.is_socket_closed()
            || self
                .shared
                .session
                .is_some_and(|session| Instant::now() >= session.replace_at)
    }

    fn is_socket_closed(&self) -> bool {
        self.shared.state.closed.load(Ordering::SeqCst)
    }

    /// When the broker ends this connection's SASL session (KIP-368), if it set a lifetime.
    /// The connection is not re-authenticated in place: [`Connection::is_closed`] turns
    /// true ahead of this, so owners replace it.
    pub fn session_expires_at(&self) -> Option<Instant> {
        self.shared.session.map(|session| session.expires_at)
    }

    /// The security protocol this connection speaks.
    pub fn security_protocol(&self) -> SecurityProtocol {
        self.shared.config.security.protocol()
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

    /// Sends a request the broker may legitimately hold for `held_for` (a long-polling
    /// Fetch): the timeout is the request timeout plus that.
    pub async fn send_version_held<R: Request>(
        &self,
        request: &R,
        version: i16,
        held_for: Duration,
    ) -> Result<R::Response> {
        let timeout = self.shared.config.request_timeout + held_for;
        let frame = self
            .enqueue(request, version, true, timeout)
            .await?
            .expect("a response was expected")
            .wait_frame()
            .await?;
        decode_response::<R>(frame, version, self.address())
    }

    /// Sends a request the broker will not answer (Produce with acks=0). Returns once
    /// the frame is flushed to the socket.
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
        let timeout = self.shared.config.request_timeout;
        match self
            .enqueue(request, version, expect_response, timeout)
            .await?
        {
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
            .enqueue(request, version, true, self.shared.config.request_timeout)
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
        timeout: Duration,
    ) -> Result<Option<PendingFrame>> {
        let shared = &self.shared;
        let closed = || ClientError::ConnectionClosed {
            address: shared.state.address.clone(),
        };
        if self.is_socket_closed() {
            return Err(closed());
        }
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
        if self.is_socket_closed() || shared.frames.send(outgoing).await.is_err() {
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

/// A TLS connection that fails its first request. Under TLS 1.3 a broker that requires a
/// client certificate (or refuses the one sent) says so only after the client's side of
/// the handshake is done: with an alert, which arrives as a read error, or (some brokers)
/// by just closing. Report either as the TLS failure it is.
fn tls_refusal(error: ClientError, tls: &TlsConnector) -> ClientError {
    use std::io::ErrorKind;
    match error {
        ClientError::Io { address, source } if source.kind() == ErrorKind::InvalidData => {
            ClientError::Tls { address, source }
        }
        ClientError::Io { address, source }
            if matches!(
                source.kind(),
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
            ) =>
        {
            ClientError::TlsClosedAfterHandshake {
                address,
                client_certificate: tls.options().has_client_identity(),
            }
        }
        ClientError::ConnectionClosed { address } => ClientError::TlsClosedAfterHandshake {
            address,
            client_certificate: tls.options().has_client_identity(),
        },
        other => other,
    }
}
