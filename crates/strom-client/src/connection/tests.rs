use super::*;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, ResponseHeader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn read_frame(stream: &mut TcpStream) -> Option<Bytes> {
    let size = stream.read_i32().await.ok()?;
    let mut frame = vec![0u8; size as usize];
    stream.read_exact(&mut frame).await.ok()?;
    Some(Bytes::from(frame))
}

fn response_frame<T: Encodable>(
    correlation_id: i32,
    header_version: i16,
    body: &T,
    version: i16,
) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .expect("header");
    body.encode(&mut buf, version).expect("body");
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    buf.to_vec()
}

/// A fake broker: answers ApiVersions v3 with UNSUPPORTED_VERSION (forcing the v0
/// fallback), then answers pipelined Metadata requests in reverse order, naming each
/// response's cluster id after the request's correlation id.
async fn fake_broker(
    listener: TcpListener,
    metadata_requests: usize,
) -> Vec<(i16, i16, i32, String)> {
    let (mut stream, _) = listener.accept().await.expect("accept");
    let mut seen = Vec::new();
    let mut parse = |frame: &Bytes| {
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let correlation_id = i32::from_be_bytes(frame[4..8].try_into().expect("4"));
        let client_id_length = i16::from_be_bytes([frame[8], frame[9]]) as usize;
        let client_id = String::from_utf8(frame[10..10 + client_id_length].to_vec()).expect("utf8");
        seen.push((api_key, version, correlation_id, client_id));
        (api_key, version, correlation_id)
    };
    for _ in 0..2 {
        let frame = read_frame(&mut stream).await.expect("api versions");
        let (api_key, version, correlation_id) = parse(&frame);
        assert_eq!(api_key, ApiKey::ApiVersions as i16);
        let mut response = ApiVersionsResponse::default().with_api_keys(vec![
            ApiVersion::default()
                .with_api_key(18)
                .with_min_version(0)
                .with_max_version(2),
            ApiVersion::default()
                .with_api_key(3)
                .with_min_version(0)
                .with_max_version(9),
        ]);
        if version == 3 {
            response.error_code = 35;
        }
        let body_version = if version == 3 { 0 } else { version };
        stream
            .write_all(&response_frame(correlation_id, 0, &response, body_version))
            .await
            .expect("write");
    }
    let mut requests = Vec::new();
    for _ in 0..metadata_requests {
        let frame = read_frame(&mut stream).await.expect("metadata");
        let (_, version, correlation_id) = parse(&frame);
        requests.push((version, correlation_id));
    }
    for (version, correlation_id) in requests.into_iter().rev() {
        let response = MetadataResponse::default()
            .with_cluster_id(Some(StrBytes::from_string(format!("c{correlation_id}"))));
        let header_version = MetadataResponse::header_version(version);
        stream
            .write_all(&response_frame(
                correlation_id,
                header_version,
                &response,
                version,
            ))
            .await
            .expect("write");
    }
    // Hold the socket until the client is done reading.
    let _ = read_frame(&mut stream).await;
    seen
}

#[tokio::test]
async fn given_pipelined_requests_answered_out_of_order_should_match_by_correlation_id() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let broker = tokio::spawn(fake_broker(listener, 3));
    let connection = Connection::connect(&address, ConnectionConfig::default())
        .await
        .expect("connect");
    assert_eq!(connection.broker_range(ApiKey::Metadata), Some((0, 9)));
    assert_eq!(connection.version_for_key(ApiKey::Metadata).expect("v"), 9);
    assert!(!connection.supports(ApiKey::Produce));
    let request = MetadataRequest::default();
    let (a, b, c) = tokio::join!(
        connection.send(&request),
        connection.send(&request),
        connection.send(&request)
    );
    let mut ids: Vec<String> = [a, b, c]
        .into_iter()
        .map(|r| r.expect("response").cluster_id.expect("id").to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["c2", "c3", "c4"]);
    drop(connection);
    let seen = broker.await.expect("broker");
    assert_eq!(seen[0].0, 18);
    assert_eq!(seen[0].1, 3, "handshake starts at v3");
    assert_eq!(seen[1].1, 2, "then falls back to the broker's max");
    assert!(seen.iter().all(|s| s.3 == "strom"));
    let correlation_ids: Vec<i32> = seen.iter().map(|s| s.2).collect();
    assert_eq!(correlation_ids, vec![0, 1, 2, 3, 4]);
}

#[test]
fn given_request_when_framed_should_prefix_size_and_use_header_v1_or_v2() {
    let request = MetadataRequest::default();
    let frame = encode_request_frame(&request, 4, 7, "strom").expect("frame");
    let size = i32::from_be_bytes(frame[0..4].try_into().expect("4"));
    assert_eq!(size as usize, frame.len() - 4);
    assert_eq!(&frame[4..6], &3i16.to_be_bytes());
    assert_eq!(&frame[6..8], &4i16.to_be_bytes());
    assert_eq!(&frame[8..12], &7i32.to_be_bytes());
    assert_eq!(
        &frame[12..14],
        &5i16.to_be_bytes(),
        "header v1: INT16 client id length"
    );
    assert_eq!(&frame[14..19], b"strom");
    let flexible = encode_request_frame(&request, 9, 7, "strom").expect("frame");
    assert_eq!(
        &flexible[12..14],
        &5i16.to_be_bytes(),
        "header v2 keeps INT16 client id"
    );
    assert_eq!(flexible[19], 0, "header v2 ends with an empty tag section");
}

#[test]
fn given_client_and_broker_ranges_when_negotiated_should_pick_highest_common() {
    assert_eq!(negotiate((3, 12), Some((3, 13))), Some(12));
    assert_eq!(negotiate((3, 12), Some((0, 9))), Some(9));
    assert_eq!(negotiate((3, 12), Some((0, 2))), None);
    assert_eq!(negotiate((3, 12), None), None);
}

#[tokio::test]
async fn given_oversized_response_should_fail_pending_requests_not_buffer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let frame = read_frame(&mut stream).await.expect("frame");
        let correlation_id = i32::from_be_bytes(frame[4..8].try_into().expect("4"));
        let response = ApiVersionsResponse::default().with_api_keys(vec![ApiVersion::default()
            .with_api_key(3)
            .with_min_version(0)
            .with_max_version(12)]);
        stream
            .write_all(&response_frame(correlation_id, 0, &response, 3))
            .await
            .expect("write");
        let _ = read_frame(&mut stream).await;
        stream
            .write_all(&i32::MAX.to_be_bytes())
            .await
            .expect("write");
        let _ = read_frame(&mut stream).await;
    });
    let config = ConnectionConfig {
        response_bytes_max: 1024,
        ..Default::default()
    };
    let connection = Connection::connect(&address, config)
        .await
        .expect("connect");
    let error = connection
        .send(&MetadataRequest::default())
        .await
        .expect_err("must fail");
    assert!(
        error.to_string().contains("limit is 1024") || connection.is_closed(),
        "{error}"
    );
    assert!(connection.is_closed());
}
