//! LeaveGroup: one member (v0-2) or a batch of members by id or instance id (v3+).

use std::sync::Arc;

use crate::group::error_code;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::state::{now_ms, Broker};

pub async fn handle(
    broker: &Arc<Broker>,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let outcome = match broker.groups().ensure_coordinator(&request.group_id).await {
        Err(error) => Err(error),
        Ok(()) => {
            let group_id = request.group_id.0.to_string();
            let leaving = members.clone();
            broker
                .groups()
                .run(&group_id, true, |state| {
                    state.leave(now_ms(), &group_id, &leaving)
                })
                .await
                .and_then(|left| left)
        }
    };
    match outcome {
        Err(error) => LeaveGroupResponse::default().with_error_code(error.code()),
        Ok(results) if version >= 3 => LeaveGroupResponse::default().with_members(
            members
                .into_iter()
                .zip(results)
                .map(|((member_id, instance), error)| {
                    MemberResponse::default()
                        .with_member_id(StrBytes::from_string(member_id))
                        .with_group_instance_id(instance.map(StrBytes::from_string))
                        .with_error_code(error_code(error))
                })
                .collect(),
        ),
        Ok(results) => LeaveGroupResponse::default()
            .with_error_code(error_code(results.first().copied().flatten())),
    }
}
