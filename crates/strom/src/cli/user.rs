//! `strom user create|list|delete`: SCRAM users (kafka-configs `--entity-type users
//! --add-config SCRAM-SHA-256=[password=...]`). The password is salted and hashed here
//! (PBKDF2, Kafka's default 4096 iterations); only the salted password is sent.

use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::security::{ScramMechanism, SCRAM_ITERATIONS_DEFAULT};
use strom_client::Admin;

use super::output::{print_json, Table};
use super::{fail, ConnectArgs};

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a SCRAM user, or replace its password.
    Create(CreateArgs),
    /// List SCRAM users with their mechanisms and iteration counts.
    List(ListArgs),
    /// Delete a user's SCRAM credentials.
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub name: String,
    /// The password (visible in the process list: prefer --password-file).
    #[arg(long, conflicts_with = "password_file", value_name = "PASSWORD")]
    pub password: Option<String>,
    /// A file whose first line is the password.
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<std::path::PathBuf>,
    /// SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable; default SCRAM-SHA-256).
    #[arg(long, value_name = "MECHANISM")]
    pub mechanism: Vec<String>,
    /// PBKDF2 iterations (Kafka accepts 4096..=16384).
    #[arg(long, default_value_t = SCRAM_ITERATIONS_DEFAULT, value_name = "N")]
    pub iterations: u32,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only these users.
    pub names: Vec<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub name: String,
    /// Only this mechanism (default: every mechanism the user has).
    #[arg(long, value_name = "MECHANISM")]
    pub mechanism: Vec<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    match args.command {
        UserCommand::Create(args) => create(args).await,
        UserCommand::List(args) => list(args).await,
        UserCommand::Delete(args) => delete(args).await,
    }
}

fn mechanisms(names: &[String]) -> anyhow::Result<Vec<ScramMechanism>> {
    names
        .iter()
        .map(|name| {
            ScramMechanism::from_name(name).ok_or_else(|| {
                fail(format!(
                    "unknown mechanism '{name}': use SCRAM-SHA-256 or SCRAM-SHA-512"
                ))
            })
        })
        .collect()
}

fn read_password(args: &CreateArgs) -> anyhow::Result<String> {
    let password = match (&args.password, &args.password_file) {
        (Some(password), _) => password.clone(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                fail(format!(
                    "cannot read password file {}: {error}",
                    path.display()
                ))
            })?;
            text.lines().next().unwrap_or("").to_string()
        }
        (None, None) => return Err(fail("give the password with --password or --password-file")),
    };
    if password.is_empty() {
        return Err(fail("the password must not be empty"));
    }
    Ok(password)
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let password = read_password(&args)?;
    let mut chosen = mechanisms(&args.mechanism)?;
    if chosen.is_empty() {
        chosen.push(ScramMechanism::Sha256);
    }
    let admin = Admin::new(args.connect.connect().await?);
    for mechanism in &chosen {
        admin
            .upsert_scram_credential(&args.name, *mechanism, password.as_bytes(), args.iterations)
            .await?;
    }
    let names: Vec<&str> = chosen.iter().map(|m| m.name()).collect();
    if args.json {
        return print_json(
            &json!({"user": args.name, "mechanisms": names, "iterations": args.iterations}),
        );
    }
    println!(
        "user '{}' has credentials for {}",
        args.name,
        names.join(", ")
    );
    Ok(())
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let users = admin
        .describe_scram_users((!args.names.is_empty()).then_some(&args.names[..]))
        .await?;
    let mechanism_name = |code: i8| {
        ScramMechanism::from_code(code)
            .map(|m| m.name().to_string())
            .unwrap_or_else(|| format!("unknown({code})"))
    };
    if args.json {
        return print_json(&json!(users
            .iter()
            .map(|(user, credentials)| json!({
                "user": user,
                "credentials": credentials.iter().map(|(m, i)| json!({"mechanism": mechanism_name(*m), "iterations": i})).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>()));
    }
    let mut table = Table::new(&["USER", "MECHANISM", "ITERATIONS"]);
    for (user, credentials) in &users {
        for (mechanism, iterations) in credentials {
            table.row(vec![
                user.clone(),
                mechanism_name(*mechanism),
                iterations.to_string(),
            ]);
        }
    }
    table.print();
    Ok(())
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.connect().await?);
    let mut chosen = mechanisms(&args.mechanism)?;
    if chosen.is_empty() {
        let users = admin
            .describe_scram_users(Some(std::slice::from_ref(&args.name)))
            .await?;
        chosen = users
            .iter()
            .flat_map(|(_, credentials)| credentials.iter())
            .filter_map(|(code, _)| ScramMechanism::from_code(*code))
            .collect();
    }
    if chosen.is_empty() {
        return Err(fail(format!(
            "user '{}' has no SCRAM credentials",
            args.name
        )));
    }
    for mechanism in chosen {
        admin.delete_scram_credential(&args.name, mechanism).await?;
        println!("deleted {} credential of '{}'", mechanism.name(), args.name);
    }
    Ok(())
}
