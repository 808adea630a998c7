//! JSON Schema: structural validation of the draft keywords (4 to 2020-12), a canonical text,
//! and compatibility by Confluent's rules.
//!
//! The compatibility question is whether every document the writer's schema accepts is also
//! accepted by the reader's. Objects follow Confluent's content models: a schema whose
//! `additionalProperties` is absent or `true` is *open* (it may have carried any extra
//! property, so a reader may not add a constrained property), `false` is *closed* (nothing
//! else was ever written, so a reader may add properties), and a schema there is *partially
//! open* (extra properties are compared against it).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::ResolvedReference;

mod compat;

pub(crate) use compat::reader_incompatibilities;

/// Nesting limit for schemas (validation and comparison recurse).
const NESTING_DEPTH_MAX: usize = 64;

const TYPES: [&str; 7] = [
    "null", "boolean", "object", "array", "number", "string", "integer",
];

/// Keywords whose value is one schema.
const SCHEMA_KEYWORDS: [&str; 11] = [
    "additionalProperties",
    "additionalItems",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentSchema",
];

/// Keywords whose value is an object of schemas.
const SCHEMA_MAP_KEYWORDS: [&str; 5] = [
    "properties",
    "patternProperties",
    "definitions",
    "$defs",
    "dependentSchemas",
];

/// Keywords whose value is a non-empty array of schemas.
const SCHEMA_ARRAY_KEYWORDS: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];

/// Keywords whose value is a non-negative integer.
const COUNT_KEYWORDS: [&str; 8] = [
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
    "maxContains",
    "minContains",
];

/// A parsed JSON Schema and its references' schemas by name.
#[derive(Debug, Clone)]
pub struct JsonModel {
    root: Value,
    references: HashMap<String, Value>,
}

pub(crate) fn parse(
    text: &str,
    references: &[ResolvedReference],
    normalize: bool,
) -> Result<(String, JsonModel), String> {
    let root: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    validate(&root, "#", 0)?;
    let mut by_name = HashMap::new();
    for reference in references {
        let value: Value = serde_json::from_str(&reference.text)
            .map_err(|e| format!("reference '{}' is not JSON: {e}", reference.name))?;
        validate(&value, "#", 0)
            .map_err(|e| format!("reference '{}' is invalid: {e}", reference.name))?;
        by_name.insert(reference.name.clone(), value);
    }
    let model = JsonModel {
        root,
        references: by_name,
    };
    check_local_refs(&model.root, &model.root, 0)?;
    let canonical = if normalize {
        sorted_text(&model.root)
    } else {
        model.root.to_string()
    };
    Ok((canonical, model))
}

/// `value` as compact JSON with every object's keys sorted (the normalized form).
pub(crate) fn sorted_text(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let ordered: BTreeMap<&String, Value> =
                    map.iter().map(|(k, v)| (k, sorted(v))).collect();
                let mut out = Map::new();
                for (k, v) in ordered {
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    // With serde_json's default map (sorted keys) this is the plain text; with
    // `preserve_order` enabled somewhere in the build, the rebuild above sorts them.
    sorted(value).to_string()
}

fn validate(schema: &Value, path: &str, depth: usize) -> Result<(), String> {
    if depth > NESTING_DEPTH_MAX {
        return Err(format!(
            "{path}: nested deeper than {NESTING_DEPTH_MAX} levels"
        ));
    }
    let object = match schema {
        Value::Bool(_) => return Ok(()),
        Value::Object(object) => object,
        _ => return Err(format!("{path}: a schema must be an object or a boolean")),
    };
    for (key, value) in object {
        let at = format!("{path}/{key}");
        let key = key.as_str();
        match key {
            "type" => validate_type(value, &at)?,
            "items" => match value {
                Value::Array(items) => {
                    for (index, item) in items.iter().enumerate() {
                        validate(item, &format!("{at}/{index}"), depth + 1)?;
                    }
                }
                other => validate(other, &at, depth + 1)?,
            },
            "required" => {
                let ok = value
                    .as_array()
                    .is_some_and(|names| names.iter().all(Value::is_string));
                if !ok {
                    return Err(format!("{at}: must be an array of strings"));
                }
            }
            "enum" => {
                if !value.is_array() {
                    return Err(format!("{at}: must be an array"));
                }
            }
            "maximum" | "minimum" => {
                if !value.is_number() {
                    return Err(format!("{at}: must be a number"));
                }
            }
            "exclusiveMaximum" | "exclusiveMinimum" => {
                if !value.is_number() && !value.is_boolean() {
                    return Err(format!("{at}: must be a number (or a boolean in draft 4)"));
                }
            }
            "multipleOf" => {
                if !value.as_f64().is_some_and(|n| n > 0.0) {
                    return Err(format!("{at}: must be a number greater than 0"));
                }
            }
            "pattern" | "$ref" | "$schema" | "$id" | "format" | "title" | "description" => {
                if !value.is_string() {
                    return Err(format!("{at}: must be a string"));
                }
            }
            "uniqueItems" => {
                if !value.is_boolean() {
                    return Err(format!("{at}: must be a boolean"));
                }
            }
            "dependentRequired" => {
                let ok = value.as_object().is_some_and(|map| {
                    map.values().all(|names| {
                        names
                            .as_array()
                            .is_some_and(|names| names.iter().all(Value::is_string))
                    })
                });
                if !ok {
                    return Err(format!("{at}: must be an object of string arrays"));
                }
            }
            "dependencies" => {
                let Some(map) = value.as_object() else {
                    return Err(format!("{at}: must be an object"));
                };
                for (name, dependency) in map {
                    if let Value::Array(names) = dependency {
                        if !names.iter().all(Value::is_string) {
                            return Err(format!("{at}/{name}: must be an array of strings"));
                        }
                    } else {
                        validate(dependency, &format!("{at}/{name}"), depth + 1)?;
                    }
                }
            }
            _ if COUNT_KEYWORDS.contains(&key) => {
                if value.as_u64().is_none() {
                    return Err(format!("{at}: must be a non-negative integer"));
                }
            }
            _ if SCHEMA_KEYWORDS.contains(&key) => validate(value, &at, depth + 1)?,
            _ if SCHEMA_MAP_KEYWORDS.contains(&key) => {
                let Some(map) = value.as_object() else {
                    return Err(format!("{at}: must be an object of schemas"));
                };
                for (name, sub) in map {
                    validate(sub, &format!("{at}/{name}"), depth + 1)?;
                }
            }
            _ if SCHEMA_ARRAY_KEYWORDS.contains(&key) => {
                let items = value.as_array().filter(|items| !items.is_empty());
                let Some(items) = items else {
                    return Err(format!("{at}: must be a non-empty array of schemas"));
                };
                for (index, item) in items.iter().enumerate() {
                    validate(item, &format!("{at}/{index}"), depth + 1)?;
                }
            }
            // Unknown keywords are annotations: JSON Schema ignores them.
            _ => {}
        }
    }
    Ok(())
}

fn validate_type(value: &Value, at: &str) -> Result<(), String> {
    let known = |v: &Value| v.as_str().is_some_and(|t| TYPES.contains(&t));
    let ok = match value {
        Value::String(_) => known(value),
        Value::Array(items) => !items.is_empty() && items.iter().all(known),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{at}: must be one of {TYPES:?} or a non-empty array of them"
        ))
    }
}

/// Every `$ref` into the document itself (`#...`) must point at something.
fn check_local_refs(root: &Value, value: &Value, depth: usize) -> Result<(), String> {
    if depth > NESTING_DEPTH_MAX {
        return Ok(());
    }
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                // `#/a/b` is a JSON pointer into this document (`#name` is an anchor).
                if let Some(pointer) = target.strip_prefix('#') {
                    if pointer.starts_with('/') && root.pointer(pointer).is_none() {
                        return Err(format!("$ref '{target}' points at nothing"));
                    }
                }
            }
            map.values()
                .try_for_each(|v| check_local_refs(root, v, depth + 1))
        }
        Value::Array(items) => items
            .iter()
            .try_for_each(|v| check_local_refs(root, v, depth + 1)),
        _ => Ok(()),
    }
}
