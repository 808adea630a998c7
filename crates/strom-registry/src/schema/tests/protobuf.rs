//! Protobuf rule table, parsing (text and descriptor) and malformed cases.

use super::{assert_invalid, parsed, run_table, Row};
use crate::schema::{
    check, parse, CompatibilityLevel, CompatibilityLevel::*, ResolvedReference, SchemaType,
};

/// google/protobuf/struct.proto as its Python package serializes it (maps, a oneof, an enum).
const STRUCT_DESCRIPTOR: &str = "Chxnb29nbGUvcHJvdG9idWYvc3RydWN0LnByb3RvEg9nb29nbGUucHJvdG9idWYimAEKBlN0cnVjdBI7CgZmaWVsZHMYASADKAsyIy5nb29nbGUucHJvdG9idWYuU3RydWN0LkZpZWxkc0VudHJ5UgZmaWVsZHMaUQoLRmllbGRzRW50cnkSEAoDa2V5GAEgASgJUgNrZXkSLAoFdmFsdWUYAiABKAsyFi5nb29nbGUucHJvdG9idWYuVmFsdWVSBXZhbHVlOgI4ASKyAgoFVmFsdWUSOwoKbnVsbF92YWx1ZRgBIAEoDjIaLmdvb2dsZS5wcm90b2J1Zi5OdWxsVmFsdWVIAFIJbnVsbFZhbHVlEiMKDG51bWJlcl92YWx1ZRgCIAEoAUgAUgtudW1iZXJWYWx1ZRIjCgxzdHJpbmdfdmFsdWUYAyABKAlIAFILc3RyaW5nVmFsdWUSHwoKYm9vbF92YWx1ZRgEIAEoCEgAUglib29sVmFsdWUSPAoMc3RydWN0X3ZhbHVlGAUgASgLMhcuZ29vZ2xlLnByb3RvYnVmLlN0cnVjdEgAUgtzdHJ1Y3RWYWx1ZRI7CgpsaXN0X3ZhbHVlGAYgASgLMhouZ29vZ2xlLnByb3RvYnVmLkxpc3RWYWx1ZUgAUglsaXN0VmFsdWVCBgoEa2luZCI7CglMaXN0VmFsdWUSLgoGdmFsdWVzGAEgAygLMhYuZ29vZ2xlLnByb3RvYnVmLlZhbHVlUgZ2YWx1ZXMqGwoJTnVsbFZhbHVlEg4KCk5VTExfVkFMVUUQAEJ/ChNjb20uZ29vZ2xlLnByb3RvYnVmQgtTdHJ1Y3RQcm90b1ABWi9nb29nbGUuZ29sYW5nLm9yZy9wcm90b2J1Zi90eXBlcy9rbm93bi9zdHJ1Y3RwYvgBAaICA0dQQqoCHkdvb2dsZS5Qcm90b2J1Zi5XZWxsS25vd25UeXBlc2IGcHJvdG8z";

/// A proto3 file built with descriptor_pb2: package shop, message User { int64 id = 1;
/// optional string nick = 2; google.protobuf.Timestamp created = 3; map<string, int32>
/// tags = 4; }, importing google/protobuf/timestamp.proto.
pub(super) const USER_DESCRIPTOR: &str = "Cgp1c2VyLnByb3RvEgRzaG9wGh9nb29nbGUvcHJvdG9idWYvdGltZXN0YW1wLnByb3RvIqwBCgRVc2VyEgoKAmlkGAEgASgDEhEKBG5pY2sYAiABKAlIAIgBARIrCgdjcmVhdGVkGAMgASgLMhouZ29vZ2xlLnByb3RvYnVmLlRpbWVzdGFtcBIiCgR0YWdzGAQgAygLMhQuc2hvcC5Vc2VyLlRhZ3NFbnRyeRorCglUYWdzRW50cnkSCwoDa2V5GAEgASgJEg0KBXZhbHVlGAIgASgFOgI4AUIHCgVfbmlja2IGcHJvdG8z";

fn p3(body: &str) -> String {
    format!("syntax = \"proto3\";\npackage shop;\n{body}")
}

fn row(
    name: &'static str,
    old: String,
    new: String,
    level: CompatibilityLevel,
    compatible: bool,
) -> Row {
    Row {
        name,
        old: Box::leak(old.into_boxed_str()),
        new: Box::leak(new.into_boxed_str()),
        level,
        compatible,
    }
}

#[test]
fn protobuf_rule_table() {
    let user = |fields: &str| p3(&format!("message User {{\n{fields}\n}}\n"));
    let rows = vec![
        row(
            "field added",
            user("string name = 1;"),
            user("string name = 1; int32 age = 2;"),
            Full,
            true,
        ),
        row(
            "field removed",
            user("string name = 1; int32 age = 2;"),
            user("string name = 1;"),
            Backward,
            true,
        ),
        row(
            "field removed, full",
            user("string name = 1; int32 age = 2;"),
            user("string name = 1;"),
            Full,
            true,
        ),
        row(
            "field renamed",
            user("string name = 1;"),
            user("string full_name = 1;"),
            Full,
            true,
        ),
        row(
            "number reused with another type",
            user("string name = 1; int32 age = 2;"),
            user("string name = 1; string nick = 2;"),
            Backward,
            false,
        ),
        row(
            "int32 to int64",
            user("int32 n = 1;"),
            user("int64 n = 1;"),
            Full,
            true,
        ),
        row(
            "uint32 to bool",
            user("uint32 n = 1;"),
            user("bool n = 1;"),
            Full,
            true,
        ),
        row(
            "uint64 to int32",
            user("uint64 n = 1;"),
            user("int32 n = 1;"),
            Backward,
            true,
        ),
        row(
            "int32 to sint32",
            user("int32 n = 1;"),
            user("sint32 n = 1;"),
            Backward,
            false,
        ),
        row(
            "sint32 to sint64",
            user("sint32 n = 1;"),
            user("sint64 n = 1;"),
            Backward,
            true,
        ),
        row(
            "fixed32 to sfixed32",
            user("fixed32 n = 1;"),
            user("sfixed32 n = 1;"),
            Backward,
            true,
        ),
        row(
            "int32 to double",
            user("int32 n = 1;"),
            user("double n = 1;"),
            Backward,
            false,
        ),
        row(
            "string to bytes",
            user("string s = 1;"),
            user("bytes s = 1;"),
            Full,
            true,
        ),
        row(
            "string to message",
            user("string s = 1;"),
            p3("message User { Name s = 1; }\nmessage Name { string v = 1; }"),
            Backward,
            false,
        ),
        row(
            "message type changed",
            p3("message User { A a = 1; }\nmessage A {}\nmessage B {}"),
            p3("message User { B a = 1; }\nmessage A {}\nmessage B {}"),
            Backward,
            false,
        ),
        row(
            "first message renamed",
            user("string name = 1;"),
            p3("message Person { string name = 1; }"),
            Backward,
            false,
        ),
        row(
            "message added",
            user("string name = 1;"),
            p3("message User { string name = 1; }\nmessage Extra { int32 x = 1; }"),
            Full,
            true,
        ),
        row(
            "nested message field changed",
            p3("message User { message Addr { string street = 1; } Addr home = 1; }"),
            p3("message User { message Addr { int32 street = 1; } Addr home = 1; }"),
            Backward,
            false,
        ),
        row(
            "package changed",
            user("string name = 1;"),
            "syntax = \"proto3\";\npackage other;\nmessage User { string name = 1; }".to_string(),
            Full,
            true,
        ),
        row(
            "oneof added for one existing field",
            user("string a = 1; int32 b = 2;"),
            user("oneof choice { string a = 1; } int32 b = 2;"),
            Backward,
            true,
        ),
        row(
            "two fields moved into a new oneof",
            user("string a = 1; int32 b = 2;"),
            user("oneof choice { string a = 1; int32 b = 2; }"),
            Backward,
            false,
        ),
        row(
            "field moved into an existing oneof",
            user("oneof choice { string a = 1; } int32 b = 2;"),
            user("oneof choice { string a = 1; int32 b = 2; }"),
            Backward,
            false,
        ),
        row(
            "oneof member added",
            user("oneof choice { string a = 1; }"),
            user("oneof choice { string a = 1; int32 b = 2; }"),
            Backward,
            true,
        ),
        row(
            "oneof member added, full",
            user("oneof choice { string a = 1; }"),
            user("oneof choice { string a = 1; int32 b = 2; }"),
            Full,
            false,
        ),
        row(
            "second message removed",
            p3("message User { string name = 1; }\nmessage Extra { int32 x = 1; }"),
            user("string name = 1;"),
            Backward,
            true,
        ),
        row(
            "oneof member removed",
            user("oneof choice { string a = 1; int32 b = 2; }"),
            user("oneof choice { string a = 1; }"),
            Backward,
            false,
        ),
        row(
            "enum value added",
            p3("message User { Color c = 1; }\nenum Color { RED = 0; }"),
            p3("message User { Color c = 1; }\nenum Color { RED = 0; GREEN = 1; }"),
            Full,
            true,
        ),
        row(
            "enum value removed",
            p3("message User { Color c = 1; }\nenum Color { RED = 0; GREEN = 1; }"),
            p3("message User { Color c = 1; }\nenum Color { RED = 0; }"),
            Full,
            true,
        ),
        row(
            "enum to int32",
            p3("message User { Color c = 1; }\nenum Color { RED = 0; }"),
            user("int32 c = 1;"),
            Backward,
            false,
        ),
        row(
            "map value changed",
            user("map<string, int32> m = 1;"),
            user("map<string, string> m = 1;"),
            Backward,
            false,
        ),
        row(
            "map value widened",
            user("map<string, int32> m = 1;"),
            user("map<string, int64> m = 1;"),
            Backward,
            true,
        ),
        row(
            "repeated int32 made singular",
            user("repeated int32 n = 1;"),
            user("int32 n = 1;"),
            Backward,
            false,
        ),
        row(
            "repeated string made singular",
            user("repeated string s = 1;"),
            user("string s = 1;"),
            Backward,
            true,
        ),
        row(
            "proto2 required field added",
            "syntax = \"proto2\";\nmessage User { optional string a = 1; }".to_string(),
            "syntax = \"proto2\";\nmessage User { optional string a = 1; required int32 b = 2; }"
                .to_string(),
            Backward,
            false,
        ),
        row(
            "proto2 required field removed",
            "syntax = \"proto2\";\nmessage User { optional string a = 1; required int32 b = 2; }"
                .to_string(),
            "syntax = \"proto2\";\nmessage User { optional string a = 1; }".to_string(),
            Backward,
            false,
        ),
        row(
            "proto2 optional field added",
            "syntax = \"proto2\";\nmessage User { optional string a = 1; }".to_string(),
            "syntax = \"proto2\";\nmessage User { optional string a = 1; optional int32 b = 2; }"
                .to_string(),
            Full,
            true,
        ),
        row(
            "anything under NONE",
            user("string name = 1;"),
            p3("message Other { bytes x = 9; }"),
            None,
            true,
        ),
    ];
    run_table(SchemaType::Protobuf, &rows);
}

#[test]
fn protobuf_text_parses_the_language() {
    let text = r#"
        // A file with most of what a schema uses.
        syntax = "proto3";
        package shop.v1;
        import "google/protobuf/timestamp.proto";
        option java_package = "com.example.shop";
        option (my.ext) = { a: 1 b: "x" };

        /* The order. */
        message Order {
          option deprecated = true;
          string id = 1 [json_name = "orderId", deprecated = true];
          repeated Line lines = 2;
          map<string, int64> totals = 3;
          oneof payment {
            string card = 4;
            Voucher voucher = 5;
          }
          optional int32 priority = 6;
          google.protobuf.Timestamp created = 7;
          .shop.v1.Order.Status status = 8;
          reserved 9, 11 to 13, 100 to max;
          reserved "legacy";
          message Line { string sku = 1; uint32 quantity = 2; }
          enum Status { option allow_alias = true; NEW = 0; PAID = 1; DONE = 2 [deprecated = true]; }
        }
        message Voucher { bytes code = 1; }
        enum Channel { CHANNEL_UNSPECIFIED = 0; WEB = 1; }
        service Orders {
          rpc Place(Order) returns (Order);
          rpc Watch(stream Order) returns (stream Order) { option deprecated = true; }
        }
    "#;
    let schema = parsed(SchemaType::Protobuf, text);
    let canonical = schema.canonical();
    for expected in [
        "syntax = \"proto3\";",
        "package shop.v1;",
        "import \"google/protobuf/timestamp.proto\";",
        "  map<string, int64> totals = 3;",
        "  oneof payment {\n    string card = 4;\n    Voucher voucher = 5;\n  }",
        "  optional int32 priority = 6;",
        "  reserved 9, 11 to 13, 100 to max;",
        "    NEW = 0;",
        "  rpc Watch(stream Order) returns (stream Order);",
    ] {
        assert!(
            canonical.contains(expected),
            "missing {expected:?} in\n{canonical}"
        );
    }
    assert!(
        !canonical.contains("option ") && !canonical.contains("deprecated"),
        "options are dropped:\n{canonical}"
    );
    // The canonical text parses back to itself.
    let again = parsed(SchemaType::Protobuf, canonical);
    assert_eq!(again.canonical(), canonical);

    let proto2 = "syntax = \"proto2\";\nmessage M { optional group Result = 1 { required string url = 2; } optional int32 n = 3 [default = 7]; extensions 100 to 200; }\nextend M { optional int32 x = 100; }";
    let schema = parsed(SchemaType::Protobuf, proto2);
    assert!(
        schema.canonical().contains("optional Result result = 1;"),
        "{}",
        schema.canonical()
    );
}

#[test]
fn protobuf_descriptors_parse_like_text() {
    let structs = parsed(SchemaType::Protobuf, STRUCT_DESCRIPTOR);
    let canonical = structs.canonical();
    for expected in [
        "package google.protobuf;",
        "map<string, .google.protobuf.Value> fields = 1;",
        "oneof kind {",
        ".google.protobuf.NullValue null_value = 1;",
        "repeated .google.protobuf.Value values = 1;",
        "enum NullValue {\n  NULL_VALUE = 0;\n}",
    ] {
        assert!(
            canonical.contains(expected),
            "missing {expected:?} in\n{canonical}"
        );
    }
    let user = parsed(SchemaType::Protobuf, USER_DESCRIPTOR);
    let canonical = user.canonical();
    for expected in [
        "  int64 id = 1;",
        "  optional string nick = 2;",
        "  .google.protobuf.Timestamp created = 3;",
        "  map<string, int32> tags = 4;",
    ] {
        assert!(
            canonical.contains(expected),
            "missing {expected:?} in\n{canonical}"
        );
    }
    assert!(
        !canonical.contains("oneof"),
        "the synthetic oneof is not printed:\n{canonical}"
    );
    assert!(
        !canonical.contains("TagsEntry"),
        "the map entry is not printed:\n{canonical}"
    );

    // The same schema as text is compatible with the descriptor both ways.
    let text = "syntax = \"proto3\";\npackage shop;\nimport \"google/protobuf/timestamp.proto\";\nmessage User { int64 id = 1; optional string nick = 2; google.protobuf.Timestamp created = 3; map<string, int32> tags = 4; }";
    let as_text = parsed(SchemaType::Protobuf, text);
    assert!(check(Full, &as_text, &[user.clone()]).is_empty());
    let changed = parsed(SchemaType::Protobuf, &text.replace("int64 id", "string id"));
    assert!(!check(Backward, &changed, &[user]).is_empty());
}

#[test]
fn protobuf_imports_resolve_through_references() {
    let common = ResolvedReference {
        name: "common/money.proto".into(),
        schema_type: SchemaType::Protobuf,
        text: "syntax = \"proto3\";\npackage common;\nmessage Money { int64 cents = 1; string currency = 2; }".into(),
    };
    let text = "syntax = \"proto3\";\npackage shop;\nimport \"common/money.proto\";\nmessage Order { common.Money total = 1; }";
    let schema =
        parse(SchemaType::Protobuf, text, &[common], false).expect("parses with its reference");
    assert_eq!(schema.references(), ["common/money.proto".to_string()]);
    let missing = parse(SchemaType::Protobuf, text, &[], false);
    assert!(
        missing.is_err(),
        "an import without a reference is refused: {missing:?}"
    );
}

#[test]
fn protobuf_normalize_orders_fields_and_qualifies_types() {
    let a = parse(
        SchemaType::Protobuf,
        &p3("message U { string b = 2; A a = 1; }\nmessage A {}"),
        &[],
        true,
    )
    .expect("parses");
    let b = parse(
        SchemaType::Protobuf,
        &p3("message U {\n A a = 1;\n string b = 2;\n}\nmessage A {}"),
        &[],
        true,
    )
    .expect("parses");
    assert_eq!(a.canonical(), b.canonical());
    assert!(
        a.canonical().contains(".shop.A a = 1;"),
        "{}",
        a.canonical()
    );
}

#[test]
fn malformed_protobuf_is_refused() {
    let deep = format!(
        "syntax = \"proto3\";\n{}{}",
        "message M {".repeat(100),
        "}".repeat(100)
    );
    assert_invalid(
        SchemaType::Protobuf,
        &[
            "",
            "syntax = \"proto3\"",
            "syntax = \"proto4\";",
            "syntax = \"proto3\";\nmessage {}",
            "syntax = \"proto3\";\nmessage M { string a = 1 }",
            "syntax = \"proto3\";\nmessage M { string a = 1; int32 b = 1; }",
            "syntax = \"proto3\";\nmessage M { string a = 1; int32 a = 2; }",
            "syntax = \"proto3\";\nmessage M { string a = 0; }",
            "syntax = \"proto3\";\nmessage M { string a = 19000; }",
            "syntax = \"proto3\";\nmessage M { string a = 536870912; }",
            "syntax = \"proto3\";\nmessage M { required string a = 1; }",
            "syntax = \"proto3\";\nmessage M { Unknown a = 1; }",
            "syntax = \"proto3\";\nmessage M { map<double, string> m = 1; }",
            "syntax = \"proto3\";\nmessage M { map<string> m = 1; }",
            "syntax = \"proto3\";\nenum E { A = 1; }",
            "syntax = \"proto3\";\nenum E { }",
            "syntax = \"proto3\";\nenum E { A = 0; A = 1; }",
            "syntax = \"proto3\";\nmessage M { string a = 1; reserved 1; }",
            "syntax = \"proto3\";\nmessage M {}\nenum M { Z = 0; }",
            "syntax = \"proto3\";\nmessage M { message N {} message N {} }",
            "syntax = \"proto2\";\nmessage M { string a = 1; }",
            "syntax = \"proto3\";\nmessage M { string a = 1; ",
            "syntax = \"proto3\";\n/* never closed",
            "syntax = \"proto3\";\nmessage M { string a = \"x\"; }",
            "syntax = \"proto3\";\nimport \"missing.proto\";\nmessage M {}",
            "}",
            "not a proto",
            "AAAA",
            "CgRiYWQ",
            &deep,
        ],
    );
}

#[test]
fn protobuf_serialized_descriptor_round_trips() {
    for text in [
        USER_DESCRIPTOR.to_string(),
        STRUCT_DESCRIPTOR.to_string(),
        "syntax = \"proto3\";\npackage shop.v1;\nimport \"google/protobuf/timestamp.proto\";\nmessage Order {\n  string id = 1;\n  repeated Line lines = 2;\n  map<string, Line> by_sku = 3;\n  oneof payment { string card = 4; Voucher voucher = 5; }\n  optional int32 priority = 6;\n  google.protobuf.Timestamp created = 7;\n  Status status = 8;\n  reserved 9, 11 to 13, 100 to max;\n  reserved \"legacy\";\n  message Line { string sku = 1; sint64 quantity = 2; }\n  enum Status { NEW = 0; NEGATIVE = -1; }\n}\nmessage Voucher { bytes code = 1; }\nenum Channel { CHANNEL_UNSPECIFIED = 0; WEB = 1; }\nservice Orders { rpc Place(Order) returns (stream Voucher); }\n".to_string(),
        "syntax = \"proto2\";\nmessage M { required string a = 1; optional int32 b = 2 [default = 3]; repeated bytes c = 3; }".to_string(),
    ] {
        let schema = parsed(SchemaType::Protobuf, &text);
        let serialized = schema.serialized_descriptor().expect("a Protobuf schema has a descriptor");
        let again = parsed(SchemaType::Protobuf, &serialized);
        let normalized = |t: &str| {
            parse(SchemaType::Protobuf, t, &[], true)
                .expect("parses")
                .canonical()
                .to_string()
        };
        assert_eq!(normalized(&text), normalized(&serialized), "{text}");
        assert!(check(Full, &again, &[schema]).is_empty());
    }
    assert!(parsed(SchemaType::Avro, r#""int""#)
        .serialized_descriptor()
        .is_none());
}

/// A Confluent message index counts nested types in protoc's order, map entries where their
/// field is declared: the descriptor and the canonical text keep that order.
#[test]
fn protobuf_nested_types_keep_declaration_order_with_map_entries() {
    let text = "syntax = \"proto3\";\nmessage M {\n  map<string, int32> a = 1;\n  message B {}\n  message C {}\n  map<string, int32> d = 2;\n  message E {}\n}\n";
    let schema = parsed(SchemaType::Protobuf, text);
    for canonical in [
        schema.canonical().to_string(),
        parsed(
            SchemaType::Protobuf,
            &schema.serialized_descriptor().unwrap_or_default(),
        )
        .canonical()
        .to_string(),
    ] {
        let at = |needle: &str| canonical.find(needle).unwrap_or(usize::MAX);
        assert!(at("a = 1") < at("message B"), "{canonical}");
        assert!(at("message C") < at("d = 2"), "{canonical}");
        assert!(at("d = 2") < at("message E"), "{canonical}");
    }
}
