//! The classic protocol's requests and answers as the state machine sees them (decoded
//! from, and encoded into, the wire messages by the handlers), and the consumer protocol's
//! subscription format, which the coordinator reads for OffsetDelete.

use bytes::Bytes;
use strom_protocol::ErrorCode;

/// A JoinGroup request, as the state machine needs it.
#[derive(Debug, Clone)]
pub struct JoinGroup {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED and its id.
    pub require_known_member_id: bool,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// None on success.
    pub error: Option<ErrorCode>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only: (member id, group instance id, metadata).
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub fn error(error: ErrorCode, member_id: &str) -> Self {
        JoinResult {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyncGroup {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// None on success.
    pub error: Option<ErrorCode>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: ErrorCode) -> Self {
        SyncResult {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// Topic names of a ConsumerProtocolSubscription (version i16, then an array of strings).
/// Unparseable metadata yields no topics.
pub fn subscription_topics(metadata: &[u8]) -> Vec<String> {
    let mut topics = Vec::new();
    let [_, _, c0, c1, c2, c3, ..] = *metadata else {
        return topics;
    };
    let count = i32::from_be_bytes([c0, c1, c2, c3]);
    let mut at = 6;
    for _ in 0..count.max(0) {
        if at + 2 > metadata.len() {
            break;
        }
        let len = i16::from_be_bytes([metadata[at], metadata[at + 1]]);
        at += 2;
        if len < 0 || at + len as usize > metadata.len() {
            break;
        }
        topics.push(String::from_utf8_lossy(&metadata[at..at + len as usize]).into_owned());
        at += len as usize;
    }
    topics
}
