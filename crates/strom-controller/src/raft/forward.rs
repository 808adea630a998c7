//! Forwarding: a voter that does not lead sends the controller operation it was asked for
//! to the leader over the raft transport (frame kind `Forward`, see [`super::wire`]), the
//! leader runs it as if called locally, and the answer comes back on the same connection.
//!
//! Payloads are JSON: a [`ControllerRequest`] one way, a
//! `Result<ControllerReply, ForwardError>` the other. Each forwarded call opens its own
//! connection and closes it after the answer, so a slow decision on the leader never
//! delays heartbeats or other calls (forwarded calls are rare: admin requests and broker
//! heartbeats, not client data).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::controller::{
    CreatePartitions, CreatePartitionsResult, CreateTopic, CreateTopicResult, DeleteTopicResult,
    TopicDefaults, TopicRef,
};
use crate::error::{ControllerError, ImageError};
use crate::image::PartitionState;
use crate::partition_change::{AlterPartition, ElectionResult, PartitionChangeError};
use crate::raft::error::RaftQuorumError;
use crate::raft::network::RAFT_CONNECT_TIMEOUT;
use crate::raft::quorum_describe::QuorumDescription;
use crate::raft::wire::{decode_payload, encode_frame, read_frame, write_frame, FrameKind};
use crate::reassignment::{OngoingReassignment, ReassignmentRequest, ReassignmentResult};
use crate::record::{BrokerListener, MetadataRecord};

/// The answer to a broker heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// Whether the broker is fenced after this heartbeat: `false` once the heartbeat
    /// unfenced it (or it was not fenced); `true` only for a broker in controlled shutdown,
    /// which stays fenced until it registers again.
    pub fenced: bool,
}

/// One partition named by an ElectLeaders or ListPartitionReassignments request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartitionRef {
    #[serde(with = "crate::record::uuid_text")]
    pub(crate) topic_id: Uuid,
    pub(crate) partition: i32,
}

/// Every operation of [`super::RaftQuorum`], as it travels to the leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum ControllerRequest {
    Propose {
        records: Vec<MetadataRecord>,
    },
    CreateTopics {
        requests: Vec<CreateTopic>,
        validate_only: bool,
        defaults: TopicDefaults,
    },
    DeleteTopics {
        topics: Vec<TopicRef>,
    },
    CreatePartitions {
        requests: Vec<CreatePartitions>,
        validate_only: bool,
    },
    RegisterBroker {
        broker_id: i32,
        host: String,
        port: u16,
        rack: Option<String>,
        #[serde(default)]
        listeners: Vec<BrokerListener>,
    },
    AlterTopicConfigs {
        topic: String,
        changes: Vec<(String, Option<String>)>,
        validate_only: bool,
    },
    AlterScramCredentials {
        records: Vec<MetadataRecord>,
    },
    AlterAcls {
        records: Vec<MetadataRecord>,
    },
    AlterClientQuotas {
        records: Vec<MetadataRecord>,
    },
    BrokerHeartbeat {
        broker_id: i32,
    },
    AlterPartition(AlterPartition),
    /// One AlterPartition request carrying many partitions, decided as one entry.
    AlterPartitions {
        requests: Vec<AlterPartition>,
    },
    ElectLeaders {
        partitions: Vec<PartitionRef>,
        preferred: bool,
    },
    ControlledShutdown {
        broker_id: i32,
    },
    /// A broker leaves the cluster for good (UnregisterBroker).
    UnregisterBroker {
        broker_id: i32,
    },
    AlterPartitionReassignments {
        requests: Vec<ReassignmentRequest>,
    },
    ListPartitionReassignments {
        partitions: Option<Vec<PartitionRef>>,
    },
    /// A broker-only node asks to receive the metadata log at `address`.
    AddObserver {
        node_id: i32,
        address: String,
    },
    DescribeQuorum,
}

/// The leader's answer to a [`ControllerRequest`] (the variant matching the request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum ControllerReply {
    Proposed { index: u64 },
    CreateTopics(Vec<CreateTopicResult>),
    DeleteTopics(Vec<DeleteTopicResult>),
    CreatePartitions(Vec<CreatePartitionsResult>),
    AlterTopicConfigs(Result<(), ControllerError>),
    Done,
    Heartbeat(HeartbeatReply),
    AlterPartition(PartitionState),
    AlterPartitions(Vec<Result<PartitionState, PartitionChangeError>>),
    ElectLeaders(Vec<ElectionResult>),
    AlterPartitionReassignments(Vec<ReassignmentResult>),
    ListPartitionReassignments(Vec<OngoingReassignment>),
    DescribeQuorum(QuorumDescription),
}

impl ControllerReply {
    /// The name of the variant, for [`RaftQuorumError::UnexpectedReply`].
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ControllerReply::Proposed { .. } => "Proposed",
            ControllerReply::CreateTopics(_) => "CreateTopics",
            ControllerReply::DeleteTopics(_) => "DeleteTopics",
            ControllerReply::CreatePartitions(_) => "CreatePartitions",
            ControllerReply::AlterTopicConfigs(_) => "AlterTopicConfigs",
            ControllerReply::Done => "Done",
            ControllerReply::Heartbeat(_) => "Heartbeat",
            ControllerReply::AlterPartition(_) => "AlterPartition",
            ControllerReply::AlterPartitions(_) => "AlterPartitions",
            ControllerReply::ElectLeaders(_) => "ElectLeaders",
            ControllerReply::AlterPartitionReassignments(_) => "AlterPartitionReassignments",
            ControllerReply::ListPartitionReassignments(_) => "ListPartitionReassignments",
            ControllerReply::DescribeQuorum(_) => "DescribeQuorum",
        }
    }

    pub(crate) fn unexpected(self) -> RaftQuorumError {
        RaftQuorumError::UnexpectedReply { reply: self.kind() }
    }
}

/// A [`RaftQuorumError`] as it travels back from the leader. The expected failures keep
/// their type; environment faults on the leader (disk, a stopped node), whose sources do
/// not cross a wire, travel as their text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum ForwardError {
    NotLeader {
        leader: Option<i32>,
    },
    NoQuorum,
    Timeout {
        timeout_ms: u64,
    },
    EmptyProposal,
    ProposalTooLarge {
        entry_bytes: usize,
        limit_bytes: usize,
    },
    Rejected {
        index: u64,
        offset: u64,
        reason: ImageError,
    },
    BrokerNotRegistered {
        broker_id: i32,
    },
    ObserverIsVoter {
        node_id: i32,
    },
    AlterPartition(PartitionChangeError),
    Failed {
        reason: String,
    },
}

impl From<RaftQuorumError> for ForwardError {
    fn from(error: RaftQuorumError) -> Self {
        match error {
            RaftQuorumError::NotLeader { leader } => ForwardError::NotLeader { leader },
            RaftQuorumError::NoQuorum => ForwardError::NoQuorum,
            RaftQuorumError::Timeout { timeout_ms, .. } => ForwardError::Timeout { timeout_ms },
            RaftQuorumError::EmptyProposal => ForwardError::EmptyProposal,
            RaftQuorumError::ProposalTooLarge {
                entry_bytes,
                limit_bytes,
            } => ForwardError::ProposalTooLarge {
                entry_bytes,
                limit_bytes,
            },
            RaftQuorumError::Rejected {
                index,
                offset,
                reason,
            } => ForwardError::Rejected {
                index,
                offset,
                reason,
            },
            RaftQuorumError::BrokerNotRegistered { broker_id } => {
                ForwardError::BrokerNotRegistered { broker_id }
            }
            RaftQuorumError::ObserverIsVoter { node_id } => {
                ForwardError::ObserverIsVoter { node_id }
            }
            RaftQuorumError::AlterPartition(error) => ForwardError::AlterPartition(error),
            other => ForwardError::Failed {
                reason: other.to_string(),
            },
        }
    }
}

impl ForwardError {
    fn into_error(self, leader: i32) -> RaftQuorumError {
        match self {
            ForwardError::NotLeader { leader } => RaftQuorumError::NotLeader { leader },
            ForwardError::NoQuorum => RaftQuorumError::NoQuorum,
            ForwardError::Timeout { timeout_ms } => RaftQuorumError::Timeout {
                operation: "the forwarded operation on the leader",
                timeout_ms,
            },
            ForwardError::EmptyProposal => RaftQuorumError::EmptyProposal,
            ForwardError::ProposalTooLarge {
                entry_bytes,
                limit_bytes,
            } => RaftQuorumError::ProposalTooLarge {
                entry_bytes,
                limit_bytes,
            },
            ForwardError::Rejected {
                index,
                offset,
                reason,
            } => RaftQuorumError::Rejected {
                index,
                offset,
                reason,
            },
            ForwardError::BrokerNotRegistered { broker_id } => {
                RaftQuorumError::BrokerNotRegistered { broker_id }
            }
            ForwardError::ObserverIsVoter { node_id } => {
                RaftQuorumError::ObserverIsVoter { node_id }
            }
            ForwardError::AlterPartition(error) => RaftQuorumError::AlterPartition(error),
            ForwardError::Failed { reason } => RaftQuorumError::LeaderFailed { leader, reason },
        }
    }
}

/// Why a forward did not get an answer.
#[derive(Debug)]
pub(crate) enum ForwardFailure {
    /// No connection to the leader: nothing was sent, so retrying is safe.
    Unreachable(RaftQuorumError),
    /// Sent, but the answer did not arrive (or did not decode): the outcome is unknown.
    Lost(RaftQuorumError),
}

/// Sends `request` to `leader` at `address` and waits up to `timeout` for its answer.
pub(crate) async fn forward(
    address: &str,
    leader: i32,
    request: &ControllerRequest,
    timeout: Duration,
) -> Result<Result<ControllerReply, RaftQuorumError>, ForwardFailure> {
    let frame = encode_frame(FrameKind::Forward, false, request).map_err(ForwardFailure::Lost)?;
    let peer_io = |source| RaftQuorumError::PeerIo {
        peer: address.to_string(),
        source,
    };
    let mut stream = tokio::time::timeout(RAFT_CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| ForwardFailure::Unreachable(peer_io(std::io::ErrorKind::TimedOut.into())))?
        .map_err(|source| ForwardFailure::Unreachable(peer_io(source)))?;
    stream.set_nodelay(true).ok();
    let exchange = async {
        write_frame(&mut stream, &frame, address).await?;
        match read_frame(&mut stream, address).await? {
            Some((FrameKind::Forward, true, payload)) => {
                decode_payload::<Result<ControllerReply, ForwardError>>(&payload)
            }
            Some(_) | None => Err(peer_io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the leader closed the connection or answered another request",
            ))),
        }
    };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| {
            ForwardFailure::Lost(RaftQuorumError::Timeout {
                operation: "waiting for the leader's answer to a forwarded operation",
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            })
        })?
        .map_err(ForwardFailure::Lost)?;
    Ok(answer.map_err(|error| error.into_error(leader)))
}
