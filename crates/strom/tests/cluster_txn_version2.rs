//! Transaction version 2 on a three-node cluster: a transactional Produce v12 to a
//! partition whose leader is not the transaction coordinator adds the partition through
//! AddPartitionsToTxn v5 from that leader to the coordinator; the coordinator's EndTxn v5
//! then writes the marker there with the bumped epoch, and the old epoch is fenced.

mod broker_support;
mod cluster_support;

use std::time::{Duration, Instant};

use broker_support::{fetch, produce_request, topic_name, Conn};
use bytes::Bytes;
use cluster_support::*;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordToEncode};

const INVALID_PRODUCER_EPOCH: i16 = 47;

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

fn produce_v12(conn: &mut Conn, id: &str, topic: &str, partition: i32, records: Bytes) -> i16 {
    let request =
        produce_request(topic, partition, records, -1).with_transactional_id(Some(txn_id(id)));
    let response: ProduceResponse = conn.call(ApiKey::Produce, 12, &request);
    response.responses[0].partition_responses[0].error_code
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

#[test]
fn given_a_partition_led_off_the_coordinator_when_produced_v12_should_join_the_transaction_remotely(
) {
    let cluster = Cluster::start_with(
        &[Role::Combined; 3],
        &[
            "transaction.state.log.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "offsets.topic.num.partitions=1",
        ],
    );
    let id = "tx-remote";
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
    assert_eq!(create_topic(&mut first, "remote", 3, 1, None), 0);
    let metadata = cluster.wait_for(|m| {
        (0..3).all(|p| partition_of(m, "remote", p).is_some_and(|p| p.leader_id.0 > 0))
    });
    let (partition, leader) = (0..3)
        .map(|p| (p, partition_of(&metadata, "remote", p).unwrap().leader_id.0))
        .find(|(_, leader)| *leader != coordinator)
        .expect("three partitions on three nodes: one is led elsewhere");

    let mut at_coordinator = cluster.node(coordinator).connect();
    let init: InitProducerIdResponse = at_coordinator.call(
        ApiKey::InitProducerId,
        5,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(txn_id(id)))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(init.error_code, 0);
    let producer = (init.producer_id.0, init.producer_epoch);

    let mut at_leader = cluster.node(leader).connect();
    assert_eq!(
        produce_v12(
            &mut at_leader,
            id,
            "remote",
            partition,
            txn_batch(producer, 0, "r1")
        ),
        0,
        "the leader added the partition at the coordinator\n{}",
        cluster.logs()
    );
    let end: EndTxnResponse = at_coordinator.call(
        ApiKey::EndTxn,
        5,
        &EndTxnRequest::default()
            .with_transactional_id(txn_id(id))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_committed(true),
    );
    assert_eq!(
        (end.error_code, end.producer_id.0, end.producer_epoch),
        (0, producer.0, producer.1 + 1)
    );
    assert_eq!(
        last_stable_offset(&mut at_leader, "remote", partition),
        2,
        "record + commit marker written at the remote leader"
    );
    let (_, _, records) = fetch(&mut at_leader, "remote", partition, 0);
    let epochs: Vec<(bool, i16)> = strom_protocol::batch::BatchIter::new(&records)
        .map(|b| {
            let b = b.expect("batch");
            (b.is_control(), b.producer_epoch())
        })
        .collect();
    assert_eq!(epochs, vec![(false, producer.1), (true, producer.1 + 1)]);
    assert_eq!(
        produce_v12(
            &mut at_leader,
            id,
            "remote",
            partition,
            txn_batch(producer, 1, "zombie")
        ),
        INVALID_PRODUCER_EPOCH,
        "the old epoch is fenced"
    );
}
