//! Schemas of consumer groups: coordinator lookup, membership, offsets.
//!
//! Generated from kafka-protocol 0.18's `src/messages/*_request.rs` decoders by
//! `generate.py` (in this folder), then reviewed; see the module docs of `bounds`.

use crate::bounds::schema::*;
use kafka_protocol::messages::ApiKey;

/// FindCoordinator (`find_coordinator_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod find_coordinator {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::FindCoordinator,
        versions: Versions::new(0, 6),
        flexible_from: Some(3),
        body: &FIND_COORDINATOR_REQUEST,
    };

    /// `FindCoordinatorRequest`.
    const FIND_COORDINATOR_REQUEST: Struct = Struct {
        name: "FindCoordinatorRequest",
        fields: &[
            field("key", STRING).until(3),
            field("key_type", INT8).since(1),
            field("coordinator_keys", Kind::Array(&STRING)).since(4),
        ],
        tagged: &[],
    };
}

/// JoinGroup (`join_group_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod join_group {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::JoinGroup,
        versions: Versions::new(0, 9),
        flexible_from: Some(6),
        body: &JOIN_GROUP_REQUEST,
    };

    /// `JoinGroupRequest`.
    const JOIN_GROUP_REQUEST: Struct = Struct {
        name: "JoinGroupRequest",
        fields: &[
            field("group_id", STRING),
            field("session_timeout_ms", INT32),
            field("rebalance_timeout_ms", INT32).since(1),
            field("member_id", STRING),
            field("group_instance_id", STRING).since(5),
            field("protocol_type", STRING),
            field(
                "protocols",
                Kind::Array(&Kind::Struct(&JOIN_GROUP_REQUEST_PROTOCOL)),
            ),
            field("reason", STRING).since(8),
        ],
        tagged: &[],
    };

    /// `JoinGroupRequestProtocol`.
    const JOIN_GROUP_REQUEST_PROTOCOL: Struct = Struct {
        name: "JoinGroupRequestProtocol",
        fields: &[field("name", STRING), field("metadata", BYTES)],
        tagged: &[],
    };
}

/// SyncGroup (`sync_group_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod sync_group {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::SyncGroup,
        versions: Versions::new(0, 5),
        flexible_from: Some(4),
        body: &SYNC_GROUP_REQUEST,
    };

    /// `SyncGroupRequest`.
    const SYNC_GROUP_REQUEST: Struct = Struct {
        name: "SyncGroupRequest",
        fields: &[
            field("group_id", STRING),
            field("generation_id", INT32),
            field("member_id", STRING),
            field("group_instance_id", STRING).since(3),
            field("protocol_type", STRING).since(5),
            field("protocol_name", STRING).since(5),
            field(
                "assignments",
                Kind::Array(&Kind::Struct(&SYNC_GROUP_REQUEST_ASSIGNMENT)),
            ),
        ],
        tagged: &[],
    };

    /// `SyncGroupRequestAssignment`.
    const SYNC_GROUP_REQUEST_ASSIGNMENT: Struct = Struct {
        name: "SyncGroupRequestAssignment",
        fields: &[field("member_id", STRING), field("assignment", BYTES)],
        tagged: &[],
    };
}

/// Heartbeat (`heartbeat_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod heartbeat {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::Heartbeat,
        versions: Versions::new(0, 4),
        flexible_from: Some(4),
        body: &HEARTBEAT_REQUEST,
    };

    /// `HeartbeatRequest`.
    const HEARTBEAT_REQUEST: Struct = Struct {
        name: "HeartbeatRequest",
        fields: &[
            field("group_id", STRING),
            field("generation_id", INT32),
            field("member_id", STRING),
            field("group_instance_id", STRING).since(3),
        ],
        tagged: &[],
    };
}

/// LeaveGroup (`leave_group_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod leave_group {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::LeaveGroup,
        versions: Versions::new(0, 5),
        flexible_from: Some(4),
        body: &LEAVE_GROUP_REQUEST,
    };

    /// `LeaveGroupRequest`.
    const LEAVE_GROUP_REQUEST: Struct = Struct {
        name: "LeaveGroupRequest",
        fields: &[
            field("group_id", STRING),
            field("member_id", STRING).until(2),
            field("members", Kind::Array(&Kind::Struct(&MEMBER_IDENTITY))).since(3),
        ],
        tagged: &[],
    };

    /// `MemberIdentity`.
    const MEMBER_IDENTITY: Struct = Struct {
        name: "MemberIdentity",
        fields: &[
            field("member_id", STRING).since(3),
            field("group_instance_id", STRING).since(3),
            field("reason", STRING).since(5),
        ],
        tagged: &[],
    };
}

/// OffsetCommit (`offset_commit_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod offset_commit {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::OffsetCommit,
        versions: Versions::new(2, 9),
        flexible_from: Some(8),
        body: &OFFSET_COMMIT_REQUEST,
    };

    /// `OffsetCommitRequest`.
    const OFFSET_COMMIT_REQUEST: Struct = Struct {
        name: "OffsetCommitRequest",
        fields: &[
            field("group_id", STRING),
            field("generation_id_or_member_epoch", INT32),
            field("member_id", STRING),
            field("group_instance_id", STRING).since(7),
            field("retention_time_ms", INT64).until(4),
            field(
                "topics",
                Kind::Array(&Kind::Struct(&OFFSET_COMMIT_REQUEST_TOPIC)),
            ),
        ],
        tagged: &[],
    };

    /// `OffsetCommitRequestPartition`.
    const OFFSET_COMMIT_REQUEST_PARTITION: Struct = Struct {
        name: "OffsetCommitRequestPartition",
        fields: &[
            field("partition_index", INT32),
            field("committed_offset", INT64),
            field("committed_leader_epoch", INT32).since(6),
            field("committed_metadata", STRING),
        ],
        tagged: &[],
    };

    /// `OffsetCommitRequestTopic`.
    const OFFSET_COMMIT_REQUEST_TOPIC: Struct = Struct {
        name: "OffsetCommitRequestTopic",
        fields: &[
            field("name", STRING),
            field(
                "partitions",
                Kind::Array(&Kind::Struct(&OFFSET_COMMIT_REQUEST_PARTITION)),
            ),
        ],
        tagged: &[],
    };
}

/// OffsetFetch (`offset_fetch_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod offset_fetch {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::OffsetFetch,
        versions: Versions::new(1, 9),
        flexible_from: Some(6),
        body: &OFFSET_FETCH_REQUEST,
    };

    /// `OffsetFetchRequest`.
    const OFFSET_FETCH_REQUEST: Struct = Struct {
        name: "OffsetFetchRequest",
        fields: &[
            field("group_id", STRING).until(7),
            field(
                "topics",
                Kind::Array(&Kind::Struct(&OFFSET_FETCH_REQUEST_TOPIC)),
            )
            .until(7),
            field(
                "groups",
                Kind::Array(&Kind::Struct(&OFFSET_FETCH_REQUEST_GROUP)),
            )
            .since(8),
            field("require_stable", BOOL).since(7),
        ],
        tagged: &[],
    };

    /// `OffsetFetchRequestGroup`.
    const OFFSET_FETCH_REQUEST_GROUP: Struct = Struct {
        name: "OffsetFetchRequestGroup",
        fields: &[
            field("group_id", STRING).since(8),
            field("member_id", STRING).since(9),
            field("member_epoch", INT32).since(9),
            field(
                "topics",
                Kind::Array(&Kind::Struct(&OFFSET_FETCH_REQUEST_TOPICS)),
            )
            .since(8),
        ],
        tagged: &[],
    };

    /// `OffsetFetchRequestTopic`.
    const OFFSET_FETCH_REQUEST_TOPIC: Struct = Struct {
        name: "OffsetFetchRequestTopic",
        fields: &[
            field("name", STRING).until(7),
            field("partition_indexes", Kind::Array(&INT32)).until(7),
        ],
        tagged: &[],
    };

    /// `OffsetFetchRequestTopics`.
    const OFFSET_FETCH_REQUEST_TOPICS: Struct = Struct {
        name: "OffsetFetchRequestTopics",
        fields: &[
            field("name", STRING).since(8),
            field("partition_indexes", Kind::Array(&INT32)).since(8),
        ],
        tagged: &[],
    };
}

/// ListGroups (`list_groups_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod list_groups {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::ListGroups,
        versions: Versions::new(0, 5),
        flexible_from: Some(3),
        body: &LIST_GROUPS_REQUEST,
    };

    /// `ListGroupsRequest`.
    const LIST_GROUPS_REQUEST: Struct = Struct {
        name: "ListGroupsRequest",
        fields: &[
            field("states_filter", Kind::Array(&STRING)).since(4),
            field("types_filter", Kind::Array(&STRING)).since(5),
        ],
        tagged: &[],
    };
}

/// DescribeGroups (`describe_groups_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod describe_groups {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::DescribeGroups,
        versions: Versions::new(0, 6),
        flexible_from: Some(5),
        body: &DESCRIBE_GROUPS_REQUEST,
    };

    /// `DescribeGroupsRequest`.
    const DESCRIBE_GROUPS_REQUEST: Struct = Struct {
        name: "DescribeGroupsRequest",
        fields: &[
            field("groups", Kind::Array(&STRING)),
            field("include_authorized_operations", BOOL).since(3),
        ],
        tagged: &[],
    };
}

/// DeleteGroups (`delete_groups_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod delete_groups {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::DeleteGroups,
        versions: Versions::new(0, 2),
        flexible_from: Some(2),
        body: &DELETE_GROUPS_REQUEST,
    };

    /// `DeleteGroupsRequest`.
    const DELETE_GROUPS_REQUEST: Struct = Struct {
        name: "DeleteGroupsRequest",
        fields: &[field("groups_names", Kind::Array(&STRING))],
        tagged: &[],
    };
}

/// OffsetDelete (`offset_delete_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod offset_delete {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::OffsetDelete,
        versions: Versions::new(0, 0),
        flexible_from: None,
        body: &OFFSET_DELETE_REQUEST,
    };

    /// `OffsetDeleteRequest`.
    const OFFSET_DELETE_REQUEST: Struct = Struct {
        name: "OffsetDeleteRequest",
        fields: &[
            field("group_id", STRING),
            field(
                "topics",
                Kind::Array(&Kind::Struct(&OFFSET_DELETE_REQUEST_TOPIC)),
            ),
        ],
        tagged: &[],
    };

    /// `OffsetDeleteRequestPartition`.
    const OFFSET_DELETE_REQUEST_PARTITION: Struct = Struct {
        name: "OffsetDeleteRequestPartition",
        fields: &[field("partition_index", INT32)],
        tagged: &[],
    };

    /// `OffsetDeleteRequestTopic`.
    const OFFSET_DELETE_REQUEST_TOPIC: Struct = Struct {
        name: "OffsetDeleteRequestTopic",
        fields: &[
            field("name", STRING),
            field(
                "partitions",
                Kind::Array(&Kind::Struct(&OFFSET_DELETE_REQUEST_PARTITION)),
            ),
        ],
        tagged: &[],
    };
}

/// ConsumerGroupHeartbeat (`consumer_group_heartbeat_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod consumer_group_heartbeat {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::ConsumerGroupHeartbeat,
        versions: Versions::new(0, 1),
        flexible_from: Some(0),
        body: &CONSUMER_GROUP_HEARTBEAT_REQUEST,
    };

    /// `ConsumerGroupHeartbeatRequest`.
    const CONSUMER_GROUP_HEARTBEAT_REQUEST: Struct = Struct {
        name: "ConsumerGroupHeartbeatRequest",
        fields: &[
            field("group_id", STRING),
            field("member_id", STRING),
            field("member_epoch", INT32),
            field("instance_id", STRING),
            field("rack_id", STRING),
            field("rebalance_timeout_ms", INT32),
            field("subscribed_topic_names", Kind::Array(&STRING)),
            field("subscribed_topic_regex", STRING).since(1),
            field("server_assignor", STRING),
            field(
                "topic_partitions",
                Kind::Array(&Kind::Struct(&TOPIC_PARTITIONS)),
            ),
        ],
        tagged: &[],
    };

    /// `TopicPartitions`.
    const TOPIC_PARTITIONS: Struct = Struct {
        name: "TopicPartitions",
        fields: &[
            field("topic_id", UUID),
            field("partitions", Kind::Array(&INT32)),
        ],
        tagged: &[],
    };
}

/// ConsumerGroupDescribe (`consumer_group_describe_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod consumer_group_describe {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::ConsumerGroupDescribe,
        versions: Versions::new(0, 1),
        flexible_from: Some(0),
        body: &CONSUMER_GROUP_DESCRIBE_REQUEST,
    };

    /// `ConsumerGroupDescribeRequest`.
    const CONSUMER_GROUP_DESCRIBE_REQUEST: Struct = Struct {
        name: "ConsumerGroupDescribeRequest",
        fields: &[
            field("group_ids", Kind::Array(&STRING)),
            field("include_authorized_operations", BOOL),
        ],
        tagged: &[],
    };
}
