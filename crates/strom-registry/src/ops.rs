//! What each REST call does to the registry, in Confluent's terms: reads answer from the
//! caught-up [`State`]; writes are [`Decision`]s (records to append and the answer).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::RegistryError;
use crate::records::{Entry, Mode, Reference, SchemaValue};
use crate::registry::Decision;
use crate::schema::{self, CompatibilityLevel, SchemaType};
use crate::state::{State, StoredSchema, DEFAULT_LEVEL};

/// The body of register, lookup and compatibility calls.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaRequest {
    pub schema: Option<String>,
    pub schema_type: Option<String>,
    pub references: Option<Vec<Reference>>,
    /// IMPORT mode only: the id and version to keep.
    pub id: Option<i32>,
    pub version: Option<i32>,
}

/// A schema request checked: its type, text and references.
#[derive(Debug, Clone)]
pub struct NewSchema {
    pub schema_type: SchemaType,
    pub text: String,
    pub references: Vec<Reference>,
    pub id: Option<i32>,
    pub version: Option<i32>,
    pub normalize: bool,
}

impl SchemaRequest {
    pub fn check(self, normalize: bool) -> Result<NewSchema, RegistryError> {
        let schema_type = match self.schema_type.as_deref() {
            None | Some("") => SchemaType::Avro,
            Some(name) => {
                SchemaType::from_name(name).ok_or_else(|| RegistryError::InvalidSchema {
                    message: format!("unknown schema type {name}"),
                })?
            }
        };
        let text = self
            .schema
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| RegistryError::InvalidSchema {
                message: "Empty schema".into(),
            })?;
        Ok(NewSchema {
            schema_type,
            text,
            references: self.references.unwrap_or_default(),
            id: self.id,
            version: self.version,
            normalize,
        })
    }
}

/// A version path segment: `latest` (or -1) is -1; otherwise 1..=2^31-1.
pub fn parse_version(text: &str) -> Result<i32, RegistryError> {
    if text.eq_ignore_ascii_case("latest") {
        return Ok(-1);
    }
    match text.parse::<i32>() {
        Ok(version) if version >= 1 || version == -1 => Ok(version),
        _ => Err(RegistryError::InvalidVersion {
            version: text.to_string(),
        }),
    }
}

pub fn parse_id(text: &str) -> Result<i32, RegistryError> {
    text.parse::<i32>()
        .map_err(|_| RegistryError::SchemaNotFound {
            id: text.to_string(),
        })
}

fn subject_not_found(subject: &str) -> RegistryError {
    RegistryError::SubjectNotFound {
        subject: subject.to_string(),
    }
}

/// The text of `stored` in `format`: `serialized` gives a Protobuf schema as its base64
/// `FileDescriptorProto` (as Confluent answers it); anything else, the stored text.
fn text_in(stored: &StoredSchema, format: Option<&str>) -> String {
    if format == Some("serialized") {
        if let Some(serialized) = stored
            .parsed
            .as_ref()
            .and_then(|p| p.serialized_descriptor())
        {
            return serialized;
        }
    }
    stored.text.clone()
}

fn schema_fields(
    map: &mut serde_json::Map<String, Value>,
    stored: &StoredSchema,
    format: Option<&str>,
) {
    if stored.schema_type != SchemaType::Avro {
        map.insert("schemaType".into(), json!(stored.schema_type.as_str()));
    }
    if !stored.references.is_empty() {
        map.insert("references".into(), json!(stored.references));
    }
    map.insert("schema".into(), json!(text_in(stored, format)));
}

fn version_json(state: &State, subject: &str, number: i32, id: i32, format: Option<&str>) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("subject".into(), json!(subject));
    map.insert("version".into(), json!(number));
    map.insert("id".into(), json!(id));
    if let Some(stored) = state.schemas.get(&id) {
        schema_fields(&mut map, stored, format);
    }
    Value::Object(map)
}

// ---- reads --------------------------------------------------------------------------

pub fn list_subjects(state: &State, deleted: bool, prefix: &str) -> Value {
    let subjects: Vec<&String> = state
        .subjects
        .keys()
        .filter(|s| s.starts_with(prefix) && state.subject_exists(s, deleted))
        .collect();
    json!(subjects)
}

/// `GET /schemas`: every version (or each subject's latest) as a schema object.
pub fn list_schemas(state: &State, deleted: bool, latest_only: bool, prefix: &str) -> Value {
    let mut out = Vec::new();
    for (subject, versions) in state.subjects.range(prefix.to_string()..) {
        if !subject.starts_with(prefix) {
            break;
        }
        let live: Vec<(&i32, &crate::state::Version)> = versions
            .iter()
            .filter(|(_, v)| deleted || !v.deleted)
            .collect();
        let chosen = if latest_only {
            live.last().copied().into_iter().collect()
        } else {
            live
        };
        for (number, version) in chosen {
            out.push(version_json(state, subject, *number, version.id, None));
        }
    }
    Value::Array(out)
}

pub fn list_versions(state: &State, subject: &str, deleted: bool) -> Result<Value, RegistryError> {
    let versions: Vec<i32> = state
        .subjects
        .get(subject)
        .map(|versions| {
            versions
                .iter()
                .filter(|(_, v)| deleted || !v.deleted)
                .map(|(n, _)| *n)
                .collect()
        })
        .unwrap_or_default();
    if versions.is_empty() {
        return Err(subject_not_found(subject));
    }
    Ok(json!(versions))
}

/// Version `version` of `subject` as (number, id).
fn find_version(
    state: &State,
    subject: &str,
    version: i32,
    deleted: bool,
) -> Result<(i32, i32), RegistryError> {
    if !state.subject_exists(subject, deleted) {
        return Err(subject_not_found(subject));
    }
    let number = state
        .version_number(subject, version, deleted)
        .ok_or_else(|| RegistryError::VersionNotFound {
            version: version.to_string(),
        })?;
    let id = state
        .version_of(subject, number, deleted)
        .map(|v| v.id)
        .ok_or_else(|| RegistryError::VersionNotFound {
            version: version.to_string(),
        })?;
    Ok((number, id))
}

pub fn get_version(
    state: &State,
    subject: &str,
    version: i32,
    deleted: bool,
    format: Option<&str>,
) -> Result<Value, RegistryError> {
    let (number, id) = find_version(state, subject, version, deleted)?;
    Ok(version_json(state, subject, number, id, format))
}

/// The schema text alone (`/subjects/{s}/versions/{v}/schema`).
pub fn get_version_text(
    state: &State,
    subject: &str,
    version: i32,
    deleted: bool,
    format: Option<&str>,
) -> Result<String, RegistryError> {
    let (_, id) = find_version(state, subject, version, deleted)?;
    state
        .schemas
        .get(&id)
        .map(|s| text_in(s, format))
        .ok_or_else(|| RegistryError::SchemaNotFound { id: id.to_string() })
}

pub fn referenced_by(state: &State, subject: &str, version: i32) -> Result<Value, RegistryError> {
    let (number, _) = find_version(state, subject, version, true)?;
    Ok(json!(state.referenced_by(subject, number)))
}

/// `POST /subjects/{s}`: the version of `subject` holding this schema.
pub fn lookup(
    state: &State,
    subject: &str,
    new: &NewSchema,
    deleted: bool,
) -> Result<Value, RegistryError> {
    if !state.subject_exists(subject, deleted) {
        return Err(subject_not_found(subject));
    }
    let (_, identity) =
        state.prepare(new.schema_type, &new.text, &new.references, new.normalize)?;
    let not_found = || RegistryError::SchemaNotFound { id: String::new() };
    let id = state.id_of(&identity).ok_or_else(not_found)?;
    let versions = state.subjects.get(subject).ok_or_else(not_found)?;
    let number = versions
        .iter()
        .rev()
        .find(|(_, v)| v.id == id && (deleted || !v.deleted))
        .map(|(n, _)| *n)
        .ok_or_else(not_found)?;
    Ok(version_json(state, subject, number, id, None))
}

fn stored_by_id(state: &State, id: i32) -> Result<&StoredSchema, RegistryError> {
    state
        .schemas
        .get(&id)
        .ok_or_else(|| RegistryError::SchemaNotFound { id: id.to_string() })
}

pub fn schema_by_id(state: &State, id: i32, format: Option<&str>) -> Result<Value, RegistryError> {
    let mut map = serde_json::Map::new();
    schema_fields(&mut map, stored_by_id(state, id)?, format);
    Ok(Value::Object(map))
}

pub fn schema_text_by_id(
    state: &State,
    id: i32,
    format: Option<&str>,
) -> Result<String, RegistryError> {
    Ok(text_in(stored_by_id(state, id)?, format))
}

pub fn id_versions(state: &State, id: i32, deleted: bool) -> Result<Value, RegistryError> {
    stored_by_id(state, id)?;
    let pairs: Vec<Value> = state
        .versions_with_id(id, deleted)
        .into_iter()
        .map(|(subject, version)| json!({"subject": subject, "version": version}))
        .collect();
    Ok(json!(pairs))
}

pub fn id_subjects(state: &State, id: i32, deleted: bool) -> Result<Value, RegistryError> {
    stored_by_id(state, id)?;
    let mut subjects: Vec<String> = state
        .versions_with_id(id, deleted)
        .into_iter()
        .map(|(subject, _)| subject)
        .collect();
    subjects.dedup();
    Ok(json!(subjects))
}

pub fn schema_types() -> Value {
    json!(["JSON", "PROTOBUF", "AVRO"])
}

/// The live versions' parsed schemas of `subject`, oldest first.
fn previous_schemas(state: &State, subject: &str, only: Option<i32>) -> Vec<schema::ParsedSchema> {
    let Some(versions) = state.subjects.get(subject) else {
        return Vec::new();
    };
    versions
        .iter()
        .filter(|(n, v)| !v.deleted && only.is_none_or(|only| only == **n))
        .filter_map(|(_, v)| state.schemas.get(&v.id)?.parsed.clone())
        .collect()
}

/// `POST /compatibility/subjects/{s}/versions[/{v}]`: `version` None checks against what
/// the subject's level names; Some against that one version (-1 = latest).
pub fn compatibility(
    state: &State,
    subject: &str,
    version: Option<i32>,
    new: &NewSchema,
    verbose: bool,
) -> Result<Value, RegistryError> {
    let (parsed, _) = state.prepare(new.schema_type, &new.text, &new.references, new.normalize)?;
    let previous = match version {
        None => previous_schemas(state, subject, None),
        Some(-1) => match state.version_number(subject, -1, false) {
            Some(latest) => previous_schemas(state, subject, Some(latest)),
            None => Vec::new(),
        },
        Some(version) => {
            let (number, _) = find_version(state, subject, version, false)?;
            previous_schemas(state, subject, Some(number))
        }
    };
    let messages = schema::check(state.level_for(subject), &parsed, &previous);
    let mut answer = json!({"is_compatible": messages.is_empty()});
    if verbose {
        answer["messages"] = json!(messages);
    }
    Ok(answer)
}

pub fn get_config(
    state: &State,
    subject: Option<&str>,
    default_to_global: bool,
) -> Result<Value, RegistryError> {
    let global = state.global_level.unwrap_or(DEFAULT_LEVEL);
    let level = match subject {
        None => global,
        Some(subject) => match state.subject_levels.get(subject) {
            Some(level) => *level,
            None if default_to_global => global,
            None => {
                return Err(RegistryError::CompatibilityNotConfigured {
                    subject: subject.to_string(),
                })
            }
        },
    };
    Ok(json!({"compatibilityLevel": level.as_str()}))
}

pub fn get_mode(
    state: &State,
    subject: Option<&str>,
    default_to_global: bool,
) -> Result<Value, RegistryError> {
    let global = state.global_mode.unwrap_or(Mode::ReadWrite);
    let mode = match subject {
        None => global,
        Some(subject) => match state.subject_modes.get(subject) {
            Some(mode) => *mode,
            None if default_to_global => global,
            None => {
                return Err(RegistryError::ModeNotConfigured {
                    subject: subject.to_string(),
                })
            }
        },
    };
    Ok(json!({"mode": mode.as_str()}))
}

// ---- writes -------------------------------------------------------------------------

fn refuse_read_only(state: &State, subject: &str) -> Result<Mode, RegistryError> {
    let mode = state.mode_for(subject);
    if mode == Mode::ReadOnly {
        return Err(RegistryError::NotPermitted {
            message: format!("Subject {subject} is in read-only mode"),
        });
    }
    Ok(mode)
}

/// `POST /subjects/{s}/versions`: the id of `new` under `subject`, registered unless it is
/// already a live version there.
pub fn register(state: &State, subject: &str, new: &NewSchema) -> Decision<Value> {
    if subject.is_empty() || subject.chars().any(char::is_control) {
        return Err(RegistryError::InvalidSubject {
            message: format!("{subject:?}"),
        });
    }
    let mode = refuse_read_only(state, subject)?;
    if mode != Mode::Import && (new.id.is_some_and(|id| id >= 0)) {
        return Err(RegistryError::NotPermitted {
            message: format!("Subject {subject} is not in import mode; an id cannot be given"),
        });
    }
    let (parsed, identity) =
        state.prepare(new.schema_type, &new.text, &new.references, new.normalize)?;
    let existing = state.id_of(&identity);
    if let (Some(id), Some(versions)) = (existing, state.subjects.get(subject)) {
        if let Some((number, _)) = versions
            .iter()
            .rev()
            .find(|(_, v)| v.id == id && !v.deleted)
        {
            if new.version.is_none_or(|v| v == *number) {
                return Ok((Vec::new(), json!({"id": id, "version": number})));
            }
        }
    }
    if mode != Mode::Import {
        let previous = previous_schemas(state, subject, None);
        let messages = schema::check(state.level_for(subject), &parsed, &previous);
        if !messages.is_empty() {
            return Err(RegistryError::Incompatible {
                subject: subject.to_string(),
                messages,
            });
        }
    }
    let id = match new.id.filter(|id| *id >= 0) {
        Some(id) => {
            if state
                .identity_of(id)
                .is_some_and(|known| *known != identity)
            {
                return Err(RegistryError::IdDoesNotMatch { id });
            }
            id
        }
        None => existing.unwrap_or(state.max_id + 1),
    };
    let latest = state
        .subjects
        .get(subject)
        .and_then(|versions| versions.keys().next_back().copied())
        .unwrap_or(0);
    let version = new.version.filter(|v| *v >= 1).unwrap_or(latest + 1);
    let entry = Entry::Schema {
        subject: subject.to_string(),
        version,
        value: Some(SchemaValue {
            subject: subject.to_string(),
            version,
            id,
            schema_type: new.schema_type,
            references: new.references.clone(),
            schema: parsed.canonical().to_string(),
            deleted: false,
        }),
    };
    Ok((vec![entry], json!({"id": id, "version": version})))
}

/// The subject's config and mode tombstones, for a subject left with no version.
fn forget_subject(state: &State, subject: &str, entries: &mut Vec<Entry>) {
    if state.subject_levels.contains_key(subject) {
        entries.push(Entry::Config {
            subject: Some(subject.to_string()),
            level: None,
        });
    }
    if state.subject_modes.contains_key(subject) {
        entries.push(Entry::Mode {
            subject: Some(subject.to_string()),
            mode: None,
        });
    }
}

/// Refuses to delete a version other subjects' schemas reference.
fn refuse_referenced(state: &State, subject: &str, version: i32) -> Result<(), RegistryError> {
    let referencing = state.referenced_by(subject, version);
    let elsewhere = referencing.iter().any(|id| {
        state
            .versions_with_id(*id, false)
            .iter()
            .any(|(s, _)| s != subject)
    });
    if elsewhere {
        return Err(RegistryError::ReferenceExists {
            subject: subject.to_string(),
            version,
        });
    }
    Ok(())
}

/// `DELETE /subjects/{s}/versions/{v}`: soft, or permanent after soft.
pub fn delete_version(
    state: &State,
    subject: &str,
    version: i32,
    permanent: bool,
) -> Decision<Value> {
    refuse_read_only(state, subject)?;
    if !state.subject_exists(subject, permanent) {
        return Err(subject_not_found(subject));
    }
    // An explicit version is found soft-deleted or not (to answer 40406 / 40407); `latest`
    // means the latest live one for a soft delete.
    let number = state
        .version_number(subject, version, permanent || version != -1)
        .ok_or_else(|| RegistryError::VersionNotFound {
            version: version.to_string(),
        })?;
    let Some(found) = state.version_of(subject, number, true) else {
        return Err(RegistryError::VersionNotFound {
            version: version.to_string(),
        });
    };
    match (permanent, found.deleted) {
        (true, false) => {
            return Err(RegistryError::VersionNotSoftDeleted {
                subject: subject.to_string(),
                version: number,
            })
        }
        (false, true) => {
            return Err(RegistryError::VersionSoftDeleted {
                subject: subject.to_string(),
                version: number,
            })
        }
        _ => {}
    }
    refuse_referenced(state, subject, number)?;
    let mut entries = Vec::new();
    if permanent {
        entries.push(Entry::Schema {
            subject: subject.to_string(),
            version: number,
            value: None,
        });
        if state.subjects.get(subject).is_some_and(|v| v.len() == 1) {
            forget_subject(state, subject, &mut entries);
        }
    } else {
        let stored = stored_by_id(state, found.id)?;
        entries.push(Entry::Schema {
            subject: subject.to_string(),
            version: number,
            value: Some(SchemaValue {
                subject: subject.to_string(),
                version: number,
                id: found.id,
                schema_type: stored.schema_type,
                references: stored.references.clone(),
                schema: stored.text.clone(),
                deleted: true,
            }),
        });
    }
    Ok((entries, json!(number)))
}

/// `DELETE /subjects/{s}`: every version, soft, or permanent after soft.
pub fn delete_subject(state: &State, subject: &str, permanent: bool) -> Decision<Value> {
    refuse_read_only(state, subject)?;
    let versions = state
        .subjects
        .get(subject)
        .ok_or_else(|| subject_not_found(subject))?;
    let live: Vec<i32> = versions
        .iter()
        .filter(|(_, v)| !v.deleted)
        .map(|(n, _)| *n)
        .collect();
    for number in versions.keys() {
        refuse_referenced(state, subject, *number)?;
    }
    if permanent {
        if !live.is_empty() {
            return Err(RegistryError::SubjectNotSoftDeleted {
                subject: subject.to_string(),
            });
        }
        let all: Vec<i32> = versions.keys().copied().collect();
        let mut entries: Vec<Entry> = all
            .iter()
            .rev()
            .map(|version| Entry::Schema {
                subject: subject.to_string(),
                version: *version,
                value: None,
            })
            .collect();
        forget_subject(state, subject, &mut entries);
        return Ok((entries, json!(all)));
    }
    let Some(last) = live.last() else {
        return Err(RegistryError::SubjectSoftDeleted {
            subject: subject.to_string(),
        });
    };
    let entry = Entry::DeleteSubject {
        subject: subject.to_string(),
        version: *last,
    };
    Ok((vec![entry], json!(live)))
}

pub fn parse_level(body: &Value) -> Result<CompatibilityLevel, RegistryError> {
    let name = body
        .get("compatibility")
        .or_else(|| body.get("compatibilityLevel"))
        .and_then(Value::as_str)
        .unwrap_or("");
    CompatibilityLevel::from_name(name).ok_or_else(|| RegistryError::InvalidCompatibility {
        level: name.to_string(),
    })
}

pub fn set_config(subject: Option<&str>, level: CompatibilityLevel) -> Decision<Value> {
    let entry = Entry::Config {
        subject: subject.map(str::to_string),
        level: Some(level),
    };
    Ok((vec![entry], json!({"compatibility": level.as_str()})))
}

pub fn delete_config(state: &State, subject: Option<&str>) -> Decision<Value> {
    let previous = match subject {
        None => state.global_level.unwrap_or(DEFAULT_LEVEL),
        Some(subject) => match state.subject_levels.get(subject) {
            Some(level) => *level,
            None if state.subject_exists(subject, true) => state.level_for(subject),
            None => return Err(subject_not_found(subject)),
        },
    };
    let entry = Entry::Config {
        subject: subject.map(str::to_string),
        level: None,
    };
    Ok((
        vec![entry],
        json!({"compatibilityLevel": previous.as_str()}),
    ))
}

pub fn parse_mode(body: &Value) -> Result<Mode, RegistryError> {
    let name = body.get("mode").and_then(Value::as_str).unwrap_or("");
    Mode::from_name(name).ok_or_else(|| RegistryError::InvalidMode {
        mode: name.to_string(),
    })
}

pub fn set_mode(state: &State, subject: Option<&str>, mode: Mode, force: bool) -> Decision<Value> {
    if mode == Mode::Import && !force {
        let found = match subject {
            None => state.subjects.keys().next().is_some(),
            Some(subject) => state.subject_exists(subject, true),
        };
        if found {
            return Err(RegistryError::NotPermitted {
                message: "Cannot import since found existing subjects".into(),
            });
        }
    }
    let entry = Entry::Mode {
        subject: subject.map(str::to_string),
        mode: Some(mode),
    };
    Ok((vec![entry], json!({"mode": mode.as_str()})))
}

pub fn delete_mode(state: &State, subject: Option<&str>) -> Decision<Value> {
    let previous = match subject {
        None => state.global_mode.unwrap_or(Mode::ReadWrite),
        Some(subject) => match state.subject_modes.get(subject) {
            Some(mode) => *mode,
            None if state.subject_exists(subject, true) => state.mode_for(subject),
            None => return Err(subject_not_found(subject)),
        },
    };
    let entry = Entry::Mode {
        subject: subject.map(str::to_string),
        mode: None,
    };
    Ok((vec![entry], json!({"mode": previous.as_str()})))
}
