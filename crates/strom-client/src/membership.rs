//! Classic group *membership* (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) for any
//! protocol type: the building block of a member that is not a consumer (Kafka Connect
//! workers use protocol type `connect`). The metadata and assignment bytes are opaque here;
//! the caller encodes them and, as the elected leader, computes the assignment.
//!
//! One [`GroupMember`] is one member: it keeps its member id across rejoins and its
//! coordinator connection until that connection fails (then it finds the coordinator
//! again). It does not heartbeat on its own: the caller runs [`GroupMember::heartbeat`] at
//! its interval and rejoins when told to.

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::cluster::Client;
use crate::connection::{api_key_name, negotiate, Connection};
use crate::error::{ClientError, Result};
use crate::groups::coordinator;

/// The versions spoken, as (key, min, max): JoinGroup v4+ has the member-id handshake
/// (MEMBER_ID_REQUIRED), LeaveGroup v3+ names members.
const MEMBERSHIP_API_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::JoinGroup, 4, 7),
    (ApiKey::SyncGroup, 3, 4),
    (ApiKey::Heartbeat, 3, 4),
    (ApiKey::LeaveGroup, 3, 4),
];

const MEMBER_ID_REQUIRED: i16 = 79;

/// Tries of [`GroupMember::join`] while the coordinator is not ready (about 20 s in all).
pub const JOIN_RETRY_ATTEMPTS: u32 = 25;
/// First wait before joining again when the coordinator is not ready.
pub const JOIN_RETRY_BACKOFF_INITIAL: std::time::Duration = std::time::Duration::from_millis(100);
/// Longest wait between two tries.
pub const JOIN_RETRY_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// How the group sees a member, from its JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedGroup {
    pub generation_id: i32,
    pub member_id: String,
    pub leader_id: String,
    /// The protocol the coordinator chose among those offered.
    pub protocol_name: String,
    /// Every member's (id, metadata) when this member is the leader; empty otherwise.
    pub members: Vec<(String, Bytes)>,
}

impl JoinedGroup {
    pub fn is_leader(&self) -> bool {
        self.member_id == self.leader_id
    }
}

/// What a heartbeat says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatOutcome {
    /// The member is in the current generation.
    Stable,
    /// A rebalance began: rejoin (the member id is still good).
    Rejoin,
    /// The member was removed (session expired, unknown member, fenced generation):
    /// rejoin as a new member.
    Lost,
}

/// One member of a classic group of `protocol_type`.
pub struct GroupMember {
    client: Client,
    group_id: String,
    protocol_type: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    member_id: String,
    generation_id: i32,
    connection: Option<Connection>,
}

fn str_bytes(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn version(connection: &Connection, api_key: ApiKey) -> Result<i16> {
    let (min, max) = MEMBERSHIP_API_VERSIONS
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .map(|&(_, min, max)| (min, max))
        .unwrap_or((0, 0));
    let broker = connection.broker_range(api_key);
    negotiate((min, max), broker).ok_or_else(|| ClientError::UnsupportedApi {
        api: api_key_name(api_key),
        address: connection.address().to_string(),
        client_min: min,
        client_max: max,
        broker,
    })
}

/// NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS: find the
/// coordinator again.
fn coordinator_moved(error: &ClientError) -> bool {
    matches!(error.code(), Some(14..=16)) || error.code().is_none()
}

impl GroupMember {
    pub fn new(
        client: Client,
        group_id: &str,
        protocol_type: &str,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
    ) -> GroupMember {
        GroupMember {
            client,
            group_id: group_id.to_string(),
            protocol_type: protocol_type.to_string(),
            session_timeout_ms,
            rebalance_timeout_ms,
            member_id: String::new(),
            generation_id: -1,
            connection: None,
        }
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    async fn connection(&mut self) -> Result<Connection> {
        if let Some(connection) = &self.connection {
            if !connection.is_closed() {
                return Ok(connection.clone());
            }
        }
        let connection = coordinator(&self.client, &self.group_id).await?;
        self.connection = Some(connection.clone());
        Ok(connection)
    }

    fn forget_connection_on(&mut self, error: &ClientError) {
        if coordinator_moved(error) {
            self.connection = None;
        }
    }

    /// Joins (or rejoins) offering `protocols` as (name, metadata), in preference order.
    /// Waits while the coordinator gathers members (up to the rebalance timeout).
    ///
    /// As Kafka's clients do, a coordinator that is not there yet (NOT_COORDINATOR,
    /// COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS, from FindCoordinator or
    /// JoinGroup: a broker just started, or its group shard still loading) is looked up
    /// again after a backoff doubling from [`JOIN_RETRY_BACKOFF_INITIAL`] to
    /// [`JOIN_RETRY_BACKOFF_MAX`], for at most [`JOIN_RETRY_ATTEMPTS`] tries; the last
    /// error is returned after that.
    pub async fn join(&mut self, protocols: &[(String, Bytes)]) -> Result<JoinedGroup> {
        let mut backoff = JOIN_RETRY_BACKOFF_INITIAL;
        let mut attempt = 1;
        loop {
            let result = self.join_inner(protocols).await;
            let Err(error) = &result else {
                return result;
            };
            self.forget_connection_on(error);
            if !matches!(error.code(), Some(14..=16)) || attempt >= JOIN_RETRY_ATTEMPTS {
                return result;
            }
            tracing::debug!(group = %self.group_id, attempt, %error, "group coordinator not ready; joining again");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(JOIN_RETRY_BACKOFF_MAX);
            attempt += 1;
        }
    }

    async fn join_inner(&mut self, protocols: &[(String, Bytes)]) -> Result<JoinedGroup> {
        // Two rounds at most: the second after MEMBER_ID_REQUIRED hands us our id.
        for _ in 0..2 {
            let connection = self.connection().await?;
            let v = version(&connection, ApiKey::JoinGroup)?;
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(str_bytes(&self.group_id)))
                .with_session_timeout_ms(self.session_timeout_ms)
                .with_rebalance_timeout_ms(self.rebalance_timeout_ms)
                .with_member_id(str_bytes(&self.member_id))
                .with_protocol_type(str_bytes(&self.protocol_type))
                .with_protocols(
                    protocols
                        .iter()
                        .map(|(name, metadata)| {
                            JoinGroupRequestProtocol::default()
                                .with_name(str_bytes(name))
                                .with_metadata(metadata.clone())
                        })
                        .collect(),
                );
            let response = connection.send_version(&request, v).await?;
            if response.error_code == MEMBER_ID_REQUIRED {
                self.member_id = response.member_id.to_string();
                continue;
            }
            if let Some(error) = ClientError::from_code(
                response.error_code,
                None,
                format!("join group '{}'", self.group_id),
            ) {
                if matches!(response.error_code, 25 | 22) {
                    // UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION: start over as a new member.
                    self.member_id.clear();
                }
                return Err(error);
            }
            self.member_id = response.member_id.to_string();
            self.generation_id = response.generation_id;
            return Ok(JoinedGroup {
                generation_id: response.generation_id,
                member_id: self.member_id.clone(),
                leader_id: response.leader.to_string(),
                protocol_name: response
                    .protocol_name
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                members: response
                    .members
                    .into_iter()
                    .map(|m| (m.member_id.to_string(), m.metadata))
                    .collect(),
            });
        }
        Err(ClientError::from_code(
            MEMBER_ID_REQUIRED,
            None,
            format!(
                "join group '{}' (member id handshake repeated)",
                self.group_id
            ),
        )
        .unwrap_or_else(|| ClientError::Decode {
            api: "JoinGroupResponse",
            version: 0,
            address: String::new(),
            reason: "member id handshake repeated".into(),
        }))
    }

    /// Sends the generation's assignments (the leader gives every member's; the others an
    /// empty list) and returns this member's.
    pub async fn sync(
        &mut self,
        joined: &JoinedGroup,
        assignments: &[(String, Bytes)],
    ) -> Result<Bytes> {
        let connection = self.connection().await?;
        let v = version(&connection, ApiKey::SyncGroup)?;
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&self.group_id)))
            .with_generation_id(joined.generation_id)
            .with_member_id(str_bytes(&self.member_id))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(member, assignment)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(str_bytes(member))
                            .with_assignment(assignment.clone())
                    })
                    .collect(),
            );
        let result = connection.send_version(&request, v).await;
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                self.forget_connection_on(&error);
                return Err(error);
            }
        };
        if let Some(error) = ClientError::from_code(
            response.error_code,
            None,
            format!("sync group '{}'", self.group_id),
        ) {
            if matches!(response.error_code, 25) {
                self.member_id.clear();
            }
            self.forget_connection_on(&error);
            return Err(error);
        }
        Ok(response.assignment)
    }

    /// One heartbeat of the current generation.
    pub async fn heartbeat(&mut self) -> Result<HeartbeatOutcome> {
        let connection = self.connection().await?;
        let v = version(&connection, ApiKey::Heartbeat)?;
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes(&self.group_id)))
            .with_generation_id(self.generation_id)
            .with_member_id(str_bytes(&self.member_id));
        let response = match connection.send_version(&request, v).await {
            Ok(response) => response,
            Err(error) => {
                self.forget_connection_on(&error);
                return Err(error);
            }
        };
        match response.error_code {
            0 => Ok(HeartbeatOutcome::Stable),
            27 => Ok(HeartbeatOutcome::Rejoin),
            22 | 25 | 82 => {
                self.member_id.clear();
                Ok(HeartbeatOutcome::Lost)
            }
            code => {
                let error = ClientError::from_code(
                    code,
                    None,
                    format!("heartbeat to group '{}'", self.group_id),
                );
                match error {
                    Some(error) => {
                        self.forget_connection_on(&error);
                        Err(error)
                    }
                    None => Ok(HeartbeatOutcome::Stable),
                }
            }
        }
    }

    /// Leaves the group so the others rebalance at once (not after the session timeout).
    pub async fn leave(&mut self) -> Result<()> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let connection = self.connection().await?;
        let v = version(&connection, ApiKey::LeaveGroup)?;
        let request = LeaveGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&self.group_id)))
            .with_members(vec![
                MemberIdentity::default().with_member_id(str_bytes(&self.member_id))
            ]);
        let response = connection.send_version(&request, v).await?;
        self.member_id.clear();
        self.generation_id = -1;
        match ClientError::from_code(
            response.error_code,
            None,
            format!("leave group '{}'", self.group_id),
        ) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
