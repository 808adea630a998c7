//! Transaction version 2 (KIP-890 part 2) against the real binary: ApiVersions finalizes
//! `transaction.version` 2, a transactional Produce v12 adds its own partition, EndTxn v5
//! bumps the producer epoch (markers carry it, so the old epoch is fenced), a retried
//! EndTxn learns the bumped epoch, and TxnOffsetCommit v5 adds the offsets partition.

mod broker_support;

use std::time::{Duration, Instant};

use broker_support::*;
use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordToEncode};

const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const PRODUCER_FENCED: i16 = 90;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(s(id))
}

fn start() -> TestBroker {
    TestBroker::start(&[
        "transaction.state.log.num.partitions=3",
        "offsets.topic.num.partitions=3",
    ])
}

/// FindCoordinator (which creates and loads the state topic), then InitProducerId.
fn init(conn: &mut Conn, id: &str) -> (i64, i16) {
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
            break;
        }
        assert!(Instant::now() < deadline, "no transaction coordinator");
        std::thread::sleep(Duration::from_millis(100));
    }
    let response: InitProducerIdResponse = conn.call(
        ApiKey::InitProducerId,
        5,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(txn_id(id)))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(response.error_code, 0);
    (response.producer_id.0, response.producer_epoch)
}

/// EndTxn v5: (error, producer id, producer epoch) of the answer.
fn end_v5(conn: &mut Conn, id: &str, producer: (i64, i16), commit: bool) -> (i16, i64, i16) {
    let response: EndTxnResponse = conn.call(
        ApiKey::EndTxn,
        5,
        &EndTxnRequest::default()
            .with_transactional_id(txn_id(id))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_committed(commit),
    );
    (
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    )
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

fn txn_produce(conn: &mut Conn, version: i16, id: &str, topic: &str, records: Bytes) -> i16 {
    let request = produce_request(topic, 0, records, -1).with_transactional_id(Some(txn_id(id)));
    let response: ProduceResponse = conn.call(ApiKey::Produce, version, &request);
    response.responses[0].partition_responses[0].error_code
}

/// read_committed ListOffsets latest: the last stable offset.
fn last_stable_offset(conn: &mut Conn, topic: &str) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(1)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let response: ListOffsetsResponse = conn.call(ApiKey::ListOffsets, 7, &request);
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

/// Every batch of the log as (producer epoch, is control, values).
fn log_batches(conn: &mut Conn, topic: &str) -> Vec<(i16, bool, Vec<String>)> {
    let (error, _, records) = fetch(conn, topic, 0, 0);
    assert_eq!(error, 0);
    let mut out = Vec::new();
    for batch in strom_protocol::batch::BatchIter::new(&records) {
        let batch = batch.expect("valid batch");
        let values = if batch.is_control() {
            Vec::new()
        } else {
            strom_protocol::record::decode_batch(&batch)
                .expect("decode")
                .into_iter()
                .map(|r| String::from_utf8(r.value.unwrap_or_default().to_vec()).unwrap())
                .collect()
        };
        out.push((batch.producer_epoch(), batch.is_control(), values));
    }
    out
}

#[test]
fn given_api_versions_v3_and_v4_should_finalize_transaction_version_2() {
    let broker = start();
    let mut conn = broker.connect();
    for version in [3, 4] {
        let response: ApiVersionsResponse = conn.call(
            ApiKey::ApiVersions,
            version,
            &ApiVersionsRequest::default()
                .with_client_software_name(s("t"))
                .with_client_software_version(s("1")),
        );
        assert!(response.finalized_features_epoch >= 0, "v{version}");
        let finalized: Vec<(&str, i16, i16)> = response
            .finalized_features
            .iter()
            .map(|f| (f.name.as_str(), f.min_version_level, f.max_version_level))
            .collect();
        assert_eq!(finalized, vec![("transaction.version", 2, 2)], "v{version}");
        let end_txn = response
            .api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::EndTxn as i16)
            .unwrap();
        assert_eq!(end_txn.max_version, 5);
    }
    let response: ApiVersionsResponse =
        conn.call(ApiKey::ApiVersions, 2, &ApiVersionsRequest::default());
    assert!(
        response.finalized_features.is_empty(),
        "no features before v3"
    );
}

#[test]
fn given_tv2_when_producing_v12_without_add_partitions_and_ending_v5_should_bump_the_epoch_each_time(
) {
    let broker = start();
    let mut conn = broker.connect();
    create_topic(&mut conn, "tv2", 1, &[]);
    let (producer_id, first_epoch) = init(&mut conn, "tx");
    let mut producer = (producer_id, first_epoch);

    // Transaction 1: Produce v12 adds the partition itself; committed.
    assert_eq!(
        txn_produce(
            &mut conn,
            12,
            "tx",
            "tv2",
            txn_batch(producer, 0, &["c1", "c2"])
        ),
        0
    );
    assert_eq!(last_stable_offset(&mut conn, "tv2"), 0, "open until ended");
    let (error, id, epoch) = end_v5(&mut conn, "tx", producer, true);
    assert_eq!((error, id, epoch), (0, producer_id, first_epoch + 1));
    assert_eq!(
        last_stable_offset(&mut conn, "tv2"),
        3,
        "2 records + marker"
    );

    // A retried EndTxn (old epoch) succeeds and learns the bumped epoch; nothing is written.
    assert_eq!(
        end_v5(&mut conn, "tx", producer, true),
        (0, producer_id, first_epoch + 1)
    );
    // A zombie write with the old epoch is fenced: no implicit add, no append.
    assert_eq!(
        txn_produce(
            &mut conn,
            12,
            "tx",
            "tv2",
            txn_batch(producer, 2, &["zombie"])
        ),
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        txn_produce(
            &mut conn,
            9,
            "tx",
            "tv2",
            txn_batch(producer, 2, &["zombie"])
        ),
        INVALID_PRODUCER_EPOCH
    );
    producer = (producer_id, epoch);

    // Transaction 2 at the bumped epoch (sequences restart at 0): aborted.
    assert_eq!(
        txn_produce(&mut conn, 12, "tx", "tv2", txn_batch(producer, 0, &["a1"])),
        0
    );
    let (error, _, epoch) = end_v5(&mut conn, "tx", producer, false);
    assert_eq!((error, epoch), (0, first_epoch + 2));
    producer = (producer_id, epoch);

    // Transaction 3: committed.
    assert_eq!(
        txn_produce(&mut conn, 12, "tx", "tv2", txn_batch(producer, 0, &["c3"])),
        0
    );
    assert_eq!(
        end_v5(&mut conn, "tx", producer, true),
        (0, producer_id, first_epoch + 3)
    );

    let batches = log_batches(&mut conn, "tv2");
    let expected: Vec<(i16, bool, Vec<String>)> = vec![
        (first_epoch, false, vec!["c1".into(), "c2".into()]),
        (first_epoch + 1, true, vec![]),
        (first_epoch + 1, false, vec!["a1".into()]),
        (first_epoch + 2, true, vec![]),
        (first_epoch + 2, false, vec!["c3".into()]),
        (first_epoch + 3, true, vec![]),
    ];
    assert_eq!(
        batches, expected,
        "every marker carries the epoch after its transaction's bump; no zombie record"
    );
    assert_eq!(last_stable_offset(&mut conn, "tv2"), 7);
}

#[test]
fn given_tv1_requests_should_keep_the_epoch_and_refuse_writes_not_added() {
    let broker = start();
    let mut conn = broker.connect();
    create_topic(&mut conn, "tv1", 1, &[]);
    let producer = init(&mut conn, "old");
    // Produce v11 does not add partitions: without AddPartitionsToTxn the write is refused.
    assert_eq!(
        txn_produce(&mut conn, 11, "old", "tv1", txn_batch(producer, 0, &["x"])),
        INVALID_TXN_STATE
    );
    assert_eq!(
        txn_produce(&mut conn, 12, "old", "tv1", txn_batch(producer, 0, &["x"])),
        0
    );
    let response: EndTxnResponse = conn.call(
        ApiKey::EndTxn,
        4,
        &EndTxnRequest::default()
            .with_transactional_id(txn_id("old"))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_committed(true),
    );
    assert_eq!(response.error_code, 0);
    // The epoch stayed: the same producer writes again at it.
    assert_eq!(
        txn_produce(&mut conn, 12, "old", "tv1", txn_batch(producer, 1, &["y"])),
        0
    );
}

#[test]
fn given_tv2_when_committing_offsets_v5_without_add_offsets_should_join_the_transaction() {
    let broker = start();
    let mut conn = broker.connect();
    create_topic(&mut conn, "in", 1, &[]);
    let producer = init(&mut conn, "eos");
    let commit = |conn: &mut Conn, version: i16, offset: i64| -> i16 {
        let response: TxnOffsetCommitResponse = conn.call(
            ApiKey::TxnOffsetCommit,
            version,
            &TxnOffsetCommitRequest::default()
                .with_transactional_id(txn_id("eos"))
                .with_group_id(GroupId(s("eos-group")))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_generation_id(-1)
                .with_member_id(s(""))
                .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                    .with_name(topic_name("in"))
                    .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)])]),
        );
        response.topics[0].partitions[0].error_code
    };
    // Find the group coordinator first (it loads the offsets topic).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response: FindCoordinatorResponse = conn.call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default().with_key(s("eos-group")),
        );
        if response.error_code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no group coordinator");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        commit(&mut conn, 4, 5),
        INVALID_TXN_STATE,
        "v4 needs AddOffsetsToTxn first"
    );
    assert_eq!(commit(&mut conn, 5, 5), 0, "v5 adds the offsets partition");
    let (error, _, epoch) = end_v5(&mut conn, "eos", producer, true);
    assert_eq!((error, epoch), (0, producer.1 + 1));
    let response: OffsetFetchResponse = conn.call(
        ApiKey::OffsetFetch,
        7,
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(s("eos-group")))
            .with_require_stable(true)
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(topic_name("in"))
                    .with_partition_indexes(vec![0]),
            ])),
    );
    assert_eq!(
        response.topics[0].partitions[0].committed_offset, 5,
        "the committed transaction's offset is the group's"
    );
}

#[test]
fn given_bad_tv2_requests_should_answer_kafka_error_codes_and_minus_one_ids() {
    let broker = start();
    let mut conn = broker.connect();
    create_topic(&mut conn, "bad", 1, &[]);
    let producer = init(&mut conn, "b");
    assert_eq!(
        end_v5(&mut conn, "nobody", producer, true),
        (INVALID_PRODUCER_ID_MAPPING, -1, -1)
    );
    assert_eq!(
        end_v5(&mut conn, "b", (producer.0, producer.1 + 7), true),
        (PRODUCER_FENCED, -1, -1)
    );
    assert_eq!(
        end_v5(&mut conn, "b", producer, true),
        (INVALID_TXN_STATE, -1, -1),
        "nothing open"
    );
    // A v12 write under another producer id is refused, nothing appended.
    assert_eq!(
        txn_produce(
            &mut conn,
            12,
            "b",
            "bad",
            txn_batch((producer.0 + 1, 0), 0, &["x"])
        ),
        INVALID_PRODUCER_ID_MAPPING
    );
    assert!(log_batches(&mut conn, "bad").is_empty());
}

#[test]
fn given_truncated_tv2_requests_should_close_only_that_connection() {
    let broker = start();
    let mut healthy = broker.connect();
    let frames: Vec<(&str, Vec<u8>)> = vec![
        (
            "EndTxn v5",
            truncated_frame(
                ApiKey::EndTxn,
                5,
                &EndTxnRequest::default().with_transactional_id(txn_id("t")),
                2,
            ),
        ),
        (
            "Produce v12",
            truncated_frame(
                ApiKey::Produce,
                12,
                &produce_request("x", 0, txn_batch((1, 0), 0, &["v"]), -1)
                    .with_transactional_id(Some(txn_id("t"))),
                20,
            ),
        ),
        (
            "TxnOffsetCommit v5",
            truncated_frame(
                ApiKey::TxnOffsetCommit,
                5,
                &TxnOffsetCommitRequest::default()
                    .with_transactional_id(txn_id("t"))
                    .with_group_id(GroupId(s("g")))
                    .with_member_id(s("m")),
                3,
            ),
        ),
        (
            "ApiVersions v4",
            truncated_frame(
                ApiKey::ApiVersions,
                4,
                &ApiVersionsRequest::default()
                    .with_client_software_name(s("t"))
                    .with_client_software_version(s("1")),
                2,
            ),
        ),
    ];
    for (name, frame) in frames {
        let mut conn = broker.connect();
        conn.send_raw(&frame).unwrap();
        assert!(conn.is_closed_by_broker(), "{name}: connection left open");
        let response: ApiVersionsResponse =
            healthy.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        assert_eq!(response.error_code, 0, "after {name}");
    }
}

#[test]
fn given_a_tv2_end_when_the_broker_restarts_should_still_recognise_the_retry_and_fence_the_old_epoch(
) {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let port = broker_support::ephemeral_port();
    let settings = [
        "transaction.state.log.num.partitions=3",
        "offsets.topic.num.partitions=3",
    ];
    let mut broker = TestBroker::start_in(&data_dir, port, &settings);
    let mut conn = broker.connect();
    create_topic(&mut conn, "durable", 1, &[]);
    let producer = init(&mut conn, "tx-r");
    assert_eq!(
        txn_produce(
            &mut conn,
            12,
            "tx-r",
            "durable",
            txn_batch(producer, 0, &["d1"])
        ),
        0
    );
    let (error, _, bumped) = end_v5(&mut conn, "tx-r", producer, true);
    assert_eq!((error, bumped), (0, producer.1 + 1));
    broker.kill();

    let broker = TestBroker::start_in(&data_dir, port, &settings);
    let mut conn = broker.connect();
    // The coordinator reloads __transaction_state (value v1 with the version-2 fields).
    let deadline = Instant::now() + Duration::from_secs(30);
    let retried = loop {
        let answer = end_v5(&mut conn, "tx-r", producer, true);
        if answer.0 != 14 && answer.0 != 15 {
            break answer; // neither COORDINATOR_LOAD_IN_PROGRESS nor COORDINATOR_NOT_AVAILABLE
        }
        assert!(Instant::now() < deadline, "coordinator never loaded");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        retried,
        (0, producer.0, bumped),
        "a retry after the restart learns the bumped epoch"
    );
    assert_eq!(
        txn_produce(
            &mut conn,
            12,
            "tx-r",
            "durable",
            txn_batch(producer, 1, &["zombie"])
        ),
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        txn_produce(
            &mut conn,
            12,
            "tx-r",
            "durable",
            txn_batch((producer.0, bumped), 0, &["d2"])
        ),
        0
    );
    assert_eq!(
        end_v5(&mut conn, "tx-r", (producer.0, bumped), true),
        (0, producer.0, bumped + 1)
    );
    assert_eq!(last_stable_offset(&mut conn, "durable"), 4);
}
