//! The model written as a `FileDescriptorProto`, base64-encoded: what Confluent answers for
//! `GET /schemas/ids/{id}?format=serialized`, and what confluent-kafka Python's Protobuf
//! deserializer fetches and loads into a descriptor pool. Type names are written fully
//! qualified; maps become the nested `<Field>Entry` messages protoc generates; proto3
//! `optional` fields get their synthetic oneofs after the real ones.

use super::{EnumType, Field, FieldType, Label, Message, Nested, ProtoFile, Syntax, TypeKind};

/// Base64 (standard alphabet, padded) of the file's `FileDescriptorProto`.
pub(crate) fn descriptor_base64(file: &ProtoFile) -> String {
    base64(&file_bytes(file))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (index, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if index <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[derive(Default)]
struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    fn key(&mut self, field: u64, wire_type: u64) {
        self.varint((field << 3) | wire_type);
    }

    fn uint(&mut self, field: u64, value: u64) {
        self.key(field, 0);
        self.varint(value);
    }

    /// An int32 field: negative numbers are ten-byte varints on the wire.
    fn int(&mut self, field: u64, value: i64) {
        self.uint(field, value as u64);
    }

    fn bytes(&mut self, field: u64, value: &[u8]) {
        self.key(field, 2);
        self.varint(value.len() as u64);
        self.bytes.extend_from_slice(value);
    }

    fn string(&mut self, field: u64, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    fn message(&mut self, field: u64, build: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::default();
        build(&mut inner);
        self.bytes(field, &inner.bytes);
    }
}

fn file_bytes(file: &ProtoFile) -> Vec<u8> {
    let mut w = Writer::default();
    if !file.package.is_empty() {
        w.string(2, &file.package);
    }
    for (path, _) in &file.imports {
        w.string(3, path);
    }
    let package_scope = if file.package.is_empty() {
        String::new()
    } else {
        format!(".{}", file.package)
    };
    for message in &file.messages {
        w.message(4, |m| {
            message_bytes(m, message, &package_scope, file.syntax)
        });
    }
    for e in &file.enums {
        w.message(5, |m| enum_bytes(m, e));
    }
    for service in &file.services {
        w.message(6, |s| {
            s.string(1, &service.name);
            for method in &service.methods {
                s.message(2, |m| {
                    m.string(1, &method.name);
                    let (input, output) = match &method.resolved {
                        Some((input, output)) => (input.as_str(), output.as_str()),
                        None => (method.input.as_str(), method.output.as_str()),
                    };
                    m.string(2, input);
                    m.string(3, output);
                    if method.input_stream {
                        m.uint(5, 1);
                    }
                    if method.output_stream {
                        m.uint(6, 1);
                    }
                });
            }
        });
    }
    for (index, (_, modifier)) in file.imports.iter().enumerate() {
        match *modifier {
            Some("public") => w.uint(10, index as u64),
            Some("weak") => w.uint(11, index as u64),
            _ => {}
        }
    }
    match file.syntax {
        Syntax::Proto2 => {}
        Syntax::Proto3 => w.string(12, "proto3"),
        Syntax::Editions => {
            w.string(12, "editions");
            let edition = match file.edition.as_deref() {
                Some("2024") => 1001,
                _ => 1000,
            };
            w.uint(14, edition);
        }
    }
    w.bytes
}

/// protoc's name for a map field's entry message: `my_field` → `MyFieldEntry`.
fn map_entry_name(field: &str) -> String {
    let mut out = String::with_capacity(field.len() + 5);
    let mut upper_next = true;
    for c in field.chars() {
        if c == '_' {
            upper_next = true;
        } else if upper_next {
            out.push(c.to_ascii_uppercase());
            upper_next = false;
        } else {
            out.push(c);
        }
    }
    out.push_str("Entry");
    out
}

const SCALAR_CODES: [(&str, u64); 15] = [
    ("double", 1),
    ("float", 2),
    ("int64", 3),
    ("uint64", 4),
    ("int32", 5),
    ("fixed64", 6),
    ("fixed32", 7),
    ("bool", 8),
    ("string", 9),
    ("bytes", 12),
    ("uint32", 13),
    ("sfixed32", 15),
    ("sfixed64", 16),
    ("sint32", 17),
    ("sint64", 18),
];

/// (type code, type name) of a non-map field type.
fn type_of(field_type: &FieldType) -> (u64, Option<String>) {
    match field_type {
        FieldType::Scalar(name) => {
            let code = SCALAR_CODES
                .iter()
                .find(|(n, _)| n == name)
                .map_or(9, |(_, c)| *c);
            (code, None)
        }
        FieldType::Named { written, resolved } => match resolved {
            Some((full, TypeKind::Enum)) => (14, Some(full.clone())),
            Some((full, TypeKind::Message)) => (11, Some(full.clone())),
            None => (11, Some(written.clone())),
        },
        // Maps are written as their entry message by the caller.
        FieldType::Map(..) => (11, None),
    }
}

fn field_bytes(
    w: &mut Writer,
    field: &Field,
    label: u64,
    field_type: &FieldType,
    type_name: Option<&str>,
) {
    w.string(1, &field.name);
    w.int(3, field.number);
    w.uint(4, label);
    let (code, name) = type_of(field_type);
    w.uint(5, code);
    if let Some(name) = type_name.map(str::to_string).or(name) {
        w.string(6, &name);
    }
}

fn message_bytes(w: &mut Writer, message: &Message, scope: &str, syntax: Syntax) {
    let full_name = format!("{scope}.{}", message.name);
    w.string(1, &message.name);
    let real_oneofs = message.oneofs.len();
    let mut synthetic = Vec::new();
    for field in &message.fields {
        let label = match field.label {
            Label::Required => 2,
            Label::Repeated => 3,
            Label::Plain | Label::Optional => 1,
        };
        let proto3_optional = field.label == Label::Optional && syntax != Syntax::Proto2;
        w.message(2, |f| {
            match &field.field_type {
                FieldType::Map(..) => {
                    let entry = format!("{full_name}.{}", map_entry_name(&field.name));
                    field_bytes(f, field, 3, &field.field_type, Some(&entry));
                }
                other => field_bytes(f, field, label, other, None),
            }
            if let Some(index) = field.oneof {
                f.uint(9, index as u64);
            } else if proto3_optional {
                f.uint(9, (real_oneofs + synthetic.len()) as u64);
                f.uint(17, 1);
            }
        });
        if proto3_optional && field.oneof.is_none() {
            synthetic.push(format!("_{}", field.name));
        }
    }
    // Nested types in declaration order (protoc's numbering); anything the order does not
    // name (a model built without it) follows.
    let mut order = message.nested_order.clone();
    for index in 0..message.messages.len() {
        if !order.contains(&Nested::Message(index)) {
            order.push(Nested::Message(index));
        }
    }
    for (index, field) in message.fields.iter().enumerate() {
        if matches!(field.field_type, FieldType::Map(..))
            && !order.contains(&Nested::MapEntry(index))
        {
            order.push(Nested::MapEntry(index));
        }
    }
    for item in order {
        let field = match item {
            Nested::Message(index) => {
                if let Some(nested) = message.messages.get(index) {
                    w.message(3, |m| message_bytes(m, nested, &full_name, syntax));
                }
                continue;
            }
            Nested::MapEntry(index) => match message.fields.get(index) {
                Some(field) => field,
                None => continue,
            },
        };
        if let FieldType::Map(key, value) = &field.field_type {
            w.message(3, |m| {
                m.string(1, &map_entry_name(&field.name));
                let key_field = Field {
                    name: "key".into(),
                    number: 1,
                    label: Label::Plain,
                    field_type: FieldType::Scalar(key),
                    oneof: None,
                };
                m.message(2, |f| {
                    field_bytes(f, &key_field, 1, &key_field.field_type, None)
                });
                let value_field = Field {
                    name: "value".into(),
                    number: 2,
                    label: Label::Plain,
                    field_type: value.as_ref().clone(),
                    oneof: None,
                };
                m.message(2, |f| {
                    field_bytes(f, &value_field, 1, &value_field.field_type, None)
                });
                // MessageOptions.map_entry = true
                m.message(7, |o| o.uint(7, 1));
            });
        }
    }
    for e in &message.enums {
        w.message(4, |m| enum_bytes(m, e));
    }
    for (from, to) in &message.reserved_ranges {
        // Descriptor ranges are end-exclusive.
        w.message(9, |r| {
            r.int(1, *from);
            r.int(2, to + 1);
        });
    }
    for name in &message.reserved_names {
        w.string(10, name);
    }
    for name in message.oneofs.iter().chain(&synthetic) {
        w.message(8, |o| o.string(1, name));
    }
}

fn enum_bytes(w: &mut Writer, e: &EnumType) {
    w.string(1, &e.name);
    for (name, number) in &e.values {
        w.message(2, |v| {
            v.string(1, name);
            v.int(2, *number);
        });
    }
}
