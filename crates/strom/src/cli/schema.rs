//! `strom schema list|get|register|delete|config|check`: the schema registry (the Confluent
//! Schema Registry REST API every broker serves on `schema.registry.listener`) from the
//! command line. Tables for people, `--json` for scripts (the registry's own JSON); errors
//! name the subject (or id) and the fix, from Confluent's `error_code`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::output::{print_json, Table};
use super::{fail, CliError};

use super::schema_http::{call, segment, Answer};

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[command(subcommand)]
    pub command: SchemaCommand,
}

/// Where the registry is; flattened into every command.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// The schema registry's URL (any broker's `schema.registry.listener`).
    #[arg(
        long,
        env = "STROM_SCHEMA_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081",
        value_name = "URL"
    )]
    pub registry: String,
    /// Timeout of each request, in milliseconds.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub request_timeout_ms: u64,
    /// HTTP Basic credentials USER:PASSWORD (a SCRAM user of the cluster), for a registry
    /// with `schema.registry.authentication.method=BASIC`.
    #[arg(
        long,
        env = "STROM_SCHEMA_REGISTRY_USER_INFO",
        value_name = "USER:PASSWORD"
    )]
    pub user: Option<String>,
    /// PEM file of the CA certificates that sign an https registry's certificate.
    #[arg(long, env = "STROM_SCHEMA_REGISTRY_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Print the registry's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// List subjects with their latest version, id and type.
    List(ListArgs),
    /// Show one version of a subject (default: latest), or a schema by id.
    Get(GetArgs),
    /// Register a schema (from a file, `-` for stdin) under a subject.
    Register(RegisterArgs),
    /// Delete a subject or one version of it (soft; `--permanent` after a soft delete).
    Delete(DeleteArgs),
    /// Show or set the compatibility level, globally or of one subject.
    Config(ConfigArgs),
    /// Check a schema's compatibility with a subject's version(s) without registering it.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only subjects starting with this.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Include soft-deleted subjects.
    #[arg(long)]
    pub deleted: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The subject (omit with --id).
    #[arg(required_unless_present = "id", conflicts_with = "id")]
    pub subject: Option<String>,
    /// A version number, or `latest`.
    #[arg(long, default_value = "latest", value_name = "VERSION")]
    pub version: String,
    /// A schema id instead of a subject version.
    #[arg(long, value_name = "ID")]
    pub id: Option<i64>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct SchemaSource {
    /// File holding the schema text (`-` reads stdin).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: PathBuf,
    /// AVRO, JSON or PROTOBUF.
    #[arg(long = "type", default_value = "AVRO", value_name = "TYPE")]
    pub schema_type: String,
    /// A reference NAME=SUBJECT:VERSION (repeatable).
    #[arg(long = "reference", value_name = "NAME=SUBJECT:VERSION")]
    pub references: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    pub subject: String,
    #[command(flatten)]
    pub source: SchemaSource,
    /// Normalize the schema before registering it.
    #[arg(long)]
    pub normalize: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub subject: String,
    /// Only this version (a number or `latest`).
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Delete for good (what was soft-deleted first).
    #[arg(long)]
    pub permanent: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The subject (omit for the global level).
    pub subject: Option<String>,
    /// Set the level: BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL,
    /// FULL_TRANSITIVE or NONE.
    #[arg(long, value_name = "LEVEL", conflicts_with = "reset")]
    pub set: Option<String>,
    /// Remove the subject's own level (it follows the global one again).
    #[arg(long, requires = "subject")]
    pub reset: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    pub subject: String,
    #[command(flatten)]
    pub source: SchemaSource,
    /// The version to check against (a number or `latest`); without it, every version
    /// the subject's level asks for.
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn run(args: SchemaArgs) -> anyhow::Result<()> {
    match args.command {
        SchemaCommand::List(args) => list(args).await,
        SchemaCommand::Get(args) => get(args).await,
        SchemaCommand::Register(args) => register(args).await,
        SchemaCommand::Delete(args) => delete(args).await,
        SchemaCommand::Config(args) => config(args).await,
        SchemaCommand::Check(args) => check(args).await,
    }
}

/// What a request is about, to phrase errors.
#[derive(Debug, Clone, Copy)]
enum About<'a> {
    Subject(&'a str),
    Id(i64),
    Global,
}

/// A failed answer as one line naming the subject/id and the fix.
fn explain(answer: &Answer, about: About<'_>, registry: &str) -> anyhow::Error {
    let code = answer.body["error_code"].as_i64().unwrap_or(0);
    let message = answer.body["message"]
        .as_str()
        .unwrap_or("no message")
        .to_string();
    let subject = match about {
        About::Subject(subject) => format!("subject '{subject}'"),
        About::Id(id) => format!("schema id {id}"),
        About::Global => "the registry".to_string(),
    };
    let hint = match code {
        40401 => format!("{subject} does not exist; see `strom schema list` (add --deleted for soft-deleted ones)"),
        401 => format!("the registry at {registry} wants credentials: give a SCRAM user's with --user USER:PASSWORD (or STROM_SCHEMA_REGISTRY_USER_INFO); {message}"),
        40301 => format!("{subject}: {message}; grant the user ACLs on the subject's topic (`strom acl create --allow-principal User:NAME --operation Read,Write --topic TOPIC`)"),
        40402 => format!("{subject} has no such version; see `strom schema get SUBJECT --version latest` or `--json` of `strom schema list`"),
        40403 => format!("{subject}: schema not found; ids are listed by `strom schema list --json`"),
        40404 => format!("{subject} was soft-deleted; delete it for good with `strom schema delete SUBJECT --permanent`, or register a schema again"),
        40405 => format!("{subject} is not soft-deleted; delete it first without --permanent"),
        40406 => format!("{subject}: that version was soft-deleted; use --permanent to remove it for good"),
        40407 => format!("{subject}: that version is not soft-deleted; delete it first without --permanent"),
        40408 => format!("{subject} has no level of its own; it follows the global one (`strom schema config`)"),
        409 => format!("{subject}: the schema is incompatible ({message}); see why with `strom schema check`, or change the level with `strom schema config SUBJECT --set LEVEL`"),
        42201 => format!("{subject}: the schema is invalid: {message}"),
        42202 => format!("{subject}: invalid version: {message}; use a number >= 1 or `latest`"),
        42203 => format!("{subject}: invalid compatibility level: {message}; use BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE or NONE"),
        42205 => format!("{subject}: not permitted in the current mode: {message}; see GET {registry}/mode"),
        42206 => format!("{subject}: other schemas reference it: {message}; delete those first"),
        _ => format!("{subject}: the registry answered {} {message}", answer.status),
    };
    fail(hint)
}

/// The answer's JSON when it succeeded, else the explained error.
async fn ok(
    args: &RegistryArgs,
    method: &str,
    path: &str,
    body: Option<&Value>,
    about: About<'_>,
) -> anyhow::Result<Value> {
    let answer = call(args, method, path, body).await?;
    if answer.status == 200 {
        Ok(answer.body)
    } else {
        Err(explain(&answer, about, &args.registry))
    }
}

fn check_version(version: &str) -> anyhow::Result<()> {
    if version == "latest" || version.parse::<i32>().is_ok_and(|v| v >= 1) {
        Ok(())
    } else {
        Err(usage(format!(
            "--version {version}: expected a number >= 1 or `latest`"
        )))
    }
}

pub fn usage(message: String) -> anyhow::Error {
    anyhow::Error::new(CliError {
        message,
        exit_code: 2,
    })
}

fn schema_type(value: &Value) -> String {
    value["schemaType"].as_str().unwrap_or("AVRO").to_string()
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let registry = &args.registry;
    let mut path = format!("/subjects?deleted={}", args.deleted);
    if let Some(prefix) = &args.prefix {
        path.push_str(&format!("&subjectPrefix={}", segment(prefix)));
    }
    let subjects = ok(registry, "GET", &path, None, About::Global).await?;
    let names: Vec<String> = subjects
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    for name in &names {
        let path = format!(
            "/subjects/{}/versions?deleted={}",
            segment(name),
            args.deleted
        );
        let versions = ok(registry, "GET", &path, None, About::Subject(name)).await?;
        let latest = versions
            .as_array()
            .and_then(|v| v.iter().filter_map(Value::as_i64).max());
        let latest_value = match latest {
            Some(version) => {
                let path = format!(
                    "/subjects/{}/versions/{version}?deleted={}",
                    segment(name),
                    args.deleted
                );
                ok(registry, "GET", &path, None, About::Subject(name)).await?
            }
            None => Value::Null,
        };
        rows.push(json!({
            "subject": name,
            "versions": versions,
            "latest": latest,
            "id": latest_value["id"],
            "schemaType": schema_type(&latest_value),
        }));
    }
    if registry.json {
        return print_json(&json!(rows));
    }
    let mut table = Table::new(&["SUBJECT", "VERSIONS", "LATEST", "ID", "TYPE"]);
    for row in &rows {
        let count = row["versions"].as_array().map_or(0, Vec::len);
        table.row(vec![
            row["subject"].as_str().unwrap_or_default().to_string(),
            count.to_string(),
            row["latest"].to_string(),
            row["id"].to_string(),
            row["schemaType"].as_str().unwrap_or_default().to_string(),
        ]);
    }
    table.print();
    Ok(())
}

/// The schema text, pretty-printed when it is JSON (Avro, JSON Schema).
fn pretty_schema(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| text.to_string())
}

async fn get(args: GetArgs) -> anyhow::Result<()> {
    let registry = &args.registry;
    let value = match (&args.subject, args.id) {
        (_, Some(id)) => {
            let mut value = ok(
                registry,
                "GET",
                &format!("/schemas/ids/{id}"),
                None,
                About::Id(id),
            )
            .await?;
            value["id"] = json!(id);
            value
        }
        (Some(subject), None) => {
            check_version(&args.version)?;
            let path = format!("/subjects/{}/versions/{}", segment(subject), args.version);
            ok(registry, "GET", &path, None, About::Subject(subject)).await?
        }
        (None, None) => return Err(usage("give a SUBJECT or --id".into())),
    };
    if registry.json {
        return print_json(&value);
    }
    let mut table = Table::new(&["SUBJECT", "VERSION", "ID", "TYPE"]);
    table.row(vec![
        value["subject"].as_str().unwrap_or("-").to_string(),
        value
            .get("version")
            .map_or("-".to_string(), Value::to_string),
        value["id"].to_string(),
        schema_type(&value),
    ]);
    table.print();
    if let Some(references) = value["references"].as_array().filter(|r| !r.is_empty()) {
        println!("references:");
        for reference in references {
            println!(
                "  {} = {} version {}",
                reference["name"].as_str().unwrap_or_default(),
                reference["subject"].as_str().unwrap_or_default(),
                reference["version"]
            );
        }
    }
    println!(
        "{}",
        pretty_schema(value["schema"].as_str().unwrap_or_default())
    );
    Ok(())
}

fn read_schema(source: &SchemaSource) -> anyhow::Result<Value> {
    let text = if source.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| fail(format!("cannot read the schema from stdin: {e}")))?;
        text
    } else {
        std::fs::read_to_string(&source.file).map_err(|e| {
            fail(format!(
                "cannot read the schema file {}: {e}",
                source.file.display()
            ))
        })?
    };
    let schema_type = source.schema_type.to_ascii_uppercase();
    if !["AVRO", "JSON", "PROTOBUF"].contains(&schema_type.as_str()) {
        return Err(usage(format!(
            "--type {}: expected AVRO, JSON or PROTOBUF",
            source.schema_type
        )));
    }
    let mut references = Vec::new();
    for reference in &source.references {
        let parsed = reference.split_once('=').and_then(|(name, rest)| {
            let (subject, version) = rest.rsplit_once(':')?;
            let version = version.parse::<i32>().ok()?;
            (!name.is_empty() && !subject.is_empty())
                .then(|| json!({"name": name, "subject": subject, "version": version}))
        });
        references.push(parsed.ok_or_else(|| {
            usage(format!(
                "--reference {reference}: expected NAME=SUBJECT:VERSION, e.g. \
                 com.example.Address=address-value:1"
            ))
        })?);
    }
    let mut body = json!({"schema": text, "schemaType": schema_type});
    if !references.is_empty() {
        body["references"] = json!(references);
    }
    Ok(body)
}

async fn register(args: RegisterArgs) -> anyhow::Result<()> {
    let body = read_schema(&args.source)?;
    let subject = segment(&args.subject);
    let registry = &args.registry;
    let path = format!("/subjects/{subject}/versions?normalize={}", args.normalize);
    let about = About::Subject(&args.subject);
    let registered = ok(registry, "POST", &path, Some(&body), about).await?;
    // The version number, by looking the schema up under the subject.
    let path = format!("/subjects/{subject}?normalize={}", args.normalize);
    let found = ok(registry, "POST", &path, Some(&body), about).await?;
    let answer = json!({
        "subject": args.subject,
        "id": registered["id"],
        "version": found["version"],
    });
    if registry.json {
        return print_json(&answer);
    }
    println!(
        "registered {} version {} (schema id {})",
        args.subject, answer["version"], answer["id"]
    );
    Ok(())
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let subject = segment(&args.subject);
    let path = match &args.version {
        Some(version) => {
            check_version(version)?;
            format!(
                "/subjects/{subject}/versions/{version}?permanent={}",
                args.permanent
            )
        }
        None => format!("/subjects/{subject}?permanent={}", args.permanent),
    };
    let about = About::Subject(&args.subject);
    let deleted = ok(&args.registry, "DELETE", &path, None, about).await?;
    if args.registry.json {
        return print_json(&deleted);
    }
    let how = if args.permanent {
        "permanently"
    } else {
        "soft-"
    };
    let versions = match &deleted {
        Value::Array(versions) => versions
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    println!("{how}deleted {} version(s) {versions}", args.subject);
    Ok(())
}

const LEVELS: &[&str] = &[
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
];

async fn config(args: ConfigArgs) -> anyhow::Result<()> {
    let registry = &args.registry;
    let (path, about) = match &args.subject {
        Some(subject) => (
            format!("/config/{}", segment(subject)),
            About::Subject(subject),
        ),
        None => ("/config".to_string(), About::Global),
    };
    let value = if let Some(level) = &args.set {
        let level = level.to_ascii_uppercase();
        if !LEVELS.contains(&level.as_str()) {
            return Err(usage(format!(
                "--set {level}: expected one of {}",
                LEVELS.join(", ")
            )));
        }
        let body = json!({ "compatibility": level });
        ok(registry, "PUT", &path, Some(&body), about).await?
    } else if args.reset {
        ok(registry, "DELETE", &path, None, about).await?
    } else {
        let path = if args.subject.is_some() {
            format!("{path}?defaultToGlobal=true")
        } else {
            path
        };
        ok(registry, "GET", &path, None, about).await?
    };
    if registry.json {
        return print_json(&value);
    }
    let level = value["compatibilityLevel"]
        .as_str()
        .or_else(|| value["compatibility"].as_str())
        .unwrap_or("-");
    let mut table = Table::new(&["SUBJECT", "COMPATIBILITY"]);
    table.row(vec![
        args.subject.clone().unwrap_or_else(|| "(global)".into()),
        level.to_string(),
    ]);
    table.print();
    Ok(())
}

async fn check(args: CheckArgs) -> anyhow::Result<()> {
    let body = read_schema(&args.source)?;
    let subject = segment(&args.subject);
    let path = match &args.version {
        Some(version) => {
            check_version(version)?;
            format!("/compatibility/subjects/{subject}/versions/{version}?verbose=true")
        }
        None => format!("/compatibility/subjects/{subject}/versions?verbose=true"),
    };
    let about = About::Subject(&args.subject);
    let answer = ok(&args.registry, "POST", &path, Some(&body), about).await?;
    let compatible = answer["is_compatible"].as_bool().unwrap_or(false);
    if args.registry.json {
        print_json(&answer)?;
    } else if compatible {
        println!("compatible with {}", args.subject);
    } else {
        println!("incompatible with {}:", args.subject);
        for message in answer["messages"].as_array().into_iter().flatten() {
            println!("  {}", message.as_str().unwrap_or_default());
        }
    }
    if compatible {
        Ok(())
    } else {
        Err(anyhow::Error::new(CliError {
            message: format!(
                "the schema is not compatible with {} at its compatibility level",
                args.subject
            ),
            exit_code: 1,
        }))
    }
}
