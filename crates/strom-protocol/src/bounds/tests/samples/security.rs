//! `Sample` for every struct of the security requests (see `requests/security.rs`), generated
//! by `requests/generate.py --samples` from the same decoders as the schemas.

use super::{Gen, Sample};
use kafka_protocol::messages::*;

impl Sample for create_acls_request::AclCreation {
    fn sample(g: &mut Gen, version: i16) -> Self {
        let mut m = Self::default();
        m.resource_type = g.sample(version);
        m.resource_name = g.sample(version);
        m.resource_pattern_type = g.sample(version);
        m.principal = g.sample(version);
        m.host = g.sample(version);
        m.operation = g.sample(version);
        m.permission_type = g.sample(version);
        if version >= 2 {
            m.unknown_tagged_fields = g.unknown_tagged_fields();
        }
        m
    }
}

impl Sample for create_acls_request::CreateAclsRequest {
    fn sample(g: &mut Gen, version: i16) -> Self {
        let mut m = Self::default();
        m.creations = g.sample(version);
        if version >= 2 {
            m.unknown_tagged_fields = g.unknown_tagged_fields();
        }
        m
    }
}

impl Sample for describe_acls_request::DescribeAclsRequest {
    fn sample(g: &mut Gen, version: i16) -> Self {
        let mut m = Self::default();
        m.resource_type_filter = g.sample(version);
        m.resource_name_filter = g.sample(version);
        m.pattern_type_filter = g.sample(version);
        m.principal_filter = g.sample(version);
        m.host_filter = g.sample(version);
        m.operation = g.sample(version);
        m.permission_type = g.sample(version);
        if version >= 2 {
            m.unknown_tagged_fields = g.unknown_tagged_fields();
        }
        m
    }
}

impl Sample for delete_acls_request::DeleteAclsFilter {
    fn sample(g: &mut Gen, version: i16) -> Self {
        let mut m = Self::default();
        m.resource_type_filter = g.sample(version);
        m.resource_name_filter = g.sample(version);
        m.pattern_type_filter = g.sample(version);
        m.principal_filter = g.sample(version);
        m.host_filter = g.sample(version);
        m.operation = g.sample(version);
        m.permission_type = g.sample(version);
        if version >= 2 {
            m.unknown_tagged_fields = g.unknown_tagged_fields();
        }
        m
    }
}

impl Sample for delete_acls_request::DeleteAclsRequest {
    fn sample(g: &mut Gen, version: i16) -> Self {
        let mut m = Self::default();
        m.filters = g.sample(version);
        if version >= 2 {
            m.unknown_tagged_fields = g.unknown_tagged_fields();
        }
        m
    }
}

impl Sample for describe_client_quotas_request::ComponentData {
    fn sample(g: &mut Gen, version: i16) -> Self {
        let mut m = Self::default();
        m.entity_type = g.sample(version);
        m.match_type = g.sample(version);
        m._match = g.sample(version);
        if version >= 1 {
            m.unknown_tagged_fields = g.unknown_tagged_fields();
        }
        m
    }
}

impl Sample for describe_client_quotas_request::DescribeClientQuotasRequest {
    fn sample(g: &mut Gen, version: i16) -> Self {
        let mut m = Self::default();
        m.components = g.sample(version);
        m.strict = g.sample(version);
        if version >= 1 {
            m.unknown_tagged_fields = g.unknown_tagged_fields();
        }
        m
    }
}

impl Sample for alter_client_quotas_request::AlterClientQuotasRequest {
    fn sample(g: &mut Gen, version: i16) -> Self {
        let mut m = Self::default();
        m.entries = g.sample(version);
        m.validate_only = g.sample(version);
        if version >= 1 {
            m.unknown_tagged_fields = g.unknown_tagged_fields();
        }
        m
    }
}

impl Sample for alter_client_quotas_request::EntityData {
    fn sample(g: &mut Gen, version: i16) -> Self {
        let mut m = Self::default();
        m.entity_type = g.sample(version);
        m.entity_name = g.sample(version);
        if version >= 1 {
            m.unknown_tagged_fields = g.unknown_tagged_fields();
        }
        m
    }
}

impl Sample for alter_client_quotas_request::EntryData {
    fn sample(g: &mut Gen, version: i16) -> Self {
        let mut m = Self::default();
        m.entity = g.sample(version);
        m.ops = g.sample(version);
        if version >= 1 {
            m.unknown_tagged_fields = g.unknown_tagged_fields();
        }
        m
    }
}

impl Sample for alter_client_quotas_request::OpData {
    fn sample(g: &mut Gen, version: i16) -> Self {
        let mut m = Self::default();
        m.key = g.sample(version);
        m.value = g.sample(version);
        m.remove = g.sample(version);
        if version >= 1 {
            m.unknown_tagged_fields = g.unknown_tagged_fields();
        }
        m
    }
}
