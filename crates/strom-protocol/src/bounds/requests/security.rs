//! Schemas of the security admin APIs: ACLs and client quotas.
//!
//! Generated from kafka-protocol 0.18's `src/messages/*_request.rs` decoders by
//! `generate.py` (in this folder), then reviewed; see the module docs of `bounds`.

use crate::bounds::schema::*;
use kafka_protocol::messages::ApiKey;

/// CreateAcls (`create_acls_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod create_acls {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::CreateAcls,
        versions: Versions::new(1, 3),
        flexible_from: Some(2),
        body: &CREATE_ACLS_REQUEST,
    };

    /// `CreateAclsRequest`.
    const CREATE_ACLS_REQUEST: Struct = Struct {
        name: "CreateAclsRequest",
        fields: &[field(
            "creations",
            Kind::Array(&Kind::Struct(&ACL_CREATION)),
        )],
        tagged: &[],
    };

    /// `AclCreation`.
    const ACL_CREATION: Struct = Struct {
        name: "AclCreation",
        fields: &[
            field("resource_type", INT8),
            field("resource_name", STRING),
            field("resource_pattern_type", INT8),
            field("principal", STRING),
            field("host", STRING),
            field("operation", INT8),
            field("permission_type", INT8),
        ],
        tagged: &[],
    };
}

/// DescribeAcls (`describe_acls_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod describe_acls {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::DescribeAcls,
        versions: Versions::new(1, 3),
        flexible_from: Some(2),
        body: &DESCRIBE_ACLS_REQUEST,
    };

    /// `DescribeAclsRequest`.
    const DESCRIBE_ACLS_REQUEST: Struct = Struct {
        name: "DescribeAclsRequest",
        fields: &[
            field("resource_type_filter", INT8),
            field("resource_name_filter", STRING),
            field("pattern_type_filter", INT8),
            field("principal_filter", STRING),
            field("host_filter", STRING),
            field("operation", INT8),
            field("permission_type", INT8),
        ],
        tagged: &[],
    };
}

/// DeleteAcls (`delete_acls_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod delete_acls {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::DeleteAcls,
        versions: Versions::new(1, 3),
        flexible_from: Some(2),
        body: &DELETE_ACLS_REQUEST,
    };

    /// `DeleteAclsRequest`.
    const DELETE_ACLS_REQUEST: Struct = Struct {
        name: "DeleteAclsRequest",
        fields: &[field(
            "filters",
            Kind::Array(&Kind::Struct(&DELETE_ACLS_FILTER)),
        )],
        tagged: &[],
    };

    /// `DeleteAclsFilter`.
    const DELETE_ACLS_FILTER: Struct = Struct {
        name: "DeleteAclsFilter",
        fields: &[
            field("resource_type_filter", INT8),
            field("resource_name_filter", STRING),
            field("pattern_type_filter", INT8),
            field("principal_filter", STRING),
            field("host_filter", STRING),
            field("operation", INT8),
            field("permission_type", INT8),
        ],
        tagged: &[],
    };
}

/// DescribeClientQuotas (`describe_client_quotas_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod describe_client_quotas {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::DescribeClientQuotas,
        versions: Versions::new(0, 1),
        flexible_from: Some(1),
        body: &DESCRIBE_CLIENT_QUOTAS_REQUEST,
    };

    /// `DescribeClientQuotasRequest`.
    const DESCRIBE_CLIENT_QUOTAS_REQUEST: Struct = Struct {
        name: "DescribeClientQuotasRequest",
        fields: &[
            field("components", Kind::Array(&Kind::Struct(&COMPONENT_DATA))),
            field("strict", BOOL),
        ],
        tagged: &[],
    };

    /// `ComponentData`.
    const COMPONENT_DATA: Struct = Struct {
        name: "ComponentData",
        fields: &[
            field("entity_type", STRING),
            field("match_type", INT8),
            field("_match", STRING),
        ],
        tagged: &[],
    };
}

/// AlterClientQuotas (`alter_client_quotas_request.rs` in kafka-protocol 0.18).
pub(in crate::bounds) mod alter_client_quotas {
    use super::*;

    pub(in crate::bounds) const REQUEST: Message = Message {
        api_key: ApiKey::AlterClientQuotas,
        versions: Versions::new(0, 1),
        flexible_from: Some(1),
        body: &ALTER_CLIENT_QUOTAS_REQUEST,
    };

    /// `AlterClientQuotasRequest`.
    const ALTER_CLIENT_QUOTAS_REQUEST: Struct = Struct {
        name: "AlterClientQuotasRequest",
        fields: &[
            field("entries", Kind::Array(&Kind::Struct(&ENTRY_DATA))),
            field("validate_only", BOOL),
        ],
        tagged: &[],
    };

    /// `EntityData`.
    const ENTITY_DATA: Struct = Struct {
        name: "EntityData",
        fields: &[field("entity_type", STRING), field("entity_name", STRING)],
        tagged: &[],
    };

    /// `EntryData`.
    const ENTRY_DATA: Struct = Struct {
        name: "EntryData",
        fields: &[
            field("entity", Kind::Array(&Kind::Struct(&ENTITY_DATA))),
            field("ops", Kind::Array(&Kind::Struct(&OP_DATA))),
        ],
        tagged: &[],
    };

    /// `OpData`.
    const OP_DATA: Struct = Struct {
        name: "OpData",
        fields: &[
            field("key", STRING),
            field("value", FLOAT64),
            field("remove", BOOL),
        ],
        tagged: &[],
    };
}
