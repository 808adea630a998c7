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
    // Version 5+ is transaction version 2: the answer carries the producer id and epoch
    // the producer continues with (-1 on an error, as Kafka answers).
    let bump_epoch = version >= 5;
    let answer = |outcome: Result<ProducerIdAndEpoch, ErrorCode>| {
        let (code, ids) = match outcome {
            Ok(ids) => (0, ids),
            Err(code) => (
                code.code(),
                ProducerIdAndEpoch {
                    producer_id: -1,
                    producer_epoch: -1,
                },
            ),
        };
        let response = EndTxnResponse::default().with_error_code(code);
        if bump_epoch {
            response
                .with_producer_id(ProducerId(ids.producer_id))
                .with_producer_epoch(ids.producer_epoch)
        } else {
            response
        }
    };
    let transactional_id = request.transactional_id.as_str();
    if !check.allows(op::WRITE, rt::TRANSACTIONAL_ID, transactional_id) {
        return answer(Err(ErrorCode::TransactionalIdAuthorizationFailed));
    }
    let result = if request.committed {
        TxnResult::Commit
    } else {
        TxnResult::Abort
    };
    match broker
        .txns()
        .end_transaction(transactional_id, producer, result, bump_epoch)
        .await
    {
        Ok(ids) => answer(Ok(ids)),
        Err(code) => answer(Err(for_version(code, version))),
    }
}
