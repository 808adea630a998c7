//! `strom-protocol`: the Kafka wire protocol as Strom speaks it.
//!
//! Owns: framing ([`frame`]), request headers and the table of API versions the broker
//! serves ([`versions`]), a zero-copy view of record batch v2 ([`batch`]: header fields,
//! CRC-32C check, base-offset rewrite), a record codec for clients ([`record`]), a bounds
//! check that walks a request body before it is decoded ([`bounds`]), and error codes.
//!
//! Must not: touch disk or sockets. Message bodies are decoded and encoded with the
//! `kafka-protocol` crate's generated codecs (re-exported as [`messages`]), except where the
//! hot path needs its own encoding (fetch responses carry file ranges, see the broker).
//!
//! Why `kafka-protocol`: its messages are generated from Kafka's own JSON schemas, so every
//! version and tagged field is right. Its decoders trust wire-supplied array counts, so every
//! request body first passes [`bounds::check_request`], which rejects a count larger than the
//! bytes left before anything is allocated.

pub mod batch;
pub mod bounds;
pub mod frame;
pub mod fuzzing;
pub mod record;
pub mod versions;

pub use kafka_protocol::error::ResponseError as ErrorCode;
pub use kafka_protocol::messages;
pub use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
