//! `strom-broker`: the Kafka-speaking broker.
//!
//! Owns:
//! - the listeners and connections ([`server`], [`connection`]) and request routing with
//!   one file per Kafka API ([`handlers`]);
//! - the partitions this broker hosts, each a leader or a follower as the metadata image
//!   says ([`partition`]): the leader's high watermark and ISR rules ([`replication`], pure
//!   state machines with a deterministic simulation), followers fetching from their
//!   leaders ([`replica_fetcher`]), ISR changes proposed to the controller, registration,
//!   heartbeats and controlled shutdown ([`cluster`]);
//! - where metadata lives ([`metadata`]): a local single-voter log (the single-node
//!   default) or a Raft quorum of controllers from `strom-controller`, which this node
//!   joins as a voter (combined mode) or as an observer (a broker-only node,
//!   `process.roles=broker`); a controller-only node (`process.roles=controller`) runs just
//!   its voter ([`server::run_controller`]) and none of the rest;
//! - the broker config ([`config`]), and the fetch response encoding that serves records
//!   straight from segment files ([`fetch_encoding`]);
//! - the group coordinator ([`group`]), the transaction coordinator ([`txn`]) and the
//!   internal topics both keep their state in ([`internal_topics`]); each coordinates the
//!   keys of the internal partitions this broker leads;
//! - the HTTP endpoint for health, Prometheus metrics and the web console ([`http`],
//!   [`metrics`]), and the ACL authoriser and client quotas applied around the handlers
//!   ([`authz`], [`quota`]).
//!
//! The services above meet in [`state::Broker`], whose fields are private: modules read
//! them through its accessors (`partitions()`, `groups()`, `config()`, ...), and only
//! `Broker::new` decides what a broker is made of.
//!
//! Must not: implement consensus (that is `strom-controller`), or decode records on the hot
//! path: produce validates batch headers and appends the bytes (records are walked, not
//! decoded, only for topics with per-record rules: compacted, timestamp bounds, schema
//! validation, [`schema_validation`]); fetch
//! sends file ranges with `sendfile(2)`; followers append the leader's bytes unchanged.
//!
//! Concurrency: a tokio runtime; one task per connection with one request in flight (Kafka's
//! ordering rule); each partition log behind its own mutex (lock order: log, then replica
//! role); the metadata image behind an `Arc` swapped after each change, one change at a
//! time and never backwards. Long-polling fetches and acks=all produces wait on a
//! broker-wide "appended" signal (also raised when a high watermark moves) and re-read
//! their partitions, which is cheap (an index lookup) and keeps the mechanism simple until
//! profiles say otherwise.

pub mod admin;
pub mod authz;
pub mod cleaner;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod errors;
pub mod fetch_encoding;
pub mod fetch_session;
pub mod group;
pub mod handlers;
pub mod http;
pub mod inter_broker;
pub mod internal_topics;
pub mod listeners;
pub mod metadata;
pub mod metrics;
pub mod partition;
pub mod producer_ids;
pub mod quota;
pub mod reassignment_throttle;
pub mod replica_fetcher;
pub mod replication;
pub mod response;
pub mod sasl;
pub mod schema_validation;
pub mod server;
pub mod state;
pub mod tiering;
pub mod tls;
pub mod txn;

pub use config::{BrokerConfig, ConfigError, RawConfig};
pub use server::{bind, run_controller, BoundBroker, ServerError};
