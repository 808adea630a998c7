//! Fetch sessions (KIP-227, incremental fetch): a client that fetches many partitions
//! sends them once, then only what changed.
//!
//! A pure state machine (time is passed in); the Fetch handler drives it under one short
//! lock, never across a long poll:
//! 1. [`FetchSessionCache::open`] reads the request's `session_id`/`session_epoch`:
//!    epoch -1 is a fetch without a session (closing `session_id` if one is named), epoch 0
//!    a full fetch that asks for a new session, any other epoch an incremental fetch of an
//!    existing session, whose partitions it updates (`topics`) and removes
//!    (`forgotten_topics_data`), giving back the full request to read.
//! 2. The handler reads as for any fetch.
//! 3. [`FetchSessionCache::create`] caches a full fetch's partitions and what the response
//!    told the client about them (high watermark, last stable offset, log start) and gives
//!    the session's id; [`FetchSessionCache::respond_incrementally`] drops from an
//!    incremental response every partition with nothing new for the client, and moves
//!    partitions that returned records to the back of the session so the others are read
//!    first next time (`fetch.max.bytes` cannot starve them).
//!
//! Errors are Kafka's: an unknown session gets FETCH_SESSION_ID_NOT_FOUND, a wrong epoch
//! (a retry, a lost response) INVALID_FETCH_SESSION_EPOCH, a session created with topic ids
//! (Fetch v13+) used with names or the other way round FETCH_SESSION_TOPIC_ID_ERROR; the
//! client then starts again with a full fetch.
//!
//! The cache holds `max.incremental.fetch.session.cache.slots` sessions. When it is full a
//! new session takes the place of one idle for over [`EVICTION_IDLE_MS`], else of a smaller
//! or less privileged one (followers' sessions outrank consumers'), as Kafka does; when none
//! qualifies the fetch is answered without a session (id 0) and the client keeps sending
//! full fetches.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;
use uuid::Uuid;

use crate::fetch_encoding::{FetchPartitionOut, FetchResponseOut};

/// `session_epoch` of a fetch that wants no session (and closes the one it names).
pub const FINAL_EPOCH: i32 = -1;
/// `session_epoch` of a full fetch that asks for a new session.
pub const INITIAL_EPOCH: i32 = 0;
/// First Fetch version with sessions.
pub const MIN_VERSION: i16 = 7;
/// First Fetch version that names topics by id (a session keeps to one way of naming).
const TOPIC_IDS_MIN_VERSION: i16 = 13;
/// A session idle this long may be evicted by any new one (Kafka's
/// `min.incremental.fetch.session.eviction.ms` default).
pub const EVICTION_IDLE_MS: i64 = 120_000;

/// A partition as a session names it: by topic id from v13, by name before.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PartitionKey {
    topic_id: Uuid,
    topic: TopicName,
    partition: i32,
}

#[derive(Debug)]
struct CachedPartition {
    /// What the client last asked for this partition (offset, sizes, epochs).
    fetch: FetchPartition,
    /// What the client was last told; a response repeats the partition only when one of
    /// these changed, or it carries records or an error.
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    /// Position in the session's round-robin order (a key of `Session::order`).
    order: u64,
}

#[derive(Debug)]
struct Session {
    /// The epoch the next incremental fetch must carry.
    next_epoch: i32,
    uses_topic_ids: bool,
    /// A follower's session; consumers cannot evict it.
    privileged: bool,
    last_used_ms: i64,
    partitions: HashMap<PartitionKey, CachedPartition>,
    /// Partitions in the order they are read: those that returned records go last.
    order: BTreeMap<u64, PartitionKey>,
    next_order: u64,
}

impl Session {
    fn upsert(&mut self, key: PartitionKey, fetch: FetchPartition) {
        if let Some(cached) = self.partitions.get_mut(&key) {
            cached.fetch = fetch;
            return;
        }
        let order = self.next_order;
        self.next_order += 1;
        self.order.insert(order, key.clone());
        self.partitions.insert(
            key,
            CachedPartition {
                fetch,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                order,
            },
        );
    }

    fn remove(&mut self, key: &PartitionKey) {
        if let Some(cached) = self.partitions.remove(key) {
            self.order.remove(&cached.order);
        }
    }

    fn move_to_back(&mut self, key: &PartitionKey) {
        let order = self.next_order;
        if let Some(cached) = self.partitions.get_mut(key) {
            self.order.remove(&cached.order);
            cached.order = order;
            self.next_order += 1;
            self.order.insert(order, key.clone());
        }
    }

    /// The session's partitions as a request's topic list, in read order (consecutive
    /// partitions of one topic share an entry).
    fn topics(&self) -> Vec<FetchTopic> {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for key in self.order.values() {
            let Some(cached) = self.partitions.get(key) else {
                continue;
            };
            match topics.last_mut() {
                Some(last) if last.topic_id == key.topic_id && last.topic == key.topic => {
                    last.partitions.push(cached.fetch.clone());
                }
                _ => topics.push(
                    FetchTopic::default()
                        .with_topic(key.topic.clone())
                        .with_topic_id(key.topic_id)
                        .with_partitions(vec![cached.fetch.clone()]),
                ),
            }
        }
        topics
    }
}

/// What [`FetchSessionCache::open`] decided for one fetch.
#[derive(Debug)]
pub enum FetchContext {
    /// Read the request as it is and answer with session id 0.
    Sessionless,
    /// Read the request as it is, then [`FetchSessionCache::create`] a session from it.
    Full,
    /// Read `request` (every partition of the session) and answer through
    /// [`FetchSessionCache::respond_incrementally`].
    Incremental {
        session_id: i32,
        request: Box<FetchRequest>,
    },
    /// Answer with this top-level error and no partitions.
    Error(ErrorCode),
}

/// Every fetch session of this broker; see the module docs.
#[derive(Debug)]
pub struct FetchSessionCache {
    slots: usize,
    sessions: HashMap<i32, Session>,
    rng: u64,
}

impl FetchSessionCache {
    /// A cache of at most `slots` sessions (0 turns sessions off). `seed` picks session
    /// ids; any value works.
    pub fn new(slots: usize, seed: u64) -> FetchSessionCache {
        FetchSessionCache {
            slots,
            sessions: HashMap::new(),
            rng: seed | 1,
        }
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Partitions held by all sessions.
    pub fn partitions_cached(&self) -> usize {
        self.sessions.values().map(|s| s.partitions.len()).sum()
    }

    /// Decides how to serve `request` (step 1 of the module docs).
    pub fn open(&mut self, request: &FetchRequest, version: i16, now_ms: i64) -> FetchContext {
        if version < MIN_VERSION {
            return FetchContext::Sessionless;
        }
        let (id, epoch) = (request.session_id, request.session_epoch);
        if epoch == FINAL_EPOCH || epoch == INITIAL_EPOCH {
            if id != 0 {
                self.sessions.remove(&id);
            }
            if epoch == FINAL_EPOCH || self.slots == 0 {
                return FetchContext::Sessionless;
            }
            return FetchContext::Full;
        }
        if epoch < 0 {
            return FetchContext::Error(ErrorCode::InvalidFetchSessionEpoch);
        }
        let Some(session) = self.sessions.get_mut(&id) else {
            return FetchContext::Error(ErrorCode::FetchSessionIdNotFound);
        };
        if session.next_epoch != epoch {
            return FetchContext::Error(ErrorCode::InvalidFetchSessionEpoch);
        }
        let uses_topic_ids = version >= TOPIC_IDS_MIN_VERSION;
        if session.uses_topic_ids != uses_topic_ids {
            self.sessions.remove(&id);
            return FetchContext::Error(ErrorCode::FetchSessionTopicIdError);
        }
        for topic in &request.topics {
            for fetch in &topic.partitions {
                let key = key_of(
                    uses_topic_ids,
                    topic.topic_id,
                    &topic.topic,
                    fetch.partition,
                );
                session.upsert(key, fetch.clone());
            }
        }
        for forgotten in &request.forgotten_topics_data {
            for &partition in &forgotten.partitions {
                let key = key_of(
                    uses_topic_ids,
                    forgotten.topic_id,
                    &forgotten.topic,
                    partition,
                );
                session.remove(&key);
            }
        }
        session.next_epoch = next_epoch(epoch);
        session.last_used_ms = now_ms;
        let mut full = request.clone();
        full.topics = session.topics();
        full.forgotten_topics_data.clear();
        FetchContext::Incremental {
            session_id: id,
            request: Box::new(full),
        }
    }

    /// Caches the session a full fetch asked for, once its response is ready, and returns
    /// the id to answer with (0 when the cache has no room, or the fetch named nothing).
    pub fn create(
        &mut self,
        request: &FetchRequest,
        version: i16,
        privileged: bool,
        response: &FetchResponseOut,
        now_ms: i64,
    ) -> i32 {
        let size: usize = request.topics.iter().map(|t| t.partitions.len()).sum();
        if size == 0 || !self.make_room(privileged, size, now_ms) {
            return 0;
        }
        let uses_topic_ids = version >= TOPIC_IDS_MIN_VERSION;
        let mut session = Session {
            next_epoch: next_epoch(INITIAL_EPOCH),
            uses_topic_ids,
            privileged,
            last_used_ms: now_ms,
            partitions: HashMap::with_capacity(size),
            order: BTreeMap::new(),
            next_order: 0,
        };
        for topic in &request.topics {
            for fetch in &topic.partitions {
                let key = key_of(
                    uses_topic_ids,
                    topic.topic_id,
                    &topic.topic,
                    fetch.partition,
                );
                session.upsert(key, fetch.clone());
            }
        }
        for topic in &response.topics {
            for out in &topic.partitions {
                let key = key_of(
                    uses_topic_ids,
                    topic.topic_id,
                    &TopicName(StrBytes::from_string(topic.name.clone())),
                    out.partition_index,
                );
                if let Some(cached) = session.partitions.get_mut(&key) {
                    remember(cached, out);
                }
            }
        }
        let id = self.fresh_id();
        self.sessions.insert(id, session);
        id
    }

    /// Leaves in `response` (read from the request [`FetchSessionCache::open`] gave for
    /// session `session_id`) only the partitions with something new for the client, and
    /// remembers what it is told. A session evicted meanwhile leaves the response whole.
    pub fn respond_incrementally(&mut self, session_id: i32, response: &mut FetchResponseOut) {
        response.session_id = session_id;
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        let uses_topic_ids = session.uses_topic_ids;
        let mut returned_records = Vec::new();
        for topic in &mut response.topics {
            let name = TopicName(StrBytes::from_string(topic.name.clone()));
            topic.partitions.retain(|out| {
                let key = key_of(uses_topic_ids, topic.topic_id, &name, out.partition_index);
                let Some(cached) = session.partitions.get_mut(&key) else {
                    return true;
                };
                let has_records = out.records.len() > 0;
                let respond = has_records
                    || out.error_code != 0
                    || out.preferred_read_replica >= 0
                    || out.high_watermark != cached.high_watermark
                    || out.last_stable_offset != cached.last_stable_offset
                    || out.log_start_offset != cached.log_start_offset;
                if respond {
                    remember(cached, out);
                }
                if has_records {
                    returned_records.push(key);
                }
                respond
            });
        }
        response.topics.retain(|topic| !topic.partitions.is_empty());
        for key in &returned_records {
            session.move_to_back(key);
        }
    }

    /// Frees a slot for a new session of `size` partitions, if the rules allow.
    fn make_room(&mut self, privileged: bool, size: usize, now_ms: i64) -> bool {
        if self.slots == 0 {
            return false;
        }
        if self.sessions.len() < self.slots {
            return true;
        }
        let stale: Vec<i32> = self
            .sessions
            .iter()
            .filter(|(_, s)| now_ms - s.last_used_ms > EVICTION_IDLE_MS)
            .map(|(&id, _)| id)
            .collect();
        for id in stale {
            self.sessions.remove(&id);
        }
        if self.sessions.len() < self.slots {
            return true;
        }
        // The least valuable session the new one outranks: a consumer's when the new one
        // is a follower's, else a smaller one of the same kind; least recently used first.
        let victim = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                (privileged && !s.privileged)
                    || (privileged == s.privileged && s.partitions.len() < size)
            })
            .min_by_key(|(_, s)| (s.privileged, s.partitions.len(), s.last_used_ms))
            .map(|(&id, _)| id);
        match victim {
            Some(id) => {
                self.sessions.remove(&id);
                true
            }
            None => false,
        }
    }

    /// A positive id no session has.
    fn fresh_id(&mut self) -> i32 {
        loop {
            // xorshift64*: ids need only be unpredictable enough not to collide.
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let id = (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as i32;
            if id > 0 && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

fn remember(cached: &mut CachedPartition, out: &FetchPartitionOut) {
    cached.high_watermark = out.high_watermark;
    cached.last_stable_offset = out.last_stable_offset;
    cached.log_start_offset = out.log_start_offset;
}

fn key_of(uses_topic_ids: bool, topic_id: Uuid, topic: &TopicName, partition: i32) -> PartitionKey {
    if uses_topic_ids {
        PartitionKey {
            topic_id,
            topic: TopicName::default(),
            partition,
        }
    } else {
        PartitionKey {
            topic_id: Uuid::nil(),
            topic: topic.clone(),
            partition,
        }
    }
}

/// The epoch after `epoch`: 1, 2, ... wrapping from `i32::MAX` to 1 (0 and -1 are taken).
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
#[path = "fetch_session_tests.rs"]
mod tests;
