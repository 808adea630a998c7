//! The server side of the controller transport: accepts peers' connections and hands each
//! request frame to the local Raft node.
//!
//! Hostile or broken input (a frame outside the size bounds, another wire version, an
//! unknown kind, a payload that does not decode, a snapshot growing past
//! [`RAFT_SNAPSHOT_BYTES_MAX`], a peer that stalls mid-frame) closes
//! that connection with a warning; nothing panics and nothing else is affected. The
//! number of connections is capped; one over the cap is closed at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openraft::raft::InstallSnapshotRequest;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::raft::error::RaftQuorumError;
use crate::raft::forward::{ControllerReply, ControllerRequest, ForwardError};
use crate::raft::state_machine::RAFT_SNAPSHOT_BYTES_MAX;
use crate::raft::types::{Raft, TypeConfig};
use crate::raft::wire::{decode_payload, encode_frame, read_frame, write_frame, FrameKind};

/// Most raft connections served at once (a voter opens one to each peer; the rest is slack
/// for reconnects while old connections time out).
pub const RAFT_INBOUND_CONNECTIONS_MAX: usize = 32;
/// A connection with no request for this long is closed (a leader sends heartbeats far
/// more often; a follower's connection to us is re-opened when it becomes leader).
pub const RAFT_CONNECTION_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest time to receive the rest of a frame once its first byte arrived, and to write
/// an answer.
pub const RAFT_FRAME_IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a forwarded controller operation on this node (which should be the leader).
pub(crate) type ForwardHandler = Arc<
    dyn Fn(
            ControllerRequest,
        ) -> Pin<Box<dyn Future<Output = Result<ControllerReply, ForwardError>> + Send>>
        + Send
        + Sync,
>;

/// Serves `listener` until `shutdown` turns true; then closes every connection.
pub(crate) async fn serve(
    listener: TcpListener,
    raft: Raft,
    forwarded: ForwardHandler,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(RAFT_INBOUND_CONNECTIONS_MAX));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "accepting a raft connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!(%peer, limit = RAFT_INBOUND_CONNECTIONS_MAX,
                        "too many raft connections; closing the new one");
                    continue;
                };
                let raft = raft.clone();
                let forwarded = Arc::clone(&forwarded);
                let span = tracing::info_span!("raft_connection", %peer);
                connections.spawn(async move {
                    let _slot = slot;
                    let peer = peer.to_string();
                    if let Err(error) = serve_connection(stream, &raft, &forwarded, &peer).await {
                        tracing::warn!(%error, "closing raft connection");
                    }
                }.instrument(span));
            }
        }
    }
    connections.shutdown().await;
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Answers requests on one connection until the peer closes it or sends something bad.
async fn serve_connection(
    mut stream: TcpStream,
    raft: &Raft,
    forwarded: &ForwardHandler,
    peer: &str,
) -> Result<(), RaftQuorumError> {
    stream.set_nodelay(true).ok();
    let timed_out = |operation| RaftQuorumError::Timeout {
        operation,
        timeout_ms: u64::try_from(RAFT_FRAME_IO_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
    };
    loop {
        // Idle until the first byte, then the whole frame must follow promptly.
        match tokio::time::timeout(RAFT_CONNECTION_IDLE_TIMEOUT, stream.readable()).await {
            Err(_) => return Ok(()),
            Ok(ready) => ready.map_err(|source| RaftQuorumError::PeerIo {
                peer: peer.to_string(),
                source,
            })?,
        }
        let frame = tokio::time::timeout(RAFT_FRAME_IO_TIMEOUT, read_frame(&mut stream, peer))
            .await
            .map_err(|_| timed_out("reading a raft frame"))??;
        let Some((kind, response, payload)) = frame else {
            return Ok(());
        };
        if response {
            return Err(RaftQuorumError::UnknownFrameKind {
                kind: 0x80, // a response where a request belongs
            });
        }
        let answer = match kind {
            FrameKind::AppendEntries => encode_frame(
                kind,
                true,
                &raft.append_entries(decode_payload(&payload)?).await,
            )?,
            FrameKind::Vote => {
                encode_frame(kind, true, &raft.vote(decode_payload(&payload)?).await)?
            }
            FrameKind::InstallSnapshot => {
                let chunk: InstallSnapshotRequest<TypeConfig> = decode_payload(&payload)?;
                // Chunks accumulate in memory until the last one: bound the total.
                let snapshot_bytes = chunk.offset.saturating_add(chunk.data.len() as u64);
                if snapshot_bytes > RAFT_SNAPSHOT_BYTES_MAX as u64 {
                    return Err(RaftQuorumError::FrameSize {
                        declared_bytes: snapshot_bytes,
                        limit_bytes: RAFT_SNAPSHOT_BYTES_MAX,
                    });
                }
                encode_frame(kind, true, &raft.install_snapshot(chunk).await)?
            }
            FrameKind::Forward => {
                let request: ControllerRequest = decode_payload(&payload)?;
                encode_frame(kind, true, &forwarded(request).await)?
            }
        };
        tokio::time::timeout(
            RAFT_FRAME_IO_TIMEOUT,
            write_frame(&mut stream, &answer, peer),
        )
        .await
        .map_err(|_| timed_out("writing a raft answer"))??;
    }
}
