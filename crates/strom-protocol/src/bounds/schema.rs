//! The shape of a request schema: what the walker needs to know about a message, and
//! nothing more (no field values, no defaults, no nullability).
//!
//! Tables are `const` items built with the small `const fn` helpers below, so a schema
//! reads like the field list of the generated decoder it mirrors.

use kafka_protocol::messages::ApiKey;

/// An inclusive range of message versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Versions {
    pub(super) min: i16,
    pub(super) max: i16,
}

impl Versions {
    pub(super) const ALL: Versions = Versions {
        min: i16::MIN,
        max: i16::MAX,
    };

    pub(super) const fn new(min: i16, max: i16) -> Self {
        Versions { min, max }
    }

    pub(super) const fn contains(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

/// How a value is laid out on the wire. Whether strings, bytes and arrays use the compact
/// (varint) or the classic (INT16/INT32) length prefix depends on the message version
/// only, so it is not part of the kind.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// A fixed number of bytes: integers, booleans, UUIDs, floats.
    Fixed(usize),
    /// STRING / COMPACT_STRING, nullable or not (length -1 / 0 means null).
    String,
    /// BYTES / COMPACT_BYTES and record sets: skipped as a length-prefixed blob.
    Bytes,
    /// ARRAY / COMPACT_ARRAY of the given element kind, nullable or not.
    Array(&'static Kind),
    /// A nested struct, encoded inline.
    Struct(&'static Struct),
}

pub(super) const BOOL: Kind = Kind::Fixed(1);
pub(super) const INT8: Kind = Kind::Fixed(1);
pub(super) const INT16: Kind = Kind::Fixed(2);
pub(super) const INT32: Kind = Kind::Fixed(4);
pub(super) const INT64: Kind = Kind::Fixed(8);
pub(super) const FLOAT64: Kind = Kind::Fixed(8);
pub(super) const UUID: Kind = Kind::Fixed(16);
pub(super) const STRING: Kind = Kind::String;
pub(super) const BYTES: Kind = Kind::Bytes;

/// A field in the fixed part of a struct, present in `versions`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    /// Documents the table and labels test failures; the walker does not need it.
    #[allow(dead_code)]
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pub(super) versions: Versions,
}

/// A known tagged field. The generated decoder reads it in place of skipping `size` bytes,
/// and fails when the tag arrives in a version outside `versions`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tagged {
    pub(super) tag: u32,
    /// Documents the table and labels test failures; the walker does not need it.
    #[allow(dead_code)]
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pub(super) versions: Versions,
}

/// A struct: its fields in wire order, then (in flexible versions) its tagged fields.
#[derive(Debug)]
pub(super) struct Struct {
    /// Documents the table and labels test failures; the walker does not need it.
    #[allow(dead_code)]
    pub(super) name: &'static str,
    pub(super) fields: &'static [Field],
    pub(super) tagged: &'static [Tagged],
}

/// The request body of one API.
#[derive(Debug)]
pub(super) struct Message {
    pub(super) api_key: ApiKey,
    /// The versions kafka-protocol can decode; its decoder fails on any other.
    pub(super) versions: Versions,
    /// The first flexible version: compact lengths and tagged fields from here on.
    pub(super) flexible_from: Option<i16>,
    pub(super) body: &'static Struct,
}

impl Message {
    pub(super) const fn is_flexible(&self, version: i16) -> bool {
        match self.flexible_from {
            Some(first) => version >= first,
            None => false,
        }
    }
}

pub(super) const fn field(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        versions: Versions::ALL,
    }
}

pub(super) const fn tagged(tag: u32, name: &'static str, kind: Kind) -> Tagged {
    Tagged {
        tag,
        name,
        kind,
        versions: Versions::ALL,
    }
}

impl Field {
    pub(super) const fn since(mut self, version: i16) -> Self {
        self.versions.min = version;
        self
    }

    pub(super) const fn until(mut self, version: i16) -> Self {
        self.versions.max = version;
        self
    }

    pub(super) const fn between(self, min: i16, max: i16) -> Self {
        self.since(min).until(max)
    }
}

impl Tagged {
    pub(super) const fn since(mut self, version: i16) -> Self {
        self.versions.min = version;
        self
    }
}
