//! The openraft type configuration and the payload types it carries, plus the voter list.
//!
//! Everything here is part of the on-disk and on-wire format (serde JSON): renaming a
//! field is a format change.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::error::ImageError;
use crate::raft::error::RaftQuorumError;
use crate::record::MetadataRecord;

/// Raft's id of a voter. openraft's own default (`u64`), so its storage test suite runs
/// against our stores; outside this module a voter is a Kafka node id (`i32`, never
/// negative: [`parse_voters`] refuses that), converted by [`raft_node_id`]/[`kafka_node_id`].
pub(crate) type RaftNodeId = u64;

openraft::declare_raft_types!(
    /// The controller quorum's openraft types: entries carry [`MetadataProposal`]s, applying
    /// one yields an [`EntryOutcome`], snapshots travel as bytes.
    pub(crate) TypeConfig:
        D = MetadataProposal,
        R = EntryOutcome,
        NodeId = RaftNodeId,
        Node = openraft::BasicNode,
);

pub(crate) type Entry = openraft::Entry<TypeConfig>;
pub(crate) type LogId = openraft::LogId<RaftNodeId>;
pub(crate) type Vote = openraft::Vote<RaftNodeId>;
pub(crate) type StorageError = openraft::StorageError<RaftNodeId>;
pub(crate) type StoredMembership = openraft::StoredMembership<RaftNodeId, openraft::BasicNode>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<RaftNodeId, openraft::BasicNode>;
pub(crate) type Raft = openraft::Raft<TypeConfig>;

/// One replicated log entry's application data: the records of one proposal, applied
/// atomically (all or none) in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataProposal {
    pub records: Vec<MetadataRecord>,
}

impl fmt::Display for MetadataProposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} metadata record(s)", self.records.len())
    }
}

/// What applying one committed entry did to the image. Every voter reaches the same
/// outcome, because it depends only on the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryOutcome {
    /// A blank or membership entry: no metadata records.
    NoRecords,
    /// The records were applied; the last one has metadata offset `last_offset`.
    Applied { last_offset: u64 },
    /// The first record at `offset` contradicted the image, so none of the entry's records
    /// were applied (the image is as before it). Only a proposal decided against a stale
    /// image can do this.
    Rejected { offset: u64, reason: ImageError },
}

/// One controller voter: its node id and where its Raft listener is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Voter {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
}

impl Voter {
    /// `host:port`, as given to `TcpStream::connect`.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Voter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.node_id, self.address())
    }
}

/// Parses a `controller.quorum.voters` list: `id@host:port` entries separated by commas,
/// e.g. `1@127.0.0.1:9093,2@127.0.0.1:9094,3@127.0.0.1:9095`. IPv6 hosts go in brackets
/// (`1@[::1]:9093`). Ids must be non-negative and distinct; the list must not be empty.
pub fn parse_voters(text: &str) -> Result<Vec<Voter>, RaftQuorumError> {
    let mut voters: Vec<Voter> = Vec::new();
    for entry in text.split(',').map(str::trim) {
        let invalid = |reason: &'static str| RaftQuorumError::InvalidVoter {
            entry: entry.to_string(),
            reason,
        };
        if entry.is_empty() {
            return Err(invalid("empty entry; expected id@host:port"));
        }
        let (id, address) = entry
            .split_once('@')
            .ok_or_else(|| invalid("missing '@'; expected id@host:port"))?;
        let node_id: i32 = id
            .trim()
            .parse()
            .map_err(|_| invalid("the node id is not an integer"))?;
        if node_id < 0 {
            return Err(invalid("the node id must not be negative"));
        }
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| invalid("missing ':port'; expected id@host:port"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(invalid("the host is empty"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| invalid("the port is not a number in 1..=65535"))?;
        if port == 0 {
            return Err(invalid("the port is not a number in 1..=65535"));
        }
        if voters.iter().any(|v| v.node_id == node_id) {
            return Err(invalid("the node id is listed twice"));
        }
        voters.push(Voter {
            node_id,
            host: host.to_string(),
            port,
        });
    }
    Ok(voters)
}

/// A Kafka node id as a Raft node id. Voter ids are checked non-negative on the way in.
pub(crate) fn raft_node_id(node_id: i32) -> RaftNodeId {
    RaftNodeId::try_from(node_id).expect("voter ids are validated non-negative")
}

/// A Raft node id back as a Kafka node id. Every Raft id came from [`raft_node_id`].
pub(crate) fn kafka_node_id(node_id: RaftNodeId) -> i32 {
    i32::try_from(node_id).expect("raft node ids come from i32 voter ids")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_voter_list_when_parsed_should_keep_order_and_addresses() {
        let voters = parse_voters("1@127.0.0.1:9093, 2@localhost:9094,3@[::1]:9095").unwrap();
        assert_eq!(voters.len(), 3);
        assert_eq!(voters[0].address(), "127.0.0.1:9093");
        assert_eq!(voters[1].host, "localhost");
        assert_eq!(voters[2].host, "::1");
        assert_eq!(voters[2].address(), "[::1]:9095");
        assert_eq!(voters[2].to_string(), "3@[::1]:9095");
    }

    #[test]
    fn given_bad_entry_when_parsed_should_name_it() {
        for (text, bad) in [
            ("1@127.0.0.1:9093,2127.0.0.1:9094", "2127.0.0.1:9094"),
            ("x@h:1", "x@h:1"),
            ("-1@h:1", "-1@h:1"),
            ("1@h", "1@h"),
            ("1@h:0", "1@h:0"),
            ("1@h:70000", "1@h:70000"),
            ("1@:9", "1@:9"),
            ("1@a:1,1@b:2", "1@b:2"),
            ("1@a:1,", ""),
            ("", ""),
        ] {
            match parse_voters(text) {
                Err(RaftQuorumError::InvalidVoter { entry, .. }) => {
                    assert_eq!(entry, bad, "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
