//! Transaction version 1 on a three-node cluster (KIP-890 part 1): a transactional Produce
//! (v11) to a partition whose leader is not the transaction coordinator is checked with
//! AddPartitionsToTxn v4 `verify_only` from that leader to the coordinator, so a write to a
//! partition the producer never added, or from a fenced epoch, is refused there instead of
//! opening a transaction no marker will end.

mod broker_support;
mod cluster_support;

use std::time::{Duration, Instant};

use broker_support::{list_offset, produce_request, topic_name, Conn};
use bytes::Bytes;
use cluster_support::*;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordToEncode};

const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_string()))
}

fn txn_batch(producer: (i64, i16), sequence: i32, value: &str) -> Bytes {
    encode_batch(
        &[RecordToEncode {
            key: None,
            value: Some(Bytes::from(value.to_string())),
            headers: Vec::new(),
            timestamp_ms: now_ms(),
        }],
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

/// Produce v11: transaction version 1, the producer adds its partitions itself.
fn produce_v11(conn: &mut Conn, id: &str, topic: &str, partition: i32, records: Bytes) -> i16 {
    let request =
        produce_request(topic, partition, records, -1).with_transactional_id(Some(txn_id(id)));
    let response: ProduceResponse = conn.call(ApiKey::Produce, 11, &request);
    response.responses[0].partition_responses[0].error_code
}

/// InitProducerId at the coordinator, retried as a client retries while the coordinator
/// catches up with the metadata (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
/// COORDINATOR_NOT_AVAILABLE).
fn init(conn: &mut Conn, id: &str) -> (i64, i16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let init: InitProducerIdResponse = conn.call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(txn_id(id)))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        );
        if init.error_code == 0 {
            return (init.producer_id.0, init.producer_epoch);
        }
        assert!(
            [14, 15, 16].contains(&init.error_code) && Instant::now() < deadline,
            "InitProducerId: {}",
            init.error_code
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn add_partition(conn: &mut Conn, id: &str, producer: (i64, i16), topic: &str, partition: i32) {
    let response: AddPartitionsToTxnResponse = conn.call(
        ApiKey::AddPartitionsToTxn,
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(txn_id(id))
            .with_v3_and_below_producer_id(ProducerId(producer.0))
            .with_v3_and_below_producer_epoch(producer.1)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![partition])]),
    );
    let codes: Vec<i16> = response.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect();
    assert_eq!(codes, vec![0], "AddPartitionsToTxn");
}

fn end(conn: &mut Conn, id: &str, producer: (i64, i16), commit: bool) -> i16 {
    let response: EndTxnResponse = conn.call(
        ApiKey::EndTxn,
        4,
        &EndTxnRequest::default()
            .with_transactional_id(txn_id(id))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_committed(commit),
    );
    response.error_code
}

fn last_stable_offset(conn: &mut Conn, topic: &str, partition: i32) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(1)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(-1)])]);
    let response: ListOffsetsResponse = conn.call(ApiKey::ListOffsets, 7, &request);
    response.topics[0].partitions[0].offset
}

/// The partition's log end offset as a read_uncommitted consumer sees it (ListOffsets -1).
fn log_end_offset(conn: &mut Conn, topic: &str, partition: i32) -> i64 {
    list_offset(conn, topic, partition, -1).1
}

#[test]
fn given_a_partition_led_off_the_coordinator_when_produced_v11_should_verify_at_the_coordinator() {
    let cluster = Cluster::start_with(
        &[Role::Combined; 3],
        &[
            "transaction.state.log.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "offsets.topic.num.partitions=1",
        ],
    );
    let id = "tx-verify";
    let mut first = cluster.node(1).connect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let coordinator = loop {
        let found: FindCoordinatorResponse = first.call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default()
                .with_key(StrBytes::from_static_str(id))
                .with_key_type(1),
        );
        if found.error_code == 0 {
            break found.node_id.0;
        }
        assert!(
            Instant::now() < deadline,
            "no coordinator\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(create_topic(&mut first, "verified", 3, 1, None), 0);
    let metadata = cluster.wait_for(|m| {
        (0..3).all(|p| partition_of(m, "verified", p).is_some_and(|p| p.leader_id.0 > 0))
    });
    let (partition, leader) = (0..3)
        .map(|p| {
            (
                p,
                partition_of(&metadata, "verified", p).unwrap().leader_id.0,
            )
        })
        .find(|(_, leader)| *leader != coordinator)
        .expect("three partitions on three nodes: one is led elsewhere");
    let mut at_coordinator = cluster.node(coordinator).connect();
    let mut at_leader = cluster.node(leader).connect();
    let producer = init(&mut at_coordinator, id);

    // The partition was never added: the coordinator says so, nothing is written.
    assert_eq!(
        produce_v11(
            &mut at_leader,
            id,
            "verified",
            partition,
            txn_batch(producer, 0, "unadded")
        ),
        INVALID_TXN_STATE,
        "a write to a partition outside the transaction is refused\n{}",
        cluster.logs()
    );
    assert_eq!(log_end_offset(&mut at_leader, "verified", partition), 0);

    // Added: verified remotely and written; the commit marker ends it.
    add_partition(&mut at_coordinator, id, producer, "verified", partition);
    for (sequence, value) in ["a1", "a2"].iter().enumerate() {
        assert_eq!(
            produce_v11(
                &mut at_leader,
                id,
                "verified",
                partition,
                txn_batch(producer, sequence as i32, value)
            ),
            0,
            "an added partition is written\n{}",
            cluster.logs()
        );
    }
    assert_eq!(end(&mut at_coordinator, id, producer, true), 0);
    assert_eq!(
        last_stable_offset(&mut at_leader, "verified", partition),
        3,
        "two records and the commit marker"
    );

    // The next transaction has not added the partition again: refused again.
    assert_eq!(
        produce_v11(
            &mut at_leader,
            id,
            "verified",
            partition,
            txn_batch(producer, 2, "after-end")
        ),
        INVALID_TXN_STATE,
        "the ended transaction no longer covers the partition"
    );

    // A new instance fences the old epoch: the coordinator refuses it.
    let fenced = producer;
    let producer = init(&mut at_coordinator, id);
    assert!(producer.1 > fenced.1);
    add_partition(&mut at_coordinator, id, producer, "verified", partition);
    assert_eq!(
        produce_v11(
            &mut at_leader,
            id,
            "verified",
            partition,
            txn_batch(fenced, 2, "zombie")
        ),
        INVALID_PRODUCER_EPOCH,
        "a fenced epoch is refused"
    );
    assert_eq!(
        produce_v11(
            &mut at_leader,
            id,
            "verified",
            partition,
            txn_batch(producer, 0, "b1")
        ),
        0
    );
    assert_eq!(end(&mut at_coordinator, id, producer, false), 0);
    assert_eq!(log_end_offset(&mut at_leader, "verified", partition), 5);
}
