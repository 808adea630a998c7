//! Strom's coordinators, apart from the broker that hosts them.
//!
//! - [`group`]: consumer groups. [`group::coordinator::Coordinator`] is a plain state
//!   machine (events in, [`group::Action`]s out, time passed in) over the classic
//!   rebalance protocol ([`group::classic`]) and KIP-848's ([`group::consumer`], with the
//!   server-side assignors in [`group::assignor`]); [`group::records`] and
//!   [`group::consumer_records`] are the `__consumer_offsets` record formats.
//!   [`group::GroupCoordinator`] is its runtime: one shard (state machine + lock) per
//!   `__consumer_offsets` partition this node leads, loaded and dropped on its own when
//!   leadership moves; writes are appended under the shard lock and awaited after it.
//! - [`txn`]: transactions. [`txn::state::TxnStateMachine`] holds Kafka's transaction
//!   coordinator rules; [`txn::records`] is the `__transaction_state` record format.
//!   [`txn::TransactionCoordinator`] is its runtime ([`txn::runtime`]): one shard per
//!   `__transaction_state` partition this node leads, ending transactions (markers, then
//!   the completion) on their own tasks; its tests over [`memory_log::MemoryLog`] are in
//!   `src/txn/runtime_tests.rs`.
//! - [`log`]: what the coordinators need of their internal topics, the [`log::InternalLog`]
//!   trait (led partitions and epochs, replay, append resolving at the high watermark, read
//!   barriers, transaction markers on partitions led here or sent to their leader). The broker implements it over its partition logs; [`memory_log::MemoryLog`]
//!   implements it in memory for tests (stalled partitions, leadership moves).
//! - [`clock`]: the runtime's clock, a [`clock::ManualClock`] in tests.
//!
//! The state machines do no I/O and read no clock; only the runtime awaits (tokio).
//!
//! `tests/sim/` is a seeded, replayable simulation of both coordinators (members of both
//! group protocols, commits, transactions, timeouts, lost answers, lagging replicas and
//! leadership moves rebuilt by replaying the emitted records) that checks their invariants
//! after every step: 300 seeds per `cargo test`, `STROM_SIM_SEEDS=N` for more,
//! `STROM_SIM_SEED=N` to replay one with its trace.

pub mod clock;
pub mod group;
pub mod log;
pub mod memory_log;
mod shards;
pub mod txn;

/// The internal-topic partition of a group id or transactional id: Java's
/// `String.hashCode(key)` (over UTF-16 code units) modulo the partition count, as Kafka
/// computes it, so clients and tools agree on which broker coordinates a key.
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    let mut hash: i32 = 0;
    for unit in key.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(unit as i32);
    }
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}
