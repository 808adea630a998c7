//! The `strom` binary: the broker process and the operator CLI.

mod broker_cmd;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "strom", version, about = "Kafka-compatible event streaming")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a broker (single-node cluster on the embedded default).
    Broker(broker_cmd::BrokerArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Broker(args) => broker_cmd::run(args).await,
    }
}
