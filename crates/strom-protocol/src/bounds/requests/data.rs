//! Schemas of the data path: produce, fetch, offsets by time and epoch, record deletion.
//!
//! Generated from kafka-protocol 0.18's `src/messages/*_request.rs` decoders by
//! `generate.py` (in this folder), then reviewed; see the module docs of `bounds`.

use crate::bounds::schema::*;
use kafka_protocol::messages::ApiKey;

/// Produce (`produce_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod produce {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::Produce,
        versions: Versions::new(3, 13),
        flexible_from: Some(9),
        body: &PRODUCE_REQUEST,
    };

    /// `ProduceRequest`.
    const PRODUCE_REQUEST: Struct = Struct {
        name: "ProduceRequest",
        fields: &[
            field("transactional_id", STRING),
            field("acks", INT16),
            field("timeout_ms", INT32),
            field(
                "topic_data",
                Kind::Array(&Kind::Struct(&TOPIC_PRODUCE_DATA)),
            ),
        ],
        tagged: &[],
    };

    /// `PartitionProduceData`.
    const PARTITION_PRODUCE_DATA: Struct = Struct {
        name: "PartitionProduceData",
        fields: &[field("index", INT32), field("records", BYTES)],
        tagged: &[],
    };

    /// `TopicProduceData`.
    const TOPIC_PRODUCE_DATA: Struct = Struct {
        name: "TopicProduceData",
        fields: &[
            field("name", STRING).until(12),
            field("topic_id", UUID).since(13),
            field(
                "partition_data",
                Kind::Array(&Kind::Struct(&PARTITION_PRODUCE_DATA)),
            ),
        ],
        tagged: &[],
    };
}

/// Fetch (`fetch_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod fetch {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::Fetch,
        versions: Versions::new(4, 18),
        flexible_from: Some(12),
        body: &FETCH_REQUEST,
    };

    /// `FetchRequest`.
    const FETCH_REQUEST: Struct = Struct {
        name: "FetchRequest",
        fields: &[
            field("replica_id", INT32).until(14),
            field("max_wait_ms", INT32),
            field("min_bytes", INT32),
            field("max_bytes", INT32),
            field("isolation_level", INT8),
            field("session_id", INT32).since(7),
            field("session_epoch", INT32).since(7),
            field("topics", Kind::Array(&Kind::Struct(&FETCH_TOPIC))),
            field(
                "forgotten_topics_data",
                Kind::Array(&Kind::Struct(&FORGOTTEN_TOPIC)),
            )
            .since(7),
            field("rack_id", STRING).since(11),
        ],
        tagged: &[
            tagged(0, "cluster_id", STRING),
            tagged(1, "replica_state", Kind::Struct(&REPLICA_STATE)).since(15),
        ],
    };

    /// `FetchPartition`.
    const FETCH_PARTITION: Struct = Struct {
        name: "FetchPartition",
        fields: &[
            field("partition", INT32),
            field("current_leader_epoch", INT32).since(9),
            field("fetch_offset", INT64),
            field("last_fetched_epoch", INT32).since(12),
            field("log_start_offset", INT64).since(5),
            field("partition_max_bytes", INT32),
        ],
        tagged: &[
            tagged(0, "replica_directory_id", UUID).since(17),
            tagged(1, "high_watermark", INT64).since(18),
        ],
    };

    /// `FetchTopic`.
    const FETCH_TOPIC: Struct = Struct {
        name: "FetchTopic",
        fields: &[
            field("topic", STRING).until(12),
            field("topic_id", UUID).since(13),
            field("partitions", Kind::Array(&Kind::Struct(&FETCH_PARTITION))),
        ],
        tagged: &[],
    };

    /// `ForgottenTopic`.
    const FORGOTTEN_TOPIC: Struct = Struct {
        name: "ForgottenTopic",
        fields: &[
            field("topic", STRING).between(7, 12),
            field("topic_id", UUID).since(13),
            field("partitions", Kind::Array(&INT32)).since(7),
        ],
        tagged: &[],
    };

    /// `ReplicaState`.
    const REPLICA_STATE: Struct = Struct {
        name: "ReplicaState",
        fields: &[
            field("replica_id", INT32).since(15),
            field("replica_epoch", INT64).since(15),
        ],
        tagged: &[],
    };
}

/// ListOffsets (`list_offsets_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod list_offsets {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::ListOffsets,
        versions: Versions::new(1, 10),
        flexible_from: Some(6),
        body: &LIST_OFFSETS_REQUEST,
    };

    /// `ListOffsetsRequest`.
    const LIST_OFFSETS_REQUEST: Struct = Struct {
        name: "ListOffsetsRequest",
        fields: &[
            field("replica_id", INT32),
            field("isolation_level", INT8).since(2),
            field("topics", Kind::Array(&Kind::Struct(&LIST_OFFSETS_TOPIC))),
            field("timeout_ms", INT32).since(10),
        ],
        tagged: &[],
    };

    /// `ListOffsetsPartition`.
    const LIST_OFFSETS_PARTITION: Struct = Struct {
        name: "ListOffsetsPartition",
        fields: &[
            field("partition_index", INT32),
            field("current_leader_epoch", INT32).since(4),
            field("timestamp", INT64),
        ],
        tagged: &[],
    };

    /// `ListOffsetsTopic`.
    const LIST_OFFSETS_TOPIC: Struct = Struct {
        name: "ListOffsetsTopic",
        fields: &[
            field("name", STRING),
            field(
                "partitions",
                Kind::Array(&Kind::Struct(&LIST_OFFSETS_PARTITION)),
            ),
        ],
        tagged: &[],
    };
}

/// OffsetForLeaderEpoch (`offset_for_leader_epoch_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod offset_for_leader_epoch {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::OffsetForLeaderEpoch,
        versions: Versions::new(2, 4),
        flexible_from: Some(4),
        body: &OFFSET_FOR_LEADER_EPOCH_REQUEST,
    };

    /// `OffsetForLeaderEpochRequest`.
    const OFFSET_FOR_LEADER_EPOCH_REQUEST: Struct = Struct {
        name: "OffsetForLeaderEpochRequest",
        fields: &[
            field("replica_id", INT32).since(3),
            field(
                "topics",
                Kind::Array(&Kind::Struct(&OFFSET_FOR_LEADER_TOPIC)),
            ),
        ],
        tagged: &[],
    };

    /// `OffsetForLeaderPartition`.
    const OFFSET_FOR_LEADER_PARTITION: Struct = Struct {
        name: "OffsetForLeaderPartition",
        fields: &[
            field("partition", INT32),
            field("current_leader_epoch", INT32),
            field("leader_epoch", INT32),
        ],
        tagged: &[],
    };

    /// `OffsetForLeaderTopic`.
    const OFFSET_FOR_LEADER_TOPIC: Struct = Struct {
        name: "OffsetForLeaderTopic",
        fields: &[
            field("topic", STRING),
            field(
                "partitions",
                Kind::Array(&Kind::Struct(&OFFSET_FOR_LEADER_PARTITION)),
            ),
        ],
        tagged: &[],
    };
}

/// DeleteRecords (`delete_records_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod delete_records {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::DeleteRecords,
        versions: Versions::new(0, 2),
        flexible_from: Some(2),
        body: &DELETE_RECORDS_REQUEST,
    };

    /// `DeleteRecordsRequest`.
    const DELETE_RECORDS_REQUEST: Struct = Struct {
        name: "DeleteRecordsRequest",
        fields: &[
            field("topics", Kind::Array(&Kind::Struct(&DELETE_RECORDS_TOPIC))),
            field("timeout_ms", INT32),
        ],
        tagged: &[],
    };

    /// `DeleteRecordsPartition`.
    const DELETE_RECORDS_PARTITION: Struct = Struct {
        name: "DeleteRecordsPartition",
        fields: &[field("partition_index", INT32), field("offset", INT64)],
        tagged: &[],
    };

    /// `DeleteRecordsTopic`.
    const DELETE_RECORDS_TOPIC: Struct = Struct {
        name: "DeleteRecordsTopic",
        fields: &[
            field("name", STRING),
            field(
                "partitions",
                Kind::Array(&Kind::Struct(&DELETE_RECORDS_PARTITION)),
            ),
        ],
        tagged: &[],
    };
}
