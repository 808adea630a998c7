//! Follower replication: for every broker this one follows partitions of, a task that
//! fetches from it (Fetch with `replica_id` set) and appends the leader's batches unchanged
//! (`PartitionLog::append_as_follower`).
//!
//! Before fetching a partition in a new leader epoch the follower truncates to the epoch
//! boundary the leader reports (OffsetForLeaderEpoch, [`truncation_step`]), so a replica
//! that led or followed a deposed leader drops what the new leader does not have. The
//! follower's high watermark is the leader's, capped by its own log end.
//!
//! Inter-broker traffic goes to each leader's address on the inter-broker listener, secured
//! as that listener is ([`crate::inter_broker`]). A connection near the end of its SASL
//! session (KIP-368) counts as closed and is replaced before the leader cuts it off.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_client::connection::Connection;
use strom_protocol::ErrorCode;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::partition::Partition;
use crate::reassignment_throttle::{is_throttled, ReplicationThrottle};
use crate::replication::follower::{truncation_step, TruncationStep};
use crate::state::{now_ms, Broker};

/// How often the set of leaders to follow is looked at.
const SUPERVISE_INTERVAL: Duration = Duration::from_millis(200);
/// Pause after a failed connection or request before trying again.
const RETRY_BACKOFF: Duration = Duration::from_millis(300);
/// Fetch v12: replica id in the body, topics by name, KIP-320 epochs.
const FETCH_VERSION: i16 = 12;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;
/// Truncation rounds per partition before giving up for this pass (each round lowers the
/// epoch asked for, so few are ever needed).
const TRUNCATION_ROUNDS_MAX: usize = 16;

/// Starts the supervisor: one fetch task per followed leader, started and stopped as the
/// image changes.
pub fn spawn(broker: Arc<Broker>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tasks: HashMap<i32, JoinHandle<()>> = HashMap::new();
        let mut tick = tokio::time::interval(SUPERVISE_INTERVAL);
        loop {
            tick.tick().await;
            let leaders: HashSet<i32> = broker
                .partitions()
                .all()
                .iter()
                .filter_map(|p| p.followed_leader())
                .collect();
            tasks.retain(|_, task| !task.is_finished());
            for leader in leaders {
                tasks
                    .entry(leader)
                    .or_insert_with(|| tokio::spawn(follow(broker.clone(), leader)));
            }
        }
    })
}

fn followed_from(broker: &Broker, leader: i32) -> Vec<Arc<Partition>> {
    broker
        .partitions()
        .all()
        .into_iter()
        .filter(|p| p.followed_leader() == Some(leader))
        .collect()
}

/// The leader's address on the inter-broker listener.
fn leader_address(broker: &Broker, leader: i32) -> Option<String> {
    let image = broker.image();
    let (host, port) = image
        .brokers()
        .get(&leader)?
        .endpoint(&broker.config().inter_broker_listener)?;
    Some(format!("{host}:{port}"))
}

/// `follower.replication.throttled.rate` now: the dynamic value (this broker's, else the
/// cluster default), else the static one.
fn follower_throttled_rate(broker: &Broker) -> u64 {
    let image = broker.image();
    crate::config::dynamic::dynamic_value(
        broker.config(),
        &image,
        "follower.replication.throttled.rate",
    )
    .and_then(|v| v.trim().parse::<u64>().ok())
    .unwrap_or(broker.config().cluster.follower_throttled_rate)
}

/// Fetches from `leader` until this broker follows nothing there.
async fn follow(broker: Arc<Broker>, leader: i32) {
    info!(leader, "replica fetcher started");
    let mut connection: Option<(String, Connection)> = None;
    let mut session = FollowerSession::default();
    let mut throttle = Throttled {
        bucket: ReplicationThrottle::new(
            broker.config().cluster.follower_throttled_rate,
            std::time::Instant::now(),
        ),
        until: std::time::Instant::now(),
    };
    let mut rate = broker.config().cluster.follower_throttled_rate;
    loop {
        // A dynamic follower.replication.throttled.rate applies from the next fetch.
        let now_rate = follower_throttled_rate(&broker);
        if now_rate != rate {
            rate = now_rate;
            throttle.bucket.set_rate(rate, std::time::Instant::now());
        }
        let partitions = followed_from(&broker, leader);
        if partitions.is_empty() {
            info!(leader, "replica fetcher stopped: nothing to follow");
            return;
        }
        let Some(address) = leader_address(&broker, leader) else {
            tokio::time::sleep(RETRY_BACKOFF).await;
            continue;
        };
        if connection
            .as_ref()
            .is_none_or(|(a, c)| *a != address || c.is_closed())
        {
            let config = crate::inter_broker::connection_config(
                broker.inter_broker_security(),
                format!("strom-replica-{}", broker.config().node_id),
                Duration::from_secs(2),
                Duration::from_millis(
                    broker.config().cluster.replica_fetch_wait_max_ms as u64 + 10_000,
                ),
            );
            session = FollowerSession::default();
            match Connection::connect(&address, config).await {
                Ok(fresh) => connection = Some((address, fresh)),
                Err(error) if error.is_authentication_error() => {
                    // Not a passing fault: the cluster's inter-broker settings disagree.
                    warn!(leader, %error, "the leader refused this broker's credentials; check inter.broker.sasl.username/password and ssl.* settings");
                    tokio::time::sleep(RETRY_BACKOFF * 10).await;
                    continue;
                }
                Err(error) => {
                    debug!(leader, %error, "cannot reach the leader");
                    tokio::time::sleep(RETRY_BACKOFF).await;
                    continue;
                }
            }
        }
        let conn = &connection.as_ref().expect("connected above").1;
        let truncating: Vec<Arc<Partition>> = partitions
            .iter()
            .filter(|p| p.needs_truncation())
            .cloned()
            .collect();
        if !truncating.is_empty() {
            if let Err(error) = truncate(&broker, leader, conn, &truncating).await {
                warn!(leader, %error, "truncation failed");
                connection = None;
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
            continue;
        }
        // Replicas joining through a reassignment wait out their byte budget; the others
        // are never held back.
        let now = std::time::Instant::now();
        let partitions: Vec<Arc<Partition>> =
            if throttle.bucket.is_unlimited() || now >= throttle.until {
                partitions
            } else {
                let image = broker.image();
                partitions
                    .into_iter()
                    .filter(|p| !is_throttled(&image, p.topic_id, p.index, broker.config().node_id))
                    .collect()
            };
        if partitions.is_empty() {
            tokio::time::sleep_until(throttle.until.into()).await;
            continue;
        }
        if let Err(error) = fetch_once(
            &broker,
            leader,
            conn,
            &partitions,
            &mut session,
            &mut throttle,
        )
        .await
        {
            debug!(leader, %error, "replica fetch failed");
            connection = None;
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }
}

/// OffsetForLeaderEpoch for each partition's latest local epoch, then truncation to the
/// boundary (KIP-101/279), round by round.
async fn truncate(
    broker: &Broker,
    leader: i32,
    conn: &Connection,
    partitions: &[Arc<Partition>],
) -> Result<(), strom_client::ClientError> {
    for partition in partitions {
        for _ in 0..TRUNCATION_ROUNDS_MAX {
            let (latest_epoch, log_end) = {
                let log = partition.log.lock();
                (log.latest_epoch(), log.log_end_offset())
            };
            let Some(latest_epoch) = latest_epoch else {
                // An empty log has nothing to cut.
                partition.truncated();
                break;
            };
            let request = OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(broker.config().node_id))
                .with_topics(vec![OffsetForLeaderTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(partition.topic.clone())))
                    .with_partitions(vec![OffsetForLeaderPartition::default()
                        .with_partition(partition.index)
                        .with_current_leader_epoch(partition.leader_epoch())
                        .with_leader_epoch(latest_epoch)])]);
            let response = conn
                .send_version(&request, OFFSET_FOR_LEADER_EPOCH_VERSION)
                .await?;
            let Some(answer) = response.topics.first().and_then(|t| t.partitions.first()) else {
                break;
            };
            if answer.error_code != 0 {
                // Stale metadata on either side: the image will catch up; try later.
                debug!(topic = %partition.topic, partition = partition.index, code = answer.error_code, "OffsetForLeaderEpoch refused");
                tokio::time::sleep(RETRY_BACKOFF).await;
                break;
            }
            let mut log = partition.log.lock();
            let local_epoch_end = log.end_offset_for_epoch(answer.leader_epoch);
            let step = truncation_step(
                log.log_end_offset(),
                local_epoch_end,
                (answer.leader_epoch, answer.end_offset),
                partition.high_watermark().min(log_end),
            );
            let (offset, done) = match step {
                TruncationStep::Done(offset) => (offset, true),
                TruncationStep::Retry(offset) => (offset, false),
            };
            if offset < log.log_end_offset() {
                info!(topic = %partition.topic, partition = partition.index, from = log.log_end_offset(), to = offset, "truncating to the leader's epoch boundary");
            }
            {
                // Also at the log end: drops cached epochs the leader never wrote in.
                if let Err(error) = log.truncate_to(offset, now_ms()) {
                    warn!(topic = %partition.topic, partition = partition.index, %error, "truncation failed");
                    break;
                }
            }
            if done {
                let capped = partition.high_watermark().min(log.log_end_offset());
                partition.set_follower_high_watermark(leader, capped);
                partition.truncated();
                break;
            }
        }
    }
    Ok(())
}

/// One Fetch for every partition followed from this leader; appends what comes back.
/// The reassignment catch-up budget of one fetcher, and when throttled partitions may be
/// fetched again.
struct Throttled {
    bucket: ReplicationThrottle,
    until: std::time::Instant,
}

/// This follower's fetch session with one leader (KIP-227): after a full fetch, each
/// fetch names only partitions whose position changed, and the leader answers only
/// partitions with something new, so an idle partition costs neither side a request entry.
#[derive(Default)]
struct FollowerSession {
    /// 0 = none: the next fetch is a full one asking for a session.
    id: i32,
    /// The epoch of the next incremental fetch.
    epoch: i32,
    /// What the leader's session holds for each partition: (leader epoch, fetch offset,
    /// log start) as last sent.
    sent: HashMap<(String, i32), (i32, i64, i64)>,
}

impl FollowerSession {
    fn reset(&mut self) {
        *self = FollowerSession::default();
    }
}

async fn fetch_once(
    broker: &Arc<Broker>,
    leader: i32,
    conn: &Connection,
    partitions: &[Arc<Partition>],
    session: &mut FollowerSession,
    throttle: &mut Throttled,
) -> Result<(), strom_client::ClientError> {
    let full = session.id == 0;
    if full {
        session.sent.clear();
    }
    let mut by_topic: Vec<(String, Vec<FetchPartition>)> = Vec::new();
    // What each partition was asked from: (leader epoch, fetch offset), by (topic, index).
    let mut asked: HashMap<(&str, i32), (&Arc<Partition>, i32, i64)> =
        HashMap::with_capacity(partitions.len());
    let mut followed: HashSet<(&str, i32)> = HashSet::with_capacity(partitions.len());
    for partition in partitions {
        let (log_end, log_start) = {
            let log = partition.log.lock();
            (log.log_end_offset(), log.log_start_offset())
        };
        let leader_epoch = partition.leader_epoch();
        asked.insert(
            (partition.topic.as_str(), partition.index),
            (partition, leader_epoch, log_end),
        );
        followed.insert((partition.topic.as_str(), partition.index));
        let state = (leader_epoch, log_end, log_start);
        let key = (partition.topic.clone(), partition.index);
        if session.sent.get(&key) == Some(&state) {
            continue;
        }
        session.sent.insert(key, state);
        let entry = FetchPartition::default()
            .with_partition(partition.index)
            .with_current_leader_epoch(leader_epoch)
            .with_fetch_offset(log_end)
            .with_log_start_offset(log_start)
            .with_partition_max_bytes(broker.config().cluster.replica_fetch_max_bytes);
        match by_topic.last_mut() {
            Some((t, list)) if *t == partition.topic => list.push(entry),
            _ => by_topic.push((partition.topic.clone(), vec![entry])),
        }
    }
    // Partitions no longer followed (or held back by the throttle) leave the session.
    let mut forgotten: Vec<(String, Vec<i32>)> = Vec::new();
    session.sent.retain(|(topic, index), _| {
        if followed.contains(&(topic.as_str(), *index)) {
            return true;
        }
        match forgotten.iter_mut().find(|(t, _)| t == topic) {
            Some((_, list)) => list.push(*index),
            None => forgotten.push((topic.clone(), vec![*index])),
        }
        false
    });
    let (session_id, session_epoch) = if full {
        (0, crate::fetch_session::INITIAL_EPOCH)
    } else {
        (session.id, session.epoch)
    };
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(broker.config().node_id))
        .with_max_wait_ms(broker.config().cluster.replica_fetch_wait_max_ms)
        .with_min_bytes(1)
        .with_max_bytes(broker.config().fetch_max_bytes)
        .with_session_id(session_id)
        .with_session_epoch(session_epoch)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic)))
                        .with_partitions(partitions)
                })
                .collect(),
        )
        .with_forgotten_topics_data(
            forgotten
                .into_iter()
                .map(|(topic, partitions)| {
                    ForgottenTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic)))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = match conn.send_version(&request, FETCH_VERSION).await {
        Ok(response) => response,
        Err(error) => {
            // The leader may or may not have moved the session on: start afresh.
            session.reset();
            return Err(error);
        }
    };
    if response.error_code != 0 {
        // FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH (evicted, restarted
        // leader): the next fetch is a full one.
        debug!(
            leader,
            code = response.error_code,
            "replica fetch session refused; starting a new one"
        );
        session.reset();
        tokio::time::sleep(RETRY_BACKOFF / 10).await;
        return Ok(());
    }
    if response.session_id == 0 {
        // No session (none granted, or the leader closed it): every fetch is full.
        session.reset();
    } else {
        session.id = response.session_id;
        session.epoch = if full {
            1
        } else if session.epoch == i32::MAX {
            1
        } else {
            session.epoch + 1
        };
    }
    let mut appended = false;
    let mut throttled_bytes = 0u64;
    let image = broker.image();
    for topic in &response.responses {
        for data in &topic.partitions {
            let Some(&(partition, asked_epoch, asked_offset)) =
                asked.get(&(topic.topic.as_str(), data.partition_index))
            else {
                continue;
            };
            match ErrorCode::try_from_code(data.error_code) {
                None => {}
                Some(ErrorCode::OffsetOutOfRange) => {
                    handle_out_of_range(partition, data.log_start_offset);
                    continue;
                }
                Some(code) => {
                    // NOT_LEADER_OR_FOLLOWER, FENCED/UNKNOWN_LEADER_EPOCH: metadata moves on.
                    debug!(topic = %partition.topic, partition = partition.index, ?code, "replica fetch refused");
                    continue;
                }
            }
            let mut log = partition.log.lock();
            // The answer is stale when, while it was on its way, the partition got a new
            // leader or epoch (another fetcher may have appended from the new leader) or
            // its log was truncated: applying it could append an old leader's records.
            if partition.leader_epoch() != asked_epoch
                || partition.followed_leader() != Some(leader)
                || log.log_end_offset() != asked_offset
            {
                debug!(topic = %partition.topic, partition = partition.index, leader, "stale replica fetch answer dropped");
                continue;
            }
            if let Some(records) = data.records.as_ref().filter(|r| !r.is_empty()) {
                if !throttle.bucket.is_unlimited()
                    && is_throttled(
                        &image,
                        partition.topic_id,
                        partition.index,
                        broker.config().node_id,
                    )
                {
                    throttled_bytes += records.len() as u64;
                }
                match log.append_as_follower(records, now_ms()) {
                    Ok(_) => appended = true,
                    Err(error) => {
                        warn!(topic = %partition.topic, partition = partition.index, %error, "follower append failed; truncating and refetching");
                        partition.needs_truncation_again();
                        continue;
                    }
                }
            }
            partition
                .set_follower_high_watermark(leader, data.high_watermark.min(log.log_end_offset()));
        }
    }
    if appended {
        broker.notify_appended();
    }
    if throttled_bytes > 0 {
        let now = std::time::Instant::now();
        throttle.until = now + throttle.bucket.record(throttled_bytes, now);
    }
    Ok(())
}

/// The leader no longer has the offset this follower asked for: below its log start
/// (retention), start over there; otherwise the logs diverged, truncate again.
fn handle_out_of_range(partition: &Partition, leader_log_start: i64) {
    let mut log = partition.log.lock();
    if log.log_end_offset() < leader_log_start {
        info!(topic = %partition.topic, partition = partition.index, leader_log_start, "follower is behind the leader's log start; starting over there");
        if let Err(error) = log.truncate_fully_and_start_at(leader_log_start, now_ms()) {
            warn!(topic = %partition.topic, partition = partition.index, %error, "cannot restart the follower log");
        }
    } else {
        partition.needs_truncation_again();
    }
}
