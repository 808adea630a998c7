//! Every group API at every version it is served at, through the real router on an
//! in-process broker: success and error answers must encode at the request's version and
//! decode with the client-side codec. Malformed bodies close the connection.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strom_protocol::versions::supported_range;

use crate::handlers::{ConnectionContext, Outcome};
use crate::listeners::{ListenerInfo, SecurityProtocol};
use crate::state::Broker;
use crate::{BrokerConfig, RawConfig};

struct TestBroker {
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

async fn start() -> TestBroker {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = RawConfig::new();
    raw.set("log.dirs", dir.path().to_str().unwrap()).unwrap();
    raw.set("listeners", "PLAINTEXT://127.0.0.1:0").unwrap();
    raw.set("group.initial.rebalance.delay.ms", "0").unwrap();
    raw.set("offsets.topic.num.partitions", "3").unwrap();
    raw.set("log.index.size.max.bytes", "4096").unwrap();
    raw.set("http.listener", "").unwrap();
    let config = BrokerConfig::from_raw(raw).unwrap();
    let bound = crate::bind(config).await.unwrap();
    let broker = bound.broker.clone();
    let images = broker.clone();
    broker.groups().spawn_timers(Arc::new(move |topic: &str| {
        images.image().topic(topic).is_some()
    }));
    // Keep the listener (and its data-dir lock) alive for the test.
    std::mem::forget(bound);
    TestBroker { broker, _dir: dir }
}

/// The router as a plaintext connection from 127.0.0.1 sees it.
async fn dispatch(broker: &Arc<Broker>, frame: Bytes) -> Outcome {
    let listener = Arc::new(ListenerInfo {
        name: "PLAINTEXT".into(),
        security: SecurityProtocol::Plaintext,
        advertised_host: broker.advertised_host().clone(),
        advertised_port: broker.advertised_port(),
        tls: None,
    });
    let mut context = ConnectionContext::new(listener, "127.0.0.1:50000".parse().unwrap());
    crate::handlers::dispatch(broker, frame, &mut context).await
}

fn frame<T: Encodable>(api_key: ApiKey, version: i16, body: &T) -> Bytes {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(42)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")))
        .encode(&mut buf, api_key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("{api_key:?} v{version} request: {e}"));
    buf.freeze()
}

async fn call<Req: Encodable, Resp: Decodable>(
    broker: &Arc<Broker>,
    api_key: ApiKey,
    version: i16,
    request: &Req,
) -> Resp {
    let outcome = dispatch(broker, frame(api_key, version, request)).await;
    let Outcome::Respond(response) = outcome else {
        panic!("{api_key:?} v{version}: no response");
    };
    let mut bytes = response.to_bytes().unwrap();
    bytes.advance(4);
    let header =
        ResponseHeader::decode(&mut bytes, api_key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 42);
    let body = Resp::decode(&mut bytes, version)
        .unwrap_or_else(|e| panic!("{api_key:?} v{version} response: {e}"));
    assert!(
        !bytes.has_remaining(),
        "{api_key:?} v{version}: trailing bytes"
    );
    body
}

fn versions(api_key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (min, max) = supported_range(api_key).expect("served");
    min..=max
}

fn group(id: &str) -> GroupId {
    GroupId(StrBytes::from_string(id.to_string()))
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

async fn create_topic(broker: &Arc<Broker>, name: &str, partitions: i32) {
    let results = crate::admin::create_topics(
        broker,
        vec![strom_controller::CreateTopic {
            name: name.into(),
            num_partitions: Some(partitions),
            ..Default::default()
        }],
        false,
    )
    .await
    .unwrap();
    assert!(results[0].error.is_none());
}

fn join_request(
    version: i16,
    group_id: &str,
    member_id: &str,
    session_ms: i32,
) -> JoinGroupRequest {
    let mut request = JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_session_timeout_ms(session_ms)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))
        .with_metadata(Bytes::from_static(b"\x00\x00\x00\x00\x00\x01\x00\x01t"))]);
    if version >= 1 {
        request = request.with_rebalance_timeout_ms(10_000);
    }
    request
}

#[tokio::test]
async fn given_every_classic_version_when_a_member_joins_syncs_commits_and_leaves_should_encode() {
    let test = start().await;
    let broker = &test.broker;
    create_topic(broker, "t", 2).await;
    for find_version in versions(ApiKey::FindCoordinator) {
        let request = if find_version >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s("a"), s("b")])
        } else {
            FindCoordinatorRequest::default().with_key(s("a"))
        };
        let response: FindCoordinatorResponse =
            call(broker, ApiKey::FindCoordinator, find_version, &request).await;
        if find_version >= 4 {
            assert_eq!(response.coordinators.len(), 2);
            assert!(response
                .coordinators
                .iter()
                .all(|c| c.error_code == 0 && c.port > 0));
        } else {
            assert_eq!(response.error_code, 0);
            assert_eq!(response.node_id.0, 1);
        }
        if find_version >= 1 {
            let bad = if find_version >= 4 {
                FindCoordinatorRequest::default()
                    .with_key_type(9)
                    .with_coordinator_keys(vec![s("a")])
            } else {
                FindCoordinatorRequest::default()
                    .with_key(s("a"))
                    .with_key_type(9)
            };
            let response: FindCoordinatorResponse =
                call(broker, ApiKey::FindCoordinator, find_version, &bad).await;
            let code = if find_version >= 4 {
                response.coordinators[0].error_code
            } else {
                response.error_code
            };
            assert_eq!(code, strom_protocol::ErrorCode::InvalidRequest.code());
        }
    }

    for round in 0..=9i16 {
        let v_join = round;
        let v_sync = round.min(5);
        let v_heartbeat = round.min(4);
        let v_leave = round.min(5);
        let v_commit = (round + 2).min(9);
        let v_fetch = (round + 1).min(9);
        let id = format!("wire-{round}");

        // Invalid session timeout: an error answer at this version.
        let bad: JoinGroupResponse = call(
            broker,
            ApiKey::JoinGroup,
            v_join,
            &join_request(v_join, &id, "", 1),
        )
        .await;
        assert_eq!(
            bad.error_code,
            strom_protocol::ErrorCode::InvalidSessionTimeout.code()
        );

        let mut join: JoinGroupResponse = call(
            broker,
            ApiKey::JoinGroup,
            v_join,
            &join_request(v_join, &id, "", 10_000),
        )
        .await;
        if v_join >= 4 {
            assert_eq!(
                join.error_code,
                strom_protocol::ErrorCode::MemberIdRequired.code()
            );
            let member_id = join.member_id.to_string();
            join = call(
                broker,
                ApiKey::JoinGroup,
                v_join,
                &join_request(v_join, &id, &member_id, 10_000),
            )
            .await;
        }
        assert_eq!(join.error_code, 0, "JoinGroup v{v_join}");
        assert_eq!(join.generation_id, 1);
        assert_eq!(join.leader, join.member_id);
        assert_eq!(join.members.len(), 1);
        let member_id = join.member_id.clone();

        let mut sync = SyncGroupRequest::default()
            .with_group_id(group(&id))
            .with_generation_id(1)
            .with_member_id(member_id.clone())
            .with_assignments(vec![
                sync_group_request::SyncGroupRequestAssignment::default()
                    .with_member_id(member_id.clone())
                    .with_assignment(Bytes::from_static(b"assignment")),
            ]);
        if v_sync >= 5 {
            sync = sync
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")));
        }
        let synced: SyncGroupResponse = call(broker, ApiKey::SyncGroup, v_sync, &sync).await;
        assert_eq!(synced.error_code, 0, "SyncGroup v{v_sync}");
        assert_eq!(synced.assignment, Bytes::from_static(b"assignment"));

        let heartbeat = HeartbeatRequest::default()
            .with_group_id(group(&id))
            .with_generation_id(1)
            .with_member_id(member_id.clone());
        let beat: HeartbeatResponse =
            call(broker, ApiKey::Heartbeat, v_heartbeat, &heartbeat).await;
        assert_eq!(beat.error_code, 0);
        let stale: HeartbeatResponse = call(
            broker,
            ApiKey::Heartbeat,
            v_heartbeat,
            &heartbeat.clone().with_generation_id(0),
        )
        .await;
        assert_eq!(
            stale.error_code,
            strom_protocol::ErrorCode::IllegalGeneration.code()
        );

        let commit = OffsetCommitRequest::default()
            .with_group_id(group(&id))
            .with_generation_id_or_member_epoch(1)
            .with_member_id(member_id.clone())
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(1)
                            .with_committed_offset(17)
                            .with_committed_metadata(Some(s("meta"))),
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(9)
                            .with_committed_offset(1),
                    ]),
            ]);
        let committed: OffsetCommitResponse =
            call(broker, ApiKey::OffsetCommit, v_commit, &commit).await;
        let codes: Vec<i16> = committed.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(
            codes,
            vec![0, strom_protocol::ErrorCode::UnknownTopicOrPartition.code()],
            "OffsetCommit v{v_commit}"
        );

        let fetch = if v_fetch >= 8 {
            OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(group(&id))
                    .with_topics(None),
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(group("unknown"))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopics::default()
                            .with_name(TopicName(s("t")))
                            .with_partition_indexes(vec![0]),
                    ])),
            ])
        } else {
            OffsetFetchRequest::default()
                .with_group_id(group(&id))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(TopicName(s("t")))
                        .with_partition_indexes(vec![0, 1]),
                ]))
        };
        let fetched: OffsetFetchResponse = call(broker, ApiKey::OffsetFetch, v_fetch, &fetch).await;
        if v_fetch >= 8 {
            assert_eq!(fetched.groups.len(), 2);
            let partitions = &fetched.groups[0].topics[0].partitions;
            assert_eq!(partitions.len(), 1);
            assert_eq!(partitions[0].committed_offset, 17);
            assert_eq!(partitions[0].metadata.as_deref(), Some("meta"));
            assert_eq!(
                fetched.groups[1].topics[0].partitions[0].committed_offset,
                -1
            );
        } else {
            let partitions = &fetched.topics[0].partitions;
            assert_eq!(partitions[0].committed_offset, -1);
            assert_eq!(partitions[1].committed_offset, 17);
        }

        let leave = if v_leave >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(group(&id))
                .with_members(vec![
                    leave_group_request::MemberIdentity::default()
                        .with_member_id(member_id.clone()),
                    leave_group_request::MemberIdentity::default().with_member_id(s("ghost")),
                ])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(group(&id))
                .with_member_id(member_id.clone())
        };
        let left: LeaveGroupResponse = call(broker, ApiKey::LeaveGroup, v_leave, &leave).await;
        if v_leave >= 3 {
            assert_eq!(left.members[0].error_code, 0);
            assert_eq!(
                left.members[1].error_code,
                strom_protocol::ErrorCode::UnknownMemberId.code()
            );
        } else {
            assert_eq!(left.error_code, 0);
        }
    }

    for version in versions(ApiKey::ListGroups) {
        let mut request = ListGroupsRequest::default();
        if version >= 4 {
            request = request.with_states_filter(vec![s("Empty")]);
        }
        let listed: ListGroupsResponse = call(broker, ApiKey::ListGroups, version, &request).await;
        assert_eq!(listed.error_code, 0);
        assert!(listed
            .groups
            .iter()
            .any(|g| g.group_id.0.as_str() == "wire-3"));
    }
    for version in versions(ApiKey::DescribeGroups) {
        let request = DescribeGroupsRequest::default().with_groups(vec![
            group("wire-1"),
            group("nope"),
            group(""),
        ]);
        let described: DescribeGroupsResponse =
            call(broker, ApiKey::DescribeGroups, version, &request).await;
        assert_eq!(described.groups[0].group_state.as_str(), "Empty");
        assert_eq!(described.groups[0].error_code, 0);
        let not_found = if version >= 6 {
            strom_protocol::ErrorCode::GroupIdNotFound.code()
        } else {
            0
        };
        assert_eq!(described.groups[1].error_code, not_found);
        assert_eq!(
            described.groups[2].error_code,
            strom_protocol::ErrorCode::InvalidGroupId.code()
        );
    }
    let delete = OffsetDeleteRequest::default()
        .with_group_id(group("wire-2"))
        .with_topics(vec![
            offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![
                    offset_delete_request::OffsetDeleteRequestPartition::default()
                        .with_partition_index(1),
                ]),
        ]);
    let deleted: OffsetDeleteResponse = call(broker, ApiKey::OffsetDelete, 0, &delete).await;
    assert_eq!(deleted.error_code, 0);
    assert_eq!(deleted.topics[0].partitions[0].error_code, 0);
    assert!(broker.groups().read_group("wire-2", |state| state
        .committed("wire-2", "t", 1)
        .is_none()));
    for version in versions(ApiKey::DeleteGroups) {
        let id = format!("wire-{}", 5 + version);
        let request =
            DeleteGroupsRequest::default().with_groups_names(vec![group(&id), group("nope")]);
        let deleted: DeleteGroupsResponse =
            call(broker, ApiKey::DeleteGroups, version, &request).await;
        assert_eq!(deleted.results[0].error_code, 0);
        assert_eq!(
            deleted.results[1].error_code,
            strom_protocol::ErrorCode::GroupIdNotFound.code()
        );
    }
}

#[tokio::test]
async fn given_every_consumer_protocol_version_should_encode_heartbeat_and_describe() {
    let test = start().await;
    let broker = &test.broker;
    create_topic(broker, "kip848", 4).await;
    for version in versions(ApiKey::ConsumerGroupHeartbeat) {
        let id = format!("cg-{version}");
        let mut request =
            consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest::default()
                .with_group_id(group(&id))
                .with_member_epoch(0)
                .with_rebalance_timeout_ms(30_000)
                .with_subscribed_topic_names(Some(vec![TopicName(s("kip848"))]))
                .with_topic_partitions(Some(vec![]));
        if version >= 1 {
            request = request.with_member_id(s(&uuid::Uuid::new_v4().to_string()));
        }
        let joined: ConsumerGroupHeartbeatResponse =
            call(broker, ApiKey::ConsumerGroupHeartbeat, version, &request).await;
        assert_eq!(joined.error_code, 0, "{:?}", joined.error_message);
        assert!(joined.member_epoch > 0);
        let assigned: usize = joined
            .assignment
            .as_ref()
            .unwrap()
            .topic_partitions
            .iter()
            .map(|t| t.partitions.len())
            .sum();
        assert_eq!(assigned, 4);
        let fenced: ConsumerGroupHeartbeatResponse = call(
            broker,
            ApiKey::ConsumerGroupHeartbeat,
            version,
            &request
                .clone()
                .with_member_id(joined.member_id.clone().unwrap())
                .with_member_epoch(joined.member_epoch + 10),
        )
        .await;
        assert_eq!(
            fenced.error_code,
            strom_protocol::ErrorCode::FencedMemberEpoch.code()
        );
        assert!(fenced.error_message.is_some());
    }
    for version in versions(ApiKey::ConsumerGroupDescribe) {
        let request = ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![group("cg-0"), group("nope")])
            .with_include_authorized_operations(true);
        let described: ConsumerGroupDescribeResponse =
            call(broker, ApiKey::ConsumerGroupDescribe, version, &request).await;
        let found = &described.groups[0];
        assert_eq!(found.error_code, 0);
        assert_eq!(found.group_state.as_str(), "Stable");
        assert_eq!(found.members.len(), 1);
        assert_eq!(
            found.members[0].assignment.topic_partitions[0]
                .topic_name
                .0
                .as_str(),
            "kip848"
        );
        assert_eq!(
            described.groups[1].error_code,
            strom_protocol::ErrorCode::GroupIdNotFound.code()
        );
    }
}

#[tokio::test]
async fn given_truncated_group_requests_should_close_the_connection() {
    let test = start().await;
    let broker = &test.broker;
    let requests: Vec<(ApiKey, i16, Bytes)> = vec![
        (
            ApiKey::FindCoordinator,
            3,
            frame(
                ApiKey::FindCoordinator,
                3,
                &FindCoordinatorRequest::default().with_key(s("group")),
            ),
        ),
        (
            ApiKey::JoinGroup,
            5,
            frame(ApiKey::JoinGroup, 5, &join_request(5, "g", "", 10_000)),
        ),
        (
            ApiKey::SyncGroup,
            3,
            frame(
                ApiKey::SyncGroup,
                3,
                &SyncGroupRequest::default()
                    .with_group_id(group("g"))
                    .with_member_id(s("m")),
            ),
        ),
        (
            ApiKey::Heartbeat,
            4,
            frame(
                ApiKey::Heartbeat,
                4,
                &HeartbeatRequest::default()
                    .with_group_id(group("g"))
                    .with_member_id(s("m")),
            ),
        ),
        (
            ApiKey::LeaveGroup,
            5,
            frame(
                ApiKey::LeaveGroup,
                5,
                &LeaveGroupRequest::default()
                    .with_group_id(group("g"))
                    .with_members(vec![
                        leave_group_request::MemberIdentity::default().with_member_id(s("m"))
                    ]),
            ),
        ),
        (
            ApiKey::OffsetCommit,
            9,
            frame(
                ApiKey::OffsetCommit,
                9,
                &OffsetCommitRequest::default()
                    .with_group_id(group("g"))
                    .with_topics(vec![
                        offset_commit_request::OffsetCommitRequestTopic::default()
                            .with_name(TopicName(s("t"))),
                    ]),
            ),
        ),
        (
            ApiKey::OffsetFetch,
            7,
            frame(
                ApiKey::OffsetFetch,
                7,
                &OffsetFetchRequest::default()
                    .with_group_id(group("g"))
                    .with_topics(None),
            ),
        ),
        (
            ApiKey::ListGroups,
            5,
            frame(
                ApiKey::ListGroups,
                5,
                &ListGroupsRequest::default().with_states_filter(vec![s("Stable")]),
            ),
        ),
        (
            ApiKey::DescribeGroups,
            5,
            frame(
                ApiKey::DescribeGroups,
                5,
                &DescribeGroupsRequest::default().with_groups(vec![group("g")]),
            ),
        ),
        (
            ApiKey::DeleteGroups,
            2,
            frame(
                ApiKey::DeleteGroups,
                2,
                &DeleteGroupsRequest::default().with_groups_names(vec![group("g")]),
            ),
        ),
        (
            ApiKey::OffsetDelete,
            0,
            frame(
                ApiKey::OffsetDelete,
                0,
                &OffsetDeleteRequest::default()
                    .with_group_id(group("g"))
                    .with_topics(vec![
                        offset_delete_request::OffsetDeleteRequestTopic::default()
                            .with_name(TopicName(s("t"))),
                    ]),
            ),
        ),
        (
            ApiKey::ConsumerGroupHeartbeat,
            1,
            frame(
                ApiKey::ConsumerGroupHeartbeat,
                1,
                &ConsumerGroupHeartbeatRequest::default()
                    .with_group_id(group("g"))
                    .with_subscribed_topic_names(Some(vec![TopicName(s("t"))])),
            ),
        ),
        (
            ApiKey::ConsumerGroupDescribe,
            1,
            frame(
                ApiKey::ConsumerGroupDescribe,
                1,
                &ConsumerGroupDescribeRequest::default().with_group_ids(vec![group("g")]),
            ),
        ),
    ];
    for (api_key, version, full) in requests {
        let header_len = {
            let mut probe = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(api_key as i16)
                .with_request_api_version(version)
                .with_correlation_id(42)
                .with_client_id(Some(StrBytes::from_static_str("wire-test")))
                .encode(&mut probe, api_key.request_header_version(version))
                .unwrap();
            probe.len()
        };
        // Cut the body at every length short of complete (and keep a hostile count).
        for cut in header_len..full.len() {
            let outcome = dispatch(broker, full.slice(..cut)).await;
            assert!(
                matches!(outcome, Outcome::Close(_)),
                "{api_key:?} v{version} truncated to {cut} of {} bytes was answered",
                full.len()
            );
        }
        let mut hostile = BytesMut::from(&full[..header_len]);
        hostile.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff]);
        assert!(matches!(
            dispatch(broker, hostile.freeze()).await,
            Outcome::Close(_)
        ));
        // The complete request is still answered.
        assert!(matches!(dispatch(broker, full).await, Outcome::Respond(_)));
    }
}

#[tokio::test]
async fn given_offsets_topic_created_elsewhere_with_one_partition_should_still_commit() {
    let test = start().await;
    let broker = &test.broker;
    create_topic(broker, crate::group::OFFSETS_TOPIC, 1).await;
    create_topic(broker, "t", 1).await;
    let commit = OffsetCommitRequest::default()
        .with_group_id(group("any-group"))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(5),
                ]),
        ]);
    let committed: OffsetCommitResponse = call(broker, ApiKey::OffsetCommit, 9, &commit).await;
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
}

#[tokio::test]
async fn given_no_group_ever_used_when_listing_should_not_create_the_offsets_topic() {
    let test = start().await;
    let broker = &test.broker;
    let listed: ListGroupsResponse =
        call(broker, ApiKey::ListGroups, 4, &ListGroupsRequest::default()).await;
    assert_eq!(listed.error_code, 0);
    assert!(listed.groups.is_empty());
    let fetched: OffsetFetchResponse = call(
        broker,
        ApiKey::OffsetFetch,
        7,
        &OffsetFetchRequest::default()
            .with_group_id(group("g"))
            .with_topics(None),
    )
    .await;
    assert_eq!(fetched.error_code, 0);
    assert!(broker.image().topic(crate::group::OFFSETS_TOPIC).is_none());
}
