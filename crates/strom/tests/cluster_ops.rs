//! Cluster operations on real processes: ElectLeaders, Metadata and DescribeCluster on a
//! three-node cluster (each node a broker and a Raft controller voter) through a kill -9
//! and a restart of a partition's preferred leader, `strom cluster status` and
//! `strom cluster elect-leaders` against it, and ElectLeaders on a single-node broker.

mod broker_support;
mod cli_support;
mod cluster_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cluster_support::*;

use broker_support::{batch, decode_values, fetch, produce_request, topic_name, Conn, TestBroker};
use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

const ELECTION_NOT_NEEDED: i16 = 84;
const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REQUEST: i16 = 42;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn ids(brokers: &[BrokerId]) -> Vec<i32> {
    brokers.iter().map(|b| b.0).collect()
}

fn sorted(mut ids: Vec<i32>) -> Vec<i32> {
    ids.sort_unstable();
    ids
}

fn elect(
    conn: &mut Conn,
    version: i16,
    election_type: i8,
    partitions: Option<&[(&str, &[i32])]>,
) -> ElectLeadersResponse {
    let mut request = ElectLeadersRequest::default()
        .with_timeout_ms(10_000)
        .with_topic_partitions(partitions.map(|wanted| {
            wanted
                .iter()
                .map(|(topic, partitions)| {
                    TopicPartitions::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(partitions.to_vec())
                })
                .collect()
        }));
    if version >= 1 {
        request.election_type = election_type;
    }
    conn.call(ApiKey::ElectLeaders, version, &request)
}

/// Every (topic, partition, code) of an answer.
fn codes(response: &ElectLeadersResponse) -> Vec<(String, i32, i16)> {
    response
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result
                .iter()
                .map(|p| (t.topic.0.to_string(), p.partition_id, p.error_code))
        })
        .collect()
}

fn strom(address: &str, args: &[&str]) -> std::process::Output {
    cli_support::run_strom(args, b"", address)
}

#[test]
fn given_a_three_node_cluster_when_the_preferred_leader_dies_and_returns_should_elect_it_back_on_request(
) {
    let mut cluster = Cluster::start();
    let topic = "elect";

    // Metadata on a healthy cluster: every broker listed, and all nodes agree on the
    // active controller, which is one of them.
    // (Each node's image catches up on its own: wait until each lists every broker.)
    for n in 1..=NODES {
        cluster.wait_for_on(&[n], |m| {
            live_brokers(m).len() == NODES as usize && m.controller_id.0 >= 1
        });
    }
    let controllers: BTreeSet<i32> = (1..=NODES)
        .map(|n| {
            let described: DescribeClusterResponse = cluster.node(n).connect().call(
                ApiKey::DescribeCluster,
                2,
                &DescribeClusterRequest::default()
                    .with_endpoint_type(1)
                    .with_include_fenced_brokers(true),
            );
            assert_eq!(described.error_code, 0);
            assert_eq!(described.brokers.len(), NODES as usize);
            assert!(described.brokers.iter().all(|b| !b.is_fenced));
            let listed = metadata(&mut cluster.node(n).connect(), Some(&[]));
            assert_eq!(live_brokers(&listed), (1..=NODES).collect());
            assert_eq!(listed.controller_id, described.controller_id);
            described.controller_id.0
        })
        .collect();
    assert_eq!(controllers.len(), 1, "nodes disagree on the controller");
    let controller = *controllers.iter().next().unwrap();
    assert!((1..=NODES).contains(&controller), "controller {controller}");

    let created: CreateTopicsResponse = cluster.node(1).connect().call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(topic))
                .with_num_partitions(1)
                .with_replication_factor(3)]),
    );
    assert_eq!(
        created.topics[0].error_code, 0,
        "{:?}",
        created.topics[0].error_message
    );
    let healthy = cluster.wait_for(|m| {
        partition_of(m, topic, 0).is_some_and(|p| p.leader_id.0 >= 0 && p.isr_nodes.len() == 3)
    });
    let before = partition_of(&healthy, topic, 0).unwrap().clone();
    let preferred = before.replica_nodes[0].0;
    assert_eq!(
        before.leader_id.0, preferred,
        "a new partition is led by its first replica"
    );
    assert_eq!(sorted(ids(&before.replica_nodes)), vec![1, 2, 3]);
    assert!(before.offline_replicas.is_empty());
    assert_eq!(before.error_code, 0);

    // Records acknowledged by all three replicas.
    let mut leader_conn = cluster.node(preferred).connect();
    let produced: ProduceResponse = leader_conn.call(
        ApiKey::Produce,
        9,
        &produce_request(topic, 0, batch("before", 5, now_ms()), -1),
    );
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    drop(leader_conn);

    // kill -9 the preferred leader: after the session timeout it is fenced, another ISR
    // member leads, and Metadata says which replica is offline.
    cluster.kill(preferred);
    let failed_over = cluster.wait_for(|m| {
        !live_brokers(m).contains(&preferred)
            && partition_of(m, topic, 0)
                .is_some_and(|p| p.leader_id.0 >= 0 && p.leader_id.0 != preferred)
    });
    let during = partition_of(&failed_over, topic, 0).unwrap().clone();
    assert_eq!(ids(&during.offline_replicas), vec![preferred]);
    assert!(!ids(&during.isr_nodes).contains(&preferred));
    assert!(during.leader_epoch > before.leader_epoch);
    assert_eq!(ids(&during.replica_nodes), ids(&before.replica_nodes));
    if controller == preferred {
        assert_ne!(
            failed_over.controller_id.0, preferred,
            "a dead node is not the controller"
        );
    }
    let new_leader = during.leader_id.0;
    let survivor = cluster.address(new_leader);

    // While it is away it cannot be elected, and the CLI says so with exit code 1.
    let mut conn = cluster.node(new_leader).connect();
    let refused = elect(&mut conn, 2, 0, Some(&[(topic, &[0])]));
    assert_eq!(
        codes(&refused),
        vec![(topic.to_string(), 0, PREFERRED_LEADER_NOT_AVAILABLE)]
    );
    let output = strom(&survivor, &["cluster", "elect-leaders", "--topic", topic]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("elect-0"), "{stderr}");
    assert!(
        stderr.contains("PREFERRED_LEADER_NOT_AVAILABLE"),
        "{stderr}"
    );
    let status = cli_support::run_strom_json(&survivor, &["cluster", "status", "--json"]);
    assert_eq!(status["counts"]["under_replicated"], 1, "{status}");
    assert_eq!(status["counts"]["offline"], 0, "{status}");
    assert_eq!(status["counts"]["fenced_brokers"], 1, "{status}");
    let fenced: Vec<i64> = status["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["fenced"] == true)
        .map(|b| b["id"].as_i64().unwrap())
        .collect();
    assert_eq!(fenced, vec![preferred as i64], "{status}");
    assert_eq!(status["under_replicated"][0]["topic"], topic, "{status}");
    assert_eq!(
        status["under_replicated"][0]["offline_replicas"],
        serde_json::json!([preferred]),
        "{status}"
    );

    // Restarted, it catches up and rejoins the ISR, but leadership stays where it went:
    // there is no automatic rebalancing.
    // (Asked of the nodes that stayed up: the restarted one answers from its pre-crash
    // image until it has caught up with the metadata log.)
    cluster.restart(preferred);
    let stayed_up: Vec<i32> = (1..=NODES).filter(|n| *n != preferred).collect();
    let rejoined = cluster.wait_for_on(&stayed_up, |m| {
        live_brokers(m).len() == NODES as usize
            && partition_of(m, topic, 0).is_some_and(|p| p.isr_nodes.len() == 3)
    });
    let caught_up = partition_of(&rejoined, topic, 0).unwrap().clone();
    assert_eq!(caught_up.leader_id.0, new_leader, "{}", cluster.logs());
    assert!(caught_up.offline_replicas.is_empty());

    // A preferred election moves it back; the answering node's Metadata already shows it.
    let mut conn = cluster.node(new_leader).connect();
    let elected = elect(&mut conn, 2, 0, Some(&[(topic, &[0])]));
    assert_eq!(elected.error_code, 0);
    assert_eq!(codes(&elected), vec![(topic.to_string(), 0, 0)]);
    let after_metadata = metadata(&mut conn, Some(&[topic]));
    let after = partition_of(&after_metadata, topic, 0).unwrap();
    assert_eq!(after.leader_id.0, preferred);
    assert!(after.leader_epoch > caught_up.leader_epoch);
    assert_eq!(ids(&after.replica_nodes), ids(&before.replica_nodes));
    cluster.wait_for(|m| {
        partition_of(m, topic, 0).is_some_and(|p| p.leader_id.0 == preferred)
            && m.controller_id.0 >= 0
    });

    // Now nothing is needed: a named partition says so, "all partitions" leaves it out.
    let again = elect(&mut conn, 2, 0, Some(&[(topic, &[0])]));
    assert_eq!(
        codes(&again),
        vec![(topic.to_string(), 0, ELECTION_NOT_NEEDED)]
    );
    let everything = elect(&mut conn, 2, 0, None);
    assert!(
        codes(&everything)
            .iter()
            .all(|(_, _, code)| *code != ELECTION_NOT_NEEDED),
        "{everything:?}"
    );
    let unknown = elect(
        &mut conn,
        1,
        0,
        Some(&[(topic, &[7]), ("no-such-topic", &[0])]),
    );
    assert_eq!(
        codes(&unknown),
        vec![
            (topic.to_string(), 7, UNKNOWN_TOPIC_OR_PARTITION),
            ("no-such-topic".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    // Unclean election of a partition that has a leader: nothing to do.
    let unclean = elect(&mut conn, 2, 1, Some(&[(topic, &[0])]));
    assert_eq!(
        codes(&unclean),
        vec![(topic.to_string(), 0, ELECTION_NOT_NEEDED)]
    );

    // The records acknowledged before the failure are all on the re-elected leader.
    let mut conn = cluster.node(preferred).connect();
    // (A new leader learns the high watermark from its followers' next fetches.)
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    let (records, high_watermark) = loop {
        let (error, high_watermark, records) = fetch(&mut conn, topic, 0, 0);
        assert_eq!(error, 0, "{}", cluster.logs());
        if high_watermark == 5 || Instant::now() > deadline {
            break (records, high_watermark);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(high_watermark, 5, "{}", cluster.logs());
    let values: Vec<String> = decode_values(&records)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        values,
        (0..5).map(|i| format!("before-{i}")).collect::<Vec<_>>()
    );

    // The CLI on the healthy cluster.
    let address = cluster.address(preferred);
    let status = cli_support::run_strom_json(&address, &["cluster", "status", "--json"]);
    assert_eq!(status["counts"]["brokers"], 3, "{status}");
    assert_eq!(status["counts"]["fenced_brokers"], 0, "{status}");
    assert_eq!(status["counts"]["under_replicated"], 0, "{status}");
    assert_eq!(status["counts"]["offline"], 0, "{status}");
    assert!(status["controller_id"].as_i64().unwrap() >= 1, "{status}");
    let output = strom(&address, &["cluster", "status"]);
    assert!(output.status.success());
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("ID  ADDRESS"), "{table}");
    assert!(table.contains("0 under-replicated, 0 offline"), "{table}");
    let results = cli_support::run_strom_json(
        &address,
        &[
            "cluster",
            "elect-leaders",
            "--topic",
            topic,
            "--partition",
            "0",
            "--json",
        ],
    );
    assert_eq!(
        results["results"][0]["error"], "ELECTION_NOT_NEEDED",
        "{results}"
    );
    let output = strom(&address, &["cluster", "elect-leaders", "--topic", topic]);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("already preferred"));
}

#[test]
fn given_a_single_node_broker_when_electing_should_answer_election_not_needed() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    broker_support::create_topic(&mut conn, "solo", 2, &[]);

    for version in 0..=2 {
        let response = elect(&mut conn, version, 0, Some(&[("solo", &[0, 1])]));
        assert_eq!(response.error_code, 0);
        assert_eq!(
            codes(&response),
            vec![
                ("solo".to_string(), 0, ELECTION_NOT_NEEDED),
                ("solo".to_string(), 1, ELECTION_NOT_NEEDED),
            ],
            "v{version}"
        );
    }
    let everything = elect(&mut conn, 2, 0, None);
    assert!(
        everything.replica_election_results.is_empty(),
        "{everything:?}"
    );
    let unknown = elect(&mut conn, 2, 0, Some(&[("solo", &[5]), ("ghost", &[0])]));
    assert_eq!(
        codes(&unknown),
        vec![
            ("solo".to_string(), 5, UNKNOWN_TOPIC_OR_PARTITION),
            ("ghost".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    let bad_type = elect(&mut conn, 2, 7, Some(&[("solo", &[0])]));
    assert_eq!(bad_type.error_code, INVALID_REQUEST);
    assert_eq!(
        codes(&bad_type),
        vec![("solo".to_string(), 0, INVALID_REQUEST)]
    );

    // Metadata of a single node: it is the controller and the only broker.
    let listed = metadata(&mut conn, Some(&["solo"]));
    assert_eq!(live_brokers(&listed).len(), 1);
    let only = listed.brokers[0].node_id;
    assert_eq!(listed.controller_id, only);
    let partition = partition_of(&listed, "solo", 1).unwrap();
    assert_eq!(partition.leader_id, only);
    assert!(partition.offline_replicas.is_empty());

    let address = broker.addr.to_string();
    let output = strom(&address, &["cluster", "elect-leaders"]);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("nothing to elect"));
    let output = strom(&address, &["cluster", "elect-leaders", "--topic", "ghost"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("'ghost' does not exist"));
    let output = strom(
        &address,
        &[
            "cluster",
            "elect-leaders",
            "--topic",
            "solo",
            "--partition",
            "9",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no partition 9"));
    let status = cli_support::run_strom_json(&address, &["cluster", "status", "--json"]);
    assert_eq!(status["counts"]["brokers"], 1, "{status}");
    assert_eq!(status["counts"]["under_replicated"], 0, "{status}");
}

/// An ElectLeaders frame cut `cut_bytes` short, with the size prefix matching the cut.
fn truncated(version: i16, body: &ElectLeadersRequest, cut_bytes: usize) -> Vec<u8> {
    broker_support::truncated_frame(ApiKey::ElectLeaders, version, body, cut_bytes)
}

#[test]
fn given_truncated_elect_leaders_requests_should_close_only_that_connection() {
    let broker = TestBroker::start(&[]);
    let mut healthy = broker.connect();
    broker_support::create_topic(&mut healthy, "cut", 1, &[]);
    let body = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_timeout_ms(1_000)
        .with_topic_partitions(Some(vec![TopicPartitions::default()
            .with_topic(topic_name("cut"))
            .with_partitions(vec![0, 1, 2])]));
    for version in 0..=2 {
        let mut body = body.clone();
        if version == 0 {
            body.election_type = 0;
        }
        for cut_bytes in [1, 3, 6] {
            let mut conn = broker.connect();
            conn.send_raw(&truncated(version, &body, cut_bytes))
                .expect("send");
            assert!(
                conn.is_closed_by_broker(),
                "v{version} cut by {cut_bytes}: the connection stays open"
            );
        }
    }
    // A count far beyond the bytes that follow is refused before anything is allocated.
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::ElectLeaders as i16)
        .with_request_api_version(1)
        .with_correlation_id(2)
        .with_client_id(Some(s("bad")))
        .encode(&mut frame, ApiKey::ElectLeaders.request_header_version(1))
        .unwrap();
    frame.put_i8(0);
    frame.put_i32(i32::MAX);
    let mut raw = BytesMut::new();
    raw.put_i32(frame.len() as i32);
    raw.extend_from_slice(&frame);
    let mut conn = broker.connect();
    conn.send_raw(&raw).expect("send");
    assert!(conn.is_closed_by_broker(), "huge topic count accepted");

    let response = elect(&mut healthy, 2, 0, Some(&[("cut", &[0])]));
    assert_eq!(
        codes(&response),
        vec![("cut".to_string(), 0, ELECTION_NOT_NEEDED)]
    );
}
