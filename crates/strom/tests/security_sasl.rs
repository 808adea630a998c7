//! SASL listeners at the protocol level: nothing but the handshake before authentication,
//! PLAIN against a SCRAM credential, wrong passwords and unknown mechanisms, malformed
//! SASL frames.

mod broker_support;

use std::net::SocketAddr;

use broker_support::*;
use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const PASSWORD: &[u8] = b"correct horse";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A broker with PLAINTEXT and SASL_PLAINTEXT listeners and user alice (SCRAM-SHA-256).
fn start() -> (TestBroker, SocketAddr) {
    let temp = tempfile::tempdir().unwrap();
    let plain = free_port();
    let sasl = free_port();
    let listeners =
        format!("listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}");
    let broker = TestBroker::start_in(&temp.path().join("data"), plain, &[&listeners]);
    std::mem::forget(temp);
    let salt = b"0123456789abcdef";
    let mut salted = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(4096).unwrap(),
        salt,
        PASSWORD,
        &mut salted,
    );
    let mut conn = broker.connect();
    let response: AlterUserScramCredentialsResponse = conn.call(
        ApiKey::AlterUserScramCredentials,
        0,
        &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            ScramCredentialUpsertion::default()
                .with_name(StrBytes::from_static_str("alice"))
                .with_mechanism(1)
                .with_iterations(4096)
                .with_salt(Bytes::copy_from_slice(salt))
                .with_salted_password(Bytes::copy_from_slice(&salted)),
        ]),
    );
    assert_eq!(
        response.results[0].error_code, 0,
        "{:?}",
        response.results[0].error_message
    );
    (broker, format!("127.0.0.1:{sasl}").parse().unwrap())
}

fn handshake(conn: &mut Conn, mechanism: &'static str) -> SaslHandshakeResponse {
    conn.call(
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
    )
}

fn plain(conn: &mut Conn, password: &[u8]) -> SaslAuthenticateResponse {
    let mut message = b"\0alice\0".to_vec();
    message.extend_from_slice(password);
    conn.call(
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message)),
    )
}

#[test]
fn given_sasl_listener_should_refuse_requests_before_authentication() {
    let (broker, sasl) = start();
    let mut conn = Conn::plain(sasl);
    conn.send(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert!(
        conn.is_closed_by_broker(),
        "Metadata before SASL closes the connection"
    );
    // ApiVersions is allowed (clients need it to pick SASL versions).
    let mut conn = Conn::plain(sasl);
    let versions: ApiVersionsResponse =
        conn.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert!(versions.api_keys.iter().any(|k| k.api_key == 36));
    drop(broker);
}

#[test]
fn given_plain_with_right_password_should_authenticate_and_serve() {
    let (_broker, sasl) = start();
    let mut conn = Conn::plain(sasl);
    let response = handshake(&mut conn, "PLAIN");
    assert_eq!(response.error_code, 0);
    assert!(response
        .mechanisms
        .iter()
        .any(|m| m.as_str() == "SCRAM-SHA-512"));
    let response = plain(&mut conn, PASSWORD);
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    let metadata: MetadataResponse = conn.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert_eq!(
        metadata.brokers[0].port,
        sasl.port() as i32,
        "the SASL listener advertises itself"
    );
}

#[test]
fn given_wrong_password_or_mechanism_should_fail_with_kafka_codes() {
    let (_broker, sasl) = start();
    let mut conn = Conn::plain(sasl);
    assert_eq!(handshake(&mut conn, "PLAIN").error_code, 0);
    let response = plain(&mut conn, b"wrong");
    assert_eq!(response.error_code, 58, "SASL_AUTHENTICATION_FAILED");
    assert!(
        conn.is_closed_by_broker(),
        "a failed authentication closes the connection"
    );

    let mut conn = Conn::plain(sasl);
    let response = handshake(&mut conn, "GSSAPI");
    assert_eq!(response.error_code, 33, "UNSUPPORTED_SASL_MECHANISM");
    assert!(response.mechanisms.iter().any(|m| m.as_str() == "PLAIN"));

    let mut conn = Conn::plain(sasl);
    let response: SaslAuthenticateResponse = conn.call(
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0alice\0x")),
    );
    assert_eq!(
        response.error_code, 34,
        "ILLEGAL_SASL_STATE without a handshake"
    );
}

#[test]
fn given_truncated_sasl_frames_should_close_and_keep_serving() {
    let (broker, sasl) = start();
    for body in [&[0u8][..], &[0, 0, 0, 9, 1], &[0x7f, 0xff, 0xff, 0xff]] {
        let mut conn = Conn::plain(sasl);
        let mut frame = Vec::new();
        let header_and_body = [
            &36i16.to_be_bytes()[..],
            &1i16.to_be_bytes(),
            &5i32.to_be_bytes(),
            &(-1i16).to_be_bytes(),
            body,
        ]
        .concat();
        frame.extend_from_slice(&(header_and_body.len() as i32).to_be_bytes());
        frame.extend_from_slice(&header_and_body);
        conn.send_raw(&frame).unwrap();
        assert!(conn.is_closed_by_broker());
    }
    let mut conn = Conn::plain(sasl);
    assert_eq!(handshake(&mut conn, "PLAIN").error_code, 0);
    assert_eq!(plain(&mut conn, PASSWORD).error_code, 0);
    drop(broker);
}
