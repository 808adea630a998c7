//! What the runtime does before processing: internal topics, the task assignment, the
//! consumer-protocol bytes of the group, and restoring a task's stores.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use strom_client::{Admin, Client, Consumer, ConsumerConfig, NewTopic, SeekTo};

use strom_client::membership::{GroupMember, HeartbeatOutcome};

use super::{ProcessingGuarantee, StreamsConfig, StreamsMetrics};
use crate::task::Task;
use crate::topology::Topology;
use crate::StreamsError;

/// TOPIC_ALREADY_EXISTS.
const TOPIC_ALREADY_EXISTS: i16 = 36;
/// Empty polls in a row after which a restore counts as caught up although the changelog's
/// end was not reached (records past an open transaction cannot be read committed yet).
const RESTORE_EMPTY_POLLS_MAX: u32 = 20;

/// Tries to open a task's stores while another thread of the instance still holds them.
const STORE_OPEN_ATTEMPTS_MAX: u32 = 50;

/// The partition count shared by every source topic; creates the repartition and
/// (compacted) changelog topics with that count.
pub(super) async fn prepare_topics(
    client: &Client,
    topology: &Topology,
    config: &StreamsConfig,
) -> Result<i32, StreamsError> {
    let application_id = &config.application_id;
    let internal: BTreeSet<String> = topology
        .repartition_topics(application_id)
        .into_iter()
        .collect();
    let mut counts = Vec::new();
    for topic in topology.source_topics(application_id) {
        if internal.contains(&topic) {
            continue;
        }
        let metadata = client.topic_metadata(&topic, false).await?;
        counts.push((topic, metadata.partitions.len() as i32));
    }
    let partitions = counts.first().map(|(_, count)| *count).unwrap_or(1);
    if counts.iter().any(|(_, count)| *count != partitions) || partitions <= 0 {
        return Err(StreamsError::NotCopartitioned { topics: counts });
    }
    let mut topics: Vec<NewTopic> = internal
        .iter()
        .map(|name| NewTopic {
            name: name.clone(),
            partitions,
            replication_factor: config.replication_factor,
            configs: Vec::new(),
        })
        .collect();
    for store in topology.stores() {
        topics.push(NewTopic {
            name: store.changelog_topic(application_id),
            partitions,
            replication_factor: config.replication_factor,
            configs: vec![("cleanup.policy".to_string(), "compact".to_string())],
        });
    }
    if topics.is_empty() {
        return Ok(partitions);
    }
    let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
    let admin = Admin::new(client.clone());
    for (name, result) in admin.create_topics(&topics, false).await? {
        match result {
            Ok(_) => tracing::info!(topic = %name, partitions, "created internal topic"),
            Err(error) if error.code() == Some(TOPIC_ALREADY_EXISTS) => {}
            Err(error) => return Err(error.into()),
        }
    }
    for name in names {
        // Wait until the new topics' leaders are known.
        let mut attempt = 0;
        loop {
            match client.topic_metadata(&name, false).await {
                Ok(metadata) if metadata.partitions.len() as i32 == partitions => break,
                Ok(_) | Err(_) if attempt < 50 => {
                    client.invalidate_topic(&name);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    attempt += 1;
                }
                Ok(_) => break,
                Err(error) => return Err(error.into()),
            }
        }
    }
    Ok(partitions)
}

/// ConsumerProtocolSubscription v0: version, topics, and as user data the tasks this
/// instance holds now (4-byte partition numbers), for the leader's sticky assignment.
pub(super) fn encode_subscription(topics: &[String], owned_tasks: &[i32]) -> Bytes {
    let mut bytes = BytesMut::new();
    bytes.put_i16(0);
    bytes.put_i32(topics.len() as i32);
    for topic in topics {
        bytes.put_i16(topic.len() as i16);
        bytes.put_slice(topic.as_bytes());
    }
    bytes.put_i32((owned_tasks.len() * 4) as i32);
    for task in owned_tasks {
        bytes.put_i32(*task);
    }
    bytes.freeze()
}

/// The tasks a member's subscription says it holds; nothing if it cannot be read.
pub(super) fn owned_tasks(mut bytes: &[u8]) -> Vec<i32> {
    use bytes::Buf;
    if bytes.remaining() < 6 {
        return Vec::new();
    }
    bytes.get_i16();
    let topics = bytes.get_i32();
    for _ in 0..topics.max(0) {
        if bytes.remaining() < 2 {
            return Vec::new();
        }
        let length = bytes.get_i16().max(0) as usize;
        if bytes.remaining() < length {
            return Vec::new();
        }
        bytes.advance(length);
    }
    if bytes.remaining() < 4 {
        return Vec::new();
    }
    let length = bytes.get_i32();
    if length <= 0 || bytes.remaining() < length as usize {
        return Vec::new();
    }
    (0..length / 4).map(|_| bytes.get_i32()).collect()
}

/// ConsumerProtocolAssignment v0, read back with `strom_client::groups::decode_consumer_assignment`.
pub(super) fn encode_assignment(assignment: &BTreeMap<String, Vec<i32>>) -> Bytes {
    let mut bytes = BytesMut::new();
    bytes.put_i16(0);
    bytes.put_i32(assignment.len() as i32);
    for (topic, partitions) in assignment {
        bytes.put_i16(topic.len() as i16);
        bytes.put_slice(topic.as_bytes());
        bytes.put_i32(partitions.len() as i32);
        for partition in partitions {
            bytes.put_i32(*partition);
        }
    }
    bytes.put_i32(-1);
    bytes.freeze()
}

/// Tasks 0..partitions over the members, sticky: each member first keeps the tasks it
/// holds (up to its fair share, ceil(tasks / members)), so state stays where it is; the
/// rest go one by one to the member with the fewest. Each member gets partition `p` of
/// every source topic of its tasks. `members` is (member id, tasks it holds).
pub(super) fn assign(
    members: &[(String, Vec<i32>)],
    partitions: i32,
    source_topics: &[String],
) -> Vec<(String, Bytes)> {
    let mut sorted: Vec<&(String, Vec<i32>)> = members.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    if sorted.is_empty() {
        return Vec::new();
    }
    let fair_share = (partitions as usize).div_ceil(sorted.len());
    let mut tasks: Vec<Vec<i32>> = vec![Vec::new(); sorted.len()];
    let mut owned = BTreeSet::new();
    for (index, (_, held)) in sorted.iter().enumerate() {
        for task in held {
            if (0..partitions).contains(task)
                && tasks[index].len() < fair_share
                && owned.insert(*task)
            {
                tasks[index].push(*task);
            }
        }
    }
    for task in 0..partitions {
        if owned.contains(&task) {
            continue;
        }
        let index = (0..tasks.len())
            .min_by_key(|i| (tasks[*i].len(), *i))
            .unwrap_or(0);
        tasks[index].push(task);
    }
    sorted
        .iter()
        .zip(tasks)
        .map(|((member, _), mut tasks)| {
            tasks.sort_unstable();
            let assignment: BTreeMap<String, Vec<i32>> = source_topics
                .iter()
                .map(|t| (t.clone(), tasks.clone()))
                .collect();
            (member.clone(), encode_assignment(&assignment))
        })
        .collect()
}

/// What restoring a task needs.
pub(super) struct Restore<'a> {
    pub client: &'a Client,
    pub topology: &'a Arc<Topology>,
    pub config: &'a StreamsConfig,
    pub metrics: &'a StreamsMetrics,
}

impl Restore<'_> {
    /// Open task `partition`'s stores and replay their changelogs (from a persistent store's
    /// checkpoint, if it kept one); read_committed under exactly-once. Heartbeats go on every
    /// third of the session timeout meanwhile, so a long restore keeps the member in its group;
    /// `None` when a heartbeat says the group rebalances (the restore is dropped).
    pub(super) async fn open_task(
        &self,
        member: &mut GroupMember,
        partition: i32,
    ) -> Result<Option<Task>, StreamsError> {
        let (client, topology, config) = (self.client, self.topology, self.config);
        let heartbeat_interval = config.session_timeout / 3;
        let mut last_heartbeat = Instant::now();
        let started = Instant::now();
        let record_time = || {
            let ms = started.elapsed().as_millis().min(u64::MAX as u128) as u64;
            self.metrics.restore_ms.fetch_add(ms, Ordering::Relaxed);
        };
        let application_id = &config.application_id;
        let names: Vec<String> = topology.stores().iter().map(|s| s.name.clone()).collect();
        // A task that moves between two threads of this instance is opened here while
        // the other thread may still hold its database for a moment: retry a while.
        let mut attempt = 0;
        let stores = loop {
            match config
                .state
                .open(&format!("{application_id}-{partition}"), &names)
            {
                Ok(stores) => break stores,
                Err(error) if attempt < STORE_OPEN_ATTEMPTS_MAX => {
                    tracing::debug!(%error, partition, "task store busy; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        };
        let mut task = Task::new(topology.clone(), application_id, partition, stores)?;
        task.on_undeserializable(config.on_undeserializable);
        for spec in topology.stores() {
            let changelog = spec.changelog_topic(application_id);
            let mut consumer = Consumer::new(
                client.clone(),
                ConsumerConfig {
                    max_wait: Duration::from_millis(100),
                    isolation_level: if config.processing_guarantee
                        == ProcessingGuarantee::ExactlyOnceV2
                    {
                        1
                    } else {
                        0
                    },
                    auto_offset_reset: Some(SeekTo::Earliest),
                    ..ConsumerConfig::default()
                },
            );
            consumer.assign(&[(changelog.clone(), partition)]).await?;
            let start = match task.checkpoint(&spec.name) {
                Some(offset) if offset >= 0 => SeekTo::Offset(offset),
                _ => SeekTo::Earliest,
            };
            consumer.seek(&changelog, partition, start).await?;
            let end = consumer
                .end_offsets()
                .await?
                .get(&(changelog.clone(), partition))
                .copied()
                .unwrap_or(0);
            let start_offset = consumer.position(&changelog, partition).unwrap_or(0);
            let listener = config.restore_listener.0.as_deref();
            if let Some(listener) = listener {
                listener.on_restore_start(&spec.name, partition, start_offset, end);
            }
            let mut restored = 0u64;
            let mut empty_polls = 0;
            while consumer.position(&changelog, partition).unwrap_or(0) < end {
                if last_heartbeat.elapsed() >= heartbeat_interval {
                    last_heartbeat = Instant::now();
                    match member.heartbeat().await? {
                        HeartbeatOutcome::Stable => {}
                        HeartbeatOutcome::Rejoin | HeartbeatOutcome::Lost => {
                            tracing::info!(
                                partition,
                                restored,
                                "restore stopped: the group rebalances"
                            );
                            self.metrics
                                .restored_records
                                .fetch_add(restored, Ordering::Relaxed);
                            record_time();
                            return Ok(None);
                        }
                    }
                }
                let records = consumer.poll().await?;
                if records.is_empty() {
                    empty_polls += 1;
                    if empty_polls >= RESTORE_EMPTY_POLLS_MAX {
                        break;
                    }
                    continue;
                }
                empty_polls = 0;
                let before = restored;
                let mut batch_end = start_offset;
                for record in records {
                    batch_end = record.offset;
                    if let Some(key) = &record.key {
                        task.restore(&spec.name, key, record.value.as_deref())?;
                        restored += 1;
                    }
                }
                if let Some(listener) = listener {
                    listener.on_batch_restored(&spec.name, partition, batch_end, restored - before);
                }
            }
            if let Some(listener) = listener {
                listener.on_restore_end(&spec.name, partition, restored);
            }
            self.metrics
                .restored_records
                .fetch_add(restored, Ordering::Relaxed);
            tracing::info!(store = %spec.name, partition, restored, "store restored from its changelog");
        }
        record_time();
        Ok(Some(task))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(assignments: &[(String, Bytes)]) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
        assignments
            .iter()
            .map(|(m, bytes)| {
                (
                    m.clone(),
                    strom_client::groups::decode_consumer_assignment(bytes),
                )
            })
            .collect()
    }

    #[test]
    fn given_new_members_should_spread_tasks_evenly_over_every_source_topic() {
        let members = vec![("b".to_string(), vec![]), ("a".to_string(), vec![])];
        let topics = vec!["in".to_string(), "app-x-repartition".to_string()];
        let got = decoded(&assign(&members, 3, &topics));
        assert_eq!(got["a"]["in"], vec![0, 2]);
        assert_eq!(got["a"]["app-x-repartition"], vec![0, 2]);
        assert_eq!(got["b"]["in"], vec![1]);
    }

    #[test]
    fn given_members_holding_tasks_should_keep_them_up_to_a_fair_share() {
        let topics = vec!["in".to_string()];
        // a held everything alone; b joins: a keeps 2 of 4, b gets the other 2.
        let members = vec![
            ("a".to_string(), vec![0, 1, 2, 3]),
            ("b".to_string(), vec![]),
        ];
        let got = decoded(&assign(&members, 4, &topics));
        assert_eq!(got["a"]["in"], vec![0, 1]);
        assert_eq!(got["b"]["in"], vec![2, 3]);
        // b holds 3 and 2; c joins; nobody gives up more than needed.
        let members = vec![
            ("a".to_string(), vec![0, 1]),
            ("b".to_string(), vec![3, 2]),
            ("c".to_string(), vec![]),
        ];
        let got = decoded(&assign(&members, 4, &topics));
        assert_eq!(got["a"]["in"], vec![0, 1]);
        assert_eq!(got["b"]["in"], vec![2, 3]);
        assert!(got["c"]["in"].is_empty());
    }

    #[test]
    fn given_a_subscription_should_read_back_the_tasks_it_holds_and_survive_garbage() {
        let bytes = encode_subscription(&["in".to_string()], &[2, 5]);
        assert_eq!(owned_tasks(&bytes), vec![2, 5]);
        assert_eq!(owned_tasks(&bytes[..bytes.len() - 2]), Vec::<i32>::new());
        assert_eq!(owned_tasks(&[0, 0, 0, 0, 0, 9]), Vec::<i32>::new());
    }
}
