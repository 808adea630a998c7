//! Schemas of idempotent and transactional producers.
//!
//! Generated from kafka-protocol 0.18's `src/messages/*_request.rs` decoders by
//! `generate.py` (in this folder), then reviewed; see the module docs of `bounds`.

use crate::bounds::schema::*;
use kafka_protocol::messages::ApiKey;

/// InitProducerId (`init_producer_id_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod init_producer_id {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::InitProducerId,
        versions: Versions::new(0, 5),
        flexible_from: Some(2),
        body: &INIT_PRODUCER_ID_REQUEST,
    };

    /// `InitProducerIdRequest`.
    const INIT_PRODUCER_ID_REQUEST: Struct = Struct {
        name: "InitProducerIdRequest",
        fields: &[
            field("transactional_id", STRING),
            field("transaction_timeout_ms", INT32),
            field("producer_id", INT64).since(3),
            field("producer_epoch", INT16).since(3),
        ],
        tagged: &[],
    };
}

/// AddPartitionsToTxn (`add_partitions_to_txn_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod add_partitions_to_txn {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::AddPartitionsToTxn,
        versions: Versions::new(0, 5),
        flexible_from: Some(3),
        body: &ADD_PARTITIONS_TO_TXN_REQUEST,
    };

    /// `AddPartitionsToTxnRequest`.
    const ADD_PARTITIONS_TO_TXN_REQUEST: Struct = Struct {
        name: "AddPartitionsToTxnRequest",
        fields: &[
            field(
                "transactions",
                Kind::Array(&Kind::Struct(&ADD_PARTITIONS_TO_TXN_TRANSACTION)),
            )
            .since(4),
            field("v3_and_below_transactional_id", STRING).until(3),
            field("v3_and_below_producer_id", INT64).until(3),
            field("v3_and_below_producer_epoch", INT16).until(3),
            field(
                "v3_and_below_topics",
                Kind::Array(&Kind::Struct(&ADD_PARTITIONS_TO_TXN_TOPIC)),
            )
            .until(3),
        ],
        tagged: &[],
    };

    /// `AddPartitionsToTxnTopic`.
    const ADD_PARTITIONS_TO_TXN_TOPIC: Struct = Struct {
        name: "AddPartitionsToTxnTopic",
        fields: &[
            field("name", STRING),
            field("partitions", Kind::Array(&INT32)),
        ],
        tagged: &[],
    };

    /// `AddPartitionsToTxnTransaction`.
    const ADD_PARTITIONS_TO_TXN_TRANSACTION: Struct = Struct {
        name: "AddPartitionsToTxnTransaction",
        fields: &[
            field("transactional_id", STRING).since(4),
            field("producer_id", INT64).since(4),
            field("producer_epoch", INT16).since(4),
            field("verify_only", BOOL).since(4),
            field(
                "topics",
                Kind::Array(&Kind::Struct(&ADD_PARTITIONS_TO_TXN_TOPIC)),
            )
            .since(4),
        ],
        tagged: &[],
    };
}

/// AddOffsetsToTxn (`add_offsets_to_txn_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod add_offsets_to_txn {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::AddOffsetsToTxn,
        versions: Versions::new(0, 4),
        flexible_from: Some(3),
        body: &ADD_OFFSETS_TO_TXN_REQUEST,
    };

    /// `AddOffsetsToTxnRequest`.
    const ADD_OFFSETS_TO_TXN_REQUEST: Struct = Struct {
        name: "AddOffsetsToTxnRequest",
        fields: &[
            field("transactional_id", STRING),
            field("producer_id", INT64),
            field("producer_epoch", INT16),
            field("group_id", STRING),
        ],
        tagged: &[],
    };
}

/// EndTxn (`end_txn_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod end_txn {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::EndTxn,
        versions: Versions::new(0, 5),
        flexible_from: Some(3),
        body: &END_TXN_REQUEST,
    };

    /// `EndTxnRequest`.
    const END_TXN_REQUEST: Struct = Struct {
        name: "EndTxnRequest",
        fields: &[
            field("transactional_id", STRING),
            field("producer_id", INT64),
            field("producer_epoch", INT16),
            field("committed", BOOL),
        ],
        tagged: &[],
    };
}

/// TxnOffsetCommit (`txn_offset_commit_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod txn_offset_commit {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::TxnOffsetCommit,
        versions: Versions::new(0, 5),
        flexible_from: Some(3),
        body: &TXN_OFFSET_COMMIT_REQUEST,
    };

    /// `TxnOffsetCommitRequest`.
    const TXN_OFFSET_COMMIT_REQUEST: Struct = Struct {
        name: "TxnOffsetCommitRequest",
        fields: &[
            field("transactional_id", STRING),
            field("group_id", STRING),
            field("producer_id", INT64),
            field("producer_epoch", INT16),
            field("generation_id", INT32).since(3),
            field("member_id", STRING).since(3),
            field("group_instance_id", STRING).since(3),
            field(
                "topics",
                Kind::Array(&Kind::Struct(&TXN_OFFSET_COMMIT_REQUEST_TOPIC)),
            ),
        ],
        tagged: &[],
    };

    /// `TxnOffsetCommitRequestPartition`.
    const TXN_OFFSET_COMMIT_REQUEST_PARTITION: Struct = Struct {
        name: "TxnOffsetCommitRequestPartition",
        fields: &[
            field("partition_index", INT32),
            field("committed_offset", INT64),
            field("committed_leader_epoch", INT32).since(2),
            field("committed_metadata", STRING),
        ],
        tagged: &[],
    };

    /// `TxnOffsetCommitRequestTopic`.
    const TXN_OFFSET_COMMIT_REQUEST_TOPIC: Struct = Struct {
        name: "TxnOffsetCommitRequestTopic",
        fields: &[
            field("name", STRING),
            field(
                "partitions",
                Kind::Array(&Kind::Struct(&TXN_OFFSET_COMMIT_REQUEST_PARTITION)),
            ),
        ],
        tagged: &[],
    };
}

/// DescribeProducers (`describe_producers_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod describe_producers {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::DescribeProducers,
        versions: Versions::new(0, 0),
        flexible_from: Some(0),
        body: &DESCRIBE_PRODUCERS_REQUEST,
    };

    /// `DescribeProducersRequest`.
    const DESCRIBE_PRODUCERS_REQUEST: Struct = Struct {
        name: "DescribeProducersRequest",
        fields: &[field("topics", Kind::Array(&Kind::Struct(&TOPIC_REQUEST)))],
        tagged: &[],
    };

    /// `TopicRequest`.
    const TOPIC_REQUEST: Struct = Struct {
        name: "TopicRequest",
        fields: &[
            field("name", STRING),
            field("partition_indexes", Kind::Array(&INT32)),
        ],
        tagged: &[],
    };
}

/// WriteTxnMarkers (`write_txn_markers_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod write_txn_markers {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::WriteTxnMarkers,
        versions: Versions::new(1, 1),
        flexible_from: Some(1),
        body: &WRITE_TXN_MARKERS_REQUEST,
    };

    /// `WriteTxnMarkersRequest`.
    const WRITE_TXN_MARKERS_REQUEST: Struct = Struct {
        name: "WriteTxnMarkersRequest",
        fields: &[field(
            "markers",
            Kind::Array(&Kind::Struct(&WRITABLE_TXN_MARKER)),
        )],
        tagged: &[],
    };

    /// `WritableTxnMarker`.
    const WRITABLE_TXN_MARKER: Struct = Struct {
        name: "WritableTxnMarker",
        fields: &[
            field("producer_id", INT64),
            field("producer_epoch", INT16),
            field("transaction_result", BOOL),
            field(
                "topics",
                Kind::Array(&Kind::Struct(&WRITABLE_TXN_MARKER_TOPIC)),
            ),
            field("coordinator_epoch", INT32),
        ],
        tagged: &[],
    };

    /// `WritableTxnMarkerTopic`.
    const WRITABLE_TXN_MARKER_TOPIC: Struct = Struct {
        name: "WritableTxnMarkerTopic",
        fields: &[
            field("name", STRING),
            field("partition_indexes", Kind::Array(&INT32)),
        ],
        tagged: &[],
    };
}

/// DescribeTransactions (`describe_transactions_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod describe_transactions {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::DescribeTransactions,
        versions: Versions::new(0, 0),
        flexible_from: Some(0),
        body: &DESCRIBE_TRANSACTIONS_REQUEST,
    };

    /// `DescribeTransactionsRequest`.
    const DESCRIBE_TRANSACTIONS_REQUEST: Struct = Struct {
        name: "DescribeTransactionsRequest",
        fields: &[field("transactional_ids", Kind::Array(&STRING))],
        tagged: &[],
    };
}

/// ListTransactions (`list_transactions_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod list_transactions {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::ListTransactions,
        versions: Versions::new(0, 2),
        flexible_from: Some(0),
        body: &LIST_TRANSACTIONS_REQUEST,
    };

    /// `ListTransactionsRequest`.
    const LIST_TRANSACTIONS_REQUEST: Struct = Struct {
        name: "ListTransactionsRequest",
        fields: &[
            field("state_filters", Kind::Array(&STRING)),
            field("producer_id_filters", Kind::Array(&INT64)),
            field("duration_filter", INT64).since(1),
            field("transactional_id_pattern", STRING).since(2),
        ],
        tagged: &[],
    };
}
