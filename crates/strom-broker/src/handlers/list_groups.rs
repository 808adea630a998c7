//! ListGroups: every group this broker coordinates, filtered by state (v4+) and type (v5+).

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::state::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    if let Err(error) = broker.groups().ensure_readable().await {
        return ListGroupsResponse::default().with_error_code(error.code());
    }
    let states: Vec<String> = if version >= 4 {
        request
            .states_filter
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        Vec::new()
    };
    let types: Vec<String> = if version >= 5 {
        request.types_filter.iter().map(|t| t.to_string()).collect()
    } else {
        Vec::new()
    };
    let mut groups = Vec::new();
    broker
        .groups()
        .read_all(|state| groups.extend(state.list_groups(&states, &types)));
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    ListGroupsResponse::default().with_groups(
        groups
            .into_iter()
            .map(|g| {
                let mut listed = ListedGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                    .with_protocol_type(StrBytes::from_string(g.protocol_type));
                if version >= 4 {
                    listed = listed.with_group_state(StrBytes::from_static_str(g.state));
                }
                if version >= 5 {
                    listed = listed.with_group_type(StrBytes::from_static_str(g.group_type));
                }
                listed
            })
            .collect(),
    )
}
