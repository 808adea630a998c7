//! The raft module's one error enum. openraft's own errors are large, so they are boxed.

use std::path::PathBuf;

use crate::error::{FrameDefect, ImageError};
use crate::partition_change::PartitionChangeError;

/// Failures of the replicated controller quorum: configuration, disk, network start-up,
/// and proposals that did not commit.
#[derive(Debug, thiserror::Error)]
pub enum RaftQuorumError {
    #[error("invalid controller.quorum.voters entry '{entry}': {reason}")]
    InvalidVoter { entry: String, reason: &'static str },
    #[error("node {node_id} is not in controller.quorum.voters {voters:?}")]
    NotAVoter { node_id: i32, voters: Vec<i32> },
    #[error(
        "node {node_id} is in controller.quorum.voters, so it cannot be an observer (give a \
         broker-only node a node.id that no voter has)"
    )]
    ObserverIsVoter { node_id: i32 },
    #[error("node {node_id} is a voter; only an observer (a broker-only node) joins the quorum")]
    NotAnObserver { node_id: i32 },
    #[error("invalid raft setting {key}: {reason}")]
    InvalidConfig { key: &'static str, reason: String },
    #[error("raft storage I/O failed: {operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "raft file {path} is corrupt at byte {position}: {reason}; valid data follows the \
         damage, so this is not a torn tail and nothing was truncated"
    )]
    CorruptFile {
        path: PathBuf,
        position: u64,
        reason: FrameDefect,
    },
    #[error("raft log {path} has entry index {found} where {expected} was expected (no holes)")]
    LogGap {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("raft snapshot {path} does not rebuild an image: {source}")]
    BadSnapshot {
        path: PathBuf,
        #[source]
        source: ImageError,
    },
    #[error("cannot listen for raft peers on {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("this controller is not the leader; the leader is {leader:?}")]
    NotLeader { leader: Option<i32> },
    #[error(
        "{operation} did not finish within {timeout_ms} ms (no quorum reachable?); the \
         outcome of a proposal is then unknown"
    )]
    Timeout {
        operation: &'static str,
        timeout_ms: u64,
    },
    #[error("a proposal must carry at least one record")]
    EmptyProposal,
    #[error("proposal of {entry_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    ProposalTooLarge {
        entry_bytes: usize,
        limit_bytes: usize,
    },
    #[error("could not encode metadata records: {0}")]
    Encode(#[source] serde_json::Error),
    #[error(
        "the entry committed at raft index {index} was not applied: its record at metadata \
         offset {offset} contradicts the image ({reason})"
    )]
    Rejected {
        index: u64,
        offset: u64,
        reason: ImageError,
    },
    #[error("raft frame of {declared_bytes} bytes is outside 2..={limit_bytes}")]
    FrameSize {
        declared_bytes: u64,
        limit_bytes: usize,
    },
    #[error("raft frame has wire version {found}; this node speaks {expected}")]
    WireVersion { found: u8, expected: u8 },
    #[error("raft frame has unknown kind {kind:#04x}")]
    UnknownFrameKind { kind: u8 },
    #[error("raft frame payload does not decode: {0}")]
    Decode(#[source] serde_json::Error),
    #[error("raft connection to {peer} failed: {source}")]
    PeerIo {
        peer: String,
        #[source]
        source: std::io::Error,
    },
    #[error("this controller could not confirm its leadership with a quorum of voters")]
    NoQuorum,
    #[error("a membership change is in progress: {0}")]
    MembershipChange(#[source] Box<openraft::error::ChangeMembershipError<u64>>),
    #[error("initializing the raft membership failed: {0}")]
    Initialize(#[source] Box<openraft::error::InitializeError<u64, openraft::BasicNode>>),
    #[error("the raft node stopped: {0}")]
    Stopped(#[source] Box<openraft::error::Fatal<u64>>),
    /// BROKER_ID_NOT_REGISTERED (102): a heartbeat or controlled shutdown of a broker the
    /// image does not have; the broker must register first.
    #[error("broker {broker_id} is not registered")]
    BrokerNotRegistered { broker_id: i32 },
    /// An AlterPartition refused by the controller's rules; see [`PartitionChangeError::code`].
    #[error("AlterPartition refused: {0}")]
    AlterPartition(#[source] PartitionChangeError),
    /// A forwarded operation failed on the leader with an environment fault (disk, a
    /// stopped node); only its description crosses the wire.
    #[error("the operation failed on leader {leader}: {reason}")]
    LeaderFailed { leader: i32, reason: String },
    /// The leader answered a forwarded operation with the answer to another one: a bug or
    /// voters of different versions.
    #[error("the leader answered a forwarded operation with a {reply} reply")]
    UnexpectedReply { reply: &'static str },
}
