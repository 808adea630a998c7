//! The tiered storage settings (`remote.log.*`), read once at start.

use super::{parse_bool, parse_number, ConfigError, RawConfig};

/// `remote.log.storage.*` and friends; credentials left empty fall back to the `AWS_*`
/// environment variables when the remote tier starts (`crate::tiering`).
#[derive(Debug, Clone)]
pub struct RemoteLogSettings {
    pub system_enable: bool,
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub task_interval_ms: i64,
    pub chunk_cache_bytes: u64,
    pub chunk_bytes: u64,
}

impl RemoteLogSettings {
    pub(super) fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let text = |key: &str| raw.get(key).0.trim().to_string();
        let settings = RemoteLogSettings {
            system_enable: parse_bool(raw, "remote.log.storage.system.enable")?,
            endpoint: text("remote.log.storage.s3.endpoint"),
            bucket: text("remote.log.storage.s3.bucket"),
            prefix: text("remote.log.storage.s3.prefix"),
            region: text("remote.log.storage.s3.region"),
            access_key_id: text("remote.log.storage.s3.access.key.id"),
            secret_access_key: text("remote.log.storage.s3.secret.access.key"),
            task_interval_ms: parse_number::<i64>(
                raw,
                "remote.log.manager.task.interval.ms",
                10,
                86_400_000,
            )?,
            chunk_cache_bytes: parse_number::<u64>(
                raw,
                "remote.log.chunk.cache.bytes",
                1 << 20,
                u64::MAX >> 1,
            )?,
            chunk_bytes: parse_number::<u64>(raw, "remote.log.chunk.bytes", 4096, 1 << 30)?,
        };
        if settings.system_enable {
            for (key, value) in [
                ("remote.log.storage.s3.endpoint", &settings.endpoint),
                ("remote.log.storage.s3.bucket", &settings.bucket),
            ] {
                if value.is_empty() {
                    return Err(ConfigError::BadValue {
                        key: key.to_string(),
                        value: String::new(),
                        expected: "a value: remote.log.storage.system.enable=true needs it"
                            .to_string(),
                    });
                }
            }
            if !settings.endpoint.starts_with("http://") {
                return Err(ConfigError::BadValue {
                    key: "remote.log.storage.s3.endpoint".to_string(),
                    value: settings.endpoint.clone(),
                    expected: "http://host:port (https is not supported yet)".to_string(),
                });
            }
        }
        Ok(settings)
    }
}
