//! InitProducerId. Idempotent producers (no transactional id) get a fresh producer id with
//! epoch 0, or, when the client names its current id and epoch (KIP-360), the same id with
//! the epoch bumped so it can reset its sequences. Transactional producers go to the
//! transaction coordinator, which bumps the epoch of their transactional id (fencing the
//! previous instance and aborting its open transaction).

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use strom_protocol::ErrorCode;
use tracing::warn;

use crate::state::Broker;
use crate::txn::state::ProducerIdAndEpoch;

fn error(code: ErrorCode) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(code.code())
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

pub async fn handle(
    broker: &Arc<Broker>,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let current_id = request.producer_id.0;
    let current_epoch = request.producer_epoch;
    if let Some(transactional_id) = request.transactional_id.as_deref() {
        if transactional_id.is_empty() {
            return error(ErrorCode::InvalidRequest);
        }
        let expected = (current_id >= 0 && current_epoch >= 0).then_some(ProducerIdAndEpoch {
            producer_id: current_id,
            producer_epoch: current_epoch,
        });
        return match broker
            .txns()
            .init_producer_id(transactional_id, request.transaction_timeout_ms, expected)
            .await
        {
            Ok(ids) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(ids.producer_id))
                .with_producer_epoch(ids.producer_epoch),
            // Clients before v4 know PRODUCER_FENCED as INVALID_PRODUCER_EPOCH.
            Err(ErrorCode::ProducerFenced) if version < 4 => error(ErrorCode::InvalidProducerEpoch),
            Err(code) => error(code),
        };
    }
    if current_id >= 0 && current_epoch >= 0 && current_epoch < i16::MAX - 1 {
        return InitProducerIdResponse::default()
            .with_producer_id(ProducerId(current_id))
            .with_producer_epoch(current_epoch + 1);
    }
    match broker.producer_ids().lock().next() {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(failure) => {
            warn!(%failure, "cannot allocate a producer id");
            error(ErrorCode::CoordinatorNotAvailable)
        }
    }
}
