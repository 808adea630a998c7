//! DeleteAcls: every binding matching each filter is removed (one metadata-log entry for
//! the whole request); each filter answers with the bindings it matched.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_controller::{AclBinding, MetadataRecord};
use strom_protocol::ErrorCode;
use tracing::{info, warn};

use crate::authz::bindings::{commit, AclFilter};
use crate::state::Broker;

fn matching(binding: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(binding.resource_type)
        .with_resource_name(StrBytes::from_string(binding.resource_name.clone()))
        .with_pattern_type(binding.pattern_type)
        .with_principal(StrBytes::from_string(binding.principal.clone()))
        .with_host(StrBytes::from_string(binding.host.clone()))
        .with_operation(binding.operation)
        .with_permission_type(binding.permission)
}

pub async fn handle(
    broker: &Arc<Broker>,
    request: DeleteAclsRequest,
    principal: &str,
) -> DeleteAclsResponse {
    let image = broker.image();
    let mut results = Vec::with_capacity(request.filters.len());
    let mut removed: HashSet<AclBinding> = HashSet::new();
    let mut records = Vec::new();
    for wire in &request.filters {
        let filter = AclFilter {
            resource_type: wire.resource_type_filter,
            resource_name: wire.resource_name_filter.as_ref().map(|n| n.to_string()),
            pattern_type: wire.pattern_type_filter,
            principal: wire.principal_filter.as_ref().map(|p| p.to_string()),
            host: wire.host_filter.as_ref().map(|h| h.to_string()),
            operation: wire.operation,
            permission: wire.permission_type,
        };
        if let Err(message) = filter.validate() {
            results.push(
                DeleteAclsFilterResult::default()
                    .with_error_code(ErrorCode::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            );
            continue;
        }
        let mut matched = Vec::new();
        for binding in image.acls().all() {
            if filter.matches(binding) {
                matched.push(matching(binding));
                if removed.insert(binding.clone()) {
                    info!(by = %principal, ?binding, "ACL deleted");
                    records.push(MetadataRecord::RemoveAcl {
                        acl: binding.clone(),
                    });
                }
            }
        }
        results.push(DeleteAclsFilterResult::default().with_matching_acls(matched));
    }
    if let Err(message) = commit(broker, records).await {
        warn!(%message, "cannot delete ACLs");
        for result in &mut results {
            if result.error_code == 0 {
                *result = DeleteAclsFilterResult::default()
                    .with_error_code(ErrorCode::KafkaStorageError.code())
                    .with_error_message(Some(StrBytes::from_string(message.clone())));
            }
        }
    }
    DeleteAclsResponse::default().with_filter_results(results)
}

/// Without ALTER on the cluster: every filter answers CLUSTER_AUTHORIZATION_FAILED.
pub fn denied(request: &DeleteAclsRequest) -> DeleteAclsResponse {
    DeleteAclsResponse::default().with_filter_results(
        request
            .filters
            .iter()
            .map(|_| {
                DeleteAclsFilterResult::default()
                    .with_error_code(ErrorCode::ClusterAuthorizationFailed.code())
            })
            .collect(),
    )
}
