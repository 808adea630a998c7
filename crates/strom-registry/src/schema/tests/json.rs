//! JSON Schema rule table and parsing cases.

use super::{assert_invalid, run_table, Row};
use crate::schema::{check, parse, CompatibilityLevel::*, ResolvedReference, SchemaType};

const OPEN_AB: &str =
    r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}"#;
const OPEN_A: &str = r#"{"type":"object","properties":{"a":{"type":"string"}}}"#;
const CLOSED_AB: &str = r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":false}"#;
const CLOSED_A: &str =
    r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}"#;

fn row(
    name: &'static str,
    old: &'static str,
    new: &'static str,
    level: crate::schema::CompatibilityLevel,
    compatible: bool,
) -> Row {
    Row {
        name,
        old,
        new,
        level,
        compatible,
    }
}

#[test]
fn json_rule_table() {
    let rows = [
        row(
            "property removed from open model",
            OPEN_AB,
            OPEN_A,
            Backward,
            true,
        ),
        row(
            "property removed from closed model",
            CLOSED_AB,
            CLOSED_A,
            Backward,
            false,
        ),
        row(
            "property added to open model",
            OPEN_A,
            OPEN_AB,
            Backward,
            false,
        ),
        row(
            "property added to closed model",
            CLOSED_A,
            CLOSED_AB,
            Backward,
            true,
        ),
        row(
            "property added to closed model, full",
            CLOSED_A,
            CLOSED_AB,
            Full,
            false,
        ),
        row(
            "property with empty schema added to open model",
            OPEN_A,
            r#"{"type":"object","properties":{"a":{"type":"string"},"b":{}}}"#,
            Backward,
            true,
        ),
        row("closed model opened", CLOSED_A, OPEN_A, Backward, true),
        row("open model closed", OPEN_A, CLOSED_A, Backward, false),
        row(
            "partially open covers added property",
            r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"integer"}}"#,
            r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number"}},"additionalProperties":{"type":"integer"}}"#,
            Backward,
            true,
        ),
        row(
            "partially open does not cover added property",
            r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"integer"}}"#,
            r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"additionalProperties":{"type":"integer"}}"#,
            Backward,
            false,
        ),
        row(
            "required added",
            CLOSED_AB,
            r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":false,"required":["a"]}"#,
            Backward,
            false,
        ),
        row(
            "required added with default",
            CLOSED_AB,
            r#"{"type":"object","properties":{"a":{"type":"string","default":""},"b":{"type":"integer"}},"additionalProperties":false,"required":["a"]}"#,
            Backward,
            true,
        ),
        row(
            "required removed",
            r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#,
            OPEN_A,
            Backward,
            true,
        ),
        row(
            "integer widened to number",
            r#"{"type":"integer"}"#,
            r#"{"type":"number"}"#,
            Backward,
            true,
        ),
        row(
            "number narrowed to integer",
            r#"{"type":"number"}"#,
            r#"{"type":"integer"}"#,
            Backward,
            false,
        ),
        row(
            "type extended",
            r#"{"type":"string"}"#,
            r#"{"type":["string","null"]}"#,
            Backward,
            true,
        ),
        row(
            "type narrowed",
            r#"{"type":["string","null"]}"#,
            r#"{"type":"string"}"#,
            Backward,
            false,
        ),
        row(
            "type changed",
            r#"{"type":"string"}"#,
            r#"{"type":"integer"}"#,
            Backward,
            false,
        ),
        row(
            "enum extended",
            r#"{"enum":["a","b"]}"#,
            r#"{"enum":["a","b","c"]}"#,
            Backward,
            true,
        ),
        row(
            "enum extended, forward",
            r#"{"enum":["a","b"]}"#,
            r#"{"enum":["a","b","c"]}"#,
            Forward,
            false,
        ),
        row(
            "enum narrowed",
            r#"{"enum":["a","b"]}"#,
            r#"{"enum":["a"]}"#,
            Backward,
            false,
        ),
        row(
            "maxLength increased",
            r#"{"type":"string","maxLength":5}"#,
            r#"{"type":"string","maxLength":10}"#,
            Backward,
            true,
        ),
        row(
            "maxLength decreased",
            r#"{"type":"string","maxLength":10}"#,
            r#"{"type":"string","maxLength":5}"#,
            Backward,
            false,
        ),
        row(
            "maxLength added",
            r#"{"type":"string"}"#,
            r#"{"type":"string","maxLength":5}"#,
            Backward,
            false,
        ),
        row(
            "minimum decreased",
            r#"{"type":"integer","minimum":5}"#,
            r#"{"type":"integer","minimum":0}"#,
            Backward,
            true,
        ),
        row(
            "minimum increased",
            r#"{"type":"integer","minimum":0}"#,
            r#"{"type":"integer","minimum":5}"#,
            Backward,
            false,
        ),
        row(
            "maximum removed",
            r#"{"type":"integer","maximum":5}"#,
            r#"{"type":"integer"}"#,
            Full,
            false,
        ),
        row(
            "pattern added",
            r#"{"type":"string"}"#,
            r#"{"type":"string","pattern":"^a"}"#,
            Backward,
            false,
        ),
        row(
            "nested property type changed",
            r#"{"type":"object","properties":{"o":{"type":"object","properties":{"x":{"type":"string"}}}}}"#,
            r#"{"type":"object","properties":{"o":{"type":"object","properties":{"x":{"type":"integer"}}}}}"#,
            Backward,
            false,
        ),
        row(
            "array items widened",
            r#"{"type":"array","items":{"type":"integer"}}"#,
            r#"{"type":"array","items":{"type":"number"}}"#,
            Backward,
            true,
        ),
        row(
            "array items narrowed",
            r#"{"type":"array","items":{"type":"number"}}"#,
            r#"{"type":"array","items":{"type":"integer"}}"#,
            Backward,
            false,
        ),
        row(
            "oneOf branch added",
            r#"{"oneOf":[{"type":"string"},{"type":"integer"}]}"#,
            r#"{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"null"}]}"#,
            Backward,
            true,
        ),
        row(
            "oneOf branch removed",
            r#"{"oneOf":[{"type":"string"},{"type":"integer"}]}"#,
            r#"{"oneOf":[{"type":"string"}]}"#,
            Backward,
            false,
        ),
        row(
            "local $ref followed",
            r##"{"type":"object","properties":{"a":{"$ref":"#/definitions/s"}},"definitions":{"s":{"type":"string"}}}"##,
            r##"{"type":"object","properties":{"a":{"$ref":"#/definitions/s"}},"definitions":{"s":{"type":"integer"}}}"##,
            Backward,
            false,
        ),
        row(
            "dependency added",
            OPEN_AB,
            r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"dependentRequired":{"a":["b"]}}"#,
            Backward,
            false,
        ),
        row(
            "dependency removed",
            r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"dependencies":{"a":["b"]}}"#,
            OPEN_AB,
            Backward,
            true,
        ),
        row(
            "dependent schema added",
            OPEN_AB,
            r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"dependentSchemas":{"a":{"required":["b"]}}}"#,
            Backward,
            false,
        ),
        row(
            "anything under NONE",
            r#"{"type":"string"}"#,
            r#"{"type":"integer"}"#,
            None,
            true,
        ),
        row(
            "true schema reads anything",
            r#"{"type":"string"}"#,
            "true",
            Backward,
            true,
        ),
    ];
    run_table(SchemaType::Json, &rows);
}

#[test]
fn json_references_are_followed() {
    let address = |t: &str| ResolvedReference {
        name: "address.json".into(),
        schema_type: SchemaType::Json,
        text: format!(r#"{{"type":"object","properties":{{"zip":{{"type":"{t}"}}}}}}"#),
    };
    let text = r#"{"type":"object","properties":{"home":{"$ref":"address.json"}}}"#;
    let old = parse(SchemaType::Json, text, &[address("string")], false).expect("parses");
    let new = parse(SchemaType::Json, text, &[address("integer")], false).expect("parses");
    let messages = check(Backward, &new, &[old]);
    assert!(
        messages
            .iter()
            .any(|m| m.contains("/properties/home/properties/zip")),
        "{messages:?}"
    );
}

#[test]
fn json_canonical_and_normalized_forms() {
    let a = parse(
        SchemaType::Json,
        "{ \"type\": \"string\",\n \"maxLength\": 3 }",
        &[],
        false,
    )
    .expect("parses");
    let b = parse(
        SchemaType::Json,
        r#"{"type":"string","maxLength":3}"#,
        &[],
        false,
    )
    .expect("parses");
    assert_eq!(a, b);
    let c = parse(
        SchemaType::Json,
        r#"{"maxLength":3,"type":"string"}"#,
        &[],
        true,
    )
    .expect("parses");
    let d = parse(
        SchemaType::Json,
        r#"{"type":"string","maxLength":3}"#,
        &[],
        true,
    )
    .expect("parses");
    assert_eq!(c.canonical(), d.canonical());
}

#[test]
fn malformed_json_schemas_are_refused() {
    let deep = format!("{}{{}}{}", "{\"not\":".repeat(200), "}".repeat(200));
    assert_invalid(
        SchemaType::Json,
        &[
            "",
            "{",
            "42",
            r#""string""#,
            r#"{"type":"strin"}"#,
            r#"{"type":[]}"#,
            r#"{"type":7}"#,
            r#"{"properties":[]}"#,
            r#"{"properties":{"a":5}}"#,
            r#"{"required":"a"}"#,
            r#"{"required":[1]}"#,
            r#"{"maxLength":-1}"#,
            r#"{"minItems":1.5}"#,
            r#"{"multipleOf":0}"#,
            r#"{"allOf":[]}"#,
            r#"{"anyOf":{}}"#,
            r#"{"enum":"a"}"#,
            r##"{"$ref":"#/definitions/missing"}"##,
            r#"{"items":[1]}"#,
            r#"{"additionalProperties":"no"}"#,
            r#"{"dependentRequired":{"a":"b"}}"#,
            &deep,
        ],
    );
}
