//! Single message transforms with Kafka Connect's class names and config keys:
//! `transforms=a,b`, `transforms.a.type=org.apache.kafka.connect.transforms.InsertField$Value`,
//! `transforms.a.<key>=...`, and an optional `transforms.a.predicate=p` (with
//! `transforms.a.negate`) naming one of `predicates=p,...`
//! (`predicates.p.type=org.apache.kafka.connect.transforms.predicates.TopicNameMatches`).
//!
//! Keys and values are schemaless JSON here (Kafka's JsonConverter with
//! `schemas.enable=false`): the field transforms need a JSON object (or a null, which they
//! pass through) and fail the record otherwise. A value that is not JSON is a string; a
//! string result is written as its text (as the StringConverter does), anything else as JSON.

use std::collections::BTreeMap;

use bytes::Bytes;
use regex::Regex;
use serde_json::{Map, Value};
use strom_client::{ConsumerRecord, RecordHeader};

use crate::error::{ConnectError, Result};
use crate::plugins::Config;

const PACKAGE: &str = "org.apache.kafka.connect.transforms.";
const PREDICATES: &str = "org.apache.kafka.connect.transforms.predicates.";

/// A record on its way through the transforms (a sink's consumed record, or a source's
/// record before it is produced).
#[derive(Debug, Clone)]
pub struct ConnectRecord {
    pub topic: String,
    /// The topic it was consumed from (a router changes `topic`), as KIP-793's
    /// `originalTopic`: the one its offset belongs to.
    pub original_topic: String,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    pub timestamp_ms: Option<i64>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

impl ConnectRecord {
    pub fn from_consumer(record: &ConsumerRecord) -> ConnectRecord {
        ConnectRecord {
            topic: record.topic.to_string(),
            original_topic: record.topic.to_string(),
            partition: Some(record.partition),
            offset: Some(record.offset),
            timestamp_ms: Some(record.timestamp_ms),
            key: record.key.clone(),
            value: record.value.clone(),
            headers: record.headers.clone(),
        }
    }

    /// A source record: a value for `topic`, stamped now.
    pub fn source(topic: &str, value: Bytes, timestamp_ms: i64) -> ConnectRecord {
        ConnectRecord {
            topic: topic.to_string(),
            original_topic: topic.to_string(),
            partition: None,
            offset: None,
            timestamp_ms: Some(timestamp_ms),
            key: None,
            value: Some(value),
            headers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Key,
    Value,
}

#[derive(Debug)]
enum Kind {
    InsertField {
        part: Part,
        topic: Option<String>,
        partition: Option<String>,
        offset: Option<String>,
        timestamp: Option<String>,
        fixed: Option<(String, String)>,
    },
    ReplaceField {
        part: Part,
        include: Vec<String>,
        exclude: Vec<String>,
        renames: Vec<(String, String)>,
    },
    MaskField {
        part: Part,
        fields: Vec<String>,
        replacement: Option<String>,
    },
    ValueToKey {
        fields: Vec<String>,
    },
    ExtractField {
        part: Part,
        field: String,
    },
    RegexRouter {
        regex: Regex,
        replacement: String,
    },
    TimestampRouter {
        topic_format: String,
        timestamp_format: String,
    },
    Filter,
}

#[derive(Debug)]
enum Predicate {
    TopicNameMatches(Regex),
    HasHeaderKey(String),
    RecordIsTombstone,
}

impl Predicate {
    fn test(&self, record: &ConnectRecord) -> bool {
        match self {
            Predicate::TopicNameMatches(regex) => regex.is_match(&record.topic),
            Predicate::HasHeaderKey(name) => record
                .headers
                .iter()
                .any(|h| h.key.as_ref() == name.as_bytes()),
            Predicate::RecordIsTombstone => record.value.is_none(),
        }
    }
}

#[derive(Debug)]
struct Step {
    alias: String,
    kind: Kind,
    /// Applies only when the predicate's answer differs from the bool (`negate`).
    predicate: Option<(Predicate, bool)>,
}

/// A connector's transform chain, in `transforms` order.
#[derive(Debug, Default)]
pub struct Transforms {
    steps: Vec<Step>,
}

fn bad(message: String) -> ConnectError {
    ConnectError::bad_request(message)
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A full-match regex (Java's `Matcher.matches`), or the config error.
fn full_regex(key: &str, pattern: &str) -> Result<Regex> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        bad(format!(
            "Invalid value {pattern} for configuration {key}: Invalid regex: {e}"
        ))
    })
}

/// Java's `$1` group references as the regex crate's `${1}`; `\$` is a literal dollar.
fn java_replacement(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The key a transform's settings live under, and a reader of them.
struct Keys<'a> {
    config: &'a Config,
    prefix: String,
}

impl Keys<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.config
            .get(&format!("{}{key}", self.prefix))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, key: &str) -> Result<&str> {
        self.get(key).ok_or_else(|| {
            bad(format!(
                "Missing required configuration \"{}{key}\" which has no default value.",
                self.prefix
            ))
        })
    }

    /// A field name without InsertField's `!` (required) or `?` (optional) suffix.
    fn field(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(|f| f.trim_end_matches(['!', '?']).to_string())
    }
}

fn part_of(class: &str, base: &str) -> Option<Part> {
    match class.strip_prefix(PACKAGE)?.strip_prefix(base)? {
        "$Value" => Some(Part::Value),
        "$Key" => Some(Part::Key),
        _ => None,
    }
}

fn kind_of(class: &str, keys: &Keys) -> Result<Kind> {
    let type_key = format!("{}type", keys.prefix);
    if let Some(part) = part_of(class, "InsertField") {
        let fixed = match keys.field("static.field") {
            Some(field) => Some((field, keys.get("static.value").unwrap_or("").to_string())),
            None => None,
        };
        return Ok(Kind::InsertField {
            part,
            topic: keys.field("topic.field"),
            partition: keys.field("partition.field"),
            offset: keys.field("offset.field"),
            timestamp: keys.field("timestamp.field"),
            fixed,
        });
    }
    if let Some(part) = part_of(class, "ReplaceField") {
        let renames = keys
            .get("renames")
            .map(list)
            .unwrap_or_default()
            .into_iter()
            .map(|pair| {
                pair.split_once(':')
                    .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                    .ok_or_else(|| {
                        bad(format!(
                            "Invalid value [{pair}] for configuration {}renames: Invalid rename mapping: {pair}",
                            keys.prefix
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let either = |new: &str, old: &str| keys.get(new).or(keys.get(old)).map(list);
        return Ok(Kind::ReplaceField {
            part,
            include: either("include", "whitelist").unwrap_or_default(),
            exclude: either("exclude", "blacklist").unwrap_or_default(),
            renames,
        });
    }
    if let Some(part) = part_of(class, "MaskField") {
        return Ok(Kind::MaskField {
            part,
            fields: list(keys.required("fields")?),
            replacement: keys.get("replacement").map(str::to_string),
        });
    }
    if let Some(part) = part_of(class, "ExtractField") {
        return Ok(Kind::ExtractField {
            part,
            field: keys.required("field")?.to_string(),
        });
    }
    match class.strip_prefix(PACKAGE) {
        Some("ValueToKey") => Ok(Kind::ValueToKey {
            fields: list(keys.required("fields")?),
        }),
        Some("RegexRouter") => Ok(Kind::RegexRouter {
            regex: full_regex(&format!("{}regex", keys.prefix), keys.required("regex")?)?,
            replacement: java_replacement(keys.required("replacement")?),
        }),
        Some("TimestampRouter") => Ok(Kind::TimestampRouter {
            topic_format: keys
                .get("topic.format")
                .unwrap_or("${topic}-${timestamp}")
                .to_string(),
            timestamp_format: keys
                .get("timestamp.format")
                .unwrap_or("yyyyMMdd")
                .to_string(),
        }),
        Some("Filter") => Ok(Kind::Filter),
        _ => Err(bad(format!(
            "Invalid value {class} for configuration {type_key}: Class {class} could not be found."
        ))),
    }
}

fn predicate_of(config: &Config, name: &str) -> Result<Predicate> {
    let keys = Keys {
        config,
        prefix: format!("predicates.{name}."),
    };
    let class = keys.required("type")?;
    match class.strip_prefix(PREDICATES) {
        Some("TopicNameMatches") => Ok(Predicate::TopicNameMatches(full_regex(
            &format!("{}pattern", keys.prefix),
            keys.required("pattern")?,
        )?)),
        Some("HasHeaderKey") => Ok(Predicate::HasHeaderKey(keys.required("name")?.to_string())),
        Some("RecordIsTombstone") => Ok(Predicate::RecordIsTombstone),
        _ => Err(bad(format!(
            "Invalid value {class} for configuration {}type: Class {class} could not be found.",
            keys.prefix
        ))),
    }
}

impl Transforms {
    /// The chain `config` names (empty without `transforms`), or its first config error.
    pub fn from_config(config: &Config) -> Result<Transforms> {
        let aliases = config
            .get("transforms")
            .map(|t| list(t))
            .unwrap_or_default();
        let declared = config
            .get("predicates")
            .map(|p| list(p))
            .unwrap_or_default();
        let mut predicates: BTreeMap<String, Predicate> = BTreeMap::new();
        for name in &declared {
            predicates.insert(name.clone(), predicate_of(config, name)?);
        }
        let mut steps = Vec::new();
        for alias in aliases {
            let keys = Keys {
                config,
                prefix: format!("transforms.{alias}."),
            };
            let class = keys.required("type")?.to_string();
            let kind = kind_of(&class, &keys)?;
            let negate = match keys.get("negate") {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(bad(format!(
                        "Invalid value {other} for configuration {}negate: Expected value to be either true or false",
                        keys.prefix
                    )))
                }
            };
            let predicate = match keys.get("predicate") {
                None => None,
                Some(name) => match predicates.remove(name) {
                    Some(p) => Some((p, negate)),
                    // Used by an earlier step (predicates are shared): build it again.
                    None if declared.iter().any(|d| d == name) => {
                        Some((predicate_of(config, name)?, negate))
                    }
                    None => {
                        return Err(bad(format!(
                            "Invalid value {name} for configuration {}predicate: no predicate {name} is declared in predicates",
                            keys.prefix
                        )))
                    }
                },
            };
            steps.push(Step {
                alias,
                kind,
                predicate,
            });
        }
        Ok(Transforms { steps })
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs `record` through the chain: `None` when a step drops it.
    pub fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        for step in &self.steps {
            if let Some((predicate, negate)) = &step.predicate {
                if predicate.test(&record) == *negate {
                    continue;
                }
            }
            match apply_step(&step.kind, record) {
                Ok(Some(next)) => record = next,
                Ok(None) => return Ok(None),
                Err(message) => {
                    return Err(bad(format!(
                        "transform {} ({}) failed: {message}",
                        step.alias,
                        kind_name(&step.kind)
                    )))
                }
            }
        }
        Ok(Some(record))
    }
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::InsertField { .. } => "InsertField",
        Kind::ReplaceField { .. } => "ReplaceField",
        Kind::MaskField { .. } => "MaskField",
        Kind::ValueToKey { .. } => "ValueToKey",
        Kind::ExtractField { .. } => "ExtractField",
        Kind::RegexRouter { .. } => "RegexRouter",
        Kind::TimestampRouter { .. } => "TimestampRouter",
        Kind::Filter => "Filter",
    }
}

/// Bytes as JSON (a string when they are not JSON).
fn parse(bytes: &Bytes) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// A value as bytes: a string as its text, null as no bytes, anything else as JSON.
fn serialize(value: Value) -> Option<Bytes> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(Bytes::from(s)),
        other => Some(Bytes::from(other.to_string())),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "java.lang.Boolean",
        Value::Number(n) if n.is_f64() => "java.lang.Double",
        Value::Number(_) => "java.lang.Long",
        Value::String(_) => "java.lang.String",
        Value::Array(_) => "java.util.ArrayList",
        Value::Object(_) => "java.util.HashMap",
    }
}

/// The part's JSON object, `Ok(None)` for a null part, or Kafka's error for anything else.
fn object(
    bytes: &Option<Bytes>,
    purpose: &str,
) -> std::result::Result<Option<Map<String, Value>>, String> {
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    match parse(bytes) {
        Value::Object(map) => Ok(Some(map)),
        other => Err(format!(
            "Only Map objects supported in absence of schema for [{purpose}], found: {}",
            type_name(&other)
        )),
    }
}

fn part_mut(record: &mut ConnectRecord, part: Part) -> &mut Option<Bytes> {
    match part {
        Part::Key => &mut record.key,
        Part::Value => &mut record.value,
    }
}

/// Masked value of `value`: `replacement` for strings and numbers when given, else the
/// type's empty value (Kafka's MaskField).
fn mask(value: &Value, replacement: Option<&str>) -> std::result::Result<Value, String> {
    match (value, replacement) {
        (Value::Null, _) => Ok(Value::Null),
        (Value::String(_), Some(r)) => Ok(Value::String(r.to_string())),
        (Value::Number(_), Some(r)) => serde_json::from_str::<serde_json::Number>(r)
            .map(Value::Number)
            .map_err(|_| format!("Unable to convert {r} to a number")),
        (other, Some(_)) => Err(format!(
            "Cannot mask value of type {} with custom replacement.",
            type_name(other)
        )),
        (Value::String(_), None) => Ok(Value::String(String::new())),
        (Value::Number(n), None) if n.is_f64() => Ok(serde_json::json!(0.0)),
        (Value::Number(_), None) => Ok(Value::from(0)),
        (Value::Bool(_), None) => Ok(Value::Bool(false)),
        (Value::Array(_), None) => Ok(Value::Array(Vec::new())),
        (Value::Object(_), None) => Ok(Value::Object(Map::new())),
    }
}

fn apply_step(
    kind: &Kind,
    mut record: ConnectRecord,
) -> std::result::Result<Option<ConnectRecord>, String> {
    match kind {
        Kind::InsertField {
            part,
            topic,
            partition,
            offset,
            timestamp,
            fixed,
        } => {
            let Some(mut map) = object(part_mut(&mut record, *part), "field insertion")? else {
                return Ok(Some(record));
            };
            if let Some(field) = topic {
                map.insert(field.clone(), Value::String(record.topic.clone()));
            }
            if let Some(field) = partition {
                map.insert(
                    field.clone(),
                    record.partition.map(Value::from).unwrap_or(Value::Null),
                );
            }
            if let Some(field) = offset {
                map.insert(
                    field.clone(),
                    record.offset.map(Value::from).unwrap_or(Value::Null),
                );
            }
            if let Some(field) = timestamp {
                map.insert(
                    field.clone(),
                    record.timestamp_ms.map(Value::from).unwrap_or(Value::Null),
                );
            }
            if let Some((field, value)) = fixed {
                map.insert(field.clone(), Value::String(value.clone()));
            }
            *part_mut(&mut record, *part) = serialize(Value::Object(map));
        }
        Kind::ReplaceField {
            part,
            include,
            exclude,
            renames,
        } => {
            let Some(map) = object(part_mut(&mut record, *part), "field replacement")? else {
                return Ok(Some(record));
            };
            let mut out = Map::new();
            for (name, value) in map {
                if exclude.contains(&name) || (!include.is_empty() && !include.contains(&name)) {
                    continue;
                }
                let renamed = renames
                    .iter()
                    .find(|(from, _)| *from == name)
                    .map(|(_, to)| to.clone())
                    .unwrap_or(name);
                out.insert(renamed, value);
            }
            *part_mut(&mut record, *part) = serialize(Value::Object(out));
        }
        Kind::MaskField {
            part,
            fields,
            replacement,
        } => {
            let Some(mut map) = object(part_mut(&mut record, *part), "masking fields")? else {
                return Ok(Some(record));
            };
            for field in fields {
                if let Some(value) = map.get_mut(field) {
                    *value = mask(value, replacement.as_deref())?;
                }
            }
            *part_mut(&mut record, *part) = serialize(Value::Object(map));
        }
        Kind::ValueToKey { fields } => {
            let map = object(&record.value, "copying fields from value to key")?.ok_or_else(
                || "Only Map objects supported in absence of schema for [copying fields from value to key], found: null".to_string(),
            )?;
            let mut key = Map::new();
            for field in fields {
                key.insert(
                    field.clone(),
                    map.get(field).cloned().unwrap_or(Value::Null),
                );
            }
            record.key = serialize(Value::Object(key));
        }
        Kind::ExtractField { part, field } => {
            let Some(map) = object(part_mut(&mut record, *part), "field extraction")? else {
                return Ok(Some(record));
            };
            *part_mut(&mut record, *part) =
                serialize(map.get(field).cloned().unwrap_or(Value::Null));
        }
        Kind::RegexRouter { regex, replacement } => {
            if regex.is_match(&record.topic) {
                record.topic = regex
                    .replace(&record.topic, replacement.as_str())
                    .into_owned();
            }
        }
        Kind::TimestampRouter {
            topic_format,
            timestamp_format,
        } => {
            let timestamp = record
                .timestamp_ms
                .ok_or_else(|| format!("Timestamp missing on record: topic {}", record.topic))?;
            record.topic = topic_format.replace("${topic}", &record.topic).replace(
                "${timestamp}",
                &format_timestamp(timestamp, timestamp_format),
            );
        }
        Kind::Filter => return Ok(None),
    }
    Ok(Some(record))
}

/// (year, month, day) of a count of days since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `timestamp_ms` in UTC with Java SimpleDateFormat letters `yyyy yy MM dd HH mm ss SSS`;
/// text in single quotes and any other character is copied.
pub fn format_timestamp(timestamp_ms: i64, format: &str) -> String {
    let days = timestamp_ms.div_euclid(86_400_000);
    let ms_of_day = timestamp_ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second, milli) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    let chars: Vec<char> = format.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&q| q == '\'')
                .map(|p| i + 1 + p)
                .unwrap_or(chars.len());
            out.extend(&chars[i + 1..end]);
            i = end + 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&r| r == c).count();
        let number = |value: i64, width: usize| format!("{value:0width$}");
        match c {
            'y' if run == 2 => out.push_str(&number(year.rem_euclid(100), 2)),
            'y' => out.push_str(&number(year, run)),
            'M' => out.push_str(&number(i64::from(month), run)),
            'd' => out.push_str(&number(i64::from(day), run)),
            'H' => out.push_str(&number(hour, run)),
            'm' => out.push_str(&number(minute, run)),
            's' => out.push_str(&number(second, run)),
            'S' => out.push_str(&number(milli, run)),
            _ => out.extend(std::iter::repeat_n(c, run)),
        }
        i += run;
    }
    out
}

#[cfg(test)]
#[path = "transforms_tests.rs"]
mod tests;
