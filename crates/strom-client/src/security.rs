//! Security administration: ACLs (Create/Describe/DeleteAcls), SCRAM users
//! (Describe/AlterUserScramCredentials) and client quotas (Describe/AlterClientQuotas).
//!
//! SCRAM credentials are derived here, as Kafka's admin client does: a random salt and
//! `salted_password = Hi(password, salt, iterations)` (PBKDF2-HMAC) go to the broker; the
//! password never leaves the process.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rand::RngCore;

use crate::admin::Admin;
use crate::connection::{api_key_name, negotiate, Connection};
use crate::error::{ClientError, Result};

/// The versions of the security APIs this module speaks, as (key, min, max).
pub const SECURITY_API_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
];

/// Kafka's numbering of ACL resource types, pattern types, operations and permissions,
/// with the names kafka-acls prints.
pub mod codes {
    pub const RESOURCE_TYPES: &[(i8, &str)] = &[
        (1, "Any"),
        (2, "Topic"),
        (3, "Group"),
        (4, "Cluster"),
        (5, "TransactionalId"),
    ];
    pub const PATTERN_TYPES: &[(i8, &str)] =
        &[(1, "Any"), (2, "Match"), (3, "Literal"), (4, "Prefixed")];
    pub const OPERATIONS: &[(i8, &str)] = &[
        (1, "Any"),
        (2, "All"),
        (3, "Read"),
        (4, "Write"),
        (5, "Create"),
        (6, "Delete"),
        (7, "Alter"),
        (8, "Describe"),
        (9, "ClusterAction"),
        (10, "DescribeConfigs"),
        (11, "AlterConfigs"),
        (12, "IdempotentWrite"),
    ];
    pub const PERMISSIONS: &[(i8, &str)] = &[(1, "Any"), (2, "Deny"), (3, "Allow")];

    /// The name of `code` in `table`, `Unknown(n)` otherwise.
    pub fn name(table: &[(i8, &'static str)], code: i8) -> String {
        table
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, n)| n.to_string())
            .unwrap_or_else(|| format!("Unknown({code})"))
    }

    /// Parses a name case-insensitively, ignoring `_` and `-` (`describe-configs`,
    /// `DESCRIBE_CONFIGS` and `DescribeConfigs` are the same).
    pub fn parse(table: &[(i8, &'static str)], text: &str) -> Option<i8> {
        let wanted: String = text
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        table
            .iter()
            .find(|(_, n)| n.to_ascii_lowercase() == wanted)
            .map(|(c, _)| *c)
    }

    pub const CLUSTER_NAME: &str = "kafka-cluster";
}

/// One ACL binding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// A filter over ACL bindings; `None` and the ANY codes (1) match everything.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Matches every binding.
    pub fn any() -> Self {
        AclFilter {
            resource_type: 1,
            resource_name: None,
            pattern_type: 1,
            principal: None,
            host: None,
            operation: 1,
            permission: 1,
        }
    }
}

/// A SCRAM mechanism as AlterUserScramCredentials numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramMechanism {
    Sha256 = 1,
    Sha512 = 2,
}

impl ScramMechanism {
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "SCRAM-SHA-256" => Some(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Hi(password, salt, iterations) of RFC 5802: PBKDF2 with HMAC of this hash.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let (algorithm, length) = match self {
            ScramMechanism::Sha256 => (ring::pbkdf2::PBKDF2_HMAC_SHA256, 32),
            ScramMechanism::Sha512 => (ring::pbkdf2::PBKDF2_HMAC_SHA512, 64),
        };
        let mut out = vec![0u8; length];
        let iterations = std::num::NonZeroU32::new(iterations.max(1)).expect("at least 1");
        ring::pbkdf2::derive(algorithm, iterations, salt, password, &mut out);
        out
    }
}

/// Kafka's default (and minimum) SCRAM iteration count.
pub const SCRAM_ITERATIONS_DEFAULT: u32 = 4096;
/// Bytes of random salt per credential.
pub const SCRAM_SALT_BYTES: usize = 32;

/// A user's SCRAM credentials: (mechanism code, iterations) pairs.
pub type ScramUser = (String, Vec<(i8, i32)>);

/// One part of a quota entity: `user`, `client-id` or `ip`, with a name or `None` for
/// that type's default.
pub type QuotaEntity = Vec<(String, Option<String>)>;

/// How a DescribeClientQuotas component matches names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaMatch {
    Exact(String),
    Default,
    Any,
}

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn version(connection: &Connection, api_key: ApiKey) -> Result<i16> {
    let &(_, min, max) = SECURITY_API_VERSIONS
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .expect("listed");
    let broker = connection.broker_range(api_key);
    negotiate((min, max), broker).ok_or_else(|| ClientError::UnsupportedApi {
        api: api_key_name(api_key),
        address: connection.address().to_string(),
        client_min: min,
        client_max: max,
        broker,
    })
}

fn broker_error(code: i16, message: Option<&StrBytes>, context: String) -> Option<ClientError> {
    ClientError::from_code(code, message.map(|m| m.as_str()), context)
}

fn binding_text(binding: &AclBinding) -> String {
    format!(
        "{} {} on {} {} ({})",
        codes::name(codes::PERMISSIONS, binding.permission),
        codes::name(codes::OPERATIONS, binding.operation),
        codes::name(codes::RESOURCE_TYPES, binding.resource_type),
        binding.resource_name,
        binding.principal
    )
}

impl Admin {
    async fn security_connection(&self, api_key: ApiKey) -> Result<(Connection, i16)> {
        let connection = self.client().controller_connection().await?;
        let version = version(&connection, api_key)?;
        Ok((connection, version))
    }

    /// Creates ACL bindings; one result per binding, in the order given.
    pub async fn create_acls(&self, bindings: &[AclBinding]) -> Result<Vec<Result<()>>> {
        let (connection, version) = self.security_connection(ApiKey::CreateAcls).await?;
        let request = CreateAclsRequest::default().with_creations(
            bindings
                .iter()
                .map(|b| {
                    AclCreation::default()
                        .with_resource_type(b.resource_type)
                        .with_resource_name(s(&b.resource_name))
                        .with_resource_pattern_type(b.pattern_type)
                        .with_principal(s(&b.principal))
                        .with_host(s(&b.host))
                        .with_operation(b.operation)
                        .with_permission_type(b.permission)
                })
                .collect(),
        );
        let response = connection.send_version(&request, version).await?;
        Ok(bindings
            .iter()
            .enumerate()
            .map(|(index, binding)| match response.results.get(index) {
                None => Err(ClientError::Decode {
                    api: "CreateAclsResponse",
                    version,
                    address: connection.address().to_string(),
                    reason: format!("no result for ACL {index}"),
                }),
                Some(result) => match broker_error(
                    result.error_code,
                    result.error_message.as_ref(),
                    format!("create ACL {}", binding_text(binding)),
                ) {
                    Some(error) => Err(error),
                    None => Ok(()),
                },
            })
            .collect())
    }

    /// The bindings matching `filter`, sorted.
    pub async fn describe_acls(&self, filter: &AclFilter) -> Result<Vec<AclBinding>> {
        let (connection, version) = self.security_connection(ApiKey::DescribeAcls).await?;
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(filter.resource_type)
            .with_resource_name_filter(filter.resource_name.as_deref().map(s))
            .with_pattern_type_filter(filter.pattern_type)
            .with_principal_filter(filter.principal.as_deref().map(s))
            .with_host_filter(filter.host.as_deref().map(s))
            .with_operation(filter.operation)
            .with_permission_type(filter.permission);
        let response = connection.send_version(&request, version).await?;
        if let Some(error) = broker_error(
            response.error_code,
            response.error_message.as_ref(),
            "describe ACLs".into(),
        ) {
            return Err(error);
        }
        let mut bindings: Vec<AclBinding> = response
            .resources
            .iter()
            .flat_map(|resource| {
                resource.acls.iter().map(move |acl| AclBinding {
                    resource_type: resource.resource_type,
                    resource_name: resource.resource_name.to_string(),
                    pattern_type: resource.pattern_type,
                    principal: acl.principal.to_string(),
                    host: acl.host.to_string(),
                    operation: acl.operation,
                    permission: acl.permission_type,
                })
            })
            .collect();
        bindings.sort();
        Ok(bindings)
    }

    /// Deletes every binding matching each filter; per filter, the bindings it removed.
    pub async fn delete_acls(&self, filters: &[AclFilter]) -> Result<Vec<Result<Vec<AclBinding>>>> {
        let (connection, version) = self.security_connection(ApiKey::DeleteAcls).await?;
        let request = DeleteAclsRequest::default().with_filters(
            filters
                .iter()
                .map(|f| {
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(f.resource_type)
                        .with_resource_name_filter(f.resource_name.as_deref().map(s))
                        .with_pattern_type_filter(f.pattern_type)
                        .with_principal_filter(f.principal.as_deref().map(s))
                        .with_host_filter(f.host.as_deref().map(s))
                        .with_operation(f.operation)
                        .with_permission_type(f.permission)
                })
                .collect(),
        );
        let response = connection.send_version(&request, version).await?;
        Ok(response
            .filter_results
            .iter()
            .map(|result| {
                if let Some(error) = broker_error(
                    result.error_code,
                    result.error_message.as_ref(),
                    "delete ACLs".into(),
                ) {
                    return Err(error);
                }
                Ok(result
                    .matching_acls
                    .iter()
                    .map(|acl| AclBinding {
                        resource_type: acl.resource_type,
                        resource_name: acl.resource_name.to_string(),
                        pattern_type: acl.pattern_type,
                        principal: acl.principal.to_string(),
                        host: acl.host.to_string(),
                        operation: acl.operation,
                        permission: acl.permission_type,
                    })
                    .collect())
            })
            .collect())
    }

    /// Users with SCRAM credentials (all of them, or the ones named).
    pub async fn describe_scram_users(&self, users: Option<&[String]>) -> Result<Vec<ScramUser>> {
        let (connection, version) = self
            .security_connection(ApiKey::DescribeUserScramCredentials)
            .await?;
        let request =
            DescribeUserScramCredentialsRequest::default().with_users(users.map(|names| {
                names
                    .iter()
                    .map(|n| UserName::default().with_name(s(n)))
                    .collect()
            }));
        let response = connection.send_version(&request, version).await?;
        if let Some(error) = broker_error(
            response.error_code,
            response.error_message.as_ref(),
            "describe SCRAM users".into(),
        ) {
            return Err(error);
        }
        let mut out = Vec::new();
        for result in &response.results {
            if let Some(error) = broker_error(
                result.error_code,
                result.error_message.as_ref(),
                format!("describe user '{}'", result.user.as_str()),
            ) {
                return Err(error);
            }
            out.push((
                result.user.to_string(),
                result
                    .credential_infos
                    .iter()
                    .map(|info| (info.mechanism, info.iterations))
                    .collect(),
            ));
        }
        Ok(out)
    }

    /// Creates or replaces `user`'s credential for `mechanism`: a fresh random salt and the
    /// salted password are sent, never the password.
    pub async fn upsert_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        password: &[u8],
        iterations: u32,
    ) -> Result<()> {
        let mut salt = vec![0u8; SCRAM_SALT_BYTES];
        rand::thread_rng().fill_bytes(&mut salt);
        let salted = mechanism.salted_password(password, &salt, iterations);
        let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            ScramCredentialUpsertion::default()
                .with_name(s(user))
                .with_mechanism(mechanism as i8)
                .with_iterations(iterations.min(i32::MAX as u32) as i32)
                .with_salt(salt.into())
                .with_salted_password(salted.into()),
        ]);
        self.alter_scram(request, user).await
    }

    /// Removes `user`'s credential for `mechanism`.
    pub async fn delete_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<()> {
        let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![
            ScramCredentialDeletion::default()
                .with_name(s(user))
                .with_mechanism(mechanism as i8),
        ]);
        self.alter_scram(request, user).await
    }

    async fn alter_scram(
        &self,
        request: AlterUserScramCredentialsRequest,
        user: &str,
    ) -> Result<()> {
        let (connection, version) = self
            .security_connection(ApiKey::AlterUserScramCredentials)
            .await?;
        let response = connection.send_version(&request, version).await?;
        for result in &response.results {
            if let Some(error) = broker_error(
                result.error_code,
                result.error_message.as_ref(),
                format!("alter SCRAM credentials of '{user}'"),
            ) {
                return Err(error);
            }
        }
        Ok(())
    }

    /// Quotas of the entities matching `components` (entity type, match), sorted.
    pub async fn describe_client_quotas(
        &self,
        components: &[(String, QuotaMatch)],
        strict: bool,
    ) -> Result<Vec<(QuotaEntity, BTreeMap<String, f64>)>> {
        use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
        let (connection, version) = self
            .security_connection(ApiKey::DescribeClientQuotas)
            .await?;
        let request = DescribeClientQuotasRequest::default()
            .with_strict(strict)
            .with_components(
                components
                    .iter()
                    .map(|(entity_type, matching)| {
                        let (match_type, name) = match matching {
                            QuotaMatch::Exact(name) => (0, Some(s(name))),
                            QuotaMatch::Default => (1, None),
                            QuotaMatch::Any => (2, None),
                        };
                        ComponentData::default()
                            .with_entity_type(s(entity_type))
                            .with_match_type(match_type)
                            .with_match(name)
                    })
                    .collect(),
            );
        let response = connection.send_version(&request, version).await?;
        if let Some(error) = broker_error(
            response.error_code,
            response.error_message.as_ref(),
            "describe client quotas".into(),
        ) {
            return Err(error);
        }
        let mut out: Vec<(QuotaEntity, BTreeMap<String, f64>)> = response
            .entries
            .unwrap_or_default()
            .iter()
            .map(|entry| {
                (
                    entry
                        .entity
                        .iter()
                        .map(|part| {
                            (
                                part.entity_type.to_string(),
                                part.entity_name.as_ref().map(|n| n.to_string()),
                            )
                        })
                        .collect(),
                    entry
                        .values
                        .iter()
                        .map(|value| (value.key.to_string(), value.value))
                        .collect(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Sets (`Some`) or removes (`None`) quota values on one entity.
    pub async fn alter_client_quotas(
        &self,
        entity: &QuotaEntity,
        ops: &[(String, Option<f64>)],
        validate_only: bool,
    ) -> Result<()> {
        use kafka_protocol::messages::alter_client_quotas_request::{
            EntityData, EntryData, OpData,
        };
        let (connection, version) = self.security_connection(ApiKey::AlterClientQuotas).await?;
        let request = AlterClientQuotasRequest::default()
            .with_validate_only(validate_only)
            .with_entries(vec![EntryData::default()
                .with_entity(
                    entity
                        .iter()
                        .map(|(kind, name)| {
                            EntityData::default()
                                .with_entity_type(s(kind))
                                .with_entity_name(name.as_deref().map(s))
                        })
                        .collect(),
                )
                .with_ops(
                    ops.iter()
                        .map(|(key, value)| {
                            OpData::default()
                                .with_key(s(key))
                                .with_value(value.unwrap_or(0.0))
                                .with_remove(value.is_none())
                        })
                        .collect(),
                )]);
        let response = connection.send_version(&request, version).await?;
        for entry in &response.entries {
            if let Some(error) = broker_error(
                entry.error_code,
                entry.error_message.as_ref(),
                "alter client quotas".into(),
            ) {
                return Err(error);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_same_inputs_when_salting_should_be_deterministic_and_hash_sized() {
        // Interoperability with the broker's verifier is checked end to end (a user made
        // with `strom user create` logs in with SASL); here, the shape of Hi().
        let salt = b"W22ZaJ0SNY7soEsUEjb6gQ";
        let salted = ScramMechanism::Sha256.salted_password(b"pencil", salt, 4096);
        assert_eq!(salted.len(), 32);
        let longer = ScramMechanism::Sha512.salted_password(b"pencil", salt, 4096);
        assert_eq!(longer.len(), 64);
        assert_eq!(
            salted,
            ScramMechanism::Sha256.salted_password(b"pencil", salt, 4096)
        );
        assert_ne!(
            salted,
            ScramMechanism::Sha256.salted_password(b"pencil", b"other", 4096)
        );
        assert_ne!(
            salted,
            ScramMechanism::Sha256.salted_password(b"pencil", salt, 4097)
        );
    }

    #[test]
    fn given_names_when_parsed_should_accept_kafka_spellings() {
        assert_eq!(codes::parse(codes::OPERATIONS, "DescribeConfigs"), Some(10));
        assert_eq!(
            codes::parse(codes::OPERATIONS, "describe-configs"),
            Some(10)
        );
        assert_eq!(
            codes::parse(codes::OPERATIONS, "IDEMPOTENT_WRITE"),
            Some(12)
        );
        assert_eq!(codes::parse(codes::PATTERN_TYPES, "prefixed"), Some(4));
        assert_eq!(codes::parse(codes::OPERATIONS, "fly"), None);
        assert_eq!(codes::name(codes::RESOURCE_TYPES, 5), "TransactionalId");
    }
}
