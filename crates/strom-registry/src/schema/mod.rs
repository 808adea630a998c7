//! Schema types and compatibility: the registry's pure core.
//!
//! The REST layer calls only what is declared here: [`parse`] a schema text (with its
//! references already resolved to texts), [`ParsedSchema::canonical`] for identity (two
//! registrations of the same canonical text get the same id), and [`check`] for a
//! compatibility level against earlier versions.
//!
//! One module per type, each with the same three parts: a parser that refuses what is not a
//! schema (never panics), a canonical text, and a reader/writer compatibility check:
//! - [`avro`]: parsed and validated by the `apache-avro` crate (names, namespaces, defaults,
//!   references as named schemas); resolution rules of the Avro specification.
//! - [`json`]: JSON Schema (drafts 4 to 2020-12), structurally validated here; Confluent's
//!   rules for open, partially open and closed content models.
//! - [`protobuf`]: `.proto` text (proto2 and proto3) through a hand-written tokenizer and
//!   parser, or a base64 `FileDescriptorProto` (what Confluent's Python serializer sends);
//!   Confluent's wire-compatibility rules.
//!
//! Direction: every type answers one question, "can a consumer using `reader` read data
//! written with `writer`?". BACKWARD asks it with reader = new, writer = old; FORWARD with
//! reader = old, writer = new; FULL asks both.

pub mod avro;
pub mod json;
pub mod protobuf;

#[cfg(test)]
mod tests;

use std::fmt;

/// The schema types the registry serves (`schemaType` in the REST API; absent = AVRO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    Avro,
    Protobuf,
    Json,
}

impl SchemaType {
    /// The REST name: `AVRO`, `PROTOBUF`, `JSON`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Protobuf => "PROTOBUF",
            SchemaType::Json => "JSON",
        }
    }

    /// Parses a REST name (case-insensitive, as Confluent accepts it).
    pub fn from_name(name: &str) -> Option<SchemaType> {
        match name.to_ascii_uppercase().as_str() {
            "AVRO" => Some(SchemaType::Avro),
            "PROTOBUF" => Some(SchemaType::Protobuf),
            "JSON" => Some(SchemaType::Json),
            _ => None,
        }
    }

    pub const ALL: [SchemaType; 3] = [SchemaType::Avro, SchemaType::Json, SchemaType::Protobuf];
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reference resolved by the registry: the name the referring schema uses for it (an
/// Avro full name, a Protobuf import path, a JSON Schema `$ref` URL) and its text.
///
/// The registry passes the transitive closure: a reference's own references are in the
/// same list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedReference {
    pub name: String,
    pub schema_type: SchemaType,
    pub text: String,
}

/// Why a schema text is not a valid schema (REST error 42201).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {schema_type} schema: {message}")]
pub struct SchemaError {
    pub schema_type: SchemaType,
    pub message: String,
}

/// The parsed form each type's compatibility check walks.
#[derive(Debug, Clone)]
enum Model {
    Avro(avro::AvroModel),
    Json(json::JsonModel),
    Protobuf(protobuf::ProtoModel),
}

/// A parsed, valid schema.
#[derive(Debug, Clone)]
pub struct ParsedSchema {
    schema_type: SchemaType,
    canonical: String,
    references: Vec<String>,
    model: Model,
}

/// Identity is the type and the canonical text (what the registry compares).
impl PartialEq for ParsedSchema {
    fn eq(&self, other: &Self) -> bool {
        self.schema_type == other.schema_type && self.canonical == other.canonical
    }
}

impl Eq for ParsedSchema {}

impl ParsedSchema {
    pub fn schema_type(&self) -> SchemaType {
        self.schema_type
    }

    /// The text the registry stores and compares for identity (Confluent's canonical
    /// string; the normalized form when `normalize` was asked for).
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// For a Protobuf schema, its base64 `FileDescriptorProto`: Confluent's answer to
    /// `GET /schemas/ids/{id}?format=serialized`, which confluent-kafka Python's Protobuf
    /// deserializer fetches for every writer schema and loads into a descriptor pool
    /// (references are fetched the same way, under their import paths). None for the other
    /// types (their `format` has no serialized form).
    pub fn serialized_descriptor(&self) -> Option<String> {
        match &self.model {
            Model::Protobuf(model) => Some(protobuf::descriptor_base64(&model.file)),
            _ => None,
        }
    }

    /// The names of the references this schema was parsed with, in the order given.
    pub fn references(&self) -> &[String] {
        &self.references
    }
}

/// Parses and validates `text` as a schema of `schema_type`, with its references.
/// `normalize` asks for the normalized form (Confluent's `normalize=true`).
pub fn parse(
    schema_type: SchemaType,
    text: &str,
    references: &[ResolvedReference],
    normalize: bool,
) -> Result<ParsedSchema, SchemaError> {
    let invalid = |message: String| SchemaError {
        schema_type,
        message,
    };
    if let Some(other) = references.iter().find(|r| r.schema_type != schema_type) {
        return Err(invalid(format!(
            "reference '{}' is a {} schema, not {}",
            other.name, other.schema_type, schema_type
        )));
    }
    let (canonical, model) = match schema_type {
        SchemaType::Avro => {
            let (canonical, model) = avro::parse(text, references, normalize).map_err(invalid)?;
            (canonical, Model::Avro(model))
        }
        SchemaType::Json => {
            let (canonical, model) = json::parse(text, references, normalize).map_err(invalid)?;
            (canonical, Model::Json(model))
        }
        SchemaType::Protobuf => {
            let (canonical, model) =
                protobuf::parse(text, references, normalize).map_err(invalid)?;
            (canonical, Model::Protobuf(model))
        }
    };
    Ok(ParsedSchema {
        schema_type,
        canonical,
        references: references.iter().map(|r| r.name.clone()).collect(),
        model,
    })
}

/// A subject's (or the global) compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompatibilityLevel {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl CompatibilityLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    pub fn from_name(name: &str) -> Option<CompatibilityLevel> {
        Some(match name.to_ascii_uppercase().as_str() {
            "NONE" => CompatibilityLevel::None,
            "BACKWARD" => CompatibilityLevel::Backward,
            "BACKWARD_TRANSITIVE" => CompatibilityLevel::BackwardTransitive,
            "FORWARD" => CompatibilityLevel::Forward,
            "FORWARD_TRANSITIVE" => CompatibilityLevel::ForwardTransitive,
            "FULL" => CompatibilityLevel::Full,
            "FULL_TRANSITIVE" => CompatibilityLevel::FullTransitive,
            _ => return None,
        })
    }

    /// (new must read old, old must read new, against all versions).
    fn directions(self) -> (bool, bool, bool) {
        match self {
            CompatibilityLevel::None => (false, false, false),
            CompatibilityLevel::Backward => (true, false, false),
            CompatibilityLevel::BackwardTransitive => (true, false, true),
            CompatibilityLevel::Forward => (false, true, false),
            CompatibilityLevel::ForwardTransitive => (false, true, true),
            CompatibilityLevel::Full => (true, true, false),
            CompatibilityLevel::FullTransitive => (true, true, true),
        }
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason a new schema is refused: which earlier schema, in which direction, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// Index into the `previous` slice given to [`check_detailed`] (0 = oldest).
    pub previous_index: usize,
    /// True when the new schema cannot read the old one's data (BACKWARD side); false when
    /// the old one cannot read the new one's (FORWARD side).
    pub new_reads_old: bool,
    /// The type's description of the problem, naming its rule and path.
    pub message: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let direction = if self.new_reads_old {
            "the new schema cannot read data written with the old schema"
        } else {
            "the old schema cannot read data written with the new schema"
        };
        write!(f, "{}; {direction}", self.message)
    }
}

/// Checks `new` against a subject's earlier versions (`previous`, oldest first) under
/// `level`: non-transitive levels look at the newest only. Returns one message per
/// incompatibility (empty = compatible), worded for the REST `verbose` answer.
pub fn check(
    level: CompatibilityLevel,
    new: &ParsedSchema,
    previous: &[ParsedSchema],
) -> Vec<String> {
    check_detailed(level, new, previous)
        .iter()
        .map(Incompatibility::to_string)
        .collect()
}

/// [`check`] with each incompatibility's earlier schema and direction kept apart, for a
/// caller that wants to name the old version in its answer.
pub fn check_detailed(
    level: CompatibilityLevel,
    new: &ParsedSchema,
    previous: &[ParsedSchema],
) -> Vec<Incompatibility> {
    let (backward, forward, transitive) = level.directions();
    if !backward && !forward {
        return Vec::new();
    }
    let first = if transitive {
        0
    } else {
        previous.len().saturating_sub(1)
    };
    let mut found = Vec::new();
    // Newest first, as Confluent reports them.
    for (index, old) in previous.iter().enumerate().skip(first).rev() {
        if backward {
            for message in reader_incompatibilities(new, old) {
                found.push(Incompatibility {
                    previous_index: index,
                    new_reads_old: true,
                    message,
                });
            }
        }
        if forward {
            for message in reader_incompatibilities(old, new) {
                found.push(Incompatibility {
                    previous_index: index,
                    new_reads_old: false,
                    message,
                });
            }
        }
    }
    found
}

/// Why a consumer using `reader` cannot read data written with `writer` (empty = it can).
fn reader_incompatibilities(reader: &ParsedSchema, writer: &ParsedSchema) -> Vec<String> {
    match (&reader.model, &writer.model) {
        (Model::Avro(r), Model::Avro(w)) => avro::reader_incompatibilities(r, w),
        (Model::Json(r), Model::Json(w)) => json::reader_incompatibilities(r, w),
        (Model::Protobuf(r), Model::Protobuf(w)) => protobuf::reader_incompatibilities(r, w),
        _ => vec![format!(
            "SCHEMA_TYPE_CHANGED: the reader is a {} schema, the writer a {} schema",
            reader.schema_type, writer.schema_type
        )],
    }
}
