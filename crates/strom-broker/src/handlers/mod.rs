//! Request routing: one file per Kafka API, named after it.
//!
//! `dispatch` checks the API key and version against [`strom_protocol::versions`], decodes
//! the header, bounds-checks the body before the generated decoder sees it, decodes, and
//! calls the handler. A request that cannot be decoded closes the connection, as Kafka does;
//! everything a decoded request can get wrong is answered with an error code at the
//! request's own version.

mod api_versions;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod fetch;
mod find_coordinator;
mod heartbeat;
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

/// What the connection does after a request.
pub enum Outcome {
    Respond(ResponseFrame),
    /// acks=0 produce: the client expects no answer.
    NoResponse,
    /// Malformed or unsupported beyond answering: close this connection only.
    Close(String),
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

pub async fn dispatch(broker: &Arc<Broker>, frame: Bytes) -> Outcome {
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

    match api_key {
        ApiKey::ApiVersions => {
            let request = decode!(ApiVersionsRequest);
            answer!(api_versions::handle(&request, version))
        }
        ApiKey::Metadata => {
            let request = decode!(MetadataRequest);
            answer!(metadata::handle(broker, request, version).await)
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
        ApiKey::DescribeCluster => {
            let request = decode!(DescribeClusterRequest);
            answer!(describe_cluster::handle(broker, request, version))
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
            answer!(find_coordinator::handle(broker, request, version).await)
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
