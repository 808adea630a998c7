//! The records of `_schemas` in Confluent's key and value JSON formats, so a `_schemas`
//! topic written by Confluent's registry replays here (and the other way round).
//!
//! Keys: `{"keytype":"SCHEMA","subject":S,"version":V,"magic":1}`,
//! `{"keytype":"CONFIG"|"MODE"|"DELETE_SUBJECT"|"CLEAR_SUBJECT","subject":S|null,"magic":0}`,
//! `{"keytype":"NOOP","magic":0}`. Unknown key types (contexts, associations) are skipped.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::{CompatibilityLevel, SchemaType};

/// A reference as registered: the name used for it and the subject version it points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// The registry's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ReadWrite,
    ReadOnly,
    Import,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::Import => "IMPORT",
        }
    }

    pub fn from_name(name: &str) -> Option<Mode> {
        match name.to_ascii_uppercase().as_str() {
            "READWRITE" => Some(Mode::ReadWrite),
            // Confluent's READONLY_OVERRIDE acts as READONLY for the registry's own writes.
            "READONLY" | "READONLY_OVERRIDE" => Some(Mode::ReadOnly),
            "IMPORT" => Some(Mode::Import),
            _ => None,
        }
    }
}

/// A subject version as stored (`SCHEMA` value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaValue {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    pub schema_type: SchemaType,
    pub references: Vec<Reference>,
    pub schema: String,
    pub deleted: bool,
}

/// One decoded record of `_schemas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A version written, soft-deleted (`deleted`), or removed (None: tombstone).
    Schema {
        subject: String,
        version: i32,
        value: Option<SchemaValue>,
    },
    /// A compatibility level set or removed; subject None = the global one.
    Config {
        subject: Option<String>,
        level: Option<CompatibilityLevel>,
    },
    /// A mode set or removed; subject None = the global one.
    Mode {
        subject: Option<String>,
        mode: Option<Mode>,
    },
    /// Every version of `subject` up to `version` soft-deleted.
    DeleteSubject { subject: String, version: i32 },
    /// Nothing for the registry (NOOP, CLEAR_SUBJECT, contexts, unknown key types).
    Ignored,
}

#[derive(Debug, thiserror::Error)]
#[error("undecodable _schemas record: {reason}")]
pub struct RecordError {
    pub reason: String,
}

fn bad(reason: impl Into<String>) -> RecordError {
    RecordError {
        reason: reason.into(),
    }
}

#[derive(Serialize, Deserialize)]
struct RawKey {
    keytype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<i32>,
    #[serde(default)]
    magic: i32,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSchemaValue {
    subject: String,
    version: i32,
    id: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schema_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    references: Vec<Reference>,
    schema: String,
    #[serde(default)]
    deleted: bool,
}

impl Entry {
    /// Decodes a record's key and value.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Entry, RecordError> {
        let key: RawKey = serde_json::from_slice(key).map_err(|e| bad(format!("key: {e}")))?;
        let value: Option<Value> = match value {
            None => None,
            Some(bytes) => {
                Some(serde_json::from_slice(bytes).map_err(|e| bad(format!("value: {e}")))?)
            }
        };
        let value = value.filter(|v| !v.is_null());
        match key.keytype.as_str() {
            "SCHEMA" => {
                let subject = key
                    .subject
                    .ok_or_else(|| bad("SCHEMA key without subject"))?;
                let version = key
                    .version
                    .ok_or_else(|| bad("SCHEMA key without version"))?;
                let value = match value {
                    None => None,
                    Some(value) => {
                        let raw: RawSchemaValue = serde_json::from_value(value)
                            .map_err(|e| bad(format!("SCHEMA value: {e}")))?;
                        let schema_type = match raw.schema_type.as_deref() {
                            None => SchemaType::Avro,
                            Some(name) => SchemaType::from_name(name)
                                .ok_or_else(|| bad(format!("unknown schemaType {name}")))?,
                        };
                        Some(SchemaValue {
                            subject: raw.subject,
                            version: raw.version,
                            id: raw.id,
                            schema_type,
                            references: raw.references,
                            schema: raw.schema,
                            deleted: raw.deleted,
                        })
                    }
                };
                Ok(Entry::Schema {
                    subject,
                    version,
                    value,
                })
            }
            "CONFIG" => {
                let level = match value {
                    None => None,
                    Some(value) => match value.get("compatibilityLevel").and_then(Value::as_str) {
                        // A config without a level (only other Confluent settings) sets none.
                        None => None,
                        Some(name) => Some(
                            CompatibilityLevel::from_name(name)
                                .ok_or_else(|| bad(format!("unknown compatibilityLevel {name}")))?,
                        ),
                    },
                };
                Ok(Entry::Config {
                    subject: key.subject,
                    level,
                })
            }
            "MODE" => {
                let mode = match value {
                    None => None,
                    Some(value) => {
                        let name = value
                            .get("mode")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad("MODE value without mode"))?;
                        Some(
                            Mode::from_name(name)
                                .ok_or_else(|| bad(format!("unknown mode {name}")))?,
                        )
                    }
                };
                Ok(Entry::Mode {
                    subject: key.subject,
                    mode,
                })
            }
            "DELETE_SUBJECT" => {
                let subject = key
                    .subject
                    .ok_or_else(|| bad("DELETE_SUBJECT key without subject"))?;
                let Some(value) = value else {
                    return Ok(Entry::Ignored);
                };
                let version = value
                    .get("version")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| bad("DELETE_SUBJECT value without version"))?;
                Ok(Entry::DeleteSubject {
                    subject,
                    version: i32::try_from(version).map_err(|_| bad("version out of range"))?,
                })
            }
            _ => Ok(Entry::Ignored),
        }
    }

    /// Encodes the record's key and value (None: tombstone).
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        let key = |keytype: &str, subject: Option<&str>, version: Option<i32>, magic: i32| {
            let raw = RawKey {
                keytype: keytype.to_string(),
                subject: subject.map(str::to_string),
                version,
                magic,
            };
            serde_json::to_vec(&raw).unwrap_or_default()
        };
        match self {
            Entry::Schema {
                subject,
                version,
                value,
            } => {
                let value = value.as_ref().map(|v| {
                    let raw = RawSchemaValue {
                        subject: v.subject.clone(),
                        version: v.version,
                        id: v.id,
                        schema_type: (v.schema_type != SchemaType::Avro)
                            .then(|| v.schema_type.as_str().to_string()),
                        references: v.references.clone(),
                        schema: v.schema.clone(),
                        deleted: v.deleted,
                    };
                    serde_json::to_vec(&raw).unwrap_or_default()
                });
                (key("SCHEMA", Some(subject), Some(*version), 1), value)
            }
            Entry::Config { subject, level } => {
                let value = level.map(|level| {
                    serde_json::to_vec(&serde_json::json!({
                        "subject": subject,
                        "compatibilityLevel": level.as_str(),
                    }))
                    .unwrap_or_default()
                });
                (key("CONFIG", subject.as_deref(), None, 0), value)
            }
            Entry::Mode { subject, mode } => {
                let value = mode.map(|mode| {
                    serde_json::to_vec(&serde_json::json!({
                        "subject": subject,
                        "mode": mode.as_str(),
                    }))
                    .unwrap_or_default()
                });
                (key("MODE", subject.as_deref(), None, 0), value)
            }
            Entry::DeleteSubject { subject, version } => {
                let value = serde_json::to_vec(&serde_json::json!({
                    "subject": subject,
                    "version": version,
                }))
                .unwrap_or_default();
                (key("DELETE_SUBJECT", Some(subject), None, 0), Some(value))
            }
            Entry::Ignored => (key("NOOP", None, None, 0), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_confluent_schema_record_when_decoded_should_read_every_field() {
        let key = br#"{"keytype":"SCHEMA","subject":"orders-value","version":2,"magic":1}"#;
        let value = br#"{"subject":"orders-value","version":2,"id":7,"schemaType":"PROTOBUF","references":[{"name":"a.proto","subject":"a","version":1}],"schema":"syntax = \"proto3\";","deleted":true}"#;
        let entry = Entry::decode(key, Some(value)).unwrap();
        let Entry::Schema {
            subject,
            version,
            value: Some(value),
        } = &entry
        else {
            panic!("{entry:?}");
        };
        assert_eq!((subject.as_str(), *version), ("orders-value", 2));
        assert_eq!(value.id, 7);
        assert_eq!(value.schema_type, SchemaType::Protobuf);
        assert!(value.deleted);
        assert_eq!(value.references[0].name, "a.proto");
        let (k, v) = entry.encode();
        assert_eq!(Entry::decode(&k, v.as_deref()).unwrap(), entry);
    }

    #[test]
    fn given_global_config_and_mode_when_round_tripped_should_keep_null_subject() {
        let config = Entry::Config {
            subject: None,
            level: Some(CompatibilityLevel::Full),
        };
        let (k, v) = config.encode();
        assert_eq!(
            String::from_utf8(k.clone()).unwrap(),
            r#"{"keytype":"CONFIG","magic":0}"#
        );
        assert_eq!(Entry::decode(&k, v.as_deref()).unwrap(), config);
        let decoded = Entry::decode(
            br#"{"keytype":"MODE","subject":null,"magic":0}"#,
            Some(br#"{"mode":"IMPORT"}"#),
        )
        .unwrap();
        assert_eq!(
            decoded,
            Entry::Mode {
                subject: None,
                mode: Some(Mode::Import)
            }
        );
    }

    #[test]
    fn given_unknown_or_malformed_records_when_decoded_should_skip_or_refuse() {
        assert_eq!(
            Entry::decode(br#"{"keytype":"NOOP","magic":0}"#, None).unwrap(),
            Entry::Ignored
        );
        assert_eq!(
            Entry::decode(
                br#"{"keytype":"CONTEXT","tenant":"t","context":"c"}"#,
                Some(b"{}")
            )
            .unwrap(),
            Entry::Ignored
        );
        assert!(Entry::decode(b"not json", None).is_err());
        assert!(Entry::decode(br#"{"keytype":"SCHEMA","magic":1}"#, None).is_err());
    }
}
