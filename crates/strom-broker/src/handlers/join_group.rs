//! JoinGroup: parked until the group's join phase completes (see `group::classic`).

use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::classic::{JoinGroup, JoinResult};
use crate::group::error_code;
use crate::state::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    request: JoinGroupRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> JoinGroupResponse {
    let result = match broker.groups().ensure_coordinator(&request.group_id).await {
        Err(error) => JoinResult::error(error, &request.member_id),
        Ok(()) => {
            let join = JoinGroup {
                group_id: request.group_id.0.to_string(),
                member_id: request.member_id.to_string(),
                group_instance_id: request
                    .group_instance_id
                    .as_ref()
                    .map(|i| i.to_string())
                    .filter(|_| version >= 5),
                client_id: client_id.to_string(),
                client_host: client_host.to_string(),
                session_timeout_ms: request.session_timeout_ms,
                // v0 has no rebalance timeout: Kafka uses the session timeout.
                rebalance_timeout_ms: if version >= 1 {
                    request.rebalance_timeout_ms
                } else {
                    request.session_timeout_ms
                },
                protocol_type: request.protocol_type.to_string(),
                protocols: request
                    .protocols
                    .into_iter()
                    .map(|p| (p.name.to_string(), p.metadata))
                    .collect(),
                require_known_member_id: version >= 4,
            };
            broker.groups().join(join).await
        }
    };
    response(result, version)
}

pub fn response(result: JoinResult, version: i16) -> JoinGroupResponse {
    let members = result
        .members
        .into_iter()
        .map(|(member_id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(member_id))
                .with_group_instance_id(
                    instance.filter(|_| version >= 5).map(StrBytes::from_string),
                )
                .with_metadata(metadata)
        })
        .collect();
    // Before v7 the protocol name is a non-nullable string.
    let protocol_name = match result.protocol_name {
        Some(name) => Some(StrBytes::from_string(name)),
        None if version < 7 => Some(StrBytes::default()),
        None => None,
    };
    let mut response = JoinGroupResponse::default()
        .with_error_code(error_code(result.error))
        .with_generation_id(if result.error.is_none() {
            result.generation_id
        } else {
            -1
        })
        .with_protocol_name(protocol_name)
        .with_leader(StrBytes::from_string(result.leader))
        .with_member_id(StrBytes::from_string(result.member_id))
        .with_members(members);
    if version >= 7 {
        response = response.with_protocol_type(result.protocol_type.map(StrBytes::from_string));
    }
    response
}
