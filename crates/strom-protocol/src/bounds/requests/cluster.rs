//! Schemas of connection set-up and cluster discovery: API versions, SASL, metadata.
//!
//! Generated from kafka-protocol 0.18's `src/messages/*_request.rs` decoders by
//! `generate.py` (in this folder), then reviewed; see the module docs of `bounds`.

use crate::bounds::schema::*;
use kafka_protocol::messages::ApiKey;

/// Metadata (`metadata_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod metadata {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::Metadata,
        versions: Versions::new(0, 13),
        flexible_from: Some(9),
        body: &METADATA_REQUEST,
    };

    /// `MetadataRequest`.
    const METADATA_REQUEST: Struct = Struct {
        name: "MetadataRequest",
        fields: &[
            field(
                "topics",
                Kind::Array(&Kind::Struct(&METADATA_REQUEST_TOPIC)),
            ),
            field("allow_auto_topic_creation", BOOL).since(4),
            field("include_cluster_authorized_operations", BOOL).between(8, 10),
            field("include_topic_authorized_operations", BOOL).since(8),
        ],
        tagged: &[],
    };

    /// `MetadataRequestTopic`.
    const METADATA_REQUEST_TOPIC: Struct = Struct {
        name: "MetadataRequestTopic",
        fields: &[field("topic_id", UUID).since(10), field("name", STRING)],
        tagged: &[],
    };
}

/// ApiVersions (`api_versions_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod api_versions {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::ApiVersions,
        versions: Versions::new(0, 4),
        flexible_from: Some(3),
        body: &API_VERSIONS_REQUEST,
    };

    /// `ApiVersionsRequest`.
    const API_VERSIONS_REQUEST: Struct = Struct {
        name: "ApiVersionsRequest",
        fields: &[
            field("client_software_name", STRING).since(3),
            field("client_software_version", STRING).since(3),
        ],
        tagged: &[],
    };
}

/// DescribeCluster (`describe_cluster_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod describe_cluster {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::DescribeCluster,
        versions: Versions::new(0, 2),
        flexible_from: Some(0),
        body: &DESCRIBE_CLUSTER_REQUEST,
    };

    /// `DescribeClusterRequest`.
    const DESCRIBE_CLUSTER_REQUEST: Struct = Struct {
        name: "DescribeClusterRequest",
        fields: &[
            field("include_cluster_authorized_operations", BOOL),
            field("endpoint_type", INT8).since(1),
            field("include_fenced_brokers", BOOL).since(2),
        ],
        tagged: &[],
    };
}

/// SaslHandshake (`sasl_handshake_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod sasl_handshake {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::SaslHandshake,
        versions: Versions::new(0, 1),
        flexible_from: None,
        body: &SASL_HANDSHAKE_REQUEST,
    };

    /// `SaslHandshakeRequest`.
    const SASL_HANDSHAKE_REQUEST: Struct = Struct {
        name: "SaslHandshakeRequest",
        fields: &[field("mechanism", STRING)],
        tagged: &[],
    };
}

/// SaslAuthenticate (`sasl_authenticate_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod sasl_authenticate {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::SaslAuthenticate,
        versions: Versions::new(0, 2),
        flexible_from: Some(2),
        body: &SASL_AUTHENTICATE_REQUEST,
    };

    /// `SaslAuthenticateRequest`.
    const SASL_AUTHENTICATE_REQUEST: Struct = Struct {
        name: "SaslAuthenticateRequest",
        fields: &[field("auth_bytes", BYTES)],
        tagged: &[],
    };
}
/// DescribeUserScramCredentials (`describe_user_scram_credentials_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod describe_user_scram_credentials {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::DescribeUserScramCredentials,
        versions: Versions::new(0, 0),
        flexible_from: Some(0),
        body: &DESCRIBE_USER_SCRAM_CREDENTIALS_REQUEST,
    };

    /// `DescribeUserScramCredentialsRequest`.
    const DESCRIBE_USER_SCRAM_CREDENTIALS_REQUEST: Struct = Struct {
        name: "DescribeUserScramCredentialsRequest",
        fields: &[field("users", Kind::Array(&Kind::Struct(&USER_NAME)))],
        tagged: &[],
    };

    /// `UserName`.
    const USER_NAME: Struct = Struct {
        name: "UserName",
        fields: &[field("name", STRING)],
        tagged: &[],
    };
}

/// AlterUserScramCredentials (`alter_user_scram_credentials_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod alter_user_scram_credentials {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::AlterUserScramCredentials,
        versions: Versions::new(0, 0),
        flexible_from: Some(0),
        body: &ALTER_USER_SCRAM_CREDENTIALS_REQUEST,
    };

    /// `AlterUserScramCredentialsRequest`.
    const ALTER_USER_SCRAM_CREDENTIALS_REQUEST: Struct = Struct {
        name: "AlterUserScramCredentialsRequest",
        fields: &[
            field(
                "deletions",
                Kind::Array(&Kind::Struct(&SCRAM_CREDENTIAL_DELETION)),
            ),
            field(
                "upsertions",
                Kind::Array(&Kind::Struct(&SCRAM_CREDENTIAL_UPSERTION)),
            ),
        ],
        tagged: &[],
    };

    /// `ScramCredentialDeletion`.
    const SCRAM_CREDENTIAL_DELETION: Struct = Struct {
        name: "ScramCredentialDeletion",
        fields: &[field("name", STRING), field("mechanism", INT8)],
        tagged: &[],
    };

    /// `ScramCredentialUpsertion`.
    const SCRAM_CREDENTIAL_UPSERTION: Struct = Struct {
        name: "ScramCredentialUpsertion",
        fields: &[
            field("name", STRING),
            field("mechanism", INT8),
            field("iterations", INT32),
            field("salt", BYTES),
            field("salted_password", BYTES),
        ],
        tagged: &[],
    };
}
/// DescribeQuorum (`describe_quorum_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod describe_quorum {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::DescribeQuorum,
        versions: Versions::new(0, 2),
        flexible_from: Some(0),
        body: &DESCRIBE_QUORUM_REQUEST,
    };

    /// `DescribeQuorumRequest`.
    const DESCRIBE_QUORUM_REQUEST: Struct = Struct {
        name: "DescribeQuorumRequest",
        fields: &[field("topics", Kind::Array(&Kind::Struct(&TOPIC_DATA)))],
        tagged: &[],
    };

    /// `PartitionData`.
    const PARTITION_DATA: Struct = Struct {
        name: "PartitionData",
        fields: &[field("partition_index", INT32)],
        tagged: &[],
    };

    /// `TopicData`.
    const TOPIC_DATA: Struct = Struct {
        name: "TopicData",
        fields: &[
            field("topic_name", STRING),
            field("partitions", Kind::Array(&Kind::Struct(&PARTITION_DATA))),
        ],
        tagged: &[],
    };
}

/// UnregisterBroker (`unregister_broker_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod unregister_broker {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::UnregisterBroker,
        versions: Versions::new(0, 0),
        flexible_from: Some(0),
        body: &UNREGISTER_BROKER_REQUEST,
    };

    /// `UnregisterBrokerRequest`.
    const UNREGISTER_BROKER_REQUEST: Struct = Struct {
        name: "UnregisterBrokerRequest",
        fields: &[field("broker_id", INT32)],
        tagged: &[],
    };
}
