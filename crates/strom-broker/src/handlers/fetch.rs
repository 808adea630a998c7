//! Fetch: serve file ranges of the partition logs, long-polling until `min_bytes` arrive or
//! `max_wait_ms` passes.
//!
//! read_committed (isolation level 1) stops at the last stable offset (the first offset of
//! the oldest open transaction) and lists the aborted transactions the returned batches may
//! hold, from the aborted-transaction index, so the client drops their records.
//!
//! Fetch from follower (KIP-392): a follower serves consumers' Fetch v11+ up to its own
//! high watermark (the leader's, capped by its log end); an older fetch, or a replica's,
//! gets NOT_LEADER_OR_FOLLOWER. With `replica.selector.class` set to Kafka's
//! `RackAwareReplicaSelector`, the leader answers a consumer that names a rack the leader
//! is not in with no records and the in-sync replica of that rack to read from
//! (`preferred_read_replica`, see [`crate::replication::read_replica`]). A follower asked
//! for an offset past its log end answers OFFSET_NOT_AVAILABLE (retriable: it is catching
//! up), never OFFSET_OUT_OF_RANGE, which would make the consumer reset its position.
//!
//! Sessions (KIP-227): [`open_session`] runs before authorization, so an incremental fetch
//! becomes the full list of its session's partitions and every one of them is authorized
//! again; the answer then leaves out partitions with nothing new
//! ([`crate::fetch_session`]).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::FetchRequest;
use strom_controller::MetadataImage;
use strom_protocol::ErrorCode;
use strom_storage::ReadError;
use tokio::time::Instant;
use tracing::warn;

use super::leader_hint::{self, LeaderHints};
use super::Advertised;
use crate::errors::NO_ERROR;
use crate::fetch_encoding::{
    encode_fetch_response, FetchPartitionOut, FetchRecords, FetchResponseOut, FetchTopicOut,
};
use crate::fetch_session::FetchContext;
use crate::response::{EncodeError, ResponseFrame};
use crate::state::Broker;

fn empty_partition(index: i32, error: ErrorCode) -> FetchPartitionOut {
    FetchPartitionOut {
        partition_index: index,
        error_code: error.code(),
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        aborted_transactions: None,
        preferred_read_replica: -1,
        current_leader: None,
        records: FetchRecords::None,
    }
}

/// What a follower's fetch changed on the leader side.
#[derive(Default)]
struct FollowerEffects {
    /// A high watermark moved: acks=all waiters and consumers' long polls must look again.
    high_watermark_moved: bool,
    /// ISR expansions to propose to the controller.
    isr_proposals: Vec<crate::cluster::IsrProposal>,
}

/// The id of the follower sending a fetch, or -1 for a consumer.
fn replica_id(request: &FetchRequest, version: i16) -> i32 {
    if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    }
}

/// Reads every requested partition once. Returns the response and the record bytes in it,
/// and whether any partition carries an error (which answers the fetch at once).
fn read_once(
    broker: &Broker,
    image: &MetadataImage,
    request: &FetchRequest,
    version: i16,
    effects: &mut FollowerEffects,
    remote: &crate::tiering::RemoteReads,
) -> (FetchResponseOut, usize, bool) {
    let response_max = (request.max_bytes.max(0)).min(broker.config().fetch_max_bytes) as usize;
    let read_committed = request.isolation_level == 1;
    let follower = replica_id(request, version);
    let now = crate::state::now_ms();
    let mut total_bytes = 0usize;
    let mut any_error = false;
    let mut topics = Vec::with_capacity(request.topics.len());
    for wanted in &request.topics {
        let topic = if version >= 13 {
            image.topic_by_id(wanted.topic_id)
        } else {
            image.topic(wanted.topic.0.as_str())
        };
        let mut partitions = Vec::with_capacity(wanted.partitions.len());
        for fetch in &wanted.partitions {
            let index = fetch.partition;
            let Some(topic) = topic else {
                any_error = true;
                partitions.push(empty_partition(
                    index,
                    if version >= 13 {
                        ErrorCode::UnknownTopicId
                    } else {
                        ErrorCode::UnknownTopicOrPartition
                    },
                ));
                continue;
            };
            let Some(partition) = broker.partitions().get(topic.topic_id, index) else {
                any_error = true;
                let error = if index >= 0 && index < topic.partition_count() {
                    ErrorCode::NotLeaderOrFollower
                } else {
                    ErrorCode::UnknownTopicOrPartition
                };
                partitions.push(empty_partition(index, error));
                continue;
            };
            if version >= 9
                && fetch.current_leader_epoch >= 0
                && fetch.current_leader_epoch != partition.leader_epoch()
            {
                any_error = true;
                partitions.push(empty_partition(
                    index,
                    if fetch.current_leader_epoch < partition.leader_epoch() {
                        ErrorCode::FencedLeaderEpoch
                    } else {
                        ErrorCode::UnknownLeaderEpoch
                    },
                ));
                continue;
            }
            let partition_max = (fetch.partition_max_bytes.max(0) as usize)
                .min(response_max.saturating_sub(total_bytes));
            let min_one_batch = total_bytes == 0;
            let leading = partition.is_leader();
            // Consumers may read from followers from Fetch v11 (KIP-392); replicas only
            // from the leader.
            if !leading && (follower >= 0 || version < 11 || partition.followed_leader().is_none())
            {
                any_error = true;
                partitions.push(empty_partition(index, ErrorCode::NotLeaderOrFollower));
                continue;
            }
            if leading && follower < 0 && version >= 11 {
                if let Some(preferred) =
                    read_replica_for(broker, image, &partition, request, fetch.fetch_offset)
                {
                    let log = partition.log.lock();
                    let high_watermark = partition.high_watermark().max(log.log_start_offset());
                    partitions.push(FetchPartitionOut {
                        partition_index: index,
                        error_code: NO_ERROR,
                        high_watermark,
                        last_stable_offset: log.last_stable_offset().min(high_watermark),
                        log_start_offset: log.log_start_offset(),
                        aborted_transactions: None,
                        preferred_read_replica: preferred,
                        current_leader: None,
                        records: FetchRecords::Memory(bytes::Bytes::new()),
                    });
                    // Answer at once: the consumer moves on to the preferred replica.
                    any_error = true;
                    continue;
                }
            }
            let log = partition.log.lock();
            let log_end = log.log_end_offset();
            if !leading && fetch.fetch_offset > log_end {
                drop(log);
                any_error = true;
                partitions.push(empty_partition(index, ErrorCode::OffsetNotAvailable));
                continue;
            }
            if follower >= 0 {
                follower_fetched(
                    &partition,
                    follower,
                    fetch.fetch_offset,
                    log_end,
                    now,
                    effects,
                );
            }
            // Never below the log start (retention may pass a high watermark a new leader
            // has not re-learnt from its followers yet).
            let high_watermark = partition.high_watermark().max(log.log_start_offset());
            let last_stable_offset = log.last_stable_offset().min(high_watermark);
            // Followers read to the log end; consumers below the high watermark, and
            // read_committed ones below the last stable offset too.
            let upper_bound = if follower >= 0 {
                log_end
            } else if read_committed {
                last_stable_offset
            } else {
                high_watermark
            };
            let log_start_offset = log.log_start_offset();
            // A tiered partition starts at its first remote offset.
            let log_start_offset = crate::tiering::remote_log_start(broker, topic.topic_id, index)
                .map_or(log_start_offset, |remote| remote.min(log_start_offset));
            let result = if partition_max == 0 && !min_one_batch {
                Ok(None)
            } else {
                log.read(
                    fetch.fetch_offset,
                    partition_max as u32,
                    upper_bound,
                    min_one_batch,
                )
                .map(|info| info.records)
            };
            let mut aborted_transactions = match &result {
                Ok(Some(_)) if read_committed => {
                    match log.aborted_transactions(fetch.fetch_offset, upper_bound) {
                        Ok(aborted) => Some(aborted),
                        Err(error) => {
                            warn!(topic = %topic.name, partition = index, %error, "aborted transaction index unreadable");
                            any_error = true;
                            drop(log);
                            partitions.push(empty_partition(index, ErrorCode::KafkaStorageError));
                            continue;
                        }
                    }
                }
                _ => None,
            };
            drop(log);
            let (error, records) = match result {
                Ok(Some(range)) => {
                    total_bytes += range.length as usize;
                    (NO_ERROR, FetchRecords::File(range))
                }
                Ok(None) => (NO_ERROR, FetchRecords::Memory(bytes::Bytes::new())),
                Err(ReadError::OffsetOutOfRange { .. })
                    if remote.contains_key(&(topic.topic_id, index, fetch.fetch_offset)) =>
                {
                    let read = &remote[&(topic.topic_id, index, fetch.fetch_offset)];
                    total_bytes += read.records.len();
                    aborted_transactions = read.aborted.clone();
                    (NO_ERROR, FetchRecords::Memory(read.records.clone()))
                }
                Err(ReadError::OffsetOutOfRange { .. }) => {
                    any_error = true;
                    (ErrorCode::OffsetOutOfRange.code(), FetchRecords::None)
                }
                Err(error) => {
                    warn!(topic = %topic.name, partition = index, %error, "read failed");
                    any_error = true;
                    (ErrorCode::KafkaStorageError.code(), FetchRecords::None)
                }
            };
            partitions.push(FetchPartitionOut {
                partition_index: index,
                error_code: error,
                high_watermark,
                last_stable_offset,
                log_start_offset,
                aborted_transactions,
                preferred_read_replica: -1,
                current_leader: None,
                records,
            });
        }
        topics.push(FetchTopicOut {
            name: wanted.topic.0.to_string(),
            topic_id: wanted.topic_id,
            partitions,
        });
    }
    let response = FetchResponseOut {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 0,
        topics,
        node_endpoints: Vec::new(),
    };
    (response, total_bytes, any_error)
}

/// KIP-392 on the leader: the in-sync replica in the consumer's rack to read from, when
/// rack-aware selection is on and the leader is in another rack.
fn read_replica_for(
    broker: &Broker,
    image: &MetadataImage,
    partition: &crate::partition::Partition,
    request: &FetchRequest,
    fetch_offset: i64,
) -> Option<i32> {
    use crate::replication::read_replica::{preferred_read_replica, ReadCandidate};
    if !broker.config().cluster.rack_aware_read_replicas || request.rack_id.is_empty() {
        return None;
    }
    let rack_of = |id: i32| image.broker(id).and_then(|b| b.rack.as_deref());
    let role = partition.role.lock();
    let crate::partition::ReplicaRole::Leader(state) = &*role else {
        return None;
    };
    let followers: Vec<ReadCandidate<'_>> = state
        .isr()
        .iter()
        .copied()
        .filter(|id| *id != broker.config().node_id && image.is_broker_unfenced(*id))
        .filter_map(|id| {
            Some(ReadCandidate {
                broker_id: id,
                rack: rack_of(id),
                log_end: state.follower_log_end(id)?,
            })
        })
        .collect();
    preferred_read_replica(
        request.rack_id.as_str(),
        rack_of(broker.config().node_id),
        &followers,
        fetch_offset,
    )
}

/// Records a follower's progress on the leader: the high watermark may move, and a caught-up
/// follower may be proposed for the ISR.
fn follower_fetched(
    partition: &crate::partition::Partition,
    replica: i32,
    fetch_offset: i64,
    log_end: i64,
    now: i64,
    effects: &mut FollowerEffects,
) {
    let mut role = partition.role.lock();
    let crate::partition::ReplicaRole::Leader(state) = &mut *role else {
        return;
    };
    let outcome = state.on_follower_fetch(replica, fetch_offset, log_end, now);
    if let Some(high_watermark) = outcome.high_watermark_advanced {
        partition.set_high_watermark(high_watermark);
        effects.high_watermark_moved = true;
    }
    if let Some(isr) = outcome.propose_isr {
        effects
            .isr_proposals
            .push(crate::cluster::IsrProposal::for_partition(partition, isr));
    }
}

/// Adds the record bytes of the response being sent to each topic's bytes-out counter.
/// Topics fetched by id (v13+) carry no name in the response, so it comes from the image.
fn count_bytes_out(broker: &Broker, response: &FetchResponseOut) {
    let mut image = None;
    for topic in &response.topics {
        let bytes: u64 = topic
            .partitions
            .iter()
            .map(|partition| partition.records.len() as u64)
            .sum();
        if bytes == 0 {
            continue;
        }
        if !topic.name.is_empty() {
            broker.metrics().record_fetch(&topic.name, bytes);
        } else if let Some(known) = image
            .get_or_insert_with(|| broker.image())
            .topic_by_id(topic.topic_id)
        {
            broker.metrics().record_fetch(&known.name, bytes);
        }
    }
}

fn apply_effects(broker: &Arc<Broker>, effects: &mut FollowerEffects) {
    if std::mem::take(&mut effects.high_watermark_moved) {
        broker.notify_appended();
    }
    for proposal in effects.isr_proposals.drain(..) {
        crate::cluster::propose_isr(broker, proposal);
    }
}

/// How a fetch uses its session, decided by [`open_session`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStep {
    /// No session: answer with id 0.
    None,
    /// A full fetch asking for a session: create it from the answer.
    Create,
    /// An incremental fetch of this session: answer only what changed.
    Incremental(i32),
}

impl SessionStep {
    /// The session id an answer that never reaches the cache carries.
    pub fn response_id(self) -> i32 {
        match self {
            SessionStep::Incremental(id) => id,
            SessionStep::None | SessionStep::Create => 0,
        }
    }
}

/// Resolves the fetch's session (KIP-227): an incremental fetch comes back as the full
/// list of its session's partitions. Errors are the response's top-level error.
pub fn open_session(
    broker: &Broker,
    request: FetchRequest,
    version: i16,
) -> Result<(FetchRequest, SessionStep), ErrorCode> {
    let context = broker
        .fetch_sessions()
        .lock()
        .open(&request, version, crate::state::now_ms());
    match context {
        FetchContext::Sessionless => Ok((request, SessionStep::None)),
        FetchContext::Full => Ok((request, SessionStep::Create)),
        FetchContext::Incremental {
            session_id,
            request,
        } => Ok((*request, SessionStep::Incremental(session_id))),
        FetchContext::Error(error) => Err(error),
    }
}

/// Partitions of a consumer fetch that may need the remote tier: (topic id, partition,
/// fetch offset, partition max bytes); `tiering::read_remote` checks the local log start.
fn remote_candidates(
    broker: &Broker,
    image: &MetadataImage,
    request: &FetchRequest,
    version: i16,
) -> Vec<(uuid::Uuid, i32, i64, usize)> {
    let response_max = (request.max_bytes.max(0)).min(broker.config().fetch_max_bytes) as usize;
    let mut wanted = Vec::new();
    for topic in &request.topics {
        let found = if version >= 13 {
            image.topic_by_id(topic.topic_id)
        } else {
            image.topic(topic.topic.0.as_str())
        };
        let Some(found) = found else { continue };
        if !crate::tiering::is_tiered(broker, image, &found.name) {
            continue;
        }
        for partition in &topic.partitions {
            let max_bytes = (partition.partition_max_bytes.max(0) as usize).min(response_max);
            wanted.push((
                found.topic_id,
                partition.partition,
                partition.fetch_offset,
                max_bytes,
            ));
        }
    }
    wanted
}

/// Serves a fetch whose session [`open_session`] resolved.
pub async fn handle(
    broker: &Arc<Broker>,
    request: FetchRequest,
    session: SessionStep,
    version: i16,
    correlation_id: i32,
    advertised: &Advertised,
) -> Result<ResponseFrame, EncodeError> {
    let max_wait_ms =
        (request.max_wait_ms.max(0) as i64).min(broker.config().fetch_max_wait_ms_cap);
    let deadline = Instant::now() + Duration::from_millis(max_wait_ms as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    // Subscribe before the first read so an append between the read and the wait is seen.
    let mut appends = broker.subscribe_appends();
    let mut effects = FollowerEffects::default();
    // Offsets below a tiered partition's local log start, read from the object store
    // first, without any partition lock held.
    let remote = match crate::tiering::active(broker) {
        Some(_) if replica_id(&request, version) < 0 => {
            let image = broker.image();
            let wanted = remote_candidates(broker, &image, &request, version);
            crate::tiering::read_remote(broker, &image, wanted, request.isolation_level == 1).await
        }
        _ => crate::tiering::RemoteReads::new(),
    };
    // Once the deadline has passed, one more read answers with whatever is there.
    let mut expired = false;
    loop {
        appends.borrow_and_update();
        let image = broker.image();
        let (response, total_bytes, any_error) =
            read_once(broker, &image, &request, version, &mut effects, &remote);
        apply_effects(broker, &mut effects);
        // min_bytes 0 answers at once (0 >= 0); max_wait 0 has already passed its deadline.
        if expired || total_bytes >= min_bytes || any_error || Instant::now() >= deadline {
            let mut response = response;
            match session {
                SessionStep::None => {}
                SessionStep::Create => {
                    response.session_id = broker.fetch_sessions().lock().create(
                        &request,
                        version,
                        replica_id(&request, version) >= 0,
                        &response,
                        crate::state::now_ms(),
                    )
                }
                SessionStep::Incremental(id) => broker
                    .fetch_sessions()
                    .lock()
                    .respond_incrementally(id, &mut response),
            }
            return answer(
                broker,
                &image,
                response,
                version,
                correlation_id,
                advertised,
            );
        }
        let _parked = broker.metrics().fetch_purgatory.track();
        expired = tokio::time::timeout_at(deadline, appends.changed())
            .await
            .is_err();
    }
}

/// Counts the bytes sent, adds KIP-951 leader hints (v16+) and encodes the answer.
fn answer(
    broker: &Broker,
    image: &MetadataImage,
    mut response: FetchResponseOut,
    version: i16,
    correlation_id: i32,
    advertised: &Advertised,
) -> Result<ResponseFrame, EncodeError> {
    count_bytes_out(broker, &response);
    if version >= leader_hint::FETCH_MIN_VERSION {
        let mut hints = LeaderHints::default();
        for topic in &mut response.topics {
            for partition in &mut topic.partitions {
                if leader_hint::wants_hint(partition.error_code) {
                    partition.current_leader =
                        hints.leader_of(image, topic.topic_id, partition.partition_index);
                }
            }
        }
        response.node_endpoints = hints.endpoints(broker, image, advertised);
    }
    encode_fetch_response(version, correlation_id, &response)
}
