//! A base64 `FileDescriptorProto` (google/protobuf/descriptor.proto), decoded from the wire
//! format by hand into the same model as `.proto` text. Only the fields the model keeps are
//! read; every other field is skipped by its wire type.

use super::{
    EnumType, Field, FieldType, Label, Message, Method, Nested, ProtoFile, Service, Syntax,
    NESTING_DEPTH_MAX,
};

/// Descriptor text larger than this is refused before decoding.
const DESCRIPTOR_BYTES_MAX: usize = 4 * 1024 * 1024;

pub(super) fn parse_base64(text: &str) -> Result<ProtoFile, String> {
    let bytes = decode_base64(text)?;
    file(&bytes)
}

fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    if text.len() > DESCRIPTOR_BYTES_MAX {
        return Err("descriptor too large".into());
    }
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 {
        return Err("bad base64 padding".into());
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0u32;
    for byte in body.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return Err("not base64".into()),
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err("bad base64 length".into());
    }
    Ok(out)
}

/// One field of a protobuf message on the wire.
enum Value<'b> {
    Varint(u64),
    Bytes(&'b [u8]),
    Other,
}

struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Reader<'b> {
    fn new(bytes: &'b [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(byte) = self.bytes.get(self.at) else {
                return Err("descriptor truncated in a varint".into());
            };
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("descriptor varint too long".into())
    }

    fn take(&mut self, length: usize) -> Result<&'b [u8], String> {
        let end = self
            .at
            .checked_add(length)
            .filter(|end| *end <= self.bytes.len())
            .ok_or("descriptor truncated")?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    /// The next (field number, value), or None at the end.
    fn field(&mut self) -> Result<Option<(u64, Value<'b>)>, String> {
        if self.at >= self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Other
            }
            2 => {
                let length = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
                Value::Bytes(self.take(length)?)
            }
            5 => {
                self.take(4)?;
                Value::Other
            }
            other => return Err(format!("descriptor uses unsupported wire type {other}")),
        };
        Ok(Some((key >> 3, value)))
    }
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| "descriptor has a string that is not UTF-8".into())
}

fn file(bytes: &[u8]) -> Result<ProtoFile, String> {
    let mut file = ProtoFile {
        syntax: Syntax::Proto2,
        edition: None,
        package: String::new(),
        imports: Vec::new(),
        messages: Vec::new(),
        enums: Vec::new(),
        services: Vec::new(),
    };
    // The syntax (field 12) comes after the messages on the wire; labels depend on it.
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.field()? {
        if let (12, Value::Bytes(b)) = (number, value) {
            file.syntax = match text(b)?.as_str() {
                "proto3" => Syntax::Proto3,
                "editions" => Syntax::Editions,
                _ => Syntax::Proto2,
            }
        }
    }
    let syntax = file.syntax;
    let mut public = Vec::new();
    let mut weak = Vec::new();
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.field()? {
        match (number, value) {
            (2, Value::Bytes(b)) => file.package = text(b)?,
            (3, Value::Bytes(b)) => file.imports.push((text(b)?, None)),
            (4, Value::Bytes(b)) => file.messages.push(message(b, 0, syntax)?),
            (5, Value::Bytes(b)) => file.enums.push(enumeration(b)?),
            (6, Value::Bytes(b)) => file.services.push(service(b)?),
            (10, Value::Varint(i)) => public.push(i),
            (11, Value::Varint(i)) => weak.push(i),
            (14, Value::Varint(edition)) => file.edition = Some(edition_name(edition)),
            _ => {}
        }
    }
    for (index, import) in file.imports.iter_mut().enumerate() {
        let index = index as u64;
        if public.contains(&index) {
            import.1 = Some("public");
        } else if weak.contains(&index) {
            import.1 = Some("weak");
        }
    }
    if file.syntax == Syntax::Editions && file.edition.is_none() {
        file.edition = Some("2023".into());
    }
    if file.messages.is_empty() && file.enums.is_empty() && file.package.is_empty() {
        return Err("the descriptor declares nothing".into());
    }
    Ok(file)
}

fn edition_name(edition: u64) -> String {
    // Edition enum values: EDITION_2023 = 1000, EDITION_2024 = 1001.
    match edition {
        1000 => "2023".into(),
        1001 => "2024".into(),
        other => other.to_string(),
    }
}

/// A field as the descriptor spells it, before map entries are folded into map fields.
struct RawField {
    name: String,
    number: i64,
    label: u64,
    type_code: u64,
    type_name: String,
    oneof: Option<usize>,
    proto3_optional: bool,
}

const SCALAR_CODES: [(u64, &str); 15] = [
    (1, "double"),
    (2, "float"),
    (3, "int64"),
    (4, "uint64"),
    (5, "int32"),
    (6, "fixed64"),
    (7, "fixed32"),
    (8, "bool"),
    (9, "string"),
    (12, "bytes"),
    (13, "uint32"),
    (15, "sfixed32"),
    (16, "sfixed64"),
    (17, "sint32"),
    (18, "sint64"),
];

fn message(bytes: &[u8], depth: usize, syntax: Syntax) -> Result<Message, String> {
    if depth > NESTING_DEPTH_MAX {
        return Err(format!(
            "messages nested deeper than {NESTING_DEPTH_MAX} levels"
        ));
    }
    let mut out = Message::default();
    let mut raw_fields = Vec::new();
    let mut map_entries = Vec::new();
    // Nested types in wire order: Ok(message index) or Err(map entry name).
    let mut order: Vec<Result<usize, String>> = Vec::new();
    let mut entry_fields: Vec<(String, usize)> = Vec::new();
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.field()? {
        match (number, value) {
            (1, Value::Bytes(b)) => out.name = text(b)?,
            (2, Value::Bytes(b)) => raw_fields.push(raw_field(b)?),
            (3, Value::Bytes(b)) => {
                let nested = message(b, depth + 1, syntax)?;
                if is_map_entry(b)? {
                    order.push(Err(nested.name.clone()));
                    map_entries.push(nested);
                } else {
                    order.push(Ok(out.messages.len()));
                    out.messages.push(nested);
                }
            }
            (4, Value::Bytes(b)) => out.enums.push(enumeration(b)?),
            (8, Value::Bytes(b)) => {
                let mut oneof = Reader::new(b);
                let mut name = String::new();
                while let Some((n, v)) = oneof.field()? {
                    if let (1, Value::Bytes(b)) = (n, v) {
                        name = text(b)?;
                    }
                }
                out.oneofs.push(name);
            }
            (9, Value::Bytes(b)) => {
                let mut range = Reader::new(b);
                let (mut start, mut end) = (0i64, 0i64);
                while let Some((n, v)) = range.field()? {
                    match (n, v) {
                        (1, Value::Varint(s)) => start = s as i64,
                        (2, Value::Varint(e)) => end = e as i64,
                        _ => {}
                    }
                }
                // Descriptor ranges are end-exclusive.
                out.reserved_ranges
                    .push((start, end.saturating_sub(1).max(start)));
            }
            (10, Value::Bytes(b)) => out.reserved_names.push(text(b)?),
            _ => {}
        }
    }
    // Synthetic oneofs (proto3 `optional`) are not oneofs in the text form.
    let mut synthetic = vec![false; out.oneofs.len()];
    for field in &raw_fields {
        if let (true, Some(index)) = (field.proto3_optional, field.oneof) {
            if let Some(flag) = synthetic.get_mut(index) {
                *flag = true;
            }
        }
    }
    let mut renumber = Vec::with_capacity(out.oneofs.len());
    let mut kept = Vec::new();
    for (index, name) in out.oneofs.iter().enumerate() {
        if synthetic[index] {
            renumber.push(None);
        } else {
            renumber.push(Some(kept.len()));
            kept.push(name.clone());
        }
    }
    out.oneofs = kept;
    for raw in raw_fields {
        let oneof = match raw.oneof {
            Some(index) => match renumber.get(index) {
                Some(mapped) => *mapped,
                None => {
                    return Err(format!(
                        "field '{}' names a oneof that does not exist",
                        raw.name
                    ))
                }
            },
            None => None,
        };
        let entry = map_entries.iter().find(|entry| {
            raw.label == 3 && raw.type_name.rsplit('.').next() == Some(entry.name.as_str())
        });
        let (label, field_type) = match entry {
            Some(entry) => {
                entry_fields.push((entry.name.clone(), out.fields.len()));
                (Label::Plain, map_type(entry)?)
            }
            None => {
                let label = match raw.label {
                    2 => Label::Required,
                    3 => Label::Repeated,
                    _ if raw.proto3_optional => Label::Optional,
                    _ if oneof.is_some() || syntax != Syntax::Proto2 => Label::Plain,
                    _ => Label::Optional,
                };
                (label, field_type(raw.type_code, &raw.type_name)?)
            }
        };
        out.fields.push(Field {
            name: raw.name,
            number: raw.number,
            label,
            field_type,
            oneof,
        });
    }
    out.nested_order = order
        .into_iter()
        .filter_map(|item| match item {
            Ok(index) => Some(Nested::Message(index)),
            Err(name) => entry_fields
                .iter()
                .find(|(entry, _)| *entry == name)
                .map(|(_, field)| Nested::MapEntry(*field)),
        })
        .collect();
    Ok(out)
}

fn field_type(code: u64, type_name: &str) -> Result<FieldType, String> {
    if let Some((_, name)) = SCALAR_CODES.iter().find(|(c, _)| *c == code) {
        return Ok(FieldType::Scalar(name));
    }
    if matches!(code, 10 | 11 | 14) || (code == 0 && !type_name.is_empty()) {
        if type_name.is_empty() {
            return Err("a message or enum field without a type name".into());
        }
        return Ok(FieldType::Named {
            written: type_name.to_string(),
            resolved: None,
        });
    }
    Err(format!("unknown field type code {code}"))
}

fn map_type(entry: &Message) -> Result<FieldType, String> {
    let key = entry.fields.iter().find(|f| f.number == 1);
    let value = entry.fields.iter().find(|f| f.number == 2);
    match (key, value) {
        (
            Some(Field {
                field_type: FieldType::Scalar(key),
                ..
            }),
            Some(value),
        ) => Ok(FieldType::Map(key, Box::new(value.field_type.clone()))),
        _ => Err(format!(
            "map entry {} lacks a scalar key or a value",
            entry.name
        )),
    }
}

/// Whether a nested DescriptorProto has `options.map_entry = true` (MessageOptions 7).
fn is_map_entry(bytes: &[u8]) -> Result<bool, String> {
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.field()? {
        if let (7, Value::Bytes(options)) = (number, value) {
            let mut options = Reader::new(options);
            while let Some((n, v)) = options.field()? {
                if let (7, Value::Varint(1)) = (n, v) {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

fn raw_field(bytes: &[u8]) -> Result<RawField, String> {
    let mut field = RawField {
        name: String::new(),
        number: 0,
        label: 1,
        type_code: 0,
        type_name: String::new(),
        oneof: None,
        proto3_optional: false,
    };
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.field()? {
        match (number, value) {
            (1, Value::Bytes(b)) => field.name = text(b)?,
            (3, Value::Varint(n)) => field.number = n as i32 as i64,
            (4, Value::Varint(l)) => field.label = l,
            (5, Value::Varint(t)) => field.type_code = t,
            (6, Value::Bytes(b)) => field.type_name = text(b)?,
            (9, Value::Varint(i)) => {
                field.oneof = Some(usize::try_from(i).map_err(|_| "oneof index too large")?)
            }
            (17, Value::Varint(b)) => field.proto3_optional = b != 0,
            _ => {}
        }
    }
    if field.name.is_empty() {
        return Err("a field without a name".into());
    }
    Ok(field)
}

fn enumeration(bytes: &[u8]) -> Result<EnumType, String> {
    let mut out = EnumType::default();
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.field()? {
        match (number, value) {
            (1, Value::Bytes(b)) => out.name = text(b)?,
            (2, Value::Bytes(b)) => {
                let mut value_reader = Reader::new(b);
                let (mut name, mut n) = (String::new(), 0i64);
                while let Some((k, v)) = value_reader.field()? {
                    match (k, v) {
                        (1, Value::Bytes(b)) => name = text(b)?,
                        (2, Value::Varint(x)) => n = x as i32 as i64,
                        _ => {}
                    }
                }
                out.values.push((name, n));
            }
            _ => {}
        }
    }
    Ok(out)
}

fn service(bytes: &[u8]) -> Result<Service, String> {
    let mut out = Service {
        name: String::new(),
        methods: Vec::new(),
    };
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.field()? {
        match (number, value) {
            (1, Value::Bytes(b)) => out.name = text(b)?,
            (2, Value::Bytes(b)) => {
                let mut method = Method {
                    name: String::new(),
                    input: String::new(),
                    input_stream: false,
                    output: String::new(),
                    output_stream: false,
                    resolved: None,
                };
                let mut method_reader = Reader::new(b);
                while let Some((k, v)) = method_reader.field()? {
                    match (k, v) {
                        (1, Value::Bytes(b)) => method.name = text(b)?,
                        (2, Value::Bytes(b)) => method.input = text(b)?,
                        (3, Value::Bytes(b)) => method.output = text(b)?,
                        (5, Value::Varint(s)) => method.input_stream = s != 0,
                        (6, Value::Varint(s)) => method.output_stream = s != 0,
                        _ => {}
                    }
                }
                out.methods.push(method);
            }
            _ => {}
        }
    }
    Ok(out)
}
