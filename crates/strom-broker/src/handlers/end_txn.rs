//! EndTxn: the producer commits or aborts its transaction. Answered once the markers are
//! in every partition of the transaction (all local on a single node).

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};
use strom_controller::acl::{operation as op, resource_type as rt};
use strom_protocol::ErrorCode;

use super::add_partitions_to_txn::for_version;
use crate::authz::Check;
use crate::state::Broker;
use crate::txn::state::{ProducerIdAndEpoch, TxnResult};

pub async fn handle(
    broker: &Arc<Broker>,
    check: &Check<'_>,
    request: EndTxnRequest,
    version: i16,
) -> EndTxnResponse {
    let producer = ProducerIdAndEpoch {
        producer_id: request.producer_id.0,
        producer_epoch: request.producer_epoch,
    };
    let answer = |code: Option<ErrorCode>| {
        let response = EndTxnResponse::default().with_error_code(code.map_or(0, |c| c.code()));
        if version >= 5 {
            // Transaction version 2 is not offered (no `transaction.version` feature), so
            // the producer keeps its id and epoch.
            response
                .with_producer_id(ProducerId(producer.producer_id))
                .with_producer_epoch(producer.producer_epoch)
        } else {
            response
        }
    };
    let transactional_id = request.transactional_id.as_str();
    if !check.allows(op::WRITE, rt::TRANSACTIONAL_ID, transactional_id) {
        return answer(Some(ErrorCode::TransactionalIdAuthorizationFailed));
    }
    let result = if request.committed {
        TxnResult::Commit
    } else {
        TxnResult::Abort
    };
    match broker
        .txns
        .end_transaction(broker, transactional_id, producer, result)
        .await
    {
        Ok(()) => answer(None),
        Err(code) => answer(Some(for_version(code, version))),
    }
}
