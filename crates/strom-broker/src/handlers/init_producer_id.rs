//! InitProducerId for idempotent producers (no transactional id): a fresh producer id with
//! epoch 0, or, when the client names its current id and epoch (KIP-360), the same id with
//! the epoch bumped so it can reset its sequences.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use strom_protocol::ErrorCode;
use tracing::warn;

use crate::state::Broker;

fn error(code: ErrorCode) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(code.code())
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

pub fn handle(broker: &Arc<Broker>, request: InitProducerIdRequest) -> InitProducerIdResponse {
    if request.transactional_id.is_some() {
        // Transactions arrive with the exactly-once work; until then say so plainly rather
        // than let the client retry forever.
        return error(ErrorCode::TransactionalIdAuthorizationFailed);
    }
    let current_id = request.producer_id.0;
    let current_epoch = request.producer_epoch;
    if current_id >= 0 && current_epoch >= 0 && current_epoch < i16::MAX - 1 {
        return InitProducerIdResponse::default()
            .with_producer_id(ProducerId(current_id))
            .with_producer_epoch(current_epoch + 1);
    }
    match broker.producer_ids.lock().next() {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(failure) => {
            warn!(%failure, "cannot allocate a producer id");
            error(ErrorCode::CoordinatorNotAvailable)
        }
    }
}
