//! Tests of the partition log through its public API, plus a few of its internals.

mod support;

mod append_read;
mod compaction;
mod compaction_crash;
mod crash;
mod durability;
mod producers;
mod recovery;
mod replica;
mod retention;
mod segments;
mod timestamps;
mod transactions;
mod transactions_compaction;
