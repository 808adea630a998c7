//! What the web console's Schemas page reads (served by the broker's HTTP endpoint under
//! `/api/schemas`): every subject with its versions and compatibility level, and one
//! subject's versions with their schema text, so the page can show and diff them. Pure
//! reads of the [`State`].

use serde_json::{json, Value};

use crate::error::RegistryError;
use crate::state::{State, DEFAULT_LEVEL};

/// Every subject (soft-deleted versions left out): versions, latest id and type, level.
pub fn subjects(state: &State) -> Value {
    let global = state.global_level.unwrap_or(DEFAULT_LEVEL);
    let mut out = Vec::new();
    for (subject, versions) in &state.subjects {
        let live: Vec<(i32, i32)> = versions
            .iter()
            .filter(|(_, v)| !v.deleted)
            .map(|(n, v)| (*n, v.id))
            .collect();
        let Some(&(latest, id)) = live.last() else {
            continue;
        };
        let schema_type = state.schemas.get(&id).map(|s| s.schema_type.as_str());
        out.push(json!({
            "subject": subject,
            "versions": live.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            "latest_version": latest,
            "latest_id": id,
            "schema_type": schema_type,
            "compatibility": state.level_for(subject).as_str(),
            "compatibility_own": state.subject_levels.contains_key(subject),
        }));
    }
    json!({
        "global_compatibility": global.as_str(),
        "subjects": out,
    })
}

/// One subject: each live version with its id, type, schema text and references.
pub fn subject(state: &State, subject: &str) -> Result<Value, RegistryError> {
    let versions = state
        .subjects
        .get(subject)
        .filter(|versions| versions.values().any(|v| !v.deleted))
        .ok_or_else(|| RegistryError::SubjectNotFound {
            subject: subject.to_string(),
        })?;
    let versions: Vec<Value> = versions
        .iter()
        .filter(|(_, v)| !v.deleted)
        .map(|(number, version)| {
            let stored = state.schemas.get(&version.id);
            json!({
                "version": number,
                "id": version.id,
                "schema_type": stored.map(|s| s.schema_type.as_str()),
                "schema": stored.map(|s| s.text.as_str()),
                "references": stored.map(|s| json!(s.references)).unwrap_or(json!([])),
            })
        })
        .collect();
    Ok(json!({
        "subject": subject,
        "compatibility": state.level_for(subject).as_str(),
        "compatibility_own": state.subject_levels.contains_key(subject),
        "versions": versions,
    }))
}
