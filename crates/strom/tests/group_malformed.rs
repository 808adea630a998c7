//! Malformed group requests on a real socket: the broker closes that connection only and
//! keeps serving others.

mod broker_support;
mod group_support;

use broker_support::TestBroker;
use group_support::s;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Encodable;

fn truncated<T: Encodable>(api_key: ApiKey, version: i16, body: &T, cut_bytes: usize) -> Vec<u8> {
    broker_support::truncated_frame(api_key, version, body, cut_bytes)
}

#[test]
fn given_truncated_group_requests_should_close_only_that_connection() {
    let broker = TestBroker::start(&["offsets.topic.num.partitions=3"]);
    let mut healthy = broker.connect();
    let frames: Vec<(&str, Vec<u8>)> = vec![
        (
            "JoinGroup",
            truncated(
                ApiKey::JoinGroup,
                5,
                &JoinGroupRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_session_timeout_ms(10_000)
                    .with_protocol_type(s("consumer"))
                    .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
                    )
                    .with_name(s("range"))
                    .with_metadata(bytes::Bytes::from_static(b"meta"))]),
                3,
            ),
        ),
        (
            "SyncGroup",
            truncated(
                ApiKey::SyncGroup,
                5,
                &SyncGroupRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_member_id(s("m")),
                2,
            ),
        ),
        (
            "Heartbeat",
            truncated(
                ApiKey::Heartbeat,
                4,
                &HeartbeatRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_member_id(s("m")),
                3,
            ),
        ),
        (
            "LeaveGroup",
            truncated(
                ApiKey::LeaveGroup,
                3,
                &LeaveGroupRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_members(vec![
                        leave_group_request::MemberIdentity::default().with_member_id(s("member"))
                    ]),
                4,
            ),
        ),
        (
            "OffsetCommit",
            truncated(
                ApiKey::OffsetCommit,
                8,
                &OffsetCommitRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_topics(vec![
                        offset_commit_request::OffsetCommitRequestTopic::default()
                            .with_name(TopicName(s("t"))),
                    ]),
                2,
            ),
        ),
        (
            "OffsetFetch",
            truncated(
                ApiKey::OffsetFetch,
                8,
                &OffsetFetchRequest::default().with_groups(vec![
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(s("g"))),
                ]),
                3,
            ),
        ),
        (
            "FindCoordinator",
            truncated(
                ApiKey::FindCoordinator,
                2,
                &FindCoordinatorRequest::default().with_key(s("group")),
                3,
            ),
        ),
        (
            "DescribeGroups",
            truncated(
                ApiKey::DescribeGroups,
                5,
                &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))]),
                2,
            ),
        ),
        (
            "ListGroups",
            truncated(
                ApiKey::ListGroups,
                4,
                &ListGroupsRequest::default().with_states_filter(vec![s("Stable")]),
                3,
            ),
        ),
        (
            "DeleteGroups",
            truncated(
                ApiKey::DeleteGroups,
                1,
                &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("group"))]),
                3,
            ),
        ),
        (
            "OffsetDelete",
            truncated(
                ApiKey::OffsetDelete,
                0,
                &OffsetDeleteRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_topics(vec![
                        offset_delete_request::OffsetDeleteRequestTopic::default()
                            .with_name(TopicName(s("t"))),
                    ]),
                2,
            ),
        ),
        (
            "ConsumerGroupHeartbeat",
            truncated(
                ApiKey::ConsumerGroupHeartbeat,
                1,
                &ConsumerGroupHeartbeatRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_subscribed_topic_names(Some(vec![TopicName(s("t"))])),
                3,
            ),
        ),
        (
            "ConsumerGroupDescribe",
            truncated(
                ApiKey::ConsumerGroupDescribe,
                0,
                &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("g"))]),
                2,
            ),
        ),
    ];
    for (name, frame) in frames {
        let mut bad = broker.connect();
        bad.send_raw(&frame).unwrap();
        assert!(
            bad.is_closed_by_broker(),
            "{name}: truncated request was not refused"
        );
        // The other connection is still served.
        let found: FindCoordinatorResponse = healthy.call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default().with_key(s("still-here")),
        );
        assert_eq!(found.error_code, 0, "{name}");
    }
    let listed: ListGroupsResponse =
        healthy.call(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
    assert_eq!(listed.error_code, 0);
}
