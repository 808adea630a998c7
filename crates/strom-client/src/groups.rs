//! Consumer-group administration: list, describe, committed offsets, admin commits and
//! deletion. Works against any Kafka-compatible cluster: each request goes to the group's
//! coordinator (FindCoordinator), at the highest version both sides speak within the
//! ranges below.
//!
//! Group *membership* (JoinGroup/SyncGroup/Heartbeat) is not here: the native consumer
//! reads assigned partitions; the CLI only administers groups.

use std::collections::BTreeMap;

use bytes::Buf;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::cluster::Client;
use crate::connection::{api_key_name, negotiate, Connection};
use crate::error::{ClientError, Result};

/// The versions of the group APIs this module speaks, as (key, min, max).
pub const GROUP_API_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::FindCoordinator, 1, 4),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::OffsetCommit, 2, 7),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::ConsumerGroupDescribe, 0, 0),
];

const COORDINATOR_KEY_TYPE_GROUP: i8 = 0;
/// Attempts while the coordinator is loading or moving.
const COORDINATOR_ATTEMPTS_MAX: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    /// Empty when the broker does not report states (ListGroups < v4).
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Assigned partitions per topic (decoded from the consumer protocol's assignment).
    pub assignment: BTreeMap<String, Vec<i32>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    /// The classic assignor in use, or the server-side assignor of a consumer group.
    pub protocol: String,
    /// "classic" or "consumer".
    pub group_type: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub metadata: Option<String>,
}

fn str_bytes(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn version(connection: &Connection, api_key: ApiKey) -> Result<i16> {
    let &(_, min, max) = GROUP_API_VERSIONS
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .expect("listed");
    let broker = connection.broker_range(api_key);
    negotiate((min, max), broker).ok_or_else(|| ClientError::UnsupportedApi {
        api: api_key_name(api_key),
        address: connection.address().to_string(),
        client_min: min,
        client_max: max,
        broker,
    })
}

fn broker_error(code: i16, message: Option<&StrBytes>, context: String) -> Option<ClientError> {
    ClientError::from_code(code, message.map(|m| m.as_str()), context)
}

/// COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR.
fn coordinator_retriable(error: &ClientError) -> bool {
    matches!(error.code(), Some(14..=16))
}

/// The connection to `group`'s coordinator.
pub async fn coordinator(client: &Client, group: &str) -> Result<Connection> {
    let mut attempt = 0;
    loop {
        let connection = client.any_connection().await?;
        let v = version(&connection, ApiKey::FindCoordinator)?;
        let request = if v >= 4 {
            FindCoordinatorRequest::default()
                .with_key_type(COORDINATOR_KEY_TYPE_GROUP)
                .with_coordinator_keys(vec![str_bytes(group)])
        } else {
            FindCoordinatorRequest::default()
                .with_key_type(COORDINATOR_KEY_TYPE_GROUP)
                .with_key(str_bytes(group))
        };
        let response = connection.send_version(&request, v).await?;
        let (code, message, node_id) = if v >= 4 {
            let coordinator = response
                .coordinators
                .first()
                .ok_or_else(|| ClientError::Decode {
                    api: "FindCoordinatorResponse",
                    version: v,
                    address: connection.address().to_string(),
                    reason: "no coordinator in the answer".into(),
                })?;
            (
                coordinator.error_code,
                coordinator.error_message.clone(),
                coordinator.node_id.0,
            )
        } else {
            (
                response.error_code,
                response.error_message,
                response.node_id.0,
            )
        };
        match broker_error(
            code,
            message.as_ref(),
            format!("find coordinator of group '{group}'"),
        ) {
            None => {
                if !client.metadata().brokers.contains_key(&node_id) {
                    client.refresh_metadata(Some(&[]), false).await?;
                }
                return client.broker_connection(node_id).await;
            }
            Some(error) if coordinator_retriable(&error) && attempt < COORDINATOR_ATTEMPTS_MAX => {
                tokio::time::sleep(client.config().backoff(attempt)).await;
                attempt += 1;
            }
            Some(error) => return Err(error),
        }
    }
}

/// Every group of every broker, sorted by id.
pub async fn list_groups(client: &Client) -> Result<Vec<GroupListing>> {
    let broker_ids: Vec<i32> = client.metadata().brokers.keys().copied().collect();
    let mut groups = Vec::new();
    for broker_id in broker_ids {
        let connection = client.broker_connection(broker_id).await?;
        let v = version(&connection, ApiKey::ListGroups)?;
        let response = connection
            .send_version(&ListGroupsRequest::default(), v)
            .await?;
        if let Some(error) = broker_error(response.error_code, None, "list groups".into()) {
            return Err(error);
        }
        groups.extend(response.groups.into_iter().map(|g| GroupListing {
            group_id: g.group_id.0.to_string(),
            protocol_type: g.protocol_type.to_string(),
            state: g.group_state.to_string(),
        }));
    }
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    groups.dedup_by(|a, b| a.group_id == b.group_id);
    Ok(groups)
}

/// ConsumerProtocolAssignment: version, [topic, [partition]], user data.
pub fn decode_consumer_assignment(mut bytes: &[u8]) -> BTreeMap<String, Vec<i32>> {
    let mut out = BTreeMap::new();
    if bytes.remaining() < 6 {
        return out;
    }
    let _version = bytes.get_i16();
    let topics = bytes.get_i32();
    for _ in 0..topics.max(0) {
        if bytes.remaining() < 2 {
            break;
        }
        let len = bytes.get_i16();
        if len < 0 || bytes.remaining() < len as usize + 4 {
            break;
        }
        let topic = String::from_utf8_lossy(&bytes[..len as usize]).into_owned();
        bytes.advance(len as usize);
        let count = bytes.get_i32();
        if count < 0 || bytes.remaining() < count as usize * 4 {
            break;
        }
        let partitions = (0..count).map(|_| bytes.get_i32()).collect();
        out.insert(topic, partitions);
    }
    out
}

/// DescribeGroups, falling back to ConsumerGroupDescribe for consumer-protocol groups.
pub async fn describe_group(client: &Client, group: &str) -> Result<GroupDescription> {
    let connection = coordinator(client, group).await?;
    let v = version(&connection, ApiKey::DescribeGroups)?;
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes(group))]);
    let response = connection.send_version(&request, v).await?;
    let described = response
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Decode {
            api: "DescribeGroupsResponse",
            version: v,
            address: connection.address().to_string(),
            reason: "no group in the answer".into(),
        })?;
    let not_classic = described.error_code == 69 || described.group_state.as_str() == "Dead";
    if not_classic
        && connection
            .broker_range(ApiKey::ConsumerGroupDescribe)
            .is_some()
    {
        if let Ok(description) = describe_consumer_group(client, &connection, group).await {
            return Ok(description);
        }
    }
    if let Some(error) = broker_error(
        described.error_code,
        described.error_message.as_ref(),
        format!("describe group '{group}'"),
    ) {
        return Err(error);
    }
    let is_consumer = described.protocol_type.as_str() == "consumer";
    Ok(GroupDescription {
        group_id: group.to_string(),
        state: described.group_state.to_string(),
        protocol_type: described.protocol_type.to_string(),
        protocol: described.protocol_data.to_string(),
        group_type: "classic".into(),
        members: described
            .members
            .into_iter()
            .map(|m| MemberDescription {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: if is_consumer {
                    decode_consumer_assignment(&m.member_assignment)
                } else {
                    BTreeMap::new()
                },
            })
            .collect(),
    })
}

async fn describe_consumer_group(
    client: &Client,
    connection: &Connection,
    group: &str,
) -> Result<GroupDescription> {
    let v = version(connection, ApiKey::ConsumerGroupDescribe)?;
    let request =
        ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(str_bytes(group))]);
    let response = connection.send_version(&request, v).await?;
    let described = response
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Decode {
            api: "ConsumerGroupDescribeResponse",
            version: v,
            address: connection.address().to_string(),
            reason: "no group in the answer".into(),
        })?;
    if let Some(error) = broker_error(
        described.error_code,
        described.error_message.as_ref(),
        format!("describe group '{group}'"),
    ) {
        return Err(error);
    }
    let _ = client;
    Ok(GroupDescription {
        group_id: group.to_string(),
        state: described.group_state.to_string(),
        protocol_type: "consumer".into(),
        protocol: described.assignor_name.to_string(),
        group_type: "consumer".into(),
        members: described
            .members
            .into_iter()
            .map(|m| MemberDescription {
                member_id: m.member_id.to_string(),
                instance_id: m.instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: m
                    .assignment
                    .topic_partitions
                    .into_iter()
                    .map(|t| (t.topic_name.0.to_string(), t.partitions))
                    .collect(),
            })
            .collect(),
    })
}

/// Every committed offset of `group`, sorted by topic and partition.
pub async fn committed_offsets(client: &Client, group: &str) -> Result<Vec<CommittedOffset>> {
    let connection = coordinator(client, group).await?;
    let v = version(&connection, ApiKey::OffsetFetch)?;
    let mut offsets = Vec::new();
    if v >= 8 {
        let request =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(str_bytes(group)))
                .with_topics(None)]);
        let response = connection.send_version(&request, v).await?;
        for g in response.groups {
            if let Some(error) = broker_error(
                g.error_code,
                None,
                format!("fetch offsets of group '{group}'"),
            ) {
                return Err(error);
            }
            for t in g.topics {
                for p in t.partitions {
                    offsets.push(CommittedOffset {
                        topic: t.name.0.to_string(),
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        metadata: p.metadata.map(|m| m.to_string()),
                    });
                }
            }
        }
    } else {
        if v < 2 {
            return Err(ClientError::UnsupportedApi {
                api: "OffsetFetch (all topics)",
                address: connection.address().to_string(),
                client_min: 2,
                client_max: 7,
                broker: connection.broker_range(ApiKey::OffsetFetch),
            });
        }
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_topics(None);
        let response = connection.send_version(&request, v).await?;
        if let Some(error) = broker_error(
            response.error_code,
            None,
            format!("fetch offsets of group '{group}'"),
        ) {
            return Err(error);
        }
        for t in response.topics {
            for p in t.partitions {
                offsets.push(CommittedOffset {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    metadata: p.metadata.map(|m| m.to_string()),
                });
            }
        }
    }
    offsets.retain(|o| o.offset >= 0);
    offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(offsets)
}

/// Commits offsets as an admin (no member, generation -1): the group must be empty.
/// One result per (topic, partition), in the order given.
pub async fn commit_offsets(
    client: &Client,
    group: &str,
    offsets: &[(String, i32, i64)],
) -> Result<Vec<(String, i32, Result<()>)>> {
    let connection = coordinator(client, group).await?;
    let v = version(&connection, ApiKey::OffsetCommit)?;
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (topic, partition, offset) in offsets {
        by_topic.entry(topic.as_str()).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_metadata(Some(StrBytes::default())),
        );
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_retention_time_ms(-1)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(str_bytes(topic)))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = connection.send_version(&request, v).await?;
    let mut codes: BTreeMap<(String, i32), i16> = BTreeMap::new();
    for t in response.topics {
        for p in t.partitions {
            codes.insert((t.name.0.to_string(), p.partition_index), p.error_code);
        }
    }
    Ok(offsets
        .iter()
        .map(|(topic, partition, _)| {
            let code = codes
                .get(&(topic.clone(), *partition))
                .copied()
                .unwrap_or(0);
            let result = match broker_error(
                code,
                None,
                format!("commit offset of {topic}-{partition} for group '{group}'"),
            ) {
                Some(error) => Err(error),
                None => Ok(()),
            };
            (topic.clone(), *partition, result)
        })
        .collect())
}

/// Deletes groups (each must be empty); one result per group, in the order given.
pub async fn delete_groups(
    client: &Client,
    groups: &[String],
) -> Result<Vec<(String, Result<()>)>> {
    let mut results = Vec::with_capacity(groups.len());
    for group in groups {
        let connection = match coordinator(client, group).await {
            Ok(connection) => connection,
            Err(error) => {
                results.push((group.clone(), Err(error)));
                continue;
            }
        };
        let v = version(&connection, ApiKey::DeleteGroups)?;
        let request =
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str_bytes(group))]);
        let response = connection.send_version(&request, v).await?;
        let code = response.results.first().map(|r| r.error_code).unwrap_or(0);
        let result = match broker_error(code, None, format!("delete group '{group}'")) {
            Some(error) => Err(error),
            None => Ok(()),
        };
        results.push((group.clone(), result));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    #[test]
    fn given_consumer_assignment_bytes_when_decoded_should_list_partitions() {
        let mut buf = bytes::BytesMut::new();
        buf.put_i16(0);
        buf.put_i32(1);
        buf.put_i16(1);
        buf.put_slice(b"t");
        buf.put_i32(2);
        buf.put_i32(0);
        buf.put_i32(3);
        buf.put_i32(-1);
        let decoded = decode_consumer_assignment(&buf);
        assert_eq!(decoded.get("t"), Some(&vec![0, 3]));
        // Truncated input never panics.
        for len in 0..buf.len() {
            let _ = decode_consumer_assignment(&buf[..len]);
        }
    }
}
