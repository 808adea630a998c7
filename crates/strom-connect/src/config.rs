//! A worker's settings, under Kafka Connect's worker config names, read from a TOML file
//! (`key = value` with dotted keys quoted or nested: `bootstrap.servers = "..."` or a
//! Java `.properties` file), validated once at start-up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{ConnectError, Result};
use crate::plugins::Config;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// `bootstrap.servers`
    pub bootstrap_servers: String,
    /// `group.id` (distributed)
    pub group_id: String,
    /// `listeners`: the REST listener's `host:port` (an `http://` prefix is accepted).
    pub listener: String,
    /// `config.storage.topic`, `offset.storage.topic`, `status.storage.topic`
    pub config_topic: String,
    pub offset_topic: String,
    pub status_topic: String,
    /// `offset.storage.partitions`, `status.storage.partitions` (the configs topic has one).
    pub offset_partitions: i32,
    pub status_partitions: i32,
    /// `replication.factor` of the three topics (`*.storage.replication.factor`; -1: the
    /// broker's default).
    pub replication_factor: i16,
    /// `offset.storage.file.filename` (standalone; none: offsets kept in memory).
    pub offset_file: Option<PathBuf>,
    /// `session.timeout.ms`, `heartbeat.interval.ms`, `rebalance.timeout.ms`
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: u64,
    pub rebalance_timeout_ms: i32,
    /// `connect.protocol`: `eager`, `compatible` or `sessioned` (the default, as Kafka's).
    pub connect_protocol: ConnectProtocol,
    /// `scheduled.rebalance.max.delay.ms`: how long the tasks of a worker that left stay
    /// unassigned, waiting for it to come back (incremental cooperative protocols only).
    pub scheduled_rebalance_max_delay_ms: u64,
}

/// Kafka Connect's `connect.protocol`: which group protocols a worker offers, most
/// preferred first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectProtocol {
    /// Protocol `default`: every worker stops all its tasks before each rebalance.
    Eager,
    /// KIP-415's incremental cooperative rebalancing (`compatible`, falling back to
    /// `default` while any member speaks only that).
    Compatible,
    /// `sessioned` (KIP-507), then `compatible`, then `default`. Strom's workers send no
    /// internal REST requests to sign, so it rebalances exactly as `compatible`.
    Sessioned,
}

impl ConnectProtocol {
    pub fn parse(text: &str) -> Option<ConnectProtocol> {
        match text.trim().to_ascii_lowercase().as_str() {
            "eager" => Some(ConnectProtocol::Eager),
            "compatible" => Some(ConnectProtocol::Compatible),
            "sessioned" => Some(ConnectProtocol::Sessioned),
            _ => None,
        }
    }

    /// The group protocol names offered, most preferred first.
    pub fn offered(self) -> &'static [&'static str] {
        match self {
            ConnectProtocol::Eager => &["default"],
            ConnectProtocol::Compatible => &["compatible", "default"],
            ConnectProtocol::Sessioned => &["sessioned", "compatible", "default"],
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            bootstrap_servers: "127.0.0.1:9092".into(),
            group_id: "connect-cluster".into(),
            listener: "127.0.0.1:8083".into(),
            config_topic: "connect-configs".into(),
            offset_topic: "connect-offsets".into(),
            status_topic: "connect-status".into(),
            offset_partitions: 25,
            status_partitions: 5,
            replication_factor: -1,
            offset_file: None,
            session_timeout_ms: 10_000,
            heartbeat_interval_ms: 3_000,
            rebalance_timeout_ms: 60_000,
            connect_protocol: ConnectProtocol::Sessioned,
            scheduled_rebalance_max_delay_ms: 300_000,
        }
    }
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut Config) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let full = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&full, value, out);
            }
        }
        toml::Value::String(text) => {
            out.insert(prefix.to_string(), text.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// `key=value` lines (`#` and `!` comments), as Java properties files without escapes.
pub fn parse_properties(text: &str) -> Config {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('!'))
        .filter_map(|line| {
            let at = line.find(['=', ':'])?;
            Some((
                line[..at].trim().to_string(),
                line[at + 1..].trim().to_string(),
            ))
        })
        .collect()
}

/// A settings file as flat `key → value`: TOML (`.toml`), JSON (`.json`: an object, or
/// Kafka Connect's `{"name":..,"config":{..}}`) or properties (anything else).
pub fn read_settings(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|source| ConnectError::Io {
        context: format!("read {}", path.display()),
        source,
    })?;
    let bad = |reason: String| ConnectError::bad_request(format!("{}: {reason}", path.display()));
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            let value: toml::Value = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
            let mut out = BTreeMap::new();
            flatten("", &value, &mut out);
            Ok(out)
        }
        Some("json") => {
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            let mut config = crate::state::config_from_json(value.get("config").unwrap_or(&value));
            if let Some(name) = value.get("name").and_then(|n| n.as_str()) {
                config
                    .entry("name".into())
                    .or_insert_with(|| name.to_string());
            }
            Ok(config)
        }
        _ => Ok(parse_properties(&text)),
    }
}

impl WorkerConfig {
    pub fn from_settings(settings: &Config) -> Result<WorkerConfig> {
        let mut config = WorkerConfig::default();
        let int = |key: &str, min: i64, max: i64| -> Result<Option<i64>> {
            match settings.get(key) {
                None => Ok(None),
                Some(text) => match text.trim().parse::<i64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                    _ => Err(ConnectError::bad_request(format!(
                        "Invalid value {text} for configuration {key}: must be an integer in [{min}, {max}]"
                    ))),
                },
            }
        };
        for (key, value) in settings {
            match key.as_str() {
                "bootstrap.servers" => config.bootstrap_servers = value.clone(),
                "group.id" => config.group_id = value.clone(),
                "listeners" | "rest.listener" => {
                    let first = value.split(',').next().unwrap_or(value).trim();
                    let address = first
                        .strip_prefix("http://")
                        .unwrap_or(first)
                        .trim_end_matches('/');
                    config.listener = address.to_string();
                }
                "config.storage.topic" => config.config_topic = value.clone(),
                "offset.storage.topic" => config.offset_topic = value.clone(),
                "status.storage.topic" => config.status_topic = value.clone(),
                "offset.storage.file.filename" => config.offset_file = Some(PathBuf::from(value)),
                "connect.protocol" => {
                    config.connect_protocol = ConnectProtocol::parse(value).ok_or_else(|| {
                        ConnectError::bad_request(format!(
                            "Invalid value {value} for configuration connect.protocol: String must be one of: eager, compatible, sessioned"
                        ))
                    })?
                }
                _ => {}
            }
        }
        if let Some(n) = int("offset.storage.partitions", 1, 1000)? {
            config.offset_partitions = n as i32;
        }
        if let Some(n) = int("status.storage.partitions", 1, 1000)? {
            config.status_partitions = n as i32;
        }
        for key in [
            "replication.factor",
            "config.storage.replication.factor",
            "offset.storage.replication.factor",
            "status.storage.replication.factor",
        ] {
            if let Some(n) = int(key, -1, 32)? {
                config.replication_factor = n as i16;
            }
        }
        if let Some(n) = int("session.timeout.ms", 1000, 3_600_000)? {
            config.session_timeout_ms = n as i32;
        }
        if let Some(n) = int("heartbeat.interval.ms", 10, 600_000)? {
            config.heartbeat_interval_ms = n as u64;
        }
        if let Some(n) = int("rebalance.timeout.ms", 1000, 3_600_000)? {
            config.rebalance_timeout_ms = n as i32;
        }
        if let Some(n) = int("scheduled.rebalance.max.delay.ms", 0, i32::MAX as i64)? {
            config.scheduled_rebalance_max_delay_ms = n as u64;
        }
        if config.heartbeat_interval_ms >= config.session_timeout_ms as u64 {
            return Err(ConnectError::bad_request(
                "heartbeat.interval.ms must be lower than session.timeout.ms",
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_toml_and_properties_when_read_should_give_the_same_worker_config() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("worker.toml");
        std::fs::write(
            &toml_path,
            "\"bootstrap.servers\" = \"127.0.0.1:1\"\nlisteners = \"http://127.0.0.1:2\"\n[group]\nid = \"g\"\n",
        )
        .unwrap();
        let properties = dir.path().join("worker.properties");
        std::fs::write(
            &properties,
            "# comment\nbootstrap.servers=127.0.0.1:1\nlisteners=http://127.0.0.1:2\ngroup.id = g\n",
        )
        .unwrap();
        let a = WorkerConfig::from_settings(&read_settings(&toml_path).unwrap()).unwrap();
        let b = WorkerConfig::from_settings(&read_settings(&properties).unwrap()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.listener, "127.0.0.1:2");
        assert_eq!(a.group_id, "g");
    }

    #[test]
    fn given_connect_protocol_when_read_should_offer_its_protocols_or_refuse_an_unknown_one() {
        let defaults = WorkerConfig::from_settings(&Config::new()).unwrap();
        assert_eq!(defaults.connect_protocol, ConnectProtocol::Sessioned);
        assert_eq!(
            defaults.connect_protocol.offered(),
            &["sessioned", "compatible", "default"]
        );
        let eager: Config = [("connect.protocol".to_string(), "EAGER".to_string())].into();
        let eager = WorkerConfig::from_settings(&eager).unwrap();
        assert_eq!(eager.connect_protocol.offered(), &["default"]);
        let bad: Config = [("connect.protocol".to_string(), "lazy".to_string())].into();
        let error = WorkerConfig::from_settings(&bad).unwrap_err().to_string();
        assert!(error.contains("connect.protocol"), "{error}");
    }

    #[test]
    fn given_a_bad_number_when_validated_should_name_the_key() {
        let settings: Config = [("session.timeout.ms".to_string(), "soon".to_string())].into();
        let error = WorkerConfig::from_settings(&settings).unwrap_err();
        assert!(error.to_string().contains("session.timeout.ms"), "{error}");
    }
}
