//! The client side of the controller transport: openraft's [`RaftNetwork`] over one TCP
//! connection per peer (see [`super::wire`] for the frames).
//!
//! The connection is opened lazily and kept between RPCs. It is taken out of the peer
//! for the duration of a call and put back only after a complete answer, so a call that
//! fails or is cancelled (openraft drops the future on its own timeout) never leaves a
//! half-read answer on a connection a later call would reuse.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RPCTypes};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::raft::error::RaftQuorumError;
use crate::raft::types::{RaftNodeId, TypeConfig};
use crate::raft::wire::{decode_payload, encode_frame, read_frame, write_frame, FrameKind};

/// Longest wait for a TCP connection to a peer.
pub const RAFT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest any one RPC may take, whatever openraft's own deadline (it is usually shorter:
/// the heartbeat interval for AppendEntries).
pub const RAFT_RPC_TIMEOUT_MAX: Duration = Duration::from_secs(10);

/// Creates one [`PeerConnection`] per replication target. Peer addresses come from the
/// configured voter list, so a voter that moved only needs a config change; the address
/// in the membership is the fallback.
pub(crate) struct PeerNetworkFactory {
    pub(crate) local_id: RaftNodeId,
    pub(crate) addresses: Arc<BTreeMap<RaftNodeId, String>>,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetworkFactory {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: RaftNodeId, node: &BasicNode) -> PeerConnection {
        let address = self
            .addresses
            .get(&target)
            .cloned()
            .unwrap_or_else(|| node.addr.clone());
        PeerConnection {
            local_id: self.local_id,
            target,
            address,
            stream: None,
        }
    }
}

pub(crate) struct PeerConnection {
    local_id: RaftNodeId,
    target: RaftNodeId,
    address: String,
    stream: Option<TcpStream>,
}

/// Why a call failed, in the terms openraft needs to react (back off, split, retry).
enum CallFailure {
    Unreachable(RaftQuorumError),
    TimedOut(Duration),
    /// The request does not fit in one frame (a [`RaftQuorumError::FrameSize`]).
    RequestTooLarge(RaftQuorumError),
    Failed(RaftQuorumError),
}

impl PeerConnection {
    /// Sends `request` and returns the peer's `Result` for it.
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        kind: FrameKind,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, CallFailure> {
        let frame = match encode_frame(kind, false, request) {
            Ok(frame) => frame,
            Err(error @ RaftQuorumError::FrameSize { .. }) => {
                return Err(CallFailure::RequestTooLarge(error))
            }
            Err(error) => return Err(CallFailure::Failed(error)),
        };
        let timeout = option.hard_ttl().min(RAFT_RPC_TIMEOUT_MAX);
        let exchange = async {
            let mut stream = match self.stream.take() {
                Some(stream) => stream,
                None => self.connect(timeout).await?,
            };
            write_frame(&mut stream, &frame, &self.address)
                .await
                .map_err(CallFailure::Failed)?;
            let answer = read_frame(&mut stream, &self.address)
                .await
                .map_err(CallFailure::Failed)?;
            let payload = match answer {
                Some((answer_kind, true, payload)) if answer_kind == kind => payload,
                Some(_) | None => {
                    return Err(CallFailure::Failed(RaftQuorumError::PeerIo {
                        peer: self.address.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "the peer closed the connection or answered another request",
                        ),
                    }))
                }
            };
            let response = decode_payload(&payload).map_err(CallFailure::Failed)?;
            self.stream = Some(stream);
            Ok(response)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(CallFailure::TimedOut(timeout)),
        }
    }

    async fn connect(&self, timeout: Duration) -> Result<TcpStream, CallFailure> {
        let unreachable = |source| {
            CallFailure::Unreachable(RaftQuorumError::PeerIo {
                peer: self.address.clone(),
                source,
            })
        };
        let connect = TcpStream::connect(self.address.as_str());
        let stream = tokio::time::timeout(timeout.min(RAFT_CONNECT_TIMEOUT), connect)
            .await
            .map_err(|_| unreachable(std::io::ErrorKind::TimedOut.into()))?
            .map_err(unreachable)?;
        stream.set_nodelay(true).map_err(unreachable)?;
        tracing::debug!(peer = %self.address, target = self.target, "connected to raft peer");
        Ok(stream)
    }

    fn rpc_error<E: std::error::Error>(
        &self,
        failure: CallFailure,
        action: RPCTypes,
    ) -> RPCError<RaftNodeId, BasicNode, E> {
        match failure {
            CallFailure::Unreachable(error) => RPCError::Unreachable(Unreachable::new(&error)),
            CallFailure::TimedOut(timeout) => RPCError::Timeout(Timeout {
                action,
                id: self.local_id,
                target: self.target,
                timeout,
            }),
            CallFailure::RequestTooLarge(error) | CallFailure::Failed(error) => {
                tracing::debug!(peer = %self.address, %error, "raft RPC failed");
                RPCError::Network(NetworkError::new(&error))
            }
        }
    }

    fn remote<E: std::error::Error>(
        &self,
        error: RaftError<RaftNodeId, E>,
    ) -> RPCError<RaftNodeId, BasicNode, RaftError<RaftNodeId, E>> {
        RPCError::RemoteError(RemoteError::new(self.target, error))
    }
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<RaftNodeId, BasicNode, RaftError<RaftNodeId, E>>>;

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<RaftNodeId>> {
        let entries = rpc.entries.len() as u64;
        let answer: Result<AppendEntriesResponse<RaftNodeId>, RaftError<RaftNodeId>> =
            match self.call(FrameKind::AppendEntries, &rpc, &option).await {
                Ok(answer) => answer,
                Err(CallFailure::RequestTooLarge(_)) if entries > 1 => {
                    return Err(RPCError::PayloadTooLarge(
                        PayloadTooLarge::new_entries_hint(entries / 2),
                    ))
                }
                Err(failure) => return Err(self.rpc_error(failure, RPCTypes::AppendEntries)),
            };
        answer.map_err(|e| self.remote(e))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<RaftNodeId>, InstallSnapshotError> {
        let answer: Result<
            InstallSnapshotResponse<RaftNodeId>,
            RaftError<RaftNodeId, InstallSnapshotError>,
        > = self
            .call(FrameKind::InstallSnapshot, &rpc, &option)
            .await
            .map_err(|failure| self.rpc_error(failure, RPCTypes::InstallSnapshot))?;
        answer.map_err(|e| self.remote(e))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<RaftNodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<RaftNodeId>> {
        let answer: Result<VoteResponse<RaftNodeId>, RaftError<RaftNodeId>> = self
            .call(FrameKind::Vote, &rpc, &option)
            .await
            .map_err(|failure| self.rpc_error(failure, RPCTypes::Vote))?;
        answer.map_err(|e| self.remote(e))
    }
}
