//! The `strom` binary: the broker process and the operator CLI.
//!
//! Owns: argument parsing, process wiring, and the CLI commands in [`cli`], which are thin
//! layers over `strom-client`. Must not: hold business logic — that lives in the crates.

mod broker_cmd;
mod cli;
mod connect_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "strom",
    version,
    about = "Kafka-compatible event streaming",
    after_help = "Exit codes: 0 success, 1 the operation failed, 2 bad usage, 3 cluster unreachable."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a broker (single-node cluster on the embedded default).
    Broker(broker_cmd::BrokerArgs),
    /// Create, list, describe, delete topics and change their configs.
    Topic(cli::topic::TopicArgs),
    /// Write records read line by line from stdin or a file.
    Produce(cli::produce::ProduceArgs),
    /// Print records of a topic.
    Consume(cli::consume::ConsumeArgs),
    /// List, describe and delete consumer groups; reset their offsets.
    Group(cli::group::GroupArgs),
    /// List, describe and find hanging transactions; abort a hanging one.
    Txn(cli::txn::TxnArgs),
    /// Measure produce or consume throughput and latency.
    Bench(cli::bench::BenchArgs),
    /// The cluster: id, controller, brokers, status; preferred leader elections.
    Cluster(cli::cluster::ClusterArgs),
    /// Describe and alter topic and broker configs; delete records, log dirs, producers.
    Config(cli::config::ConfigArgs),
    /// TLS helpers: make a development CA and certificates.
    Tls(cli::tls::TlsArgs),
    /// Create, list and delete ACLs (like kafka-acls).
    Acl(cli::acl::AclArgs),
    /// Create, list and delete SCRAM users.
    User(cli::user::UserArgs),
    /// Describe and alter client quotas (byte rates, request percentage).
    Quota(cli::quota::QuotaArgs),
    /// Kafka Connect in the binary: run a worker, or manage its connectors over REST.
    Connect(connect_cmd::ConnectCmdArgs),
    /// The schema registry: list, get, register, delete, config, check.
    Schema(cli::schema::SchemaArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Broker(_)) {
        // The broker installs its own subscriber; CLI commands log to stderr on request.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("STROM_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_writer(std::io::stderr)
            .try_init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Broker(args) => broker_cmd::run(args).await,
            Command::Topic(args) => cli::topic::run(args).await,
            Command::Produce(args) => cli::produce::run(args).await,
            Command::Consume(args) => cli::consume::run(args).await,
            Command::Group(args) => cli::group::run(args).await,
            Command::Txn(args) => cli::txn::run(args).await,
            Command::Bench(args) => cli::bench::run(args).await,
            Command::Cluster(args) => cli::cluster::run(args).await,
            Command::Config(args) => cli::config::run(args).await,
            Command::Tls(args) => cli::tls::run(args).await,
            Command::Acl(args) => cli::acl::run(args).await,
            Command::User(args) => cli::user::run(args).await,
            Command::Quota(args) => cli::quota::run(args).await,
            Command::Connect(args) => connect_cmd::run(args).await,
            Command::Schema(args) => cli::schema::run(args).await,
        }
    });
    // A closed stdout (`strom consume ... | head`) is how the reader says "enough".
    if let Err(error) = &result {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return ExitCode::SUCCESS;
            }
        }
    }
    cli::report(result)
}
