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

// What this checks is that the connection closes and the broker keeps serving; it does not
// measure the broker's memory.
#[test]
fn given_hostile_array_counts_should_close_the_connection_and_keep_serving() {
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

/// The default (empty) request of `key` encoded at `version`, without the header; None if
/// kafka-protocol cannot encode that version.
fn default_body(key: ApiKey, version: i16) -> Option<BytesMut> {
    fn encoded<T: kafka_protocol::protocol::Encodable + Default>(version: i16) -> Option<BytesMut> {
        let mut body = BytesMut::new();
        T::default().encode(&mut body, version).ok()?;
        Some(body)
    }
    macro_rules! by_key {
        ($($key:ident => $request:ty,)*) => {
            match key {
                $(ApiKey::$key => encoded::<$request>(version),)*
            }
        };
    }
    by_key! {
        Produce => ProduceRequest,
        Fetch => FetchRequest,
        ListOffsets => ListOffsetsRequest,
        Metadata => MetadataRequest,
        OffsetCommit => OffsetCommitRequest,
        OffsetFetch => OffsetFetchRequest,
        FindCoordinator => FindCoordinatorRequest,
        JoinGroup => JoinGroupRequest,
        Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest,
        SyncGroup => SyncGroupRequest,
        DescribeGroups => DescribeGroupsRequest,
        ListGroups => ListGroupsRequest,
        SaslHandshake => SaslHandshakeRequest,
        ApiVersions => ApiVersionsRequest,
        CreateTopics => CreateTopicsRequest,
        DeleteTopics => DeleteTopicsRequest,
        DeleteRecords => DeleteRecordsRequest,
        InitProducerId => InitProducerIdRequest,
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
        AddPartitionsToTxn => AddPartitionsToTxnRequest,
        AddOffsetsToTxn => AddOffsetsToTxnRequest,
        EndTxn => EndTxnRequest,
        WriteTxnMarkers => WriteTxnMarkersRequest,
        TxnOffsetCommit => TxnOffsetCommitRequest,
        DescribeAcls => DescribeAclsRequest,
        CreateAcls => CreateAclsRequest,
        DeleteAcls => DeleteAclsRequest,
        DescribeConfigs => DescribeConfigsRequest,
        AlterConfigs => AlterConfigsRequest,
        AlterReplicaLogDirs => AlterReplicaLogDirsRequest,
        DescribeLogDirs => DescribeLogDirsRequest,
        SaslAuthenticate => SaslAuthenticateRequest,
        CreatePartitions => CreatePartitionsRequest,
        CreateDelegationToken => CreateDelegationTokenRequest,
        RenewDelegationToken => RenewDelegationTokenRequest,
        ExpireDelegationToken => ExpireDelegationTokenRequest,
        DescribeDelegationToken => DescribeDelegationTokenRequest,
        DeleteGroups => DeleteGroupsRequest,
        ElectLeaders => ElectLeadersRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        AlterPartitionReassignments => AlterPartitionReassignmentsRequest,
        ListPartitionReassignments => ListPartitionReassignmentsRequest,
        OffsetDelete => OffsetDeleteRequest,
        DescribeClientQuotas => DescribeClientQuotasRequest,
        AlterClientQuotas => AlterClientQuotasRequest,
        DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
        AlterUserScramCredentials => AlterUserScramCredentialsRequest,
        Vote => VoteRequest,
        BeginQuorumEpoch => BeginQuorumEpochRequest,
        EndQuorumEpoch => EndQuorumEpochRequest,
        DescribeQuorum => DescribeQuorumRequest,
        AlterPartition => AlterPartitionRequest,
        UpdateFeatures => UpdateFeaturesRequest,
        Envelope => EnvelopeRequest,
        FetchSnapshot => FetchSnapshotRequest,
        DescribeCluster => DescribeClusterRequest,
        DescribeProducers => DescribeProducersRequest,
        BrokerRegistration => BrokerRegistrationRequest,
        BrokerHeartbeat => BrokerHeartbeatRequest,
        UnregisterBroker => UnregisterBrokerRequest,
        DescribeTransactions => DescribeTransactionsRequest,
        ListTransactions => ListTransactionsRequest,
        AllocateProducerIds => AllocateProducerIdsRequest,
        ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest,
        ConsumerGroupDescribe => ConsumerGroupDescribeRequest,
        ControllerRegistration => ControllerRegistrationRequest,
        GetTelemetrySubscriptions => GetTelemetrySubscriptionsRequest,
        PushTelemetry => PushTelemetryRequest,
        AssignReplicasToDirs => AssignReplicasToDirsRequest,
        ListConfigResources => ListConfigResourcesRequest,
        DescribeTopicPartitions => DescribeTopicPartitionsRequest,
        ShareGroupHeartbeat => ShareGroupHeartbeatRequest,
        ShareGroupDescribe => ShareGroupDescribeRequest,
        ShareFetch => ShareFetchRequest,
        ShareAcknowledge => ShareAcknowledgeRequest,
        AddRaftVoter => AddRaftVoterRequest,
        RemoveRaftVoter => RemoveRaftVoterRequest,
        UpdateRaftVoter => UpdateRaftVoterRequest,
        InitializeShareGroupState => InitializeShareGroupStateRequest,
        ReadShareGroupState => ReadShareGroupStateRequest,
        WriteShareGroupState => WriteShareGroupStateRequest,
        DeleteShareGroupState => DeleteShareGroupStateRequest,
        ReadShareGroupStateSummary => ReadShareGroupStateSummaryRequest,
        DescribeShareGroupOffsets => DescribeShareGroupOffsetsRequest,
        AlterShareGroupOffsets => AlterShareGroupOffsetsRequest,
        DeleteShareGroupOffsets => DeleteShareGroupOffsetsRequest,
    }
}

/// What the broker did with one request frame.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// A response frame with our correlation id.
    Answered,
    /// EOF or reset.
    Closed,
}

/// Sends `body` cut to `cut` bytes as a request of `key` v`version` on a fresh connection;
/// panics unless the broker answers or closes within 10 s.
fn send_cut(broker: &TestBroker, key: ApiKey, version: i16, body: &[u8], cut: usize) -> Outcome {
    use std::io::{ErrorKind, Read};
    let mut conn = broker.connect();
    let mut payload = BytesMut::new();
    if key.request_header_version(version) >= 2 {
        payload.put_u8(0); // the flexible header's empty tagged-field section
    }
    payload.put_slice(&body[..cut]);
    conn.send_raw(&frame(key as i16, version, &payload))
        .unwrap();
    conn.tcp
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut size = [0u8; 4];
    match conn.tcp.read_exact(&mut size) {
        Ok(()) => {
            let mut answer = vec![0u8; i32::from_be_bytes(size) as usize];
            conn.tcp.read_exact(&mut answer).unwrap_or_else(|error| {
                panic!("{key:?} v{version} cut at {cut}: answer broken off: {error}")
            });
            assert_eq!(
                &answer[..4],
                &99i32.to_be_bytes(),
                "{key:?} v{version} cut at {cut}: answer's correlation id"
            );
            Outcome::Answered
        }
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("{key:?} v{version} cut at {cut} of {} bytes: neither answered nor closed within 10 s", body.len())
        }
        Err(_) => Outcome::Closed,
    }
}

#[test]
fn given_truncated_bodies_of_every_served_api_should_answer_or_close_and_keep_serving() {
    let mut broker = started();
    let advertised: ApiVersionsResponse =
        broker
            .connect()
            .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let (mut versions, mut answered, mut closed) = (0, 0, 0);
    let mut unencodable = Vec::new();
    for api in &advertised.api_keys {
        let key = ApiKey::try_from(api.api_key)
            .unwrap_or_else(|_| panic!("advertised api key {} is unknown", api.api_key));
        for version in api.min_version..=api.max_version {
            let Some(body) = default_body(key, version) else {
                unencodable.push(format!("{key:?} v{version}"));
                continue;
            };
            versions += 1;
            // Cut at the start, one byte in, half way and one byte short (an empty body has
            // nothing to cut).
            let len = body.len();
            let cuts: std::collections::BTreeSet<usize> = [0, 1, len / 2, len.saturating_sub(1)]
                .into_iter()
                .filter(|&c| c < len)
                .collect();
            for cut in cuts {
                match send_cut(&broker, key, version, &body, cut) {
                    Outcome::Answered => answered += 1,
                    Outcome::Closed => closed += 1,
                }
            }
            assert!(
                broker.connect().answers(),
                "after truncated {key:?} v{version} requests a fresh connection is not served; log:\n{}",
                broker.log()
            );
        }
    }
    eprintln!(
        "{versions} (api key, version) pairs of {} advertised keys: {answered} cuts answered, {closed} closed; not encodable by kafka-protocol: {unencodable:?}",
        advertised.api_keys.len()
    );
    assert!(
        advertised.api_keys.len() > 20,
        "ApiVersions advertises {} keys",
        advertised.api_keys.len()
    );
    assert!(
        unencodable.len() * 10 < versions,
        "too many advertised versions untested: {unencodable:?}"
    );

    // A Produce v9 with records, cut every 7 bytes: each cut is answered or closed.
    let request = produce_request("safe", 0, batch("cut", 2, 5), 1);
    let mut body = BytesMut::new();
    kafka_protocol::protocol::Encodable::encode(&request, &mut body, 9).unwrap();
    for cut in (1..body.len()).step_by(7) {
        send_cut(&broker, ApiKey::Produce, 9, &body, cut);
    }
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
