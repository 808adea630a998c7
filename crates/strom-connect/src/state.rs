//! The cluster's connector state as read from the configs log: connector configs, target
//! states and restart requests, under Kafka Connect's key names (`connector-<name>`,
//! `target-state-<name>`) plus restart requests (`restart-connector-<name>`,
//! `restart-task-<name>-<id>`) that the owning worker acts on.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use serde_json::Value;

use crate::plugins::{Config, Plugin};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetState {
    Started,
    Paused,
    Stopped,
}

impl TargetState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Started => "STARTED",
            TargetState::Paused => "PAUSED",
            TargetState::Stopped => "STOPPED",
        }
    }

    fn parse(text: &str) -> TargetState {
        match text {
            "PAUSED" => TargetState::Paused,
            "STOPPED" => TargetState::Stopped,
            _ => TargetState::Started,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    pub connector: String,
    pub task: u32,
}

/// A connector-wide restart request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestartRequest {
    pub seq: u64,
    pub include_tasks: bool,
    pub only_failed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorEntry {
    pub config: Config,
    pub target: TargetState,
    pub restart: RestartRequest,
    /// Per task id, its restart sequence.
    pub task_restarts: BTreeMap<u32, u64>,
}

impl ConnectorEntry {
    pub fn plugin(&self) -> Option<Plugin> {
        Plugin::from_config(&self.config).ok()
    }

    /// How many tasks run: none while stopped or when the class is unknown.
    pub fn task_count(&self) -> u32 {
        match (self.target, self.plugin()) {
            (TargetState::Stopped, _) | (_, None) => 0,
            (_, Some(plugin)) => plugin.task_count(&self.config),
        }
    }
}

pub fn connector_key(name: &str) -> String {
    format!("connector-{name}")
}

pub fn target_key(name: &str) -> String {
    format!("target-state-{name}")
}

pub fn restart_key(name: &str) -> String {
    format!("restart-connector-{name}")
}

pub fn task_restart_key(name: &str, task: u32) -> String {
    format!("restart-task-{name}-{task}")
}

pub fn config_from_json(value: &Value) -> Config {
    value
        .as_object()
        .map(|object| {
            object
                .iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every connector in the configs log's snapshot.
pub fn connectors(snapshot: &BTreeMap<String, Value>) -> BTreeMap<String, ConnectorEntry> {
    let mut out = BTreeMap::new();
    for (key, value) in snapshot {
        if let Some(name) = key.strip_prefix("connector-") {
            let config = config_from_json(&value["properties"]);
            let target = snapshot
                .get(&target_key(name))
                .and_then(|t| t["state"].as_str())
                .map(TargetState::parse)
                .unwrap_or(TargetState::Started);
            let restart = snapshot
                .get(&restart_key(name))
                .map(|r| RestartRequest {
                    seq: r["seq"].as_u64().unwrap_or(0),
                    include_tasks: r["include-tasks"].as_bool().unwrap_or(false),
                    only_failed: r["only-failed"].as_bool().unwrap_or(false),
                })
                .unwrap_or_default();
            let prefix = format!("restart-task-{name}-");
            let task_restarts = snapshot
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter_map(|(k, v)| {
                    let task = k[prefix.len()..].parse::<u32>().ok()?;
                    Some((task, v["seq"].as_u64().unwrap_or(0)))
                })
                .collect();
            out.insert(
                name.to_string(),
                ConnectorEntry {
                    config,
                    target,
                    restart,
                    task_restarts,
                },
            );
        }
    }
    out
}

/// What an assignment depends on (connectors, their configs, whether they run tasks), as
/// a hash: a worker whose snapshot's hash differs from its assignment's asks to rebalance.
pub fn assignment_fingerprint(connectors: &BTreeMap<String, ConnectorEntry>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for (name, entry) in connectors {
        name.hash(&mut hasher);
        entry.config.hash(&mut hasher);
        entry.task_count().hash(&mut hasher);
    }
    hasher.finish()
}

/// Every task of every connector that runs tasks.
pub fn all_tasks(connectors: &BTreeMap<String, ConnectorEntry>) -> Vec<TaskId> {
    connectors
        .iter()
        .flat_map(|(name, entry)| {
            (0..entry.task_count()).map(move |task| TaskId {
                connector: name.clone(),
                task,
            })
        })
        .collect()
}
