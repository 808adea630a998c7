//! The schema registry built into Strom: the Confluent Schema Registry REST API, so every
//! existing serializer and tool works with nothing but a URL.
//!
//! Layout:
//! - [`schema`]: schema types (Avro, Protobuf, JSON Schema): parsing, canonical form,
//!   references, and the compatibility rules of each level. Pure: no I/O.
//! - [`records`]: the records of `_schemas` in Confluent's key/value JSON formats.
//! - [`state`]: subjects, versions, ids, configs and modes, rebuilt by applying records.
//! - [`ops`]: what each REST call reads or decides to write.
//! - [`registry`]: the state kept up with the log; writes appended and awaited.
//! - [`http`]: the REST listener (hyper), routes, error codes, limits; its TLS handshake hook
//!   and Basic authentication / subject permissions through [`http::Access`] (`http::security`).
//! - [`log`]: [`SchemaLog`], the narrow trait the broker implements over `_schemas`.
//! - [`console`]: what the broker's web console shows of the registry (subjects, versions).
//!
//! Owns: subjects, versions, ids, compatibility levels and modes, and their storage in the
//! compacted topic `_schemas`. Must not: depend on strom-broker or reach into `Broker`; it
//! reaches the log only through [`SchemaLog`].

pub mod console;
pub mod error;
pub mod http;
pub mod log;
pub mod ops;
pub mod records;
pub mod registry;
pub mod schema;
pub mod state;

pub use error::RegistryError;
pub use log::{Appended, BoxFuture, LogError, LogRecord, SchemaLog, SCHEMAS_TOPIC};
pub use registry::Registry;

use std::sync::Arc;

/// Serves the registry's REST API on `listener` over `log` until the task is aborted.
pub fn serve(
    listener: tokio::net::TcpListener,
    log: Arc<dyn SchemaLog>,
) -> tokio::task::JoinHandle<()> {
    http::spawn(listener, Registry::new(log))
}
