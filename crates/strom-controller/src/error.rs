//! The crate's error types: one enum for the log/disk layer ([`MetadataError`]), one for
//! the image's consistency checks ([`ImageError`]) and one for the controller's per-topic
//! decisions ([`ControllerError`], which maps 1:1 to Kafka error codes).

use std::path::PathBuf;

use uuid::Uuid;

/// Failures of the metadata log or of replaying it. These are environment faults or
/// corruption, never a client's mistake.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata log I/O failed: {operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "metadata log {path} is corrupt at byte {position}: {reason}; \
         valid entries follow the damage, so this is not a torn tail and nothing was truncated"
    )]
    CorruptMiddle {
        path: PathBuf,
        position: u64,
        reason: FrameDefect,
    },
    #[error(
        "metadata log entry #{entry_index} has base offset {found}, expected {expected} \
         (the log must have no holes)"
    )]
    OffsetGap {
        entry_index: u64,
        expected: u64,
        found: u64,
    },
    #[error("metadata entry of {entry_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    EntryTooLarge {
        entry_bytes: usize,
        limit_bytes: usize,
    },
    #[error("an append must carry at least one record")]
    EmptyEntry,
    #[error("could not encode metadata records: {0}")]
    Encode(#[source] serde_json::Error),
    #[error(
        "the metadata log is fenced after an earlier write failure; restart the node to \
         recover it from disk"
    )]
    Fenced,
    #[error("metadata log does not start with a cluster id record")]
    MissingClusterId,
    #[error(
        "this node is configured as node {configured}, but the metadata log in this data \
         directory belongs to node(s) {registered:?}; fix node.id or use another data directory"
    )]
    NodeIdMismatch {
        configured: i32,
        registered: Vec<i32>,
    },
    #[error("replaying the metadata record at offset {offset} failed: {source}")]
    Replay {
        offset: u64,
        #[source]
        source: ImageError,
    },
    #[error("the decided records would not apply to the current image ({0}); nothing was written")]
    Inconsistent(#[source] ImageError),
}

/// Why a frame was rejected while reading the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameDefect {
    #[error("the frame header is cut short")]
    ShortHeader,
    #[error("the declared length {declared_bytes} is outside 1..={limit_bytes}")]
    BadLength {
        declared_bytes: u32,
        limit_bytes: usize,
    },
    #[error("the payload is cut short")]
    ShortPayload,
    #[error("the CRC32C does not match")]
    CrcMismatch,
    #[error("the payload is not a valid JSON list of records")]
    BadPayload,
    #[error("the payload does not decode as the file's JSON type")]
    Undecodable,
    #[error("the file holds {found} frames where {expected} belong")]
    FrameCount { found: usize, expected: usize },
}

/// A record that does not fit the image it is applied to. Records the controller writes
/// always fit, so this means a corrupt log or a bug (or, under Raft, a proposal decided
/// against a stale image). Serializable because Raft entry outcomes carry it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ImageError {
    #[error("the cluster id is already {existing}, refusing to change it to {new}")]
    ClusterIdChanged { existing: String, new: String },
    #[error("topic id {topic_id} is not in the image")]
    UnknownTopicId {
        #[serde(with = "crate::record::uuid_text")]
        topic_id: Uuid,
    },
    #[error("topic name {name} is already used by topic id {existing}")]
    DuplicateTopicName {
        name: String,
        #[serde(with = "crate::record::uuid_text")]
        existing: Uuid,
    },
    #[error("topic id {topic_id} already exists")]
    DuplicateTopicId {
        #[serde(with = "crate::record::uuid_text")]
        topic_id: Uuid,
    },
    #[error("partition {partition} of topic id {topic_id} would leave a hole (topic has {count})")]
    PartitionHole {
        #[serde(with = "crate::record::uuid_text")]
        topic_id: Uuid,
        partition: i32,
        count: usize,
    },
    #[error("broker {broker_id} is not registered")]
    UnknownBroker { broker_id: i32 },
    #[error("partition {partition} of topic id {topic_id} does not exist")]
    UnknownPartition {
        #[serde(with = "crate::record::uuid_text")]
        topic_id: Uuid,
        partition: i32,
    },
}

/// A per-topic decision error. Each variant is exactly one Kafka error code
/// ([`ControllerError::code`]); its `Display` text is the response's `error_message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ControllerError {
    /// UNKNOWN_TOPIC_OR_PARTITION (3)
    #[error("This server does not host this topic-partition: '{name}'.")]
    UnknownTopicOrPartition { name: String },
    /// INVALID_TOPIC_EXCEPTION (17)
    #[error("{0}")]
    InvalidTopic(InvalidTopicReason),
    /// TOPIC_ALREADY_EXISTS (36)
    #[error("Topic '{name}' already exists.")]
    TopicAlreadyExists { name: String },
    /// INVALID_PARTITIONS (37)
    #[error("{0}")]
    InvalidPartitions(InvalidPartitionsReason),
    /// INVALID_REPLICATION_FACTOR (38)
    #[error("{0}")]
    InvalidReplicationFactor(ReplicationFactorReason),
    /// INVALID_REPLICA_ASSIGNMENT (39)
    #[error("{0}")]
    InvalidReplicaAssignment(ReplicaAssignmentReason),
    /// INVALID_CONFIG (40)
    #[error("{0}")]
    InvalidConfig(ConfigError),
    /// INVALID_REQUEST (42)
    #[error("{0}")]
    InvalidRequest(InvalidRequestReason),
    /// POLICY_VIOLATION (44)
    #[error("{0}")]
    PolicyViolation(PolicyViolationReason),
    /// UNKNOWN_TOPIC_ID (100)
    #[error("This server does not host this topic ID: {topic_id}.")]
    UnknownTopicId {
        #[serde(with = "crate::record::uuid_text")]
        topic_id: Uuid,
    },
}

impl ControllerError {
    /// The Kafka protocol error code for this error.
    pub fn code(&self) -> i16 {
        match self {
            ControllerError::UnknownTopicOrPartition { .. } => 3,
            ControllerError::InvalidTopic(_) => 17,
            ControllerError::TopicAlreadyExists { .. } => 36,
            ControllerError::InvalidPartitions(_) => 37,
            ControllerError::InvalidReplicationFactor(_) => 38,
            ControllerError::InvalidReplicaAssignment(_) => 39,
            ControllerError::InvalidConfig(_) => 40,
            ControllerError::InvalidRequest(_) => 42,
            ControllerError::PolicyViolation(_) => 44,
            ControllerError::UnknownTopicId { .. } => 100,
        }
    }

    /// The human-readable text for the response's `error_message` field.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Why a topic name is refused (Kafka's `Topic.validate` wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum InvalidTopicReason {
    #[error("Topic name is illegal, it can't be empty")]
    Empty,
    #[error("Topic name cannot be \".\" or \"..\"")]
    Dots,
    #[error(
        "Topic name is illegal, it can't be longer than {max_chars} characters \
         ({length_chars} given), topic name: {name}"
    )]
    TooLong {
        name: String,
        length_chars: usize,
        max_chars: usize,
    },
    #[error(
        "Topic name \"{name}\" is illegal, it contains a character other than \
         ASCII alphanumerics, '.', '_' and '-'"
    )]
    IllegalCharacters { name: String },
    #[error(
        "Topic '{name}' collides with existing topic: {existing} \
         ('.' and '_' are interchangeable in metric names)"
    )]
    Collides { name: String, existing: String },
}

/// Why a partition count is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum InvalidPartitionsReason {
    #[error("Number of partitions was set to an invalid non-positive value ({requested}).")]
    NonPositive { requested: i32 },
    #[error("Number of partitions {requested} exceeds the limit of {max} partitions per topic.")]
    TooMany { requested: i32, max: i32 },
    #[error("Topic already has {current} partition(s).")]
    Unchanged { current: i32 },
    #[error("The topic {name} currently has {current} partition(s); {requested} would not be an increase.")]
    Decrease {
        name: String,
        current: i32,
        requested: i32,
    },
}

/// Why a replication factor is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ReplicationFactorReason {
    #[error("Replication factor must be larger than 0, or -1 to use the default value ({requested} given).")]
    NonPositive { requested: i16 },
    #[error(
        "Unable to replicate the partition {requested} time(s): The target replication factor \
         of {requested} cannot be reached because only {} broker(s) are registered: {available_brokers:?}.",
        available_brokers.len()
    )]
    NotEnoughBrokers {
        requested: i16,
        available_brokers: Vec<i32>,
    },
}

/// Why a manual replica assignment is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ReplicaAssignmentReason {
    #[error("The manual partition assignment includes an empty replica list.")]
    EmptyReplicas,
    #[error("The manual partition assignment includes broker {broker_id}, but no such broker is registered (registered: {available_brokers:?}).")]
    UnknownBroker {
        broker_id: i32,
        available_brokers: Vec<i32>,
    },
    #[error("The manual partition assignment includes the broker {broker_id} more than once.")]
    DuplicateBroker { broker_id: i32 },
    #[error("Partitions should be a consecutive 0-based integer sequence; found partition {partition} where {expected} was expected.")]
    NonConsecutive { partition: i32, expected: i32 },
    #[error("All partitions in a manual assignment must have the same replication factor: partition {partition} has {found}, partition 0 has {expected}.")]
    UnevenReplicationFactor {
        partition: i32,
        found: usize,
        expected: usize,
    },
    #[error("Attempted to add {added} additional partition(s), but {given} assignment(s) were specified.")]
    CountMismatch { added: i32, given: usize },
}

/// Why a request is malformed as a whole for one topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum InvalidRequestReason {
    #[error("Duplicate topic name.")]
    DuplicateTopicName,
    #[error("Duplicate topic id.")]
    DuplicateTopicId,
    #[error("A manual partition assignment was specified, but numPartitions was not set to -1.")]
    AssignmentWithPartitionCount,
    #[error(
        "A manual partition assignment was specified, but replicationFactor was not set to -1."
    )]
    AssignmentWithReplicationFactor,
    #[error("Duplicate config key '{key}' in one request.")]
    DuplicateConfigKey { key: String },
    #[error("Creation of internal topic {name} is prohibited.")]
    ReservedTopicName { name: String },
}

/// A request refused by a broker-wide limit rather than by Kafka's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum PolicyViolationReason {
    #[error(
        "Creating {requested} more partition(s) would exceed the limit of {max} new partitions \
         in one request ({already} already accepted); send fewer topics per request."
    )]
    TooManyPartitionsInRequest {
        requested: i64,
        already: i64,
        max: i64,
    },
}

/// A topic config key or value that is refused; the text names the key and what is
/// accepted (Kafka's `ConfigDef` wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ConfigError {
    #[error("Unknown topic config name: {key}")]
    UnknownKey { key: String },
    #[error("Null value not supported for topic configs: {key}")]
    NullValue { key: String },
    #[error("Invalid value {value} for configuration {key}: {expected}")]
    InvalidValue {
        key: String,
        value: String,
        /// The accepted type or range, e.g. "Value must be at least -1".
        expected: String,
    },
}

impl ConfigError {
    /// The config key the error is about.
    pub fn key(&self) -> &str {
        match self {
            ConfigError::UnknownKey { key }
            | ConfigError::NullValue { key }
            | ConfigError::InvalidValue { key, .. } => key,
        }
    }
}
