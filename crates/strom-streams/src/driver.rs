//! [`TopologyTestDriver`]: runs a topology without a broker, as one task (partition 0) with
//! in-memory stores. Records written to a topic the topology itself reads (repartition
//! topics, or a user topic read back) are fed back in at once, in order.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::global::GlobalStores;
use crate::record::OutputRecord;
use crate::serdes::{SerdeError, SerdeRef};
use crate::store::StoreBackend;
use crate::task::Task;
use crate::topology::Topology;
use crate::StreamsError;

/// Feed-backs per input record before the driver assumes a topology that loops forever.
const FEEDBACK_RECORDS_MAX: usize = 1_000_000;

/// A typed topic for the driver: a name and its serdes.
pub struct TestTopic<K, V> {
    pub name: String,
    pub keys: SerdeRef<K>,
    pub values: SerdeRef<V>,
}

impl<K, V> TestTopic<K, V> {
    pub fn new(name: &str, keys: SerdeRef<K>, values: SerdeRef<V>) -> TestTopic<K, V> {
        TestTopic {
            name: name.to_string(),
            keys,
            values,
        }
    }
}

/// A record read back from an output topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord<K, V> {
    pub key: K,
    pub value: V,
    pub timestamp_ms: i64,
}

pub struct TopologyTestDriver {
    task: Task,
    globals: Arc<GlobalStores>,
    outputs: BTreeMap<String, VecDeque<OutputRecord>>,
}

impl TopologyTestDriver {
    /// A driver with application id `test`.
    pub fn new(topology: Topology) -> Result<TopologyTestDriver, StreamsError> {
        TopologyTestDriver::with_application_id(topology, "test")
    }

    pub fn with_application_id(
        topology: Topology,
        application_id: &str,
    ) -> Result<TopologyTestDriver, StreamsError> {
        let names: Vec<String> = topology.stores.iter().map(|s| s.name.clone()).collect();
        let stores = StoreBackend::Memory.open("0_0", &names)?;
        let globals = Arc::new(GlobalStores::new(topology.globals()));
        let mut task = Task::new(Arc::new(topology), application_id, 0, stores)?;
        task.set_globals(globals.clone());
        Ok(TopologyTestDriver {
            task,
            globals,
            outputs: BTreeMap::new(),
        })
    }

    /// Pipe one raw record into `topic`.
    pub fn pipe_raw(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp_ms: i64,
    ) -> Result<(), StreamsError> {
        if self.globals.apply(topic, key, value) {
            return Ok(());
        }
        self.task.process(topic, key, value, timestamp_ms)?;
        self.collect()
    }

    /// Pipe one typed record into a topic.
    pub fn pipe<K, V>(
        &mut self,
        topic: &TestTopic<K, V>,
        key: &K,
        value: &V,
        timestamp_ms: i64,
    ) -> Result<(), StreamsError> {
        let key = topic.keys.serialize(key);
        let value = topic.values.serialize(value);
        self.pipe_raw(&topic.name, key.as_deref(), value.as_deref(), timestamp_ms)
    }

    /// Set what happens to undeserializable input (default: skip and count).
    pub fn on_undeserializable(&mut self, policy: crate::OnError) {
        self.task.on_undeserializable(policy);
    }

    /// Let wall-clock punctuators see `now_ms`.
    pub fn advance_wall_clock(&mut self, now_ms: i64) -> Result<(), StreamsError> {
        self.task.wall_clock(now_ms)?;
        self.collect()
    }

    fn collect(&mut self) -> Result<(), StreamsError> {
        let mut fed_back = 0;
        loop {
            let written = self.task.take_outputs();
            if written.is_empty() {
                return Ok(());
            }
            for record in written {
                self.globals.apply(
                    &record.topic,
                    record.key.as_deref(),
                    record.value.as_deref(),
                );
                if self.task.reads(&record.topic) {
                    fed_back += 1;
                    if fed_back > FEEDBACK_RECORDS_MAX {
                        return Err(StreamsError::FeedbackLoop);
                    }
                    self.task.process(
                        &record.topic,
                        record.key.as_deref(),
                        record.value.as_deref(),
                        record.timestamp_ms,
                    )?;
                }
                self.outputs
                    .entry(record.topic.clone())
                    .or_default()
                    .push_back(record);
            }
        }
    }

    /// Take every record written to `topic` so far (outputs, repartition and changelog
    /// topics alike), as bytes.
    pub fn read_raw(&mut self, topic: &str) -> Vec<OutputRecord> {
        self.outputs
            .remove(topic)
            .map(Vec::from)
            .unwrap_or_default()
    }

    /// Take every record written to a topic so far, deserialized.
    pub fn read<K, V>(
        &mut self,
        topic: &TestTopic<K, V>,
    ) -> Result<Vec<TestRecord<K, V>>, SerdeError> {
        self.read_raw(&topic.name)
            .into_iter()
            .map(|record| {
                Ok(TestRecord {
                    key: topic.keys.deserialize(record.key.as_deref())?,
                    value: topic.values.deserialize(record.value.as_deref())?,
                    timestamp_ms: record.timestamp_ms,
                })
            })
            .collect()
    }

    /// Take the records of a topic as (key, value) pairs.
    pub fn read_key_values<K, V>(
        &mut self,
        topic: &TestTopic<K, V>,
    ) -> Result<Vec<(K, V)>, SerdeError> {
        Ok(self
            .read(topic)?
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect())
    }

    /// The current value of `key` in a store (an interactive query), deserialized.
    pub fn store_get<K, V>(
        &self,
        store: &str,
        keys: &SerdeRef<K>,
        values: &SerdeRef<V>,
        key: &K,
    ) -> Result<Option<V>, StreamsError> {
        let Some(key_bytes) = keys.serialize(key) else {
            return Ok(None);
        };
        match self.task.query(store, &key_bytes)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(values.deserialize(Some(&bytes)).map_err(
                |source| StreamsError::CorruptStore {
                    store: store.to_string(),
                    source,
                },
            )?)),
        }
    }

    /// The value of `key` in a global table's store, deserialized.
    pub fn global_get<K, V>(
        &self,
        table: &crate::GlobalKTable<K, V>,
        key: &K,
    ) -> Result<Option<V>, StreamsError> {
        let Some(key_bytes) = table.keys.serialize(key) else {
            return Ok(None);
        };
        match self.globals.get(&table.store, &key_bytes)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(
                table
                    .values
                    .deserialize(Some(&bytes))
                    .map_err(crate::task::corrupt(&table.store))?,
            )),
        }
    }

    /// Records dropped as late (past a window's grace), and skipped as undeserializable.
    pub fn dropped_late_records(&self) -> u64 {
        self.task.context().dropped_late_records
    }

    pub fn skipped_records(&self) -> u64 {
        self.task.context().skipped_records
    }
}
