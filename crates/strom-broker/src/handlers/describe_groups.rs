//! DescribeGroups: state, protocol and members of classic groups. An unknown group is
//! "Dead" with no error before v6 and GROUP_ID_NOT_FOUND from v6, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;

use crate::group::classic::ClassicState;
use crate::group::coordinator::{validate_group_id, Group};
use crate::group::error_code;
use crate::state::Broker;

/// Kafka's AclOperation bits a group allows without an authoriser: READ, DELETE, DESCRIBE.
const GROUP_OPERATIONS_ALL: i32 = (1 << 3) | (1 << 6) | (1 << 8);
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

pub async fn handle(
    broker: &Arc<Broker>,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let loaded = broker.groups().ensure_readable().await;
    let operations = if version >= 3 && request.include_authorized_operations {
        GROUP_OPERATIONS_ALL
    } else {
        AUTHORIZED_OPERATIONS_OMITTED
    };
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            let id = group_id.0.to_string();
            let base = DescribedGroup::default()
                .with_group_id(group_id)
                .with_authorized_operations(operations);
            let error = |code: Option<ErrorCode>, message: String| {
                let group = DescribedGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(id.clone())))
                    .with_error_code(error_code(code))
                    .with_group_state(StrBytes::from_static_str("Dead"))
                    .with_authorized_operations(operations);
                if version >= 6 {
                    group.with_error_message(Some(StrBytes::from_string(message)))
                } else {
                    group
                }
            };
            if let Err(code) = loaded {
                return error(Some(code), "the group coordinator is loading".into());
            }
            if let Err(code) = validate_group_id(&id) {
                return error(Some(code), "the group id is empty or too long".into());
            }
            broker
                .groups()
                .read_group(&id, |state| match state.groups.get(&id) {
                    Some(Group::Classic(group)) if group.state != ClassicState::Dead => {
                        // Kafka shows protocol and assignments only once a generation is settled.
                        let settled = group.state == ClassicState::Stable;
                        let members = group
                            .members
                            .values()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(StrBytes::from_string(m.member_id.clone()))
                                    .with_group_instance_id(
                                        m.group_instance_id
                                            .clone()
                                            .filter(|_| version >= 4)
                                            .map(StrBytes::from_string),
                                    )
                                    .with_client_id(StrBytes::from_string(m.client_id.clone()))
                                    .with_client_host(StrBytes::from_string(m.client_host.clone()))
                                    .with_member_metadata(if settled {
                                        m.metadata(group.protocol_name.as_deref())
                                    } else {
                                        Default::default()
                                    })
                                    .with_member_assignment(if settled {
                                        m.assignment.clone()
                                    } else {
                                        Default::default()
                                    })
                            })
                            .collect();
                        base.with_group_state(StrBytes::from_static_str(group.state.name()))
                            .with_protocol_type(StrBytes::from_string(
                                group.protocol_type.clone().unwrap_or_default(),
                            ))
                            .with_protocol_data(StrBytes::from_string(
                                group.protocol_name.clone().unwrap_or_default(),
                            ))
                            .with_members(members)
                    }
                    Some(Group::Consumer(_)) if version >= 6 => error(
                        Some(ErrorCode::GroupIdNotFound),
                        format!("group {id} is not a classic group"),
                    ),
                    _ if version >= 6 => error(
                        Some(ErrorCode::GroupIdNotFound),
                        format!("group {id} not found"),
                    ),
                    _ => error(None, String::new()),
                })
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
