//! FindCoordinator: this broker coordinates every group (and transactional id) it is asked
//! about; v4+ batches keys. The offsets (or transaction state) topic is created and loaded
//! on first use.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;

use crate::state::Broker;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(
    broker: &Arc<Broker>,
    request: FindCoordinatorRequest,
    version: i16,
    advertised: (String, i32),
) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if version >= 4 {
        request.coordinator_keys
    } else {
        vec![request.key]
    };
    let key_type = request.key_type;
    let error = match key_type {
        KEY_TYPE_GROUP => match broker.groups.ensure_loaded(broker).await {
            Ok(()) => None,
            // Loading or not creatable yet: clients retry FindCoordinator on this code.
            Err(_) => Some(ErrorCode::CoordinatorNotAvailable),
        },
        KEY_TYPE_TRANSACTION => match broker.txns.ensure_loaded(broker).await {
            Ok(()) => None,
            Err(_) => Some(ErrorCode::CoordinatorNotAvailable),
        },
        _ => Some(ErrorCode::InvalidRequest),
    };
    let (host, port) = advertised;
    let host = StrBytes::from_string(host);
    let node_id = BrokerId(broker.config.node_id);
    let message = error.map(|_| {
        if key_type != KEY_TYPE_GROUP && key_type != KEY_TYPE_TRANSACTION {
            StrBytes::from_string(format!("unknown coordinator key type {key_type}"))
        } else {
            StrBytes::from_static_str("the coordinator is not available yet")
        }
    });
    if version >= 4 {
        let coordinators = keys
            .into_iter()
            .map(|key| match error {
                None => Coordinator::default()
                    .with_key(key)
                    .with_node_id(node_id)
                    .with_host(host.clone())
                    .with_port(port),
                Some(error) => Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(-1))
                    .with_host(StrBytes::default())
                    .with_port(-1)
                    .with_error_code(error.code())
                    .with_error_message(message.clone()),
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let response = FindCoordinatorResponse::default();
    let response = match error {
        None => response
            .with_node_id(node_id)
            .with_host(host)
            .with_port(port),
        Some(error) => response
            .with_error_code(error.code())
            .with_node_id(BrokerId(-1))
            .with_host(StrBytes::default())
            .with_port(-1),
    };
    if version >= 1 {
        response.with_error_message(message)
    } else {
        response
    }
}
