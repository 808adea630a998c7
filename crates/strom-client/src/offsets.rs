//! ListOffsets: the earliest, latest, or first-at-timestamp offset of partitions, asked
//! of each partition's leader. Shared by the consumer (seek) and admin.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::Client;
use crate::error::{needs_metadata_refresh, ClientError, Result};

/// Which offset to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log-end offset (the offset the next record will get).
    Latest,
    /// The first offset whose timestamp is at or after this many ms since the epoch;
    /// the log-end offset when there is none.
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire_timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    pub offset: i64,
    /// The timestamp of the record found (-1 for earliest/latest).
    pub timestamp_ms: i64,
}

pub type PartitionKey = (String, i32);

/// Looks up offsets, retrying partitions whose leader moved. Every requested partition
/// is in the result or the call fails.
pub async fn list_offsets(
    client: &Client,
    requests: &[(String, i32, OffsetSpec)],
) -> Result<HashMap<PartitionKey, ListedOffset>> {
    let mut results = HashMap::with_capacity(requests.len());
    let mut pending: Vec<(String, i32, OffsetSpec)> = requests.to_vec();
    let mut attempt = 0;
    while !pending.is_empty() {
        let mut by_leader: BTreeMap<i32, Vec<(String, i32, OffsetSpec)>> = BTreeMap::new();
        let mut retry = Vec::new();
        let mut last_error = None;
        for (topic, partition, spec) in pending.drain(..) {
            match client.leader_for(&topic, partition).await {
                Ok(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .push((topic, partition, spec)),
                Err(error) if error.is_retriable() => {
                    client.invalidate_topic(&topic);
                    last_error = Some(error);
                    retry.push((topic, partition, spec));
                }
                Err(error) => return Err(error),
            }
        }
        for (leader, partitions) in by_leader {
            let connection = match client.broker_connection(leader).await {
                Ok(connection) => connection,
                Err(error) if error.is_retriable() => {
                    last_error = Some(error);
                    retry.extend(partitions);
                    continue;
                }
                Err(error) => return Err(error),
            };
            let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
            for (topic, partition, spec) in &partitions {
                topics.entry(topic.as_str()).or_default().push(
                    ListOffsetsPartition::default()
                        .with_partition_index(*partition)
                        .with_timestamp(spec.wire_timestamp()),
                );
            }
            let request = ListOffsetsRequest::default()
                .with_replica_id((-1).into())
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(name, partitions)| {
                            ListOffsetsTopic::default()
                                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                                .with_partitions(partitions)
                        })
                        .collect(),
                );
            let response = match connection.send(&request).await {
                Ok(response) => response,
                Err(error) if error.is_retriable() => {
                    last_error = Some(error);
                    retry.extend(partitions);
                    continue;
                }
                Err(error) => return Err(error),
            };
            let mut answered: HashMap<PartitionKey, (i16, ListedOffset)> = HashMap::new();
            for topic in response.topics {
                for partition in topic.partitions {
                    answered.insert(
                        (topic.name.0.to_string(), partition.partition_index),
                        (
                            partition.error_code,
                            ListedOffset {
                                offset: partition.offset,
                                timestamp_ms: partition.timestamp,
                            },
                        ),
                    );
                }
            }
            for (topic, partition, spec) in partitions {
                let key = (topic, partition);
                match answered.remove(&key) {
                    Some((0, listed)) => {
                        results.insert(key, listed);
                    }
                    Some((code, _)) => {
                        let error = ClientError::from_code(
                            code,
                            None,
                            format!("list offsets of {}-{}", key.0, key.1),
                        )
                        .expect("non-zero");
                        if !error.is_retriable() {
                            return Err(error);
                        }
                        if needs_metadata_refresh(code) {
                            client.invalidate_topic(&key.0);
                        }
                        last_error = Some(error);
                        retry.push((key.0, key.1, spec));
                    }
                    None => retry.push((key.0, key.1, spec)),
                }
            }
        }
        if retry.is_empty() {
            break;
        }
        if attempt >= client.config().retries_max {
            return Err(last_error.unwrap_or(ClientError::NoLeader {
                topic: retry[0].0.clone(),
                partition: retry[0].1,
                attempts: attempt + 1,
            }));
        }
        tokio::time::sleep(client.config().backoff(attempt)).await;
        attempt += 1;
        pending = retry;
    }
    Ok(results)
}
