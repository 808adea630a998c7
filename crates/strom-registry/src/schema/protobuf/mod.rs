//! Protobuf: `.proto` text (proto2, proto3) through a hand-written tokenizer and parser, or
//! a base64-encoded `FileDescriptorProto` (what Confluent's Python serializer registers);
//! both become one [`ProtoFile`] model, printed back as `.proto` text for the canonical form.
//!
//! What is kept: syntax, package, imports, messages (nested), fields with labels and numbers,
//! maps, oneofs, enums, reserved ranges and names, services. What is dropped: options (file,
//! message, field and enum options, `[default = ...]` included), extensions and `extend`
//! blocks, comments. Named types are resolved against the file itself, its references (one
//! per import, by import path) and the well-known `google/protobuf/*.proto` files, which need
//! no reference; an unresolved type is an invalid schema, as it is for protoc. A proto2
//! `group` is kept as a nested message and a message field (its wire form differs: a known
//! gap, groups being deprecated since proto2).

mod compat;
mod descriptor;
mod encode;
mod text;

use std::collections::HashMap;
use std::fmt::Write;

use super::ResolvedReference;

pub(crate) use compat::reader_incompatibilities;
pub(crate) use encode::descriptor_base64;

/// Field numbers: 1 to 2^29 - 1, without the range the protobuf implementation reserves.
const FIELD_NUMBER_MAX: i64 = 536_870_911;
const RESERVED_NUMBERS: std::ops::RangeInclusive<i64> = 19_000..=19_999;
/// Nesting limit for messages (the parser and printer recurse).
const NESTING_DEPTH_MAX: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    Proto2,
    Proto3,
    Editions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    /// No label: proto3 implicit presence (or a map, or a oneof member).
    Plain,
    Optional,
    Required,
    Repeated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldType {
    Scalar(&'static str),
    /// A message or enum as written, and its full name (`.pkg.Msg`) once resolved.
    Named {
        written: String,
        resolved: Option<(String, TypeKind)>,
    },
    Map(&'static str, Box<FieldType>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeKind {
    Message,
    Enum,
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub name: String,
    pub number: i64,
    pub label: Label,
    pub field_type: FieldType,
    /// Index into the message's `oneofs`.
    pub oneof: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Message {
    pub name: String,
    pub fields: Vec<Field>,
    pub oneofs: Vec<String>,
    pub messages: Vec<Message>,
    pub enums: Vec<EnumType>,
    pub reserved_ranges: Vec<(i64, i64)>,
    pub reserved_names: Vec<String>,
    /// Nested messages and map entries in declaration order.
    pub nested_order: Vec<Nested>,
}

/// Where a nested type stands among its siblings. protoc numbers nested types in
/// declaration order, a map's entry message where the map field is declared, and a
/// Confluent message index (the path a serializer writes before each record) counts them:
/// the descriptor the registry serves must keep that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nested {
    /// Index into `messages`.
    Message(usize),
    /// Index into `fields` (a map field).
    MapEntry(usize),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct EnumType {
    pub name: String,
    pub values: Vec<(String, i64)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Method {
    pub name: String,
    pub input: String,
    pub input_stream: bool,
    pub output: String,
    pub output_stream: bool,
    /// `input` and `output` as full names (`.pkg.Msg`), once resolved.
    pub resolved: Option<(String, String)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub name: String,
    pub methods: Vec<Method>,
}

#[derive(Debug, Clone)]
pub(crate) struct ProtoFile {
    pub syntax: Syntax,
    pub edition: Option<String>,
    pub package: String,
    pub imports: Vec<(String, Option<&'static str>)>,
    pub messages: Vec<Message>,
    pub enums: Vec<EnumType>,
    pub services: Vec<Service>,
}

/// A parsed Protobuf schema.
#[derive(Debug, Clone)]
pub struct ProtoModel {
    pub(crate) file: ProtoFile,
}

pub(crate) const SCALARS: [&str; 15] = [
    "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32",
    "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
];

pub(crate) fn scalar(name: &str) -> Option<&'static str> {
    SCALARS.iter().copied().find(|s| *s == name)
}

/// Parses `text` (`.proto` text, or base64 of a `FileDescriptorProto`).
pub(crate) fn parse(
    text: &str,
    references: &[ResolvedReference],
    normalize: bool,
) -> Result<(String, ProtoModel), String> {
    let mut file = parse_any(text)?;
    let mut known: HashMap<String, TypeKind> = HashMap::new();
    declare(&file.package, &file.messages, &file.enums, &mut known);
    let mut well_known = false;
    for (path, _) in &file.imports {
        if references.iter().any(|r| &r.name == path) {
            continue;
        }
        if path.starts_with("google/protobuf/") {
            well_known = true;
            continue;
        }
        return Err(format!("import \"{path}\" has no reference"));
    }
    for reference in references {
        let imported = parse_any(&reference.text)
            .map_err(|e| format!("reference '{}': {e}", reference.name))?;
        declare(
            &imported.package,
            &imported.messages,
            &imported.enums,
            &mut known,
        );
    }
    let package = file.package.clone();
    let scope = if package.is_empty() {
        String::new()
    } else {
        format!(".{package}")
    };
    resolve_messages(&scope, &mut file.messages, &known, well_known)?;
    for service in &mut file.services {
        for method in &mut service.methods {
            let full = |written: &str| match lookup(&scope, written, &known, well_known) {
                Some((name, TypeKind::Message)) => Ok(name),
                _ => Err(format!(
                    "rpc {}.{}: '{written}' is not a message",
                    service.name, method.name
                )),
            };
            method.resolved = Some((full(&method.input)?, full(&method.output)?));
        }
    }
    let canonical = print(&file, normalize);
    Ok((canonical, ProtoModel { file }))
}

fn parse_any(text: &str) -> Result<ProtoFile, String> {
    let trimmed = text.trim();
    let looks_base64 = !trimmed.is_empty()
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    // A .proto file always has a space or a `;`; text made only of base64 characters
    // can only be a descriptor.
    let file = if looks_base64 {
        descriptor::parse_base64(trimmed)
            .map_err(|e| format!("neither .proto text nor a base64 FileDescriptorProto: {e}"))?
    } else {
        text::parse(text)?
    };
    validate(&file)?;
    Ok(file)
}

fn declare(
    scope: &str,
    messages: &[Message],
    enums: &[EnumType],
    known: &mut HashMap<String, TypeKind>,
) {
    let prefix = |name: &str| {
        if scope.is_empty() {
            format!(".{name}")
        } else if scope.starts_with('.') {
            format!("{scope}.{name}")
        } else {
            format!(".{scope}.{name}")
        }
    };
    for e in enums {
        known.insert(prefix(&e.name), TypeKind::Enum);
    }
    for m in messages {
        let full = prefix(&m.name);
        known.insert(full.clone(), TypeKind::Message);
        declare(&full, &m.messages, &m.enums, known);
    }
}

/// Resolves a written type name from `scope` (`.pkg.Outer`) as protoc does: innermost
/// scope first, then each enclosing one.
fn lookup(
    scope: &str,
    written: &str,
    known: &HashMap<String, TypeKind>,
    well_known: bool,
) -> Option<(String, TypeKind)> {
    if written.starts_with('.') {
        if let Some(kind) = known.get(written) {
            return Some((written.to_string(), *kind));
        }
    } else {
        // Innermost scope first (shadowing corner cases of protoc's first-component rule
        // aside, this is its order).
        let mut current = scope;
        loop {
            let full = format!("{current}.{written}");
            if let Some(kind) = known.get(&full) {
                return Some((full, *kind));
            }
            match current.rfind('.') {
                Some(at) => current = &current[..at],
                None => break,
            }
        }
    }
    let full = if written.starts_with('.') {
        written.to_string()
    } else {
        format!(".{written}")
    };
    if well_known && full.starts_with(".google.protobuf.") {
        let kind = if full == ".google.protobuf.NullValue" {
            TypeKind::Enum
        } else {
            TypeKind::Message
        };
        return Some((full, kind));
    }
    None
}

fn resolve_messages(
    scope: &str,
    messages: &mut [Message],
    known: &HashMap<String, TypeKind>,
    well_known: bool,
) -> Result<(), String> {
    for message in messages {
        let inner = format!("{scope}.{}", message.name);
        for field in &mut message.fields {
            let target = match &mut field.field_type {
                FieldType::Map(_, value) => value.as_mut(),
                other => other,
            };
            if let FieldType::Named { written, resolved } = target {
                match lookup(&inner, written, known, well_known) {
                    Some(found) => *resolved = Some(found),
                    None => {
                        return Err(format!(
                            "field '{}' in message {}: type '{written}' is not defined",
                            field.name,
                            inner.trim_start_matches('.')
                        ))
                    }
                }
            }
        }
        resolve_messages(&inner, &mut message.messages, known, well_known)?;
    }
    Ok(())
}

/// Messages and enums of one scope need distinct names.
fn unique_type_names(scope: &str, messages: &[Message], enums: &[EnumType]) -> Result<(), String> {
    let mut seen = HashMap::new();
    let names = messages
        .iter()
        .map(|m| &m.name)
        .chain(enums.iter().map(|e| &e.name));
    for name in names {
        if seen.insert(name, ()).is_some() {
            return Err(format!("'{name}' is declared twice in {scope}"));
        }
    }
    Ok(())
}

fn validate(file: &ProtoFile) -> Result<(), String> {
    if file.messages.is_empty() && file.enums.is_empty() {
        return Err("the file declares no message and no enum".into());
    }
    unique_type_names("the file", &file.messages, &file.enums)?;
    for message in &file.messages {
        validate_message(file.syntax, message, 0)?;
    }
    for e in &file.enums {
        validate_enum(file.syntax, e)?;
    }
    Ok(())
}

fn validate_message(syntax: Syntax, message: &Message, depth: usize) -> Result<(), String> {
    if depth > NESTING_DEPTH_MAX {
        return Err(format!(
            "messages nested deeper than {NESTING_DEPTH_MAX} levels"
        ));
    }
    let name = &message.name;
    unique_type_names(
        &format!("message {name}"),
        &message.messages,
        &message.enums,
    )?;
    let mut numbers = HashMap::new();
    let mut names = HashMap::new();
    for field in &message.fields {
        if !(1..=FIELD_NUMBER_MAX).contains(&field.number)
            || RESERVED_NUMBERS.contains(&field.number)
        {
            return Err(format!(
                "message {name}: field '{}' has number {}, outside 1 to {FIELD_NUMBER_MAX} or in \
                 the reserved 19000 to 19999",
                field.name, field.number
            ));
        }
        if let Some(other) = numbers.insert(field.number, &field.name) {
            return Err(format!(
                "message {name}: fields '{other}' and '{}' share number {}",
                field.name, field.number
            ));
        }
        if names.insert(&field.name, ()).is_some() {
            return Err(format!(
                "message {name}: field '{}' is declared twice",
                field.name
            ));
        }
        if syntax == Syntax::Proto3 && field.label == Label::Required {
            return Err(format!(
                "message {name}: field '{}': required fields are not allowed in proto3",
                field.name
            ));
        }
        if message
            .reserved_ranges
            .iter()
            .any(|(from, to)| (*from..=*to).contains(&field.number))
            || message.reserved_names.contains(&field.name)
        {
            return Err(format!(
                "message {name}: field '{}' ({}) uses a reserved number or name",
                field.name, field.number
            ));
        }
        if let FieldType::Map(key, _) = &field.field_type {
            if matches!(*key, "double" | "float" | "bytes") {
                return Err(format!(
                    "message {name}: map field '{}' cannot have a {key} key",
                    field.name
                ));
            }
        }
    }
    for nested in &message.messages {
        validate_message(syntax, nested, depth + 1)?;
    }
    for e in &message.enums {
        validate_enum(syntax, e)?;
    }
    Ok(())
}

fn validate_enum(syntax: Syntax, e: &EnumType) -> Result<(), String> {
    let Some((_, first)) = e.values.first() else {
        return Err(format!("enum {} has no values", e.name));
    };
    if syntax == Syntax::Proto3 && *first != 0 {
        return Err(format!(
            "enum {}: the first value must be 0 in proto3",
            e.name
        ));
    }
    let mut names = HashMap::new();
    for (value_name, number) in &e.values {
        if i32::try_from(*number).is_err() {
            return Err(format!(
                "enum {}: value {value_name} = {number} is out of range",
                e.name
            ));
        }
        if names.insert(value_name, ()).is_some() {
            return Err(format!(
                "enum {}: value {value_name} is declared twice",
                e.name
            ));
        }
    }
    Ok(())
}

/// `.proto` text for the model. `normalize`: resolved full type names and fields by number.
fn print(file: &ProtoFile, normalize: bool) -> String {
    let mut out = String::new();
    match (file.syntax, &file.edition) {
        (Syntax::Editions, Some(edition)) => {
            let _ = writeln!(out, "edition = \"{edition}\";");
        }
        (Syntax::Proto2, _) => out.push_str("syntax = \"proto2\";\n"),
        _ => out.push_str("syntax = \"proto3\";\n"),
    }
    if !file.package.is_empty() {
        let _ = writeln!(out, "package {};", file.package);
    }
    if !file.imports.is_empty() {
        out.push('\n');
        let mut imports = file.imports.clone();
        if normalize {
            imports.sort();
        }
        for (path, modifier) in imports {
            match modifier {
                Some(m) => {
                    let _ = writeln!(out, "import {m} \"{path}\";");
                }
                None => {
                    let _ = writeln!(out, "import \"{path}\";");
                }
            }
        }
    }
    for message in &file.messages {
        out.push('\n');
        print_message(&mut out, message, 0, normalize);
    }
    for e in &file.enums {
        out.push('\n');
        print_enum(&mut out, e, 0);
    }
    for service in &file.services {
        out.push('\n');
        let _ = writeln!(out, "service {} {{", service.name);
        for m in &service.methods {
            let stream = |s: bool| if s { "stream " } else { "" };
            let (input, output) = match (&m.resolved, normalize) {
                (Some((input, output)), true) => (input, output),
                _ => (&m.input, &m.output),
            };
            let _ = writeln!(
                out,
                "  rpc {}({}{input}) returns ({}{output});",
                m.name,
                stream(m.input_stream),
                stream(m.output_stream),
            );
        }
        out.push_str("}\n");
    }
    out
}

fn type_text(field_type: &FieldType, normalize: bool) -> String {
    match field_type {
        FieldType::Scalar(s) => s.to_string(),
        FieldType::Named { written, resolved } => match (normalize, resolved) {
            (true, Some((full, _))) => full.clone(),
            _ => written.clone(),
        },
        FieldType::Map(key, value) => format!("map<{key}, {}>", type_text(value, normalize)),
    }
}

fn print_field(out: &mut String, field: &Field, indent: &str, normalize: bool) {
    let label = match field.label {
        Label::Plain => "",
        Label::Optional => "optional ",
        Label::Required => "required ",
        Label::Repeated => "repeated ",
    };
    let _ = writeln!(
        out,
        "{indent}{label}{} {} = {};",
        type_text(&field.field_type, normalize),
        field.name,
        field.number
    );
}

fn print_message(out: &mut String, message: &Message, depth: usize, normalize: bool) {
    let indent = "  ".repeat(depth);
    let inner = "  ".repeat(depth + 1);
    let _ = writeln!(out, "{indent}message {} {{", message.name);
    let mut fields: Vec<&Field> = message.fields.iter().collect();
    if normalize {
        fields.sort_by_key(|f| f.number);
    }
    // A oneof is printed where its first member stands. Nested messages declared before a
    // map field are printed before it, so that a reparse keeps protoc's nested-type order.
    let mut printed_oneofs = vec![false; message.oneofs.len()];
    let mut printed_messages = vec![false; message.messages.len()];
    for field in &fields {
        if !normalize && matches!(field.field_type, FieldType::Map(..)) {
            let position = message.fields.iter().position(|f| std::ptr::eq(f, *field));
            for item in &message.nested_order {
                match item {
                    Nested::MapEntry(index) if Some(*index) == position => break,
                    Nested::Message(index) => {
                        if let (Some(false), Some(nested)) =
                            (printed_messages.get(*index), message.messages.get(*index))
                        {
                            printed_messages[*index] = true;
                            print_message(out, nested, depth + 1, normalize);
                        }
                    }
                    Nested::MapEntry(_) => {}
                }
            }
        }
        match field.oneof {
            None => print_field(out, field, &inner, normalize),
            Some(index) => {
                if printed_oneofs.get(index).copied().unwrap_or(true) {
                    continue;
                }
                printed_oneofs[index] = true;
                let _ = writeln!(out, "{inner}oneof {} {{", message.oneofs[index]);
                let member_indent = "  ".repeat(depth + 2);
                for member in fields.iter().filter(|f| f.oneof == Some(index)) {
                    print_field(out, member, &member_indent, normalize);
                }
                let _ = writeln!(out, "{inner}}}");
            }
        }
    }
    if !message.reserved_ranges.is_empty() {
        let ranges: Vec<String> = message
            .reserved_ranges
            .iter()
            .map(|(from, to)| {
                if from == to {
                    from.to_string()
                } else if *to == FIELD_NUMBER_MAX {
                    format!("{from} to max")
                } else {
                    format!("{from} to {to}")
                }
            })
            .collect();
        let _ = writeln!(out, "{inner}reserved {};", ranges.join(", "));
    }
    if !message.reserved_names.is_empty() {
        let names: Vec<String> = message
            .reserved_names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect();
        let _ = writeln!(out, "{inner}reserved {};", names.join(", "));
    }
    for (index, nested) in message.messages.iter().enumerate() {
        if !printed_messages[index] {
            print_message(out, nested, depth + 1, normalize);
        }
    }
    for e in &message.enums {
        print_enum(out, e, depth + 1);
    }
    let _ = writeln!(out, "{indent}}}");
}

fn print_enum(out: &mut String, e: &EnumType, depth: usize) {
    let indent = "  ".repeat(depth);
    let _ = writeln!(out, "{indent}enum {} {{", e.name);
    for (name, number) in &e.values {
        let _ = writeln!(out, "{indent}  {name} = {number};");
    }
    let _ = writeln!(out, "{indent}}}");
}
