//! `strom broker`: starts a broker process. (Being written.)

use clap::Args;

#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Broker config file (TOML, Kafka config names).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Override a config key, e.g. `--set num.partitions=4`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

pub async fn run(_args: BrokerArgs) -> anyhow::Result<()> {
    anyhow::bail!("strom broker is not wired yet")
}
