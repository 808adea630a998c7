//! The tasks this worker runs: started, paused, resumed, restarted and stopped to match
//! its assignment and the connectors' target states, with each change written to the
//! status log (`status-connector-<name>`, `status-task-<name>-<id>`, Kafka Connect's keys).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use strom_client::{Client, Producer};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::file_connectors;
use crate::http_sink;
use crate::kv::KvLog;
use crate::plugins::{Config, Plugin};
use crate::postgres_sink;
use crate::state::{ConnectorEntry, TargetState, TaskId};

/// How long a task gets to stop (finish its batch and commit) before it is aborted.
const TASK_STOP_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Run,
    Pause,
    Stop,
}

/// What a task's code gets from the runtime.
#[derive(Clone)]
pub struct TaskContext {
    pub connector: String,
    pub task: u32,
    pub client: Client,
    pub producer: Arc<Producer>,
    pub offsets: Arc<KvLog>,
}

struct Running {
    config: Config,
    control: watch::Sender<Control>,
    handle: tokio::task::JoinHandle<()>,
    /// (connector restart seq, task restart seq) when started.
    restarts: (u64, u64),
}

pub fn connector_status_key(name: &str) -> String {
    format!("status-connector-{name}")
}

pub fn task_status_key(name: &str, task: u32) -> String {
    format!("status-task-{name}-{task}")
}

pub struct Worker {
    pub worker_id: String,
    client: Client,
    producer: Arc<Producer>,
    offsets: Arc<KvLog>,
    statuses: Arc<KvLog>,
    running: tokio::sync::Mutex<BTreeMap<TaskId, Running>>,
    /// Connector statuses written by this worker: (state, restart seq).
    connectors: tokio::sync::Mutex<BTreeMap<String, (&'static str, u64)>>,
    generation: std::sync::atomic::AtomicI32,
}

impl Worker {
    pub fn new(
        worker_id: String,
        client: Client,
        producer: Arc<Producer>,
        offsets: Arc<KvLog>,
        statuses: Arc<KvLog>,
    ) -> Worker {
        Worker {
            worker_id,
            client,
            producer,
            offsets,
            statuses,
            running: tokio::sync::Mutex::new(BTreeMap::new()),
            connectors: tokio::sync::Mutex::new(BTreeMap::new()),
            generation: std::sync::atomic::AtomicI32::new(0),
        }
    }

    pub fn set_generation(&self, generation: i32) {
        self.generation
            .store(generation, std::sync::atomic::Ordering::Relaxed);
    }

    fn status_value(&self, state: &str, trace: Option<String>) -> Value {
        json!({
            "state": state,
            "trace": trace,
            "worker_id": self.worker_id,
            "generation": self.generation.load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    async fn write_status(&self, key: &str, state: &str, trace: Option<String>) {
        if let Err(error) = self
            .statuses
            .put(key, Some(self.status_value(state, trace)))
            .await
        {
            warn!(%error, key, "writing a status failed");
        }
    }

    fn task_failed(&self, id: &TaskId) -> bool {
        self.statuses
            .get(&task_status_key(&id.connector, id.task))
            .is_some_and(|s| s["state"] == "FAILED")
    }

    /// Makes the running set match `connectors` and `tasks` (this worker's assignment)
    /// under the connectors' current configs, target states and restart requests.
    pub async fn reconcile(
        self: &Arc<Self>,
        assigned_connectors: &BTreeSet<String>,
        assigned_tasks: &BTreeSet<TaskId>,
        snapshot: &BTreeMap<String, ConnectorEntry>,
    ) {
        let mut running = self.running.lock().await;
        let mut to_stop = Vec::new();
        for (id, task) in running.iter() {
            let keep = match snapshot.get(&id.connector) {
                Some(entry) if assigned_tasks.contains(id) && id.task < entry.task_count() => {
                    let task_seq = entry.task_restarts.get(&id.task).copied().unwrap_or(0);
                    let restart_task = task_seq != task.restarts.1;
                    let restart_all = entry.restart.seq != task.restarts.0
                        && entry.restart.include_tasks
                        && (!entry.restart.only_failed || self.task_failed(id));
                    let config = entry
                        .plugin()
                        .map(|plugin| plugin.task_config(&entry.config, id.task));
                    config.as_ref() == Some(&task.config) && !restart_task && !restart_all
                }
                _ => false,
            };
            if !keep {
                to_stop.push(id.clone());
            }
        }
        for id in to_stop {
            if let Some(task) = running.remove(&id) {
                stop_task(&id, task).await;
            }
        }
        for id in assigned_tasks {
            let Some(entry) = snapshot.get(&id.connector) else {
                continue;
            };
            let desired = match entry.target {
                TargetState::Started => Control::Run,
                TargetState::Paused => Control::Pause,
                TargetState::Stopped => continue,
            };
            if let Some(task) = running.get(id) {
                if *task.control.borrow() != desired {
                    let _ = task.control.send(desired);
                    let state = if desired == Control::Run {
                        "RUNNING"
                    } else {
                        "PAUSED"
                    };
                    self.write_status(&task_status_key(&id.connector, id.task), state, None)
                        .await;
                }
                continue;
            }
            let Some(plugin) = entry.plugin() else {
                continue;
            };
            if id.task >= entry.task_count() {
                continue;
            }
            let config = plugin.task_config(&entry.config, id.task);
            let restarts = (
                entry.restart.seq,
                entry.task_restarts.get(&id.task).copied().unwrap_or(0),
            );
            let started = self.start_task(id.clone(), plugin, config, entry.task_count(), desired);
            let started = Running {
                restarts,
                ..started
            };
            running.insert(id.clone(), started);
        }
        drop(running);
        let mut written = self.connectors.lock().await;
        written.retain(|name, _| assigned_connectors.contains(name));
        for name in assigned_connectors {
            let Some(entry) = snapshot.get(name) else {
                continue;
            };
            let state = match (entry.target, entry.plugin()) {
                (_, None) => "FAILED",
                (TargetState::Started, _) => "RUNNING",
                (TargetState::Paused, _) => "PAUSED",
                (TargetState::Stopped, _) => "STOPPED",
            };
            let now = (state, entry.restart.seq);
            if written.get(name) != Some(&now) {
                let trace = entry.plugin().is_none().then(|| {
                    format!(
                        "Failed to find any class that implements Connector and which name matches {}",
                        entry.config.get("connector.class").cloned().unwrap_or_default()
                    )
                });
                self.write_status(&connector_status_key(name), state, trace)
                    .await;
                written.insert(name.clone(), now);
            }
        }
    }

    fn start_task(
        self: &Arc<Self>,
        id: TaskId,
        plugin: Plugin,
        config: Config,
        task_count: u32,
        initial: Control,
    ) -> Running {
        let (control, receiver) = watch::channel(initial);
        let context = TaskContext {
            connector: id.connector.clone(),
            task: id.task,
            client: self.client.clone(),
            producer: self.producer.clone(),
            offsets: self.offsets.clone(),
        };
        let worker = self.clone();
        let task_config = config.clone();
        let handle = tokio::spawn(async move {
            let key = task_status_key(&id.connector, id.task);
            let state = if initial == Control::Run {
                "RUNNING"
            } else {
                "PAUSED"
            };
            worker.write_status(&key, state, None).await;
            info!(connector = %id.connector, task = id.task, "task starting");
            let result = match plugin {
                Plugin::FileSource => {
                    file_connectors::run_source(context, task_config, receiver).await
                }
                Plugin::FileSink => {
                    file_connectors::run_sink(context, task_config, task_count, receiver).await
                }
                Plugin::HttpSink => {
                    http_sink::run(context, task_config, task_count, receiver).await
                }
                Plugin::PostgresSink => {
                    postgres_sink::run(context, task_config, task_count, receiver).await
                }
            };
            if let Err(error) = result {
                warn!(connector = %id.connector, task = id.task, %error, "task failed");
                worker
                    .write_status(&key, "FAILED", Some(error.to_string()))
                    .await;
            }
        });
        Running {
            config,
            control,
            handle,
            restarts: (0, 0),
        }
    }

    /// Stops every task (before an eager rebalance, or at shutdown).
    pub async fn stop_all(&self) {
        let mut running = self.running.lock().await;
        let tasks = std::mem::take(&mut *running);
        for (id, task) in tasks {
            stop_task(&id, task).await;
        }
        self.connectors.lock().await.clear();
    }

    pub async fn running_tasks(&self) -> Vec<TaskId> {
        self.running.lock().await.keys().cloned().collect()
    }
}

async fn stop_task(id: &TaskId, task: Running) {
    info!(connector = %id.connector, task = id.task, "task stopping");
    let _ = task.control.send(Control::Stop);
    let mut handle = task.handle;
    if tokio::time::timeout(TASK_STOP_WAIT, &mut handle)
        .await
        .is_err()
    {
        warn!(connector = %id.connector, task = id.task, "task did not stop in time; aborted");
        handle.abort();
    }
}
