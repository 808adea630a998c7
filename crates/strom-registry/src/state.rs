//! The registry's memory: subjects, versions, schemas by id, configs and modes, rebuilt by
//! applying the records of `_schemas` in order. Pure: no I/O.

use std::collections::{BTreeMap, HashMap};

use crate::error::RegistryError;
use crate::records::{Entry, Mode, Reference, SchemaValue};
use crate::schema::{self, CompatibilityLevel, ParsedSchema, ResolvedReference, SchemaType};

/// Longest chain of references followed when resolving one schema's references.
pub const REFERENCE_DEPTH_MAX: usize = 32;
/// The compatibility level when none is configured (Confluent's default).
pub const DEFAULT_LEVEL: CompatibilityLevel = CompatibilityLevel::Backward;

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub id: i32,
    pub deleted: bool,
}

/// What makes two registrations the same schema: type, canonical text, references.
pub type Identity = (SchemaType, String, Vec<Reference>);

/// A schema under its id.
#[derive(Debug, Clone)]
pub struct StoredSchema {
    pub schema_type: SchemaType,
    /// The text served (the canonical form it was registered with).
    pub text: String,
    pub references: Vec<Reference>,
    /// None when the text no longer parses (a newer parser, an imported log): such a
    /// schema is served but left out of compatibility checks.
    pub parsed: Option<ParsedSchema>,
    identity: Identity,
}

#[derive(Debug, Default)]
pub struct State {
    pub subjects: BTreeMap<String, BTreeMap<i32, Version>>,
    pub schemas: HashMap<i32, StoredSchema>,
    /// How many versions (soft-deleted included) use each id.
    id_uses: HashMap<i32, usize>,
    by_identity: HashMap<Identity, i32>,
    pub global_level: Option<CompatibilityLevel>,
    pub subject_levels: HashMap<String, CompatibilityLevel>,
    pub global_mode: Option<Mode>,
    pub subject_modes: HashMap<String, Mode>,
    pub max_id: i32,
    /// The offset of the next `_schemas` record to apply.
    pub applied: i64,
}

impl State {
    /// Applies one record of `_schemas`.
    pub fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Schema {
                subject,
                version,
                value,
            } => self.apply_schema(subject, version, value),
            Entry::Config { subject, level } => match (subject, level) {
                (None, level) => self.global_level = level,
                (Some(subject), Some(level)) => {
                    self.subject_levels.insert(subject, level);
                }
                (Some(subject), None) => {
                    self.subject_levels.remove(&subject);
                }
            },
            Entry::Mode { subject, mode } => match (subject, mode) {
                (None, mode) => self.global_mode = mode,
                (Some(subject), Some(mode)) => {
                    self.subject_modes.insert(subject, mode);
                }
                (Some(subject), None) => {
                    self.subject_modes.remove(&subject);
                }
            },
            Entry::DeleteSubject { subject, version } => {
                if let Some(versions) = self.subjects.get_mut(&subject) {
                    for (_, entry) in versions.range_mut(..=version) {
                        entry.deleted = true;
                    }
                }
            }
            Entry::Ignored => {}
        }
    }

    fn apply_schema(&mut self, subject: String, version: i32, value: Option<SchemaValue>) {
        let previous = match &value {
            Some(value) => {
                let id = value.id;
                if !self.schemas.contains_key(&id) {
                    let stored = self.stored(value);
                    self.by_identity
                        .entry(stored.identity.clone())
                        .or_insert(id);
                    self.schemas.insert(id, stored);
                }
                *self.id_uses.entry(id).or_default() += 1;
                self.max_id = self.max_id.max(id);
                self.subjects.entry(subject).or_default().insert(
                    version,
                    Version {
                        id,
                        deleted: value.deleted,
                    },
                )
            }
            None => {
                let versions = self.subjects.get_mut(&subject);
                let removed = versions.and_then(|versions| versions.remove(&version));
                if self.subjects.get(&subject).is_some_and(BTreeMap::is_empty) {
                    self.subjects.remove(&subject);
                }
                removed
            }
        };
        if let Some(previous) = previous {
            self.release(previous.id);
        }
    }

    fn release(&mut self, id: i32) {
        let Some(uses) = self.id_uses.get_mut(&id) else {
            return;
        };
        *uses -= 1;
        if *uses == 0 {
            self.id_uses.remove(&id);
            if let Some(stored) = self.schemas.remove(&id) {
                if self.by_identity.get(&stored.identity) == Some(&id) {
                    self.by_identity.remove(&stored.identity);
                }
            }
        }
    }

    /// A stored schema for a record read back: parsed again for its identity.
    fn stored(&self, value: &SchemaValue) -> StoredSchema {
        let parsed = self
            .resolve(&value.references)
            .ok()
            .and_then(|refs| schema::parse(value.schema_type, &value.schema, &refs, false).ok());
        if parsed.is_none() {
            tracing::warn!(
                id = value.id,
                subject = %value.subject,
                "a schema in _schemas does not parse; served as stored, not checked for compatibility"
            );
        }
        let canonical = parsed
            .as_ref()
            .map_or_else(|| value.schema.clone(), |p| p.canonical().to_string());
        StoredSchema {
            schema_type: value.schema_type,
            text: value.schema.clone(),
            references: value.references.clone(),
            parsed,
            identity: (value.schema_type, canonical, value.references.clone()),
        }
    }

    /// Resolves `references` to texts, transitively (a referenced schema's own references
    /// come first), each name once.
    pub fn resolve(
        &self,
        references: &[Reference],
    ) -> Result<Vec<ResolvedReference>, RegistryError> {
        let mut out = Vec::new();
        self.resolve_into(references, 0, &mut out)?;
        Ok(out)
    }

    fn resolve_into(
        &self,
        references: &[Reference],
        depth: usize,
        out: &mut Vec<ResolvedReference>,
    ) -> Result<(), RegistryError> {
        if depth > REFERENCE_DEPTH_MAX {
            return Err(RegistryError::InvalidSchema {
                message: format!("references nested deeper than {REFERENCE_DEPTH_MAX}"),
            });
        }
        for reference in references {
            if out.iter().any(|r| r.name == reference.name) {
                continue;
            }
            let version = self.version_of(&reference.subject, reference.version, true);
            let Some(stored) = version.and_then(|v| self.schemas.get(&v.id)) else {
                return Err(RegistryError::InvalidSchema {
                    message: format!(
                        "Invalid reference {{name={}, subject={}, version={}}}: not found",
                        reference.name, reference.subject, reference.version
                    ),
                });
            };
            self.resolve_into(&stored.references, depth + 1, out)?;
            out.push(ResolvedReference {
                name: reference.name.clone(),
                schema_type: stored.schema_type,
                text: stored.text.clone(),
            });
        }
        Ok(())
    }

    /// Version `version` of `subject` (-1: the latest not deleted, or the latest at all
    /// with `deleted`).
    pub fn version_of(&self, subject: &str, version: i32, deleted: bool) -> Option<Version> {
        let versions = self.subjects.get(subject)?;
        if version == -1 {
            return versions
                .iter()
                .rev()
                .find(|(_, v)| deleted || !v.deleted)
                .map(|(_, v)| *v);
        }
        versions
            .get(&version)
            .filter(|v| deleted || !v.deleted)
            .copied()
    }

    /// The resolved number of a version (`-1` = latest not deleted, or at all with `deleted`).
    pub fn version_number(&self, subject: &str, version: i32, deleted: bool) -> Option<i32> {
        let versions = self.subjects.get(subject)?;
        if version == -1 {
            return versions
                .iter()
                .rev()
                .find(|(_, v)| deleted || !v.deleted)
                .map(|(n, _)| *n);
        }
        versions
            .get(&version)
            .filter(|v| deleted || !v.deleted)
            .map(|_| version)
    }

    /// Whether `subject` has a version (not deleted, unless `deleted`).
    pub fn subject_exists(&self, subject: &str, deleted: bool) -> bool {
        self.subjects
            .get(subject)
            .is_some_and(|versions| versions.values().any(|v| deleted || !v.deleted))
    }

    /// The id already given to this identity, if any.
    /// Whether `id` is the schema of a live (not soft-deleted) version of `subject`: what
    /// server-side schema validation accepts.
    pub fn subject_has_id(&self, subject: &str, id: i32) -> bool {
        self.subjects.get(subject).is_some_and(|versions| {
            versions
                .values()
                .any(|version| version.id == id && !version.deleted)
        })
    }

    pub fn id_of(&self, identity: &Identity) -> Option<i32> {
        self.by_identity.get(identity).copied()
    }

    /// The identity of a stored id.
    pub fn identity_of(&self, id: i32) -> Option<&Identity> {
        self.schemas.get(&id).map(|s| &s.identity)
    }

    pub fn level_for(&self, subject: &str) -> CompatibilityLevel {
        self.subject_levels
            .get(subject)
            .copied()
            .or(self.global_level)
            .unwrap_or(DEFAULT_LEVEL)
    }

    pub fn mode_for(&self, subject: &str) -> Mode {
        self.subject_modes
            .get(subject)
            .copied()
            .or(self.global_mode)
            .unwrap_or(Mode::ReadWrite)
    }

    /// (subject, version) pairs using `id`, sorted.
    pub fn versions_with_id(&self, id: i32, deleted: bool) -> Vec<(String, i32)> {
        let mut out = Vec::new();
        for (subject, versions) in &self.subjects {
            for (number, version) in versions {
                if version.id == id && (deleted || !version.deleted) {
                    out.push((subject.clone(), *number));
                }
            }
        }
        out
    }

    /// Ids of the schemas that reference `subject` version `version`.
    pub fn referenced_by(&self, subject: &str, version: i32) -> Vec<i32> {
        let mut ids: Vec<i32> = self
            .schemas
            .iter()
            .filter(|(_, s)| {
                s.references
                    .iter()
                    .any(|r| r.subject == subject && r.version == version)
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Builds the identity of a new registration: parsed with its references resolved.
    pub fn prepare(
        &self,
        schema_type: SchemaType,
        text: &str,
        references: &[Reference],
        normalize: bool,
    ) -> Result<(ParsedSchema, Identity), RegistryError> {
        let resolved = self.resolve(references)?;
        let parsed = schema::parse(schema_type, text, &resolved, normalize).map_err(|e| {
            RegistryError::InvalidSchema {
                message: e.to_string(),
            }
        })?;
        let identity = (
            schema_type,
            parsed.canonical().to_string(),
            references.to_vec(),
        );
        Ok((parsed, identity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(subject: &str, version: i32, id: i32, text: &str) -> Entry {
        Entry::Schema {
            subject: subject.into(),
            version,
            value: Some(SchemaValue {
                subject: subject.into(),
                version,
                id,
                schema_type: SchemaType::Avro,
                references: Vec::new(),
                schema: text.into(),
                deleted: false,
            }),
        }
    }

    #[test]
    fn given_versions_when_subject_soft_deleted_then_tombstoned_should_drop_ids_last() {
        let mut state = State::default();
        state.apply(schema("a", 1, 1, r#""string""#));
        state.apply(schema("b", 1, 1, r#""string""#));
        state.apply(schema("a", 2, 2, r#""int""#));
        assert_eq!(state.max_id, 2);
        assert_eq!(state.version_number("a", -1, false), Some(2));
        state.apply(Entry::DeleteSubject {
            subject: "a".into(),
            version: 2,
        });
        assert!(!state.subject_exists("a", false));
        assert!(state.subject_exists("a", true));
        for version in [1, 2] {
            state.apply(Entry::Schema {
                subject: "a".into(),
                version,
                value: None,
            });
        }
        assert!(!state.subject_exists("a", true));
        assert!(state.schemas.contains_key(&1), "still used by b");
        assert!(!state.schemas.contains_key(&2));
        assert_eq!(state.versions_with_id(1, true), vec![("b".to_string(), 1)]);
    }

    #[test]
    fn given_missing_reference_when_resolved_should_be_invalid_schema() {
        let state = State::default();
        let error = state
            .resolve(&[Reference {
                name: "x".into(),
                subject: "nowhere".into(),
                version: 1,
            }])
            .unwrap_err();
        assert_eq!(error.codes(), (422, 42201));
    }
}
