//! Broker configuration: Kafka's config names, one documented table, validated once.
//!
//! Sources, in rising precedence: built-in defaults, the TOML file (`--config`), command-line
//! `--set key=value`, and environment variables `STROM_<KEY>` (dots become underscores,
//! upper case: `num.partitions` -> `STROM_NUM_PARTITIONS`). Every key is listed in
//! [`BROKER_CONFIG_KEYS`] with its default and meaning; an unknown key or a value out of range
//! is an error that names the key and what it accepts.
//!
//! Above these, the dynamic broker configs of the metadata log (a cluster-wide default, then
//! each broker's own) are laid over the static config at run time: see [`dynamic`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use strom_storage::{LogConfig, TimestampType};
use thiserror::Error;

use crate::listeners::{parse_listeners, ListenerConfig};
use crate::tls::{ClientAuth, TlsSettings};

pub mod dynamic;
mod keys;
mod remote_log;
pub use keys::BROKER_CONFIG_KEYS;
pub use remote_log::RemoteLogSettings;

/// Where a config value came from (Kafka's DescribeConfigs `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Default,
    StaticBroker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Password,
}

impl ConfigType {
    /// Kafka's DescribeConfigs `config_type` code.
    pub fn code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Password => 9,
        }
    }
}

/// One broker config key: name, default, type and documentation.
#[derive(Debug, Clone, Copy)]
pub struct ConfigKey {
    pub name: &'static str,
    pub default: &'static str,
    pub config_type: ConfigType,
    pub doc: &'static str,
}

const fn key(
    name: &'static str,
    default: &'static str,
    config_type: ConfigType,
    doc: &'static str,
) -> ConfigKey {
    ConfigKey {
        name,
        default,
        config_type,
        doc,
    }
}

const LONG_MAX: &str = "9223372036854775807";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("unknown broker config `{key}`{hint}")]
    UnknownKey { key: String, hint: String },
    #[error("`{key}` must be of the form key=value, got `{given}`")]
    BadOverride { key: String, given: String },
    #[error("config `{key}` = `{value}` is invalid: {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: String,
    },
}

/// Raw key -> value strings with their source, before typing.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    values: BTreeMap<String, (String, ConfigSource)>,
}

fn find_key(name: &str) -> Option<&'static ConfigKey> {
    BROKER_CONFIG_KEYS.iter().find(|k| k.name == name)
}

fn unknown(name: &str) -> ConfigError {
    let close = BROKER_CONFIG_KEYS
        .iter()
        .find(|k| k.name.contains(name) || name.contains(k.name.rsplit('.').next().unwrap_or("")));
    ConfigError::UnknownKey {
        key: name.to_string(),
        hint: close
            .map(|k| format!(" (did you mean `{}`?)", k.name))
            .unwrap_or_else(|| " (see the configuration table in README.md)".to_string()),
    }
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(table) => {
            for (k, v) in table {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        toml::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        toml::Value::Array(items) => {
            let joined: Vec<String> = items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.push((prefix.to_string(), joined.join(",")));
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

impl RawConfig {
    /// Defaults only.
    pub fn new() -> Self {
        RawConfig::default()
    }

    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        find_key(key).ok_or_else(|| unknown(key))?;
        self.values.insert(
            key.to_string(),
            (value.to_string(), ConfigSource::StaticBroker),
        );
        Ok(())
    }

    /// Reads a TOML file. Dotted keys (`num.partitions = 4`) and quoted keys
    /// (`"num.partitions" = 4`) both work.
    pub fn load_file(&mut self, path: &std::path::Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let value: toml::Value = text.parse().map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let mut pairs = Vec::new();
        flatten("", &value, &mut pairs);
        for (k, v) in pairs {
            self.set(&k, &v)?;
        }
        Ok(())
    }

    /// Applies `key=value` overrides from the command line.
    pub fn apply_overrides(&mut self, overrides: &[String]) -> Result<(), ConfigError> {
        for given in overrides {
            let (k, v) = given
                .split_once('=')
                .ok_or_else(|| ConfigError::BadOverride {
                    key: given.clone(),
                    given: given.clone(),
                })?;
            self.set(k.trim(), v.trim())?;
        }
        Ok(())
    }

    /// Applies `STROM_<KEY>` environment variables for every known key.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for config_key in BROKER_CONFIG_KEYS {
            if let Some(value) = env(&env_name(config_key.name)) {
                self.set(config_key.name, &value)?;
            }
        }
        Ok(())
    }

    fn get(&self, key: &str) -> (&str, ConfigSource) {
        match self.values.get(key) {
            Some((v, source)) => (v.as_str(), *source),
            None => (
                find_key(key).expect("key in table").default,
                ConfigSource::Default,
            ),
        }
    }
}

/// `num.partitions` -> `STROM_NUM_PARTITIONS`.
pub fn env_name(key: &str) -> String {
    format!("STROM_{}", key.replace(['.', '-'], "_").to_uppercase())
}

fn parse_number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    raw: &RawConfig,
    key: &str,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    let (value, _) = raw.get(key);
    let bad = || ConfigError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        expected: format!("a whole number in {min}..={max}"),
    };
    let parsed: T = value.trim().parse().map_err(|_| bad())?;
    if parsed < min || parsed > max {
        return Err(bad());
    }
    Ok(parsed)
}

fn parse_bool(raw: &RawConfig, key: &str) -> Result<bool, ConfigError> {
    let (value, _) = raw.get(key);
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::BadValue {
            key: key.to_string(),
            value: value.to_string(),
            expected: "true or false".to_string(),
        }),
    }
}

/// Parses `http.listener`: `host:port` with a numeric IP (or `localhost`), empty = off.
fn parse_http_listener(value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value
        .replace("localhost", "127.0.0.1")
        .parse()
        .map(Some)
        .map_err(|_| ConfigError::BadValue {
            key: "http.listener".into(),
            value: value.to_string(),
            expected: "ip:port, e.g. 127.0.0.1:9644, or empty to turn the HTTP endpoint off".into(),
        })
}

/// The authoriser (`authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`)
/// and quota measurement (`quota.window.*`) settings.
#[derive(Debug, Clone, Default)]
pub struct SecuritySettings {
    pub authorizer_enabled: bool,
    pub super_users: Vec<String>,
    pub allow_everyone_if_no_acl_found: bool,
    pub quota_window_num: u32,
    pub quota_window_size_ms: u64,
}

impl SecuritySettings {
    fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let class = raw.get("authorizer.class.name").0.trim();
        let authorizer_enabled = match class {
            "" => false,
            "strom"
            | "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            | "kafka.security.authorizer.AclAuthorizer" => true,
            other => return Err(ConfigError::BadValue {
                key: "authorizer.class.name".into(),
                value: other.into(),
                expected:
                    "empty (off), strom or org.apache.kafka.metadata.authorizer.StandardAuthorizer"
                        .into(),
            }),
        };
        let super_users = raw
            .get("super.users")
            .0
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>();
        if let Some(bad) = super_users.iter().find(|p| !p.contains(':')) {
            return Err(ConfigError::BadValue {
                key: "super.users".into(),
                value: bad.clone(),
                expected: "principals as Type:name separated by semicolons (User:admin;User:bob)"
                    .into(),
            });
        }
        Ok(SecuritySettings {
            authorizer_enabled,
            super_users,
            allow_everyone_if_no_acl_found: parse_bool(raw, "allow.everyone.if.no.acl.found")?,
            quota_window_num: parse_number::<u32>(raw, "quota.window.num", 2, 1000)?,
            quota_window_size_ms: parse_number::<u64>(raw, "quota.window.size.seconds", 1, 3600)?
                * 1000,
        })
    }
}

/// The typed, validated broker config.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    raw: RawConfig,
    pub node_id: i32,
    /// Kafka listeners, in the order given.
    /// inter-broker traffic.
    pub listeners: Vec<ListenerConfig>,
    /// `inter.broker.listener.name`, resolved: the listener other brokers reach this one on
    /// (replica fetches, transaction markers); the first listener unless set.
    pub inter_broker_listener: String,
    /// How this broker connects to the others on that listener.
    pub inter_broker: InterBrokerSettings,
    /// TLS settings, present when a listener uses SSL or SASL_SSL.
    pub tls: Option<TlsSettings>,
    pub tls_reload_check_interval_ms: i64,
    /// `sasl.enabled.mechanisms`, in the order offered.
    pub sasl_mechanisms: Vec<crate::sasl::Mechanism>,
    pub log_dirs: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics: bool,
    pub delete_topic_enable: bool,
    pub log: LogConfig,
    pub min_insync_replicas: i32,
    pub retention_check_interval_ms: i64,
    pub socket_request_max_bytes: usize,
    pub max_connections: usize,
    /// `log.open.files.max`: segment files held open at once (0: half the soft fd limit).
    pub log_open_files_max: usize,
    pub max_connections_per_ip: usize,
    pub connections_max_reauth_ms: i64,
    pub connections_max_idle_ms: i64,
    pub fetch_max_bytes: i32,
    /// `max.incremental.fetch.session.cache.slots`: fetch sessions kept (0 = none).
    pub fetch_session_slots: usize,
    /// `num.recovery.threads.per.data.dir`: threads opening partition logs in parallel.
    pub recovery_threads: usize,
    pub fetch_max_wait_ms_cap: i64,
    pub group: GroupSettings,
    pub transaction: TransactionSettings,
    pub cluster: ClusterSettings,
    /// The HTTP endpoint's address; `None` = off (`http.listener` empty).
    pub http_listener: Option<SocketAddr>,
    /// Slow-request log threshold; 0 = off.
    pub log_slow_request_ms: i64,
    /// Tiered storage (`remote.log.*`).
    pub remote_log: RemoteLogSettings,
    /// ACL authoriser and quota settings.
    pub security: SecuritySettings,
}

/// What a node runs (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    /// Serves Kafka clients and holds partition replicas.
    pub broker: bool,
    /// Is a voter of the controller quorum.
    pub controller: bool,
}

impl ProcessRoles {
    pub const COMBINED: ProcessRoles = ProcessRoles {
        broker: true,
        controller: true,
    };

    /// A broker that is no voter: it observes the metadata log as a Raft learner.
    pub fn is_broker_only(self) -> bool {
        self.broker && !self.controller
    }

    pub fn is_controller_only(self) -> bool {
        self.controller && !self.broker
    }
}

impl std::fmt::Display for ProcessRoles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match (self.broker, self.controller) {
            (true, true) => "broker,controller",
            (true, false) => "broker",
            (false, _) => "controller",
        })
    }
}

/// Cluster membership and replication settings.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// `controller.quorum.voters`: empty for the single-node file-backed metadata log.
    pub voters: String,
    /// `process.roles`, as given or derived (a node in the voter list is combined, one
    /// outside it broker-only; without voters, the single-node combined default).
    pub roles: ProcessRoles,
    /// `metadata.listener`: where a broker-only node receives the metadata log
    /// (`host:port`); `None` on a voter.
    pub metadata_listener: Option<String>,
    pub rack: Option<String>,
    pub heartbeat_interval_ms: i64,
    pub session_timeout_ms: i64,
    pub replica_lag_time_max_ms: i64,
    pub replica_fetch_wait_max_ms: i32,
    pub replica_fetch_max_bytes: i32,
    /// `follower.replication.throttled.rate`: bytes/s for reassignment catch-up, 0 = off.
    pub follower_throttled_rate: u64,
    /// How often the active controller rebalances leadership; `None` when
    /// `auto.leader.rebalance.enable` is false.
    pub leader_rebalance_interval_ms: Option<u64>,
    /// `replica.selector.class` is the rack-aware selector: leaders send consumers in
    /// another rack to an in-sync replica in theirs (KIP-392).
    pub rack_aware_read_replicas: bool,
}

impl ClusterSettings {
    fn from_raw(raw: &RawConfig, node_id: i32) -> Result<Self, ConfigError> {
        let heartbeat_interval_ms =
            parse_number::<i64>(raw, "broker.heartbeat.interval.ms", 10, i32::MAX as i64)?;
        let session_timeout_ms =
            parse_number::<i64>(raw, "broker.session.timeout.ms", 100, i32::MAX as i64)?;
        if session_timeout_ms <= heartbeat_interval_ms {
            return Err(ConfigError::BadValue {
                key: "broker.session.timeout.ms".into(),
                value: session_timeout_ms.to_string(),
                expected: format!(
                    "more than broker.heartbeat.interval.ms ({heartbeat_interval_ms})"
                ),
            });
        }
        let rack = raw.get("broker.rack").0.trim().to_string();
        let voters = raw.get("controller.quorum.voters").0.trim().to_string();
        let (roles, metadata_listener) = process_roles(raw, node_id, &voters)?;
        Ok(ClusterSettings {
            voters,
            roles,
            metadata_listener,
            rack: (!rack.is_empty()).then_some(rack),
            heartbeat_interval_ms,
            session_timeout_ms,
            replica_lag_time_max_ms: parse_number::<i64>(
                raw,
                "replica.lag.time.max.ms",
                1,
                i64::MAX / 4,
            )?,
            replica_fetch_wait_max_ms: parse_number::<i32>(
                raw,
                "replica.fetch.wait.max.ms",
                0,
                i32::MAX,
            )?,
            replica_fetch_max_bytes: parse_number::<i32>(
                raw,
                "replica.fetch.max.bytes",
                1,
                i32::MAX,
            )?,
            follower_throttled_rate: parse_number::<u64>(
                raw,
                "follower.replication.throttled.rate",
                0,
                i64::MAX as u64,
            )?,
            rack_aware_read_replicas: match raw.get("replica.selector.class").0.trim() {
                "" => false,
                RACK_AWARE_REPLICA_SELECTOR | "RackAwareReplicaSelector" => true,
                other => {
                    return Err(ConfigError::BadValue {
                        key: "replica.selector.class".into(),
                        value: other.to_string(),
                        expected: format!("{RACK_AWARE_REPLICA_SELECTOR}, or empty"),
                    })
                }
            },
            leader_rebalance_interval_ms: {
                let seconds = parse_number::<u64>(
                    raw,
                    "leader.imbalance.check.interval.seconds",
                    1,
                    i32::MAX as u64,
                )?;
                parse_bool(raw, "auto.leader.rebalance.enable")?.then_some(seconds * 1000)
            },
        })
    }
}

/// How this broker connects to other brokers (replica fetches, transaction markers): the
/// inter-broker listener's protocol and, per protocol, what the client side needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterBrokerSettings {
    pub security: crate::listeners::SecurityProtocol,
    /// CA certificates other brokers' certificates chain to (`ssl.truststore.location`);
    /// set when the protocol uses TLS.
    pub truststore: Option<PathBuf>,
    /// The broker's own key and certificate chain (`ssl.keystore.location`), presented to
    /// brokers that ask for a client certificate.
    pub keystore: Option<PathBuf>,
    pub verify_hostname: bool,
    /// (mechanism, username, password); set when the protocol uses SASL.
    pub sasl: Option<(String, String, String)>,
}

impl InterBrokerSettings {
    fn from_raw(
        raw: &RawConfig,
        security: crate::listeners::SecurityProtocol,
    ) -> Result<Self, ConfigError> {
        let bad = |key: &str, value: &str, expected: String| ConfigError::BadValue {
            key: key.to_string(),
            value: value.to_string(),
            expected,
        };
        let path = |key: &str| {
            let value = raw.get(key).0.trim();
            (!value.is_empty()).then(|| PathBuf::from(value))
        };
        let truststore = path("ssl.truststore.location");
        if security.uses_tls() && truststore.is_none() {
            return Err(bad(
                "ssl.truststore.location",
                "",
                "a PEM file of the CA certificates other brokers' certificates chain to (the \
                 inter-broker listener uses TLS, so this broker is a TLS client of the others)"
                    .into(),
            ));
        }
        let algorithm = raw.get("ssl.endpoint.identification.algorithm").0.trim();
        let verify_hostname = match algorithm.to_ascii_lowercase().as_str() {
            "https" => true,
            "" | "none" => false,
            _ => {
                return Err(bad(
                    "ssl.endpoint.identification.algorithm",
                    algorithm,
                    "https, or empty (none) to check the certificate chain only".into(),
                ))
            }
        };
        let sasl = if security.uses_sasl() {
            let mechanism = raw.get("sasl.mechanism.inter.broker.protocol").0.trim();
            if !matches!(mechanism, "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512") {
                return Err(bad(
                    "sasl.mechanism.inter.broker.protocol",
                    mechanism,
                    "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512".into(),
                ));
            }
            let username = raw.get("inter.broker.sasl.username").0.trim();
            let password = raw.get("inter.broker.sasl.password").0;
            if username.is_empty() || password.is_empty() {
                return Err(bad(
                    "inter.broker.sasl.username",
                    username,
                    "a user and inter.broker.sasl.password (the inter-broker listener uses \
                     SASL, so brokers authenticate to each other)"
                        .into(),
                ));
            }
            Some((
                mechanism.to_string(),
                username.to_string(),
                password.to_string(),
            ))
        } else {
            None
        };
        Ok(InterBrokerSettings {
            security,
            truststore: security.uses_tls().then_some(truststore).flatten(),
            keystore: security
                .uses_tls()
                .then(|| path("ssl.keystore.location"))
                .flatten(),
            verify_hostname,
            sasl,
        })
    }
}

/// Kafka's rack-aware replica selector, the one `replica.selector.class` accepts.
pub const RACK_AWARE_REPLICA_SELECTOR: &str =
    "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// `process.roles` and `metadata.listener`, checked against `node.id` and the voter list.
fn process_roles(
    raw: &RawConfig,
    node_id: i32,
    voters: &str,
) -> Result<(ProcessRoles, Option<String>), ConfigError> {
    let bad = |key: &str, value: &str, expected: String| ConfigError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        expected,
    };
    let listed = if voters.is_empty() {
        None
    } else {
        let parsed = strom_controller::raft::parse_voters(voters).map_err(|error| {
            bad(
                "controller.quorum.voters",
                voters,
                format!("id@host:port entries, comma-separated ({error})"),
            )
        })?;
        Some(parsed.iter().any(|voter| voter.node_id == node_id))
    };
    let text = raw.get("process.roles").0.trim();
    let roles = if text.is_empty() {
        match listed {
            None | Some(true) => ProcessRoles::COMBINED,
            Some(false) => ProcessRoles {
                broker: true,
                controller: false,
            },
        }
    } else {
        let mut roles = ProcessRoles {
            broker: false,
            controller: false,
        };
        for role in text.split(',').map(str::trim) {
            match role {
                "broker" => roles.broker = true,
                "controller" => roles.controller = true,
                _ => {
                    return Err(bad(
                        "process.roles",
                        text,
                        "broker, controller or broker,controller".into(),
                    ))
                }
            }
        }
        roles
    };
    match (listed, roles.controller) {
        (None, _) if roles != ProcessRoles::COMBINED => {
            return Err(bad(
                "process.roles",
                text,
                "a broker-only or controller-only node needs controller.quorum.voters (a \
                 single node is broker,controller)"
                    .into(),
            ))
        }
        (Some(false), true) => {
            return Err(bad(
                "process.roles",
                text,
                format!(
                    "node.id {node_id} is not in controller.quorum.voters, so this node \
                     cannot be a controller: add it there, or set process.roles=broker"
                ),
            ))
        }
        (Some(true), false) => {
            return Err(bad(
                "process.roles",
                text,
                format!(
                    "node.id {node_id} is in controller.quorum.voters, so this node must be \
                     a controller (a broker-only node needs an id no voter has)"
                ),
            ))
        }
        _ => {}
    }
    let listener = raw.get("metadata.listener").0.trim();
    if !roles.is_broker_only() {
        return Ok((roles, None));
    }
    let valid = listener
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    let unspecified = listener
        .rsplit_once(':')
        .is_some_and(|(host, _)| matches!(host, "0.0.0.0" | "[::]" | "::"));
    if !valid || unspecified {
        return Err(bad(
            "metadata.listener",
            listener,
            "host:port where the controllers reach this broker-only node to send it the \
             metadata log, e.g. 127.0.0.1:9193 (port 0 picks a free one; not 0.0.0.0)"
                .into(),
        ));
    }
    Ok((roles, Some(listener.to_string())))
}

/// Transaction coordinator settings (the `transaction.*` and `transactional.*` keys).
#[derive(Debug, Clone)]
pub struct TransactionSettings {
    pub state_log_num_partitions: i32,
    pub state_log_replication_factor: i16,
    pub state_log_segment_bytes: i32,
    pub max_timeout_ms: i32,
    pub id_expiration_ms: i64,
    pub abort_timed_out_interval_ms: i64,
    pub remove_expired_interval_ms: i64,
}

impl TransactionSettings {
    fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        Ok(TransactionSettings {
            state_log_num_partitions: parse_number::<i32>(
                raw,
                "transaction.state.log.num.partitions",
                1,
                10_000,
            )?,
            state_log_replication_factor: parse_number::<i16>(
                raw,
                "transaction.state.log.replication.factor",
                1,
                i16::MAX,
            )?,
            state_log_segment_bytes: parse_number::<i32>(
                raw,
                "transaction.state.log.segment.bytes",
                1024,
                i32::MAX,
            )?,
            max_timeout_ms: parse_number::<i32>(raw, "transaction.max.timeout.ms", 1, i32::MAX)?,
            id_expiration_ms: parse_number::<i64>(
                raw,
                "transactional.id.expiration.ms",
                1,
                i32::MAX as i64,
            )?,
            abort_timed_out_interval_ms: parse_number::<i64>(
                raw,
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                1,
                i32::MAX as i64,
            )?,
            remove_expired_interval_ms: parse_number::<i64>(
                raw,
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                1,
                i32::MAX as i64,
            )?,
        })
    }
}

/// Group coordinator settings (the `group.*` and `offsets.*` keys).
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_segment_bytes: i32,
    pub offsets_retention_minutes: i64,
    pub offset_metadata_max_bytes: usize,
    pub initial_rebalance_delay_ms: i64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_size: usize,
    pub consumer_heartbeat_interval_ms: i32,
    pub consumer_session_timeout_ms: i32,
    pub consumer_assignors: Vec<String>,
}

impl GroupSettings {
    fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let min_session_timeout_ms =
            parse_number::<i32>(raw, "group.min.session.timeout.ms", 0, i32::MAX)?;
        let max_session_timeout_ms =
            parse_number::<i32>(raw, "group.max.session.timeout.ms", 0, i32::MAX)?;
        if max_session_timeout_ms < min_session_timeout_ms {
            return Err(ConfigError::BadValue {
                key: "group.max.session.timeout.ms".into(),
                value: max_session_timeout_ms.to_string(),
                expected: format!(
                    "at least group.min.session.timeout.ms ({min_session_timeout_ms})"
                ),
            });
        }
        let assignors_raw = raw.get("group.consumer.assignors").0;
        let consumer_assignors: Vec<String> = assignors_raw
            .split(',')
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        if consumer_assignors.is_empty()
            || consumer_assignors
                .iter()
                .any(|a| a != "uniform" && a != "range")
        {
            return Err(ConfigError::BadValue {
                key: "group.consumer.assignors".into(),
                value: assignors_raw.to_string(),
                expected: "a non-empty list of: uniform, range".into(),
            });
        }
        Ok(GroupSettings {
            offsets_topic_num_partitions: parse_number::<i32>(
                raw,
                "offsets.topic.num.partitions",
                1,
                10_000,
            )?,
            offsets_topic_segment_bytes: parse_number::<i32>(
                raw,
                "offsets.topic.segment.bytes",
                1024,
                i32::MAX,
            )?,
            offsets_topic_replication_factor: parse_number::<i16>(
                raw,
                "offsets.topic.replication.factor",
                1,
                i16::MAX,
            )?,
            offsets_retention_minutes: parse_number::<i64>(
                raw,
                "offsets.retention.minutes",
                1,
                i32::MAX as i64,
            )?,
            offset_metadata_max_bytes: parse_number::<usize>(
                raw,
                "offset.metadata.max.bytes",
                0,
                i32::MAX as usize,
            )?,
            initial_rebalance_delay_ms: parse_number::<i64>(
                raw,
                "group.initial.rebalance.delay.ms",
                0,
                i32::MAX as i64,
            )?,
            min_session_timeout_ms,
            max_session_timeout_ms,
            max_size: parse_number::<usize>(raw, "group.max.size", 1, i32::MAX as usize)?,
            consumer_heartbeat_interval_ms: parse_number::<i32>(
                raw,
                "group.consumer.heartbeat.interval.ms",
                1,
                i32::MAX,
            )?,
            consumer_session_timeout_ms: parse_number::<i32>(
                raw,
                "group.consumer.session.timeout.ms",
                1,
                i32::MAX,
            )?,
            consumer_assignors,
        })
    }
}

fn sasl_mechanisms(raw: &RawConfig) -> Result<Vec<crate::sasl::Mechanism>, ConfigError> {
    raw.get("sasl.enabled.mechanisms")
        .0
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|name| {
            crate::sasl::Mechanism::from_name(name).ok_or_else(|| ConfigError::BadValue {
                key: "sasl.enabled.mechanisms".into(),
                value: name.into(),
                expected: "PLAIN, SCRAM-SHA-256 and/or SCRAM-SHA-512".into(),
            })
        })
        .collect()
}

fn tls_settings(raw: &RawConfig) -> Result<TlsSettings, ConfigError> {
    let keystore = raw.get("ssl.keystore.location").0.trim();
    if keystore.is_empty() {
        return Err(ConfigError::BadValue {
            key: "ssl.keystore.location".into(),
            value: String::new(),
            expected: "a PEM file with the key and certificate chain (an SSL or SASL_SSL listener needs one; `strom tls gen-dev-certs` makes one for trying it out)".into(),
        });
    }
    let keystore_type = raw.get("ssl.keystore.type").0;
    if keystore_type != "PEM" {
        return Err(ConfigError::BadValue {
            key: "ssl.keystore.type".into(),
            value: keystore_type.into(),
            expected: "PEM (JKS and PKCS12 are not supported; convert with openssl)".into(),
        });
    }
    let client_auth_raw = raw.get("ssl.client.auth").0;
    let client_auth = ClientAuth::parse(client_auth_raw).ok_or_else(|| ConfigError::BadValue {
        key: "ssl.client.auth".into(),
        value: client_auth_raw.into(),
        expected: "none, requested or required".into(),
    })?;
    let truststore = raw.get("ssl.truststore.location").0.trim();
    if client_auth != ClientAuth::None && truststore.is_empty() {
        return Err(ConfigError::BadValue {
            key: "ssl.truststore.location".into(),
            value: String::new(),
            expected: format!(
                "a PEM file of CA certificates (ssl.client.auth={client_auth_raw} needs one)"
            ),
        });
    }
    let protocols: Vec<String> = raw
        .get("ssl.enabled.protocols")
        .0
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(unknown) = protocols
        .iter()
        .find(|p| *p != "TLSv1.2" && *p != "TLSv1.3")
    {
        return Err(ConfigError::BadValue {
            key: "ssl.enabled.protocols".into(),
            value: unknown.clone(),
            expected: "TLSv1.2 and/or TLSv1.3".into(),
        });
    }
    let principal_mapping_rules = raw.get("ssl.principal.mapping.rules").0.to_string();
    if let Err(error) = crate::tls::PrincipalMapper::parse(&principal_mapping_rules) {
        return Err(ConfigError::BadValue {
            key: "ssl.principal.mapping.rules".into(),
            value: principal_mapping_rules,
            expected: format!("DEFAULT or RULE:pattern/replacement/[L|U] entries ({error})"),
        });
    }
    Ok(TlsSettings {
        principal_mapping_rules,
        keystore: PathBuf::from(keystore),
        truststore: (!truststore.is_empty()).then(|| PathBuf::from(truststore)),
        client_auth,
        protocols,
    })
}

impl BrokerConfig {
    pub fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let listeners = parse_listeners(
            raw.get("listeners").0,
            raw.get("advertised.listeners").0,
            raw.get("listener.security.protocol.map").0,
        )?;
        let inter_broker_listener = match raw.get("inter.broker.listener.name").0.trim() {
            "" => listeners[0].name.clone(),
            name if listeners.iter().any(|l| l.name == name) => name.to_string(),
            name => {
                return Err(ConfigError::BadValue {
                    key: "inter.broker.listener.name".into(),
                    value: name.to_string(),
                    expected: format!(
                        "the name of one of this broker's listeners ({})",
                        listeners
                            .iter()
                            .map(|l| l.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            }
        };
        let tls = if listeners.iter().any(|l| l.security.uses_tls()) {
            Some(tls_settings(&raw)?)
        } else {
            None
        };
        let timestamp_type = match raw.get("log.message.timestamp.type").0 {
            "CreateTime" => TimestampType::CreateTime,
            "LogAppendTime" => TimestampType::LogAppendTime,
            other => {
                return Err(ConfigError::BadValue {
                    key: "log.message.timestamp.type".into(),
                    value: other.into(),
                    expected: "CreateTime or LogAppendTime".into(),
                })
            }
        };
        let log = LogConfig {
            segment_bytes: parse_number::<u64>(&raw, "log.segment.bytes", 14, i32::MAX as u64)?,
            segment_ms: parse_number::<i64>(&raw, "log.roll.ms", 1, i64::MAX)?,
            segment_index_bytes: parse_number::<u32>(
                &raw,
                "log.index.size.max.bytes",
                8,
                i32::MAX as u32,
            )?,
            index_interval_bytes: parse_number::<u32>(
                &raw,
                "log.index.interval.bytes",
                0,
                i32::MAX as u32,
            )?,
            retention_ms: parse_number::<i64>(&raw, "log.retention.ms", -1, i64::MAX)?,
            retention_bytes: parse_number::<i64>(&raw, "log.retention.bytes", -1, i64::MAX)?,
            flush_messages: parse_number::<i64>(&raw, "log.flush.interval.messages", 1, i64::MAX)?,
            flush_ms: parse_number::<i64>(&raw, "log.flush.interval.ms", 0, i64::MAX)?,
            max_message_bytes: parse_number::<u32>(&raw, "message.max.bytes", 0, i32::MAX as u32)?,
            message_timestamp_type: timestamp_type,
            producer_id_expiration_ms: parse_number::<i64>(
                &raw,
                "producer.id.expiration.ms",
                1,
                i32::MAX as i64,
            )?,
            // Topic-level settings without a broker key here (compaction) keep Kafka's defaults.
            ..LogConfig::default()
        };
        Ok(BrokerConfig {
            node_id: parse_number::<i32>(&raw, "node.id", 0, i32::MAX)?,
            inter_broker: InterBrokerSettings::from_raw(
                &raw,
                listeners
                    .iter()
                    .find(|l| l.name == inter_broker_listener)
                    .expect("resolved above")
                    .security,
            )?,
            listeners,
            inter_broker_listener,
            tls,
            sasl_mechanisms: sasl_mechanisms(&raw)?,
            tls_reload_check_interval_ms: parse_number::<i64>(
                &raw,
                "ssl.reload.check.interval.ms",
                100,
                i64::MAX,
            )?,
            log_dirs: PathBuf::from(raw.get("log.dirs").0.split(',').next().unwrap_or("").trim()),
            num_partitions: parse_number::<i32>(&raw, "num.partitions", 1, 10_000)?,
            default_replication_factor: parse_number::<i16>(
                &raw,
                "default.replication.factor",
                1,
                i16::MAX,
            )?,
            auto_create_topics: parse_bool(&raw, "auto.create.topics.enable")?,
            delete_topic_enable: parse_bool(&raw, "delete.topic.enable")?,
            log,
            min_insync_replicas: parse_number::<i32>(&raw, "min.insync.replicas", 1, i32::MAX)?,
            retention_check_interval_ms: parse_number::<i64>(
                &raw,
                "log.retention.check.interval.ms",
                1,
                i64::MAX,
            )?,
            socket_request_max_bytes: parse_number::<usize>(
                &raw,
                "socket.request.max.bytes",
                1024,
                i32::MAX as usize,
            )?,
            max_connections: parse_number::<usize>(&raw, "max.connections", 1, 1_000_000)?,
            log_open_files_max: parse_number::<usize>(&raw, "log.open.files.max", 0, 100_000_000)?,
            max_connections_per_ip: parse_number::<usize>(
                &raw,
                "max.connections.per.ip",
                1,
                1_000_000,
            )?,
            connections_max_reauth_ms: parse_number::<i64>(
                &raw,
                "connections.max.reauth.ms",
                0,
                i64::MAX,
            )?,
            connections_max_idle_ms: parse_number::<i64>(
                &raw,
                "connections.max.idle.ms",
                -1,
                i64::MAX,
            )?,
            fetch_max_bytes: parse_number::<i32>(&raw, "fetch.max.bytes", 1024, i32::MAX)?,
            fetch_session_slots: parse_number::<i32>(
                &raw,
                "max.incremental.fetch.session.cache.slots",
                0,
                i32::MAX,
            )? as usize,
            recovery_threads: parse_number::<i32>(
                &raw,
                "num.recovery.threads.per.data.dir",
                1,
                1024,
            )? as usize,
            fetch_max_wait_ms_cap: parse_number::<i64>(
                &raw,
                "fetch.max.wait.ms.cap",
                0,
                3_600_000,
            )?,
            group: GroupSettings::from_raw(&raw)?,
            transaction: TransactionSettings::from_raw(&raw)?,
            cluster: ClusterSettings::from_raw(
                &raw,
                parse_number::<i32>(&raw, "node.id", 0, i32::MAX)?,
            )?,
            http_listener: parse_http_listener(raw.get("http.listener").0)?,
            log_slow_request_ms: parse_number::<i64>(&raw, "log.slow.request.ms", 0, i64::MAX)?,
            remote_log: RemoteLogSettings::from_raw(&raw)?,
            security: SecuritySettings::from_raw(&raw)?,
            raw,
        })
    }

    /// Value and source of a broker key, for DescribeConfigs.
    pub fn describe(&self, key: &str) -> Option<(String, ConfigSource)> {
        find_key(key)?;
        let (value, source) = self.raw.get(key);
        Some((value.to_string(), source))
    }
}

/// Topic config name -> the broker key that supplies its default (Kafka's synonyms).
pub const TOPIC_CONFIG_SYNONYMS: &[(&str, &str)] = &[
    ("segment.bytes", "log.segment.bytes"),
    ("segment.ms", "log.roll.ms"),
    ("segment.index.bytes", "log.index.size.max.bytes"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("retention.ms", "log.retention.ms"),
    ("retention.bytes", "log.retention.bytes"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("max.message.bytes", "message.max.bytes"),
    ("message.timestamp.type", "log.message.timestamp.type"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("cleanup.policy", "log.cleanup.policy"),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
    ),
    ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"),
    ("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
    ),
];

/// Topic configs with a fixed default and no broker synonym here.
pub const TOPIC_CONFIG_FIXED_DEFAULTS: &[(&str, &str, ConfigType)] = &[
    ("compression.type", "producer", ConfigType::String),
    ("file.delete.delay.ms", "60000", ConfigType::Long),
    (
        "message.timestamp.before.max.ms",
        LONG_MAX,
        ConfigType::Long,
    ),
    ("message.timestamp.after.max.ms", LONG_MAX, ConfigType::Long),
    ("preallocate", "false", ConfigType::Boolean),
    ("segment.jitter.ms", "0", ConfigType::Long),
];

/// The broker's default for a topic config key, with the synonym it comes from.
pub fn topic_default(
    config: &BrokerConfig,
    key: &str,
) -> Option<(String, ConfigSource, ConfigType)> {
    if let Some((_, broker_key)) = TOPIC_CONFIG_SYNONYMS.iter().find(|(k, _)| *k == key) {
        let (value, source) = config.describe(broker_key)?;
        let config_type = find_key(broker_key)?.config_type;
        return Some((value, source, config_type));
    }
    TOPIC_CONFIG_FIXED_DEFAULTS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, v, t)| (v.to_string(), ConfigSource::Default, *t))
}

/// Every topic config key the broker describes.
pub fn topic_config_keys() -> impl Iterator<Item = &'static str> {
    TOPIC_CONFIG_SYNONYMS
        .iter()
        .map(|(k, _)| *k)
        .chain(TOPIC_CONFIG_FIXED_DEFAULTS.iter().map(|(k, _, _)| *k))
}

/// The storage config of a topic: broker defaults overridden by the topic's own configs.
/// Topic configs were validated when they were set, so a bad value here falls back to the
/// broker default rather than failing the partition.
pub fn log_config_for_topic(
    config: &BrokerConfig,
    topic_configs: &BTreeMap<String, String>,
) -> LogConfig {
    let mut log = config.log.clone();
    let num = |key: &str| {
        topic_configs
            .get(key)
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    if let Some(v) = num("segment.bytes") {
        log.segment_bytes = v.max(14) as u64;
    }
    if let Some(v) = num("segment.ms") {
        log.segment_ms = v.max(1);
    }
    if let Some(v) = num("segment.index.bytes") {
        log.segment_index_bytes = v.clamp(8, i32::MAX as i64) as u32;
    }
    if let Some(v) = num("index.interval.bytes") {
        log.index_interval_bytes = v.clamp(0, i32::MAX as i64) as u32;
    }
    if let Some(v) = num("retention.ms") {
        log.retention_ms = v;
    }
    if let Some(v) = num("retention.bytes") {
        log.retention_bytes = v;
    }
    if let Some(v) = num("flush.messages") {
        log.flush_messages = v.max(1);
    }
    if let Some(v) = num("flush.ms") {
        log.flush_ms = v.max(0);
    }
    if let Some(v) = num("max.message.bytes") {
        log.max_message_bytes = v.clamp(0, i32::MAX as i64) as u32;
    }
    match topic_configs
        .get("message.timestamp.type")
        .map(String::as_str)
    {
        Some("LogAppendTime") => log.message_timestamp_type = TimestampType::LogAppendTime,
        Some("CreateTime") => log.message_timestamp_type = TimestampType::CreateTime,
        _ => {}
    }
    if let Some(v) = num("message.timestamp.before.max.ms") {
        log.message_timestamp_before_max_ms = v.max(0);
    }
    if let Some(v) = num("message.timestamp.after.max.ms") {
        log.message_timestamp_after_max_ms = v.max(0);
    }
    apply_compaction_configs(config, topic_configs, &mut log);
    log
}

/// The compaction settings of a topic: its own value, else the broker's synonym (checked
/// with the topic rules; a bad broker value falls back to Kafka's default).
fn apply_compaction_configs(
    config: &BrokerConfig,
    topic_configs: &BTreeMap<String, String>,
    log: &mut LogConfig,
) {
    let value = |topic_key: &str| -> Option<String> {
        if let Some(value) = topic_configs.get(topic_key) {
            return Some(value.trim().to_string());
        }
        let (_, broker_key) = TOPIC_CONFIG_SYNONYMS
            .iter()
            .find(|(k, _)| *k == topic_key)?;
        let (value, _) = config.describe(broker_key)?;
        strom_controller::validate_topic_config(topic_key, &value)
            .ok()
            .map(|_| value.trim().to_string())
    };
    if let Some(policy) = value("cleanup.policy") {
        let policies: Vec<&str> = policy.split(',').map(str::trim).collect();
        log.cleanup_compact = policies.contains(&"compact");
        log.cleanup_delete = policies.contains(&"delete");
    }
    if let Some(ratio) = value("min.cleanable.dirty.ratio").and_then(|v| v.parse::<f64>().ok()) {
        log.min_cleanable_dirty_ratio = ratio.clamp(0.0, 1.0);
    }
    let long = |key: &str| value(key).and_then(|v| v.parse::<i64>().ok());
    if let Some(v) = long("min.compaction.lag.ms") {
        log.min_compaction_lag_ms = v.max(0);
    }
    if let Some(v) = long("max.compaction.lag.ms") {
        log.max_compaction_lag_ms = v.max(1);
    }
    if let Some(v) = long("delete.retention.ms") {
        log.delete_retention_ms = v.max(0);
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
