//! Request routing: one file per Kafka API, named after it.
//!
//! `dispatch` checks the API key and version against [`strom_protocol::versions`], decodes
//! the header, bounds-checks the body before the generated decoder sees it, decodes, and
//! calls the handler. A request that cannot be decoded closes the connection, as Kafka does;
//! everything a decoded request can get wrong is answered with an error code at the
//! request's own version.

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod alter_client_quotas;
mod alter_configs;
mod alter_partition_reassignments;
mod alter_replica_log_dirs;
mod alter_user_scram_credentials;
mod api_versions;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_acls;
mod create_partitions;
mod create_topics;
mod delete_acls;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_acls;
mod describe_client_quotas;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
mod describe_quorum;
mod describe_transactions;
mod describe_user_scram_credentials;
mod elect_leaders;
mod end_txn;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leader_hint;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_partition_reassignments;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sasl_authenticate;
mod sasl_handshake;
mod sync_group;
mod txn_offset_commit;
mod unregister_broker;
mod write_txn_markers;

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strom_protocol::frame::{decode_request_header, peek_header_prefix};
use strom_protocol::{bounds, versions};
use tracing::{debug, error};

use crate::authz::apis as authz;
use crate::response::{encode_frame, ResponseFrame};
use crate::state::Broker;
use strom_controller::acl::operation as acl_op;

/// Who is on the other end of a connection and how they reached us.
pub struct ConnectionContext {
    pub listener: Arc<crate::listeners::ListenerInfo>,
    pub peer: std::net::SocketAddr,
    /// `User:ANONYMOUS` until TLS client authentication or SASL names someone.
    pub principal: String,
    /// SASL listeners: whether SASL authentication has succeeded on this connection.
    pub authenticated: bool,
    pub sasl: crate::sasl::SaslSession,
    /// Set when the last request went over a client quota: the next request waits until
    /// then (KIP-219 muting; see [`crate::quota`]).
    pub throttled_until: Option<std::time::Instant>,
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
            throttled_until: None,
            session_expires_at: None,
        }
    }

    /// Waits until a quota throttle earned by the previous request has passed (the
    /// connection loop calls it before reading the next request).
    pub async fn wait_out_throttle(&mut self) {
        if let Some(until) = self.throttled_until.take() {
            tokio::time::sleep_until(until.into()).await;
        }
    }

    /// The listener this connection came in on, and its address to give its clients.
    pub fn advertised(&self) -> Advertised {
        Advertised {
            listener: self.listener.name.clone(),
            host: self.listener.advertised_host.clone(),
            port: self.listener.advertised_port as i32,
        }
    }
}

/// A connection's listener and the address it advertises.
#[derive(Debug, Clone)]
pub struct Advertised {
    pub listener: String,
    pub host: String,
    pub port: i32,
}

/// One registered broker as a client of this connection should reach it.
pub struct BrokerEndpoint {
    pub broker_id: i32,
    pub host: StrBytes,
    pub port: i32,
    pub rack: Option<StrBytes>,
}

/// Every registered broker at its address on the listener the client is on (this broker
/// at that listener's advertised address). A broker without a listener of that name is
/// left out, as Kafka does: the client could not reach it the way it reached this one.
pub fn broker_endpoints(
    broker: &Broker,
    image: &strom_controller::MetadataImage,
    advertised: &Advertised,
) -> Vec<BrokerEndpoint> {
    image
        .brokers()
        .values()
        .filter_map(|b| {
            let (host, port) = if b.broker_id == broker.config().node_id {
                (advertised.host.clone(), advertised.port)
            } else {
                let (host, port) = b.endpoint(&advertised.listener)?;
                (host.to_string(), port as i32)
            };
            Some(BrokerEndpoint {
                broker_id: b.broker_id,
                host: StrBytes::from_string(host),
                port,
                rack: b.rack.clone().map(StrBytes::from_string),
            })
        })
        .collect()
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

/// The client host as Kafka shows it in group descriptions (`/127.0.0.1`).
fn client_host(context: &ConnectionContext) -> String {
    format!("/{}", context.peer.ip())
}

pub async fn dispatch(
    broker: &Arc<Broker>,
    frame: Bytes,
    context: &mut ConnectionContext,
) -> Outcome {
    // Client quotas (crate::quota): free when none is configured.
    let quota = crate::quota::Pending::start(broker, &frame);
    let outcome = route(broker, frame, context).await;
    quota.finish(
        broker,
        &context.principal,
        &mut context.throttled_until,
        outcome,
    )
}

async fn route(broker: &Arc<Broker>, frame: Bytes, context: &mut ConnectionContext) -> Outcome {
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

    // ACLs (crate::authz): a no-op when the authoriser is off or for super users.
    let check = crate::authz::Check::new(
        broker.authorizer(),
        || broker.image(),
        &context.principal,
        context.peer,
    );
    macro_rules! refuse_unless {
        ($allowed:expr, $response:expr) => {
            if !$allowed {
                return answer!($response);
            }
        };
    }
    const CLUSTER_DENIED: i16 = authz::CLUSTER_DENIED;
    const GROUP_DENIED: i16 = authz::GROUP_DENIED;

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
            refuse_unless!(
                authz::cluster(&check, acl_op::DESCRIBE),
                DescribeUserScramCredentialsResponse::default().with_error_code(CLUSTER_DENIED)
            );
            answer!(describe_user_scram_credentials::handle(broker, request))
        }
        ApiKey::AlterUserScramCredentials => {
            let request = decode!(AlterUserScramCredentialsRequest);
            if !authz::cluster(&check, acl_op::ALTER) {
                return answer!(authz::alter_scram_denied(&request));
            }
            answer!(alter_user_scram_credentials::handle(broker, request).await)
        }
        ApiKey::ApiVersions => {
            let request = decode!(ApiVersionsRequest);
            let features_epoch = broker
                .image()
                .last_offset()
                .map_or(-1, |offset| offset.min(i64::MAX as u64) as i64);
            answer!(api_versions::handle(&request, version, features_epoch))
        }
        ApiKey::Metadata => {
            let mut request = decode!(MetadataRequest);
            let denial = authz::metadata(
                &check,
                &mut request,
                version,
                broker.config().auto_create_topics,
            );
            let mut response =
                metadata::handle(broker, request, version, context.advertised()).await;
            authz::metadata_answer(&check, denial, &mut response);
            answer!(response)
        }
        ApiKey::Produce => {
            let mut request = decode!(ProduceRequest);
            let denied = authz::produce(&check, &mut request);
            match produce::handle(broker, request, version, &context.advertised()).await {
                Some(mut response) => {
                    response.responses.extend(denied);
                    answer!(response)
                }
                None => Outcome::NoResponse,
            }
        }
        ApiKey::Fetch => {
            let request = decode!(FetchRequest);
            let (mut request, session) = match fetch::open_session(broker, request, version) {
                Ok(opened) => opened,
                Err(error) => {
                    return answer!(FetchResponse::default().with_error_code(error.code()))
                }
            };
            let denied = match authz::fetch(&check, &mut request) {
                authz::FetchDenial::Cluster => {
                    return answer!(FetchResponse::default().with_error_code(CLUSTER_DENIED))
                }
                authz::FetchDenial::Topics(denied) => denied,
            };
            if !denied.is_empty() && request.topics.is_empty() {
                return answer!(FetchResponse::default()
                    .with_session_id(session.response_id())
                    .with_responses(denied));
            }
            match fetch::handle(
                broker,
                request,
                session,
                version,
                correlation_id,
                &context.advertised(),
            )
            .await
            {
                Ok(frame) if !denied.is_empty() => {
                    crate::authz::fetch_merge(frame, denied, version, correlation_id)
                }
                Ok(frame) => Outcome::Respond(frame),
                Err(encode_error) => {
                    error!(%encode_error, "fetch response encoding failed (bug)");
                    Outcome::Close(encode_error.to_string())
                }
            }
        }
        ApiKey::ListOffsets => {
            let mut request = decode!(ListOffsetsRequest);
            let denied = authz::list_offsets(&check, &mut request);
            let mut response = list_offsets::handle(broker, request, version).await;
            response.topics.extend(denied);
            answer!(response)
        }
        ApiKey::CreateTopics => {
            let mut request = decode!(CreateTopicsRequest);
            let denied = authz::create_topics(&check, &mut request);
            let mut response = create_topics::handle(broker, request, version).await;
            response.topics.extend(denied);
            answer!(response)
        }
        ApiKey::DeleteTopics => {
            let mut request = decode!(DeleteTopicsRequest);
            let denied = authz::delete_topics(&check, &mut request);
            let mut response = delete_topics::handle(broker, request, version).await;
            response.responses.extend(denied);
            answer!(response)
        }
        ApiKey::CreatePartitions => {
            let mut request = decode!(CreatePartitionsRequest);
            let denied = authz::create_partitions(&check, &mut request);
            let mut response = create_partitions::handle(broker, request).await;
            response.results.extend(denied);
            answer!(response)
        }
        ApiKey::DescribeConfigs => {
            let mut request = decode!(DescribeConfigsRequest);
            let denied = authz::describe_configs(&check, &mut request);
            let mut response = describe_configs::handle(broker, request, version);
            response.results.extend(denied);
            answer!(response)
        }
        ApiKey::AlterConfigs => {
            let mut request = decode!(AlterConfigsRequest);
            let denied = authz::alter_configs(&check, &mut request);
            let mut response = alter_configs::handle(broker, request).await;
            response.responses.extend(denied);
            answer!(response)
        }
        ApiKey::IncrementalAlterConfigs => {
            let mut request = decode!(IncrementalAlterConfigsRequest);
            let denied = authz::incremental_alter_configs(&check, &mut request);
            let mut response = incremental_alter_configs::handle(broker, request).await;
            response.responses.extend(denied);
            answer!(response)
        }
        ApiKey::DeleteRecords => {
            let mut request = decode!(DeleteRecordsRequest);
            let denied = authz::delete_records(&check, &mut request);
            let mut response = delete_records::handle(broker, request).await;
            response.topics.extend(denied);
            answer!(response)
        }
        ApiKey::AlterReplicaLogDirs => {
            let request = decode!(AlterReplicaLogDirsRequest);
            if !authz::cluster(&check, acl_op::ALTER) {
                return answer!(alter_replica_log_dirs::all_failed(request, CLUSTER_DENIED));
            }
            answer!(alter_replica_log_dirs::handle(broker, request))
        }
        ApiKey::DescribeLogDirs => {
            let request = decode!(DescribeLogDirsRequest);
            refuse_unless!(
                authz::cluster(&check, acl_op::DESCRIBE),
                DescribeLogDirsResponse::default().with_error_code(CLUSTER_DENIED)
            );
            answer!(describe_log_dirs::handle(broker, request))
        }
        ApiKey::DescribeProducers => {
            let mut request = decode!(DescribeProducersRequest);
            let denied = authz::describe_producers(&check, &mut request);
            let mut response = describe_producers::handle(broker, request);
            response.topics.extend(denied);
            answer!(response)
        }
        ApiKey::ElectLeaders => {
            let request = decode!(ElectLeadersRequest);
            answer!(elect_leaders::handle(broker, &check, request, version).await)
        }
        ApiKey::AlterPartitionReassignments => {
            let request = decode!(AlterPartitionReassignmentsRequest);
            answer!(alter_partition_reassignments::handle(broker, &check, request, version).await)
        }
        ApiKey::ListPartitionReassignments => {
            let request = decode!(ListPartitionReassignmentsRequest);
            answer!(list_partition_reassignments::handle(broker, &check, request).await)
        }
        ApiKey::DescribeQuorum => {
            let request = decode!(DescribeQuorumRequest);
            refuse_unless!(
                authz::cluster(&check, acl_op::DESCRIBE),
                DescribeQuorumResponse::default().with_error_code(CLUSTER_DENIED)
            );
            answer!(describe_quorum::handle(broker, request, version).await)
        }
        ApiKey::UnregisterBroker => {
            let request = decode!(UnregisterBrokerRequest);
            refuse_unless!(
                authz::cluster(&check, acl_op::ALTER),
                unregister_broker::refused(
                    CLUSTER_DENIED,
                    "UnregisterBroker requires ALTER on the cluster".to_string()
                )
            );
            answer!(unregister_broker::handle(broker, request).await)
        }
        ApiKey::DescribeCluster => {
            // As in Kafka, any principal may list the brokers (Metadata tells it the same);
            // without DESCRIBE on the cluster it is only told it may do nothing there.
            let request = decode!(DescribeClusterRequest);
            let mut response =
                describe_cluster::handle(broker, request, version, context.advertised());
            authz::describe_cluster_answer(&check, &mut response);
            answer!(response)
        }
        ApiKey::InitProducerId => {
            let request = decode!(InitProducerIdRequest);
            if let Some(code) = authz::init_producer_id(&check, &request) {
                return answer!(InitProducerIdResponse::default()
                    .with_error_code(code)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1));
            }
            answer!(init_producer_id::handle(broker, request, version).await)
        }
        ApiKey::AddPartitionsToTxn => {
            let request = decode!(AddPartitionsToTxnRequest);
            answer!(add_partitions_to_txn::handle(broker, &check, request, version).await)
        }
        ApiKey::AddOffsetsToTxn => {
            let request = decode!(AddOffsetsToTxnRequest);
            answer!(add_offsets_to_txn::handle(broker, &check, request, version).await)
        }
        ApiKey::EndTxn => {
            let request = decode!(EndTxnRequest);
            answer!(end_txn::handle(broker, &check, request, version).await)
        }
        ApiKey::TxnOffsetCommit => {
            let request = decode!(TxnOffsetCommitRequest);
            answer!(txn_offset_commit::handle(broker, &check, request, version).await)
        }
        ApiKey::WriteTxnMarkers => {
            let request = decode!(WriteTxnMarkersRequest);
            answer!(write_txn_markers::handle(broker, &check, request).await)
        }
        ApiKey::DescribeTransactions => {
            let request = decode!(DescribeTransactionsRequest);
            answer!(describe_transactions::handle(broker, &check, request).await)
        }
        ApiKey::ListTransactions => {
            let request = decode!(ListTransactionsRequest);
            answer!(list_transactions::handle(broker, &check, request).await)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let mut request = decode!(OffsetForLeaderEpochRequest);
            let denied = authz::offset_for_leader_epoch(&check, &mut request);
            let mut response = offset_for_leader_epoch::handle(broker, request);
            response.topics.extend(denied);
            answer!(response)
        }
        ApiKey::FindCoordinator => {
            let mut request = decode!(FindCoordinatorRequest);
            let (refused, denied) = authz::find_coordinator(&check, &mut request, version);
            if let Some(code) = refused {
                return answer!(FindCoordinatorResponse::default()
                    .with_error_code(code)
                    .with_node_id(BrokerId(-1))
                    .with_port(-1));
            }
            let mut response =
                find_coordinator::handle(broker, request, version, context.advertised()).await;
            response.coordinators.extend(denied);
            answer!(response)
        }
        ApiKey::JoinGroup => {
            let request = decode!(JoinGroupRequest);
            refuse_unless!(
                authz::group_read(&check, &request.group_id),
                JoinGroupResponse::default()
                    .with_error_code(GROUP_DENIED)
                    .with_generation_id(-1)
            );
            answer!(
                join_group::handle(broker, request, version, &client_id, &client_host(context))
                    .await
            )
        }
        ApiKey::SyncGroup => {
            let request = decode!(SyncGroupRequest);
            refuse_unless!(
                authz::group_read(&check, &request.group_id),
                SyncGroupResponse::default().with_error_code(GROUP_DENIED)
            );
            answer!(sync_group::handle(broker, request, version).await)
        }
        ApiKey::Heartbeat => {
            let request = decode!(HeartbeatRequest);
            refuse_unless!(
                authz::group_read(&check, &request.group_id),
                HeartbeatResponse::default().with_error_code(GROUP_DENIED)
            );
            answer!(heartbeat::handle(broker, request, version).await)
        }
        ApiKey::LeaveGroup => {
            let request = decode!(LeaveGroupRequest);
            refuse_unless!(
                authz::group_read(&check, &request.group_id),
                LeaveGroupResponse::default().with_error_code(GROUP_DENIED)
            );
            answer!(leave_group::handle(broker, request, version).await)
        }
        ApiKey::OffsetCommit => {
            let mut request = decode!(OffsetCommitRequest);
            let denied = match authz::offset_commit(&check, &mut request) {
                Ok(denied) => denied,
                Err(refused) => return answer!(refused),
            };
            let mut response = offset_commit::handle(broker, request, version).await;
            response.topics.extend(denied);
            answer!(response)
        }
        ApiKey::OffsetFetch => {
            let mut request = decode!(OffsetFetchRequest);
            let denied = match authz::offset_fetch(&check, &mut request, version) {
                Ok(denied) => denied,
                Err(refused) => return answer!(refused),
            };
            let mut response = offset_fetch::handle(broker, request, version).await;
            authz::offset_fetch_answer(&check, &mut response);
            response.groups.extend(denied);
            answer!(response)
        }
        ApiKey::ListGroups => {
            let request = decode!(ListGroupsRequest);
            let mut response = list_groups::handle(broker, request, version).await;
            authz::list_groups_answer(&check, &mut response);
            answer!(response)
        }
        ApiKey::DescribeGroups => {
            let mut request = decode!(DescribeGroupsRequest);
            let denied = authz::describe_groups(&check, &mut request);
            let mut response = describe_groups::handle(broker, request, version).await;
            authz::describe_groups_answer(&check, &mut response);
            response.groups.extend(denied);
            answer!(response)
        }
        ApiKey::DeleteGroups => {
            let mut request = decode!(DeleteGroupsRequest);
            let denied = authz::delete_groups(&check, &mut request);
            let mut response = delete_groups::handle(broker, request).await;
            response.results.extend(denied);
            answer!(response)
        }
        ApiKey::OffsetDelete => {
            let mut request = decode!(OffsetDeleteRequest);
            let denied = match authz::offset_delete(&check, &mut request) {
                Ok(denied) => denied,
                Err(code) => return answer!(OffsetDeleteResponse::default().with_error_code(code)),
            };
            let mut response = offset_delete::handle(broker, request).await;
            response.topics.extend(denied);
            answer!(response)
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let request = decode!(ConsumerGroupHeartbeatRequest);
            refuse_unless!(
                authz::group_read(&check, &request.group_id),
                ConsumerGroupHeartbeatResponse::default().with_error_code(GROUP_DENIED)
            );
            if let Some(refused) = authz::consumer_group_heartbeat_topics(&check, &request) {
                return answer!(refused);
            }
            answer!(
                consumer_group_heartbeat::handle(
                    broker,
                    request,
                    version,
                    &client_id,
                    &client_host(context)
                )
                .await
            )
        }
        ApiKey::ConsumerGroupDescribe => {
            let mut request = decode!(ConsumerGroupDescribeRequest);
            let denied = authz::consumer_group_describe(&check, &mut request);
            let mut response = consumer_group_describe::handle(broker, request, version).await;
            authz::consumer_group_describe_answer(&check, &mut response);
            response.groups.extend(denied);
            answer!(response)
        }
        ApiKey::CreateAcls => {
            let request = decode!(CreateAclsRequest);
            if !authz::cluster(&check, acl_op::ALTER) {
                return answer!(create_acls::denied(&request));
            }
            answer!(create_acls::handle(broker, request, &context.principal).await)
        }
        ApiKey::DescribeAcls => {
            let request = decode!(DescribeAclsRequest);
            refuse_unless!(
                authz::cluster(&check, acl_op::DESCRIBE),
                DescribeAclsResponse::default().with_error_code(CLUSTER_DENIED)
            );
            answer!(describe_acls::handle(broker, request))
        }
        ApiKey::DeleteAcls => {
            let request = decode!(DeleteAclsRequest);
            if !authz::cluster(&check, acl_op::ALTER) {
                return answer!(delete_acls::denied(&request));
            }
            answer!(delete_acls::handle(broker, request, &context.principal).await)
        }
        ApiKey::DescribeClientQuotas => {
            let request = decode!(DescribeClientQuotasRequest);
            refuse_unless!(
                authz::cluster(&check, acl_op::DESCRIBE_CONFIGS),
                DescribeClientQuotasResponse::default()
                    .with_error_code(CLUSTER_DENIED)
                    .with_entries(None)
            );
            answer!(describe_client_quotas::handle(broker, request))
        }
        ApiKey::AlterClientQuotas => {
            let request = decode!(AlterClientQuotasRequest);
            if !authz::cluster(&check, acl_op::ALTER_CONFIGS) {
                return answer!(authz::alter_client_quotas_denied(&request));
            }
            answer!(alter_client_quotas::handle(broker, request, &context.principal).await)
        }
        other => Outcome::Close(format!(
            "{other:?} is listed as supported but has no handler"
        )),
    }
}
