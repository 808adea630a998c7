//! Offset commits by a group *member* (its generation and member id), as consumers do;
//! [`crate::groups::commit_offsets`] commits as an admin, for empty groups only.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::cluster::Client;
use crate::connection::{api_key_name, negotiate};
use crate::error::{ClientError, Result};

/// OffsetCommit v7+ carries the group instance id; v2+ generation and member id.
const OFFSET_COMMIT_VERSIONS: (i16, i16) = (2, 8);

fn str_bytes(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// Commit `(topic, partition, next offset)` for `group_id` as member `member_id` of
/// `generation_id`. Fails with the first partition's error (ILLEGAL_GENERATION,
/// REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID mean the member must rejoin).
pub async fn commit_member_offsets(
    client: &Client,
    group_id: &str,
    generation_id: i32,
    member_id: &str,
    offsets: &[(String, i32, i64)],
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let connection = crate::groups::coordinator(client, group_id).await?;
    let broker = connection.broker_range(ApiKey::OffsetCommit);
    let v =
        negotiate(OFFSET_COMMIT_VERSIONS, broker).ok_or_else(|| ClientError::UnsupportedApi {
            api: api_key_name(ApiKey::OffsetCommit),
            address: connection.address().to_string(),
            client_min: OFFSET_COMMIT_VERSIONS.0,
            client_max: OFFSET_COMMIT_VERSIONS.1,
            broker,
        })?;
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (topic, partition, offset) in offsets {
        by_topic.entry(topic.as_str()).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_metadata(Some(StrBytes::default())),
        );
    }
    let mut request = OffsetCommitRequest::default()
        .with_group_id(GroupId(str_bytes(group_id)))
        .with_generation_id_or_member_epoch(generation_id)
        .with_member_id(str_bytes(member_id))
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
    if v <= 4 {
        request = request.with_retention_time_ms(-1);
    }
    let response = connection.send_version(&request, v).await?;
    for topic in response.topics {
        for partition in topic.partitions {
            if let Some(error) = ClientError::from_code(
                partition.error_code,
                None,
                format!(
                    "commit offset of {}-{} for group '{group_id}'",
                    topic.name.as_str(),
                    partition.partition_index
                ),
            ) {
                return Err(error);
            }
        }
    }
    Ok(())
}
