//! Rule tables: (old schema, new schema, level, compatible?) per type, plus malformed
//! schemas that must be refused with a `SchemaError`.

mod avro;
mod json;
mod protobuf;

use super::{check, parse, CompatibilityLevel, ParsedSchema, ResolvedReference, SchemaType};

use CompatibilityLevel::*;

pub(super) fn parsed(schema_type: SchemaType, text: &str) -> ParsedSchema {
    match parse(schema_type, text, &[], false) {
        Ok(schema) => schema,
        Err(e) => panic!("{text} should parse: {e}"),
    }
}

/// One row: `old` then `new` registered under `level`; `compatible` is the expected answer.
pub(super) struct Row {
    pub name: &'static str,
    pub old: &'static str,
    pub new: &'static str,
    pub level: CompatibilityLevel,
    pub compatible: bool,
}

pub(super) fn run_table(schema_type: SchemaType, rows: &[Row]) {
    let mut failures = Vec::new();
    for row in rows {
        let old = parsed(schema_type, row.old);
        let new = parsed(schema_type, row.new);
        let messages = check(row.level, &new, &[old]);
        if messages.is_empty() != row.compatible {
            failures.push(format!(
                "{} ({}): expected compatible={}, messages {:?}",
                row.name, row.level, row.compatible, messages
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

pub(super) fn assert_invalid(schema_type: SchemaType, texts: &[&str]) {
    for text in texts {
        let result = parse(schema_type, text, &[], false);
        assert!(
            result.is_err(),
            "{text:?} should be refused, got {result:?}"
        );
        if let Err(e) = result {
            assert_eq!(e.schema_type, schema_type);
        }
    }
}

#[test]
fn none_level_accepts_anything_and_transitive_levels_look_at_every_version() {
    let v1 = parsed(
        SchemaType::Avro,
        r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"}]}"#,
    );
    let v2 = parsed(
        SchemaType::Avro,
        r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}"#,
    );
    // v3 drops b's default: readable from v2's data (b present) but not from v1's.
    let v3 = parsed(
        SchemaType::Avro,
        r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}"#,
    );
    let history = [v1.clone(), v2.clone()];
    assert!(check(None, &v3, &history).is_empty());
    assert!(check(Backward, &v3, &history).is_empty());
    let transitive = check(BackwardTransitive, &v3, &history);
    assert_eq!(transitive.len(), 1, "{transitive:?}");
    assert!(
        transitive[0].contains("READER_FIELD_MISSING_DEFAULT_VALUE"),
        "{transitive:?}"
    );
    // FORWARD_TRANSITIVE: v1 and v2 must read v3's data; both can.
    assert!(check(ForwardTransitive, &v3, &history).is_empty());
    assert!(!check(FullTransitive, &v3, &history).is_empty());
    // No history: anything goes.
    assert!(check(FullTransitive, &v3, &[]).is_empty());
}

#[test]
fn a_schema_type_change_is_incompatible() {
    let avro = parsed(SchemaType::Avro, r#""string""#);
    let json = parsed(SchemaType::Json, r#"{"type":"string"}"#);
    assert!(!check(Backward, &json, &[avro]).is_empty());
}

#[test]
fn references_of_another_type_are_refused() {
    let reference = ResolvedReference {
        name: "x".into(),
        schema_type: SchemaType::Json,
        text: "{}".into(),
    };
    assert!(parse(SchemaType::Avro, r#""string""#, &[reference], false).is_err());
}

/// Every prefix and many single-byte corruptions of valid schemas: each parse answers Ok or
/// Err, never a panic (a request can reach every parser).
#[test]
fn cut_and_corrupted_schemas_never_panic() {
    let samples = [
        (
            SchemaType::Avro,
            r#"{"type":"record","name":"User","namespace":"a.b","aliases":["Old"],"fields":[{"name":"id","type":"long","default":0},{"name":"tags","type":{"type":"array","items":"string"}},{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"],"default":"A"}},{"name":"h","type":["null",{"type":"fixed","name":"H","size":4}],"default":null},{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}}]}"#,
        ),
        (
            SchemaType::Json,
            r##"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"a":{"type":"string","maxLength":4,"pattern":"^x"},"b":{"$ref":"#/definitions/n"},"c":{"oneOf":[{"type":"null"},{"type":"array","items":{"enum":[1,2]}}]}},"required":["a"],"additionalProperties":false,"definitions":{"n":{"type":"number","minimum":0}}}"##,
        ),
        (
            SchemaType::Protobuf,
            "syntax = \"proto3\";\npackage p.q;\nimport \"google/protobuf/timestamp.proto\";\nmessage M {\n  map<string, N> m = 1;\n  oneof o { string a = 2; int64 b = 3; }\n  repeated N n = 4 [packed = true];\n  google.protobuf.Timestamp t = 5;\n  reserved 6 to 8;\n  message N { E e = 1; enum E { Z = 0; } }\n}\nservice S { rpc R(stream M) returns (M); }\n",
        ),
    ];
    let samples = samples
        .into_iter()
        .chain([(SchemaType::Protobuf, protobuf::USER_DESCRIPTOR)]);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for (schema_type, text) in samples {
        assert!(
            parse(schema_type, text, &[], false).is_ok(),
            "{text} should parse"
        );
        for cut in (0..text.len()).filter(|i| text.is_char_boundary(*i)) {
            let _ = parse(schema_type, &text[..cut], &[], false);
        }
        let bytes = text.as_bytes();
        for _ in 0..2_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut corrupted = bytes.to_vec();
            let at = (state % bytes.len() as u64) as usize;
            const ALPHABET: &[u8] = b"{}[]\":,;=<>0-.aZ \n#/";
            corrupted[at] = ALPHABET[(state >> 32) as usize % ALPHABET.len()];
            if let Ok(text) = String::from_utf8(corrupted) {
                for normalize in [false, true] {
                    if let Ok(schema) = parse(schema_type, &text, &[], normalize) {
                        // A schema that parses also checks against the original, both ways.
                        let original =
                            parsed(schema_type, std::str::from_utf8(bytes).unwrap_or(""));
                        let _ = check(FullTransitive, &schema, &[original.clone()]);
                        let _ = check(FullTransitive, &original, &[schema]);
                    }
                }
            }
        }
    }
}

/// Unions of records inside unions (Avro) and combinators of references (JSON) multiply the
/// comparisons: a check stops at its step budget and calls the pair incompatible.
#[test]
fn combinatorial_schemas_hit_the_step_budget() {
    let levels = 14;
    let mut fields = Vec::new();
    for level in (0..levels).rev() {
        for branch in 0..3 {
            let inner = if level + 1 == levels {
                String::new()
            } else {
                format!(
                    r#"{{"name":"f","type":["R{0}_0","R{0}_1","R{0}_2"]}}"#,
                    level + 1
                )
            };
            fields.push(format!(
                r#"{{"name":"d{level}_{branch}","type":{{"type":"record","name":"R{level}_{branch}","fields":[{inner}]}}}}"#
            ));
        }
    }
    let avro = format!(
        r#"{{"type":"record","name":"Top","fields":[{}]}}"#,
        fields.join(",")
    );
    let schema = parsed(SchemaType::Avro, &avro);
    let messages = check(Backward, &schema, &[schema.clone()]);
    assert!(
        messages.iter().any(|m| m.contains("TOO_COMPLEX")),
        "{messages:?}"
    );

    let mut definitions = Vec::new();
    for level in 0..levels {
        let next = if level + 1 == levels {
            r#"{"type":"string"}"#.to_string()
        } else {
            format!(r##"{{"$ref":"#/definitions/d{}"}}"##, level + 1)
        };
        definitions.push(format!(
            r#""d{level}":{{"anyOf":[{next},{next},{{"type":"object","properties":{{"x":{next}}}}}]}}"#
        ));
    }
    let json = format!(
        r##"{{"$ref":"#/definitions/d0","definitions":{{{}}}}}"##,
        definitions.join(",")
    );
    let schema = parsed(SchemaType::Json, &json);
    let messages = check(Backward, &schema, &[schema.clone()]);
    assert!(
        messages.iter().any(|m| m.contains("TOO_COMPLEX")),
        "{messages:?}"
    );
}

/// The registry stores canonical texts and parses them again on restart: the canonical text
/// of a canonical text is itself, plain and normalized.
#[test]
fn canonical_texts_are_fixed_points() {
    let samples = [
        (SchemaType::Avro, r#"{"type":"record","name":"U","namespace":"a","fields":[{"name":"x","type":{"type":"enum","name":"E","symbols":["A"]},"doc":"d"},{"name":"y","type":["null","E"],"default":null},{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#),
        (SchemaType::Avro, r#"  "string"  "#),
        (SchemaType::Json, r##"{"type":"object","properties":{"b":{"type":"string"},"a":{"$ref":"#/$defs/x"}},"$defs":{"x":{"enum":[1,"two",null]}}}"##),
        (SchemaType::Protobuf, "syntax = \"proto3\";\npackage p;\nmessage M { map<string, N> m = 2; oneof o { string a = 1; } optional N n = 3; message N { repeated E e = 1; enum E { Z = 0; } } }\nservice S { rpc R(M) returns (stream M.N); }"),
        (SchemaType::Protobuf, "syntax = \"proto2\";\nmessage M { required string a = 1; optional group G = 2 { optional int32 x = 1; } reserved 5 to max; }"),
    ];
    for (schema_type, text) in samples {
        for normalize in [false, true] {
            let first = parse(schema_type, text, &[], normalize).expect("parses");
            let second = parse(schema_type, first.canonical(), &[], normalize).expect("reparses");
            assert_eq!(
                first.canonical(),
                second.canonical(),
                "{schema_type} normalize={normalize}"
            );
            assert!(check(FullTransitive, &second, &[first]).is_empty());
        }
    }
}
