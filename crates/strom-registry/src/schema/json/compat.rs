//! JSON Schema compatibility: whether every document the writer's schema accepts is also
//! accepted by the reader's, decided keyword by keyword as Confluent's rules do (see the
//! module above for the content models).

use serde_json::{Map, Value};

use super::{JsonModel, NESTING_DEPTH_MAX};

/// Schema pairs one compatibility check may compare (combinators nested in combinators
/// multiply the work; a hostile schema must not turn a check into a CPU sink).
const COMPARISON_STEPS_MAX: usize = 200_000;

/// Why a consumer using `reader` would refuse documents `writer` accepts (empty = none).
pub(crate) fn reader_incompatibilities(reader: &JsonModel, writer: &JsonModel) -> Vec<String> {
    let mut comparer = Comparer {
        reader,
        writer,
        issues: Vec::new(),
        steps: 0,
    };
    comparer.compare(&writer.root, &reader.root, "#", 0);
    if comparer.steps > COMPARISON_STEPS_MAX {
        return vec![format!(
            "TOO_COMPLEX at #: comparing these schemas takes more than {COMPARISON_STEPS_MAX} \
             steps; they are treated as incompatible"
        )];
    }
    comparer.issues
}

struct Comparer<'a> {
    reader: &'a JsonModel,
    writer: &'a JsonModel,
    issues: Vec<String>,
    steps: usize,
}

/// How an object schema treats properties it does not list.
enum Additional<'v> {
    Open,
    Closed,
    Partial(&'v Value),
}

fn additional(object: &Map<String, Value>) -> Additional<'_> {
    match object.get("additionalProperties") {
        None | Some(Value::Bool(true)) => Additional::Open,
        Some(Value::Bool(false)) => Additional::Closed,
        Some(Value::Object(o)) if o.is_empty() => Additional::Open,
        Some(schema) => Additional::Partial(schema),
    }
}

/// Accepts anything: `true` or `{}`.
fn is_empty_schema(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn types(object: &Map<String, Value>) -> Option<Vec<&str>> {
    match object.get("type")? {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(items) => Some(items.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

fn allowed_values(object: &Map<String, Value>) -> Option<Vec<&Value>> {
    if let Some(Value::Array(values)) = object.get("enum") {
        return Some(values.iter().collect());
    }
    object.get("const").map(|c| vec![c])
}

fn required(object: &Map<String, Value>) -> Vec<&str> {
    object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

const EMPTY: Value = Value::Bool(true);

impl<'a> Comparer<'a> {
    /// Follows `$ref` to the schema it names (in the same document or a reference).
    fn resolve(&self, value: &'a Value, model: &'a JsonModel) -> &'a Value {
        let mut current = value;
        for _ in 0..16 {
            let Some(Value::String(target)) = current.get("$ref") else {
                return current;
            };
            let (document, pointer) = match target.split_once('#') {
                Some(("", pointer)) => (&model.root, pointer),
                Some((name, pointer)) => match model.references.get(name) {
                    Some(document) => (document, pointer),
                    None => return current,
                },
                None => match model.references.get(target.as_str()) {
                    Some(document) => (document, ""),
                    None => return current,
                },
            };
            current = if pointer.is_empty() {
                document
            } else {
                match document.pointer(pointer) {
                    Some(found) => found,
                    None => return current,
                }
            };
        }
        current
    }

    fn issue(&mut self, kind: &str, path: &str, text: String) {
        self.issues.push(format!("{kind} at {path}: {text}"));
    }

    /// Whether `reader` accepts everything `writer` accepts, without recording anything.
    fn accepts(&mut self, writer: &'a Value, reader: &'a Value, depth: usize) -> bool {
        let outer = std::mem::take(&mut self.issues);
        self.compare(writer, reader, "#", depth);
        let fine = self.issues.is_empty();
        self.issues = outer;
        fine
    }

    fn compare(&mut self, writer: &'a Value, reader: &'a Value, path: &str, depth: usize) {
        self.steps += 1;
        if depth > NESTING_DEPTH_MAX || self.steps > COMPARISON_STEPS_MAX {
            return;
        }
        let writer = self.resolve(writer, self.writer);
        let reader = self.resolve(reader, self.reader);
        if is_empty_schema(reader) || writer == &Value::Bool(false) {
            return;
        }
        if reader == &Value::Bool(false) {
            self.issue(
                "SCHEMA_NARROWED",
                path,
                "the reader's schema is false and accepts nothing".into(),
            );
            return;
        }
        static EMPTY_OBJECT: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let empty = EMPTY_OBJECT.get_or_init(Map::new);
        let w = writer.as_object().unwrap_or(empty);
        let Some(r) = reader.as_object() else {
            return;
        };

        self.compare_types(w, r, path);
        self.compare_limits(w, r, path);
        self.compare_values(w, r, path);
        self.compare_object(w, r, path, depth);
        self.compare_dependencies(w, r, path, depth);
        self.compare_array(w, r, path, depth);
        self.compare_combined(writer, w, r, path, depth);
    }

    fn compare_types(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str) {
        let Some(reader_types) = types(r) else {
            return;
        };
        let Some(writer_types) = types(w) else {
            self.issue(
                "TYPE_NARROWED",
                &format!("{path}/type"),
                format!(
                    "the reader allows only {reader_types:?} where the writer allowed any type"
                ),
            );
            return;
        };
        let missing: Vec<&str> = writer_types
            .iter()
            .copied()
            .filter(|t| {
                !(reader_types.contains(t) || (*t == "integer" && reader_types.contains(&"number")))
            })
            .collect();
        if !missing.is_empty() {
            let kind = if missing.len() == writer_types.len() {
                "TYPE_CHANGED"
            } else {
                "TYPE_NARROWED"
            };
            self.issue(
                kind,
                &format!("{path}/type"),
                format!("the reader does not accept the writer's types {missing:?}"),
            );
        }
    }

    fn compare_limits(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str) {
        // (keyword, the reader is stricter when its value is greater)
        const LIMITS: [(&str, bool); 10] = [
            ("maxLength", false),
            ("minLength", true),
            ("maxItems", false),
            ("minItems", true),
            ("maxProperties", false),
            ("minProperties", true),
            ("maximum", false),
            ("minimum", true),
            ("exclusiveMaximum", false),
            ("exclusiveMinimum", true),
        ];
        for (keyword, stricter_when_greater) in LIMITS {
            let Some(reader_limit) = r.get(keyword).and_then(Value::as_f64) else {
                continue;
            };
            let upper = keyword.to_ascii_uppercase();
            match w.get(keyword).and_then(Value::as_f64) {
                None => self.issue(
                    &format!("{upper}_ADDED"),
                    &format!("{path}/{keyword}"),
                    format!("the reader adds {keyword} {reader_limit}"),
                ),
                Some(writer_limit) => {
                    let stricter = if stricter_when_greater {
                        reader_limit > writer_limit
                    } else {
                        reader_limit < writer_limit
                    };
                    if stricter {
                        let change = if stricter_when_greater {
                            "INCREASED"
                        } else {
                            "DECREASED"
                        };
                        self.issue(
                            &format!("{upper}_{change}"),
                            &format!("{path}/{keyword}"),
                            format!(
                                "the reader's {keyword} {reader_limit} is stricter than the \
                                 writer's {writer_limit}"
                            ),
                        );
                    }
                }
            }
        }
        if let Some(reader_step) = r.get("multipleOf").and_then(Value::as_f64) {
            let divides = w
                .get("multipleOf")
                .and_then(Value::as_f64)
                .is_some_and(|writer_step| (writer_step / reader_step).fract().abs() < 1e-9);
            if !divides {
                self.issue(
                    "MULTIPLE_OF_CHANGED",
                    &format!("{path}/multipleOf"),
                    format!("the reader requires multiples of {reader_step}"),
                );
            }
        }
        if let Some(pattern) = r.get("pattern") {
            if w.get("pattern") != Some(pattern) {
                self.issue(
                    "PATTERN_CHANGED",
                    &format!("{path}/pattern"),
                    format!("the reader requires the pattern {pattern}"),
                );
            }
        }
        if r.get("uniqueItems") == Some(&Value::Bool(true))
            && w.get("uniqueItems") != Some(&Value::Bool(true))
        {
            self.issue(
                "UNIQUE_ITEMS_ADDED",
                &format!("{path}/uniqueItems"),
                "the reader requires unique items".into(),
            );
        }
    }

    fn compare_values(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str) {
        let Some(reader_values) = allowed_values(r) else {
            return;
        };
        match allowed_values(w) {
            None => self.issue(
                "ENUM_ARRAY_NARROWED",
                &format!("{path}/enum"),
                "the reader restricts values to an enum the writer did not have".into(),
            ),
            Some(writer_values) => {
                let missing: Vec<String> = writer_values
                    .iter()
                    .filter(|v| !reader_values.contains(v))
                    .map(|v| v.to_string())
                    .collect();
                if !missing.is_empty() {
                    self.issue(
                        "ENUM_ARRAY_NARROWED",
                        &format!("{path}/enum"),
                        format!(
                            "the reader's enum lacks the writer's [{}]",
                            missing.join(", ")
                        ),
                    );
                }
            }
        }
    }

    fn compare_object(
        &mut self,
        w: &'a Map<String, Value>,
        r: &'a Map<String, Value>,
        path: &str,
        depth: usize,
    ) {
        static NO_PROPERTIES: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let none = NO_PROPERTIES.get_or_init(Map::new);
        let writer_properties = w
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(none);
        let reader_properties = r
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(none);
        let (writer_additional, reader_additional) = (additional(w), additional(r));

        for (name, written) in writer_properties {
            let at = format!("{path}/properties/{name}");
            match (reader_properties.get(name), &reader_additional) {
                (Some(read), _) => self.compare(written, read, &at, depth + 1),
                (None, Additional::Open) => {}
                (None, Additional::Closed) => self.issue(
                    "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                    &at,
                    format!("the reader's closed content model no longer allows '{name}'"),
                ),
                (None, Additional::Partial(schema)) => {
                    self.compare(written, schema, &at, depth + 1)
                }
            }
        }
        for (name, read) in reader_properties {
            if writer_properties.contains_key(name) {
                continue;
            }
            let at = format!("{path}/properties/{name}");
            match &writer_additional {
                Additional::Closed => {}
                Additional::Open => {
                    if !is_empty_schema(self.resolve(read, self.reader)) {
                        self.issue(
                            "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
                            &at,
                            format!(
                                "the writer's open content model may have written '{name}' \
                                 with any value"
                            ),
                        );
                    }
                }
                Additional::Partial(schema) => self.compare(schema, read, &at, depth + 1),
            }
        }
        match (&writer_additional, &reader_additional) {
            (_, Additional::Open) | (Additional::Closed, _) => {}
            (Additional::Open, Additional::Closed)
            | (Additional::Partial(_), Additional::Closed) => self.issue(
                "ADDITIONAL_PROPERTIES_REMOVED",
                &format!("{path}/additionalProperties"),
                "the reader refuses additional properties the writer allowed".into(),
            ),
            (Additional::Open, Additional::Partial(_)) => self.issue(
                "ADDITIONAL_PROPERTIES_NARROWED",
                &format!("{path}/additionalProperties"),
                "the reader constrains additional properties the writer left open".into(),
            ),
            (Additional::Partial(ws), Additional::Partial(rs)) => {
                self.compare(ws, rs, &format!("{path}/additionalProperties"), depth + 1)
            }
        }
        let writer_required = required(w);
        for name in required(r) {
            if writer_required.contains(&name) {
                continue;
            }
            let has_default = reader_properties
                .get(name)
                .and_then(Value::as_object)
                .is_some_and(|p| p.contains_key("default"));
            if !has_default {
                self.issue(
                    "REQUIRED_ATTRIBUTE_ADDED",
                    &format!("{path}/required"),
                    format!("the reader requires '{name}', which the writer did not"),
                );
            }
        }
    }

    /// A reader may drop dependencies, not add them: each property's required companions
    /// in the reader must already be required by the writer, and each dependent schema in
    /// the reader must accept what the writer's did.
    fn compare_dependencies(
        &mut self,
        w: &'a Map<String, Value>,
        r: &'a Map<String, Value>,
        path: &str,
        depth: usize,
    ) {
        fn arrays(o: &Map<String, Value>) -> Vec<(&String, Vec<&str>)> {
            ["dependencies", "dependentRequired"]
                .iter()
                .filter_map(|k| o.get(*k).and_then(Value::as_object))
                .flat_map(|map| map.iter())
                .filter_map(|(name, v)| {
                    v.as_array()
                        .map(|names| (name, names.iter().filter_map(Value::as_str).collect()))
                })
                .collect()
        }
        fn schemas(o: &Map<String, Value>) -> Vec<(&String, &Value)> {
            ["dependencies", "dependentSchemas"]
                .iter()
                .filter_map(|k| o.get(*k).and_then(Value::as_object))
                .flat_map(|map| map.iter())
                .filter(|(_, v)| !v.is_array())
                .collect()
        }
        let written_arrays = arrays(w);
        for (name, needed) in arrays(r) {
            let written: Vec<&str> = written_arrays
                .iter()
                .filter(|(n, _)| *n == name)
                .flat_map(|(_, names)| names.iter().copied())
                .collect();
            let added: Vec<&str> = needed
                .into_iter()
                .filter(|n| !written.contains(n))
                .collect();
            if !added.is_empty() {
                self.issue(
                    "DEPENDENCY_ARRAY_EXTENDED",
                    &format!("{path}/dependencies/{name}"),
                    format!("with '{name}' present the reader also requires {added:?}"),
                );
            }
        }
        let written_schemas = schemas(w);
        for (name, read) in schemas(r) {
            let at = format!("{path}/dependencies/{name}");
            match written_schemas.iter().find(|(n, _)| *n == name) {
                Some((_, written)) => self.compare(written, read, &at, depth + 1),
                None => self.compare(&EMPTY, read, &at, depth + 1),
            }
        }
    }

    fn compare_array(
        &mut self,
        w: &'a Map<String, Value>,
        r: &'a Map<String, Value>,
        path: &str,
        depth: usize,
    ) {
        match (w.get("items"), r.get("items")) {
            (_, None) => {}
            (Some(Value::Array(written)), Some(Value::Array(read))) => {
                for (index, (wi, ri)) in written.iter().zip(read).enumerate() {
                    self.compare(wi, ri, &format!("{path}/items/{index}"), depth + 1);
                }
            }
            (Some(Value::Array(_)), Some(_)) | (Some(_), Some(Value::Array(_))) => self.issue(
                "ITEMS_CHANGED",
                &format!("{path}/items"),
                "the reader changes between a single items schema and a tuple".into(),
            ),
            (Some(written), Some(read)) => {
                self.compare(written, read, &format!("{path}/items"), depth + 1)
            }
            (None, Some(read)) => self.compare(&EMPTY, read, &format!("{path}/items"), depth + 1),
        }
    }

    fn compare_combined(
        &mut self,
        writer: &'a Value,
        w: &'a Map<String, Value>,
        r: &'a Map<String, Value>,
        path: &str,
        depth: usize,
    ) {
        for keyword in ["anyOf", "oneOf"] {
            let Some(Value::Array(read)) = r.get(keyword) else {
                continue;
            };
            // A writer without the same combination is one branch: itself.
            let written: Vec<&Value> = match w.get(keyword) {
                Some(Value::Array(branches)) => branches.iter().collect(),
                _ => vec![writer],
            };
            for (index, branch) in written.into_iter().enumerate() {
                let covered = read
                    .iter()
                    .any(|candidate| self.accepts(branch, candidate, depth + 1));
                if !covered {
                    self.issue(
                        "SUM_TYPE_NARROWED",
                        &format!("{path}/{keyword}"),
                        format!("no branch of the reader's {keyword} accepts the writer's branch {index}"),
                    );
                }
            }
        }
        if let Some(Value::Array(read)) = r.get("allOf") {
            let written: Vec<&Value> = match w.get("allOf") {
                Some(Value::Array(branches)) => branches.iter().collect(),
                _ => vec![writer],
            };
            for (index, branch) in read.iter().enumerate() {
                let implied = written
                    .iter()
                    .any(|candidate| self.accepts(candidate, branch, depth + 1));
                if !implied {
                    self.issue(
                        "PRODUCT_TYPE_EXTENDED",
                        &format!("{path}/allOf/{index}"),
                        "the reader's allOf adds a constraint the writer did not have".into(),
                    );
                }
            }
        }
        if let Some(read_not) = r.get("not") {
            // The reader refuses what matches its `not`; the writer never wrote what matches
            // its own, so the writer's `not` must cover the reader's.
            let covered = match w.get("not") {
                Some(written_not) => self.accepts(read_not, written_not, depth + 1),
                None => false,
            };
            if !covered {
                self.issue(
                    "NOT_TYPE_EXTENDED",
                    &format!("{path}/not"),
                    "the reader's not excludes documents the writer allowed".into(),
                );
            }
        }
    }
}
