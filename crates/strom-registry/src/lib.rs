//! The schema registry built into Strom: the Confluent Schema Registry REST API, so every
//! existing serializer and tool works with nothing but a URL.
//!
//! Layout:
//! - [`schema`]: schema types (Avro, Protobuf, JSON Schema): parsing, canonical form,
//!   references, and the compatibility rules of each level. Pure: no I/O.
//!
//! Owns: subjects, versions, ids, compatibility levels and modes, and their storage in the
//! compacted topic `_schemas`. Must not: depend on strom-broker or reach into `Broker`; it
//! reaches the log only through the Kafka protocol or a narrow trait.

pub mod schema;
