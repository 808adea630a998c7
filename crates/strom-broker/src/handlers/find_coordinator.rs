//! FindCoordinator: the coordinator of a group (or transactional id) is the leader of its
//! partition of `__consumer_offsets` (or `__transaction_state`): partition =
//! `abs(hashCode(key)) % partitions`, as Kafka places them. v4+ batches keys. The internal
//! topic is created and this broker's partitions of it loaded on first use.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;

use crate::internal_topics;
use crate::state::Broker;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Where to send a key's requests: (node id, host, port), or why there is no answer.
type Located = Result<(i32, StrBytes, i32), (ErrorCode, StrBytes)>;

fn locate(
    broker: &Broker,
    advertised: &super::Advertised,
    topic: &'static str,
    key: &str,
) -> Located {
    let not_available = || {
        (
            ErrorCode::CoordinatorNotAvailable,
            StrBytes::from_static_str("the coordinator is not available yet"),
        )
    };
    let image = broker.image();
    let topic_image = image.topic(topic).ok_or_else(not_available)?;
    let index = internal_topics::partition_for(key, topic_image.partition_count());
    let leader = topic_image
        .partitions
        .get(index as usize)
        .map_or(-1, |p| p.leader);
    if leader < 0 {
        return Err(not_available());
    }
    if leader == broker.config().node_id {
        return Ok((
            leader,
            StrBytes::from_string(advertised.host.clone()),
            advertised.port,
        ));
    }
    let registration = image.brokers().get(&leader).ok_or_else(not_available)?;
    let (host, port) = registration
        .endpoint(&advertised.listener)
        .ok_or_else(not_available)?;
    Ok((leader, StrBytes::from_string(host.to_string()), port as i32))
}

pub async fn handle(
    broker: &Arc<Broker>,
    request: FindCoordinatorRequest,
    version: i16,
    advertised: super::Advertised,
) -> FindCoordinatorResponse {
    let key_type = request.key_type;
    // Creates the internal topic on first use and loads what this broker leads; a
    // coordinator elsewhere loads its own.
    let ready = match key_type {
        KEY_TYPE_GROUP => broker.groups().ensure_loaded().await,
        KEY_TYPE_TRANSACTION => broker.txns().ensure_loaded().await,
        _ => Err(ErrorCode::InvalidRequest),
    };
    let locate_key = |key: &StrBytes| -> Located {
        match (key_type, ready) {
            (KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION, Err(_)) => Err((
                ErrorCode::CoordinatorNotAvailable,
                StrBytes::from_static_str("the coordinator is not available yet"),
            )),
            (KEY_TYPE_GROUP, Ok(())) => {
                locate(broker, &advertised, crate::group::OFFSETS_TOPIC, key)
            }
            (KEY_TYPE_TRANSACTION, Ok(())) => locate(
                broker,
                &advertised,
                crate::txn::TRANSACTION_STATE_TOPIC,
                key,
            ),
            _ => Err((
                ErrorCode::InvalidRequest,
                StrBytes::from_string(format!("unknown coordinator key type {key_type}")),
            )),
        }
    };
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| (locate_key(&key), key))
            .map(|(located, key)| match located {
                Ok((node_id, host, port)) => Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(node_id))
                    .with_host(host)
                    .with_port(port),
                Err((error, message)) => Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(-1))
                    .with_host(StrBytes::default())
                    .with_port(-1)
                    .with_error_code(error.code())
                    .with_error_message(Some(message)),
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    // Before v4 the request names one key.
    let located = locate_key(&request.key);
    let response = FindCoordinatorResponse::default();
    match located {
        Ok((node_id, host, port)) => response
            .with_node_id(BrokerId(node_id))
            .with_host(host)
            .with_port(port),
        Err((error, message)) => {
            let response = response
                .with_error_code(error.code())
                .with_node_id(BrokerId(-1))
                .with_host(StrBytes::default())
                .with_port(-1);
            if version >= 1 {
                response.with_error_message(Some(message))
            } else {
                response
            }
        }
    }
}
