//! `strom txn` against the real binary, with a transaction opened over raw protocol: list and
//! describe show it while open, find-hanging does not call a healthy transaction hanging,
//! abort by producer id ends it on one partition (read_committed moves past it), and the
//! errors an operator sees name the thing and the fix.

mod broker_support;

use std::process::Command;
use std::time::{Duration, Instant};

use broker_support::*;
use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordToEncode};

const TRANSACTIONAL_ID: &str = "orders-app";

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn strom(broker: &TestBroker, args: &[&str]) -> (i32, serde_json::Value, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(args)
        .arg("--bootstrap-server")
        .arg(broker.addr.to_string())
        .output()
        .expect("run strom");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        output.status.code().unwrap_or(-1),
        json,
        stdout,
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// InitProducerId for TRANSACTIONAL_ID once its coordinator is loaded: (producer id, epoch).
fn init_producer(conn: &mut Conn) -> (i64, i16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response: InitProducerIdResponse = conn.call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s(TRANSACTIONAL_ID))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        );
        if response.error_code == 0 {
            return (response.producer_id.0, response.producer_epoch);
        }
        // COORDINATOR_LOAD_IN_PROGRESS / NOT_AVAILABLE / NOT_COORDINATOR while it loads.
        assert!(
            (14..=16).contains(&response.error_code) && Instant::now() < deadline,
            "InitProducerId: error {}",
            response.error_code
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn add_partitions(conn: &mut Conn, producer: (i64, i16), topic: &str, partitions: &[i32]) {
    let response: AddPartitionsToTxnResponse = conn.call(
        ApiKey::AddPartitionsToTxn,
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s(TRANSACTIONAL_ID)))
            .with_v3_and_below_producer_id(ProducerId(producer.0))
            .with_v3_and_below_producer_epoch(producer.1)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(partitions.to_vec())]),
    );
    for p in &response.results_by_topic_v3_and_below[0].results_by_partition {
        assert_eq!(p.partition_error_code, 0, "AddPartitionsToTxn");
    }
}

fn produce_in_transaction(
    conn: &mut Conn,
    producer: (i64, i16),
    topic: &str,
    partition: i32,
    values: &[&str],
) -> i64 {
    let records: Vec<RecordToEncode> = values
        .iter()
        .map(|v| RecordToEncode {
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Vec::new(),
            timestamp_ms: now_ms(),
        })
        .collect();
    let batch = encode_batch(
        &records,
        &BatchBuilderOptions {
            producer_id: producer.0,
            producer_epoch: producer.1,
            base_sequence: 0,
            transactional: true,
            ..BatchBuilderOptions::default()
        },
    )
    .expect("encode");
    let request = produce_request(topic, partition, batch, -1)
        .with_transactional_id(Some(TransactionalId(s(TRANSACTIONAL_ID))));
    let response: ProduceResponse = conn.call(ApiKey::Produce, 9, &request);
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0, "transactional produce");
    p.base_offset
}

/// The read_committed end of a partition (its last stable offset), ListOffsets v2+.
fn last_stable_offset(conn: &mut Conn, topic: &str, partition: i32) -> i64 {
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
    assert_eq!(p.error_code, 0, "ListOffsets");
    p.offset
}

#[test]
fn given_open_transaction_when_operator_inspects_and_aborts_it_should_see_each_step() {
    let broker = TestBroker::start(&["transaction.state.log.num.partitions=3"]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "orders", 2, &[]);
    assert_eq!(
        produce(&mut conn, "orders", 0, batch("plain", 2, now_ms())).0,
        0
    );
    let producer = init_producer(&mut conn);
    add_partitions(&mut conn, producer, "orders", &[0, 1]);
    let start_offset = produce_in_transaction(&mut conn, producer, "orders", 0, &["a", "b"]);
    produce_in_transaction(&mut conn, producer, "orders", 1, &["c"]);
    assert_eq!(start_offset, 2);
    assert_eq!(last_stable_offset(&mut conn, "orders", 0), 2);

    let (code, listed, _, stderr) = strom(&broker, &["txn", "list", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let mine: Vec<_> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter(|t| t["transactional_id"] == TRANSACTIONAL_ID)
        .collect();
    assert_eq!(mine.len(), 1, "{listed}");
    assert_eq!(mine[0]["state"], "Ongoing");
    assert_eq!(mine[0]["producer_id"], producer.0);

    let (code, described, _, stderr) =
        strom(&broker, &["txn", "describe", TRANSACTIONAL_ID, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let description = &described[0];
    assert_eq!(description["state"], "Ongoing");
    assert_eq!(description["producer_epoch"], producer.1);
    assert_eq!(description["transaction_timeout_ms"], 60_000);
    assert_eq!(
        description["partitions"],
        serde_json::json!([{"topic": "orders", "partition": 0}, {"topic": "orders", "partition": 1}])
    );
    let (code, _, table, _) = strom(&broker, &["txn", "describe", TRANSACTIONAL_ID]);
    assert_eq!(code, 0);
    assert!(table.starts_with("TRANSACTIONAL-ID"), "{table}");
    assert!(table.contains("orders-0,orders-1"), "{table}");

    // With no age threshold the open transaction is a candidate; its coordinator still
    // holds both partitions, so it is not hanging.
    let (code, hanging, _, stderr) = strom(
        &broker,
        &[
            "txn",
            "find-hanging",
            "--topic",
            "orders",
            "--max-transaction-timeout-ms",
            "0",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(hanging, serde_json::json!([]));

    let producer_id = producer.0.to_string();
    let (code, aborted, _, stderr) = strom(
        &broker,
        &[
            "txn",
            "abort",
            "--topic",
            "orders",
            "--partition",
            "0",
            "--producer-id",
            &producer_id,
            "--json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(aborted["aborted"], true);
    assert_eq!(aborted["producer_epoch"], producer.1);
    // Partition 0: the data and the ABORT marker are below the last stable offset now.
    assert_eq!(last_stable_offset(&mut conn, "orders", 0), 5);
    assert_eq!(last_stable_offset(&mut conn, "orders", 1), 0);
}

#[test]
fn given_operator_mistakes_when_running_txn_commands_should_name_the_thing_and_the_fix() {
    let broker = TestBroker::start(&["transaction.state.log.num.partitions=3"]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "orders", 1, &[]);

    let (code, _, _, stderr) = strom(&broker, &["txn", "describe", "nobody"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("'nobody' not found") && stderr.contains("strom txn list"),
        "{stderr}"
    );

    let (code, _, _, stderr) = strom(
        &broker,
        &[
            "txn",
            "abort",
            "--topic",
            "ordres",
            "--partition",
            "0",
            "--start-offset",
            "0",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("topic 'ordres' does not exist") && stderr.contains("strom topic list"),
        "{stderr}"
    );

    let (code, _, _, stderr) = strom(&broker, &["txn", "list", "--state", "opened"]);
    assert_eq!(code, 2, "bad usage: {stderr}");
    assert!(stderr.contains("Ongoing"), "{stderr}");

    let (code, _, _, stderr) = strom(
        &broker,
        &[
            "txn",
            "abort",
            "--topic",
            "orders",
            "--partition",
            "0",
            "--producer-id",
            "99",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("producer 99 has no state on orders-0") && stderr.contains("find-hanging"),
        "{stderr}"
    );

    let (code, _, _, stderr) = strom(
        &broker,
        &[
            "txn",
            "abort",
            "--topic",
            "orders",
            "--partition",
            "0",
            "--start-offset",
            "0",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no open transaction starts at offset 0 on orders-0"),
        "{stderr}"
    );

    let (code, _, _, stderr) = strom(
        &broker,
        &["txn", "abort", "--topic", "orders", "--partition", "0"],
    );
    assert_eq!(
        code, 2,
        "one of --producer-id and --start-offset is required: {stderr}"
    );
}
