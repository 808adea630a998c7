//! `strom broker`: runs a broker until SIGINT or SIGTERM, then closes its logs cleanly.

use anyhow::Context;
use clap::Args;
use strom_broker::{BrokerConfig, RawConfig};

#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Broker config file (TOML with Kafka config names, e.g. `num.partitions = 4`).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Override a config key, e.g. `--set num.partitions=4`. Repeatable; beats the file,
    /// loses to STROM_* environment variables.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Log format for stderr.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    pub log_format: String,
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STROM_LOG")
        // openraft narrates every vote and heartbeat at info: keep its warnings only.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    init_logging(&args.log_format);
    let mut raw = RawConfig::new();
    if let Some(path) = &args.config {
        raw.load_file(path)?;
    }
    raw.apply_overrides(&args.overrides)?;
    raw.apply_env(|name| std::env::var(name).ok())?;
    let config = BrokerConfig::from_raw(raw)?;
    // Before any segment opens: the default cap on open segment files follows this limit.
    let fd_limit = strom_storage::raise_fd_soft_limit();
    if config.log_open_files_max > 0 {
        strom_storage::set_open_files_max(config.log_open_files_max);
    }
    tracing::info!(
        ?fd_limit,
        open_segment_files_max = strom_storage::open_files_max(),
        "file descriptor limits"
    );
    if config.cluster.roles.is_controller_only() {
        return strom_broker::run_controller(config, shutdown_signal())
            .await
            .context("cannot start the controller");
    }
    let bound = strom_broker::bind(config)
        .await
        .context("cannot start the broker")?;
    strom_broker::tiering::start(&bound.broker).context("cannot start tiered storage")?;
    bound.serve(shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(s) => s,
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
