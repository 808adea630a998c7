//! Server-side schema validation (Confluent Server's `confluent.key.schema.validation` /
//! `confluent.value.schema.validation`) against the real binary: records in the wire format
//! with an id registered under `<topic>-key`/`<topic>-value` are appended; raw bytes, an id
//! of another subject or a soft-deleted version's id are refused with INVALID_RECORD naming
//! each refused record (KIP-467); null keys and values pass; topics without the configs
//! take anything; a malformed config value is refused at create time.

mod broker_support;
mod http_support;
mod registry_support;

use broker_support::*;
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use registry_support::*;
use serde_json::json;
use strom_protocol::batch::Compression;
use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordToEncode};

const INVALID_RECORD: i16 = 87;
const INVALID_CONFIG: i16 = 40;
const VALUE_VALIDATION: &str = "confluent.value.schema.validation";
const KEY_VALIDATION: &str = "confluent.key.schema.validation";

/// The wire format: magic byte 0, the id big-endian, then the payload.
fn framed(id: i32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0];
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn batch(records: &[(Option<Vec<u8>>, Option<Vec<u8>>)], compression: Compression) -> Bytes {
    let records: Vec<RecordToEncode> = records
        .iter()
        .map(|(key, value)| RecordToEncode {
            key: key.clone().map(Bytes::from),
            value: value.clone().map(Bytes::from),
            headers: vec![],
            timestamp_ms: 0,
        })
        .collect();
    let options = BatchBuilderOptions {
        compression,
        ..BatchBuilderOptions::default()
    };
    encode_batch(&records, &options).expect("encode")
}

fn produce_to(
    conn: &mut Conn,
    version: i16,
    topic: &str,
    records: Bytes,
) -> PartitionProduceResponse {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let response: ProduceResponse = conn.call(ApiKey::Produce, version, &request);
    response.responses[0].partition_responses[0].clone()
}

fn named(partition: &PartitionProduceResponse) -> Vec<(i32, String)> {
    partition
        .record_errors
        .iter()
        .map(|e| {
            let message = e.batch_index_error_message.as_ref().map(|m| m.to_string());
            (e.batch_index, message.unwrap_or_default())
        })
        .collect()
}

fn log_end(conn: &mut Conn, topic: &str) -> i64 {
    let (code, offset, _) = list_offset(conn, topic, 0, -1);
    assert_eq!(code, 0);
    offset
}

fn user_schema(fields: usize) -> String {
    let fields: Vec<_> = (0..fields)
        .map(|i| json!({"name": format!("f{i}"), "type": "string", "default": ""}))
        .collect();
    avro_record("User", &fields)
}

#[test]
fn given_value_validation_when_producing_should_take_registered_ids_and_name_the_rest() {
    let registry = RegistryBroker::start();
    let mut conn = registry.kafka.connect();
    create_topic(&mut conn, "users", 1, &[(VALUE_VALIDATION, "true")]);
    create_topic(&mut conn, "free", 1, &[]);
    let id = registry.register("users-value", &user_schema(1), None) as i32;
    let other = registry.register("elsewhere-value", &avro_record("Other", &[]), None) as i32;
    assert_ne!(id, other);

    for compression in [Compression::None, Compression::Zstd] {
        let good = batch(
            &[
                (Some(b"raw key".to_vec()), Some(framed(id, b"payload"))),
                (None, None),
            ],
            compression,
        );
        let before = log_end(&mut conn, "users");
        let answer = produce_to(&mut conn, 9, "users", good);
        assert_eq!(
            answer.error_code, 0,
            "{compression:?}: {:?}",
            answer.error_message
        );
        assert_eq!(log_end(&mut conn, "users"), before + 2);

        let mixed = batch(
            &[
                (None, Some(framed(id, b"ok"))),
                (None, Some(b"plain text".to_vec())),
                (None, Some(framed(other, b"x"))),
                (None, Some(vec![0, 0, 0])),
                (None, None),
            ],
            compression,
        );
        let answer = produce_to(&mut conn, 9, "users", mixed.clone());
        assert_eq!(answer.error_code, INVALID_RECORD, "{compression:?}");
        let errors = named(&answer);
        let indexes: Vec<i32> = errors.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, vec![1, 2, 3], "{errors:?}");
        assert!(errors[0].1.contains("magic byte 0"), "{errors:?}");
        assert!(errors[0].1.contains("users-value"), "{errors:?}");
        assert!(
            errors[1].1.contains(&format!("Schema id {other} ")),
            "{errors:?}"
        );
        let summary = answer.error_message.clone().unwrap_or_default();
        assert!(summary.contains("3 record errors"), "{summary}");
        assert_eq!(log_end(&mut conn, "users"), before + 2, "nothing appended");

        // v7 carries neither field, as for Kafka's own per-record refusals.
        let answer = produce_to(&mut conn, 7, "users", mixed.clone());
        assert_eq!(answer.error_code, INVALID_RECORD);
        assert!(answer.record_errors.is_empty());

        // A topic without the config takes the same bytes.
        let answer = produce_to(&mut conn, 9, "free", mixed);
        assert_eq!(answer.error_code, 0);
    }

    // A second version registered through the REST API is taken at once (the produce
    // path catches up with `_schemas`); a soft-deleted version's id is refused.
    let id2 = registry.register("users-value", &user_schema(2), None) as i32;
    let answer = produce_to(
        &mut conn,
        9,
        "users",
        batch(&[(None, Some(framed(id2, b"")))], Compression::None),
    );
    assert_eq!(answer.error_code, 0, "{:?}", answer.error_message);
    registry.ok("DELETE", "/subjects/users-value/versions/2", None);
    let answer = produce_to(
        &mut conn,
        9,
        "users",
        batch(&[(None, Some(framed(id2, b"")))], Compression::None),
    );
    assert_eq!(answer.error_code, INVALID_RECORD, "soft-deleted version");
    let answer = produce_to(
        &mut conn,
        9,
        "users",
        batch(&[(None, Some(framed(id, b"")))], Compression::None),
    );
    assert_eq!(answer.error_code, 0, "version 1 is still live");
}

#[test]
fn given_key_validation_when_producing_should_check_keys_against_the_key_subject() {
    let registry = RegistryBroker::start();
    let mut conn = registry.kafka.connect();
    create_topic(
        &mut conn,
        "keyed",
        1,
        &[(KEY_VALIDATION, "TRUE"), (VALUE_VALIDATION, "false")],
    );
    let key_id = registry.register("keyed-key", &avro_record("Key", &[]), None) as i32;
    let value_only = registry.register("keyed-value", &avro_record("Value", &[]), None) as i32;
    let records = batch(
        &[
            (Some(framed(key_id, b"k")), Some(b"any value".to_vec())),
            (None, Some(b"null key passes".to_vec())),
            (Some(framed(value_only, b"k")), None),
            (Some(b"k".to_vec()), None),
        ],
        Compression::Lz4,
    );
    let answer = produce_to(&mut conn, 9, "keyed", records);
    assert_eq!(answer.error_code, INVALID_RECORD);
    let errors = named(&answer);
    assert_eq!(
        errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(errors
        .iter()
        .all(|(_, m)| m.contains("keyed-key") && m.contains("key")));
    let good = batch(
        &[(Some(framed(key_id, b"k")), Some(b"v".to_vec()))],
        Compression::None,
    );
    assert_eq!(produce_to(&mut conn, 9, "keyed", good).error_code, 0);
}

#[test]
fn given_validation_on_and_nothing_registered_when_producing_should_refuse_and_bad_config_is_refused(
) {
    let registry = RegistryBroker::start();
    let mut conn = registry.kafka.connect();
    create_topic(&mut conn, "empty", 1, &[(VALUE_VALIDATION, "true")]);
    // No `_schemas` yet: no id is registered anywhere.
    let answer = produce_to(
        &mut conn,
        9,
        "empty",
        batch(&[(None, Some(framed(1, b"")))], Compression::None),
    );
    assert_eq!(answer.error_code, INVALID_RECORD);
    assert_eq!(named(&answer).len(), 1);
    // Garbage records are left to the append path's own checks (CORRUPT_MESSAGE), not a panic.
    let mut corrupt = batch(&[(None, Some(framed(1, b"")))], Compression::None).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let answer = produce_to(&mut conn, 9, "empty", Bytes::from(corrupt));
    assert_ne!(answer.error_code, 0);

    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name("typo"))
            .with_num_partitions(1)
            .with_replication_factor(-1)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str(VALUE_VALIDATION))
                .with_value(Some(StrBytes::from_static_str("yes")))])]);
    let response: CreateTopicsResponse = conn.call(ApiKey::CreateTopics, 7, &request);
    assert_eq!(response.topics[0].error_code, INVALID_CONFIG);
    let message = response.topics[0]
        .error_message
        .as_deref()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains(VALUE_VALIDATION), "{message}");
}
