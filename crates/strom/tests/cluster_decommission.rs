//! Brokers that leave (issue 19, item 2) on real processes: a broker-only node of a
//! four-node cluster is decommissioned with `strom cluster decommission` while an
//! acks=all idempotent load runs; its replicas move, it is unregistered (Metadata,
//! DescribeCluster and DescribeQuorum no longer list it) and every acknowledged record is
//! readable exactly once at its offset. UnregisterBroker's answers and malformed frames on
//! a single node.

mod broker_support;
mod cli_support;
mod cluster_support;
mod ops_support;

use cluster_support::*;

use broker_support::{topic_name, truncated_frame, TestBroker};
use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use ops_support::{assert_every_ack_readable, Load};

const BROKER_ID_NOT_REGISTERED: i16 = 102;
const INVALID_REQUEST: i16 = 42;

fn unregister(conn: &mut broker_support::Conn, broker_id: i32) -> UnregisterBrokerResponse {
    conn.call(
        ApiKey::UnregisterBroker,
        0,
        &UnregisterBrokerRequest::default().with_broker_id(BrokerId(broker_id)),
    )
}

fn quorum_members(conn: &mut broker_support::Conn) -> (Vec<i32>, Vec<i32>) {
    let response: DescribeQuorumResponse = conn.call(
        ApiKey::DescribeQuorum,
        2,
        &DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(topic_name("__cluster_metadata"))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]),
    );
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0, "{response:?}");
    let ids = |replicas: &[describe_quorum_response::ReplicaState]| {
        let mut ids: Vec<i32> = replicas.iter().map(|r| r.replica_id.0).collect();
        ids.sort_unstable();
        ids
    };
    (ids(&partition.current_voters), ids(&partition.observers))
}

#[test]
fn given_a_loaded_cluster_when_a_broker_only_node_is_decommissioned_should_move_its_replicas_unregister_it_and_lose_nothing(
) {
    let mut cluster = Cluster::start_with(&[Role::Combined; 3], &[]);
    cluster.add_broker(4);
    cluster.wait_for_on(&[1, 2, 3, 4], |m| live_brokers(m).len() == 4);
    let (_, observers) = quorum_members(&mut cluster.node(1).connect());
    assert_eq!(observers, vec![4]);
    // RF 3 over four brokers: broker 4 holds a replica of three partitions in four.
    let topic = "orders";
    assert_eq!(
        create_topic(&mut cluster.node(1).connect(), topic, 4, 3, None),
        0
    );
    let placed = cluster.wait_for_on(&[1, 2, 3, 4], |m| {
        (0..4).all(|p| partition_of(m, topic, p).is_some_and(|p| p.isr_nodes.len() == 3))
    });
    let on_4 = (0..4)
        .filter(|p| {
            partition_of(&placed, topic, *p)
                .unwrap()
                .replica_nodes
                .contains(&BrokerId(4))
        })
        .count();
    assert!(on_4 > 0, "broker 4 got no replica: {placed:?}");

    let bootstrap = [1, 2, 3].map(|id| cluster.address(id)).join(",");
    let load = Load::start(&bootstrap, topic, 4);
    load.wait_for_more(200, CHANGE_TIMEOUT);

    let output = cli_support::run_strom(
        &["cluster", "decommission", "4", "--timeout-secs", "90"],
        b"",
        &cluster.address(1),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "decommission failed: {}\n{stdout}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        cluster.logs()
    );
    assert!(
        stdout.contains(&format!("moved {on_4} of {on_4} partition(s)")),
        "{stdout}"
    );
    assert!(stdout.contains("unregistered"), "{stdout}");

    load.wait_for_more(200, CHANGE_TIMEOUT);
    let report = load.stop();
    println!(
        "decommission under load: {} acknowledged, {} failed, longest gap between \
         acknowledgements {:?} over {:?}",
        report.acked.len(),
        report.failed,
        report.longest_gap,
        report.ran_for
    );

    // Gone from Metadata (on every remaining node), DescribeCluster and DescribeQuorum.
    let after = cluster.wait_for_on(&[1, 2, 3], |m| {
        live_brokers(m) == [1, 2, 3].into()
            && (0..4).all(|p| {
                partition_of(m, topic, p).is_some_and(|p| {
                    !p.replica_nodes.contains(&BrokerId(4)) && p.replica_nodes.len() == 3
                })
            })
    });
    assert_eq!(live_brokers(&after), [1, 2, 3].into());
    let described: DescribeClusterResponse = cluster.node(2).connect().call(
        ApiKey::DescribeCluster,
        0,
        &DescribeClusterRequest::default(),
    );
    let mut listed: Vec<i32> = described.brokers.iter().map(|b| b.broker_id.0).collect();
    listed.sort_unstable();
    assert_eq!(listed, vec![1, 2, 3]);
    let (voters, observers) = quorum_members(&mut cluster.node(3).connect());
    assert_eq!(voters, vec![1, 2, 3]);
    assert!(observers.is_empty(), "observers: {observers:?}");
    // Unregistering it again: BROKER_ID_NOT_REGISTERED.
    let again = unregister(&mut cluster.node(1).connect(), 4);
    assert_eq!(again.error_code, BROKER_ID_NOT_REGISTERED, "{again:?}");

    assert!(!report.acked.is_empty());
    assert_every_ack_readable(&cluster, topic, &report);
    cluster.stop(4);
}

#[test]
fn given_a_single_node_when_unregister_broker_is_sent_should_answer_kafkas_codes_and_close_malformed_frames(
) {
    let broker = TestBroker::start(&[]);
    let mut healthy = broker.connect();
    // Advertised in ApiVersions, v0 only.
    let versions: ApiVersionsResponse =
        healthy.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let advertised = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::UnregisterBroker as i16)
        .expect("UnregisterBroker advertised");
    assert_eq!((advertised.min_version, advertised.max_version), (0, 0));

    let unknown = unregister(&mut healthy, 7);
    assert_eq!(unknown.error_code, BROKER_ID_NOT_REGISTERED, "{unknown:?}");
    assert!(unknown.error_message.is_some());
    let itself = unregister(&mut healthy, 1);
    assert_eq!(itself.error_code, INVALID_REQUEST, "{itself:?}");

    let body = UnregisterBrokerRequest::default().with_broker_id(BrokerId(7));
    for cut_bytes in [1, 2, 4] {
        let mut conn = broker.connect();
        conn.send_raw(&truncated_frame(
            ApiKey::UnregisterBroker,
            0,
            &body,
            cut_bytes,
        ))
        .expect("send");
        assert!(
            conn.is_closed_by_broker(),
            "cut {cut_bytes}: the connection stays open"
        );
    }
    // A tagged-field count far beyond the bytes that follow closes the connection.
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::UnregisterBroker as i16)
        .with_request_api_version(0)
        .with_correlation_id(9)
        .with_client_id(Some(StrBytes::from_static_str("bad")))
        .encode(
            &mut frame,
            ApiKey::UnregisterBroker.request_header_version(0),
        )
        .unwrap();
    frame.put_i32(7); // broker_id
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0x0f]); // a tag count far beyond the frame
    let mut raw = BytesMut::new();
    raw.put_i32(frame.len() as i32);
    raw.extend_from_slice(&frame);
    let mut conn = broker.connect();
    conn.send_raw(&raw).expect("send");
    assert!(conn.is_closed_by_broker(), "huge tag count accepted");

    // The broker still answers on the healthy connection.
    let still = unregister(&mut healthy, 8);
    assert_eq!(still.error_code, BROKER_ID_NOT_REGISTERED);
}
