//! Transactions over raw Kafka protocol against the real binary: the coordinator's answers
//! to good and bad requests, read_committed Fetch/ListOffsets (last stable offset, aborted
//! transactions), zombie fencing at produce time, recovery of transaction state after
//! kill -9 and the coordinator's timeout abort, and malformed requests of every new API.

mod broker_support;

use std::time::{Duration, Instant};

use broker_support::*;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordToEncode};

const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
const PRODUCER_FENCED: i16 = 90;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// Record timestamps are "now": an old one would roll segments (`segment.ms`) or let
/// retention delete them at start-up, and each fetch reads one segment.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(s(id))
}

/// Waits for the transaction coordinator (FindCoordinator creates and loads its topic).
fn find_txn_coordinator(conn: &mut Conn, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response: FindCoordinatorResponse = conn.call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default()
                .with_key(s(id))
                .with_key_type(1),
        );
        if response.error_code == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "no transaction coordinator");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn init(conn: &mut Conn, id: &str, timeout_ms: i32) -> (i16, i64, i16) {
    let response: InitProducerIdResponse = conn.call(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(txn_id(id)))
            .with_transaction_timeout_ms(timeout_ms)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    (
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    )
}

fn add_partitions(
    conn: &mut Conn,
    id: &str,
    producer: (i64, i16),
    topic: &str,
    partitions: &[i32],
) -> Vec<i16> {
    let response: AddPartitionsToTxnResponse = conn.call(
        ApiKey::AddPartitionsToTxn,
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(txn_id(id))
            .with_v3_and_below_producer_id(ProducerId(producer.0))
            .with_v3_and_below_producer_epoch(producer.1)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(partitions.to_vec())]),
    );
    response.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect()
}

fn end(conn: &mut Conn, id: &str, producer: (i64, i16), commit: bool) -> i16 {
    let response: EndTxnResponse = conn.call(
        ApiKey::EndTxn,
        3,
        &EndTxnRequest::default()
            .with_transactional_id(txn_id(id))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_committed(commit),
    );
    response.error_code
}

fn txn_batch(producer: (i64, i16), sequence: i32, values: &[&str]) -> Bytes {
    let records: Vec<RecordToEncode> = values
        .iter()
        .map(|v| RecordToEncode {
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Vec::new(),
            timestamp_ms: now_ms(),
        })
        .collect();
    encode_batch(
        &records,
        &BatchBuilderOptions {
            producer_id: producer.0,
            producer_epoch: producer.1,
            base_sequence: sequence,
            transactional: true,
            ..BatchBuilderOptions::default()
        },
    )
    .expect("encode")
}

fn txn_produce(
    conn: &mut Conn,
    id: &str,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> (i16, i64) {
    let request =
        produce_request(topic, partition, records, -1).with_transactional_id(Some(txn_id(id)));
    let response: ProduceResponse = conn.call(ApiKey::Produce, 9, &request);
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// read_committed Fetch v11: (error, high watermark, last stable offset, aborted
/// transactions as (producer id, first offset), record values after control batches and
/// aborted data are dropped the way a client drops them).
fn fetch_committed(
    conn: &mut Conn,
    topic: &str,
    partition: i32,
) -> (i16, i64, i64, Vec<(i64, i64)>, Vec<String>) {
    let request = fetch_request(topic, partition, 0, 0, 0).with_isolation_level(1);
    let response: FetchResponse = conn.call(ApiKey::Fetch, 11, &request);
    let p = &response.partitions_of(0);
    let aborted: Vec<(i64, i64)> = p
        .aborted_transactions
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    let records = p.records.clone().unwrap_or_default();
    // As clients do: a producer's batches are skipped from the first offset of one of its
    // aborted transactions until its next control batch (the ABORT marker).
    let mut pending: Vec<(i64, i64)> = aborted.clone();
    let mut aborting: Vec<i64> = Vec::new();
    let mut values = Vec::new();
    for batch in strom_protocol::batch::BatchIter::new(&records) {
        let batch = batch.expect("valid batch");
        let producer_id = batch.producer_id();
        if let Some(at) = pending
            .iter()
            .position(|(pid, first)| *pid == producer_id && *first <= batch.base_offset())
        {
            pending.remove(at);
            aborting.push(producer_id);
        }
        if batch.is_control() {
            aborting.retain(|pid| *pid != producer_id);
            continue;
        }
        if batch.is_transactional() && aborting.contains(&producer_id) {
            continue;
        }
        for record in strom_protocol::record::decode_batch(&batch).expect("decode") {
            values.push(String::from_utf8(record.value.unwrap_or_default().to_vec()).unwrap());
        }
    }
    (
        p.error_code,
        p.high_watermark,
        p.last_stable_offset,
        aborted,
        values,
    )
}

trait FirstPartition {
    fn partitions_of(&self, index: usize) -> fetch_response::PartitionData;
}

impl FirstPartition for FetchResponse {
    fn partitions_of(&self, index: usize) -> fetch_response::PartitionData {
        self.responses[0].partitions[index].clone()
    }
}

fn list_committed_latest(conn: &mut Conn, topic: &str, partition: i32) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(1)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(-1)])]);
    let response: ListOffsetsResponse = conn.call(ApiKey::ListOffsets, 7, &request);
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

fn describe(conn: &mut Conn, id: &str) -> describe_transactions_response::TransactionState {
    let response: DescribeTransactionsResponse = conn.call(
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id(id)]),
    );
    response.transaction_states[0].clone()
}

#[test]
fn given_commit_and_abort_when_fetched_read_committed_should_hide_open_and_aborted_data() {
    let broker = TestBroker::start(&[
        "transaction.state.log.num.partitions=3",
        "offsets.topic.num.partitions=3",
    ]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "orders", 1, &[]);
    find_txn_coordinator(&mut conn, "tx-a");
    let (error, producer_id, epoch) = init(&mut conn, "tx-a", 60_000);
    assert_eq!(error, 0);
    let producer = (producer_id, epoch);

    // Non-transactional data first, so offsets are not all zero.
    assert_eq!(
        produce(&mut conn, "orders", 0, batch("plain", 2, now_ms())).0,
        0
    );

    // A write before AddPartitionsToTxn is refused (KIP-890).
    let (code, _) = txn_produce(
        &mut conn,
        "tx-a",
        "orders",
        0,
        txn_batch(producer, 0, &["early"]),
    );
    assert_eq!(code, INVALID_TXN_STATE);

    // Transaction 1: open, then aborted.
    assert_eq!(
        add_partitions(&mut conn, "tx-a", producer, "orders", &[0]),
        vec![0]
    );
    let (code, first_offset) = txn_produce(
        &mut conn,
        "tx-a",
        "orders",
        0,
        txn_batch(producer, 0, &["a1", "a2"]),
    );
    assert_eq!((code, first_offset), (0, 2));
    let (_, high_watermark, lso, _, values) = fetch_committed(&mut conn, "orders", 0);
    assert_eq!(high_watermark, 4);
    assert_eq!(lso, 2, "the open transaction pins the last stable offset");
    assert_eq!(
        values,
        vec!["plain-0", "plain-1"],
        "nothing of the open transaction"
    );
    assert_eq!(list_committed_latest(&mut conn, "orders", 0), 2);
    assert_eq!(
        describe(&mut conn, "tx-a").transaction_state.as_str(),
        "Ongoing"
    );

    assert_eq!(end(&mut conn, "tx-a", producer, false), 0);
    // Transaction 2: committed.
    assert_eq!(
        add_partitions(&mut conn, "tx-a", producer, "orders", &[0]),
        vec![0]
    );
    let (code, _) = txn_produce(
        &mut conn,
        "tx-a",
        "orders",
        0,
        txn_batch(producer, 2, &["c1"]),
    );
    assert_eq!(code, 0);
    assert_eq!(end(&mut conn, "tx-a", producer, true), 0);
    assert_eq!(
        end(&mut conn, "tx-a", producer, true),
        0,
        "a retried commit succeeds"
    );
    assert_eq!(end(&mut conn, "tx-a", producer, false), INVALID_TXN_STATE);

    let (error, high_watermark, lso, aborted, values) = fetch_committed(&mut conn, "orders", 0);
    assert_eq!(error, 0);
    // 2 plain + 2 aborted + abort marker + 1 committed + commit marker.
    assert_eq!(high_watermark, 7);
    assert_eq!(lso, 7);
    assert_eq!(aborted, vec![(producer_id, 2)]);
    assert_eq!(values, vec!["plain-0", "plain-1", "c1"]);
    assert_eq!(list_committed_latest(&mut conn, "orders", 0), 7);
    assert_eq!(
        describe(&mut conn, "tx-a").transaction_state.as_str(),
        "CompleteCommit"
    );

    // read_uncommitted sees the aborted records too (no aborted list).
    let (_, _, all) = fetch(&mut conn, "orders", 0, 0);
    let values: Vec<String> = decode_values(&all).into_iter().map(|(_, v)| v).collect();
    assert!(
        values.contains(&"a1".to_string()) && values.contains(&"c1".to_string()),
        "{values:?}"
    );
}

#[test]
fn given_a_second_instance_when_it_initialises_should_fence_the_zombie_and_abort_its_transaction() {
    let broker = TestBroker::start(&[
        "transaction.state.log.num.partitions=3",
        "offsets.topic.num.partitions=3",
    ]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "payments", 1, &[]);
    find_txn_coordinator(&mut conn, "tx-z");
    let (_, producer_id, zombie_epoch) = init(&mut conn, "tx-z", 60_000);
    let zombie = (producer_id, zombie_epoch);
    assert_eq!(
        add_partitions(&mut conn, "tx-z", zombie, "payments", &[0]),
        vec![0]
    );
    assert_eq!(
        txn_produce(
            &mut conn,
            "tx-z",
            "payments",
            0,
            txn_batch(zombie, 0, &["zombie-1"])
        )
        .0,
        0
    );

    let (error, same_id, new_epoch) = init(&mut conn, "tx-z", 60_000);
    assert_eq!((error, same_id), (0, producer_id));
    assert!(new_epoch > zombie_epoch);
    let fresh = (producer_id, new_epoch);

    // The zombie can neither write nor end.
    let (code, _) = txn_produce(
        &mut conn,
        "tx-z",
        "payments",
        0,
        txn_batch(zombie, 1, &["zombie-2"]),
    );
    assert_eq!(code, INVALID_PRODUCER_EPOCH);
    assert_eq!(end(&mut conn, "tx-z", zombie, true), PRODUCER_FENCED);
    assert_eq!(
        add_partitions(&mut conn, "tx-z", zombie, "payments", &[0]),
        vec![PRODUCER_FENCED]
    );

    // Its open transaction was aborted; the new instance commits its own.
    assert_eq!(
        add_partitions(&mut conn, "tx-z", fresh, "payments", &[0]),
        vec![0]
    );
    assert_eq!(
        txn_produce(
            &mut conn,
            "tx-z",
            "payments",
            0,
            txn_batch(fresh, 0, &["fresh"])
        )
        .0,
        0
    );
    assert_eq!(end(&mut conn, "tx-z", fresh, true), 0);
    let (_, _, _, _, values) = fetch_committed(&mut conn, "payments", 0);
    assert_eq!(values, vec!["fresh"]);
}

#[test]
fn given_bad_transactional_requests_should_answer_kafka_error_codes() {
    let broker = TestBroker::start(&[
        "transaction.state.log.num.partitions=3",
        "offsets.topic.num.partitions=3",
        "transaction.max.timeout.ms=60000",
    ]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "t", 2, &[]);
    find_txn_coordinator(&mut conn, "tx-b");
    assert_eq!(
        init(&mut conn, "tx-b", 60_001).0,
        INVALID_TRANSACTION_TIMEOUT
    );
    assert_eq!(init(&mut conn, "tx-b", 0).0, INVALID_TRANSACTION_TIMEOUT);
    assert_eq!(
        end(&mut conn, "never-initialised", (1, 0), true),
        INVALID_PRODUCER_ID_MAPPING
    );
    let (_, producer_id, epoch) = init(&mut conn, "tx-b", 10_000);
    let producer = (producer_id, epoch);
    assert_eq!(
        end(&mut conn, "tx-b", producer, true),
        INVALID_TXN_STATE,
        "nothing open"
    );
    assert_eq!(
        add_partitions(&mut conn, "tx-b", (producer_id + 1, epoch), "t", &[0]),
        vec![INVALID_PRODUCER_ID_MAPPING]
    );
    // One unknown partition: it fails, the rest is not attempted, nothing is added.
    assert_eq!(
        add_partitions(&mut conn, "tx-b", producer, "t", &[0, 9]),
        vec![OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION]
    );
    assert_eq!(
        describe(&mut conn, "tx-b").transaction_state.as_str(),
        "Empty"
    );
    assert_eq!(
        describe(&mut conn, "nobody").error_code,
        TRANSACTIONAL_ID_NOT_FOUND
    );

    // WriteTxnMarkers to a topic that does not exist.
    let response: WriteTxnMarkersResponse = conn.call(
        ApiKey::WriteTxnMarkers,
        1,
        &WriteTxnMarkersRequest::default().with_markers(vec![
            write_txn_markers_request::WritableTxnMarker::default()
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch)
                .with_topics(vec![
                    write_txn_markers_request::WritableTxnMarkerTopic::default()
                        .with_name(topic_name("missing"))
                        .with_partition_indexes(vec![0]),
                ]),
        ]),
    );
    assert_eq!(
        response.markers[0].topics[0].partitions[0].error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );

    // ListTransactions: an unknown state filter is named back; known ones filter.
    let response: ListTransactionsResponse = conn.call(
        ApiKey::ListTransactions,
        1,
        &ListTransactionsRequest::default()
            .with_state_filters(vec![s("Empty"), s("Bogus")])
            .with_duration_filter(-1),
    );
    assert_eq!(response.error_code, 0);
    assert_eq!(response.unknown_state_filters, vec![s("Bogus")]);
    let listed: Vec<&str> = response
        .transaction_states
        .iter()
        .map(|t| t.transactional_id.as_str())
        .collect();
    assert_eq!(listed, vec!["tx-b"]);

    // A transactional id on a non-transactional batch.
    let request = produce_request("t", 0, batch("x", 1, now_ms()), -1)
        .with_transactional_id(Some(txn_id("tx-b")));
    let response: ProduceResponse = conn.call(ApiKey::Produce, 9, &request);
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        87 /* INVALID_RECORD */
    );
}

#[test]
fn given_an_open_transaction_when_the_broker_is_killed_should_recover_it_and_abort_it_at_its_timeout(
) {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let port = broker_support::ephemeral_port();
    let settings = [
        "transaction.state.log.num.partitions=3",
        "offsets.topic.num.partitions=3",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=200",
    ];
    let mut broker = TestBroker::start_in(&data_dir, port, &settings);
    let mut conn = broker.connect();
    create_topic(&mut conn, "events", 1, &[]);
    find_txn_coordinator(&mut conn, "tx-k");
    let (_, producer_id, epoch) = init(&mut conn, "tx-k", 3_000);
    let producer = (producer_id, epoch);
    assert_eq!(
        add_partitions(&mut conn, "tx-k", producer, "events", &[0]),
        vec![0]
    );
    assert_eq!(
        txn_produce(
            &mut conn,
            "tx-k",
            "events",
            0,
            txn_batch(producer, 0, &["in-flight"])
        )
        .0,
        0
    );
    broker.kill();

    let broker = TestBroker::start_in(&data_dir, port, &settings);
    let mut conn = broker.connect();
    find_txn_coordinator(&mut conn, "tx-k");
    let (_, _, lso, _, _) = fetch_committed(&mut conn, "events", 0);
    let described = describe(&mut conn, "tx-k");
    // The transaction (and the partition's unstable offset) survived the kill, unless the
    // timeout already fired after the restart.
    if described.transaction_state.as_str() == "Ongoing" {
        assert_eq!(lso, 0);
        assert_eq!(described.producer_epoch, epoch);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let described = describe(&mut conn, "tx-k");
        if described.transaction_state.as_str() == "CompleteAbort" {
            assert_eq!(
                described.producer_epoch,
                epoch + 1,
                "the timed-out producer is fenced"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not aborted: {described:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, high_watermark, lso, aborted, values) = fetch_committed(&mut conn, "events", 0);
    assert_eq!((high_watermark, lso), (2, 2));
    assert_eq!(aborted, vec![(producer_id, 0)]);
    assert!(values.is_empty());
    assert_eq!(end(&mut conn, "tx-k", producer, true), PRODUCER_FENCED);
}

fn truncated<T: Encodable>(api_key: ApiKey, version: i16, body: &T, cut_bytes: usize) -> Vec<u8> {
    truncated_frame(api_key, version, body, cut_bytes)
}

#[test]
fn given_truncated_transaction_requests_should_close_only_that_connection() {
    let broker = TestBroker::start(&[
        "transaction.state.log.num.partitions=3",
        "offsets.topic.num.partitions=3",
    ]);
    let mut healthy = broker.connect();
    let frames: Vec<(&str, Vec<u8>)> = vec![
        (
            "AddPartitionsToTxn",
            truncated(
                ApiKey::AddPartitionsToTxn,
                3,
                &AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(txn_id("t"))
                    .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                        .with_name(topic_name("x"))
                        .with_partitions(vec![0, 1])]),
                3,
            ),
        ),
        (
            "AddOffsetsToTxn",
            truncated(
                ApiKey::AddOffsetsToTxn,
                3,
                &AddOffsetsToTxnRequest::default()
                    .with_transactional_id(txn_id("t"))
                    .with_group_id(GroupId(s("g"))),
                2,
            ),
        ),
        (
            "EndTxn",
            truncated(
                ApiKey::EndTxn,
                3,
                &EndTxnRequest::default().with_transactional_id(txn_id("t")),
                2,
            ),
        ),
        (
            "TxnOffsetCommit",
            truncated(
                ApiKey::TxnOffsetCommit,
                3,
                &TxnOffsetCommitRequest::default()
                    .with_transactional_id(txn_id("t"))
                    .with_group_id(GroupId(s("g")))
                    .with_member_id(s("m")),
                3,
            ),
        ),
        (
            "WriteTxnMarkers",
            truncated(
                ApiKey::WriteTxnMarkers,
                1,
                &WriteTxnMarkersRequest::default().with_markers(vec![
                    write_txn_markers_request::WritableTxnMarker::default().with_topics(vec![
                        write_txn_markers_request::WritableTxnMarkerTopic::default()
                            .with_name(topic_name("x"))
                            .with_partition_indexes(vec![0]),
                    ]),
                ]),
                4,
            ),
        ),
        (
            "DescribeTransactions",
            truncated(
                ApiKey::DescribeTransactions,
                0,
                &DescribeTransactionsRequest::default()
                    .with_transactional_ids(vec![txn_id("t"), txn_id("u")]),
                2,
            ),
        ),
        (
            "ListTransactions",
            truncated(
                ApiKey::ListTransactions,
                1,
                &ListTransactionsRequest::default().with_state_filters(vec![s("Ongoing")]),
                5,
            ),
        ),
    ];
    for (name, frame) in frames {
        let mut conn = broker.connect();
        conn.send_raw(&frame).unwrap();
        assert!(conn.is_closed_by_broker(), "{name}: connection left open");
        // Others are unaffected.
        let response: ApiVersionsResponse =
            healthy.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        assert_eq!(response.error_code, 0, "after {name}");
    }
    // An over-long count in DescribeTransactions is refused before any allocation.
    let mut conn = broker.connect();
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::DescribeTransactions as i16)
        .with_request_api_version(0)
        .with_correlation_id(9)
        .encode(&mut frame, 2)
        .unwrap();
    frame.put_u8(0xff);
    frame.put_u8(0xff);
    frame.put_u8(0xff);
    frame.put_u8(0x7f); // compact array length ~2^28, then nothing
    let mut out = BytesMut::new();
    out.put_i32(frame.len() as i32);
    out.extend_from_slice(&frame);
    conn.send_raw(&out).unwrap();
    assert!(conn.is_closed_by_broker());
    assert!(
        broker.log().contains("DescribeTransactions"),
        "the refusal is logged"
    );
}
