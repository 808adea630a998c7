//! DeleteGroups: empty groups only (NON_EMPTY_GROUP otherwise); their offsets and metadata
//! get tombstones in `__consumer_offsets`.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use tracing::warn;

use crate::group::{error_code, not_committed_code};
use crate::state::{now_ms, Broker};

pub async fn handle(broker: &Arc<Broker>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let loaded = broker.groups().ensure_readable().await;
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let id = group_id.0.to_string();
        let code = match loaded {
            Err(error) => Some(error),
            Ok(()) => {
                let coordinator = broker.groups();
                // The lock covers the state change and the appends, not the wait after.
                let written = coordinator.lock_group(&id).and_then(|mut state| {
                    state.delete_group(now_ms(), &id).map(|offsets| {
                        state
                            .write_offset_tombstones(&id, &offsets)
                            .and_then(|tombstones| {
                                state
                                    .write_group(&id, None)
                                    .map(|group| vec![tombstones, group])
                            })
                    })
                });
                match written {
                    Err(error) => Some(error),
                    Ok(Err(error)) => {
                        warn!(group = %id, %error, "group deleted in memory but its tombstones were not written");
                        None
                    }
                    Ok(Ok(pending)) => strom_coordinator::log::all_committed(pending)
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
