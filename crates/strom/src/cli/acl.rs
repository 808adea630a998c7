//! `strom acl create|list|delete`, like kafka-acls `--add|--list|--remove`.
//!
//! A binding is principal x host x operation x resource: `create` makes every combination
//! of the `--allow-principal`/`--deny-principal`, `--operation` and resource flags given,
//! as kafka-acls does. `list` and `delete` take the same flags as filters; `delete` refuses
//! to run without any filter unless `--all` says so.

use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::security::codes;
use strom_client::{AclBinding, AclFilter, Admin};

use super::output::{print_json, Table};
use super::{fail, ConnectArgs};

#[derive(Debug, Args)]
pub struct AclArgs {
    #[command(subcommand)]
    pub command: AclCommand,
}

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Add ACLs (every principal x operation x resource combination given).
    Create(CreateArgs),
    /// List ACLs, optionally filtered by resource, principal or operation.
    List(FilterArgs),
    /// Remove the ACLs matching the filters.
    Delete(DeleteArgs),
}

/// The resources of a command; repeatable like kafka-acls.
#[derive(Debug, Args, Default)]
pub struct ResourceArgs {
    /// Topic name (or prefix with --resource-pattern-type prefixed; `*` for all topics).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Vec<String>,
    /// Consumer group id.
    #[arg(long, value_name = "GROUP")]
    pub group: Vec<String>,
    /// The cluster itself (admin operations).
    #[arg(long)]
    pub cluster: bool,
    /// Transactional id.
    #[arg(long, value_name = "ID")]
    pub transactional_id: Vec<String>,
}

impl ResourceArgs {
    /// (resource type code, name) pairs.
    fn resources(&self) -> Vec<(i8, String)> {
        let mut out = Vec::new();
        out.extend(self.topic.iter().map(|t| (2, t.clone())));
        out.extend(self.group.iter().map(|g| (3, g.clone())));
        if self.cluster {
            out.push((4, codes::CLUSTER_NAME.to_string()));
        }
        out.extend(self.transactional_id.iter().map(|t| (5, t.clone())));
        out
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Principal to allow, e.g. User:alice or User:* (repeatable).
    #[arg(long, value_name = "PRINCIPAL")]
    pub allow_principal: Vec<String>,
    /// Principal to deny (repeatable).
    #[arg(long, value_name = "PRINCIPAL")]
    pub deny_principal: Vec<String>,
    /// Host the allow rules apply to (an IP, or * for any).
    #[arg(long, default_value = "*", value_name = "HOST")]
    pub allow_host: String,
    /// Host the deny rules apply to.
    #[arg(long, default_value = "*", value_name = "HOST")]
    pub deny_host: String,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
    /// AlterConfigs, IdempotentWrite or All (repeatable or comma-separated).
    #[arg(long, required = true, value_delimiter = ',', value_name = "OPERATION")]
    pub operation: Vec<String>,
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// literal (the default; `*` matches every name) or prefixed.
    #[arg(long, default_value = "literal", value_name = "TYPE")]
    pub resource_pattern_type: String,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// any (the default: every pattern with exactly this name), match (every binding that
    /// applies to this name: literal, `*` and prefixes), literal or prefixed.
    #[arg(long, default_value = "any", value_name = "TYPE")]
    pub resource_pattern_type: String,
    /// Only bindings of this principal.
    #[arg(long, value_name = "PRINCIPAL")]
    pub principal: Option<String>,
    /// Only bindings for this operation.
    #[arg(long, value_name = "OPERATION")]
    pub operation: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Allow deleting without any resource or principal filter (every ACL).
    #[arg(long)]
    pub all: bool,
}

pub async fn run(args: AclArgs) -> anyhow::Result<()> {
    match args.command {
        AclCommand::Create(args) => create(args).await,
        AclCommand::List(args) => list(args).await,
        AclCommand::Delete(args) => delete(args).await,
    }
}

fn parse_code(table: &[(i8, &'static str)], what: &str, text: &str) -> anyhow::Result<i8> {
    codes::parse(table, text).ok_or_else(|| {
        let names: Vec<&str> = table.iter().map(|(_, n)| *n).collect();
        fail(format!(
            "unknown {what} '{text}': expected one of {}",
            names.join(", ")
        ))
    })
}

fn check_principal(principal: &str) -> anyhow::Result<()> {
    match principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
        _ => Err(fail(format!(
            "principal '{principal}' must be TYPE:NAME, e.g. User:alice or User:*"
        ))),
    }
}

fn binding_json(binding: &AclBinding) -> serde_json::Value {
    json!({
        "resource_type": codes::name(codes::RESOURCE_TYPES, binding.resource_type),
        "resource_name": binding.resource_name,
        "pattern_type": codes::name(codes::PATTERN_TYPES, binding.pattern_type),
        "principal": binding.principal,
        "host": binding.host,
        "operation": codes::name(codes::OPERATIONS, binding.operation),
        "permission": codes::name(codes::PERMISSIONS, binding.permission),
    })
}

fn print_bindings(bindings: &[AclBinding], json_output: bool) -> anyhow::Result<()> {
    if json_output {
        return print_json(&json!(bindings
            .iter()
            .map(binding_json)
            .collect::<Vec<_>>()));
    }
    let mut table = Table::new(&[
        "RESOURCE TYPE",
        "NAME",
        "PATTERN",
        "PRINCIPAL",
        "HOST",
        "OPERATION",
        "PERMISSION",
    ]);
    for binding in bindings {
        table.row(vec![
            codes::name(codes::RESOURCE_TYPES, binding.resource_type),
            binding.resource_name.clone(),
            codes::name(codes::PATTERN_TYPES, binding.pattern_type),
            binding.principal.clone(),
            binding.host.clone(),
            codes::name(codes::OPERATIONS, binding.operation),
            codes::name(codes::PERMISSIONS, binding.permission),
        ]);
    }
    table.print();
    Ok(())
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let resources = args.resources.resources();
    if resources.is_empty() {
        return Err(fail(
            "name a resource: --topic, --group, --cluster or --transactional-id",
        ));
    }
    if args.allow_principal.is_empty() && args.deny_principal.is_empty() {
        return Err(fail("name who: --allow-principal or --deny-principal"));
    }
    let pattern = parse_code(
        codes::PATTERN_TYPES,
        "pattern type",
        &args.resource_pattern_type,
    )?;
    if pattern != 3 && pattern != 4 {
        return Err(fail(
            "--resource-pattern-type for create is literal or prefixed",
        ));
    }
    let operations = args
        .operation
        .iter()
        .map(|op| parse_code(codes::OPERATIONS, "operation", op))
        .collect::<anyhow::Result<Vec<i8>>>()?;
    let mut bindings = Vec::new();
    for (permission, principals, host) in [
        (3, &args.allow_principal, &args.allow_host),
        (2, &args.deny_principal, &args.deny_host),
    ] {
        for principal in principals {
            check_principal(principal)?;
            for operation in &operations {
                for (resource_type, name) in &resources {
                    bindings.push(AclBinding {
                        resource_type: *resource_type,
                        resource_name: name.clone(),
                        pattern_type: pattern,
                        principal: principal.clone(),
                        host: host.clone(),
                        operation: *operation,
                        permission,
                    });
                }
            }
        }
    }
    let admin = Admin::new(args.connect.connect().await?);
    let results = admin.create_acls(&bindings).await?;
    let mut failures = Vec::new();
    let mut created = Vec::new();
    for (binding, result) in bindings.into_iter().zip(results) {
        match result {
            Ok(()) => created.push(binding),
            Err(error) => failures.push(error.to_string()),
        }
    }
    print_bindings(&created, args.json)?;
    if !failures.is_empty() {
        return Err(fail(failures.join("; ")));
    }
    Ok(())
}

fn filters(args: &FilterArgs) -> anyhow::Result<Vec<AclFilter>> {
    let pattern = parse_code(
        codes::PATTERN_TYPES,
        "pattern type",
        &args.resource_pattern_type,
    )?;
    let operation = match &args.operation {
        Some(op) => parse_code(codes::OPERATIONS, "operation", op)?,
        None => 1,
    };
    if let Some(principal) = &args.principal {
        check_principal(principal)?;
    }
    let base = AclFilter {
        pattern_type: pattern,
        principal: args.principal.clone(),
        operation,
        ..AclFilter::any()
    };
    let resources = args.resources.resources();
    if resources.is_empty() {
        return Ok(vec![base]);
    }
    Ok(resources
        .into_iter()
        .map(|(resource_type, name)| AclFilter {
            resource_type,
            resource_name: Some(name),
            ..base.clone()
        })
        .collect())
}

async fn list(args: FilterArgs) -> anyhow::Result<()> {
    let filters = filters(&args)?;
    let admin = Admin::new(args.connect.connect().await?);
    let mut bindings = Vec::new();
    for filter in &filters {
        bindings.extend(admin.describe_acls(filter).await?);
    }
    bindings.sort();
    bindings.dedup();
    print_bindings(&bindings, args.json)
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let filter_args = &args.filter;
    let unfiltered = filter_args.resources.resources().is_empty()
        && filter_args.principal.is_none()
        && filter_args.operation.is_none();
    if unfiltered && !args.all {
        return Err(fail(
            "refusing to delete every ACL: name a resource, --principal or --operation, \
             or pass --all",
        ));
    }
    let filters = filters(filter_args)?;
    let admin = Admin::new(filter_args.connect.connect().await?);
    let mut removed = Vec::new();
    let mut failures = Vec::new();
    for result in admin.delete_acls(&filters).await? {
        match result {
            Ok(bindings) => removed.extend(bindings),
            Err(error) => failures.push(error.to_string()),
        }
    }
    removed.sort();
    removed.dedup();
    print_bindings(&removed, filter_args.json)?;
    if !failures.is_empty() {
        return Err(fail(failures.join("; ")));
    }
    Ok(())
}
