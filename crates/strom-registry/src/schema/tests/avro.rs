//! Avro rule table and parsing cases.

use super::{assert_invalid, parsed, run_table, Row};
use crate::schema::{check, parse, CompatibilityLevel::*, ResolvedReference, SchemaType};

fn rec(fields: &str) -> String {
    format!(r#"{{"type":"record","name":"User","namespace":"com.example","fields":[{fields}]}}"#)
}

macro_rules! row {
    ($name:expr, $old:expr, $new:expr, $level:expr, $ok:expr) => {
        Row {
            name: $name,
            old: Box::leak($old.to_string().into_boxed_str()),
            new: Box::leak($new.to_string().into_boxed_str()),
            level: $level,
            compatible: $ok,
        }
    };
}

const ID: &str = r#"{"name":"id","type":"int"}"#;

#[test]
fn avro_rule_table() {
    let color = |symbols: &str, default: &str| {
        format!(
            r#"{{"name":"c","type":{{"type":"enum","name":"Color","symbols":[{symbols}]{default}}}}}"#
        )
    };
    let fixed = |size: u32| {
        format!(r#"{{"name":"f","type":{{"type":"fixed","name":"Hash","size":{size}}}}}"#)
    };
    let address = |extra: &str| {
        format!(
            r#"{{"name":"home","type":{{"type":"record","name":"Address","fields":[{{"name":"street","type":"string"}}{extra}]}}}}"#
        )
    };
    let rows = vec![
        row!(
            "field added with default",
            rec(ID),
            rec(&format!(
                r#"{ID},{{"name":"email","type":"string","default":""}}"#
            )),
            Backward,
            true
        ),
        row!(
            "field added without default",
            rec(ID),
            rec(&format!(r#"{ID},{{"name":"email","type":"string"}}"#)),
            Backward,
            false
        ),
        row!(
            "field added without default, forward",
            rec(ID),
            rec(&format!(r#"{ID},{{"name":"email","type":"string"}}"#)),
            Forward,
            true
        ),
        row!(
            "field added without default, full",
            rec(ID),
            rec(&format!(r#"{ID},{{"name":"email","type":"string"}}"#)),
            Full,
            false
        ),
        row!(
            "field added with default, full",
            rec(ID),
            rec(&format!(
                r#"{ID},{{"name":"email","type":"string","default":""}}"#
            )),
            Full,
            true
        ),
        row!(
            "field removed",
            rec(&format!(r#"{ID},{{"name":"email","type":"string"}}"#)),
            rec(ID),
            Backward,
            true
        ),
        row!(
            "field without default removed, forward",
            rec(&format!(r#"{ID},{{"name":"email","type":"string"}}"#)),
            rec(ID),
            Forward,
            false
        ),
        row!(
            "field with default removed, forward",
            rec(&format!(
                r#"{ID},{{"name":"email","type":"string","default":"x"}}"#
            )),
            rec(ID),
            Forward,
            true
        ),
        row!(
            "int to long",
            rec(ID),
            rec(r#"{"name":"id","type":"long"}"#),
            Backward,
            true
        ),
        row!(
            "int to long, forward",
            rec(ID),
            rec(r#"{"name":"id","type":"long"}"#),
            Forward,
            false
        ),
        row!(
            "long to float",
            rec(r#"{"name":"id","type":"long"}"#),
            rec(r#"{"name":"id","type":"float"}"#),
            Backward,
            true
        ),
        row!(
            "float to double",
            rec(r#"{"name":"id","type":"float"}"#),
            rec(r#"{"name":"id","type":"double"}"#),
            Backward,
            true
        ),
        row!(
            "int to double",
            rec(ID),
            rec(r#"{"name":"id","type":"double"}"#),
            Backward,
            true
        ),
        row!(
            "long to int",
            rec(r#"{"name":"id","type":"long"}"#),
            rec(ID),
            Backward,
            false
        ),
        row!(
            "double to float",
            rec(r#"{"name":"id","type":"double"}"#),
            rec(r#"{"name":"id","type":"float"}"#),
            Backward,
            false
        ),
        row!(
            "string to bytes",
            rec(r#"{"name":"s","type":"string"}"#),
            rec(r#"{"name":"s","type":"bytes"}"#),
            Full,
            true
        ),
        row!(
            "int to string",
            rec(ID),
            rec(r#"{"name":"id","type":"string"}"#),
            Backward,
            false
        ),
        row!(
            "branch added to union",
            rec(r#"{"name":"v","type":["null","int"]}"#),
            rec(r#"{"name":"v","type":["null","int","string"]}"#),
            Backward,
            true
        ),
        row!(
            "branch added to union, forward",
            rec(r#"{"name":"v","type":["null","int"]}"#),
            rec(r#"{"name":"v","type":["null","int","string"]}"#),
            Forward,
            false
        ),
        row!(
            "branch removed from union",
            rec(r#"{"name":"v","type":["null","int","string"]}"#),
            rec(r#"{"name":"v","type":["null","int"]}"#),
            Backward,
            false
        ),
        row!(
            "reader union, writer non-union",
            rec(r#"{"name":"v","type":"int"}"#),
            rec(r#"{"name":"v","type":["null","int"],"default":null}"#),
            Backward,
            true
        ),
        row!(
            "reader union promotes writer",
            rec(r#"{"name":"v","type":"int"}"#),
            rec(r#"{"name":"v","type":["null","long"]}"#),
            Backward,
            true
        ),
        row!(
            "writer union, reader non-union",
            rec(r#"{"name":"v","type":["null","int"]}"#),
            rec(r#"{"name":"v","type":"int"}"#),
            Backward,
            false
        ),
        row!(
            "optional made required, forward",
            rec(r#"{"name":"v","type":"int"}"#),
            rec(r#"{"name":"v","type":["null","int"],"default":null}"#),
            Forward,
            false
        ),
        row!(
            "enum symbol added",
            rec(&color(r#""RED","GREEN""#, "")),
            rec(&color(r#""RED","GREEN","BLUE""#, "")),
            Backward,
            true
        ),
        row!(
            "enum symbol added, forward, no default",
            rec(&color(r#""RED","GREEN""#, "")),
            rec(&color(r#""RED","GREEN","BLUE""#, "")),
            Forward,
            false
        ),
        row!(
            "enum symbol added, forward, old has default",
            rec(&color(r#""RED","GREEN""#, r#","default":"RED""#)),
            rec(&color(r#""RED","GREEN","BLUE""#, r#","default":"RED""#)),
            Forward,
            true
        ),
        row!(
            "enum symbol removed",
            rec(&color(r#""RED","GREEN","BLUE""#, "")),
            rec(&color(r#""RED","GREEN""#, "")),
            Backward,
            false
        ),
        row!(
            "enum symbol removed, new has default",
            rec(&color(r#""RED","GREEN","BLUE""#, "")),
            rec(&color(r#""RED","GREEN""#, r#","default":"RED""#)),
            Backward,
            true
        ),
        row!(
            "nested record field added with default",
            rec(&address("")),
            rec(&address(r#",{"name":"zip","type":"string","default":""}"#)),
            Full,
            true
        ),
        row!(
            "nested record field added without default",
            rec(&address("")),
            rec(&address(r#",{"name":"zip","type":"string"}"#)),
            Backward,
            false
        ),
        row!(
            "nested record type changed",
            rec(&address("")),
            rec(
                r#"{"name":"home","type":{"type":"record","name":"Address","fields":[{"name":"street","type":"int"}]}}"#
            ),
            Backward,
            false
        ),
        row!(
            "record renamed",
            r#"{"type":"record","name":"A","fields":[]}"#,
            r#"{"type":"record","name":"B","fields":[]}"#,
            Backward,
            false
        ),
        row!(
            "record renamed with alias",
            r#"{"type":"record","name":"A","fields":[]}"#,
            r#"{"type":"record","name":"B","aliases":["A"],"fields":[]}"#,
            Backward,
            true
        ),
        row!(
            "record alias names another namespace",
            r#"{"type":"record","name":"A","namespace":"x","fields":[]}"#,
            r#"{"type":"record","name":"B","namespace":"y","aliases":["A"],"fields":[]}"#,
            Backward,
            false
        ),
        row!(
            "record alias with the full name",
            r#"{"type":"record","name":"A","namespace":"x","fields":[]}"#,
            r#"{"type":"record","name":"B","namespace":"y","aliases":["x.A"],"fields":[]}"#,
            Backward,
            true
        ),
        row!(
            "field renamed with alias",
            rec(ID),
            rec(r#"{"name":"ident","type":"int","aliases":["id"]}"#),
            Backward,
            true
        ),
        row!(
            "field renamed without alias",
            rec(ID),
            rec(r#"{"name":"ident","type":"int"}"#),
            Backward,
            false
        ),
        row!(
            "fixed size changed",
            rec(&fixed(16)),
            rec(&fixed(32)),
            Backward,
            false
        ),
        row!(
            "fixed size kept",
            rec(&fixed(16)),
            rec(&fixed(16)),
            Full,
            true
        ),
        row!(
            "array items promoted",
            r#"{"type":"array","items":"int"}"#,
            r#"{"type":"array","items":"long"}"#,
            Backward,
            true
        ),
        row!(
            "map values changed",
            r#"{"type":"map","values":"int"}"#,
            r#"{"type":"map","values":"string"}"#,
            Backward,
            false
        ),
        row!(
            "logical date reads as int",
            r#"{"type":"int","logicalType":"date"}"#,
            r#""int""#,
            Full,
            true
        ),
        row!(
            "primitive to record",
            r#""string""#,
            rec(ID),
            Backward,
            false
        ),
        row!("anything under NONE", r#""string""#, r#""int""#, None, true),
        row!(
            "recursive record unchanged",
            r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#,
            r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#,
            Full,
            true
        ),
        row!(
            "recursive record field added with default",
            r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#,
            r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]},{"name":"v","type":"int","default":0}]}"#,
            Full,
            true
        ),
    ];
    run_table(SchemaType::Avro, &rows);
}

#[test]
fn avro_messages_name_the_rule_and_path() {
    let old = parsed(SchemaType::Avro, &rec(ID));
    let new = parsed(
        SchemaType::Avro,
        &rec(&format!(r#"{ID},{{"name":"email","type":"string"}}"#)),
    );
    let messages = check(Backward, &new, &[old]);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains("READER_FIELD_MISSING_DEFAULT_VALUE at /fields/1"),
        "{messages:?}"
    );
    assert!(messages[0].contains("'email'"), "{messages:?}");
}

#[test]
fn avro_references_resolve_named_types_from_other_schemas() {
    let address = ResolvedReference {
        name: "com.example.Address".into(),
        schema_type: SchemaType::Avro,
        text: r#"{"type":"record","name":"Address","namespace":"com.example","fields":[{"name":"street","type":"string"}]}"#.into(),
    };
    let text = r#"{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"home","type":"Address"}]}"#;
    let with = parse(SchemaType::Avro, text, &[address.clone()], false)
        .expect("parses with its reference");
    assert_eq!(with.references(), ["com.example.Address".to_string()]);
    assert!(
        parse(SchemaType::Avro, text, &[], false).is_err(),
        "unknown type without the reference"
    );

    // The referenced record's change is seen through the reference.
    let changed = ResolvedReference {
        text: r#"{"type":"record","name":"Address","namespace":"com.example","fields":[{"name":"street","type":"string"},{"name":"zip","type":"string"}]}"#.into(),
        ..address
    };
    let newer = parse(SchemaType::Avro, text, &[changed], false).expect("parses");
    let messages = check(Backward, &newer, &[with]);
    assert!(messages.iter().any(|m| m.contains("'zip'")), "{messages:?}");
}

#[test]
fn avro_canonical_ignores_whitespace_and_normalize_unifies_spellings() {
    let a = parse(SchemaType::Avro, "{ \"type\" : \"int\" }", &[], false).expect("parses");
    let b = parse(SchemaType::Avro, r#"{"type":"int"}"#, &[], false).expect("parses");
    assert_eq!(a.canonical(), b.canonical());
    assert_eq!(a, b);
    let plain = parse(SchemaType::Avro, r#""int""#, &[], true).expect("parses");
    let object = parse(SchemaType::Avro, r#"{"type":"int"}"#, &[], true).expect("parses");
    assert_eq!(plain.canonical(), object.canonical());
    let split =
        r#"{"type":"record","name":"User","namespace":"a.b","fields":[{"name":"x","type":"int"}]}"#;
    let joined = r#"{"name":"a.b.User","fields":[{"type":"int","name":"x"}],"type":"record"}"#;
    let split = parse(SchemaType::Avro, split, &[], true).expect("parses");
    let joined = parse(SchemaType::Avro, joined, &[], true).expect("parses");
    assert_eq!(split.canonical(), joined.canonical());
}

#[test]
fn avro_defaults_may_hold_any_name() {
    let text = r#"{"type":"record","name":"Outer","fields":[{"name":"person","type":{"type":"record","name":"Person","fields":[{"name":"name","type":"string"}]},"default":{"name":"John Smith"}}]}"#;
    parse(SchemaType::Avro, text, &[], false).expect("a default whose data has a name key parses");
}

#[test]
fn malformed_avro_is_refused() {
    let deep = format!(
        "{}\"int\"{}",
        "{\"type\":\"array\",\"items\":".repeat(200),
        "}".repeat(200)
    );
    assert_invalid(
        SchemaType::Avro,
        &[
            "",
            "{",
            "not json",
            "42",
            r#""nosuchtype""#,
            r#"{"type":"record","name":"r"}"#,
            r#"{"type":"record","fields":[]}"#,
            r#"{"type":"record","name":"r","fields":[{"name":"a"}]}"#,
            r#"{"type":"record","name":"r","fields":[{"type":"int"}]}"#,
            r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"a","type":"int"}]}"#,
            r#"{"type":"enum","name":"e","symbols":["A","A"]}"#,
            r#"{"type":"enum","name":"e"}"#,
            r#"{"type":"fixed","name":"f"}"#,
            r#"{"type":"fixed","name":"f","size":-1}"#,
            r#"{"type":"array"}"#,
            r#"{"type":"map"}"#,
            r#"["int","int"]"#,
            r#"["null",["int"]]"#,
            r#"{"type":"record","name":"1bad","fields":[]}"#,
            r#"{"type":"record","name":"a b","fields":[]}"#,
            r#"{"type":"record","name":"r","fields":[{"name":"a","type":{"type":"fixed","name":"F","size":4}},{"name":"b","type":{"type":"fixed","name":"F","size":8}}]}"#,
            r#"{"type":"record","name":"r","fields":[{"name":"a","type":{"type":"record","name":"r","fields":[]}}]}"#,
            r#"{"type":"record","name":"r","aliases":["x y"],"fields":[]}"#,
            r#"{"type":"record","name":"r","namespace":"a..b","fields":[]}"#,
            &deep,
        ],
    );
}
