//! One client connection: read frames, answer them in order, write responses.
//!
//! Like Kafka, a connection has one request in progress at a time, so responses go out in
//! request order and a long-polling fetch holds only its own connection. A frame's declared
//! size is checked before it is buffered. When the peer disconnects, frames it already sent
//! are still processed (an acks=0 producer's last writes are not dropped); only writing
//! stops.
//!
//! Transport: plaintext connections send fetched records with `sendfile(2)`; TLS
//! connections read them into memory one file range at a time (bounded by the fetch size)
//! and write them through rustls.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info_span, warn, Instrument, Span};

use crate::handlers::{self, ConnectionContext, Outcome};
use crate::response::{ResponseFrame, ResponsePart};
use crate::state::Broker;
use strom_protocol::frame::check_frame_size;

/// Read buffer kept between frames. Small: thousands of idle connections cost little.
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// Most a read grows the buffer by at once, so a client that announces a large frame and
/// then stalls holds at most this much more than it has sent.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// A TLS handshake that takes longer than this closes the connection.
const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// The byte stream under a connection.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    async fn read_buf(&mut self, buffer: &mut BytesMut) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.read_buf(buffer).await,
            Transport::Tls(stream) => stream.read_buf(buffer).await,
        }
    }
}

/// Accepts the transport of a new connection: TLS handshake on SSL listeners, with the
/// client certificate's subject as the principal under mutual TLS.
async fn open_transport(
    stream: TcpStream,
    context: &mut ConnectionContext,
) -> io::Result<Transport> {
    let Some(tls) = context.listener.tls.clone() else {
        return Ok(Transport::Plain(stream));
    };
    let handshake = tls.acceptor().accept(stream);
    let stream = tokio::time::timeout(Duration::from_millis(TLS_HANDSHAKE_TIMEOUT_MS), handshake)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    if let Some(certificate) = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    {
        if let Some(subject) = crate::tls::principal_from_certificate(certificate) {
            context.principal = format!("User:{}", tls.map_principal(&subject));
        }
    }
    Ok(Transport::Tls(Box::new(stream)))
}

pub async fn serve_connection(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    mut context: ConnectionContext,
) {
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%peer, %error, "cannot set TCP_NODELAY");
    }
    let mut stream = match open_transport(stream, &mut context).await {
        Ok(transport) => transport,
        Err(error) => {
            warn!(%peer, listener = %context.listener.name, %error, "TLS handshake failed");
            return;
        }
    };
    let idle_ms = broker.config().connections_max_idle_ms;
    let max_frame = broker.config().socket_request_max_bytes;
    let mut buffer = BytesMut::with_capacity(READ_BUFFER_BYTES);
    let mut peer_gone = false;
    loop {
        // A client over its quota is not read from until its throttle has passed (KIP-219).
        context.wait_out_throttle().await;
        // Size prefix.
        if !fill(&mut stream, &mut buffer, 4, idle_ms, &mut peer_gone).await {
            return;
        }
        let declared = i32::from_be_bytes(buffer[0..4].try_into().expect("4 bytes"));
        let size = match check_frame_size(declared, max_frame) {
            Ok(size) => size,
            Err(error) => {
                warn!(%peer, %error, "closing connection: bad frame size");
                return;
            }
        };
        if !fill(&mut stream, &mut buffer, 4 + size, idle_ms, &mut peer_gone).await {
            if buffer.len() > 4 {
                debug!(%peer, "connection closed inside a frame");
            }
            return;
        }
        buffer.advance(4);
        let frame = buffer.split_to(size).freeze();
        if buffer.capacity() < READ_BUFFER_BYTES {
            buffer.reserve(READ_BUFFER_BYTES);
        }
        let prefix = strom_protocol::frame::peek_header_prefix(&frame);
        let span = info_span!(
            "request",
            %peer,
            api_key = prefix.map(|p| p.api_key),
            api_version = prefix.map(|p| p.api_version),
            correlation_id = prefix.map(|p| p.correlation_id),
        );
        let started = Instant::now();
        let outcome = handlers::dispatch(&broker, frame, &mut context)
            .instrument(span.clone())
            .await;
        if let Some(prefix) = prefix {
            observe_request(&broker, &span, prefix.api_key, started.elapsed());
        }
        match outcome {
            Outcome::Respond(response) => {
                if peer_gone {
                    continue;
                }
                if let Err(error) = write_frame(&mut stream, &response).await {
                    debug!(%peer, %error, "peer stopped reading; finishing buffered requests");
                    peer_gone = true;
                }
            }
            Outcome::RespondThenClose(response, reason) => {
                if !peer_gone {
                    let _ = write_frame(&mut stream, &response).await;
                }
                warn!(%peer, %reason, "closing connection");
                return;
            }
            Outcome::NoResponse => {}
            Outcome::Close(reason) => {
                warn!(%peer, %reason, "closing connection");
                return;
            }
        }
    }
}

/// Counts the request and its latency, and logs it if slower than `log.slow.request.ms`.
/// APIs that park by design (Fetch long polls, JoinGroup and SyncGroup waiting for the
/// rebalance) are counted but never logged as slow.
fn observe_request(broker: &Broker, span: &Span, api_key: i16, elapsed: Duration) {
    broker.metrics().observe_request(api_key, elapsed);
    let threshold_ms = broker.config().log_slow_request_ms;
    let parks = [ApiKey::Fetch, ApiKey::JoinGroup, ApiKey::SyncGroup]
        .iter()
        .any(|key| *key as i16 == api_key);
    if threshold_ms > 0 && !parks && elapsed.as_millis() > threshold_ms as u128 {
        broker.metrics().slow_requests.add(1);
        span.in_scope(|| {
            warn!(
                api = %crate::metrics::api_name(api_key),
                elapsed_ms = elapsed.as_millis() as u64,
                threshold_ms,
                "slow request"
            )
        });
    }
}

/// Reads until `buffer` holds `wanted` bytes. False on EOF, error or idle timeout.
async fn fill(
    stream: &mut Transport,
    buffer: &mut BytesMut,
    wanted: usize,
    idle_ms: i64,
    peer_gone: &mut bool,
) -> bool {
    while buffer.len() < wanted {
        if *peer_gone {
            return false;
        }
        // Grow with what arrives, not with what the peer declared: a client that announces
        // a large frame and then stalls holds at most one chunk more than it sent.
        let missing = wanted - buffer.len();
        if buffer.capacity() - buffer.len() < missing {
            buffer.reserve(missing.min(READ_CHUNK_BYTES));
        }
        let read = stream.read_buf(buffer);
        let result = if idle_ms > 0 {
            match tokio::time::timeout(Duration::from_millis(idle_ms as u64), read).await {
                Ok(result) => result,
                Err(_) => {
                    debug!("closing idle connection");
                    return false;
                }
            }
        } else {
            read.await
        };
        match result {
            Ok(0) => {
                *peer_gone = true;
                return false;
            }
            Ok(_) => {}
            Err(_) => {
                *peer_gone = true;
                return false;
            }
        }
    }
    true
}

/// Writes a response. Plaintext: encoded parts with `send(MSG_MORE)` when more follows, file
/// ranges with `sendfile(2)`, so records go from page cache to socket without a user-space
/// copy. TLS: everything through the encrypting stream.
pub async fn write_frame(transport: &mut Transport, frame: &ResponseFrame) -> io::Result<()> {
    match transport {
        Transport::Plain(stream) => write_plain(stream, frame).await,
        Transport::Tls(stream) => {
            for part in &frame.parts {
                match part {
                    ResponsePart::Bytes(bytes) => stream.write_all(bytes).await?,
                    ResponsePart::File(range) => {
                        let range = range.clone();
                        let bytes = tokio::task::spawn_blocking(move || range.read_to_bytes())
                            .await
                            .map_err(io::Error::other)??;
                        stream.write_all(&bytes).await?;
                    }
                }
            }
            stream.flush().await
        }
    }
}

async fn write_plain(stream: &mut TcpStream, frame: &ResponseFrame) -> io::Result<()> {
    let last = frame.parts.len().saturating_sub(1);
    for (index, part) in frame.parts.iter().enumerate() {
        let more = index < last;
        match part {
            ResponsePart::Bytes(bytes) => {
                let mut written = 0;
                while written < bytes.len() {
                    stream.writable().await?;
                    let chunk = &bytes[written..];
                    match stream.try_io(Interest::WRITABLE, || send(stream, chunk, more)) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => written += n,
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                        Err(error) => return Err(error),
                    }
                }
            }
            ResponsePart::File(range) => {
                let mut offset = range.position as libc::off_t;
                let end = offset + range.length as libc::off_t;
                while offset < end {
                    stream.writable().await?;
                    let count = (end - offset) as usize;
                    let result = stream.try_io(Interest::WRITABLE, || {
                        sendfile(stream, range.file.as_raw_fd(), &mut offset, count)
                    });
                    match result {
                        Ok(0) => {
                            // The file is shorter than the range: never send a short frame.
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "segment file shorter than the fetched range",
                            ));
                        }
                        Ok(_) => {}
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                        Err(error) => return Err(error),
                    }
                }
            }
        }
    }
    Ok(())
}

fn send(stream: &TcpStream, bytes: &[u8], more: bool) -> io::Result<usize> {
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    // SAFETY: the pointer and length come from a live slice; the fd is the stream's own.
    let n = unsafe {
        libc::send(
            stream.as_raw_fd(),
            bytes.as_ptr() as *const libc::c_void,
            bytes.len(),
            flags,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn sendfile(
    stream: &TcpStream,
    file_fd: i32,
    offset: &mut libc::off_t,
    count: usize,
) -> io::Result<usize> {
    // SAFETY: both fds are open for the duration of the call (the stream is borrowed, the
    // file is held by an Arc in the response); `offset` is a valid pointer.
    let n = unsafe { libc::sendfile(stream.as_raw_fd(), file_fd, offset, count) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
