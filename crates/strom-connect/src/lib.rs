//! `strom-connect`: a Kafka Connect-compatible connector runtime on `strom-client`.
//!
//! Owns: standalone and distributed workers ([`standalone`], [`distributed`]), the
//! compacted logs that hold connector configs, source offsets and statuses ([`kv`],
//! [`state`]), the tasks a worker runs ([`worker`]), the REST API with Kafka Connect's
//! routes, config keys and error bodies ([`rest`], [`herder`]), and the built-in
//! connectors ([`plugins`], [`file_connectors`], [`postgres_sink`],
//! [`http_sink`]) with the sink driver ([`sink`]), transforms ([`transforms`]) and
//! `errors.*` handling ([`errors`]).
//!
//! Distributed workers form a classic group of protocol type `connect` through any
//! Kafka-compatible broker and rebalance incrementally and cooperatively as KIP-415
//! describes (`connect.protocol=sessioned` or `compatible`, [`cooperative`]): tasks that
//! stay put keep running, those that move are stopped first and placed in the next
//! generation, and a departed worker's work waits `scheduled.rebalance.max.delay.ms` for
//! it. `connect.protocol=eager` (or any member speaking only `default`) rebalances
//! eagerly: every worker stops all its tasks and the leader assigns round-robin.
//! Any worker writes a REST change straight to the configs topic (one partition, so one
//! order); every worker reads it and rejoins when connectors or their task counts change.
//! Task configs are derived from the connector config by each worker (they are
//! deterministic for the built-in connectors), not written by the leader.
//!
//! Must not: depend on the broker crates (it speaks only the Kafka protocol, so workers run
//! against any Kafka-compatible cluster); hold a lock across a Kafka request except the
//! worker's own task table while tasks stop.
//!
//! Limits: [`rest::BODY_BYTES_MAX`] and [`rest::CONNECTIONS_MAX`] for the REST listener.

pub mod config;
pub mod cooperative;
pub mod distributed;
pub mod error;
pub mod errors;
pub mod file_connectors;
pub mod herder;
pub mod http_sink;
pub mod kv;
pub mod plugins;
pub mod postgres_sink;
pub mod rest;
pub mod sink;
pub mod standalone;
pub mod state;
pub mod transforms;
pub mod worker;

pub use config::WorkerConfig;
pub use error::{ConnectError, Result};
