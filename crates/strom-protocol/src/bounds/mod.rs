//! Bounds check of a request body before the generated decoder sees it.
//!
//! # Why
//!
//! Request bodies are decoded by the `kafka-protocol` crate's generated decoders. They
//! trust array counts from the wire: `types::Array` and `types::CompactArray` call
//! `Vec::with_capacity(count)` before reading a single element. A 20-byte frame claiming
//! 2^31 elements makes the broker abort on allocation failure. [`check_request`] walks
//! the body first, without allocating, and rejects it before the decoder runs.
//!
//! # Invariant
//!
//! When [`check_request`] returns `Ok`, every array count in the body (every nested array,
//! every version-gated array, every array inside a known tagged field) is at most the
//! number of bytes left after that count, and every element was found in the body. As every
//! element takes at least one byte, the decoder's `with_capacity(count)` is bounded by the
//! body size (times the in-memory size of an element). Strings and bytes (including
//! `records`, skipped as one blob) must fit in the body; truncation anywhere is rejected.
//!
//! The check is exact for valid input: it reads the same fields, in the same order, with
//! the same version gates, compact vs classic encodings and tagged-field handling as the
//! generated decoders of kafka-protocol 0.18, so it never rejects a body that decoder
//! accepts. It may accept bodies the decoder then rejects for reasons that cannot cause a
//! large allocation: invalid UTF-8, a null where the field is not nullable. Bytes after
//! the end of the body are ignored, as the decoder ignores them.
//!
//! # For the broker
//!
//! Call [`check_request`] on every body before decoding it. `Err(NoSchema)`: the API has
//! no schema here, so its body must not reach the generated decoder (answer
//! UNSUPPORTED_VERSION, or close the connection). `Err(UnsupportedVersion)`: kafka-protocol
//! cannot decode that version either. Any other error is a malformed or hostile body:
//! close the connection, as Kafka does with a request it cannot parse. Memory is still proportional to the body: an element of one
//! byte on the wire (an empty compact string) becomes a 32-byte `StrBytes` in memory, so
//! the frame size cap (`socket.request.max.bytes`) stays the outer limit.
//!
//! # Tests
//!
//! `tests/` checks the walker against kafka-protocol's own codec, for every covered API at
//! every version: sampled valid requests (rich, sparse, seeded random) must pass; every
//! truncation must be judged as the decoder judges it; a huge count patched over any array
//! count must be refused; and a hostile corpus (huge counts spliced in at every offset,
//! random byte changes) is decoded under an allocator that records the largest allocation
//! whenever the walker accepts, and must fail in the decoder whenever the walker refuses.
//!
//! # Adding an API
//!
//! 1. Run `python3 requests/generate.py GROUP ApiName...` (it reads the generated
//!    decoders in `~/.cargo/registry/src/*/kafka-protocol-0.18.0/src/messages/` and
//!    asserts every shape it relies on) and paste the module it prints into
//!    `requests/GROUP.rs`; or write the tables by hand from the decoder: one
//!    `field(name, kind)` per decoded field in decode order, `.since(v)` / `.until(v)` /
//!    `.between(a, b)` for the decoder's `if version` gates, one `tagged(tag, name, kind)`
//!    per arm of its `match tag`. A kind the walker lacks (UINT16, UINT32, FLOAT64, nullable
//!    structs) is added to `schema.rs` and `walk.rs` first.
//! 2. Add the message to `requests::ALL`.
//! 3. Paste the output of `requests/generate.py --samples ApiName` into
//!    `tests/samples/GROUP.rs` and add the API to the `requests!` list in
//!    `tests/samples/mod.rs`; every test then covers it at every version.
//!
//! After a kafka-protocol upgrade, rerun the generator for every API and diff; the test
//! `schemas_cover_the_apis_and_versions_kafka_protocol_decodes` fails when the version
//! ranges moved.

mod requests;
mod schema;
mod walk;

#[cfg(test)]
mod tests;

use kafka_protocol::messages::ApiKey;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BoundsError {
    #[error("array count {count} at byte {at} exceeds the {remaining_bytes} bytes left")]
    CountTooLarge {
        count: i64,
        at: usize,
        remaining_bytes: usize,
    },
    #[error("request body truncated at byte {at}")]
    Truncated { at: usize },
    #[error("length {length} at byte {at} is negative")]
    NegativeLength { length: i32, at: usize },
    #[error("tagged field {tag} at byte {at} is not valid in version {version}")]
    TagNotValidForVersion { tag: u32, version: i16, at: usize },
    /// No schema for this API: its body must not be given to the generated decoder.
    #[error("no bounds schema for API {api_key:?}")]
    NoSchema { api_key: ApiKey },
    #[error("API {api_key:?} has no version {version} in kafka-protocol")]
    UnsupportedVersion { api_key: ApiKey, version: i16 },
}

/// Walks `body` as request `api_key` at `version` and rejects any array count larger than
/// the bytes that remain, any string or bytes running past the end, and any truncation.
/// See the module docs for the exact contract.
pub fn check_request(api_key: ApiKey, version: i16, body: &[u8]) -> Result<(), BoundsError> {
    let message = requests::schema_for(api_key).ok_or(BoundsError::NoSchema { api_key })?;
    if !message.versions.contains(version) {
        return Err(BoundsError::UnsupportedVersion { api_key, version });
    }
    walk::check(message, version, body)
}
