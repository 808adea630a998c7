//! DeleteGroups: empty groups only (NON_EMPTY_GROUP otherwise); their offsets and metadata
//! get tombstones in `__consumer_offsets`.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use tracing::warn;

use crate::group::{error_code, persist};
use crate::state::{now_ms, Broker};

pub async fn handle(broker: &Arc<Broker>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let loaded = broker.groups.ensure_readable(broker).await;
    let results = request
        .groups_names
        .into_iter()
        .map(|group_id| {
            let id = group_id.0.to_string();
            let code = match loaded {
                Err(error) => Some(error),
                Ok(()) => {
                    let coordinator = &broker.groups;
                    let mut state = coordinator.state.lock();
                    match state.delete_group(now_ms(), &id) {
                        Err(error) => Some(error),
                        Ok(offsets) => {
                            let written = persist::write_offset_tombstones(
                                broker,
                                coordinator,
                                &id,
                                &offsets,
                            )
                            .and_then(|()| persist::write_group(broker, coordinator, &id, None));
                            match written {
                                Ok(()) => None,
                                Err(error) => {
                                    warn!(group = %id, %error, "group deleted in memory but its tombstones were not written");
                                    None
                                }
                            }
                        }
                    }
                }
            };
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error_code(code))
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
