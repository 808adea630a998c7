//! Listeners on a cluster, real processes: every broker registers all its listeners, so a
//! client on one listener is told the other brokers' addresses on that same listener
//! (Metadata, DescribeCluster, FindCoordinator), and replication runs over the listener
//! `inter.broker.listener.name` names, even when it is not the first.

mod broker_support;
mod cli_support;
mod cluster_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use cluster_support::*;

use broker_support::{batch, produce_request, Conn};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn ports_by_broker(brokers: impl Iterator<Item = (i32, i32)>) -> BTreeMap<i32, i32> {
    brokers.collect()
}

fn internal(cluster: &Cluster, node_id: i32) -> Conn {
    let addr: SocketAddr = format!("127.0.0.1:{}", cluster.ports(node_id).extra)
        .parse()
        .unwrap();
    Conn::plain(addr)
}

#[test]
fn given_two_listeners_per_broker_when_clients_use_either_should_be_told_addresses_on_that_listener(
) {
    // EXTERNAL comes first, so replication over INTERNAL proves the name is honoured.
    let settings: NodeSettings = Box::new(|_, ports: NodePorts| {
        vec![
            format!(
                "listeners=EXTERNAL://127.0.0.1:{},INTERNAL://127.0.0.1:{}",
                ports.kafka, ports.extra
            ),
            "listener.security.protocol.map=EXTERNAL:PLAINTEXT,INTERNAL:PLAINTEXT".to_string(),
            "inter.broker.listener.name=INTERNAL".to_string(),
        ]
    });
    let cluster = Cluster::start_custom(&[Role::Combined; 3], &[], Some(settings));
    let external: BTreeMap<i32, i32> = (1..=3)
        .map(|n| (n, cluster.ports(n).kafka as i32))
        .collect();
    let internal_ports: BTreeMap<i32, i32> = (1..=3)
        .map(|n| (n, cluster.ports(n).extra as i32))
        .collect();

    for node in 1..=3 {
        let on_external = metadata(&mut cluster.node(node).connect(), None);
        assert_eq!(
            ports_by_broker(on_external.brokers.iter().map(|b| (b.node_id.0, b.port))),
            external,
            "Metadata on node {node}'s EXTERNAL listener"
        );
        let on_internal = metadata(&mut internal(&cluster, node), None);
        assert_eq!(
            ports_by_broker(on_internal.brokers.iter().map(|b| (b.node_id.0, b.port))),
            internal_ports,
            "Metadata on node {node}'s INTERNAL listener"
        );
    }
    let described: DescribeClusterResponse = cluster.node(2).connect().call(
        ApiKey::DescribeCluster,
        0,
        &DescribeClusterRequest::default(),
    );
    assert_eq!(
        ports_by_broker(described.brokers.iter().map(|b| (b.broker_id.0, b.port))),
        external
    );

    // Replicated over INTERNAL: RF 3, acks=all needs every follower's fetches.
    let created: CreateTopicsResponse = cluster.node(1).connect().call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default()
            .with_timeout_ms(15_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(broker_support::topic_name("replicated"))
                .with_num_partitions(1)
                .with_replication_factor(3)]),
    );
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let ready = cluster.wait_for(|m| {
        partition_of(m, "replicated", 0)
            .is_some_and(|p| p.leader_id.0 > 0 && p.isr_nodes.len() == 3)
    });
    let leader = partition_of(&ready, "replicated", 0).unwrap().leader_id.0;
    let produced: ProduceResponse = cluster.node(leader).connect().call(
        ApiKey::Produce,
        9,
        &produce_request("replicated", 0, batch("r", 20, now_ms()), -1),
    );
    let answer = &produced.responses[0].partition_responses[0];
    assert_eq!(answer.error_code, 0, "{answer:?}");
    let log = cluster.node(1).log() + &cluster.node(2).log() + &cluster.node(3).log();
    assert!(
        !log.contains("cannot reach the leader"),
        "a follower tried the wrong listener:\n{log}"
    );
    assert_eq!(
        read_all(&mut cluster.node(leader).connect(), "replicated", 0).len(),
        20
    );

    // FindCoordinator answers the coordinator's address on the asking listener.
    for (mut conn, ports) in [
        (cluster.node(3).connect(), &external),
        (internal(&cluster, 3), &internal_ports),
    ] {
        let found: FindCoordinatorResponse = conn.call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default()
                .with_key(StrBytes::from_static_str("some-group"))
                .with_key_type(0),
        );
        let mut tries = 0;
        let mut found = found;
        while found.error_code != 0 && tries < 100 {
            std::thread::sleep(std::time::Duration::from_millis(200));
            found = conn.call(
                ApiKey::FindCoordinator,
                3,
                &FindCoordinatorRequest::default()
                    .with_key(StrBytes::from_static_str("some-group"))
                    .with_key_type(0),
            );
            tries += 1;
        }
        assert_eq!(found.error_code, 0, "{found:?}");
        assert_eq!(Some(&found.port), ports.get(&found.node_id.0), "{found:?}");
    }
}
