//! `strom connect`: run a Connect worker (`standalone`, `distributed`) or drive one through
//! its REST API (`create`, `list`, `status`, `pause`, `resume`, `restart`, `delete`,
//! `offsets`), like Kafka Connect's scripts and curl. The runtime is `strom-connect`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use strom_client::{Acks, Client, ClientConfig, Producer, ProducerConfig};
use strom_connect::config::read_settings;
use strom_connect::herder::Herder;
use strom_connect::kv::KvLog;
use strom_connect::plugins::Config;
use strom_connect::worker::Worker;
use strom_connect::{distributed, rest, standalone, WorkerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::cli::output::{print_json, Table};
use crate::cli::{fail, parse_key_value, CliError};

#[derive(Debug, Args)]
pub struct ConnectCmdArgs {
    #[command(subcommand)]
    command: ConnectCommand,
}

/// Where the worker's REST API is, and how to print.
#[derive(Debug, Clone, Args)]
struct RestArgs {
    /// A worker's REST API.
    #[arg(
        long,
        env = "STROM_CONNECT_URL",
        default_value = "http://127.0.0.1:8083",
        value_name = "URL"
    )]
    url: String,
    /// Print the REST answer as JSON (for scripts).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum ConnectCommand {
    /// Run a standalone worker with the connectors in CONNECTOR files (.properties, .json
    /// or .toml); source offsets in offset.storage.file.filename.
    Standalone {
        /// Worker settings (Kafka Connect's names: bootstrap.servers, listeners,
        /// offset.storage.file.filename, ...), TOML or .properties.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Overrides bootstrap.servers.
        #[arg(long, value_name = "HOST:PORT")]
        bootstrap_server: Option<String>,
        connectors: Vec<PathBuf>,
    },
    /// Run a distributed worker: group.id, config/offset/status storage topics.
    Distributed {
        /// Worker settings, TOML or .properties.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Create a connector (or update it with --update).
    Create {
        name: String,
        /// A config key=value (repeatable), e.g. connector.class=FileStreamSource.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Config from a file (.properties, .json or .toml); --set wins.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Replace the config of an existing connector instead of failing.
        #[arg(long)]
        update: bool,
        #[command(flatten)]
        rest: RestArgs,
    },
    /// List connectors with their state.
    List {
        #[command(flatten)]
        rest: RestArgs,
    },
    /// A connector's state and its tasks'.
    Status {
        name: String,
        #[command(flatten)]
        rest: RestArgs,
    },
    /// Pause a connector's tasks.
    Pause {
        name: String,
        #[command(flatten)]
        rest: RestArgs,
    },
    /// Resume a paused connector.
    Resume {
        name: String,
        #[command(flatten)]
        rest: RestArgs,
    },
    /// Restart a connector (and its tasks with --include-tasks), or one task.
    Restart {
        name: String,
        #[arg(long)]
        include_tasks: bool,
        #[arg(long)]
        only_failed: bool,
        /// Restart only this task.
        #[arg(long, value_name = "ID")]
        task: Option<u32>,
        #[command(flatten)]
        rest: RestArgs,
    },
    /// Delete a connector.
    Delete {
        name: String,
        #[command(flatten)]
        rest: RestArgs,
    },
    /// A connector's committed offsets (KIP-875).
    Offsets {
        name: String,
        #[command(flatten)]
        rest: RestArgs,
    },
}

pub async fn run(args: ConnectCmdArgs) -> anyhow::Result<()> {
    match args.command {
        ConnectCommand::Standalone {
            config,
            bootstrap_server,
            connectors,
        } => {
            let mut settings = match &config {
                Some(path) => read_settings(path).map_err(|e| fail(e.to_string()))?,
                None => Config::new(),
            };
            if let Some(servers) = bootstrap_server {
                settings.insert("bootstrap.servers".into(), servers);
            }
            let worker_config =
                WorkerConfig::from_settings(&settings).map_err(|e| fail(e.to_string()))?;
            let mut connector_configs = Vec::new();
            for path in &connectors {
                connector_configs.push(read_settings(path).map_err(|e| fail(e.to_string()))?);
            }
            run_worker(worker_config, false, connector_configs).await
        }
        ConnectCommand::Distributed { config } => {
            let settings = read_settings(&config).map_err(|e| fail(e.to_string()))?;
            let worker_config =
                WorkerConfig::from_settings(&settings).map_err(|e| fail(e.to_string()))?;
            run_worker(worker_config, true, Vec::new()).await
        }
        ConnectCommand::Create {
            name,
            set,
            file,
            update,
            rest,
        } => {
            let mut config = match &file {
                Some(path) => read_settings(path).map_err(|e| fail(e.to_string()))?,
                None => Config::new(),
            };
            config.extend(set);
            config.insert("name".into(), name.clone());
            let answer = if update {
                let path = format!("/connectors/{}/config", encode(&name));
                call(&rest, "PUT", &path, Some(json!(config))).await?
            } else {
                call(
                    &rest,
                    "POST",
                    "/connectors",
                    Some(json!({"name": name, "config": config})),
                )
                .await?
            };
            if rest.json {
                return print_json(&answer);
            }
            let tasks = answer["tasks"].as_array().map(Vec::len).unwrap_or(0);
            println!(
                "{} connector {name} ({}, {tasks} task(s))",
                if update { "Updated" } else { "Created" },
                answer["type"].as_str().unwrap_or("?")
            );
            Ok(())
        }
        ConnectCommand::List { rest } => {
            let answer = call(&rest, "GET", "/connectors?expand=status", None).await?;
            if rest.json {
                return print_json(&answer);
            }
            let mut table = Table::new(&["CONNECTOR", "TYPE", "STATE", "TASKS", "WORKER"]);
            if let Some(connectors) = answer.as_object() {
                for (name, item) in connectors {
                    let status = &item["status"];
                    table.row(vec![
                        name.clone(),
                        text(&status["type"]),
                        text(&status["connector"]["state"]),
                        task_summary(&status["tasks"]),
                        text(&status["connector"]["worker_id"]),
                    ]);
                }
            }
            table.print();
            Ok(())
        }
        ConnectCommand::Status { name, rest } => {
            let path = format!("/connectors/{}/status", encode(&name));
            let answer = call(&rest, "GET", &path, None).await?;
            if rest.json {
                return print_json(&answer);
            }
            let mut table = Table::new(&["TASK", "STATE", "WORKER", "TRACE"]);
            table.row(vec![
                "connector".into(),
                text(&answer["connector"]["state"]),
                text(&answer["connector"]["worker_id"]),
                first_line(&answer["connector"]["trace"]),
            ]);
            for task in answer["tasks"].as_array().into_iter().flatten() {
                table.row(vec![
                    text(&task["id"]),
                    text(&task["state"]),
                    text(&task["worker_id"]),
                    first_line(&task["trace"]),
                ]);
            }
            println!("{name} ({})", text(&answer["type"]));
            table.print();
            Ok(())
        }
        ConnectCommand::Pause { name, rest } => {
            let path = format!("/connectors/{}/pause", encode(&name));
            call(&rest, "PUT", &path, None).await?;
            done(&rest, &format!("Pausing connector {name}"))
        }
        ConnectCommand::Resume { name, rest } => {
            let path = format!("/connectors/{}/resume", encode(&name));
            call(&rest, "PUT", &path, None).await?;
            done(&rest, &format!("Resuming connector {name}"))
        }
        ConnectCommand::Restart {
            name,
            include_tasks,
            only_failed,
            task,
            rest,
        } => {
            let path = match task {
                Some(task) => format!("/connectors/{}/tasks/{task}/restart", encode(&name)),
                None => format!(
                    "/connectors/{}/restart?includeTasks={include_tasks}&onlyFailed={only_failed}",
                    encode(&name)
                ),
            };
            let answer = call(&rest, "POST", &path, None).await?;
            if rest.json && !answer.is_null() {
                return print_json(&answer);
            }
            done(&rest, &format!("Restarting connector {name}"))
        }
        ConnectCommand::Delete { name, rest } => {
            let path = format!("/connectors/{}", encode(&name));
            call(&rest, "DELETE", &path, None).await?;
            done(&rest, &format!("Deleted connector {name}"))
        }
        ConnectCommand::Offsets { name, rest } => {
            let path = format!("/connectors/{}/offsets", encode(&name));
            let answer = call(&rest, "GET", &path, None).await?;
            if rest.json {
                return print_json(&answer);
            }
            let mut table = Table::new(&["PARTITION", "OFFSET"]);
            for item in answer["offsets"].as_array().into_iter().flatten() {
                table.row(vec![
                    item["partition"].to_string(),
                    item["offset"].to_string(),
                ]);
            }
            table.print();
            Ok(())
        }
    }
}

fn done(rest: &RestArgs, message: &str) -> anyhow::Result<()> {
    if rest.json {
        print_json(&json!({"ok": true}))
    } else {
        println!("{message}");
        Ok(())
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn first_line(value: &Value) -> String {
    value
        .as_str()
        .map(|t| t.lines().next().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// "2/3 RUNNING" style: how many tasks run of how many.
fn task_summary(tasks: &Value) -> String {
    let tasks = tasks.as_array().cloned().unwrap_or_default();
    let running = tasks.iter().filter(|t| t["state"] == "RUNNING").count();
    format!("{running}/{} running", tasks.len())
}

/// Percent-encodes a connector name for a path segment.
fn encode(name: &str) -> String {
    let mut out = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One HTTP/1.1 exchange with the worker (`Connection: close`); a non-2xx answer becomes
/// its Kafka Connect error message.
async fn call(
    rest: &RestArgs,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let address = rest
        .url
        .trim_end_matches('/')
        .strip_prefix("http://")
        .ok_or_else(|| fail(format!("--url {} must start with http://", rest.url)))?
        .to_string();
    let unreachable = |error: std::io::Error| {
        anyhow::Error::new(CliError {
            message: format!(
                "cannot reach the Connect worker at {}: {error}; start one with `strom connect distributed --config FILE`, or pass --url (or STROM_CONNECT_URL)",
                rest.url
            ),
            exit_code: 3,
        })
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&address).await?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .map_err(|_| {
            fail(format!(
                "the Connect worker at {} did not answer in 60 s",
                rest.url
            ))
        })?
        .map_err(unreachable)?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail("the Connect worker's answer is not HTTP"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail("the Connect worker's answer has no status"))?;
    let value: Value = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| json!(body))
    };
    if (200..300).contains(&status) {
        Ok(value)
    } else {
        let message = value["message"].as_str().unwrap_or(body).to_string();
        Err(fail(format!("{message} (HTTP {status})")))
    }
}

/// Runs a worker until SIGINT or SIGTERM, then stops its tasks (they commit) and leaves the
/// group.
async fn run_worker(
    config: WorkerConfig,
    distributed: bool,
    connectors: Vec<Config>,
) -> anyhow::Result<()> {
    let client = Client::connect(ClientConfig::new(&config.bootstrap_servers)).await?;
    let listener = tokio::net::TcpListener::bind(&config.listener)
        .await
        .with_context(|| format!("bind the REST listener {}", config.listener))?;
    let address = listener.local_addr()?;
    let url = format!("http://{address}");
    let replication = config.replication_factor;
    let (configs, statuses, offsets) = if distributed {
        (
            KvLog::topic(client.clone(), &config.config_topic, 1, replication).await?,
            KvLog::topic(
                client.clone(),
                &config.status_topic,
                config.status_partitions,
                replication,
            )
            .await?,
            KvLog::topic(
                client.clone(),
                &config.offset_topic,
                config.offset_partitions,
                replication,
            )
            .await?,
        )
    } else {
        (
            KvLog::memory(None)?,
            KvLog::memory(None)?,
            KvLog::memory(config.offset_file.clone())?,
        )
    };
    let (configs, statuses, offsets) = (Arc::new(configs), Arc::new(statuses), Arc::new(offsets));
    // The tasks' producer on its own connections: a produce never waits behind another
    // user's long-poll fetch on a shared connection (the file source ran at ~800 records/s).
    let producer = Producer::new(
        Client::connect(client.config().clone()).await?,
        ProducerConfig {
            acks: Acks::All,
            ..ProducerConfig::default()
        },
    )
    .await?;
    let worker_id = address.to_string();
    let worker = Arc::new(Worker::new(
        worker_id.clone(),
        client.clone(),
        Arc::new(producer),
        offsets.clone(),
        statuses.clone(),
    ));
    let herder = Arc::new(Herder {
        configs,
        statuses,
        offsets,
        client: client.clone(),
        worker_id,
    });
    for connector in connectors {
        let name = connector
            .get("name")
            .cloned()
            .ok_or_else(|| fail("a connector file has no name"))?;
        herder
            .put_config(&name, connector, false)
            .await
            .map_err(|e| fail(format!("connector {name}: {e}")))?;
    }
    let server = rest::spawn(listener, herder.clone());
    println!(
        "strom connect {} worker: REST API on {url}",
        if distributed {
            "distributed"
        } else {
            "standalone"
        }
    );
    let (shutdown_sender, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = shutdown_sender.send(true);
    });
    if distributed {
        distributed::run(config, client, worker, herder, url, shutdown).await;
    } else {
        standalone::run(worker, herder, shutdown).await;
    }
    server.abort();
    Ok(())
}

async fn wait_for_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
