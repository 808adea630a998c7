//! Schema types and compatibility: the registry's pure core.
//!
//! The REST layer calls only what is declared here: [`parse`] a schema text (with its
//! references already resolved to texts), [`ParsedSchema::canonical`] for identity (two
//! registrations of the same canonical text get the same id), and [`check`] for a
//! compatibility level against earlier versions.

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

/// A parsed, valid schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSchema {
    schema_type: SchemaType,
    canonical: String,
}

impl ParsedSchema {
    pub fn schema_type(&self) -> SchemaType {
        self.schema_type
    }

    /// The text the registry stores and compares for identity (Confluent's canonical
    /// string; the normalized form when `normalize` was asked for).
    pub fn canonical(&self) -> &str {
        &self.canonical
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
    // Placeholder until the per-type parsers land: JSON-based types must be JSON.
    let _ = (references, normalize);
    let canonical = match schema_type {
        SchemaType::Avro | SchemaType::Json => serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| SchemaError {
                schema_type,
                message: e.to_string(),
            })?
            .to_string(),
        SchemaType::Protobuf => text.trim().to_string(),
    };
    Ok(ParsedSchema {
        schema_type,
        canonical,
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
}

/// Checks `new` against a subject's earlier versions (`previous`, oldest first) under
/// `level`: non-transitive levels look at the newest only. Returns one message per
/// incompatibility (empty = compatible), worded for the REST `verbose` answer.
pub fn check(
    level: CompatibilityLevel,
    new: &ParsedSchema,
    previous: &[ParsedSchema],
) -> Vec<String> {
    // Placeholder until the per-type rules land.
    let _ = (level, new, previous);
    Vec::new()
}
