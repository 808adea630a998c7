//! Cluster administration: topics, partitions, configs, offsets.
//!
//! Topic changes go to the broker Metadata names as controller (in KRaft clusters any
//! broker forwards them); config descriptions of a broker go to that broker.

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::cluster::{Client, ClusterMetadata, TopicMetadata};
use crate::error::{ClientError, Result};
use crate::offsets::{list_offsets, ListedOffset, OffsetSpec, PartitionKey};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker's `num.partitions`.
    pub partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Ordered as given.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    pub fn new(name: impl Into<String>) -> Self {
        NewTopic {
            name: name.into(),
            partitions: -1,
            replication_factor: -1,
            configs: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    pub name: String,
    /// Nil when the broker's CreateTopics version does not return it (< v7).
    pub topic_id: Uuid,
    /// -1 when the broker's version does not say (< v5).
    pub partitions: i32,
    pub replication_factor: i16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigResource<'a> {
    Topic(&'a str),
    Broker(i32),
    /// The cluster-wide default of the dynamic broker configs (Kafka's empty broker name).
    BrokerDefaults,
}

impl ConfigResource<'_> {
    fn wire(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(name) => (2, name.to_string()),
            ConfigResource::Broker(id) => (4, id.to_string()),
            ConfigResource::BrokerDefaults => (4, String::new()),
        }
    }

    fn describe(&self) -> String {
        match self {
            ConfigResource::Topic(name) => format!("topic '{name}'"),
            ConfigResource::Broker(id) => format!("broker {id}"),
            ConfigResource::BrokerDefaults => "the broker defaults".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    pub is_sensitive: bool,
    /// Kafka's ConfigSource names: DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG, ...
    pub source: &'static str,
}

impl ConfigEntry {
    pub fn is_default(&self) -> bool {
        self.source == "DEFAULT_CONFIG"
    }
}

fn config_source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    Set { name: String, value: String },
    Delete { name: String },
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

#[derive(Clone)]
pub struct Admin {
    client: Client,
    /// How long the broker may take over topic changes (the request's `timeout_ms`).
    pub operation_timeout: Duration,
}

impl Admin {
    pub fn new(client: Client) -> Self {
        Admin {
            client,
            operation_timeout: Duration::from_secs(30),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn timeout_ms(&self) -> i32 {
        self.operation_timeout.as_millis().min(i32::MAX as u128) as i32
    }

    /// Creates topics; one result per topic, in the order given.
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<Vec<(String, Result<CreatedTopic>)>> {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_validate_only(validate_only)
            .with_topics(
                topics
                    .iter()
                    .map(|topic| {
                        CreatableTopic::default()
                            .with_name(topic_name(&topic.name))
                            .with_num_partitions(topic.partitions)
                            .with_replication_factor(topic.replication_factor)
                            .with_configs(
                                topic
                                    .configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(str_bytes(k))
                                            .with_value(Some(str_bytes(v)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let connection = self.client.controller_connection().await?;
        let response = connection.send(&request).await?;
        let mut by_name: HashMap<String, _> = response
            .topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t))
            .collect();
        let results = topics
            .iter()
            .map(|topic| {
                let result = match by_name.remove(&topic.name) {
                    None => Err(ClientError::Decode {
                        api: "CreateTopicsResponse",
                        version: -1,
                        address: connection.address().to_string(),
                        reason: format!("no result for topic '{}'", topic.name),
                    }),
                    Some(result) => match ClientError::from_code(
                        result.error_code,
                        result.error_message.as_deref(),
                        format!("create topic '{}'", topic.name),
                    ) {
                        Some(error) => Err(error),
                        None => Ok(CreatedTopic {
                            name: topic.name.clone(),
                            topic_id: result.topic_id,
                            partitions: result.num_partitions,
                            replication_factor: result.replication_factor,
                        }),
                    },
                };
                (topic.name.clone(), result)
            })
            .collect();
        Ok(results)
    }

    /// Creates one topic.
    pub async fn create_topic(&self, topic: NewTopic, validate_only: bool) -> Result<CreatedTopic> {
        let mut results = self
            .create_topics(std::slice::from_ref(&topic), validate_only)
            .await?;
        results.pop().expect("one result per topic").1
    }

    /// Deletes topics by name; one result per topic, in the order given.
    pub async fn delete_topics(&self, names: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let connection = self.client.controller_connection().await?;
        let version = connection.version_for_key(ApiKey::DeleteTopics)?;
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(self.timeout_ms());
        if version >= 6 {
            request.topics = names
                .iter()
                .map(|name| DeleteTopicState::default().with_name(Some(topic_name(name))))
                .collect();
        } else {
            request.topic_names = names.iter().map(|name| topic_name(name)).collect();
        }
        let response = connection.send_version(&request, version).await?;
        let mut by_name: HashMap<String, _> = response
            .responses
            .into_iter()
            .filter_map(|r| Some((r.name.clone()?.0.to_string(), r)))
            .collect();
        let results = names
            .iter()
            .map(|name| {
                let result = match by_name.remove(name) {
                    None => Err(ClientError::Decode {
                        api: "DeleteTopicsResponse",
                        version,
                        address: connection.address().to_string(),
                        reason: format!("no result for topic '{name}'"),
                    }),
                    Some(result) => match ClientError::from_code(
                        result.error_code,
                        result.error_message.as_deref(),
                        format!("delete topic '{name}'"),
                    ) {
                        Some(error) => Err(error),
                        None => Ok(()),
                    },
                };
                if result.is_ok() {
                    self.client.invalidate_topic(name);
                }
                (name.clone(), result)
            })
            .collect();
        Ok(results)
    }

    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let mut results = self.delete_topics(&[name.to_string()]).await?;
        results.pop().expect("one result").1
    }

    /// All topics (sorted by name), internal ones only when asked.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<TopicMetadata>> {
        let metadata = self.client.refresh_metadata(None, false).await?;
        Ok(metadata
            .topics
            .values()
            .filter(|t| include_internal || !t.is_internal)
            .cloned()
            .collect())
    }

    /// One topic's partitions, leaders, replicas and ISR. Never creates the topic.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicMetadata> {
        self.client.topic_metadata(name, false).await
    }

    /// Brokers, controller and cluster id.
    pub async fn describe_cluster(&self) -> Result<ClusterMetadata> {
        let metadata = self.client.refresh_metadata(Some(&[]), false).await?;
        Ok((*metadata).clone())
    }

    pub async fn describe_configs(&self, resource: ConfigResource<'_>) -> Result<Vec<ConfigEntry>> {
        let (resource_type, resource_name) = resource.wire();
        let connection = match resource {
            ConfigResource::Broker(id) => self.client.broker_connection(id).await?,
            ConfigResource::Topic(_) | ConfigResource::BrokerDefaults => {
                self.client.any_connection().await?
            }
        };
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(str_bytes(&resource_name))
                .with_configuration_keys(None),
        ]);
        let response = connection.send(&request).await?;
        let result = response
            .results
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Decode {
                api: "DescribeConfigsResponse",
                version: -1,
                address: connection.address().to_string(),
                reason: "no result".into(),
            })?;
        if let Some(error) = ClientError::from_code(
            result.error_code,
            result.error_message.as_deref(),
            format!("describe configs of {}", resource.describe()),
        ) {
            return Err(error);
        }
        let mut entries: Vec<ConfigEntry> = result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                read_only: c.read_only,
                is_sensitive: c.is_sensitive,
                source: config_source_name(c.config_source),
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Grows a topic to `total_partitions` partitions.
    pub async fn create_partitions(
        &self,
        topic: &str,
        total_partitions: i32,
        validate_only: bool,
    ) -> Result<()> {
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_validate_only(validate_only)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(topic))
                .with_count(total_partitions)
                .with_assignments(None)]);
        let connection = self.client.controller_connection().await?;
        let response = connection.send(&request).await?;
        for result in response.results {
            if let Some(error) = ClientError::from_code(
                result.error_code,
                result.error_message.as_deref(),
                format!("create partitions of topic '{topic}'"),
            ) {
                return Err(error);
            }
        }
        self.client.invalidate_topic(topic);
        Ok(())
    }

    /// Sets and deletes config keys of one resource, leaving the others alone. Fails with
    /// [`ClientError::UnsupportedApi`] when the broker lacks IncrementalAlterConfigs.
    pub async fn incremental_alter_configs(
        &self,
        resource: ConfigResource<'_>,
        operations: &[AlterConfigOp],
        validate_only: bool,
    ) -> Result<()> {
        let (resource_type, resource_name) = resource.wire();
        let connection = match resource {
            ConfigResource::Broker(id) => self.client.broker_connection(id).await?,
            ConfigResource::Topic(_) | ConfigResource::BrokerDefaults => {
                self.client.controller_connection().await?
            }
        };
        // Checked first so the error names the missing API, not a failed request.
        connection.version_for_key(ApiKey::IncrementalAlterConfigs)?;
        let configs = operations
            .iter()
            .map(|op| match op {
                AlterConfigOp::Set { name, value } => AlterableConfig::default()
                    .with_name(str_bytes(name))
                    .with_config_operation(0)
                    .with_value(Some(str_bytes(value))),
                AlterConfigOp::Delete { name } => AlterableConfig::default()
                    .with_name(str_bytes(name))
                    .with_config_operation(1)
                    .with_value(None),
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default()
            .with_validate_only(validate_only)
            .with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(str_bytes(&resource_name))
                .with_configs(configs)]);
        let response = connection.send(&request).await?;
        for result in response.responses {
            if let Some(error) = ClientError::from_code(
                result.error_code,
                result.error_message.as_deref(),
                format!("alter configs of {}", resource.describe()),
            ) {
                return Err(error);
            }
        }
        Ok(())
    }

    /// Earliest / latest / by-timestamp offsets of partitions.
    pub async fn list_offsets(
        &self,
        requests: &[(String, i32, OffsetSpec)],
    ) -> Result<HashMap<PartitionKey, ListedOffset>> {
        list_offsets(&self.client, requests).await
    }
}
