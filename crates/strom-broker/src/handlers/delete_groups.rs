//! DeleteGroups: empty groups only (NON_EMPTY_GROUP otherwise); their offsets and metadata
//! get tombstones in `__consumer_offsets`.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use tracing::warn;

use crate::group::{error_code, not_committed_code, persist};
use crate::internal_topics;
use crate::state::{now_ms, Broker};

pub async fn handle(broker: &Arc<Broker>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let loaded = broker.groups.ensure_readable(broker).await;
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let id = group_id.0.to_string();
        let code = match loaded {
            Err(error) => Some(error),
            Ok(()) => {
                let coordinator = &broker.groups;
                // The lock covers the state change and the appends, not the wait after.
                let written = {
                    let mut state = coordinator.state.lock();
                    state.delete_group(now_ms(), &id).map(|offsets| {
                        persist::write_offset_tombstones(broker, coordinator, &id, &offsets)
                            .and_then(|tombstones| {
                                persist::write_group(broker, coordinator, &id, None)
                                    .map(|group| vec![tombstones, group])
                            })
                    })
                };
                match written {
                    Err(error) => Some(error),
                    Ok(Err(error)) => {
                        warn!(group = %id, %error, "group deleted in memory but its tombstones were not written");
                        None
                    }
                    Ok(Ok(pending)) => internal_topics::all_committed(broker, pending)
                        .await
                        .err()
                        .map(|error| {
                            warn!(group = %id, %error, "group tombstones not committed");
                            not_committed_code(&error)
                        }),
                }
            }
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error_code(code)),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
