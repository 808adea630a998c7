use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;

use super::*;
use crate::fetch_encoding::{FetchPartitionOut, FetchRecords, FetchResponseOut, FetchTopicOut};

const V12: i16 = 12;
const V13: i16 = 13;

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn part(index: i32, offset: i64) -> FetchPartition {
    FetchPartition::default()
        .with_partition(index)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20)
}

fn request(id: i32, epoch: i32, topics: &[(&str, &[(i32, i64)])]) -> FetchRequest {
    FetchRequest::default()
        .with_session_id(id)
        .with_session_epoch(epoch)
        .with_topics(
            topics
                .iter()
                .map(|(topic, parts)| {
                    FetchTopic::default()
                        .with_topic(name(topic))
                        .with_partitions(
                            parts
                                .iter()
                                .map(|&(index, offset)| part(index, offset))
                                .collect(),
                        )
                })
                .collect(),
        )
}

fn out(index: i32, high_watermark: i64, records: usize) -> FetchPartitionOut {
    FetchPartitionOut {
        partition_index: index,
        error_code: 0,
        high_watermark,
        last_stable_offset: high_watermark,
        log_start_offset: 0,
        aborted_transactions: None,
        preferred_read_replica: -1,
        current_leader: None,
        records: FetchRecords::Memory(bytes::Bytes::from(vec![0u8; records])),
    }
}

/// A response for `request` where every partition has high watermark `hw` and carries
/// `records` bytes if its index is in `with_records`.
fn response_for(request: &FetchRequest, hw: i64, with_records: &[i32]) -> FetchResponseOut {
    FetchResponseOut {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 0,
        topics: request
            .topics
            .iter()
            .map(|t| FetchTopicOut {
                name: t.topic.0.to_string(),
                topic_id: t.topic_id,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| {
                        let bytes = if with_records.contains(&p.partition) {
                            100
                        } else {
                            0
                        };
                        out(p.partition, hw, bytes)
                    })
                    .collect(),
            })
            .collect(),
        node_endpoints: Vec::new(),
    }
}

fn partitions_of(response: &FetchResponseOut) -> Vec<(String, i32)> {
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.clone(), p.partition_index))
        })
        .collect()
}

fn order_of(request: &FetchRequest) -> Vec<(String, i32, i64)> {
    request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.topic.0.to_string(), p.partition, p.fetch_offset))
        })
        .collect()
}

/// Opens a full fetch of `topics` at `now`, answers it with high watermark 10, returns
/// the session id.
fn start(cache: &mut FetchSessionCache, topics: &[(&str, &[(i32, i64)])], now: i64) -> i32 {
    let full = request(0, INITIAL_EPOCH, topics);
    assert!(matches!(cache.open(&full, V12, now), FetchContext::Full));
    let response = response_for(&full, 10, &[]);
    cache.create(&full, V12, false, &response, now)
}

fn incremental(cache: &mut FetchSessionCache, req: &FetchRequest, version: i16) -> FetchRequest {
    match cache.open(req, version, 0) {
        FetchContext::Incremental { request, .. } => *request,
        other => panic!("expected an incremental context, got {other:?}"),
    }
}

#[test]
fn given_sessionless_or_old_version_fetch_should_not_create_session() {
    let mut cache = FetchSessionCache::new(10, 1);
    let req = request(0, FINAL_EPOCH, &[("t", &[(0, 0)])]);
    assert!(matches!(
        cache.open(&req, V12, 0),
        FetchContext::Sessionless
    ));
    let req = request(0, INITIAL_EPOCH, &[("t", &[(0, 0)])]);
    assert!(matches!(cache.open(&req, 6, 0), FetchContext::Sessionless));
    assert!(cache.is_empty());
    let mut off = FetchSessionCache::new(0, 1);
    assert!(matches!(off.open(&req, V12, 0), FetchContext::Sessionless));
}

#[test]
fn given_full_fetch_should_create_session_and_serve_its_partitions_incrementally() {
    let mut cache = FetchSessionCache::new(10, 7);
    let id = start(&mut cache, &[("a", &[(0, 5), (1, 7)]), ("b", &[(0, 0)])], 0);
    assert!(id > 0);
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.partitions_cached(), 3);

    // Epoch 1 names only a-1 with a new offset: all three are read, a-1 at its new offset.
    let full = incremental(&mut cache, &request(id, 1, &[("a", &[(1, 9)])]), V12);
    assert_eq!(
        order_of(&full),
        vec![("a".into(), 0, 5), ("a".into(), 1, 9), ("b".into(), 0, 0)]
    );

    // Nothing changed for a-0 and b-0 (same high watermark, no records): only a-1 answers.
    let mut response = response_for(&full, 10, &[1]);
    cache.respond_incrementally(id, &mut response);
    assert_eq!(response.session_id, id);
    assert_eq!(partitions_of(&response), vec![("a".into(), 1)]);
}

#[test]
fn given_changed_high_watermark_or_error_should_answer_that_partition_once() {
    let mut cache = FetchSessionCache::new(10, 3);
    let id = start(&mut cache, &[("a", &[(0, 0), (1, 0), (2, 0)])], 0);
    let full = incremental(&mut cache, &request(id, 1, &[]), V12);
    let mut response = response_for(&full, 10, &[]);
    response.topics[0].partitions[1].high_watermark = 11;
    response.topics[0].partitions[2].error_code = ErrorCode::NotLeaderOrFollower.code();
    cache.respond_incrementally(id, &mut response);
    assert_eq!(
        partitions_of(&response),
        vec![("a".into(), 1), ("a".into(), 2)]
    );

    // The new high watermark was told; the error is told again (it still holds).
    let full = incremental(&mut cache, &request(id, 2, &[]), V12);
    let mut response = response_for(&full, 10, &[]);
    response.topics[0].partitions[1].high_watermark = 11;
    response.topics[0].partitions[2].error_code = ErrorCode::NotLeaderOrFollower.code();
    cache.respond_incrementally(id, &mut response);
    assert_eq!(partitions_of(&response), vec![("a".into(), 2)]);
}

#[test]
fn given_partitions_returning_records_should_move_them_to_the_back() {
    let mut cache = FetchSessionCache::new(10, 3);
    let id = start(&mut cache, &[("a", &[(0, 0), (1, 0), (2, 0)])], 0);
    let full = incremental(&mut cache, &request(id, 1, &[]), V12);
    let mut response = response_for(&full, 10, &[0]);
    cache.respond_incrementally(id, &mut response);
    let full = incremental(&mut cache, &request(id, 2, &[]), V12);
    let order: Vec<i32> = order_of(&full).iter().map(|p| p.1).collect();
    assert_eq!(order, vec![1, 2, 0]);
}

#[test]
fn given_forgotten_partitions_should_stop_reading_them() {
    let mut cache = FetchSessionCache::new(10, 3);
    let id = start(&mut cache, &[("a", &[(0, 0), (1, 0)]), ("b", &[(0, 0)])], 0);
    let mut req = request(id, 1, &[("c", &[(3, 4)])]);
    req.forgotten_topics_data = vec![ForgottenTopic::default()
        .with_topic(name("a"))
        .with_partitions(vec![0, 1])];
    let full = incremental(&mut cache, &req, V12);
    assert_eq!(
        order_of(&full),
        vec![("b".into(), 0, 0), ("c".into(), 3, 4)]
    );
    assert_eq!(cache.partitions_cached(), 2);
}

#[test]
fn given_wrong_epoch_or_unknown_session_should_answer_kafka_errors() {
    let mut cache = FetchSessionCache::new(10, 3);
    let id = start(&mut cache, &[("a", &[(0, 0)])], 0);
    let unknown = if id == i32::MAX { 1 } else { id + 1 };
    assert!(matches!(
        cache.open(&request(unknown, 1, &[]), V12, 0),
        FetchContext::Error(ErrorCode::FetchSessionIdNotFound)
    ));
    // A retry of epoch 1 after it was served is a wrong epoch.
    incremental(&mut cache, &request(id, 1, &[]), V12);
    assert!(matches!(
        cache.open(&request(id, 1, &[]), V12, 0),
        FetchContext::Error(ErrorCode::InvalidFetchSessionEpoch)
    ));
    assert!(matches!(
        cache.open(&request(id, -5, &[]), V12, 0),
        FetchContext::Error(ErrorCode::InvalidFetchSessionEpoch)
    ));
    // The right epoch still works: a wrong one does not break the session.
    incremental(&mut cache, &request(id, 2, &[]), V12);
}

#[test]
fn given_session_by_names_when_used_with_topic_ids_should_answer_topic_id_error() {
    let mut cache = FetchSessionCache::new(10, 3);
    let id = start(&mut cache, &[("a", &[(0, 0)])], 0);
    assert!(matches!(
        cache.open(&request(id, 1, &[]), V13, 0),
        FetchContext::Error(ErrorCode::FetchSessionTopicIdError)
    ));
    assert!(cache.is_empty(), "the inconsistent session is closed");
}

#[test]
fn given_topic_id_session_should_key_partitions_by_id() {
    let mut cache = FetchSessionCache::new(10, 3);
    let topic_id = uuid::Uuid::from_u128(0xfeed);
    let mut full = request(0, INITIAL_EPOCH, &[("", &[(0, 0), (1, 0)])]);
    full.topics[0].topic_id = topic_id;
    assert!(matches!(cache.open(&full, V13, 0), FetchContext::Full));
    let id = cache.create(&full, V13, false, &response_for(&full, 10, &[]), 0);
    let mut req = request(id, 1, &[]);
    req.forgotten_topics_data = vec![ForgottenTopic::default()
        .with_topic_id(topic_id)
        .with_partitions(vec![1])];
    let read = incremental(&mut cache, &req, V13);
    assert_eq!(read.topics.len(), 1);
    assert_eq!(read.topics[0].topic_id, topic_id);
    assert_eq!(read.topics[0].partitions.len(), 1);
    assert_eq!(read.topics[0].partitions[0].partition, 0);
}

#[test]
fn given_final_or_initial_epoch_naming_a_session_should_close_it() {
    let mut cache = FetchSessionCache::new(10, 3);
    let id = start(&mut cache, &[("a", &[(0, 0)])], 0);
    assert!(matches!(
        cache.open(&request(id, FINAL_EPOCH, &[("a", &[(0, 0)])]), V12, 0),
        FetchContext::Sessionless
    ));
    assert!(cache.is_empty());
    let id = start(&mut cache, &[("a", &[(0, 0)])], 0);
    assert!(matches!(
        cache.open(&request(id, INITIAL_EPOCH, &[("a", &[(0, 0)])]), V12, 0),
        FetchContext::Full
    ));
    assert!(
        cache.is_empty(),
        "the old session goes; the full fetch makes a new one"
    );
}

#[test]
fn given_full_cache_should_evict_stale_then_smaller_sessions_and_never_a_follower_for_a_consumer() {
    let mut cache = FetchSessionCache::new(2, 3);
    let small = start(&mut cache, &[("a", &[(0, 0)])], 0);
    let big = start(&mut cache, &[("a", &[(0, 0), (1, 0), (2, 0)])], 1_000);
    assert_ne!(small, 0);
    assert_ne!(big, 0);
    // A consumer session of two partitions outranks the one-partition session only.
    let id = start(&mut cache, &[("b", &[(0, 0), (1, 0)])], 2_000);
    assert_ne!(id, 0);
    assert!(matches!(
        cache.open(&request(small, 1, &[]), V12, 2_000),
        FetchContext::Error(ErrorCode::FetchSessionIdNotFound)
    ));
    // A one-partition consumer session outranks nobody: no session for it.
    assert_eq!(start(&mut cache, &[("c", &[(0, 0)])], 3_000), 0);
    // A follower outranks consumer sessions.
    let follower_req = request(0, INITIAL_EPOCH, &[("d", &[(0, 0)])]);
    let follower = cache.create(
        &follower_req,
        V12,
        true,
        &response_for(&follower_req, 10, &[]),
        4_000,
    );
    assert_ne!(follower, 0);
    // Once everything is idle for the eviction time, anyone may take a slot.
    let later = 4_000 + EVICTION_IDLE_MS + 1;
    assert_ne!(start(&mut cache, &[("e", &[(0, 0)])], later), 0);
    assert_eq!(cache.len(), 1, "both stale sessions went");
}

#[test]
fn given_empty_full_fetch_should_not_take_a_slot() {
    let mut cache = FetchSessionCache::new(2, 3);
    assert_eq!(start(&mut cache, &[], 0), 0);
    assert!(cache.is_empty());
}

#[test]
fn given_epoch_at_max_should_wrap_to_one() {
    assert_eq!(next_epoch(i32::MAX), 1);
    assert_eq!(next_epoch(INITIAL_EPOCH), 1);
}
