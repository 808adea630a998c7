//! Transactions: Kafka's transaction coordinator rules as a plain state machine
//! ([`state::TxnStateMachine`]; time passed in), the `__transaction_state` record format
//! ([`records`]), and [`runtime::TransactionCoordinator`], the runtime that writes the
//! records before installing the state, writes the markers (through
//! [`crate::log::InternalLog`]) and replays the topic, sharded per `__transaction_state`
//! partition.

pub mod records;
pub mod runtime;
mod shards;
pub mod state;

pub use runtime::{
    ProducerIds, TransactionCoordinator, TxnGuard, TxnRuntimeConfig, TRANSACTION_STATE_TOPIC,
};

#[cfg(test)]
mod state_tests;

#[cfg(test)]
mod runtime_tests;
