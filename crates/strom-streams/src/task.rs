//! A task: one instance of the topology for one partition number, with its own stores,
//! stream time and per-node state. Tasks are plain structs driven by the test driver or the
//! runtime: records in, output records out; no I/O.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use crate::global::GlobalStores;
use crate::record::{OutputRecord, Rec};
use crate::serdes::SerdeRef;
use crate::store::KvStore;
use crate::topology::{NodeId, Topology};
use crate::StreamsError;

/// What a processor sees of its task.
pub struct TaskContext {
    application_id: String,
    partition: i32,
    stream_time_ms: i64,
    timestamp_ms: i64,
    stores: HashMap<String, Box<dyn KvStore>>,
    changelog_topics: HashMap<String, String>,
    node_state: HashMap<NodeId, Box<dyn Any + Send>>,
    globals: Arc<GlobalStores>,
    outputs: Vec<OutputRecord>,
    /// Records dropped because their window had closed (past the grace period).
    pub dropped_late_records: u64,
    /// Input records skipped because their key or value could not be deserialized.
    pub skipped_records: u64,
}

impl TaskContext {
    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The highest record timestamp this task has seen (`i64::MIN` before the first).
    pub fn stream_time_ms(&self) -> i64 {
        self.stream_time_ms
    }

    /// The timestamp of the record being processed.
    pub fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }

    fn store(&self, name: &str) -> Result<&dyn KvStore, StreamsError> {
        self.stores
            .get(name)
            .map(|store| store.as_ref())
            .ok_or_else(|| StreamsError::UnknownStore {
                name: name.to_string(),
            })
    }

    pub fn get(&self, store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StreamsError> {
        Ok(self.store(store)?.get(key)?)
    }

    /// The instance's global stores (read only).
    pub fn globals(&self) -> &GlobalStores {
        &self.globals
    }

    /// A store's value of `key`, deserialized with `values`.
    pub fn get_value<V>(
        &self,
        store: &str,
        values: &SerdeRef<V>,
        key: &[u8],
    ) -> Result<Option<V>, StreamsError> {
        match self.get(store, key)? {
            Some(bytes) => Ok(Some(
                values.deserialize(Some(&bytes)).map_err(corrupt(store))?,
            )),
            None => Ok(None),
        }
    }

    pub fn range(
        &self,
        store: &str,
        from: &[u8],
        to: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StreamsError> {
        Ok(self.store(store)?.range(from, to)?)
    }

    /// Write to a store and to its changelog (`None` deletes; a tombstone in the changelog).
    pub fn put(
        &mut self,
        store: &str,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), StreamsError> {
        let kv = self
            .stores
            .get_mut(store)
            .ok_or_else(|| StreamsError::UnknownStore {
                name: store.to_string(),
            })?;
        kv.put(key, value)?;
        if let Some(topic) = self.changelog_topics.get(store) {
            self.outputs.push(OutputRecord {
                topic: topic.clone(),
                partition: Some(self.partition),
                key: Some(key.to_vec()),
                value: value.map(<[u8]>::to_vec),
                timestamp_ms: self.timestamp_ms,
            });
        }
        Ok(())
    }

    /// Send a record to a topic.
    pub fn send(&mut self, record: OutputRecord) {
        self.outputs.push(record);
    }

    /// A node's per-task state, created on first use.
    pub(crate) fn state<T: Default + Send + 'static>(&mut self, id: NodeId) -> &mut T {
        let entry = self
            .node_state
            .entry(id)
            .or_insert_with(|| Box::new(T::default()));
        if !entry.is::<T>() {
            // Only one node owns an id, and it always asks for the same type.
            *entry = Box::new(T::default());
        }
        match entry.downcast_mut::<T>() {
            Some(state) => state,
            None => unreachable!("the state was replaced by a T just above"),
        }
    }
}

/// The error of a store value its serde cannot read.
pub(crate) fn corrupt(store: &str) -> impl FnOnce(crate::SerdeError) -> StreamsError + '_ {
    move |source| StreamsError::CorruptStore {
        store: store.to_string(),
        source,
    }
}

/// One task. See the module doc.
pub struct Task {
    topology: Arc<Topology>,
    ctx: TaskContext,
    sources_by_topic: HashMap<String, Vec<usize>>,
    punctuating: Vec<NodeId>,
    on_undeserializable: OnError,
}

/// What a task does with an input record whose key or value cannot be deserialized
/// (Kafka's `default.deserialization.exception.handler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Log it, count it (`TaskContext::skipped_records`) and go on (LogAndContinue).
    #[default]
    Continue,
    /// Stop processing with [`StreamsError::Undeserializable`] (LogAndFail).
    Fail,
}

impl Task {
    /// A task over `stores` (opened by a [`StoreBackend`](crate::store::StoreBackend)); every
    /// store the topology names must be among them.
    pub fn new(
        topology: Arc<Topology>,
        application_id: &str,
        partition: i32,
        stores: Vec<(String, Box<dyn KvStore>)>,
    ) -> Result<Task, StreamsError> {
        let stores: HashMap<String, Box<dyn KvStore>> = stores.into_iter().collect();
        for spec in &topology.stores {
            if !stores.contains_key(&spec.name) {
                return Err(StreamsError::UnknownStore {
                    name: spec.name.clone(),
                });
            }
        }
        let changelog_topics = topology
            .stores
            .iter()
            .map(|spec| (spec.name.clone(), spec.changelog_topic(application_id)))
            .collect();
        let mut sources_by_topic: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, source) in topology.sources.iter().enumerate() {
            sources_by_topic
                .entry(source.topic.resolve(application_id))
                .or_default()
                .push(index);
        }
        let punctuating = (0..topology.nodes.len())
            .filter(|id| topology.nodes[*id].node.punctuates())
            .collect();
        Ok(Task {
            ctx: TaskContext {
                application_id: application_id.to_string(),
                partition,
                stream_time_ms: i64::MIN,
                timestamp_ms: 0,
                stores,
                changelog_topics,
                node_state: HashMap::new(),
                globals: Arc::new(GlobalStores::default()),
                outputs: Vec::new(),
                dropped_late_records: 0,
                skipped_records: 0,
            },
            topology,
            sources_by_topic,
            punctuating,
            on_undeserializable: OnError::Continue,
        })
    }

    /// Read global tables from `globals` (shared with the instance's other tasks).
    pub fn set_globals(&mut self, globals: Arc<GlobalStores>) {
        self.ctx.globals = globals;
    }

    /// Set what happens to undeserializable input records.
    pub fn on_undeserializable(&mut self, policy: OnError) {
        self.on_undeserializable = policy;
    }

    pub fn context(&self) -> &TaskContext {
        &self.ctx
    }

    /// Whether the topology reads `topic` (a resolved name).
    pub fn reads(&self, topic: &str) -> bool {
        self.sources_by_topic.contains_key(topic)
    }

    /// Process one input record of `topic`. A record whose key or value cannot be
    /// deserialized is logged, counted and skipped, or stops the task (see [`OnError`]).
    pub fn process(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp_ms: i64,
    ) -> Result<(), StreamsError> {
        let Some(sources) = self.sources_by_topic.get(topic).cloned() else {
            return Ok(());
        };
        let advanced = timestamp_ms > self.ctx.stream_time_ms;
        if advanced {
            self.ctx.stream_time_ms = timestamp_ms;
        }
        let topology = self.topology.clone();
        for index in sources {
            let source = &topology.sources[index];
            match (source.decode)(key, value) {
                Ok((key, value)) => {
                    let rec = Rec {
                        key,
                        value,
                        timestamp_ms,
                    };
                    self.run(source.node, rec)?;
                }
                Err(error) => {
                    if self.on_undeserializable == OnError::Fail {
                        tracing::error!(topic, %error, "input record cannot be deserialized; stopping");
                        return Err(StreamsError::Undeserializable {
                            topic: topic.to_string(),
                            source: error,
                        });
                    }
                    self.ctx.skipped_records += 1;
                    tracing::warn!(topic, %error, "input record skipped: cannot deserialize");
                }
            }
        }
        if advanced {
            self.punctuate()?;
        }
        Ok(())
    }

    fn punctuate(&mut self) -> Result<(), StreamsError> {
        let topology = self.topology.clone();
        for id in self.punctuating.clone() {
            let mut out = Vec::new();
            topology.nodes[id]
                .node
                .punctuate(&mut self.ctx, id, &mut out)?;
            self.forward(id, out)?;
        }
        Ok(())
    }

    /// Let wall-clock punctuators run.
    pub fn wall_clock(&mut self, now_ms: i64) -> Result<(), StreamsError> {
        let topology = self.topology.clone();
        for id in self.punctuating.clone() {
            let mut out = Vec::new();
            topology.nodes[id]
                .node
                .wall_clock(&mut self.ctx, id, now_ms, &mut out)?;
            self.forward(id, out)?;
        }
        Ok(())
    }

    fn run(&mut self, id: NodeId, rec: Rec) -> Result<(), StreamsError> {
        let node = self.topology.nodes[id].node.clone();
        self.ctx.timestamp_ms = rec.timestamp_ms;
        let mut out = Vec::new();
        node.process(&mut self.ctx, id, rec, &mut out)?;
        self.forward(id, out)
    }

    fn forward(&mut self, id: NodeId, out: Vec<Rec>) -> Result<(), StreamsError> {
        if out.is_empty() {
            return Ok(());
        }
        let topology = self.topology.clone();
        let children = &topology.nodes[id].children;
        for rec in out {
            for child in children {
                self.run(*child, rec.clone())?;
            }
        }
        Ok(())
    }

    /// Apply one changelog record to a store, without logging it again.
    pub fn restore(
        &mut self,
        store: &str,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), StreamsError> {
        let kv = self
            .ctx
            .stores
            .get_mut(store)
            .ok_or_else(|| StreamsError::UnknownStore {
                name: store.to_string(),
            })?;
        kv.put(key, value)?;
        Ok(())
    }

    /// The restore checkpoint a persistent store kept (next changelog offset to read).
    pub fn checkpoint(&self, store: &str) -> Option<i64> {
        self.ctx.stores.get(store).and_then(|kv| kv.checkpoint())
    }

    /// Flush every store, recording each store's changelog position if known.
    pub fn flush(&mut self, changelog_offsets: &HashMap<String, i64>) -> Result<(), StreamsError> {
        for (name, store) in self.ctx.stores.iter_mut() {
            store.flush(changelog_offsets.get(name).copied())?;
        }
        Ok(())
    }

    /// Records written since the last call, in order.
    pub fn take_outputs(&mut self) -> Vec<OutputRecord> {
        std::mem::take(&mut self.ctx.outputs)
    }

    /// Read a key of a local store (interactive query), as bytes.
    pub fn query(&self, store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StreamsError> {
        self.ctx.get(store, key)
    }

    /// Read a range of a local store (interactive query), as bytes.
    pub fn query_range(
        &self,
        store: &str,
        from: &[u8],
        to: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StreamsError> {
        self.ctx.range(store, from, to)
    }
}
