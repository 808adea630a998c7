//! Unit tests of the transforms (their chain, predicates, formats and config errors).

use super::*;

fn config(pairs: &[(&str, &str)]) -> Config {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn record(value: &str) -> ConnectRecord {
    ConnectRecord {
        topic: "orders".into(),
        original_topic: "orders".into(),
        partition: Some(2),
        offset: Some(7),
        timestamp_ms: Some(1_764_892_800_123),
        key: None,
        value: Some(Bytes::from(value.to_string())),
        headers: Vec::new(),
    }
}

#[test]
fn timestamps_format_like_simple_date_format() {
    // 2025-12-05T00:00:00.123Z
    assert_eq!(format_timestamp(1_764_892_800_123, "yyyyMMdd"), "20251205");
    assert_eq!(
        format_timestamp(1_764_892_800_123, "yyyy-MM-dd'T'HH:mm:ss.SSS"),
        "2025-12-05T00:00:00.123"
    );
    assert_eq!(format_timestamp(0, "yy/M/d"), "70/1/1");
}

#[test]
fn java_group_references_become_braced() {
    assert_eq!(java_replacement("$1_x"), "${1}_x");
    assert_eq!(java_replacement("a\\$b"), "a$$b");
}

#[test]
fn a_chain_inserts_renames_masks_and_routes() {
    let chain = Transforms::from_config(&config(&[
        ("transforms", "ins,rep,mask,route"),
        (
            "transforms.ins.type",
            "org.apache.kafka.connect.transforms.InsertField$Value",
        ),
        ("transforms.ins.topic.field", "src!"),
        ("transforms.ins.offset.field", "at"),
        (
            "transforms.rep.type",
            "org.apache.kafka.connect.transforms.ReplaceField$Value",
        ),
        ("transforms.rep.exclude", "secret"),
        ("transforms.rep.renames", "id:order_id"),
        (
            "transforms.mask.type",
            "org.apache.kafka.connect.transforms.MaskField$Value",
        ),
        ("transforms.mask.fields", "card"),
        (
            "transforms.route.type",
            "org.apache.kafka.connect.transforms.RegexRouter",
        ),
        ("transforms.route.regex", "(.*)s"),
        ("transforms.route.replacement", "$1-archive"),
    ]))
    .unwrap();
    let out = chain
        .apply(record(r#"{"id":1,"secret":"x","card":"4111"}"#))
        .unwrap()
        .unwrap();
    assert_eq!(out.topic, "order-archive");
    let value: Value = serde_json::from_slice(out.value.as_ref().unwrap()).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"order_id": 1, "card": "", "src": "orders", "at": 7})
    );
}

#[test]
fn filter_drops_only_what_its_predicate_matches() {
    let chain = Transforms::from_config(&config(&[
        ("transforms", "drop"),
        (
            "transforms.drop.type",
            "org.apache.kafka.connect.transforms.Filter",
        ),
        ("transforms.drop.predicate", "tomb"),
        ("transforms.drop.negate", "false"),
        ("predicates", "tomb"),
        (
            "predicates.tomb.type",
            "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
        ),
    ]))
    .unwrap();
    let mut tombstone = record("x");
    tombstone.value = None;
    assert!(chain.apply(tombstone).unwrap().is_none());
    assert!(chain.apply(record("x")).unwrap().is_some());
}

#[test]
fn bad_configs_name_the_key() {
    let error = Transforms::from_config(&config(&[
        ("transforms", "a"),
        ("transforms.a.type", "com.example.Nope"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(error.contains("transforms.a.type") && error.contains("could not be found"));
    let error = Transforms::from_config(&config(&[("transforms", "a")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("\"transforms.a.type\""), "{error}");
    let field_on_text = Transforms::from_config(&config(&[
        ("transforms", "a"),
        (
            "transforms.a.type",
            "org.apache.kafka.connect.transforms.ExtractField$Value",
        ),
        ("transforms.a.field", "id"),
    ]))
    .unwrap()
    .apply(record("plain text"));
    assert!(field_on_text
        .unwrap_err()
        .to_string()
        .contains("java.lang.String"));
}
