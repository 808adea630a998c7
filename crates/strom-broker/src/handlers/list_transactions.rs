//! ListTransactions: the transactional ids this coordinator knows, filtered by state,
//! producer id, how long the open transaction has run (v1) and an id pattern (v2, a Java
//! regular expression matched against the whole id, like topic subscriptions).
//! Ids the principal may not DESCRIBE are left out, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId};
use kafka_protocol::protocol::StrBytes;
use strom_controller::acl::{operation as op, resource_type as rt};
use strom_protocol::ErrorCode;

use crate::authz::Check;
use crate::state::{now_ms, Broker};
use crate::txn::state::TxnState;

pub async fn handle(
    broker: &Arc<Broker>,
    check: &Check<'_>,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut unknown_state_filters = Vec::new();
    let mut states = Vec::new();
    for filter in &request.state_filters {
        match TxnState::from_name(filter) {
            Some(state) => states.push(state),
            None => unknown_state_filters.push(filter.clone()),
        }
    }
    let pattern = match request.transactional_id_pattern.as_deref() {
        None | Some("") => None,
        Some(pattern) => match crate::group::consumer::compile_topic_regex(pattern) {
            Ok(regex) => Some(regex),
            Err(_) => {
                return ListTransactionsResponse::default()
                    .with_error_code(ErrorCode::InvalidRegularExpression.code())
            }
        },
    };
    // The filters are all-or-nothing: an unknown state alone matches nothing else.
    if !request.state_filters.is_empty() && states.is_empty() {
        return ListTransactionsResponse::default()
            .with_unknown_state_filters(unknown_state_filters);
    }
    if broker
        .image()
        .topic(crate::txn::TRANSACTION_STATE_TOPIC)
        .is_some()
    {
        if let Err(code) = broker.txns().ensure_loaded().await {
            return ListTransactionsResponse::default().with_error_code(code.code());
        }
    }
    let now = now_ms();
    let mut listed: Vec<TransactionState> = Vec::new();
    broker.txns().read_all(|state| {
        listed.extend(
            state
                .transactions
                .values()
                .filter(|t| states.is_empty() || states.contains(&t.state))
                .filter(|t| {
                    request.producer_id_filters.is_empty()
                        || request
                            .producer_id_filters
                            .iter()
                            .any(|id| id.0 == t.producer_id)
                })
                .filter(|t| {
                    request.duration_filter < 0
                        || (t.txn_start_ms >= 0 && now - t.txn_start_ms >= request.duration_filter)
                })
                .filter(|t| {
                    pattern
                        .as_ref()
                        .is_none_or(|p| p.is_match(&t.transactional_id))
                })
                .filter(|t| {
                    check.allows_quietly(op::DESCRIBE, rt::TRANSACTIONAL_ID, &t.transactional_id)
                })
                .map(|t| {
                    TransactionState::default()
                        .with_transactional_id(
                            StrBytes::from_string(t.transactional_id.clone()).into(),
                        )
                        .with_producer_id(ProducerId(t.producer_id))
                        .with_transaction_state(StrBytes::from_static_str(t.state.name()))
                }),
        )
    });
    listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown_state_filters)
        .with_transaction_states(listed)
}
