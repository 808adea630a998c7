//! SyncGroup: the leader's assignment in, each member's share out.

use std::sync::Arc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::classic::{SyncGroup, SyncResult};
use crate::group::error_code;
use crate::state::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let result = match broker.groups().ensure_coordinator(&request.group_id).await {
        Err(error) => SyncResult::error(error),
        Ok(()) => {
            let sync = SyncGroup {
                group_id: request.group_id.0.to_string(),
                generation_id: request.generation_id,
                member_id: request.member_id.to_string(),
                group_instance_id: request
                    .group_instance_id
                    .map(|i| i.to_string())
                    .filter(|_| version >= 3),
                protocol_type: request
                    .protocol_type
                    .map(|t| t.to_string())
                    .filter(|_| version >= 5),
                protocol_name: request
                    .protocol_name
                    .map(|n| n.to_string())
                    .filter(|_| version >= 5),
                assignments: request
                    .assignments
                    .into_iter()
                    .map(|a| (a.member_id.to_string(), a.assignment))
                    .collect(),
            };
            broker.groups().sync(sync).await
        }
    };
    let mut response = SyncGroupResponse::default()
        .with_error_code(error_code(result.error))
        .with_assignment(result.assignment);
    if version >= 5 {
        response = response
            .with_protocol_type(result.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(result.protocol_name.map(StrBytes::from_string));
    }
    response
}
