//! Request routing: one file per Kafka API, named after it.
//!
//! `dispatch` checks the API key and version against [`strom_protocol::versions`], decodes
//! the header, bounds-checks the body before the generated decoder sees it, decodes, and
//! calls the handler. A request that cannot be decoded closes the connection, as Kafka does;
//! everything a decoded request can get wrong is answered with an error code at the
//! request's own version.

mod alter_configs;
mod alter_user_scram_credentials;
mod api_versions;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
mod describe_user_scram_credentials;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sasl_authenticate;
mod sasl_handshake;
mod sync_group;

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use strom_protocol::frame::{decode_request_header, peek_header_prefix};
use strom_protocol::{bounds, versions};
use tracing::{debug, error};

use crate::response::{encode_frame, ResponseFrame};
use crate::state::Broker;

/// Who is on the other end of a connection and how they reached us.
pub struct ConnectionContext {
    pub listener: Arc<crate::listeners::ListenerInfo>,
    pub peer: std::net::SocketAddr,
    /// `User:ANONYMOUS` until TLS client authentication or SASL names someone.
    pub principal: String,
    /// SASL listeners: whether SASL authentication has succeeded on this connection.
    pub authenticated: bool,
    pub sasl: crate::sasl::SaslSession,
    /// When the SASL session ends (KIP-368, `connections.max.reauth.ms`); the client must
    /// re-authenticate before then.
    pub session_expires_at: Option<std::time::Instant>,
}

impl ConnectionContext {
    pub fn new(listener: Arc<crate::listeners::ListenerInfo>, peer: std::net::SocketAddr) -> Self {
        ConnectionContext {
            listener,
            peer,
            principal: "User:ANONYMOUS".to_string(),
            authenticated: false,
            sasl: crate::sasl::SaslSession::Idle,
            session_expires_at: None,
        }
    }

    /// The host and port to give clients of this connection.
    pub fn advertised(&self) -> (String, i32) {
        (
            self.listener.advertised_host.clone(),
            self.listener.advertised_port as i32,
        )
    }
}

/// What the connection does after a request.
pub enum Outcome {
    Respond(ResponseFrame),
    /// acks=0 produce: the client expects no answer.
    NoResponse,
    /// Malformed or unsupported beyond answering: close this connection only.
    Close(String),
    /// Answer, then close (a failed SASL authentication).
    RespondThenClose(ResponseFrame, String),
}

fn respond<T: Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, body: &T) -> Outcome {
    match encode_frame(api_key, version, correlation_id, body) {
        Ok(frame) => Outcome::Respond(frame),
        Err(encode_error) => {
            error!(%encode_error, "response encoding failed (bug)");
            Outcome::Close(encode_error.to_string())
        }
    }
}

pub async fn dispatch(
    broker: &Arc<Broker>,
    frame: Bytes,
    context: &mut ConnectionContext,
) -> Outcome {
    let Some(prefix) = peek_header_prefix(&frame) else {
        return Outcome::Close("frame shorter than a request header".into());
    };
    let Ok(api_key) = ApiKey::try_from(prefix.api_key) else {
        return Outcome::Close(format!("unknown api key {}", prefix.api_key));
    };
    let version = prefix.api_version;
    let correlation_id = prefix.correlation_id;
    if !versions::is_supported(api_key, version) {
        if api_key == ApiKey::ApiVersions {
            return api_versions::unsupported_version(correlation_id);
        }
        return Outcome::Close(format!("{api_key:?} v{version} is not supported"));
    }
    let request = match decode_request_header(frame) {
        Ok(request) => request,
        Err(error) => return Outcome::Close(error.to_string()),
    };
    if let Err(error) = bounds::check_request(api_key, version, &request.body) {
        return Outcome::Close(format!("{api_key:?} v{version} body rejected: {error}"));
    }
    debug!(client_id = ?request.header.client_id.as_deref(), "request");
    let client_id = request
        .header
        .client_id
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default();
    let mut body = request.body;

    macro_rules! decode {
        ($ty:ty) => {
            match <$ty>::decode(&mut body, version) {
                Ok(request) => request,
                Err(error) => {
                    return Outcome::Close(format!("{api_key:?} v{version} body malformed: {error}"))
                }
            }
        };
    }
    macro_rules! answer {
        ($response:expr) => {
            respond(api_key, version, correlation_id, &$response)
        };
    }

    // SASL listeners answer nothing but the handshake until the client has authenticated.
    if context.listener.security.uses_sasl()
        && !context.authenticated
        && !matches!(
            api_key,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        )
    {
        return Outcome::Close(format!(
            "{api_key:?} before SASL authentication on listener {}",
            context.listener.name
        ));
    }

    // An expired SASL session may only re-authenticate (KIP-368).
    if context
        .session_expires_at
        .is_some_and(|expiry| std::time::Instant::now() >= expiry)
        && !matches!(
            api_key,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        )
    {
        return Outcome::Close(format!(
            "SASL session of {} expired without re-authentication",
            context.principal
        ));
    }

    match api_key {
        ApiKey::SaslHandshake => {
            let request = decode!(SaslHandshakeRequest);
            answer!(sasl_handshake::handle(broker, request, context))
        }
        ApiKey::SaslAuthenticate => {
            let request = decode!(SaslAuthenticateRequest);
            let outcome = sasl_authenticate::handle(broker, request, version, context);
            match (
                respond(api_key, version, correlation_id, &outcome.response),
                outcome.close,
            ) {
                (Outcome::Respond(frame), true) => {
                    Outcome::RespondThenClose(frame, "SASL authentication failed".into())
                }
                (other, _) => other,
            }
        }
        ApiKey::DescribeUserScramCredentials => {
            let request = decode!(DescribeUserScramCredentialsRequest);
            answer!(describe_user_scram_credentials::handle(broker, request))
        }
        ApiKey::AlterUserScramCredentials => {
            let request = decode!(AlterUserScramCredentialsRequest);
            answer!(alter_user_scram_credentials::handle(broker, request).await)
        }
        ApiKey::ApiVersions => {
            let request = decode!(ApiVersionsRequest);
            answer!(api_versions::handle(&request, version))
        }
        ApiKey::Metadata => {
            let request = decode!(MetadataRequest);
            answer!(metadata::handle(broker, request, version, context.advertised()).await)
        }
        ApiKey::Produce => {
            let request = decode!(ProduceRequest);
            match produce::handle(broker, request, version).await {
                Some(response) => answer!(response),
                None => Outcome::NoResponse,
            }
        }
        ApiKey::Fetch => {
            let request = decode!(FetchRequest);
            match fetch::handle(broker, request, version, correlation_id).await {
                Ok(frame) => Outcome::Respond(frame),
                Err(encode_error) => {
                    error!(%encode_error, "fetch response encoding failed (bug)");
                    Outcome::Close(encode_error.to_string())
                }
            }
        }
        ApiKey::ListOffsets => {
            let request = decode!(ListOffsetsRequest);
            answer!(list_offsets::handle(broker, request, version))
        }
        ApiKey::CreateTopics => {
            let request = decode!(CreateTopicsRequest);
            answer!(create_topics::handle(broker, request, version).await)
        }
        ApiKey::DeleteTopics => {
            let request = decode!(DeleteTopicsRequest);
            answer!(delete_topics::handle(broker, request, version).await)
        }
        ApiKey::CreatePartitions => {
            let request = decode!(CreatePartitionsRequest);
            answer!(create_partitions::handle(broker, request).await)
        }
        ApiKey::DescribeConfigs => {
            let request = decode!(DescribeConfigsRequest);
            answer!(describe_configs::handle(broker, request, version))
        }
        ApiKey::AlterConfigs => {
            let request = decode!(AlterConfigsRequest);
            answer!(alter_configs::handle(broker, request).await)
        }
        ApiKey::IncrementalAlterConfigs => {
            let request = decode!(IncrementalAlterConfigsRequest);
            answer!(incremental_alter_configs::handle(broker, request).await)
        }
        ApiKey::DeleteRecords => {
            let request = decode!(DeleteRecordsRequest);
            answer!(delete_records::handle(broker, request).await)
        }
        ApiKey::DescribeLogDirs => {
            let request = decode!(DescribeLogDirsRequest);
            answer!(describe_log_dirs::handle(broker, request))
        }
        ApiKey::DescribeProducers => {
            let request = decode!(DescribeProducersRequest);
            answer!(describe_producers::handle(broker, request))
        }
        ApiKey::DescribeCluster => {
            let request = decode!(DescribeClusterRequest);
            answer!(describe_cluster::handle(
                broker,
                request,
                version,
                context.advertised()
            ))
        }
        ApiKey::InitProducerId => {
            let request = decode!(InitProducerIdRequest);
            answer!(init_producer_id::handle(broker, request))
        }
        ApiKey::OffsetForLeaderEpoch => {
            let request = decode!(OffsetForLeaderEpochRequest);
            answer!(offset_for_leader_epoch::handle(broker, request))
        }
        ApiKey::FindCoordinator => {
            let request = decode!(FindCoordinatorRequest);
            answer!(find_coordinator::handle(broker, request, version, context.advertised()).await)
        }
        ApiKey::JoinGroup => {
            let request = decode!(JoinGroupRequest);
            answer!(join_group::handle(broker, request, version, &client_id).await)
        }
        ApiKey::SyncGroup => {
            let request = decode!(SyncGroupRequest);
            answer!(sync_group::handle(broker, request, version).await)
        }
        ApiKey::Heartbeat => {
            let request = decode!(HeartbeatRequest);
            answer!(heartbeat::handle(broker, request, version).await)
        }
        ApiKey::LeaveGroup => {
            let request = decode!(LeaveGroupRequest);
            answer!(leave_group::handle(broker, request, version).await)
        }
        ApiKey::OffsetCommit => {
            let request = decode!(OffsetCommitRequest);
            answer!(offset_commit::handle(broker, request, version).await)
        }
        ApiKey::OffsetFetch => {
            let request = decode!(OffsetFetchRequest);
            answer!(offset_fetch::handle(broker, request, version).await)
        }
        ApiKey::ListGroups => {
            let request = decode!(ListGroupsRequest);
            answer!(list_groups::handle(broker, request, version).await)
        }
        ApiKey::DescribeGroups => {
            let request = decode!(DescribeGroupsRequest);
            answer!(describe_groups::handle(broker, request, version).await)
        }
        ApiKey::DeleteGroups => {
            let request = decode!(DeleteGroupsRequest);
            answer!(delete_groups::handle(broker, request).await)
        }
        ApiKey::OffsetDelete => {
            let request = decode!(OffsetDeleteRequest);
            answer!(offset_delete::handle(broker, request).await)
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let request = decode!(ConsumerGroupHeartbeatRequest);
            answer!(consumer_group_heartbeat::handle(broker, request, version, &client_id).await)
        }
        ApiKey::ConsumerGroupDescribe => {
            let request = decode!(ConsumerGroupDescribeRequest);
            answer!(consumer_group_describe::handle(broker, request, version).await)
        }
        other => Outcome::Close(format!(
            "{other:?} is listed as supported but has no handler"
        )),
    }
}
