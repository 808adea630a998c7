//! The replicated controller quorum: the metadata log replicated with Raft (openraft)
//! between the controller voters, applied to a [`crate::MetadataImage`] on each of them.
//!
//! # Pieces (one concept per file)
//!
//! - `types`: openraft's type configuration, the entry payload
//!   ([`MetadataProposal`]) and outcome ([`EntryOutcome`]), the voter list ([`parse_voters`]).
//! - `log_store`: the durable Raft log and vote ("durable before returning", "no holes").
//! - `state_machine`: applies committed entries to the image, publishes it, takes and
//!   installs snapshots.
//! - `disk`: CRC32C frames and atomic file replacement, shared by the files above.
//! - `wire`, `network`, `server`: the TCP transport between voters (frames, client side,
//!   accept loop).
//! - `forward`: operations a follower sends to the leader, and their answers.
//! - `liveness`: broker sessions as the leader sees them (last heartbeat, controlled
//!   shutdown), in memory.
//! - `quorum`: [`RaftQuorum`], the facade the broker uses: start, stop, image, leader,
//!   forwarding, the leader's background duties (cluster id, liveness tick).
//! - `quorum_ops`: [`RaftQuorum`]'s operations, each run on the leader as a
//!   [`crate::Controller`] decision; observers joining the membership.
//! - `quorum_describe`: DescribeQuorum, the leader's view of every replica's progress.
//!
//! # On disk, under `<data_dir>/__cluster_metadata-0/raft/`
//!
//! ```text
//! log       CRC32C frames: [Purged(last purged log id)] then one Entry frame per entry
//! vote      one CRC32C frame: the vote (term, node, committed)
//! snapshot  one CRC32C frame: snapshot meta + the records that rebuild the image
//! ```
//!
//! The single-voter `metadata.log` of [`crate::MetadataQuorum`] next to it is a different
//! log: the two are not converted into each other (a node uses one or the other).

mod disk;
mod error;
mod forward;
mod liveness;
mod log_store;
mod network;
mod quorum;
mod quorum_departure;
mod quorum_describe;
mod quorum_ops;
mod server;
mod state_machine;
mod types;
mod wire;

pub use error::RaftQuorumError;
pub use forward::HeartbeatReply;
pub use log_store::{RAFT_LOG_FILE_NAME, RAFT_LOG_FRAME_BYTES_MAX, RAFT_VOTE_FILE_NAME};
pub use network::{RAFT_CONNECT_TIMEOUT, RAFT_RPC_TIMEOUT_MAX};
pub use quorum::{
    raft_directory, QuorumRole, RaftQuorum, RaftQuorumConfig, RAFT_BROKER_LIVENESS_TICK_MS,
    RAFT_BROKER_SESSION_TIMEOUT_MS_DEFAULT, RAFT_DIR_NAME, RAFT_ELECTION_TIMEOUT_MAX_MS_DEFAULT,
    RAFT_ELECTION_TIMEOUT_MIN_MS_DEFAULT, RAFT_ENTRIES_KEPT_AFTER_SNAPSHOT_DEFAULT,
    RAFT_HEARTBEAT_INTERVAL_MS_DEFAULT, RAFT_INSTALL_SNAPSHOT_TIMEOUT_MS,
    RAFT_PROPOSE_TIMEOUT_MS_DEFAULT, RAFT_SNAPSHOT_CHUNK_BYTES,
    RAFT_SNAPSHOT_EVERY_ENTRIES_DEFAULT,
};
pub use quorum_describe::{QuorumDescription, QuorumReplica};
pub use server::{
    RAFT_CONNECTION_IDLE_TIMEOUT, RAFT_FRAME_IO_TIMEOUT, RAFT_INBOUND_CONNECTIONS_MAX,
};
pub use state_machine::{RAFT_SNAPSHOT_BYTES_MAX, RAFT_SNAPSHOT_FILE_NAME};
pub use types::{parse_voters, EntryOutcome, MetadataProposal, Voter};
pub use wire::{RAFT_FRAME_BYTES_MAX, RAFT_WIRE_VERSION};

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod observer_tests;
#[cfg(test)]
mod quorum_tests;
