//! `strom-broker`: the Kafka-speaking broker.
//!
//! Owns: the listener and connections ([`server`], [`connection`]), request routing with one
//! file per Kafka API ([`handlers`]), the partitions this broker hosts ([`partition`]), the
//! broker config ([`config`]), and the fetch response encoding that serves records straight
//! from segment files ([`fetch_encoding`]), the group coordinator ([`group`]), the
//! transaction coordinator ([`txn`]) and the internal topics both keep their state in
//! ([`internal_topics`]), and the
//! HTTP endpoint for health, Prometheus metrics and the web console ([`http`], [`metrics`]),
//! and the ACL authoriser and client quotas applied around the handlers ([`authz`],
//! [`quota`]).
//!
//! Must not: implement consensus (that is `strom-controller`), or decode records on the hot
//! path: produce validates batch headers and appends the bytes; fetch sends file ranges with
//! `sendfile(2)`.
//!
//! Concurrency: a tokio runtime; one task per connection with one request in flight (Kafka's
//! ordering rule); each partition log behind its own mutex; the metadata image behind an
//! `Arc` swapped after each change. Long-polling fetches wait on a broker-wide "appended"
//! signal and re-read their partitions, which is cheap (an index lookup) and keeps the
//! mechanism simple until profiles say otherwise.

pub mod admin;
pub mod authz;
pub mod cleaner;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod errors;
pub mod fetch_encoding;
pub mod group;
pub mod handlers;
pub mod http;
pub mod internal_topics;
pub mod listeners;
pub mod metadata;
pub mod metrics;
pub mod partition;
pub mod producer_ids;
pub mod quota;
pub mod replica_fetcher;
pub mod replication;
pub mod response;
pub mod sasl;
pub mod server;
pub mod state;
pub mod tls;
pub mod txn;

pub use config::{BrokerConfig, ConfigError, RawConfig};
pub use server::{bind, BoundBroker, ServerError};
