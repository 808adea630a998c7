//! AddOffsetsToTxn: a transactional producer is about to commit a group's offsets inside its
//! transaction (`sendOffsetsToTransaction`); the group's `__consumer_offsets` partition
//! joins the transaction, so the end marker reaches it.

use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use strom_controller::acl::{operation as op, resource_type as rt};
use strom_protocol::ErrorCode;

use super::add_partitions_to_txn::for_version;
use crate::authz::Check;
use crate::group::persist;
use crate::state::Broker;
use crate::txn::state::ProducerIdAndEpoch;

fn error(code: ErrorCode) -> AddOffsetsToTxnResponse {
    AddOffsetsToTxnResponse::default().with_error_code(code.code())
}

pub async fn handle(
    broker: &Arc<Broker>,
    check: &Check<'_>,
    request: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let transactional_id = request.transactional_id.as_str();
    if !check.allows(op::WRITE, rt::TRANSACTIONAL_ID, transactional_id) {
        return error(ErrorCode::TransactionalIdAuthorizationFailed);
    }
    if !check.allows(op::READ, rt::GROUP, &request.group_id) {
        return error(ErrorCode::GroupAuthorizationFailed);
    }
    if let Err(code) = crate::group::coordinator::validate_group_id(&request.group_id) {
        return error(code);
    }
    if let Err(code) = broker.groups().ensure_loaded().await {
        return error(code);
    }
    let Some(partition) = broker.groups().partition_of(&request.group_id) else {
        return error(ErrorCode::CoordinatorNotAvailable);
    };
    let producer = ProducerIdAndEpoch {
        producer_id: request.producer_id.0,
        producer_epoch: request.producer_epoch,
    };
    match broker
        .txns()
        .add_partitions(
            transactional_id,
            producer,
            &[(persist::OFFSETS_TOPIC.to_string(), partition)],
        )
        .await
    {
        Ok(()) => AddOffsetsToTxnResponse::default(),
        Err(code) => error(for_version(code, version)),
    }
}
