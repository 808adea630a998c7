//! Listeners on a cluster, real processes: every broker registers all its listeners, so a
//! client on one listener is told the other brokers' addresses on that same listener
//! (Metadata, DescribeCluster, FindCoordinator, and the KIP-951 leader hints of Produce
//! and Fetch), and replication runs over the listener `inter.broker.listener.name` names,
//! even when it is not the first — also when that listener is SSL with mutual TLS
//! required, or SASL_SSL with SCRAM (a broker with the wrong password stays out of the ISR
//! and says why).

mod broker_support;
mod cli_support;
mod cluster_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use cluster_support::*;

use broker_support::{batch, produce_request, Conn};

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
    create_replicated(&cluster, "replicated");
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

    // KIP-951: a produce (v10+) or fetch (v16+) sent to a broker without the partition
    // names its leader and epoch, and the leader's address on the asking listener.
    assert_eq!(
        create_topic(&mut cluster.node(1).connect(), "single", 1, 1, Some(&[1])),
        0
    );
    let placed =
        cluster.wait_for(|m| partition_of(m, "single", 0).is_some_and(|p| p.leader_id.0 == 1));
    let epoch = partition_of(&placed, "single", 0).unwrap().leader_epoch;
    let topic_id = placed
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "single"))
        .unwrap()
        .topic_id;
    for (mut conn, ports, via) in [
        (cluster.node(2).connect(), &external, "EXTERNAL of node 2"),
        (internal(&cluster, 3), &internal_ports, "INTERNAL of node 3"),
    ] {
        let produced: ProduceResponse = conn.call(
            ApiKey::Produce,
            10,
            &produce_request("single", 0, batch("h", 1, now_ms()), 1),
        );
        let answer = &produced.responses[0].partition_responses[0];
        let produce_hint = (
            answer.error_code,
            (
                answer.current_leader.leader_id.0,
                answer.current_leader.leader_epoch,
            ),
            produced
                .node_endpoints
                .iter()
                .map(|e| (e.node_id.0, e.port))
                .collect::<Vec<_>>(),
        );

        let mut request = broker_support::fetch_request("single", 0, 0, 0, 0);
        request.topics[0].topic_id = topic_id;
        let fetched: FetchResponse = conn.call(ApiKey::Fetch, 16, &request);
        let answer = &fetched.responses[0].partitions[0];
        let fetch_hint = (
            answer.error_code,
            (
                answer.current_leader.leader_id.0,
                answer.current_leader.leader_epoch,
            ),
            fetched
                .node_endpoints
                .iter()
                .map(|e| (e.node_id.0, e.port))
                .collect::<Vec<_>>(),
        );
        // (NOT_LEADER_OR_FOLLOWER, (leader, epoch), [(leader, its port on this listener)])
        for (api, hint) in [("produce", produce_hint), ("fetch", fetch_hint)] {
            assert_eq!(
                hint,
                (6, (1, epoch), vec![(1, ports[&1])]),
                "{api} via {via}"
            );
        }
        // Older versions carry no hints.
        let produced: ProduceResponse = conn.call(
            ApiKey::Produce,
            9,
            &produce_request("single", 0, batch("h", 1, now_ms()), 1),
        );
        assert_eq!(produced.responses[0].partition_responses[0].error_code, 6);
        assert!(produced.node_endpoints.is_empty());
    }
    // The leader itself answers normally, without hints.
    let produced: ProduceResponse = cluster.node(1).connect().call(
        ApiKey::Produce,
        10,
        &produce_request("single", 0, batch("h", 1, now_ms()), 1),
    );
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    assert!(produced.node_endpoints.is_empty());
}

fn create_replicated(cluster: &Cluster, topic: &str) {
    assert_eq!(
        create_topic(&mut cluster.node(1).connect(), topic, 1, 3, None),
        0
    );
}

/// acks=all produce of 20 records to the partition's leader once its ISR has `isr` members;
/// returns the leader.
fn produce_when_isr(cluster: &Cluster, topic: &str, isr: usize) -> i32 {
    let ready = cluster.wait_for(|m| {
        partition_of(m, topic, 0).is_some_and(|p| p.leader_id.0 > 0 && p.isr_nodes.len() == isr)
    });
    let leader = partition_of(&ready, topic, 0).unwrap().leader_id.0;
    let produced: ProduceResponse = cluster.node(leader).connect().call(
        ApiKey::Produce,
        9,
        &produce_request(topic, 0, batch("s", 20, now_ms()), -1),
    );
    let answer = &produced.responses[0].partition_responses[0];
    assert_eq!(answer.error_code, 0, "{answer:?}\n{}", cluster.logs());
    leader
}

#[test]
fn given_ssl_inter_broker_listener_with_mutual_tls_when_replicating_should_present_the_broker_certificate(
) {
    let certs = tempfile::tempdir().unwrap();
    broker_support::gen_dev_certs(certs.path(), &[]);
    let dir = certs.path().to_path_buf();
    let settings: NodeSettings = Box::new(move |_, ports: NodePorts| {
        vec![
            format!(
                "listeners=PLAINTEXT://127.0.0.1:{},INTERNAL://127.0.0.1:{}",
                ports.kafka, ports.extra
            ),
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:SSL".to_string(),
            "inter.broker.listener.name=INTERNAL".to_string(),
            format!("ssl.keystore.location={}", dir.join("broker.pem").display()),
            format!("ssl.truststore.location={}", dir.join("ca.pem").display()),
            "ssl.client.auth=required".to_string(),
        ]
    });
    let cluster = Cluster::start_custom(&[Role::Combined; 3], &[], Some(settings));
    create_replicated(&cluster, "over-tls");
    let leader = produce_when_isr(&cluster, "over-tls", 3);
    assert_eq!(
        read_all(&mut cluster.node(leader).connect(), "over-tls", 0).len(),
        20
    );
    // Metadata on the SSL listener would need TLS; on PLAINTEXT it names PLAINTEXT ports.
    let listed = metadata(&mut cluster.node(2).connect(), None);
    for b in &listed.brokers {
        assert_eq!(b.port, cluster.ports(b.node_id.0).kafka as i32);
    }
}

#[test]
fn given_sasl_ssl_inter_broker_listener_when_one_broker_has_a_wrong_password_should_keep_it_out_of_the_isr(
) {
    let certs = tempfile::tempdir().unwrap();
    broker_support::gen_dev_certs(certs.path(), &[]);
    let dir = certs.path().to_path_buf();
    let settings: NodeSettings = Box::new(move |node_id, ports: NodePorts| {
        let password = if node_id == 3 {
            "wrong"
        } else {
            "broker-secret"
        };
        vec![
            format!(
                "listeners=PLAINTEXT://127.0.0.1:{},INTERNAL://127.0.0.1:{}",
                ports.kafka, ports.extra
            ),
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL".to_string(),
            "inter.broker.listener.name=INTERNAL".to_string(),
            format!("ssl.keystore.location={}", dir.join("broker.pem").display()),
            format!("ssl.truststore.location={}", dir.join("ca.pem").display()),
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256".to_string(),
            "inter.broker.sasl.username=broker".to_string(),
            format!("inter.broker.sasl.password={password}"),
            "min.insync.replicas=2".to_string(),
            "replica.lag.time.max.ms=3000".to_string(),
        ]
    });
    let cluster = Cluster::start_custom(&[Role::Combined; 3], &[], Some(settings));
    // The brokers' SCRAM user, created over PLAINTEXT (it lives in the metadata log).
    let output = cli_support::run_strom(
        &[
            "user",
            "create",
            "broker",
            "--password",
            "broker-secret",
            "--mechanism",
            "SCRAM-SHA-256",
        ],
        b"",
        &cluster.address(1),
    );
    assert!(output.status.success(), "{output:?}");
    // The topic's replicas: the leader is the first of a rotating start; force [1, 2, 3]
    // so broker 3 (wrong password) is a follower.
    assert_eq!(
        create_topic(
            &mut cluster.node(1).connect(),
            "over-sasl",
            1,
            1,
            Some(&[1, 2, 3])
        ),
        0
    );
    // Broker 2 authenticates and joins; 3 is refused: after the lag time it leaves the ISR
    // (created with all three) and acks=all still goes through with two.
    let leader = produce_when_isr(&cluster, "over-sasl", 2);
    assert_eq!(leader, 1);
    let isr = partition_of(
        &metadata(&mut cluster.node(1).connect(), None),
        "over-sasl",
        0,
    )
    .unwrap()
    .isr_nodes
    .iter()
    .map(|b| b.0)
    .collect::<Vec<_>>();
    assert!(!isr.contains(&3), "{isr:?}");
    // The password is never shown.
    let described: DescribeConfigsResponse = cluster.node(1).connect().call(
        ApiKey::DescribeConfigs,
        4,
        &DescribeConfigsRequest::default().with_resources(vec![
            kafka_protocol::messages::describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_static_str("1"))
                .with_configuration_keys(Some(vec![StrBytes::from_static_str(
                    "inter.broker.sasl.password",
                )])),
        ]),
    );
    let entry = &described.results[0].configs[0];
    assert!(entry.is_sensitive && entry.value.is_none(), "{entry:?}");
    let deadline = std::time::Instant::now() + CHANGE_TIMEOUT;
    while !cluster
        .node(3)
        .log()
        .contains("refused this broker's credentials")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        cluster
            .node(3)
            .log()
            .contains("refused this broker's credentials"),
        "{}",
        cluster.node(3).log()
    );
}
