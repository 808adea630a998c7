//! DescribeAcls: the bindings matching one filter, grouped by resource pattern.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;

use crate::authz::bindings::AclFilter;
use crate::state::Broker;

pub fn handle(broker: &Arc<Broker>, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let filter = AclFilter {
        resource_type: request.resource_type_filter,
        resource_name: request.resource_name_filter.map(|n| n.to_string()),
        pattern_type: request.pattern_type_filter,
        principal: request.principal_filter.map(|p| p.to_string()),
        host: request.host_filter.map(|h| h.to_string()),
        operation: request.operation,
        permission: request.permission_type,
    };
    if let Err(message) = filter.validate() {
        return DescribeAclsResponse::default()
            .with_error_code(ErrorCode::InvalidRequest.code())
            .with_error_message(Some(StrBytes::from_string(message)));
    }
    let image = broker.image();
    let mut resources: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for binding in image.acls().all() {
        if !filter.matches(binding) {
            continue;
        }
        resources
            .entry((
                binding.resource_type,
                binding.resource_name.clone(),
                binding.pattern_type,
            ))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(StrBytes::from_string(binding.principal.clone()))
                    .with_host(StrBytes::from_string(binding.host.clone()))
                    .with_operation(binding.operation)
                    .with_permission_type(binding.permission),
            );
    }
    DescribeAclsResponse::default().with_resources(
        resources
            .into_iter()
            .map(|((resource_type, name, pattern_type), acls)| {
                DescribeAclsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(StrBytes::from_string(name))
                    .with_pattern_type(pattern_type)
                    .with_acls(acls)
            })
            .collect(),
    )
}
