//! Client quotas with the real binary: AlterClientQuotas/DescribeClientQuotas round trip
//! through the metadata log, Kafka's validation errors, and byte-rate quotas that answer
//! with throttle_time_ms > 0 (never asserting exact timing).

mod broker_support;

use broker_support::*;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn entity(parts: &[(&str, Option<&str>)]) -> Vec<EntityData> {
    parts
        .iter()
        .map(|(kind, name)| {
            EntityData::default()
                .with_entity_type(s(kind))
                .with_entity_name(name.map(s))
        })
        .collect()
}

fn alter(
    conn: &mut Conn,
    parts: &[(&str, Option<&str>)],
    ops: &[(&str, f64, bool)],
) -> AlterClientQuotasResponse {
    let request = AlterClientQuotasRequest::default().with_entries(vec![EntryData::default()
        .with_entity(entity(parts))
        .with_ops(
            ops.iter()
                .map(|(key, value, remove)| {
                    OpData::default()
                        .with_key(s(key))
                        .with_value(*value)
                        .with_remove(*remove)
                })
                .collect(),
        )]);
    conn.call(ApiKey::AlterClientQuotas, 1, &request)
}

fn describe(
    conn: &mut Conn,
    components: Vec<ComponentData>,
    strict: bool,
) -> DescribeClientQuotasResponse {
    conn.call(
        ApiKey::DescribeClientQuotas,
        1,
        &DescribeClientQuotasRequest::default()
            .with_components(components)
            .with_strict(strict),
    )
}

#[test]
fn given_quotas_when_altered_and_described_should_round_trip_and_validate() {
    let mut broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    let set = alter(
        &mut conn,
        &[("user", Some("alice")), ("client-id", None)],
        &[
            ("producer_byte_rate", 1024.0, false),
            ("request_percentage", 50.0, false),
        ],
    );
    assert_eq!(set.entries[0].error_code, 0, "{set:?}");
    let set = alter(
        &mut conn,
        &[("client-id", Some("app"))],
        &[("consumer_byte_rate", 2048.0, false)],
    );
    assert_eq!(set.entries[0].error_code, 0);

    let all = describe(&mut conn, vec![], false);
    assert_eq!(all.error_code, 0);
    assert_eq!(all.entries.as_ref().unwrap().len(), 2);
    let alice = describe(
        &mut conn,
        vec![ComponentData::default()
            .with_entity_type(s("user"))
            .with_match_type(0)
            .with_match(Some(s("alice")))],
        false,
    );
    let entries = alice.entries.unwrap();
    assert_eq!(entries.len(), 1);
    let mut values: Vec<(String, f64)> = entries[0]
        .values
        .iter()
        .map(|v| (v.key.to_string(), v.value))
        .collect();
    values.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        values,
        [
            ("producer_byte_rate".to_string(), 1024.0),
            ("request_percentage".to_string(), 50.0)
        ]
    );
    let strict = describe(
        &mut conn,
        vec![ComponentData::default()
            .with_entity_type(s("user"))
            .with_match_type(2)
            .with_match(None)],
        true,
    );
    assert!(
        strict.entries.unwrap().is_empty(),
        "alice's entity also names a client id"
    );

    // Kafka's validation: unknown key, fractional byte rate, ip mixed with user.
    for (parts, key, value) in [
        (vec![("user", Some("bob"))], "bogus_rate", 1.0),
        (vec![("user", Some("bob"))], "producer_byte_rate", 1.5),
        (
            vec![("user", Some("bob")), ("ip", Some("10.0.0.1"))],
            "producer_byte_rate",
            1.0,
        ),
        (vec![("user", Some("bob"))], "producer_byte_rate", -3.0),
    ] {
        let response = alter(&mut conn, &parts, &[(key, value, false)]);
        assert_eq!(
            response.entries[0].error_code, 42,
            "{parts:?} {key} {value}"
        );
        assert!(response.entries[0].error_message.is_some());
    }

    // Removal, and the log keeps the truth across a restart.
    let removed = alter(
        &mut conn,
        &[("client-id", Some("app"))],
        &[("consumer_byte_rate", 0.0, true)],
    );
    assert_eq!(removed.entries[0].error_code, 0);
    drop(conn);
    broker.stop();
    let data = broker.data_dir.clone();
    let port = broker.addr.port();
    let broker = TestBroker::start_in(&data, port, &[]);
    let mut conn = broker.connect();
    let after = describe(&mut conn, vec![], false);
    assert_eq!(after.entries.unwrap().len(), 1);
}

#[test]
fn given_a_producer_byte_rate_when_exceeded_should_answer_throttle_time() {
    // A short quota window keeps throttles (capped at the window) short.
    let broker = TestBroker::start(&["quota.window.num=2"]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "limited", 1, &[]);
    // The test connection's client id is `strom-test`.
    let set = alter(
        &mut conn,
        &[("client-id", Some("strom-test"))],
        &[
            ("producer_byte_rate", 1024.0, false),
            ("consumer_byte_rate", 1024.0, false),
        ],
    );
    assert_eq!(set.entries[0].error_code, 0);
    let value = "x".repeat(20_000);
    let mut throttled = 0;
    for round in 0..4 {
        let response: ProduceResponse = conn.call(
            ApiKey::Produce,
            9,
            &produce_request("limited", 0, batch(&format!("{value}{round}"), 2, 1_000), 1),
        );
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
        throttled = throttled.max(response.throttle_time_ms);
    }
    assert!(
        throttled > 0,
        "a producer over its byte rate is told to back off"
    );

    let response: FetchResponse =
        conn.call(ApiKey::Fetch, 11, &fetch_request("limited", 0, 0, 0, 0));
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    let response: FetchResponse =
        conn.call(ApiKey::Fetch, 11, &fetch_request("limited", 0, 0, 0, 0));
    assert!(
        response.throttle_time_ms > 0,
        "a consumer over its byte rate too"
    );

    // A client without a quota is never throttled.
    let mut other = broker.connect();
    let response: MetadataResponse = other.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert_eq!(response.throttle_time_ms, 0);
}

#[test]
fn given_truncated_quota_requests_should_close_only_that_connection() {
    use kafka_protocol::protocol::Encodable;
    let broker = TestBroker::start(&[]);
    let mut alter_body = bytes::BytesMut::new();
    AlterClientQuotasRequest::default()
        .with_entries(vec![EntryData::default()
            .with_entity(entity(&[("user", Some("u"))]))
            .with_ops(vec![OpData::default()
                .with_key(s("producer_byte_rate"))
                .with_value(1.0)])])
        .encode(&mut alter_body, 0)
        .unwrap();
    let mut describe_body = bytes::BytesMut::new();
    DescribeClientQuotasRequest::default()
        .with_components(vec![ComponentData::default().with_entity_type(s("user"))])
        .encode(&mut describe_body, 0)
        .unwrap();
    for (api_key, body) in [
        (ApiKey::AlterClientQuotas, alter_body),
        (ApiKey::DescribeClientQuotas, describe_body),
    ] {
        let mut conn = broker.connect();
        let truncated = &body[..body.len() - 3];
        let mut frame = Vec::new();
        frame.extend_from_slice(&((10 + truncated.len()) as i32).to_be_bytes());
        frame.extend_from_slice(&(api_key as i16).to_be_bytes());
        frame.extend_from_slice(&0i16.to_be_bytes());
        frame.extend_from_slice(&7i32.to_be_bytes());
        frame.extend_from_slice(&(-1i16).to_be_bytes());
        frame.extend_from_slice(truncated);
        conn.send_raw(&frame).unwrap();
        assert!(conn.is_closed_by_broker(), "{api_key:?}");
    }
    let mut conn = broker.connect();
    assert_eq!(describe(&mut conn, vec![], false).error_code, 0);
}
