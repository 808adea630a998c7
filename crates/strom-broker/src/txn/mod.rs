//! The transaction coordinator, hosted: `strom-coordinator`'s runtime
//! ([`strom_coordinator::txn::TransactionCoordinator`], sharded by `__transaction_state`
//! partition) over this broker's internal topics ([`crate::internal_topics::BrokerLog`]).
//! The state machine, the record format and the runtime live in that crate and are
//! re-exported here for the handlers. What stays here is the broker's side of it:
//!
//! - [`markers`]: writing COMMIT/ABORT markers to the partitions this broker leads (the
//!   coordinator's markers through `BrokerLog`, and WriteTxnMarkers from other brokers or
//!   an operator), and sending WriteTxnMarkers to another broker.
//! - [`remote`]: a partition leader that is not the coordinator of a transactional id asks
//!   that coordinator about a transactional write (AddPartitionsToTxn v4 `verify_only` for
//!   transaction version 1, v5 for version 2), as Kafka's `AddPartitionsToTxnManager`.
//! - [`connections`]: the connections both keep open to other brokers, shared between
//!   transactions.
//! - the runtime's settings from the broker config and its producer-id source.

mod connections;
pub mod markers;
pub mod remote;

pub use strom_coordinator::txn::{
    records, state, TransactionCoordinator, TxnGuard, TRANSACTION_STATE_TOPIC,
};

use std::sync::Weak;

use strom_coordinator::log::InternalTopic;
use strom_coordinator::txn::{ProducerIds, TxnRuntimeConfig};

use crate::config::BrokerConfig;
use crate::state::Broker;

/// The runtime's settings from the broker config.
pub fn runtime_config(config: &BrokerConfig) -> TxnRuntimeConfig {
    let settings = &config.transaction;
    TxnRuntimeConfig {
        limits: state::TxnLimits {
            max_timeout_ms: settings.max_timeout_ms,
            id_expiration_ms: settings.id_expiration_ms,
        },
        state_topic: InternalTopic {
            name: TRANSACTION_STATE_TOPIC,
            partitions: settings.state_log_num_partitions,
            replication_factor: settings.state_log_replication_factor,
            segment_bytes: settings.state_log_segment_bytes,
        },
        abort_timed_out_interval_ms: settings.abort_timed_out_interval_ms.max(1) as u64,
        remove_expired_interval_ms: settings.remove_expired_interval_ms.max(1) as u64,
    }
}

/// Producer ids from the broker's allocator (unique across restarts and brokers).
pub struct BrokerProducerIds(pub Weak<Broker>);

impl ProducerIds for BrokerProducerIds {
    fn next_producer_id(&self) -> Result<i64, String> {
        let broker = self
            .0
            .upgrade()
            .ok_or_else(|| "the broker is shutting down".to_string())?;
        let next = broker.producer_ids().lock().next();
        next.map_err(|error| error.to_string())
    }
}
