//! A compacted key-value log: the latest JSON value per key, kept in memory and backed by a
//! compacted topic (distributed workers) or by memory and an optional file (standalone).
//! Kafka Connect's configs, offsets and statuses are three of these.
//!
//! Topic-backed: one reader task consumes every partition from the beginning and applies
//! each record in order; a write is produced with acks=all and [`KvLog::put`] returns once
//! the reader has applied it, so a worker reads its own writes. A null value (tombstone)
//! deletes the key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::Value;
use strom_client::{
    Acks, Client, Consumer, ConsumerConfig, NewTopic, Producer, ProducerConfig, ProducerRecord,
    SeekTo,
};
use tokio::sync::watch;
use tracing::warn;

use crate::error::{ConnectError, Result};

/// How long a write or a read-to-end waits for the reader.
const READ_WAIT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Inner {
    map: BTreeMap<String, Value>,
    /// Per partition, the next offset the reader will apply.
    positions: BTreeMap<i32, i64>,
}

enum Backend {
    Memory {
        file: Option<PathBuf>,
    },
    Topic {
        topic: String,
        producer: Arc<Producer>,
        client: Client,
        reader: tokio::task::JoinHandle<()>,
    },
}

pub struct KvLog {
    inner: Arc<Mutex<Inner>>,
    /// Bumped after every applied record, so watchers wake.
    version: watch::Sender<u64>,
    backend: Backend,
}

impl Drop for KvLog {
    fn drop(&mut self) {
        if let Backend::Topic { reader, .. } = &self.backend {
            reader.abort();
        }
    }
}

impl KvLog {
    /// In memory, persisted to `file` (JSON object) after each write when given.
    pub fn memory(file: Option<PathBuf>) -> Result<KvLog> {
        let mut inner = Inner::default();
        if let Some(path) = &file {
            match std::fs::read(path) {
                Ok(bytes) => {
                    let map: BTreeMap<String, Value> =
                        serde_json::from_slice(&bytes).map_err(|e| {
                            ConnectError::bad_request(format!(
                                "offsets file {} is not a JSON object: {e}",
                                path.display()
                            ))
                        })?;
                    inner.map = map;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ConnectError::Io {
                        context: format!("read {}", path.display()),
                        source,
                    })
                }
            }
        }
        Ok(KvLog {
            inner: Arc::new(Mutex::new(inner)),
            version: watch::channel(0).0,
            backend: Backend::Memory { file },
        })
    }

    /// Backed by `topic`, created compacted with `partitions` and `replication_factor`
    /// (-1: the broker's default) when missing, read to its end before returning.
    pub async fn topic(
        client: Client,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<KvLog> {
        let admin = strom_client::Admin::new(client.clone());
        let mut new_topic = NewTopic::new(topic);
        new_topic.partitions = partitions;
        new_topic.replication_factor = replication_factor;
        new_topic.configs = vec![("cleanup.policy".into(), "compact".into())];
        match admin.create_topic(new_topic, false).await {
            Ok(_) => {}
            // TOPIC_ALREADY_EXISTS
            Err(error) if error.code() == Some(36) => {}
            Err(error) => return Err(error.into()),
        }
        let partition_count = client.topic_metadata(topic, false).await?.partitions.len() as i32;
        // The reader long-polls (200 ms fetches); on its own connections, so that requests
        // of the worker's other users are not queued behind its fetches (a broker answers
        // one connection's requests in order).
        let reader_client = Client::connect(client.config().clone()).await?;
        let mut consumer = Consumer::new(
            reader_client,
            ConsumerConfig {
                auto_offset_reset: Some(SeekTo::Earliest),
                max_wait: Duration::from_millis(200),
                ..ConsumerConfig::default()
            },
        );
        let assignment: Vec<(String, i32)> = (0..partition_count)
            .map(|p| (topic.to_string(), p))
            .collect();
        consumer.assign(&assignment).await?;
        consumer.seek_all(SeekTo::Earliest).await?;
        let inner = Arc::new(Mutex::new(Inner::default()));
        let version = watch::channel(0).0;
        let reader = tokio::spawn(read_loop(consumer, inner.clone(), version.clone()));
        let producer = Producer::new(
            client.clone(),
            ProducerConfig {
                acks: Acks::All,
                linger: Duration::from_millis(0),
                ..ProducerConfig::default()
            },
        )
        .await?;
        let log = KvLog {
            inner,
            version,
            backend: Backend::Topic {
                topic: topic.to_string(),
                producer: Arc::new(producer),
                client,
                reader,
            },
        };
        log.read_to_end().await?;
        Ok(log)
    }

    pub fn get(&self, key: &str) -> Option<Value> {
        self.inner.lock().map.get(key).cloned()
    }

    /// Every (key, value) whose key starts with `prefix`.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(String, Value)> {
        self.inner
            .lock()
            .map
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn snapshot(&self) -> BTreeMap<String, Value> {
        self.inner.lock().map.clone()
    }

    /// Wakes after each applied record.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Writes `value` (None deletes) and returns once this worker has applied it.
    pub async fn put(&self, key: &str, value: Option<Value>) -> Result<()> {
        match &self.backend {
            Backend::Memory { file } => {
                let bytes = {
                    let mut inner = self.inner.lock();
                    match value {
                        Some(value) => inner.map.insert(key.to_string(), value),
                        None => inner.map.remove(key),
                    };
                    file.as_ref()
                        .map(|_| serde_json::to_vec_pretty(&inner.map).unwrap_or_default())
                };
                if let (Some(path), Some(bytes)) = (file, bytes) {
                    write_atomically(path, &bytes)?;
                }
                self.version.send_modify(|v| *v += 1);
                Ok(())
            }
            Backend::Topic {
                topic, producer, ..
            } => {
                let mut record = ProducerRecord::new(topic.clone(), Bytes::new());
                record.value = value.map(|v| Bytes::from(v.to_string()));
                record = record.with_key(Bytes::from(key.to_string()));
                let written = producer.send_and_wait(record).await?;
                self.wait_applied(written.partition, written.offset + 1)
                    .await
            }
        }
    }

    async fn wait_applied(&self, partition: i32, position: i64) -> Result<()> {
        let mut changes = self.version.subscribe();
        let wait = async {
            loop {
                let at = self
                    .inner
                    .lock()
                    .positions
                    .get(&partition)
                    .copied()
                    .unwrap_or(0);
                if at >= position {
                    return;
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(READ_WAIT, wait)
            .await
            .map_err(|_| ConnectError::Timeout {
                what: format!("reading partition {partition} to offset {position}"),
            })
    }

    /// Returns once every record written before the call has been applied.
    pub async fn read_to_end(&self) -> Result<()> {
        let Backend::Topic { topic, client, .. } = &self.backend else {
            return Ok(());
        };
        let admin = strom_client::Admin::new(client.clone());
        let partitions: Vec<i32> = client
            .topic_metadata(topic, false)
            .await?
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect();
        let specs: Vec<(String, i32, strom_client::OffsetSpec)> = partitions
            .iter()
            .map(|p| (topic.clone(), *p, strom_client::OffsetSpec::Latest))
            .collect();
        let ends = admin.list_offsets(&specs).await?;
        for ((_, partition), end) in ends {
            self.wait_applied(partition, end.offset).await?;
        }
        Ok(())
    }
}

async fn read_loop(mut consumer: Consumer, inner: Arc<Mutex<Inner>>, version: watch::Sender<u64>) {
    for (topic, partition) in consumer.assignment() {
        let _ = topic;
        inner.lock().positions.insert(partition, 0);
    }
    loop {
        match consumer.poll().await {
            Ok(records) => {
                {
                    let mut inner = inner.lock();
                    for record in &records {
                        let Some(key) = record
                            .key
                            .as_ref()
                            .and_then(|k| std::str::from_utf8(k).ok())
                        else {
                            continue;
                        };
                        let value = record
                            .value
                            .as_ref()
                            .and_then(|v| serde_json::from_slice::<Value>(v).ok());
                        match value {
                            Some(value) if !value.is_null() => {
                                inner.map.insert(key.to_string(), value);
                            }
                            _ => {
                                inner.map.remove(key);
                            }
                        }
                    }
                    for (topic, partition) in consumer.assignment() {
                        if let Some(position) = consumer.position(&topic, partition) {
                            inner.positions.insert(partition, position);
                        }
                    }
                }
                version.send_modify(|v| *v += 1);
            }
            Err(error) => {
                warn!(%error, "reading a Connect internal topic failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension("tmp");
    let io = |source| ConnectError::Io {
        context: format!("write {}", path.display()),
        source,
    };
    std::fs::write(&temporary, bytes).map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}
