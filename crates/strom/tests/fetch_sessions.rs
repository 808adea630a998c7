//! Fetch sessions (KIP-227) against the real binary: a full fetch opens a session, later
//! fetches send only changes and get only partitions with something new, and every misuse
//! gets Kafka's top-level error.

mod broker_support;

use broker_support::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;

const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
const FETCH_SESSION_TOPIC_ID_ERROR: i16 = 106;

fn partition(index: i32, offset: i64) -> FetchPartition {
    FetchPartition::default()
        .with_partition(index)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20)
}

/// A fetch of `parts` of `topic` (by name) in session `id` at `epoch`; max_wait 0.
fn session_fetch(id: i32, epoch: i32, topic: &str, parts: &[(i32, i64)]) -> FetchRequest {
    let topics = if parts.is_empty() {
        vec![]
    } else {
        vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(parts.iter().map(|&(i, o)| partition(i, o)).collect())]
    };
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(50 * 1024 * 1024)
        .with_session_id(id)
        .with_session_epoch(epoch)
        .with_topics(topics)
}

/// (partition, record count, high watermark) of every partition in the response.
fn answered(response: &FetchResponse) -> Vec<(i32, usize, i64)> {
    response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            let records = p.records.clone().unwrap_or_default();
            (
                p.partition_index,
                decode_values(&records).len(),
                p.high_watermark,
            )
        })
        .collect()
}

fn call(conn: &mut Conn, version: i16, request: &FetchRequest) -> FetchResponse {
    conn.call(ApiKey::Fetch, version, request)
}

#[test]
fn given_session_should_answer_only_partitions_with_news_and_track_changes() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "sess", 3, &[]);
    for p in 0..3 {
        assert_eq!(produce(&mut conn, "sess", p, batch("a", 2, 1_000)).0, 0);
    }

    // A full fetch at epoch 0 opens a session and answers every partition.
    let full = call(
        &mut conn,
        12,
        &session_fetch(0, 0, "sess", &[(0, 0), (1, 0), (2, 0)]),
    );
    assert_eq!(full.error_code, 0);
    assert!(full.session_id > 0, "no session was created");
    let id = full.session_id;
    assert_eq!(answered(&full), vec![(0, 2, 2), (1, 2, 2), (2, 2, 2)]);

    // Epoch 1 moves every position to the end: nothing new, so no partition is answered.
    let quiet = call(
        &mut conn,
        12,
        &session_fetch(id, 1, "sess", &[(0, 2), (1, 2), (2, 2)]),
    );
    assert_eq!((quiet.error_code, quiet.session_id), (0, id));
    assert_eq!(answered(&quiet), vec![]);

    // New records on partition 1 only: an empty incremental fetch gets exactly those.
    assert_eq!(produce(&mut conn, "sess", 1, batch("b", 3, 2_000)).0, 0);
    let news = call(&mut conn, 12, &session_fetch(id, 2, "sess", &[]));
    assert_eq!(answered(&news), vec![(1, 3, 5)]);

    // A retry of epoch 2 (a lost response) is refused; the session lives on.
    let retry = call(&mut conn, 12, &session_fetch(id, 2, "sess", &[]));
    assert_eq!(retry.error_code, INVALID_FETCH_SESSION_EPOCH);
    assert!(retry.responses.is_empty());

    // Forgetting partition 1 stops it being read; partition 0 is still tracked.
    let mut forget = session_fetch(id, 3, "sess", &[]);
    forget.forgotten_topics_data = vec![ForgottenTopic::default()
        .with_topic(topic_name("sess"))
        .with_partitions(vec![1])];
    assert_eq!(answered(&call(&mut conn, 12, &forget)), vec![]);
    assert_eq!(produce(&mut conn, "sess", 1, batch("c", 1, 3_000)).0, 0);
    assert_eq!(produce(&mut conn, "sess", 0, batch("d", 1, 3_000)).0, 0);
    let after = call(&mut conn, 12, &session_fetch(id, 4, "sess", &[]));
    assert_eq!(answered(&after), vec![(0, 1, 3)]);

    // Epoch -1 closes the session; naming it again is an unknown session.
    let close = call(&mut conn, 12, &session_fetch(id, -1, "sess", &[(0, 3)]));
    assert_eq!((close.error_code, close.session_id), (0, 0));
    let gone = call(&mut conn, 12, &session_fetch(id, 5, "sess", &[]));
    assert_eq!(gone.error_code, FETCH_SESSION_ID_NOT_FOUND);
}

#[test]
fn given_bad_session_fields_should_get_kafka_errors_not_a_closed_connection() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "bad", 1, &[]);
    let unknown = call(&mut conn, 12, &session_fetch(12345, 1, "bad", &[(0, 0)]));
    assert_eq!(unknown.error_code, FETCH_SESSION_ID_NOT_FOUND);
    let negative = call(&mut conn, 12, &session_fetch(12345, -7, "bad", &[(0, 0)]));
    assert_eq!(negative.error_code, INVALID_FETCH_SESSION_EPOCH);
    // Below v7 the fields do not exist: always sessionless.
    let old = call(&mut conn, 6, &session_fetch(0, 0, "bad", &[(0, 0)]));
    assert_eq!((old.error_code, old.session_id), (0, 0));

    // A session opened by topic id (v13) cannot go on by name (v12).
    let metadata: MetadataResponse = conn.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name("bad")))
        ])),
    );
    let topic_id = metadata.topics[0].topic_id;
    let mut by_id = session_fetch(0, 0, "", &[(0, 0)]);
    by_id.topics[0].topic_id = topic_id;
    let opened = call(&mut conn, 13, &by_id);
    assert_eq!(opened.error_code, 0);
    assert!(opened.session_id > 0);
    assert_eq!(opened.responses[0].topic_id, topic_id);
    let mixed = call(
        &mut conn,
        12,
        &session_fetch(opened.session_id, 1, "bad", &[]),
    );
    assert_eq!(mixed.error_code, FETCH_SESSION_TOPIC_ID_ERROR);
    // The connection still serves.
    assert_eq!(produce(&mut conn, "bad", 0, batch("x", 1, 1_000)).0, 0);
}

#[test]
fn given_sessions_turned_off_should_answer_full_fetches_without_session() {
    let broker = TestBroker::start(&["max.incremental.fetch.session.cache.slots=0"]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "off", 1, &[]);
    let full = call(&mut conn, 12, &session_fetch(0, 0, "off", &[(0, 0)]));
    assert_eq!((full.error_code, full.session_id), (0, 0));
    assert_eq!(answered(&full), vec![(0, 0, 0)]);
}
