//! The built-in connector plugins: their class names (Kafka Connect's, so existing configs
//! work), config definitions, validation in Kafka Connect's `ConfigInfos` shape, and how a
//! connector's config splits into task configs.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::error::{ConnectError, Result};

pub type Config = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    FileSource,
    FileSink,
    PostgresSink,
    HttpSink,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorType {
    Source,
    Sink,
}

impl ConnectorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorType::Source => "source",
            ConnectorType::Sink => "sink",
        }
    }
}

/// One config key as `/config/validate` describes it.
struct Key {
    name: &'static str,
    kind: &'static str,
    required: bool,
    default: Option<&'static str>,
    importance: &'static str,
    group: &'static str,
    documentation: &'static str,
}

const COMMON: &[Key] = &[
    Key {
        name: "name",
        kind: "STRING",
        required: true,
        default: None,
        importance: "HIGH",
        group: "Common",
        documentation: "Globally unique name to use for this connector.",
    },
    Key {
        name: "connector.class",
        kind: "STRING",
        required: true,
        default: None,
        importance: "HIGH",
        group: "Common",
        documentation: "Name or alias of the connector class.",
    },
    Key {
        name: "tasks.max",
        kind: "INT",
        required: false,
        default: Some("1"),
        importance: "HIGH",
        group: "Common",
        documentation: "Maximum number of tasks to use for this connector.",
    },
    Key {
        name: "key.converter",
        kind: "CLASS",
        required: false,
        default: None,
        importance: "LOW",
        group: "Common",
        documentation: "Accepted for compatibility; keys and values are passed as bytes (string lines for the file connectors).",
    },
    Key {
        name: "value.converter",
        kind: "CLASS",
        required: false,
        default: None,
        importance: "LOW",
        group: "Common",
        documentation: "Accepted for compatibility; see key.converter.",
    },
    Key {
        name: "transforms",
        kind: "LIST",
        required: false,
        default: Some(""),
        importance: "LOW",
        group: "Transforms",
        documentation: "Aliases of the single message transforms to apply, in order (transforms.ALIAS.type=CLASS).",
    },
    Key {
        name: "predicates",
        kind: "LIST",
        required: false,
        default: Some(""),
        importance: "LOW",
        group: "Predicates",
        documentation: "Aliases of the predicates transforms may name (predicates.ALIAS.type=CLASS).",
    },
];

const FILE_SOURCE: &[Key] = &[
    Key {
        name: "file",
        kind: "STRING",
        required: true,
        default: None,
        importance: "HIGH",
        group: "FileStreamSource",
        documentation: "Source filename; each complete line becomes a record.",
    },
    Key {
        name: "topic",
        kind: "LIST",
        required: true,
        default: None,
        importance: "HIGH",
        group: "FileStreamSource",
        documentation: "The topic to publish data to.",
    },
    Key {
        name: "batch.size",
        kind: "INT",
        required: false,
        default: Some("2000"),
        importance: "LOW",
        group: "FileStreamSource",
        documentation: "The maximum number of records the source task can read from the file each time it is polled.",
    },
];

const FILE_SINK: &[Key] = &[
    Key {
        name: "file",
        kind: "STRING",
        required: true,
        default: None,
        importance: "HIGH",
        group: "FileStreamSink",
        documentation: "Destination filename; each record's value is appended as a line.",
    },
    Key {
        name: "topics",
        kind: "LIST",
        required: true,
        default: None,
        importance: "HIGH",
        group: "Common",
        documentation: "List of topics to consume, separated by commas.",
    },
];

const POSTGRES_SINK: &[Key] = &[
    Key {
        name: "topics",
        kind: "LIST",
        required: true,
        default: None,
        importance: "HIGH",
        group: "Common",
        documentation: "List of topics to consume, separated by commas.",
    },
    Key {
        name: "connection.url",
        kind: "STRING",
        required: true,
        default: None,
        importance: "HIGH",
        group: "PostgreSQL",
        documentation: "jdbc:postgresql://HOST[:PORT]/DATABASE[?user=..&password=..]",
    },
    Key {
        name: "connection.user",
        kind: "STRING",
        required: false,
        default: None,
        importance: "HIGH",
        group: "PostgreSQL",
        documentation: "Database user (default postgres).",
    },
    Key {
        name: "connection.password",
        kind: "PASSWORD",
        required: false,
        default: None,
        importance: "HIGH",
        group: "PostgreSQL",
        documentation: "Database password.",
    },
    Key {
        name: "table.name.format",
        kind: "STRING",
        required: false,
        default: Some("${topic}"),
        importance: "MEDIUM",
        group: "PostgreSQL",
        documentation: "Destination table name; ${topic} is replaced by the record's topic.",
    },
    Key {
        name: "insert.mode",
        kind: "STRING",
        required: false,
        default: Some("insert"),
        importance: "HIGH",
        group: "PostgreSQL",
        documentation: "insert, or upsert (INSERT .. ON CONFLICT (pk) DO UPDATE).",
    },
    Key {
        name: "pk.mode",
        kind: "STRING",
        required: false,
        default: Some("none"),
        importance: "HIGH",
        group: "PostgreSQL",
        documentation: "none, record_key or record_value: where the primary key fields come from.",
    },
    Key {
        name: "pk.fields",
        kind: "LIST",
        required: false,
        default: Some(""),
        importance: "MEDIUM",
        group: "PostgreSQL",
        documentation:
            "Primary key field names (required for record_value and for a primitive key).",
    },
    Key {
        name: "auto.create",
        kind: "BOOLEAN",
        required: false,
        default: Some("false"),
        importance: "MEDIUM",
        group: "PostgreSQL",
        documentation: "Create the table from the first record's schema when it is missing.",
    },
    Key {
        name: "delete.enabled",
        kind: "BOOLEAN",
        required: false,
        default: Some("false"),
        importance: "MEDIUM",
        group: "PostgreSQL",
        documentation: "A null value (tombstone) deletes the row of its key (pk.mode=record_key).",
    },
    Key {
        name: "batch.size",
        kind: "INT",
        required: false,
        default: Some("3000"),
        importance: "MEDIUM",
        group: "PostgreSQL",
        documentation: "Most records written in one database transaction.",
    },
    Key {
        name: "max.retries",
        kind: "INT",
        required: false,
        default: Some("10"),
        importance: "MEDIUM",
        group: "PostgreSQL",
        documentation: "Retries of a batch after the database connection is lost.",
    },
    Key {
        name: "retry.backoff.ms",
        kind: "INT",
        required: false,
        default: Some("3000"),
        importance: "MEDIUM",
        group: "PostgreSQL",
        documentation: "Wait before each retry.",
    },
];

const HTTP_SINK: &[Key] = &[
    Key {
        name: "topics",
        kind: "LIST",
        required: true,
        default: None,
        importance: "HIGH",
        group: "Common",
        documentation: "List of topics to consume, separated by commas.",
    },
    Key {
        name: "http.api.url",
        kind: "STRING",
        required: true,
        default: None,
        importance: "HIGH",
        group: "HTTP",
        documentation: "http://HOST[:PORT]/PATH the batches are sent to.",
    },
    Key {
        name: "request.method",
        kind: "STRING",
        required: false,
        default: Some("POST"),
        importance: "MEDIUM",
        group: "HTTP",
        documentation: "POST, PUT or PATCH.",
    },
    Key {
        name: "headers",
        kind: "STRING",
        required: false,
        default: Some(""),
        importance: "LOW",
        group: "HTTP",
        documentation: "Extra request headers, NAME:VALUE separated by |.",
    },
    Key {
        name: "batch.max.size",
        kind: "INT",
        required: false,
        default: Some("100"),
        importance: "MEDIUM",
        group: "HTTP",
        documentation: "Most records in one request (a JSON array of their values).",
    },
    Key {
        name: "max.retries",
        kind: "INT",
        required: false,
        default: Some("5"),
        importance: "MEDIUM",
        group: "HTTP",
        documentation: "Retries after a connection failure, a 5xx or a 429.",
    },
    Key {
        name: "retry.backoff.ms",
        kind: "INT",
        required: false,
        default: Some("1000"),
        importance: "MEDIUM",
        group: "HTTP",
        documentation: "Wait before the first retry; doubles each retry, up to 60 s.",
    },
    Key {
        name: "request.timeout.ms",
        kind: "INT",
        required: false,
        default: Some("30000"),
        importance: "LOW",
        group: "HTTP",
        documentation: "Longest wait for an answer.",
    },
];

/// Kafka Connect's `errors.*` keys, for every sink ([`crate::errors`]).
const SINK_ERRORS: &[Key] = &[
    Key {
        name: "errors.tolerance",
        kind: "STRING",
        required: false,
        default: Some("none"),
        importance: "MEDIUM",
        group: "Error Handling",
        documentation: "none: a record whose transformation fails fails the task; all: it is skipped.",
    },
    Key {
        name: "errors.deadletterqueue.topic.name",
        kind: "STRING",
        required: false,
        default: Some(""),
        importance: "MEDIUM",
        group: "Error Handling",
        documentation: "Topic for skipped records (errors.tolerance=all); the HTTP sink also sends batches that failed for good there.",
    },
    Key {
        name: "errors.deadletterqueue.context.headers.enable",
        kind: "BOOLEAN",
        required: false,
        default: Some("false"),
        importance: "MEDIUM",
        group: "Error Handling",
        documentation: "Add __connect.errors.* headers to dead-lettered records (always on for the HTTP sink's failed batches).",
    },
    Key {
        name: "errors.log.enable",
        kind: "BOOLEAN",
        required: false,
        default: Some("false"),
        importance: "MEDIUM",
        group: "Error Handling",
        documentation: "Log each skipped record's error.",
    },
    Key {
        name: "errors.log.include.messages",
        kind: "BOOLEAN",
        required: false,
        default: Some("false"),
        importance: "LOW",
        group: "Error Handling",
        documentation: "Include the record's topic, partition and offset in that log.",
    },
];

impl Plugin {
    pub const ALL: [Plugin; 4] = [
        Plugin::FileSink,
        Plugin::FileSource,
        Plugin::HttpSink,
        Plugin::PostgresSink,
    ];

    pub fn class(self) -> &'static str {
        match self {
            Plugin::FileSource => "org.apache.kafka.connect.file.FileStreamSourceConnector",
            Plugin::FileSink => "org.apache.kafka.connect.file.FileStreamSinkConnector",
            Plugin::PostgresSink => "io.strom.connect.postgres.PostgresSinkConnector",
            Plugin::HttpSink => "io.strom.connect.http.HttpSinkConnector",
        }
    }

    pub fn connector_type(self) -> ConnectorType {
        match self {
            Plugin::FileSource => ConnectorType::Source,
            Plugin::FileSink | Plugin::PostgresSink | Plugin::HttpSink => ConnectorType::Sink,
        }
    }

    /// By full class name or alias (simple name, with or without `Connector`), as Kafka
    /// Connect resolves them.
    pub fn find(name: &str) -> Option<Plugin> {
        if name == "io.confluent.connect.jdbc.JdbcSinkConnector" || name == "JdbcSinkConnector" {
            return Some(Plugin::PostgresSink);
        }
        Plugin::ALL.into_iter().find(|plugin| {
            let class = plugin.class();
            let simple = class.rsplit('.').next().unwrap_or(class);
            name == class || name == simple || Some(name) == simple.strip_suffix("Connector")
        })
    }

    pub fn from_config(config: &Config) -> Result<Plugin> {
        let class = config.get("connector.class").ok_or_else(|| {
            ConnectError::bad_request(
                "Missing required configuration \"connector.class\" which has no default value.",
            )
        })?;
        Plugin::find(class).ok_or_else(|| ConnectError::UnknownPlugin {
            class: class.clone(),
        })
    }

    fn keys(self) -> impl Iterator<Item = &'static Key> {
        let own = match self {
            Plugin::FileSource => FILE_SOURCE,
            Plugin::FileSink => FILE_SINK,
            Plugin::PostgresSink => POSTGRES_SINK,
            Plugin::HttpSink => HTTP_SINK,
        };
        let errors = match self.connector_type() {
            ConnectorType::Sink => SINK_ERRORS,
            ConnectorType::Source => &[],
        };
        COMMON.iter().chain(own.iter()).chain(errors.iter())
    }

    pub fn describe(self) -> Value {
        json!({"class": self.class(), "type": self.connector_type().as_str(), "version": env!("CARGO_PKG_VERSION")})
    }

    /// The errors of each key, in definition order.
    fn errors(self, config: &Config) -> Vec<(&'static Key, Vec<String>)> {
        self.keys()
            .map(|key| {
                let mut errors = Vec::new();
                let value = config.get(key.name).map(String::as_str);
                match value {
                    None | Some("") if key.required => errors.push(format!(
                        "Missing required configuration \"{}\" which has no default value.",
                        key.name
                    )),
                    Some(text) if key.kind == "INT" => match text.trim().parse::<i64>() {
                        Ok(n) if key.name == "tasks.max" && n < 1 => errors.push(format!(
                            "Invalid value {n} for configuration tasks.max: Value must be at least 1"
                        )),
                        Ok(n) if key.name == "batch.size" && n < 1 => errors.push(format!(
                            "Invalid value {n} for configuration batch.size: Value must be at least 1"
                        )),
                        Ok(_) => {}
                        Err(_) => errors.push(format!(
                            "Invalid value {text} for configuration {}: Not a number of type INT",
                            key.name
                        )),
                    },
                    _ => {}
                }
                if self == Plugin::FileSource && key.name == "topic" {
                    if let Some(topic) = value {
                        if topic.contains(',') {
                            errors.push("'topic' in FileStreamSourceConnector configuration requires definition of a single topic".to_string());
                        }
                    }
                }
                let mut own = match self {
                    Plugin::PostgresSink => crate::postgres_sink::check(config),
                    Plugin::HttpSink => crate::http_sink::check(config),
                    _ => Vec::new(),
                };
                if key.name == "transforms" {
                    if let Err(error) = crate::transforms::Transforms::from_config(config) {
                        own.push(("transforms", error.to_string()));
                    }
                }
                if key.name.starts_with("errors.") {
                    own.extend(crate::errors::check(config));
                }
                {
                    for (name, error) in own {
                        if name == key.name {
                            errors.push(error);
                        }
                    }
                }
                (key, errors)
            })
            .collect()
    }

    /// Kafka Connect's `ConfigInfos` for `PUT /connector-plugins/{plugin}/config/validate`.
    pub fn validate(self, config: &Config) -> Value {
        let checked = self.errors(config);
        let error_count: usize = checked.iter().map(|(_, e)| e.len()).sum();
        let mut groups: Vec<&str> = Vec::new();
        for (key, _) in &checked {
            if !groups.contains(&key.group) {
                groups.push(key.group);
            }
        }
        let configs: Vec<Value> = checked
            .iter()
            .enumerate()
            .map(|(order, (key, errors))| {
                json!({
                    "definition": {
                        "name": key.name,
                        "type": key.kind,
                        "required": key.required,
                        "default_value": key.default,
                        "importance": key.importance,
                        "documentation": key.documentation,
                        "group": key.group,
                        "width": "NONE",
                        "display_name": key.name,
                        "dependents": [],
                        "order": order + 1,
                    },
                    "value": {
                        "name": key.name,
                        "value": config.get(key.name),
                        "recommended_values": [],
                        "errors": errors,
                        "visible": true,
                    }
                })
            })
            .collect();
        json!({"name": self.class(), "error_count": error_count, "groups": groups, "configs": configs})
    }

    /// Validates a connector config for create/update: Kafka Connect's 400 with every
    /// error listed.
    pub fn check(self, config: &Config) -> Result<()> {
        let errors: Vec<String> = self
            .errors(config)
            .into_iter()
            .flat_map(|(key, errors)| {
                errors
                    .into_iter()
                    .map(move |e| format!("Invalid value for {}: {e}", key.name))
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConnectError::InvalidConfig {
                count: errors.len(),
                errors: errors.join("\n"),
            })
        }
    }

    /// How many tasks the connector runs: one for a file source (one file), `tasks.max`
    /// for a sink (partitions are spread over them).
    pub fn task_count(self, config: &Config) -> u32 {
        match self {
            Plugin::FileSource => 1,
            Plugin::FileSink | Plugin::PostgresSink | Plugin::HttpSink => config
                .get("tasks.max")
                .and_then(|t| t.trim().parse::<u32>().ok())
                .unwrap_or(1)
                .clamp(1, 1024),
        }
    }

    /// Task `task`'s config: the connector's plus `task.class` and `task.id`.
    pub fn task_config(self, config: &Config, task: u32) -> Config {
        let mut task_config = config.clone();
        let class = match self {
            Plugin::FileSource => "org.apache.kafka.connect.file.FileStreamSourceTask",
            Plugin::FileSink => "org.apache.kafka.connect.file.FileStreamSinkTask",
            Plugin::PostgresSink => "io.strom.connect.postgres.PostgresSinkTask",
            Plugin::HttpSink => "io.strom.connect.http.HttpSinkTask",
        };
        task_config.insert("task.class".into(), class.into());
        task_config.insert("task.id".into(), task.to_string());
        task_config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn given_aliases_when_found_should_resolve_like_kafka_connect() {
        assert_eq!(Plugin::find("FileStreamSource"), Some(Plugin::FileSource));
        assert_eq!(
            Plugin::find("FileStreamSinkConnector"),
            Some(Plugin::FileSink)
        );
        assert_eq!(
            Plugin::find("org.apache.kafka.connect.file.FileStreamSinkConnector"),
            Some(Plugin::FileSink)
        );
        assert_eq!(Plugin::find("io.example.Nope"), None);
    }

    #[test]
    fn given_missing_and_bad_keys_when_validated_should_count_each_error() {
        let infos = Plugin::FileSink.validate(&config(&[
            ("name", "s"),
            ("connector.class", "FileStreamSink"),
            ("tasks.max", "zero"),
        ]));
        assert_eq!(infos["error_count"], 3, "{infos}");
        let file = infos["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["definition"]["name"] == "file")
            .unwrap();
        assert_eq!(
            file["value"]["errors"][0],
            "Missing required configuration \"file\" which has no default value."
        );
        assert!(Plugin::FileSink
            .check(&config(&[
                ("name", "s"),
                ("connector.class", "FileStreamSink"),
                ("file", "out"),
                ("topics", "t"),
            ]))
            .is_ok());
    }
}
