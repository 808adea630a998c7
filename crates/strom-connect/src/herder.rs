//! The operations behind the REST API, on the configs, status and offsets logs. Any worker
//! serves any request: a change is written to the configs log, which orders it, and the
//! worker owning the connector or task acts on it when it reads it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use strom_client::{groups, Client};

use crate::error::{ConnectError, Result};
use crate::file_connectors::sink_group;
use crate::kv::KvLog;
use crate::plugins::{Config, ConnectorType, Plugin};
use crate::state::{
    self, connector_key, restart_key, target_key, task_restart_key, ConnectorEntry, TargetState,
};
use crate::worker::{connector_status_key, task_status_key};

pub struct Herder {
    pub configs: Arc<KvLog>,
    pub statuses: Arc<KvLog>,
    pub offsets: Arc<KvLog>,
    pub client: Client,
    pub worker_id: String,
}

/// Connector names as Kafka Connect accepts them: not empty, no control characters, no
/// slash (it would not round-trip through the REST paths).
fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(ConnectError::bad_request(
            "Connector name is null or empty.",
        ));
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err(ConnectError::bad_request(format!(
            "Connector name {name:?} contains a control character or '/'"
        )));
    }
    Ok(())
}

impl Herder {
    pub fn connectors(&self) -> BTreeMap<String, ConnectorEntry> {
        state::connectors(&self.configs.snapshot())
    }

    fn entry(&self, name: &str) -> Result<ConnectorEntry> {
        self.connectors()
            .remove(name)
            .ok_or_else(|| ConnectError::ConnectorNotFound {
                name: name.to_string(),
            })
    }

    pub fn list(&self) -> Vec<String> {
        self.connectors().into_keys().collect()
    }

    fn type_of(entry: &ConnectorEntry) -> &'static str {
        entry
            .plugin()
            .map(|p| p.connector_type().as_str())
            .unwrap_or("unknown")
    }

    pub fn info(&self, name: &str) -> Result<Value> {
        let entry = self.entry(name)?;
        let tasks: Vec<Value> = (0..entry.task_count())
            .map(|task| json!({"connector": name, "task": task}))
            .collect();
        Ok(
            json!({"name": name, "config": entry.config, "tasks": tasks, "type": Self::type_of(&entry)}),
        )
    }

    pub fn config(&self, name: &str) -> Result<Value> {
        Ok(json!(self.entry(name)?.config))
    }

    pub fn tasks(&self, name: &str) -> Result<Value> {
        let entry = self.entry(name)?;
        let Some(plugin) = entry.plugin() else {
            return Ok(json!([]));
        };
        Ok(Value::Array(
            (0..entry.task_count())
                .map(|task| {
                    json!({"id": {"connector": name, "task": task}, "config": plugin.task_config(&entry.config, task)})
                })
                .collect(),
        ))
    }

    fn status_of(&self, key: &str) -> Value {
        match self.statuses.get(key) {
            Some(status) => {
                let mut out = json!({"state": status["state"], "worker_id": status["worker_id"]});
                if let Some(trace) = status["trace"].as_str() {
                    out["trace"] = json!(trace);
                }
                out
            }
            None => json!({"state": "UNASSIGNED", "worker_id": self.worker_id}),
        }
    }

    pub fn status(&self, name: &str) -> Result<Value> {
        let entry = self.entry(name)?;
        let mut connector = self.status_of(&connector_status_key(name));
        if entry.target == TargetState::Stopped {
            connector["state"] = json!("STOPPED");
        }
        let tasks: Vec<Value> = (0..entry.task_count())
            .map(|task| {
                let mut status = self.status_of(&task_status_key(name, task));
                status["id"] = json!(task);
                status
            })
            .collect();
        Ok(
            json!({"name": name, "connector": connector, "tasks": tasks, "type": Self::type_of(&entry)}),
        )
    }

    pub fn task_status(&self, name: &str, task: u32) -> Result<Value> {
        let entry = self.entry(name)?;
        if task >= entry.task_count() {
            return Err(ConnectError::TaskNotFound {
                connector: name.to_string(),
                task,
            });
        }
        let mut status = self.status_of(&task_status_key(name, task));
        status["id"] = json!(task);
        Ok(status)
    }

    /// Creates (`create_only`) or creates-or-updates a connector; true when it is new.
    pub async fn put_config(
        &self,
        name: &str,
        mut config: Config,
        create_only: bool,
    ) -> Result<bool> {
        check_name(name)?;
        match config.get("name") {
            Some(given) if given != name => {
                return Err(ConnectError::bad_request(format!(
                    "Connector name configuration ({given}) doesn't match connector name in the URL ({name})"
                )))
            }
            _ => {
                config.insert("name".into(), name.to_string());
            }
        }
        let plugin = Plugin::from_config(&config)?;
        plugin.check(&config)?;
        let exists = self.connectors().contains_key(name);
        if exists && create_only {
            return Err(ConnectError::ConnectorExists {
                name: name.to_string(),
            });
        }
        self.configs
            .put(&connector_key(name), Some(json!({"properties": config})))
            .await?;
        Ok(!exists)
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        let entry = self.entry(name)?;
        self.configs.put(&connector_key(name), None).await?;
        self.configs.put(&target_key(name), None).await?;
        self.configs.put(&restart_key(name), None).await?;
        for (key, _) in self.configs.with_prefix(&format!("restart-task-{name}-")) {
            self.configs.put(&key, None).await?;
        }
        self.statuses.put(&connector_status_key(name), None).await?;
        for task in 0..entry.task_count().max(1) {
            self.statuses
                .put(&task_status_key(name, task), None)
                .await?;
        }
        Ok(())
    }

    pub async fn set_target(&self, name: &str, target: TargetState) -> Result<()> {
        self.entry(name)?;
        self.configs
            .put(&target_key(name), Some(json!({"state": target.as_str()})))
            .await
    }

    /// `POST /connectors/{name}/restart`: the status to answer with when tasks are
    /// included (those to restart shown RESTARTING, as Kafka Connect does).
    pub async fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<Value> {
        let entry = self.entry(name)?;
        let seq = entry.restart.seq + 1;
        self.configs
            .put(
                &restart_key(name),
                Some(
                    json!({"seq": seq, "include-tasks": include_tasks, "only-failed": only_failed}),
                ),
            )
            .await?;
        let mut status = self.status(name)?;
        let restarting = |state: &Value| !only_failed || state == "FAILED";
        if restarting(&status["connector"]["state"]) {
            status["connector"]["state"] = json!("RESTARTING");
        }
        if include_tasks {
            if let Some(tasks) = status["tasks"].as_array_mut() {
                for task in tasks {
                    if restarting(&task["state"]) {
                        task["state"] = json!("RESTARTING");
                    }
                }
            }
        }
        Ok(status)
    }

    pub async fn restart_task(&self, name: &str, task: u32) -> Result<()> {
        let entry = self.entry(name)?;
        if task >= entry.task_count() {
            return Err(ConnectError::TaskNotFound {
                connector: name.to_string(),
                task,
            });
        }
        let seq = entry.task_restarts.get(&task).copied().unwrap_or(0) + 1;
        self.configs
            .put(&task_restart_key(name, task), Some(json!({"seq": seq})))
            .await
    }

    /// KIP-875 `GET /connectors/{name}/offsets`.
    pub async fn offsets(&self, name: &str) -> Result<Value> {
        let entry = self.entry(name)?;
        let offsets: Vec<Value> = match entry.plugin().map(|p| p.connector_type()) {
            Some(ConnectorType::Sink) => groups::committed_offsets(&self.client, &sink_group(name))
                .await?
                .into_iter()
                .map(|c| {
                    json!({"partition": {"kafka_topic": c.topic, "kafka_partition": c.partition}, "offset": {"kafka_offset": c.offset}})
                })
                .collect(),
            _ => self
                .offsets
                .snapshot()
                .into_iter()
                .filter_map(|(key, offset)| {
                    let key: Value = serde_json::from_str(&key).ok()?;
                    (key[0] == name).then(|| json!({"partition": key[1], "offset": offset}))
                })
                .collect(),
        };
        Ok(json!({"offsets": offsets}))
    }

    /// KIP-875 `PATCH` (`reset` false: the offsets given) and `DELETE` (`reset` true:
    /// every offset) of `/connectors/{name}/offsets`; only for a STOPPED connector.
    pub async fn alter_offsets(&self, name: &str, body: Option<&Value>) -> Result<Value> {
        let entry = self.entry(name)?;
        if entry.target != TargetState::Stopped {
            return Err(ConnectError::NotStopped {
                what: if body.is_some() {
                    "Altering offsets"
                } else {
                    "Resetting offsets"
                },
                name: name.to_string(),
                state: entry.target.as_str().to_string(),
            });
        }
        let sink = matches!(
            entry.plugin().map(|p| p.connector_type()),
            Some(ConnectorType::Sink)
        );
        match body {
            None if sink => {
                let results = groups::delete_groups(&self.client, &[sink_group(name)]).await?;
                for (_, result) in results {
                    // GROUP_ID_NOT_FOUND: nothing was committed.
                    if let Err(error) = result {
                        if error.code() != Some(69) {
                            return Err(error.into());
                        }
                    }
                }
            }
            None => {
                for (key, _) in self.offsets.snapshot() {
                    let parsed: Option<Value> = serde_json::from_str(&key).ok();
                    if parsed.is_some_and(|k| k[0] == name) {
                        self.offsets.put(&key, None).await?;
                    }
                }
            }
            Some(body) => {
                let list = body["offsets"].as_array().ok_or_else(|| {
                    ConnectError::bad_request("Offsets must be given as {\"offsets\": [{\"partition\": {...}, \"offset\": {...}}]}")
                })?;
                if sink {
                    let mut commits = Vec::new();
                    for item in list {
                        let topic = item["partition"]["kafka_topic"].as_str();
                        let partition = item["partition"]["kafka_partition"].as_i64();
                        let offset = item["offset"]["kafka_offset"].as_i64();
                        match (topic, partition, offset) {
                            (Some(t), Some(p), Some(o)) if o >= 0 => commits.push((t.to_string(), p as i32, o)),
                            _ => return Err(ConnectError::bad_request("A sink connector's partition needs \"kafka_topic\" and \"kafka_partition\", its offset a non-negative \"kafka_offset\"")),
                        }
                    }
                    for (_, _, result) in
                        groups::commit_offsets(&self.client, &sink_group(name), &commits).await?
                    {
                        result?;
                    }
                } else {
                    for item in list {
                        if !item["partition"].is_object() {
                            return Err(ConnectError::bad_request(
                                "Each source partition must be a JSON object",
                            ));
                        }
                        let key = json!([name, item["partition"]]).to_string();
                        let value = item.get("offset").filter(|o| !o.is_null()).cloned();
                        self.offsets.put(&key, value).await?;
                    }
                }
            }
        }
        let verb = if body.is_some() { "altered" } else { "reset" };
        Ok(
            json!({"message": format!("The offsets for this connector have been {verb} successfully")}),
        )
    }
}
