//! ACL bindings and filters as CreateAcls, DescribeAcls and DeleteAcls carry them: Kafka's
//! validation rules and filter matching, and the metadata-log write.

use std::sync::Arc;

use strom_controller::acl::{
    operation, pattern_type, permission, resource_type, CLUSTER_RESOURCE_NAME, WILDCARD,
};
use strom_controller::{AclBinding, MetadataRecord};

use crate::state::Broker;

/// Why a binding or filter is refused (answered as INVALID_REQUEST with this message).
pub type Invalid = String;

fn valid_resource_type(code: i8) -> bool {
    matches!(
        code,
        resource_type::TOPIC
            | resource_type::GROUP
            | resource_type::CLUSTER
            | resource_type::TRANSACTIONAL_ID
    )
}

fn valid_operation(code: i8) -> bool {
    (operation::ALL..=operation::IDEMPOTENT_WRITE).contains(&code)
}

/// A principal as Kafka parses it: `Type:name`, both parts non-empty.
fn valid_principal(principal: &str) -> bool {
    principal
        .split_once(':')
        .is_some_and(|(kind, name)| !kind.is_empty() && !name.is_empty())
}

fn valid_host(host: &str) -> bool {
    host == WILDCARD || host.parse::<std::net::IpAddr>().is_ok()
}

/// Checks a binding from CreateAcls.
pub fn validate_binding(binding: &AclBinding) -> Result<(), Invalid> {
    if !valid_resource_type(binding.resource_type) {
        return Err(format!(
            "Invalid resource type {} (expected TOPIC 2, GROUP 3, CLUSTER 4 or TRANSACTIONAL_ID 5)",
            binding.resource_type
        ));
    }
    if !matches!(
        binding.pattern_type,
        pattern_type::LITERAL | pattern_type::PREFIXED
    ) {
        return Err(format!(
            "Invalid pattern type {} (expected LITERAL 3 or PREFIXED 4)",
            binding.pattern_type
        ));
    }
    if binding.resource_name.is_empty() {
        return Err("Resource name must not be empty".into());
    }
    if binding.resource_type == resource_type::CLUSTER
        && (binding.resource_name != CLUSTER_RESOURCE_NAME
            || binding.pattern_type != pattern_type::LITERAL)
    {
        return Err(format!(
            "The only valid name for the CLUSTER resource is the literal {CLUSTER_RESOURCE_NAME}"
        ));
    }
    if !valid_operation(binding.operation) {
        return Err(format!("Invalid operation {}", binding.operation));
    }
    if !matches!(binding.permission, permission::ALLOW | permission::DENY) {
        return Err(format!(
            "Invalid permission type {} (expected DENY 2 or ALLOW 3)",
            binding.permission
        ));
    }
    if !valid_principal(&binding.principal) {
        return Err(format!(
            "Could not parse principal from `{}` (expected Type:name, e.g. User:alice)",
            binding.principal
        ));
    }
    if !valid_host(&binding.host) {
        return Err(format!(
            "Invalid host `{}` (expected * or an IP address)",
            binding.host
        ));
    }
    Ok(())
}

/// A DescribeAcls / DeleteAcls filter.
#[derive(Debug, Clone)]
pub struct AclFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

impl AclFilter {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.resource_type != resource_type::ANY && !valid_resource_type(self.resource_type) {
            return Err(format!(
                "Invalid resource type filter {}",
                self.resource_type
            ));
        }
        if !(pattern_type::ANY..=pattern_type::PREFIXED).contains(&self.pattern_type) {
            return Err(format!("Invalid pattern type filter {}", self.pattern_type));
        }
        if self.operation != operation::ANY && !valid_operation(self.operation) {
            return Err(format!("Invalid operation filter {}", self.operation));
        }
        if !(permission::ANY..=permission::ALLOW).contains(&self.permission) {
            return Err(format!("Invalid permission filter {}", self.permission));
        }
        Ok(())
    }

    /// Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        (self.resource_type == resource_type::ANY || self.resource_type == binding.resource_type)
            && self.matches_pattern(binding)
            && self
                .principal
                .as_ref()
                .is_none_or(|p| *p == binding.principal)
            && self.host.as_ref().is_none_or(|h| *h == binding.host)
            && (self.operation == operation::ANY || self.operation == binding.operation)
            && (self.permission == permission::ANY || self.permission == binding.permission)
    }

    fn matches_pattern(&self, binding: &AclBinding) -> bool {
        let name = self.resource_name.as_deref();
        match self.pattern_type {
            pattern_type::ANY => name.is_none_or(|n| n == binding.resource_name),
            pattern_type::MATCH => name.is_none_or(|n| match binding.pattern_type {
                pattern_type::LITERAL => {
                    binding.resource_name == n || binding.resource_name == WILDCARD
                }
                pattern_type::PREFIXED => n.starts_with(&binding.resource_name),
                _ => false,
            }),
            exact => {
                binding.pattern_type == exact && name.is_none_or(|n| n == binding.resource_name)
            }
        }
    }
}

/// Writes ACL records (creations and deletions) to the metadata log and installs the new
/// image. The error is text for the response's error message.
pub async fn commit(broker: &Arc<Broker>, records: Vec<MetadataRecord>) -> Result<(), String> {
    if records.is_empty() {
        return Ok(());
    }
    crate::admin::write_records(broker, records, |quorum, records| {
        quorum.alter_acls(records)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, pattern: i8) -> AclBinding {
        AclBinding {
            resource_type: resource_type::TOPIC,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: operation::READ,
            permission: permission::ALLOW,
        }
    }

    fn filter(name: Option<&str>, pattern: i8) -> AclFilter {
        AclFilter {
            resource_type: resource_type::ANY,
            resource_name: name.map(str::to_string),
            pattern_type: pattern,
            principal: None,
            host: None,
            operation: operation::ANY,
            permission: permission::ANY,
        }
    }

    #[test]
    fn given_filters_when_matched_should_follow_kafka_pattern_rules() {
        let literal = binding("orders", pattern_type::LITERAL);
        let wildcard = binding("*", pattern_type::LITERAL);
        let prefixed = binding("ord", pattern_type::PREFIXED);
        let any = filter(Some("orders"), pattern_type::ANY);
        assert!(any.matches(&literal) && !any.matches(&wildcard) && !any.matches(&prefixed));
        let matching = filter(Some("orders"), pattern_type::MATCH);
        assert!(matching.matches(&literal) && matching.matches(&wildcard));
        assert!(matching.matches(&prefixed));
        let exact = filter(Some("ord"), pattern_type::PREFIXED);
        assert!(exact.matches(&prefixed) && !exact.matches(&literal));
        let everything = filter(None, pattern_type::ANY);
        assert!(everything.matches(&literal) && everything.matches(&prefixed));
    }

    #[test]
    fn given_bad_bindings_when_validated_should_say_what_is_wrong() {
        assert!(validate_binding(&binding("t", pattern_type::LITERAL)).is_ok());
        let mut bad = binding("t", pattern_type::MATCH);
        assert!(validate_binding(&bad).unwrap_err().contains("pattern type"));
        bad = binding("t", pattern_type::LITERAL);
        bad.principal = "alice".into();
        assert!(validate_binding(&bad).unwrap_err().contains("principal"));
        bad = binding("t", pattern_type::LITERAL);
        bad.resource_type = resource_type::CLUSTER;
        assert!(validate_binding(&bad)
            .unwrap_err()
            .contains("kafka-cluster"));
        bad = binding("t", pattern_type::LITERAL);
        bad.operation = operation::ANY;
        assert!(validate_binding(&bad).is_err());
        bad = binding("t", pattern_type::LITERAL);
        bad.host = "not-an-ip".into();
        assert!(validate_binding(&bad).is_err());
    }
}
