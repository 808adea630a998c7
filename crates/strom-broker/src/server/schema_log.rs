//! The schema registry's log: strom-registry's [`SchemaLog`] over this broker's replica of
//! the compacted topic `_schemas` (one partition). The registry writes where this broker
//! leads the partition and reads the local replica everywhere else.

use std::sync::Arc;

use bytes::Bytes;
use strom_protocol::batch::{batch_size_bytes, BatchView};
use strom_protocol::record::decode_batch;
use strom_registry::{Appended, BoxFuture, LogError, LogRecord, SchemaLog, SCHEMAS_TOPIC};

use crate::internal_topics::{self, InternalTopic, InternalTopicError};
use crate::partition::Partition;
use crate::state::Broker;

/// `_schemas`: one partition (one writer orders every change, as Confluent's registry
/// needs), compacted, retained forever; replicated like the other internal topics.
const SCHEMAS: InternalTopic = InternalTopic {
    name: SCHEMAS_TOPIC,
    partitions: 1,
    replication_factor: 1,
    segment_bytes: 100 * 1024 * 1024,
};

/// The name under which a broker registers its registry listener with the others.
pub const REGISTRY_LISTENER_NAME: &str = "STROM_SCHEMA_REGISTRY";

pub struct BrokerSchemaLog {
    broker: Arc<Broker>,
}

impl BrokerSchemaLog {
    pub fn new(broker: Arc<Broker>) -> BrokerSchemaLog {
        BrokerSchemaLog { broker }
    }

    /// The registry listener (`host:port`) of the broker leading `_schemas`, when that is
    /// another broker that registered one.
    fn writer_elsewhere(&self) -> Option<String> {
        let leader = internal_topics::leader_of(&self.broker, SCHEMAS_TOPIC, 0);
        if leader < 0 || leader == self.broker.config().node_id {
            return None;
        }
        let image = self.broker.image();
        let registration = image.broker(leader)?;
        registration
            .listeners
            .iter()
            .find(|listener| listener.name == REGISTRY_LISTENER_NAME)
            .map(|listener| format!("{}:{}", listener.host, listener.port))
    }

    fn partition(&self) -> Option<Arc<Partition>> {
        let image = self.broker.image();
        let topic = image.topic(SCHEMAS_TOPIC)?;
        self.broker.partitions().get(topic.topic_id, 0)
    }
}

fn storage(error: impl std::fmt::Display) -> LogError {
    LogError::Storage {
        reason: error.to_string(),
    }
}

impl SchemaLog for BrokerSchemaLog {
    fn ensure_topic(&self) -> BoxFuture<'_, Result<(), LogError>> {
        Box::pin(async move {
            internal_topics::ensure_created(&self.broker, &SCHEMAS)
                .await
                .map_err(|error| LogError::Unavailable {
                    reason: error.to_string(),
                })
        })
    }

    fn reader_elsewhere(&self) -> Option<String> {
        if self.partition().is_some() {
            return None;
        }
        self.writer_elsewhere()
    }

    fn end_offset(&self) -> Result<Option<i64>, LogError> {
        Ok(self
            .partition()
            .map(|partition| partition.log.lock().log_end_offset()))
    }

    fn read(&self, from: i64, max_bytes: u32) -> Result<Vec<LogRecord>, LogError> {
        let Some(partition) = self.partition() else {
            return Ok(Vec::new());
        };
        let (info, start) = {
            let log = partition.log.lock();
            let start = from.max(log.log_start_offset());
            let end = log.log_end_offset();
            if start >= end {
                return Ok(Vec::new());
            }
            (
                log.read(start, max_bytes, end, true).map_err(storage)?,
                start,
            )
        };
        let Some(range) = info.records else {
            return Ok(Vec::new());
        };
        let bytes = range.read_to_bytes().map_err(storage)?;
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let Some(size) = batch_size_bytes(&bytes[at..]).filter(|s| at + s <= bytes.len())
            else {
                break;
            };
            let view = BatchView::parse(&bytes[at..at + size]).map_err(storage)?;
            at += size;
            if view.is_control() || view.next_offset() <= start {
                continue;
            }
            for record in decode_batch(&view).map_err(storage)? {
                if record.offset < start {
                    continue;
                }
                let Some(key) = record.key else { continue };
                out.push(LogRecord {
                    offset: record.offset,
                    key: key.to_vec(),
                    value: record.value.map(|v| v.to_vec()),
                });
            }
        }
        Ok(out)
    }

    fn append(&self, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<Appended, LogError> {
        let entries = records
            .into_iter()
            .map(|(key, value)| (Bytes::from(key), value.map(Bytes::from)))
            .collect();
        let pending = internal_topics::append(&self.broker, SCHEMAS_TOPIC, 0, entries, None)
            .map_err(|error| match error {
                InternalTopicError::NotHosted { .. } | InternalTopicError::NotLeader { .. } => {
                    LogError::NotWriter {
                        reason: error.to_string(),
                        writer: self.writer_elsewhere(),
                    }
                }
                other => storage(other),
            })?;
        let broker = self.broker.clone();
        Ok(Appended {
            committed: Box::pin(async move {
                pending
                    .committed(&broker)
                    .await
                    .map_err(|error| LogError::NotCommitted {
                        reason: error.to_string(),
                    })
            }),
        })
    }
}
