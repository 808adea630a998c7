//! Malformed and hostile input: the broker answers with an error code or closes that one
//! connection, keeps serving everyone else, and its logs stay intact.

mod broker_support;

use broker_support::*;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;

/// A header (api key, version, correlation id, client id) followed by `body`, framed.
fn frame(api_key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    buf.put_i16(api_key);
    buf.put_i16(version);
    buf.put_i32(99);
    buf.put_i16(4);
    buf.put_slice(b"evil");
    buf.put_slice(body);
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    buf.to_vec()
}

/// The broker still answers a fresh client and still holds what was written before.
fn assert_healthy(broker: &mut TestBroker, topic: &str, expected_values: usize) {
    assert!(
        broker.is_running(),
        "broker process died; log:\n{}",
        broker.log()
    );
    let mut conn = broker.connect();
    let response: ApiVersionsResponse =
        conn.call(ApiKey::ApiVersions, 2, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
    let (error, _, records) = fetch(&mut conn, topic, 0, 0);
    assert_eq!(error, 0);
    assert_eq!(decode_values(&records).len(), expected_values, "log intact");
}

fn started() -> TestBroker {
    let broker = TestBroker::start(&["socket.request.max.bytes=1048576"]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "safe", 1, &[]);
    assert_eq!(produce(&mut conn, "safe", 0, batch("keep", 3, 1_000)).0, 0);
    broker
}

#[test]
fn given_truncated_frame_then_disconnect_should_keep_serving() {
    let mut broker = started();
    let mut conn = broker.connect();
    let full = frame(3, 1, &[0, 0, 0, 0]);
    conn.send_raw(&full[..full.len() - 3]).unwrap();
    drop(conn);
    assert_healthy(&mut broker, "safe", 3);
}

#[test]
fn given_absurd_or_negative_frame_size_should_close_connection() {
    let mut broker = started();
    for size in [i32::MAX, -1, 2, 1_048_577] {
        let mut conn = broker.connect();
        conn.send_raw(&size.to_be_bytes()).unwrap();
        conn.send_raw(&[0u8; 16]).unwrap();
        assert!(
            conn.is_closed_by_broker(),
            "size {size} must close the connection"
        );
    }
    assert_healthy(&mut broker, "safe", 3);
}

#[test]
fn given_unknown_api_key_or_version_should_close_but_api_versions_answers() {
    let mut broker = started();
    let mut conn = broker.connect();
    conn.send_raw(&frame(999, 0, &[])).unwrap();
    assert!(conn.is_closed_by_broker(), "unknown api key");

    let mut conn = broker.connect();
    conn.send_raw(&frame(3, 99, &[])).unwrap();
    assert!(conn.is_closed_by_broker(), "unknown Metadata version");

    // ApiVersions at an unknown version: v0-format answer with UNSUPPORTED_VERSION and the list.
    let mut conn = broker.connect();
    conn.send_raw(&frame(18, 99, &[])).unwrap();
    let mut answer = conn.read_frame().expect("ApiVersions answers");
    let header =
        <ResponseHeader as kafka_protocol::protocol::Decodable>::decode(&mut answer, 0).unwrap();
    assert_eq!(header.correlation_id, 99);
    let body = <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut answer, 0)
        .unwrap();
    assert_eq!(body.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(body
        .api_keys
        .iter()
        .any(|k| k.api_key == 18 && k.max_version >= 3));
    assert_healthy(&mut broker, "safe", 3);
}

#[test]
fn given_garbage_bytes_should_close_connection() {
    let mut broker = started();
    let mut conn = broker.connect();
    let mut garbage = vec![0u8; 64];
    garbage[0..4].copy_from_slice(&60i32.to_be_bytes());
    for (i, byte) in garbage.iter_mut().enumerate().skip(4) {
        *byte = (i as u8).wrapping_mul(151).wrapping_add(7);
    }
    conn.send_raw(&garbage).unwrap();
    assert!(conn.is_closed_by_broker());
    assert_healthy(&mut broker, "safe", 3);
}

#[test]
fn given_hostile_array_counts_should_close_without_allocating() {
    let mut broker = started();
    // Metadata v1: topics array claiming i32::MAX entries in a 4-byte body.
    let mut conn = broker.connect();
    conn.send_raw(&frame(3, 1, &i32::MAX.to_be_bytes()))
        .unwrap();
    assert!(conn.is_closed_by_broker());
    // Produce v7: transactional id null, acks, timeout, topic array of i32::MAX.
    let mut body = BytesMut::new();
    body.put_i16(-1);
    body.put_i16(1);
    body.put_i32(1000);
    body.put_i32(i32::MAX);
    let mut conn = broker.connect();
    conn.send_raw(&frame(0, 7, &body)).unwrap();
    assert!(conn.is_closed_by_broker());
    assert_healthy(&mut broker, "safe", 3);
}

#[test]
fn given_truncated_bodies_of_every_served_api_should_close_and_keep_serving() {
    let mut broker = started();
    // A valid Produce v9 body cut at every length: each must be refused without harm.
    let request = produce_request("safe", 0, batch("cut", 2, 5), 1);
    let mut body = BytesMut::new();
    kafka_protocol::protocol::Encodable::encode(&request, &mut body, 9).unwrap();
    let mut closed = 0;
    for cut in (1..body.len()).step_by(7) {
        let mut conn = broker.connect();
        // Header v2 for Produce v9 (flexible): add an empty tagged-field section.
        let mut with_tags = BytesMut::new();
        with_tags.put_u8(0);
        with_tags.put_slice(&body[..cut]);
        conn.send_raw(&frame(0, 9, &with_tags)).unwrap();
        if conn.is_closed_by_broker() {
            closed += 1;
        }
    }
    assert!(closed > 0);
    assert_healthy(&mut broker, "safe", 3);
}

#[test]
fn given_corrupt_batches_should_answer_corrupt_message_and_append_nothing() {
    let mut broker = started();
    let mut conn = broker.connect();
    let good = batch("x", 2, 1_000);

    let mut bad_crc = BytesMut::from(&good[..]);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0x55;
    assert_eq!(
        produce(&mut conn, "safe", 0, bad_crc.freeze()).0,
        2,
        "CORRUPT_MESSAGE"
    );

    let mut bad_magic = BytesMut::from(&good[..]);
    bad_magic[16] = 1;
    assert_ne!(produce(&mut conn, "safe", 0, bad_magic.freeze()).0, 0);

    let truncated = good.slice(..good.len() - 5);
    assert_eq!(produce(&mut conn, "safe", 0, truncated).0, 2);

    // A good batch followed by a bad one: all or nothing.
    let mut mixed = BytesMut::from(&good[..]);
    mixed.put_slice(&Bytes::from_static(&[0u8; 20]));
    assert_ne!(produce(&mut conn, "safe", 0, mixed.freeze()).0, 0);

    assert_healthy(&mut broker, "safe", 3);
}
