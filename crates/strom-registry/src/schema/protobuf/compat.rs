//! Protobuf compatibility by Confluent's rules: what matters is the wire, so fields are
//! matched by number. Compatible: adding or removing a field (not a required one, not a
//! oneof member), renaming a field, changing a scalar within one wire-compatible group
//! (int32/uint32/int64/uint64/bool; sint32/sint64; fixed32/sfixed32; fixed64/sfixed64;
//! string/bytes), any enum value change, a package change, removing a message other than
//! the first. Incompatible: removing or renaming the first message (the one serializers
//! use), a field number reused with another kind or type, moving existing fields into a
//! oneof (several into a new one, or any into an existing one), removing a oneof member,
//! adding or removing a required field, repeated/singular changes of numeric scalars
//! (packed encoding).

use std::collections::HashMap;

use super::{Field, FieldType, Label, Message, ProtoModel, TypeKind};

const SCALAR_GROUPS: [&[&str]; 5] = [
    &["int32", "uint32", "int64", "uint64", "bool"],
    &["sint32", "sint64"],
    &["fixed32", "sfixed32"],
    &["fixed64", "sfixed64"],
    &["string", "bytes"],
];

fn scalars_compatible(a: &str, b: &str) -> bool {
    a == b
        || SCALAR_GROUPS
            .iter()
            .any(|group| group.contains(&a) && group.contains(&b))
}

/// Why a consumer using `reader` cannot read data written with `writer` (empty = it can).
pub(crate) fn reader_incompatibilities(reader: &ProtoModel, writer: &ProtoModel) -> Vec<String> {
    let mut writer_messages = Vec::new();
    collect("", &writer.file.messages, &mut writer_messages);
    let mut reader_messages = Vec::new();
    collect("", &reader.file.messages, &mut reader_messages);
    let reader_by_name: HashMap<&str, &Message> = reader_messages
        .iter()
        .map(|(name, m)| (name.as_str(), *m))
        .collect();
    let context = Context {
        writer_package: package_prefix(&writer.file.package),
        reader_package: package_prefix(&reader.file.package),
    };
    let mut issues = Vec::new();
    // Serializers use the first message unless told otherwise: it must stay under its name.
    if let Some(first) = writer.file.messages.first() {
        if !reader_by_name.contains_key(first.name.as_str()) {
            issues.push(format!(
                "MESSAGE_REMOVED at #/{}: the reader's schema has no message {} (the first \
                 message, the one serializers use, was removed or renamed)",
                first.name, first.name
            ));
        }
    }
    for (name, written) in &writer_messages {
        if let Some(read) = reader_by_name.get(name.as_str()) {
            compare_message(&context, name, written, read, &mut issues);
        }
    }
    issues
}

fn package_prefix(package: &str) -> String {
    if package.is_empty() {
        ".".to_string()
    } else {
        format!(".{package}.")
    }
}

/// Messages by their name inside the package (`Outer.Inner`).
fn collect<'m>(scope: &str, messages: &'m [Message], out: &mut Vec<(String, &'m Message)>) {
    for message in messages {
        let name = if scope.is_empty() {
            message.name.clone()
        } else {
            format!("{scope}.{}", message.name)
        };
        collect(&name, &message.messages, out);
        out.push((name, message));
    }
}

struct Context {
    writer_package: String,
    reader_package: String,
}

/// What a field's type is, for comparison: a type of the file's own package is named
/// relative to it (a package change alone is compatible).
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    Scalar(&'static str),
    Named(String, TypeKind),
    Map(&'static str, Box<Shape>),
}

impl Shape {
    fn describe(&self) -> String {
        match self {
            Shape::Scalar(s) => s.to_string(),
            Shape::Named(name, TypeKind::Message) => format!("message {name}"),
            Shape::Named(name, TypeKind::Enum) => format!("enum {name}"),
            Shape::Map(key, value) => format!("map<{key}, {}>", value.describe()),
        }
    }
}

fn shape(field_type: &FieldType, package: &str) -> Shape {
    match field_type {
        FieldType::Scalar(s) => Shape::Scalar(s),
        FieldType::Named { written, resolved } => match resolved {
            Some((full, kind)) => {
                let relative = full.strip_prefix(package).unwrap_or(full);
                Shape::Named(relative.to_string(), *kind)
            }
            None => Shape::Named(written.clone(), TypeKind::Message),
        },
        FieldType::Map(key, value) => Shape::Map(key, Box::new(shape(value, package))),
    }
}

fn compare_message(
    context: &Context,
    name: &str,
    written: &Message,
    read: &Message,
    issues: &mut Vec<String>,
) {
    let read_by_number: HashMap<i64, &Field> = read.fields.iter().map(|f| (f.number, f)).collect();
    let written_by_number: HashMap<i64, &Field> =
        written.fields.iter().map(|f| (f.number, f)).collect();
    // New oneofs (not in the writer) and how many existing fields moved into each.
    let mut moved_into: HashMap<usize, Vec<&str>> = HashMap::new();

    for field in &written.fields {
        let at = format!("#/{name}/{}", field.number);
        let Some(counterpart) = read_by_number.get(&field.number) else {
            if field.label == Label::Required {
                issues.push(format!(
                    "REQUIRED_FIELD_REMOVED at {at}: the required field '{}' is gone",
                    field.name
                ));
            } else if field.oneof.is_some() {
                issues.push(format!(
                    "ONEOF_FIELD_REMOVED at {at}: the oneof member '{}' is gone",
                    field.name
                ));
            }
            continue;
        };
        compare_field(context, &at, field, counterpart, issues);
        if let (None, Some(index)) = (field.oneof, counterpart.oneof) {
            let oneof_name = read.oneofs.get(index).map(String::as_str).unwrap_or("");
            if written.oneofs.iter().any(|o| o == oneof_name) {
                issues.push(format!(
                    "FIELD_MOVED_TO_EXISTING_ONEOF at {at}: field '{}' moved into the existing \
                     oneof {oneof_name}",
                    field.name
                ));
            } else {
                moved_into.entry(index).or_default().push(&field.name);
            }
        }
    }
    for (index, fields) in moved_into {
        if fields.len() > 1 {
            let oneof_name = read.oneofs.get(index).map(String::as_str).unwrap_or("");
            issues.push(format!(
                "MULTIPLE_FIELDS_MOVED_TO_ONEOF at #/{name}: fields [{}] moved into the new \
                 oneof {oneof_name}",
                fields.join(", ")
            ));
        }
    }
    for field in &read.fields {
        if field.label == Label::Required && !written_by_number.contains_key(&field.number) {
            issues.push(format!(
                "REQUIRED_FIELD_ADDED at #/{name}/{}: the reader requires the new field '{}'",
                field.number, field.name
            ));
        }
    }
}

fn compare_field(
    context: &Context,
    at: &str,
    written: &Field,
    read: &Field,
    issues: &mut Vec<String>,
) {
    let written_shape = shape(&written.field_type, &context.writer_package);
    let read_shape = shape(&read.field_type, &context.reader_package);
    let kind_of = |s: &Shape| match s {
        Shape::Scalar(_) => 0,
        Shape::Named(_, TypeKind::Message) => 1,
        Shape::Named(_, TypeKind::Enum) => 2,
        Shape::Map(..) => 3,
    };
    let problem = if kind_of(&written_shape) != kind_of(&read_shape) {
        Some("FIELD_KIND_CHANGED")
    } else {
        match (&written_shape, &read_shape) {
            (Shape::Scalar(a), Shape::Scalar(b)) if !scalars_compatible(a, b) => {
                Some("FIELD_SCALAR_KIND_CHANGED")
            }
            (Shape::Named(a, _), Shape::Named(b, _)) if a != b => Some("FIELD_NAMED_TYPE_CHANGED"),
            (Shape::Map(ka, va), Shape::Map(kb, vb)) if !scalars_compatible(ka, kb) || va != vb => {
                let values_compatible = match (va.as_ref(), vb.as_ref()) {
                    (Shape::Scalar(a), Shape::Scalar(b)) => scalars_compatible(a, b),
                    (a, b) => a == b,
                };
                if scalars_compatible(ka, kb) && values_compatible {
                    None
                } else {
                    Some("FIELD_KIND_CHANGED")
                }
            }
            _ => None,
        }
    };
    if let Some(kind) = problem {
        issues.push(format!(
            "{kind} at {at}: field number {} is {} '{}' in the writer's schema and {} '{}' in \
             the reader's",
            written.number,
            written_shape.describe(),
            written.name,
            read_shape.describe(),
            read.name
        ));
        return;
    }
    let repeated = |f: &Field| f.label == Label::Repeated;
    if repeated(written) != repeated(read) {
        let numeric = matches!(&read_shape, Shape::Scalar(s) if !matches!(*s, "string" | "bytes"))
            || matches!(&read_shape, Shape::Named(_, TypeKind::Enum));
        if numeric {
            issues.push(format!(
                "FIELD_NUMERIC_LABEL_CHANGED at {at}: field '{}' changes between repeated and \
                 singular (packed numbers do not read as one)",
                read.name
            ));
        }
    }
}
