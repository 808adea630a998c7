//! Heartbeat of a classic group member: keeps its session and learns of rebalances.

use std::sync::Arc;

use crate::group::error_code;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::state::{now_ms, Broker};

pub async fn handle(
    broker: &Arc<Broker>,
    request: HeartbeatRequest,
    version: i16,
) -> HeartbeatResponse {
    let error = match broker.groups().ensure_coordinator(&request.group_id).await {
        Err(error) => Some(error),
        Ok(()) => {
            let instance = request
                .group_instance_id
                .as_ref()
                .map(|i| i.as_str())
                .filter(|_| version >= 3);
            match broker.groups().lock_group(request.group_id.0.as_str()) {
                Err(code) => Some(code),
                Ok(mut state) => state
                    .heartbeat(
                        now_ms(),
                        request.group_id.0.as_str(),
                        request.member_id.as_str(),
                        instance,
                        request.generation_id,
                    )
                    .err(),
            }
        }
    };
    HeartbeatResponse::default().with_error_code(error_code(error))
}
