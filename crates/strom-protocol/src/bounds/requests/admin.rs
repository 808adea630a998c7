//! Schemas of topic and config administration.
//!
//! Generated from kafka-protocol 0.18's `src/messages/*_request.rs` decoders by
//! `generate.py` (in this folder), then reviewed; see the module docs of `bounds`.

use crate::bounds::schema::*;
use kafka_protocol::messages::ApiKey;

/// CreateTopics (`create_topics_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod create_topics {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::CreateTopics,
        versions: Versions::new(2, 7),
        flexible_from: Some(5),
        body: &CREATE_TOPICS_REQUEST,
    };

    /// `CreateTopicsRequest`.
    const CREATE_TOPICS_REQUEST: Struct = Struct {
        name: "CreateTopicsRequest",
        fields: &[
            field("topics", Kind::Array(&Kind::Struct(&CREATABLE_TOPIC))),
            field("timeout_ms", INT32),
            field("validate_only", BOOL),
        ],
        tagged: &[],
    };

    /// `CreatableReplicaAssignment`.
    const CREATABLE_REPLICA_ASSIGNMENT: Struct = Struct {
        name: "CreatableReplicaAssignment",
        fields: &[
            field("partition_index", INT32),
            field("broker_ids", Kind::Array(&INT32)),
        ],
        tagged: &[],
    };

    /// `CreatableTopic`.
    const CREATABLE_TOPIC: Struct = Struct {
        name: "CreatableTopic",
        fields: &[
            field("name", STRING),
            field("num_partitions", INT32),
            field("replication_factor", INT16),
            field(
                "assignments",
                Kind::Array(&Kind::Struct(&CREATABLE_REPLICA_ASSIGNMENT)),
            ),
            field(
                "configs",
                Kind::Array(&Kind::Struct(&CREATABLE_TOPIC_CONFIG)),
            ),
        ],
        tagged: &[],
    };

    /// `CreatableTopicConfig`.
    const CREATABLE_TOPIC_CONFIG: Struct = Struct {
        name: "CreatableTopicConfig",
        fields: &[field("name", STRING), field("value", STRING)],
        tagged: &[],
    };
}

/// DeleteTopics (`delete_topics_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod delete_topics {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::DeleteTopics,
        versions: Versions::new(1, 6),
        flexible_from: Some(4),
        body: &DELETE_TOPICS_REQUEST,
    };

    /// `DeleteTopicsRequest`.
    const DELETE_TOPICS_REQUEST: Struct = Struct {
        name: "DeleteTopicsRequest",
        fields: &[
            field("topics", Kind::Array(&Kind::Struct(&DELETE_TOPIC_STATE))).since(6),
            field("topic_names", Kind::Array(&STRING)).until(5),
            field("timeout_ms", INT32),
        ],
        tagged: &[],
    };

    /// `DeleteTopicState`.
    const DELETE_TOPIC_STATE: Struct = Struct {
        name: "DeleteTopicState",
        fields: &[
            field("name", STRING).since(6),
            field("topic_id", UUID).since(6),
        ],
        tagged: &[],
    };
}

/// CreatePartitions (`create_partitions_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod create_partitions {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::CreatePartitions,
        versions: Versions::new(0, 3),
        flexible_from: Some(2),
        body: &CREATE_PARTITIONS_REQUEST,
    };

    /// `CreatePartitionsRequest`.
    const CREATE_PARTITIONS_REQUEST: Struct = Struct {
        name: "CreatePartitionsRequest",
        fields: &[
            field(
                "topics",
                Kind::Array(&Kind::Struct(&CREATE_PARTITIONS_TOPIC)),
            ),
            field("timeout_ms", INT32),
            field("validate_only", BOOL),
        ],
        tagged: &[],
    };

    /// `CreatePartitionsAssignment`.
    const CREATE_PARTITIONS_ASSIGNMENT: Struct = Struct {
        name: "CreatePartitionsAssignment",
        fields: &[field("broker_ids", Kind::Array(&INT32))],
        tagged: &[],
    };

    /// `CreatePartitionsTopic`.
    const CREATE_PARTITIONS_TOPIC: Struct = Struct {
        name: "CreatePartitionsTopic",
        fields: &[
            field("name", STRING),
            field("count", INT32),
            field(
                "assignments",
                Kind::Array(&Kind::Struct(&CREATE_PARTITIONS_ASSIGNMENT)),
            ),
        ],
        tagged: &[],
    };
}

/// DescribeConfigs (`describe_configs_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod describe_configs {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::DescribeConfigs,
        versions: Versions::new(1, 4),
        flexible_from: Some(4),
        body: &DESCRIBE_CONFIGS_REQUEST,
    };

    /// `DescribeConfigsRequest`.
    const DESCRIBE_CONFIGS_REQUEST: Struct = Struct {
        name: "DescribeConfigsRequest",
        fields: &[
            field(
                "resources",
                Kind::Array(&Kind::Struct(&DESCRIBE_CONFIGS_RESOURCE)),
            ),
            field("include_synonyms", BOOL),
            field("include_documentation", BOOL).since(3),
        ],
        tagged: &[],
    };

    /// `DescribeConfigsResource`.
    const DESCRIBE_CONFIGS_RESOURCE: Struct = Struct {
        name: "DescribeConfigsResource",
        fields: &[
            field("resource_type", INT8),
            field("resource_name", STRING),
            field("configuration_keys", Kind::Array(&STRING)),
        ],
        tagged: &[],
    };
}

/// AlterConfigs (`alter_configs_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod alter_configs {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::AlterConfigs,
        versions: Versions::new(0, 2),
        flexible_from: Some(2),
        body: &ALTER_CONFIGS_REQUEST,
    };

    /// `AlterConfigsRequest`.
    const ALTER_CONFIGS_REQUEST: Struct = Struct {
        name: "AlterConfigsRequest",
        fields: &[
            field(
                "resources",
                Kind::Array(&Kind::Struct(&ALTER_CONFIGS_RESOURCE)),
            ),
            field("validate_only", BOOL),
        ],
        tagged: &[],
    };

    /// `AlterConfigsResource`.
    const ALTER_CONFIGS_RESOURCE: Struct = Struct {
        name: "AlterConfigsResource",
        fields: &[
            field("resource_type", INT8),
            field("resource_name", STRING),
            field("configs", Kind::Array(&Kind::Struct(&ALTERABLE_CONFIG))),
        ],
        tagged: &[],
    };

    /// `AlterableConfig`.
    const ALTERABLE_CONFIG: Struct = Struct {
        name: "AlterableConfig",
        fields: &[field("name", STRING), field("value", STRING)],
        tagged: &[],
    };
}

/// IncrementalAlterConfigs (`incremental_alter_configs_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod incremental_alter_configs {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::IncrementalAlterConfigs,
        versions: Versions::new(0, 1),
        flexible_from: Some(1),
        body: &INCREMENTAL_ALTER_CONFIGS_REQUEST,
    };

    /// `IncrementalAlterConfigsRequest`.
    const INCREMENTAL_ALTER_CONFIGS_REQUEST: Struct = Struct {
        name: "IncrementalAlterConfigsRequest",
        fields: &[
            field(
                "resources",
                Kind::Array(&Kind::Struct(&ALTER_CONFIGS_RESOURCE)),
            ),
            field("validate_only", BOOL),
        ],
        tagged: &[],
    };

    /// `AlterConfigsResource`.
    const ALTER_CONFIGS_RESOURCE: Struct = Struct {
        name: "AlterConfigsResource",
        fields: &[
            field("resource_type", INT8),
            field("resource_name", STRING),
            field("configs", Kind::Array(&Kind::Struct(&ALTERABLE_CONFIG))),
        ],
        tagged: &[],
    };

    /// `AlterableConfig`.
    const ALTERABLE_CONFIG: Struct = Struct {
        name: "AlterableConfig",
        fields: &[
            field("name", STRING),
            field("config_operation", INT8),
            field("value", STRING),
        ],
        tagged: &[],
    };
}

/// DescribeLogDirs (`describe_log_dirs_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod describe_log_dirs {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::DescribeLogDirs,
        versions: Versions::new(1, 4),
        flexible_from: Some(2),
        body: &DESCRIBE_LOG_DIRS_REQUEST,
    };

    /// `DescribeLogDirsRequest`.
    const DESCRIBE_LOG_DIRS_REQUEST: Struct = Struct {
        name: "DescribeLogDirsRequest",
        fields: &[field(
            "topics",
            Kind::Array(&Kind::Struct(&DESCRIBABLE_LOG_DIR_TOPIC)),
        )],
        tagged: &[],
    };

    /// `DescribableLogDirTopic`.
    const DESCRIBABLE_LOG_DIR_TOPIC: Struct = Struct {
        name: "DescribableLogDirTopic",
        fields: &[
            field("topic", STRING),
            field("partitions", Kind::Array(&INT32)),
        ],
        tagged: &[],
    };
}

/// AlterReplicaLogDirs (`alter_replica_log_dirs_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod alter_replica_log_dirs {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::AlterReplicaLogDirs,
        versions: Versions::new(1, 2),
        flexible_from: Some(2),
        body: &ALTER_REPLICA_LOG_DIRS_REQUEST,
    };

    /// `AlterReplicaLogDirsRequest`.
    const ALTER_REPLICA_LOG_DIRS_REQUEST: Struct = Struct {
        name: "AlterReplicaLogDirsRequest",
        fields: &[field(
            "dirs",
            Kind::Array(&Kind::Struct(&ALTER_REPLICA_LOG_DIR)),
        )],
        tagged: &[],
    };

    /// `AlterReplicaLogDir`.
    const ALTER_REPLICA_LOG_DIR: Struct = Struct {
        name: "AlterReplicaLogDir",
        fields: &[
            field("path", STRING),
            field(
                "topics",
                Kind::Array(&Kind::Struct(&ALTER_REPLICA_LOG_DIR_TOPIC)),
            ),
        ],
        tagged: &[],
    };

    /// `AlterReplicaLogDirTopic`.
    const ALTER_REPLICA_LOG_DIR_TOPIC: Struct = Struct {
        name: "AlterReplicaLogDirTopic",
        fields: &[
            field("name", STRING),
            field("partitions", Kind::Array(&INT32)),
        ],
        tagged: &[],
    };
}

/// ElectLeaders (`elect_leaders_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod elect_leaders {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::ElectLeaders,
        versions: Versions::new(0, 2),
        flexible_from: Some(2),
        body: &ELECT_LEADERS_REQUEST,
    };

    /// `ElectLeadersRequest`.
    const ELECT_LEADERS_REQUEST: Struct = Struct {
        name: "ElectLeadersRequest",
        fields: &[
            field("election_type", INT8).since(1),
            field(
                "topic_partitions",
                Kind::Array(&Kind::Struct(&TOPIC_PARTITIONS)),
            ),
            field("timeout_ms", INT32),
        ],
        tagged: &[],
    };

    /// `TopicPartitions`.
    const TOPIC_PARTITIONS: Struct = Struct {
        name: "TopicPartitions",
        fields: &[
            field("topic", STRING),
            field("partitions", Kind::Array(&INT32)),
        ],
        tagged: &[],
    };
}

/// AlterPartitionReassignments (`alter_partition_reassignments_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod alter_partition_reassignments {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::AlterPartitionReassignments,
        versions: Versions::new(0, 1),
        flexible_from: Some(0),
        body: &ALTER_PARTITION_REASSIGNMENTS_REQUEST,
    };

    /// `AlterPartitionReassignmentsRequest`.
    const ALTER_PARTITION_REASSIGNMENTS_REQUEST: Struct = Struct {
        name: "AlterPartitionReassignmentsRequest",
        fields: &[
            field("timeout_ms", INT32),
            field("allow_replication_factor_change", BOOL).since(1),
            field("topics", Kind::Array(&Kind::Struct(&REASSIGNABLE_TOPIC))),
        ],
        tagged: &[],
    };

    /// `ReassignablePartition`.
    const REASSIGNABLE_PARTITION: Struct = Struct {
        name: "ReassignablePartition",
        fields: &[
            field("partition_index", INT32),
            field("replicas", Kind::Array(&INT32)),
        ],
        tagged: &[],
    };

    /// `ReassignableTopic`.
    const REASSIGNABLE_TOPIC: Struct = Struct {
        name: "ReassignableTopic",
        fields: &[
            field("name", STRING),
            field(
                "partitions",
                Kind::Array(&Kind::Struct(&REASSIGNABLE_PARTITION)),
            ),
        ],
        tagged: &[],
    };
}

/// ListPartitionReassignments (`list_partition_reassignments_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod list_partition_reassignments {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::ListPartitionReassignments,
        versions: Versions::new(0, 0),
        flexible_from: Some(0),
        body: &LIST_PARTITION_REASSIGNMENTS_REQUEST,
    };

    /// `ListPartitionReassignmentsRequest`.
    const LIST_PARTITION_REASSIGNMENTS_REQUEST: Struct = Struct {
        name: "ListPartitionReassignmentsRequest",
        fields: &[
            field("timeout_ms", INT32),
            field(
                "topics",
                Kind::Array(&Kind::Struct(&LIST_PARTITION_REASSIGNMENTS_TOPICS)),
            ),
        ],
        tagged: &[],
    };

    /// `ListPartitionReassignmentsTopics`.
    const LIST_PARTITION_REASSIGNMENTS_TOPICS: Struct = Struct {
        name: "ListPartitionReassignmentsTopics",
        fields: &[
            field("name", STRING),
            field("partition_indexes", Kind::Array(&INT32)),
        ],
        tagged: &[],
    };
}
