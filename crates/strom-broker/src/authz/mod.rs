//! Authorisation: Kafka's ACL model over the bindings in the metadata image.
//!
//! [`Authorizer`] is a pure function of (ACLs, super users, principal, host, operation,
//! resource) so it is tested without sockets. [`Check`] binds it to one request (the image
//! snapshot, the connection's principal and host) and logs every denial. The per-API rules
//! (which operation on which resource, which error code where) live in [`apis`], called from
//! the router with one line per API so handlers stay unaware of ACLs.
//!
//! Rules, as Kafka's `StandardAuthorizer`:
//! - off (`authorizer.class.name` empty): everything allowed;
//! - super users: everything allowed;
//! - a matching DENY (same operation or ALL) beats any ALLOW;
//! - an ALLOW of READ, WRITE, DELETE or ALTER implies DESCRIBE; ALTER_CONFIGS implies
//!   DESCRIBE_CONFIGS; ALL allows every operation;
//! - bindings match by resource (literal name, literal `*`, or a prefix of the name),
//!   principal (exact or `User:*`) and host (exact IP or `*`);
//! - no binding on the resource at all: `allow.everyone.if.no.acl.found`.

pub mod apis;
pub mod bindings;
mod groups;

use std::collections::HashSet;
use std::sync::Arc;

use strom_controller::acl::{operation, pattern_type, permission, resource_type, WILDCARD};
use strom_controller::{AclBinding, AclIndex, MetadataImage};
use tracing::info;

use crate::config::SecuritySettings;

/// The wildcard principal of Kafka's `User` type.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// The authoriser's settings; see the module docs for the rules.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    enabled: bool,
    super_users: HashSet<String>,
    allow_everyone_if_no_acl_found: bool,
}

fn principal_matches(binding: &str, principal: &str) -> bool {
    binding == principal || (binding == WILDCARD_PRINCIPAL && principal.starts_with("User:"))
}

fn host_matches(binding: &str, host: &str) -> bool {
    binding == WILDCARD || binding == host
}

/// Whether an ALLOW binding for `granted` permits `wanted`.
fn allow_implies(granted: i8, wanted: i8) -> bool {
    granted == wanted
        || granted == operation::ALL
        || (wanted == operation::DESCRIBE
            && matches!(
                granted,
                operation::READ | operation::WRITE | operation::DELETE | operation::ALTER
            ))
        || (wanted == operation::DESCRIBE_CONFIGS && granted == operation::ALTER_CONFIGS)
}

/// Whether a DENY binding for `denied` forbids `wanted` (no implication: denying READ does
/// not deny DESCRIBE).
fn deny_covers(denied: i8, wanted: i8) -> bool {
    denied == wanted || denied == operation::ALL
}

impl Authorizer {
    pub fn new(settings: &SecuritySettings) -> Self {
        Authorizer {
            enabled: settings.authorizer_enabled,
            super_users: settings.super_users.iter().cloned().collect(),
            allow_everyone_if_no_acl_found: settings.allow_everyone_if_no_acl_found,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn is_super_user(&self, principal: &str) -> bool {
        self.super_users.contains(principal)
    }

    /// May `principal` connecting from `host` perform `operation` on the resource
    /// `(resource_type, name)`?
    pub fn authorize(
        &self,
        acls: &AclIndex,
        principal: &str,
        host: &str,
        operation: i8,
        resource_type: i8,
        name: &str,
    ) -> bool {
        if !self.enabled || self.super_users.contains(principal) {
            return true;
        }
        let mut any_binding = false;
        let mut allowed = false;
        let mut denied = false;
        acls.for_each_matching(resource_type, name, |binding| {
            any_binding = true;
            if !principal_matches(&binding.principal, principal)
                || !host_matches(&binding.host, host)
            {
                return;
            }
            if binding.permission == permission::DENY && deny_covers(binding.operation, operation) {
                denied = true;
            } else if binding.permission == permission::ALLOW
                && allow_implies(binding.operation, operation)
            {
                allowed = true;
            }
        });
        if denied {
            false
        } else if allowed {
            true
        } else {
            !any_binding && self.allow_everyone_if_no_acl_found
        }
    }

    /// May `principal` perform `operation` on *some* resource of `resource_type` (Kafka's
    /// `authorizeByResourceType`, used for idempotent InitProducerId: WRITE on any topic)?
    /// True when an ALLOW binding applies that no DENY binding covers: a deny on the
    /// literal `*`, on the same literal name, or on a prefix of the allowed pattern.
    pub fn authorize_any(
        &self,
        acls: &AclIndex,
        principal: &str,
        host: &str,
        operation: i8,
        resource_type: i8,
    ) -> bool {
        if !self.enabled || self.super_users.contains(principal) {
            return true;
        }
        let applies = |binding: &AclBinding| {
            principal_matches(&binding.principal, principal) && host_matches(&binding.host, host)
        };
        let mut denies: Vec<&AclBinding> = Vec::new();
        let mut allows: Vec<&AclBinding> = Vec::new();
        let of_type: Vec<&AclBinding> = acls
            .all()
            .into_iter()
            .filter(|b| b.resource_type == resource_type)
            .collect();
        let any_binding = !of_type.is_empty();
        for binding in of_type.into_iter().filter(|b| applies(b)) {
            if binding.permission == permission::DENY && deny_covers(binding.operation, operation) {
                denies.push(binding);
            } else if binding.permission == permission::ALLOW
                && allow_implies(binding.operation, operation)
            {
                allows.push(binding);
            }
        }
        let dominated = |allow: &AclBinding| {
            denies.iter().any(|deny| {
                (deny.pattern_type == pattern_type::LITERAL && deny.resource_name == WILDCARD)
                    || (deny.pattern_type == allow.pattern_type
                        && deny.resource_name == allow.resource_name)
                    || (deny.pattern_type == pattern_type::PREFIXED
                        && allow.resource_name.starts_with(&deny.resource_name))
            })
        };
        if allows.iter().any(|allow| !dominated(allow)) {
            return true;
        }
        !any_binding && self.allow_everyone_if_no_acl_found
    }
}

/// Kafka's name of an operation code, for logs.
pub fn operation_name(code: i8) -> &'static str {
    match code {
        operation::ANY => "ANY",
        operation::ALL => "ALL",
        operation::READ => "READ",
        operation::WRITE => "WRITE",
        operation::CREATE => "CREATE",
        operation::DELETE => "DELETE",
        operation::ALTER => "ALTER",
        operation::DESCRIBE => "DESCRIBE",
        operation::CLUSTER_ACTION => "CLUSTER_ACTION",
        operation::DESCRIBE_CONFIGS => "DESCRIBE_CONFIGS",
        operation::ALTER_CONFIGS => "ALTER_CONFIGS",
        operation::IDEMPOTENT_WRITE => "IDEMPOTENT_WRITE",
        _ => "UNKNOWN",
    }
}

/// Kafka's name of a resource type code, for logs.
pub fn resource_type_name(code: i8) -> &'static str {
    match code {
        resource_type::ANY => "ANY",
        resource_type::TOPIC => "TOPIC",
        resource_type::GROUP => "GROUP",
        resource_type::CLUSTER => "CLUSTER",
        resource_type::TRANSACTIONAL_ID => "TRANSACTIONAL_ID",
        _ => "UNKNOWN",
    }
}

/// The authoriser bound to one request: who is asking, from where, against which ACLs.
pub struct Check<'a> {
    authorizer: &'a Authorizer,
    image: Option<Arc<MetadataImage>>,
    principal: &'a str,
    host: String,
}

impl<'a> Check<'a> {
    /// `image` is taken only when the authoriser is on, so the off path costs nothing.
    pub fn new(
        authorizer: &'a Authorizer,
        image: impl FnOnce() -> Arc<MetadataImage>,
        principal: &'a str,
        peer: std::net::SocketAddr,
    ) -> Self {
        let on = authorizer.enabled() && !authorizer.is_super_user(principal);
        Check {
            authorizer,
            image: on.then(image),
            principal,
            host: if on {
                peer.ip().to_string()
            } else {
                String::new()
            },
        }
    }

    /// False when every check passes (authoriser off, or a super user): hooks skip work.
    pub fn active(&self) -> bool {
        self.image.is_some()
    }

    pub fn image(&self) -> Option<&Arc<MetadataImage>> {
        self.image.as_ref()
    }

    /// Checks and logs a denial.
    pub fn allows(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        let allowed = self.allows_quietly(operation, resource_type, name);
        if !allowed {
            info!(
                principal = %self.principal,
                host = %self.host,
                operation = operation_name(operation),
                resource_type = resource_type_name(resource_type),
                resource = %name,
                "authorization denied"
            );
        }
        allowed
    }

    /// Checks without logging (filtering "all topics" listings, as Kafka does).
    pub fn allows_quietly(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        match &self.image {
            None => true,
            Some(image) => self.authorizer.authorize(
                image.acls(),
                self.principal,
                &self.host,
                operation,
                resource_type,
                name,
            ),
        }
    }

    /// Checks an operation on the cluster resource.
    pub fn allows_cluster(&self, operation: i8) -> bool {
        self.allows(
            operation,
            resource_type::CLUSTER,
            strom_controller::acl::CLUSTER_RESOURCE_NAME,
        )
    }

    /// Checks an operation on some resource of a type; logs a denial.
    pub fn allows_any(&self, operation: i8, resource_type: i8) -> bool {
        let allowed = match &self.image {
            None => true,
            Some(image) => self.authorizer.authorize_any(
                image.acls(),
                self.principal,
                &self.host,
                operation,
                resource_type,
            ),
        };
        if !allowed {
            info!(
                principal = %self.principal,
                host = %self.host,
                operation = operation_name(operation),
                resource_type = resource_type_name(resource_type),
                resource = "(any)",
                "authorization denied"
            );
        }
        allowed
    }
}

#[cfg(test)]
mod encode_tests;
#[cfg(test)]
mod tests;

/// A fetch answered partly by the handler and partly by the authoriser: the handler's frame
/// is read back, the denied topics are appended, and it is encoded again. Only a client
/// that asks for topics it may not read pays for this.
pub fn fetch_merge(
    frame: crate::response::ResponseFrame,
    denied: Vec<kafka_protocol::messages::fetch_response::FetchableTopicResponse>,
    version: i16,
    correlation_id: i32,
) -> crate::handlers::Outcome {
    use bytes::Buf;
    use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
    use kafka_protocol::protocol::Decodable;
    let merged = (|| -> Result<FetchResponse, String> {
        let mut bytes = frame.to_bytes().map_err(|e| e.to_string())?;
        if bytes.remaining() < 4 {
            return Err("short frame".into());
        }
        bytes.advance(4);
        let header_version = crate::response::response_header_version(ApiKey::Fetch, version);
        ResponseHeader::decode(&mut bytes, header_version).map_err(|e| e.to_string())?;
        let mut response = FetchResponse::decode(&mut bytes, version).map_err(|e| e.to_string())?;
        response.responses.extend(denied);
        Ok(response)
    })();
    match merged {
        Ok(response) => {
            match crate::response::encode_frame(ApiKey::Fetch, version, correlation_id, &response) {
                Ok(frame) => crate::handlers::Outcome::Respond(frame),
                Err(error) => crate::handlers::Outcome::Close(error.to_string()),
            }
        }
        Err(error) => {
            tracing::error!(%error, "cannot merge denied topics into a fetch response (bug)");
            crate::handlers::Outcome::Close(error)
        }
    }
}
