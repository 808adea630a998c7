//! Avro: parsing through `apache-avro` (the Apache project's Rust implementation, so names,
//! namespaces, aliases, defaults and logical types follow the specification without a second
//! parser to keep in step), and compatibility as the specification's schema resolution
//! decides it, the way Confluent applies it (Java's `SchemaCompatibility`).
//!
//! Canonical text: the schema's JSON with insignificant whitespace removed (lossless, so a
//! client that fetches it back gets exactly its schema). Normalized text (`normalize=true`):
//! the schema as `apache-avro` understands it, written back with full names and sorted keys,
//! so that equivalent spellings (`"int"` and `{"type":"int"}`, a namespace given apart or in
//! the name) get one id.

use std::collections::{HashMap, HashSet};

use apache_avro::schema::{Alias, Name, RecordField, Schema};
use serde_json::Value;

use super::ResolvedReference;

/// Nesting limit for the JSON given to `apache-avro` (its parser recurses).
const NESTING_DEPTH_MAX: usize = 64;
/// Schema pairs one compatibility check may compare: unions of records nested in unions
/// multiply the work, and a hostile schema must not turn a check into a CPU sink.
const RESOLUTION_STEPS_MAX: usize = 200_000;

/// A parsed Avro schema and every named type it can reach (its own and its references'),
/// by full name.
#[derive(Debug, Clone)]
pub struct AvroModel {
    root: Schema,
    names: HashMap<String, Schema>,
}

/// Parses `text` with `references` (named Avro schemas: records, enums, fixeds) in scope.
pub(crate) fn parse(
    text: &str,
    references: &[ResolvedReference],
    normalize: bool,
) -> Result<(String, AvroModel), String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    check_depth(&value, 0)?;
    check_names(&value)?;
    for reference in references {
        let value: Value = serde_json::from_str(&reference.text)
            .map_err(|e| format!("reference '{}' is not JSON: {e}", reference.name))?;
        check_depth(&value, 0)?;
        check_names(&value).map_err(|e| format!("reference '{}': {e}", reference.name))?;
    }
    let texts: Vec<&str> = references.iter().map(|r| r.text.as_str()).collect();
    // apache-avro returns errors for malformed schemas; the unwind guard is a second line
    // against a panic inside a dependency turning a bad request into a dead connection.
    let parsed = std::panic::catch_unwind(|| Schema::parse_str_with_list(text, &texts))
        .map_err(|_| "the Avro parser failed on this schema".to_string())?;
    let (root, referenced) = parsed.map_err(|e| e.to_string())?;

    let mut names = HashMap::new();
    for schema in referenced.iter().chain(std::iter::once(&root)) {
        collect_names(schema, &mut names)?;
    }
    let canonical = if normalize {
        let value = serde_json::to_value(&root).map_err(|e| e.to_string())?;
        super::json::sorted_text(&value)
    } else {
        value.to_string()
    };
    Ok((canonical, AvroModel { root, names }))
}

fn check_depth(value: &Value, depth: usize) -> Result<(), String> {
    if depth > NESTING_DEPTH_MAX {
        return Err(format!("nested deeper than {NESTING_DEPTH_MAX} levels"));
    }
    match value {
        Value::Array(items) => items.iter().try_for_each(|v| check_depth(v, depth + 1)),
        Value::Object(map) => map.values().try_for_each(|v| check_depth(v, depth + 1)),
        _ => Ok(()),
    }
}

/// Names, namespaces and aliases must be dotted Avro names before `apache-avro` sees them
/// (it unwraps some of them).
fn check_names(value: &Value) -> Result<(), String> {
    fn is_name(segment: &str) -> bool {
        let mut chars = segment.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    }
    fn is_dotted(name: &str) -> bool {
        name.split('.').all(is_name)
    }
    match value {
        Value::Object(map) => {
            if let Some(Value::String(name)) = map.get("name") {
                if !is_dotted(name) {
                    return Err(format!("'{name}' is not a valid Avro name"));
                }
            }
            if let Some(Value::String(namespace)) = map.get("namespace") {
                if !namespace.is_empty() && !is_dotted(namespace) {
                    return Err(format!("'{namespace}' is not a valid Avro namespace"));
                }
            }
            if let Some(aliases) = map.get("aliases") {
                let valid = aliases
                    .as_array()
                    .is_some_and(|a| a.iter().all(|v| v.as_str().is_some_and(is_dotted)));
                if !valid {
                    return Err(format!("aliases {aliases} are not an array of Avro names"));
                }
            }
            // Only schema-bearing keys: a default value may hold any "name".
            ["type", "fields", "items", "values"]
                .iter()
                .filter_map(|key| map.get(*key))
                .try_for_each(check_names)
        }
        Value::Array(items) => items.iter().try_for_each(check_names),
        _ => Ok(()),
    }
}

/// Records every named type by full name; a name defined twice is an error (Avro's "can't
/// redefine", which `apache-avro` lets through).
fn collect_names(schema: &Schema, names: &mut HashMap<String, Schema>) -> Result<(), String> {
    let mut define = |name: &Name| match names.insert(name.fullname(None), schema.clone()) {
        Some(_) => Err(format!("the name {} is defined twice", name.fullname(None))),
        None => Ok(()),
    };
    match schema {
        Schema::Record(record) => {
            define(&record.name)?;
            record
                .fields
                .iter()
                .try_for_each(|field| collect_names(&field.schema, names))
        }
        Schema::Enum(e) => define(&e.name),
        Schema::Fixed(f) => define(&f.name),
        Schema::Array(a) => collect_names(&a.items, names),
        Schema::Map(m) => collect_names(&m.types, names),
        Schema::Union(u) => u
            .variants()
            .iter()
            .try_for_each(|v| collect_names(v, names)),
        Schema::Decimal(d) => collect_names(&d.inner, names),
        _ => Ok(()),
    }
}

/// What resolution compares: logical types read as their underlying type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Array,
    Map,
    Union,
    Record,
    Enum,
    Fixed,
    /// The `duration` logical type (a fixed of 12 bytes).
    Duration,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Boolean => "boolean",
            Kind::Int => "int",
            Kind::Long => "long",
            Kind::Float => "float",
            Kind::Double => "double",
            Kind::Bytes => "bytes",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Map => "map",
            Kind::Union => "union",
            Kind::Record => "record",
            Kind::Enum => "enum",
            Kind::Fixed => "fixed",
            Kind::Duration => "fixed (duration)",
        }
    }
}

/// Why a consumer using `reader` cannot read data written with `writer` (empty = it can).
pub(crate) fn reader_incompatibilities(reader: &AvroModel, writer: &AvroModel) -> Vec<String> {
    let mut resolver = Resolver {
        reader,
        writer,
        in_progress: HashSet::new(),
        issues: Vec::new(),
        steps: 0,
    };
    resolver.check(&reader.root, &writer.root, "");
    if resolver.steps > RESOLUTION_STEPS_MAX {
        return vec![format!(
            "TOO_COMPLEX at /: comparing these schemas takes more than {RESOLUTION_STEPS_MAX} \
             steps; they are treated as incompatible"
        )];
    }
    resolver.issues
}

struct Resolver<'a> {
    reader: &'a AvroModel,
    writer: &'a AvroModel,
    /// Record pairs being checked higher up the stack: a recursive type meets itself again
    /// and is assumed compatible there (the outer check decides).
    in_progress: HashSet<(String, String)>,
    issues: Vec<String>,
    steps: usize,
}

/// Follows references and decimal wrappers to the schema whose shape is compared.
fn base<'s>(schema: &'s Schema, names: &'s HashMap<String, Schema>) -> &'s Schema {
    let mut current = schema;
    // References never chain to themselves (a Ref resolves to a named, non-Ref schema);
    // the bound keeps a malformed map from looping.
    for _ in 0..8 {
        current = match current {
            Schema::Ref { name } => match names.get(&name.fullname(None)) {
                Some(found) => found,
                None => return current,
            },
            Schema::Decimal(d) => &d.inner,
            _ => return current,
        };
    }
    current
}

fn kind(schema: &Schema) -> Kind {
    match schema {
        Schema::Null => Kind::Null,
        Schema::Boolean => Kind::Boolean,
        Schema::Int | Schema::Date | Schema::TimeMillis => Kind::Int,
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => Kind::Long,
        Schema::Float => Kind::Float,
        Schema::Double => Kind::Double,
        Schema::Bytes | Schema::BigDecimal | Schema::Decimal(_) => Kind::Bytes,
        Schema::String | Schema::Uuid => Kind::String,
        Schema::Array(_) => Kind::Array,
        Schema::Map(_) => Kind::Map,
        Schema::Union(_) => Kind::Union,
        Schema::Record(_) => Kind::Record,
        Schema::Enum(_) => Kind::Enum,
        Schema::Fixed(_) => Kind::Fixed,
        Schema::Duration => Kind::Duration,
        // An unresolved reference cannot come out of a successful parse.
        Schema::Ref { .. } => Kind::Null,
    }
}

/// Whether a writer of `writer` kind can be read as `reader` kind (primitive promotions).
fn promotes(reader: Kind, writer: Kind) -> bool {
    match reader {
        Kind::Long => matches!(writer, Kind::Int | Kind::Long),
        Kind::Float => matches!(writer, Kind::Int | Kind::Long | Kind::Float),
        Kind::Double => matches!(writer, Kind::Int | Kind::Long | Kind::Float | Kind::Double),
        Kind::Bytes => matches!(writer, Kind::Bytes | Kind::String),
        Kind::String => matches!(writer, Kind::String | Kind::Bytes),
        other => other == writer,
    }
}

/// The unqualified names match, or one of the reader's aliases (qualified by the reader's
/// namespace when it has none) is the writer's full name: Avro's Java rule.
fn names_match(reader: &Name, reader_aliases: &Option<Vec<Alias>>, writer: &Name) -> bool {
    if reader.name == writer.name {
        return true;
    }
    let writer_full = writer.fullname(None);
    reader_aliases
        .iter()
        .flatten()
        .any(|alias| alias.fullname(reader.namespace.clone()) == writer_full)
}

fn describe(schema: &Schema) -> String {
    match schema {
        Schema::Record(r) => format!("record {}", r.name.fullname(None)),
        Schema::Enum(e) => format!("enum {}", e.name.fullname(None)),
        Schema::Fixed(f) => format!("fixed {}", f.name.fullname(None)),
        other => kind(other).name().to_string(),
    }
}

impl Resolver<'_> {
    fn check(&mut self, reader: &Schema, writer: &Schema, path: &str) {
        self.steps += 1;
        if self.steps > RESOLUTION_STEPS_MAX {
            return;
        }
        let reader = base(reader, &self.reader.names);
        let writer = base(writer, &self.writer.names);

        if let Schema::Union(writer_union) = writer {
            // Every branch the writer may have used must be readable.
            for (index, branch) in writer_union.variants().iter().enumerate() {
                let branch = base(branch, &self.writer.names);
                if !self.readable(reader, branch) {
                    self.issues.push(format!(
                        "MISSING_UNION_BRANCH at {}/{index}: the reader has no branch that \
                         reads the writer's union branch {}",
                        path_or_root(path),
                        describe(branch)
                    ));
                }
            }
            return;
        }
        if let Schema::Union(reader_union) = reader {
            let readable = reader_union
                .variants()
                .iter()
                .any(|branch| self.readable(base(branch, &self.reader.names), writer));
            if !readable {
                self.issues.push(format!(
                    "MISSING_UNION_BRANCH at {}: the reader's union has no branch that reads \
                     the writer's {}",
                    path_or_root(path),
                    describe(writer)
                ));
            }
            return;
        }

        let (reader_kind, writer_kind) = (kind(reader), kind(writer));
        if !promotes(reader_kind, writer_kind) {
            self.issues.push(format!(
                "TYPE_MISMATCH at {}: the reader's type {} cannot read the writer's type {}",
                path_or_root(path),
                describe(reader),
                describe(writer)
            ));
            return;
        }
        match (reader, writer) {
            (Schema::Array(r), Schema::Array(w)) => {
                self.check(&r.items, &w.items, &format!("{path}/items"))
            }
            (Schema::Map(r), Schema::Map(w)) => {
                self.check(&r.types, &w.types, &format!("{path}/values"))
            }
            (Schema::Fixed(r), Schema::Fixed(w)) => {
                if !names_match(&r.name, &r.aliases, &w.name) {
                    self.name_mismatch(path, &r.name, &w.name);
                } else if r.size != w.size {
                    self.issues.push(format!(
                        "FIXED_SIZE_MISMATCH at {}/size: the reader's fixed {} has {} bytes, \
                         the writer's {}",
                        path_or_root(path),
                        r.name.fullname(None),
                        r.size,
                        w.size
                    ));
                }
            }
            (Schema::Enum(r), Schema::Enum(w)) => {
                if !names_match(&r.name, &r.aliases, &w.name) {
                    self.name_mismatch(path, &r.name, &w.name);
                } else if r.default.is_none() {
                    let missing: Vec<&str> = w
                        .symbols
                        .iter()
                        .filter(|s| !r.symbols.contains(s))
                        .map(String::as_str)
                        .collect();
                    if !missing.is_empty() {
                        self.issues.push(format!(
                            "MISSING_ENUM_SYMBOLS at {}/symbols: the reader's enum {} lacks \
                             the writer's symbols [{}] and has no default",
                            path_or_root(path),
                            r.name.fullname(None),
                            missing.join(", ")
                        ));
                    }
                }
            }
            (Schema::Record(r), Schema::Record(w)) => {
                if !names_match(&r.name, &r.aliases, &w.name) {
                    self.name_mismatch(path, &r.name, &w.name);
                    return;
                }
                let pair = (r.name.fullname(None), w.name.fullname(None));
                if !self.in_progress.insert(pair.clone()) {
                    return;
                }
                for (index, field) in r.fields.iter().enumerate() {
                    let field_path = format!("{path}/fields/{index}");
                    match writer_field(field, &w.fields) {
                        Some(written) => self.check(
                            &field.schema,
                            &written.schema,
                            &format!("{field_path}/type"),
                        ),
                        None if field.default.is_none() => self.issues.push(format!(
                            "READER_FIELD_MISSING_DEFAULT_VALUE at {field_path}: the reader's \
                             field '{}' has no default value and is missing from the writer's \
                             record {}",
                            field.name,
                            w.name.fullname(None)
                        )),
                        None => {}
                    }
                }
                self.in_progress.remove(&pair);
            }
            _ => {}
        }
    }

    /// Whether `reader` reads `writer` with no incompatibility (for union branch matching).
    fn readable(&mut self, reader: &Schema, writer: &Schema) -> bool {
        let outer = std::mem::take(&mut self.issues);
        self.check(reader, writer, "");
        let fine = self.issues.is_empty();
        self.issues = outer;
        fine
    }

    fn name_mismatch(&mut self, path: &str, reader: &Name, writer: &Name) {
        self.issues.push(format!(
            "NAME_MISMATCH at {}/name: the reader's type name {} does not match the writer's {}",
            path_or_root(path),
            reader.fullname(None),
            writer.fullname(None)
        ));
    }
}

/// The writer's field a reader's field reads: same name, or one of the reader's aliases.
fn writer_field<'w>(field: &RecordField, written: &'w [RecordField]) -> Option<&'w RecordField> {
    written.iter().find(|w| w.name == field.name).or_else(|| {
        field
            .aliases
            .iter()
            .flatten()
            .find_map(|alias| written.iter().find(|w| &w.name == alias))
    })
}

fn path_or_root(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}
