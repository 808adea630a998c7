//! Fetch from follower (KIP-392) on real processes: three brokers in racks r1, r2, r3 with
//! the rack-aware replica selector. The leader sends a consumer in another rack to the
//! in-sync replica there; that follower serves it up to its high watermark; old fetch
//! versions and replicas still go to the leader; a follower asked past its log end says
//! OFFSET_NOT_AVAILABLE, never OFFSET_OUT_OF_RANGE.

mod broker_support;
mod cli_support;
mod cluster_support;

use std::time::{Duration, Instant};

use cluster_support::*;

use broker_support::{batch, decode_values, fetch_request, produce_request, Conn};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const OFFSET_NOT_AVAILABLE: i16 = 78;
const TOPIC: &str = "racked";

/// Fetch at `version` with `rack` as the consumer's rack: (error, high watermark,
/// preferred read replica, values from `offset` on; whole batches come back, as a client
/// skips the records before its offset).
fn fetch_as(
    conn: &mut Conn,
    version: i16,
    rack: &str,
    offset: i64,
) -> (i16, i64, i32, Vec<String>) {
    let request =
        fetch_request(TOPIC, 0, offset, 0, 0).with_rack_id(StrBytes::from_string(rack.to_string()));
    let response: FetchResponse = conn.call(ApiKey::Fetch, version, &request);
    let p = &response.responses[0].partitions[0];
    let values = decode_values(&p.records.clone().unwrap_or_default())
        .into_iter()
        .filter(|(at, _)| *at >= offset)
        .map(|(_, value)| value)
        .collect();
    (
        p.error_code,
        p.high_watermark,
        p.preferred_read_replica.0,
        values,
    )
}

#[test]
fn given_racks_and_rack_aware_selector_when_consumer_fetches_should_read_from_its_rack() {
    let settings: NodeSettings = Box::new(|node_id, _| vec![format!("broker.rack=r{node_id}")]);
    let cluster = Cluster::start_custom(
        &[Role::Combined; 3],
        &["replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector"],
        Some(settings),
    );
    assert_eq!(
        create_topic(
            &mut cluster.node(1).connect(),
            TOPIC,
            1,
            1,
            Some(&[1, 2, 3])
        ),
        0
    );
    cluster.wait_for_on(&[1], |m| {
        partition_of(m, TOPIC, 0).is_some_and(|p| p.leader_id.0 == 1 && p.isr_nodes.len() == 3)
    });
    let produced: ProduceResponse = cluster.node(1).connect().call(
        ApiKey::Produce,
        9,
        &produce_request(TOPIC, 0, batch("v", 20, now_ms()), -1),
    );
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    let expected: Vec<String> = (0..20).map(|i| format!("v-{i}")).collect();

    // The leader (rack r1) sends a consumer in r2 to broker 2, with no records.
    let mut leader = cluster.node(1).connect();
    let (code, high_watermark, preferred, values) = fetch_as(&mut leader, 12, "r2", 0);
    assert_eq!((code, high_watermark, preferred), (0, 20, 2));
    assert!(values.is_empty(), "{values:?}");
    // A consumer in the leader's rack, in no known rack, or without one reads there.
    for rack in ["r1", "nowhere", ""] {
        let (code, _, preferred, values) = fetch_as(&mut leader, 12, rack, 0);
        assert_eq!((code, preferred), (0, -1), "rack {rack:?}");
        assert_eq!(values, expected, "rack {rack:?}");
    }

    // Broker 2 serves it once its high watermark has caught up (it learns it from the
    // leader's answer to its next fetch).
    let mut follower = cluster.node(2).connect();
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    let mut served = fetch_as(&mut follower, 12, "r2", 0);
    while served.1 < 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        served = fetch_as(&mut follower, 12, "r2", 0);
    }
    let (code, high_watermark, preferred, values) = served;
    assert_eq!((code, high_watermark, preferred), (0, 20, -1));
    assert_eq!(values, expected);
    // Mid-log, and at the end (nothing yet: an empty answer, not an error).
    let (code, _, _, values) = fetch_as(&mut follower, 12, "r2", 15);
    assert_eq!(code, 0);
    assert_eq!(values, expected[15..].to_vec());
    let (code, _, _, values) = fetch_as(&mut follower, 12, "r2", 20);
    assert_eq!((code, values.len()), (0, 0));
    // Past its log end: retriable, so the consumer keeps its position.
    let (code, ..) = fetch_as(&mut follower, 12, "r2", 1_000);
    assert_eq!(code, OFFSET_NOT_AVAILABLE);
    // Before v11 consumers cannot read from followers; neither can replicas.
    let (code, ..) = fetch_as(&mut follower, 10, "", 0);
    assert_eq!(code, NOT_LEADER_OR_FOLLOWER);
    let replica_fetch = fetch_request(TOPIC, 0, 0, 0, 0).with_replica_id(BrokerId(3));
    let response: FetchResponse = cluster
        .node(2)
        .connect()
        .call(ApiKey::Fetch, 12, &replica_fetch);
    assert_eq!(
        response.responses[0].partitions[0].error_code,
        NOT_LEADER_OR_FOLLOWER
    );
}

#[test]
fn given_no_replica_selector_when_consumer_names_a_rack_should_read_from_the_leader() {
    let settings: NodeSettings = Box::new(|node_id, _| vec![format!("broker.rack=r{node_id}")]);
    let cluster = Cluster::start_custom(&[Role::Combined; 3], &[], Some(settings));
    assert_eq!(
        create_topic(&mut cluster.node(1).connect(), TOPIC, 1, 1, Some(&[1, 2])),
        0
    );
    cluster.wait_for_on(&[1], |m| {
        partition_of(m, TOPIC, 0).is_some_and(|p| p.leader_id.0 == 1 && p.isr_nodes.len() == 2)
    });
    let produced: ProduceResponse = cluster.node(1).connect().call(
        ApiKey::Produce,
        9,
        &produce_request(TOPIC, 0, batch("w", 5, now_ms()), -1),
    );
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    let (code, _, preferred, values) = fetch_as(&mut cluster.node(1).connect(), 12, "r2", 0);
    assert_eq!((code, preferred, values.len()), (0, -1, 5));
}

/// One sample of `name` from node's `/metrics` (on the HTTP listener at `port`).
fn metric(port: u16, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    body.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[test]
fn given_followers_when_replicating_should_use_fetch_sessions_and_keep_acks_all_working() {
    let settings: NodeSettings =
        Box::new(|_, ports| vec![format!("http.listener=127.0.0.1:{}", ports.extra)]);
    let cluster = Cluster::start_custom(&[Role::Combined; 3], &[], Some(settings));
    let topic = "sessioned";
    assert_eq!(
        create_topic(
            &mut cluster.node(1).connect(),
            topic,
            1,
            3,
            Some(&[1, 2, 3])
        ),
        0
    );
    cluster.wait_for_on(&[1], |m| {
        partition_of(m, topic, 0).is_some_and(|p| p.leader_id.0 == 1 && p.isr_nodes.len() == 3)
    });
    // acks=all completes only when both followers fetched each batch: after the first
    // full fetch, through incremental session fetches.
    let mut leader = cluster.node(1).connect();
    for round in 0..5 {
        let produced: ProduceResponse = leader.call(
            ApiKey::Produce,
            9,
            &produce_request(topic, 0, batch(&format!("s{round}"), 10, now_ms()), -1),
        );
        let answer = &produced.responses[0].partition_responses[0];
        assert_eq!((answer.error_code, answer.base_offset), (0, round * 10));
    }
    let http = cluster.ports(1).extra;
    let sessions = metric(http, "strom_fetch_sessions").expect("metrics of node 1");
    let partitions = metric(http, "strom_fetch_session_partitions").expect("metrics of node 1");
    assert!(
        sessions >= 2.0 && partitions >= 2.0,
        "the followers fetch without sessions: {sessions} sessions, {partitions} partitions"
    );
    // Both followers hold every record (read from each as a KIP-392 consumer).
    let expected: Vec<String> = (0..5)
        .flat_map(|round| (0..10).map(move |i| format!("s{round}-{i}")))
        .collect();
    for follower in [2, 3] {
        let mut conn = cluster.node(follower).connect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let response: FetchResponse =
                conn.call(ApiKey::Fetch, 12, &fetch_request(topic, 0, 0, 0, 0));
            let p = &response.responses[0].partitions[0];
            let values: Vec<String> = decode_values(&p.records.clone().unwrap_or_default())
                .into_iter()
                .map(|(_, value)| value)
                .collect();
            if p.error_code == 0 && values == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "follower {follower} has {} of 50 records (error {})",
                values.len(),
                p.error_code
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
