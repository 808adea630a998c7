//! CreateAcls: validates each binding (INVALID_REQUEST with a message, per creation), then
//! writes the new ones to the metadata log in one entry. Creating an existing binding
//! succeeds without writing.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_controller::{AclBinding, MetadataRecord};
use strom_protocol::ErrorCode;
use tracing::{info, warn};

use crate::authz::bindings::{commit, validate_binding};
use crate::state::Broker;

fn failed(code: ErrorCode, message: String) -> AclCreationResult {
    AclCreationResult::default()
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

pub async fn handle(
    broker: &Arc<Broker>,
    request: CreateAclsRequest,
    principal: &str,
) -> CreateAclsResponse {
    let image = broker.image();
    let mut results: Vec<AclCreationResult> = Vec::with_capacity(request.creations.len());
    let mut records = Vec::new();
    let mut seen: HashSet<AclBinding> = HashSet::new();
    let mut written: Vec<usize> = Vec::new();
    for creation in &request.creations {
        let binding = AclBinding {
            resource_type: creation.resource_type,
            resource_name: creation.resource_name.to_string(),
            pattern_type: creation.resource_pattern_type,
            principal: creation.principal.to_string(),
            host: creation.host.to_string(),
            operation: creation.operation,
            permission: creation.permission_type,
        };
        match validate_binding(&binding) {
            Err(message) => results.push(failed(ErrorCode::InvalidRequest, message)),
            Ok(()) => {
                if !image.acls().contains(&binding) && seen.insert(binding.clone()) {
                    written.push(results.len());
                    info!(by = %principal, ?binding, "ACL created");
                    records.push(MetadataRecord::Acl { acl: binding });
                }
                results.push(AclCreationResult::default());
            }
        }
    }
    if let Err(message) = commit(broker, records).await {
        warn!(%message, "cannot store ACLs");
        for index in written {
            results[index] = failed(ErrorCode::KafkaStorageError, message.clone());
        }
    }
    CreateAclsResponse::default().with_results(results)
}

/// Without ALTER on the cluster: every creation answers CLUSTER_AUTHORIZATION_FAILED.
pub fn denied(request: &CreateAclsRequest) -> CreateAclsResponse {
    CreateAclsResponse::default().with_results(
        request
            .creations
            .iter()
            .map(|_| {
                AclCreationResult::default()
                    .with_error_code(ErrorCode::ClusterAuthorizationFailed.code())
            })
            .collect(),
    )
}
