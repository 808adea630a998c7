//! Node roles on real processes: a cluster of three controller-only nodes and two
//! broker-only nodes that keeps serving while each controller in turn is killed (so the
//! active one is among them), and a broker-only node added to a running three-node
//! cluster that takes a partition by reassignment, leads it, and rejoins after kill -9.
//! DescribeQuorum (and `strom cluster quorum`) on both and on a single node, with
//! malformed frames.

mod broker_support;
mod cli_support;
mod cluster_support;

use std::time::{Duration, Instant};

use cluster_support::*;

use broker_support::{batch, produce_request, topic_name, truncated_frame, Conn, TestBroker};
use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

fn describe_quorum_request(topic: &str, partition: i32) -> DescribeQuorumRequest {
    DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(topic_name(topic))
        .with_partitions(vec![
            PartitionData::default().with_partition_index(partition)
        ])])
}

/// DescribeQuorum v2 of `__cluster_metadata-0` through `conn`, retried while the quorum
/// has no leader; its one partition.
fn describe_quorum(conn: &mut Conn) -> describe_quorum_response::PartitionData {
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    loop {
        let response: DescribeQuorumResponse = conn.call(
            ApiKey::DescribeQuorum,
            2,
            &describe_quorum_request("__cluster_metadata", 0),
        );
        assert_eq!(response.error_code, 0, "{response:?}");
        let partition = response.topics[0].partitions[0].clone();
        if partition.error_code == 0 || Instant::now() >= deadline {
            assert_eq!(partition.error_code, 0, "{partition:?}");
            return partition;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn replica_ids(replicas: &[describe_quorum_response::ReplicaState]) -> Vec<i32> {
    replicas.iter().map(|r| r.replica_id.0).collect()
}

fn ids(brokers: &[BrokerId]) -> Vec<i32> {
    brokers.iter().map(|b| b.0).collect()
}

fn sorted(mut ids: Vec<i32>) -> Vec<i32> {
    ids.sort_unstable();
    ids
}

/// Produces `count` records with acks=all to `conn`; the error code.
fn produce(conn: &mut Conn, topic: &str, partition: i32, prefix: &str, count: usize) -> i16 {
    let response: ProduceResponse = conn.call(
        ApiKey::Produce,
        9,
        &produce_request(topic, partition, batch(prefix, count, now_ms()), -1),
    );
    response.responses[0].partition_responses[0].error_code
}

/// Produces to the partition's current leader, retrying (new leader, ISR settling) until
/// the write is acknowledged; returns the values written.
fn produce_acked(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    prefix: &str,
    count: usize,
) -> Vec<String> {
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    loop {
        let metadata = cluster
            .wait_for(|m| partition_of(m, topic, partition).is_some_and(|p| p.leader_id.0 >= 0));
        let leader = partition_of(&metadata, topic, partition)
            .unwrap()
            .leader_id
            .0;
        if cluster.running_brokers().contains(&leader) {
            let code = produce(
                &mut cluster.node(leader).connect(),
                topic,
                partition,
                prefix,
                count,
            );
            if code == 0 {
                return (0..count).map(|i| format!("{prefix}-{i}")).collect();
            }
            println!("produce {prefix} to {leader}: error {code}; retrying");
        }
        assert!(
            Instant::now() < deadline,
            "no acknowledged write of {prefix}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads the partition from its leader until every value of `expected` is below the high
/// watermark (a new leader learns it from its followers' next fetches); asserts equality.
fn assert_readable(cluster: &Cluster, topic: &str, partition: i32, expected: &[String]) {
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    loop {
        let metadata = cluster
            .wait_for(|m| partition_of(m, topic, partition).is_some_and(|p| p.leader_id.0 >= 0));
        let leader = partition_of(&metadata, topic, partition)
            .unwrap()
            .leader_id
            .0;
        let read = read_all(&mut cluster.node(leader).connect(), topic, partition);
        if read.len() >= expected.len() || Instant::now() >= deadline {
            assert_eq!(
                read, expected,
                "{topic}-{partition} read from broker {leader}"
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn given_dedicated_controllers_and_broker_only_nodes_when_each_controller_is_killed_should_keep_serving(
) {
    let mut cluster = Cluster::start_with(
        &[
            Role::Controller,
            Role::Controller,
            Role::Controller,
            Role::Broker,
            Role::Broker,
        ],
        &[],
    );
    let topic = "dedicated";

    // Only the brokers are listed; the controller id clients see is a broker (it
    // forwards), never a node they cannot reach.
    let metadata = cluster.wait_for_on(&[4], |m| live_brokers(m).len() == 2);
    assert_eq!(live_brokers(&metadata), [4, 5].into_iter().collect());
    assert!([4, 5].contains(&metadata.controller_id.0), "{metadata:?}");

    assert_eq!(
        create_topic(&mut cluster.node(5).connect(), topic, 2, 2, None),
        0
    );
    let created = cluster.wait_for_on(&[4, 5], |m| {
        (0..2).all(|p| partition_of(m, topic, p).is_some_and(|p| p.isr_nodes.len() == 2))
    });
    for partition in 0..2 {
        let state = partition_of(&created, topic, partition).unwrap();
        assert_eq!(sorted(ids(&state.replica_nodes)), vec![4, 5]);
    }
    let mut expected = vec![Vec::new(), Vec::new()];
    for partition in 0..2 {
        expected[partition as usize].extend(produce_acked(&cluster, topic, partition, "start", 20));
    }

    // DescribeQuorum through a broker: three voters, the two brokers observe.
    let quorum = describe_quorum(&mut cluster.node(4).connect());
    assert_eq!(replica_ids(&quorum.current_voters), vec![1, 2, 3]);
    assert_eq!(replica_ids(&quorum.observers), vec![4, 5]);
    assert!((1..=3).contains(&quorum.leader_id.0), "{quorum:?}");
    assert!(quorum.high_watermark > 0);
    let listed = cli_support::run_strom_json(&cluster.address(5), &["cluster", "quorum", "--json"]);
    assert_eq!(listed["leader_id"], quorum.leader_id.0, "{listed}");
    assert_eq!(listed["voters"].as_array().unwrap().len(), 3, "{listed}");
    assert_eq!(listed["observers"][1]["id"], 5, "{listed}");
    let first_leader = quorum.leader_id.0;

    // Each controller in turn: killed, the cluster goes on (a new active controller when
    // it was the one), then it returns. Writes and metadata changes work throughout.
    for controller in 1..=3 {
        cluster.kill(controller);
        for partition in 0..2 {
            let prefix = format!("without-{controller}");
            expected[partition as usize]
                .extend(produce_acked(&cluster, topic, partition, &prefix, 10));
        }
        let extra = format!("made-without-{controller}");
        let deadline = Instant::now() + CHANGE_TIMEOUT;
        let mut code = create_topic(&mut cluster.node(4).connect(), &extra, 1, 2, None);
        // A request that lands during the election times out; Kafka clients retry it.
        while code != 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(300));
            code = create_topic(&mut cluster.node(4).connect(), &extra, 1, 2, None);
            if code == 36 {
                code = 0; // TOPIC_ALREADY_EXISTS: the earlier attempt went through
            }
        }
        assert_eq!(code, 0, "create {extra}\n{}", cluster.logs());
        cluster.wait_for_on(&[5], |m| partition_of(m, &extra, 0).is_some());
        if controller == first_leader {
            let after = describe_quorum(&mut cluster.node(5).connect());
            assert_ne!(after.leader_id.0, first_leader, "{after:?}");
            assert!(after.leader_epoch > quorum.leader_epoch, "{after:?}");
        }
        cluster.restart(controller);
    }
    // No broker was fenced by the controller changes: both stayed in every ISR.
    let settled = cluster.wait_for_on(&[4, 5], |m| {
        (0..2).all(|p| partition_of(m, topic, p).is_some_and(|p| p.isr_nodes.len() == 2))
    });
    assert_eq!(live_brokers(&settled), [4, 5].into_iter().collect());
    for partition in 0..2 {
        assert_readable(&cluster, topic, partition, &expected[partition as usize]);
    }
    // Controllers hold metadata only: no partition directory was ever made on them.
    for controller in 1..=3 {
        let dirs: Vec<String> = std::fs::read_dir(cluster.data_dir(controller))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
            .filter(|name| name.starts_with(topic) || name.starts_with("__"))
            .filter(|name| name != "__cluster_metadata-0")
            .collect();
        assert!(dirs.is_empty(), "controller {controller} has {dirs:?}");
    }

    // A clean stop of a broker-only node moves its leaderships away first.
    cluster.stop(5);
    let moved = cluster.wait_for_on(&[4], |m| {
        (0..2).all(|p| partition_of(m, topic, p).is_some_and(|p| p.leader_id.0 == 4))
    });
    assert!(!live_brokers(&moved).contains(&5));
}

#[test]
fn given_running_cluster_when_a_broker_only_node_is_added_should_take_a_reassigned_partition_and_rejoin_after_kill(
) {
    // Automatic leader rebalancing every 2 s gives the preferred replica its leadership
    // back after the restart at the end.
    let mut cluster = Cluster::start_with(
        &[Role::Combined; 3],
        &["leader.imbalance.check.interval.seconds=2"],
    );
    let topic = "growing";
    assert_eq!(
        create_topic(&mut cluster.node(1).connect(), topic, 1, 2, Some(&[1, 2])),
        0
    );
    cluster.wait_for_on(&[1], |m| {
        partition_of(m, topic, 0).is_some_and(|p| p.leader_id.0 == 1 && p.isr_nodes.len() == 2)
    });
    let mut expected = produce_acked(&cluster, topic, 0, "before", 50);

    // Node 4 joins: it learns the metadata log as an observer and registers.
    cluster.add_broker(4);
    let joined = cluster.wait_for_on(&[1, 2, 3, 4], |m| live_brokers(m).len() == 4);
    assert!(live_brokers(&joined).contains(&4));
    cluster.wait_for_on(&[4], |m| {
        live_brokers(m).len() == 4 && partition_of(m, topic, 0).is_some()
    });
    assert!(
        cluster
            .node(4)
            .log()
            .contains("joined the controller quorum as an observer"),
        "{}",
        cluster.node(4).log()
    );

    // Move the partition from [1, 2] to [4, 2], through the new node (it forwards).
    let mut conn = cluster.node(4).connect();
    let moved: AlterPartitionReassignmentsResponse = conn.call(
        ApiKey::AlterPartitionReassignments,
        0,
        &AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![ReassignableTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![ReassignablePartition::default()
                    .with_partition_index(0)
                    .with_replicas(Some(vec![BrokerId(4), BrokerId(2)]))])]),
    );
    assert_eq!(moved.error_code, 0, "{moved:?}");
    assert_eq!(moved.responses[0].partitions[0].error_code, 0, "{moved:?}");
    let done = cluster.wait_for_on(&[4], |m| {
        partition_of(m, topic, 0).is_some_and(|p| {
            ids(&p.replica_nodes) == vec![4, 2] && sorted(ids(&p.isr_nodes)) == vec![2, 4]
        })
    });
    let state = partition_of(&done, topic, 0).unwrap();
    assert_ne!(state.leader_id.0, 1, "{state:?}");
    // The preferred replica (4) leads once asked.
    let elected: ElectLeadersResponse = conn.call(
        ApiKey::ElectLeaders,
        1,
        &ElectLeadersRequest::default()
            .with_election_type(0)
            .with_timeout_ms(10_000)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![0])])),
    );
    let code = elected.replica_election_results[0].partition_result[0].error_code;
    assert!(code == 0 || code == 84, "ElectLeaders: {elected:?}"); // 84: already leads
    cluster.wait_for_on(&[1, 4], |m| {
        partition_of(m, topic, 0).is_some_and(|p| p.leader_id.0 == 4)
    });
    expected.extend(produce_acked(&cluster, topic, 0, "on-4", 30));
    assert_readable(&cluster, topic, 0, &expected);
    let old_copy = cluster.data_dir(1).join(format!("{topic}-0"));
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    while old_copy.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!old_copy.exists(), "broker 1 kept {old_copy:?}");

    // New topics are placed on the new broker too: RF 4 needs it.
    assert_eq!(
        create_topic(&mut cluster.node(2).connect(), "wide", 1, 4, None),
        0
    );
    let wide = cluster.wait_for_on(&[4], |m| partition_of(m, "wide", 0).is_some());
    assert_eq!(
        sorted(ids(&partition_of(&wide, "wide", 0).unwrap().replica_nodes)),
        vec![1, 2, 3, 4]
    );

    // kill -9 of the new broker: it is fenced, 2 leads; restarted, it rejoins the quorum
    // and the ISR, and nothing acknowledged is lost.
    cluster.kill(4);
    cluster.wait_for_on(&[1, 2, 3], |m| {
        !live_brokers(m).contains(&4)
            && partition_of(m, topic, 0).is_some_and(|p| p.leader_id.0 == 2)
    });
    expected.extend(produce_acked(&cluster, topic, 0, "while-4-away", 10));
    cluster.restart(4);
    cluster.wait_for_on(&[4], |m| {
        live_brokers(m).len() == 4
            && partition_of(m, topic, 0).is_some_and(|p| sorted(ids(&p.isr_nodes)) == vec![2, 4])
    });
    // Back in sync, the preferred replica leads again without being asked.
    cluster.wait_for_on(&[1, 4], |m| {
        partition_of(m, topic, 0).is_some_and(|p| p.leader_id.0 == 4)
    });
    assert_readable(&cluster, topic, 0, &expected);
}

#[test]
fn given_single_node_when_quorum_described_should_name_itself_and_refuse_other_partitions() {
    let broker = TestBroker::start(&["node.id=7"]);
    let mut conn = broker.connect();
    for version in 0..=2 {
        let response: DescribeQuorumResponse = conn.call(
            ApiKey::DescribeQuorum,
            version,
            &describe_quorum_request("__cluster_metadata", 0),
        );
        let partition = &response.topics[0].partitions[0];
        assert_eq!(partition.error_code, 0, "v{version}: {response:?}");
        assert_eq!(partition.leader_id.0, 7);
        assert_eq!(replica_ids(&partition.current_voters), vec![7]);
        assert!(partition.observers.is_empty());
        assert_eq!(
            partition.current_voters[0].log_end_offset,
            partition.high_watermark
        );
        assert!(partition.high_watermark > 0, "the cluster id is in the log");
    }
    for (topic, partition) in [("__cluster_metadata", 1), ("orders", 0)] {
        let response: DescribeQuorumResponse = conn.call(
            ApiKey::DescribeQuorum,
            2,
            &describe_quorum_request(topic, partition),
        );
        assert_eq!(
            response.topics[0].partitions[0].error_code, UNKNOWN_TOPIC_OR_PARTITION,
            "{topic}-{partition}: {response:?}"
        );
    }
    let listed =
        cli_support::run_strom_json(&broker.addr.to_string(), &["cluster", "quorum", "--json"]);
    assert_eq!(listed["leader_id"], 7, "{listed}");
    assert_eq!(listed["voters"][0]["lag"], 0, "{listed}");
    let table = cli_support::run_strom(&["cluster", "quorum"], b"", &broker.addr.to_string());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("Active controller: 7") && text.contains("leader"),
        "{text}"
    );

    // Truncated frames and a huge topic count close only their connection.
    let body = describe_quorum_request("__cluster_metadata", 0);
    for cut_bytes in [1, 3, 6] {
        for version in 0..=2 {
            let mut bad = broker.connect();
            bad.send_raw(&truncated_frame(
                ApiKey::DescribeQuorum,
                version,
                &body,
                cut_bytes,
            ))
            .expect("send");
            assert!(
                bad.is_closed_by_broker(),
                "DescribeQuorum v{version} cut {cut_bytes}: the connection stays open"
            );
        }
    }
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::DescribeQuorum as i16)
        .with_request_api_version(2)
        .with_correlation_id(2)
        .with_client_id(Some(StrBytes::from_static_str("bad")))
        .encode(&mut frame, ApiKey::DescribeQuorum.request_header_version(2))
        .unwrap();
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0x07]); // ~16 million topics
    let mut raw = BytesMut::new();
    raw.put_i32(frame.len() as i32);
    raw.extend_from_slice(&frame);
    let mut bad = broker.connect();
    bad.send_raw(&raw).expect("send");
    assert!(bad.is_closed_by_broker(), "huge count accepted");
    let again: DescribeQuorumResponse = conn.call(
        ApiKey::DescribeQuorum,
        2,
        &describe_quorum_request("__cluster_metadata", 0),
    );
    assert_eq!(again.topics[0].partitions[0].error_code, 0);
}
