//! `strom quota describe|alter`: client quotas per user and client id (kafka-configs
//! `--entity-type users|clients`). Keys: producer_byte_rate, consumer_byte_rate (bytes per
//! second), request_percentage (percent of one request thread).

use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::{Admin, QuotaEntity, QuotaMatch};

use super::output::{print_json, Table};
use super::{fail, parse_key_value, ConnectArgs};

#[derive(Debug, Args)]
pub struct QuotaArgs {
    #[command(subcommand)]
    pub command: QuotaCommand,
}

#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// Show quotas (all, or those of the named user / client id).
    Describe(DescribeArgs),
    /// Set or remove quotas of one user, client id, or user + client id.
    Alter(AlterArgs),
}

#[derive(Debug, Args)]
pub struct EntityArgs {
    /// User name (the principal without `User:`).
    #[arg(long, conflicts_with = "user_default", value_name = "USER")]
    pub user: Option<String>,
    /// The default quota of every user without their own.
    #[arg(long)]
    pub user_default: bool,
    /// Client id.
    #[arg(long, conflicts_with = "client_default", value_name = "CLIENT_ID")]
    pub client_id: Option<String>,
    /// The default quota of every client id without its own.
    #[arg(long)]
    pub client_default: bool,
}

impl EntityArgs {
    fn entity(&self) -> QuotaEntity {
        let mut entity = Vec::new();
        if self.user.is_some() || self.user_default {
            entity.push(("user".to_string(), self.user.clone()));
        }
        if self.client_id.is_some() || self.client_default {
            entity.push(("client-id".to_string(), self.client_id.clone()));
        }
        entity
    }
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub entity: EntityArgs,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct AlterArgs {
    #[command(flatten)]
    pub entity: EntityArgs,
    /// KEY=VALUE to set (repeatable or comma-separated), e.g. producer_byte_rate=1048576.
    #[arg(long, value_delimiter = ',', value_name = "KEY=VALUE")]
    pub add_config: Vec<String>,
    /// KEY to remove (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "KEY")]
    pub delete_config: Vec<String>,
    /// Check with the broker without changing anything.
    #[arg(long)]
    pub validate_only: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: QuotaArgs) -> anyhow::Result<()> {
    match args.command {
        QuotaCommand::Describe(args) => describe(args).await,
        QuotaCommand::Alter(args) => alter(args).await,
    }
}

fn entity_text(entity: &QuotaEntity) -> (String, String) {
    let find = |kind: &str| {
        entity
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, name)| name.clone().unwrap_or_else(|| "<default>".to_string()))
            .unwrap_or_default()
    };
    (find("user"), find("client-id"))
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let components: Vec<(String, QuotaMatch)> = args
        .entity
        .entity()
        .into_iter()
        .map(|(kind, name)| {
            let matching = match name {
                Some(name) => QuotaMatch::Exact(name),
                None => QuotaMatch::Default,
            };
            (kind, matching)
        })
        .collect();
    let admin = Admin::new(args.connect.connect().await?);
    let quotas = admin.describe_client_quotas(&components, false).await?;
    if args.json {
        return print_json(&json!(quotas
            .iter()
            .map(|(entity, values)| json!({
                "entity": entity.iter().map(|(k, n)| json!({"type": k, "name": n})).collect::<Vec<_>>(),
                "quotas": values,
            }))
            .collect::<Vec<_>>()));
    }
    let mut table = Table::new(&["USER", "CLIENT ID", "KEY", "VALUE"]);
    for (entity, values) in &quotas {
        let (user, client) = entity_text(entity);
        for (key, value) in values {
            table.row(vec![
                user.clone(),
                client.clone(),
                key.clone(),
                value.to_string(),
            ]);
        }
    }
    table.print();
    Ok(())
}

async fn alter(args: AlterArgs) -> anyhow::Result<()> {
    let entity = args.entity.entity();
    if entity.is_empty() {
        return Err(fail(
            "name the entity: --user/--user-default and/or --client-id/--client-default",
        ));
    }
    let mut ops: Vec<(String, Option<f64>)> = Vec::new();
    for text in &args.add_config {
        let (key, value) = parse_key_value(text).map_err(fail)?;
        let value: f64 = value
            .parse()
            .map_err(|_| fail(format!("quota '{key}' needs a number, got '{value}'")))?;
        ops.push((key, Some(value)));
    }
    ops.extend(args.delete_config.iter().map(|key| (key.clone(), None)));
    if ops.is_empty() {
        return Err(fail(
            "nothing to change: give --add-config KEY=VALUE or --delete-config KEY",
        ));
    }
    let admin = Admin::new(args.connect.connect().await?);
    admin
        .alter_client_quotas(&entity, &ops, args.validate_only)
        .await?;
    let (user, client) = entity_text(&entity);
    println!(
        "{} quotas of user '{}' client id '{}'",
        if args.validate_only {
            "validated"
        } else {
            "altered"
        },
        user,
        client
    );
    Ok(())
}
