//! Admin calls for configs and records beyond [`crate::admin`]: incremental config changes
//! with all four operations (SET, DELETE, APPEND, SUBTRACT), DeleteRecords, DescribeLogDirs
//! and DescribeProducers. Partition-level calls go to each partition's leader.

use std::collections::BTreeMap;

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DeleteRecordsRequest, DescribeLogDirsRequest, DescribeProducersRequest,
    IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::{Admin, ConfigResource};
use crate::error::{ClientError, Result};

/// One IncrementalAlterConfigs operation. APPEND and SUBTRACT apply to list configs
/// (`cleanup.policy`, ...) and take comma-separated items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    Set { name: String, value: String },
    Delete { name: String },
    Append { name: String, value: String },
    Subtract { name: String, value: String },
}

impl ConfigOp {
    fn wire(&self) -> AlterableConfig {
        let (name, operation, value) = match self {
            ConfigOp::Set { name, value } => (name, 0, Some(value)),
            ConfigOp::Delete { name } => (name, 1, None),
            ConfigOp::Append { name, value } => (name, 2, Some(value)),
            ConfigOp::Subtract { name, value } => (name, 3, Some(value)),
        };
        AlterableConfig::default()
            .with_name(str_bytes(name))
            .with_config_operation(operation)
            .with_value(value.map(|v| str_bytes(v)))
    }
}

/// One log directory of a broker (DescribeLogDirs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirInfo {
    pub path: String,
    /// -1 when the broker does not say (DescribeLogDirs < v4).
    pub total_bytes: i64,
    pub usable_bytes: i64,
    /// (topic, partition) -> bytes on disk.
    pub partitions: BTreeMap<(String, i32), i64>,
}

/// One idempotent producer of a partition (DescribeProducers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerInfo {
    pub partition: i32,
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub last_sequence: i32,
    pub last_timestamp_ms: i64,
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn wire_resource(resource: &ConfigResource<'_>) -> (i8, String, String) {
    match resource {
        ConfigResource::Topic(name) => (2, name.to_string(), format!("topic '{name}'")),
        ConfigResource::Broker(id) => (4, id.to_string(), format!("broker {id}")),
        ConfigResource::BrokerDefaults => (4, String::new(), "the broker defaults".to_string()),
    }
}

impl Admin {
    /// Applies `operations` to one resource atomically (the broker checks them all first).
    pub async fn alter_config_ops(
        &self,
        resource: ConfigResource<'_>,
        operations: &[ConfigOp],
        validate_only: bool,
    ) -> Result<()> {
        let (resource_type, resource_name, what) = wire_resource(&resource);
        let connection = match resource {
            ConfigResource::Broker(id) => self.client().broker_connection(id).await?,
            ConfigResource::Topic(_) | ConfigResource::BrokerDefaults => {
                self.client().controller_connection().await?
            }
        };
        connection.version_for_key(ApiKey::IncrementalAlterConfigs)?;
        let request = IncrementalAlterConfigsRequest::default()
            .with_validate_only(validate_only)
            .with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(str_bytes(&resource_name))
                .with_configs(operations.iter().map(ConfigOp::wire).collect())]);
        let response = connection.send(&request).await?;
        for result in response.responses {
            if let Some(error) = ClientError::from_code(
                result.error_code,
                result.error_message.as_deref(),
                format!("alter configs of {what}"),
            ) {
                return Err(error);
            }
        }
        Ok(())
    }

    /// Moves the log start of partitions of `topic` to the given offsets (-1 = the high
    /// watermark). One result per partition: the new low watermark, or the error.
    pub async fn delete_records(
        &self,
        topic: &str,
        offsets: &[(i32, i64)],
    ) -> Result<Vec<(i32, Result<i64>)>> {
        let metadata = self.describe_topic(topic).await?;
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        let mut results = Vec::new();
        for &(partition, offset) in offsets {
            match metadata.partition(partition) {
                Some(p) if p.leader >= 0 => by_leader
                    .entry(p.leader)
                    .or_default()
                    .push((partition, offset)),
                _ => results.push((
                    partition,
                    Err(ClientError::from_code(
                        3,
                        None,
                        format!("delete records of {topic}-{partition}"),
                    )
                    .expect("non-zero code")),
                )),
            }
        }
        for (leader, partitions) in by_leader {
            let connection = self.client().broker_connection(leader).await?;
            let request = DeleteRecordsRequest::default()
                .with_timeout_ms(self.operation_timeout.as_millis().min(i32::MAX as u128) as i32)
                .with_topics(vec![DeleteRecordsTopic::default()
                    .with_name(TopicName(str_bytes(topic)))
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|&(partition, offset)| {
                                DeleteRecordsPartition::default()
                                    .with_partition_index(partition)
                                    .with_offset(offset)
                            })
                            .collect(),
                    )]);
            let response = connection.send(&request).await?;
            for topic_result in response.topics {
                for p in topic_result.partitions {
                    let outcome = match ClientError::from_code(
                        p.error_code,
                        None,
                        format!("delete records of {topic}-{}", p.partition_index),
                    ) {
                        Some(error) => Err(error),
                        None => Ok(p.low_watermark),
                    };
                    results.push((p.partition_index, outcome));
                }
            }
        }
        results.sort_by_key(|(partition, _)| *partition);
        Ok(results)
    }

    /// The log directories of broker `broker_id` with every partition's size.
    pub async fn describe_log_dirs(&self, broker_id: i32) -> Result<Vec<LogDirInfo>> {
        let connection = self.client().broker_connection(broker_id).await?;
        let response = connection
            .send(&DescribeLogDirsRequest::default().with_topics(None))
            .await?;
        if let Some(error) = ClientError::from_code(
            response.error_code,
            None,
            format!("describe log dirs of broker {broker_id}"),
        ) {
            return Err(error);
        }
        let mut dirs = Vec::new();
        for result in response.results {
            if let Some(error) = ClientError::from_code(
                result.error_code,
                None,
                format!("log dir {} of broker {broker_id}", result.log_dir.as_str()),
            ) {
                return Err(error);
            }
            let mut partitions = BTreeMap::new();
            for topic in result.topics {
                for p in topic.partitions {
                    partitions.insert(
                        (topic.name.0.to_string(), p.partition_index),
                        p.partition_size,
                    );
                }
            }
            dirs.push(LogDirInfo {
                path: result.log_dir.to_string(),
                total_bytes: result.total_bytes,
                usable_bytes: result.usable_bytes,
                partitions,
            });
        }
        Ok(dirs)
    }

    /// Idempotent producers of every partition of `topic` (from each partition's leader).
    pub async fn describe_producers(&self, topic: &str) -> Result<Vec<ProducerInfo>> {
        let metadata = self.describe_topic(topic).await?;
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in &metadata.partitions {
            by_leader.entry(p.leader).or_default().push(p.partition);
        }
        let mut out = Vec::new();
        for (leader, partitions) in by_leader {
            if leader < 0 {
                continue;
            }
            let connection = self.client().broker_connection(leader).await?;
            let request =
                DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
                    .with_name(TopicName(str_bytes(topic)))
                    .with_partition_indexes(partitions)]);
            let response = connection.send(&request).await?;
            for topic_response in response.topics {
                for p in topic_response.partitions {
                    if let Some(error) = ClientError::from_code(
                        p.error_code,
                        p.error_message.as_deref(),
                        format!("describe producers of {topic}-{}", p.partition_index),
                    ) {
                        return Err(error);
                    }
                    for state in p.active_producers {
                        out.push(ProducerInfo {
                            partition: p.partition_index,
                            producer_id: state.producer_id.0,
                            producer_epoch: state.producer_epoch,
                            last_sequence: state.last_sequence,
                            last_timestamp_ms: state.last_timestamp,
                        });
                    }
                }
            }
        }
        out.sort_by_key(|p| (p.partition, p.producer_id));
        Ok(out)
    }
}
