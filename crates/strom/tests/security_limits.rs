//! Connection limits under slowloris and flood load, bounded in time and count: the broker
//! keeps serving well-behaved clients within its limits.

mod broker_support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use broker_support::*;
use kafka_protocol::messages::*;

fn serves_a_real_client(broker: &TestBroker) {
    let mut conn = broker.connect();
    let response: ApiVersionsResponse =
        conn.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
    let (error, _, records) = fetch(&mut conn, "steady", 0, 0);
    assert_eq!(error, 0);
    assert_eq!(decode_values(&records).len(), 3);
}

fn started(extra: &[&str]) -> TestBroker {
    let broker = TestBroker::start(extra);
    let mut conn = broker.connect();
    create_topic(&mut conn, "steady", 1, &[]);
    assert_eq!(produce(&mut conn, "steady", 0, batch("s", 3, 1_000)).0, 0);
    broker
}

#[test]
fn given_slowloris_connections_should_keep_serving_others() {
    let broker = started(&[]);
    // 300 connections, each announcing a 1 MiB frame and sending a few bytes of it.
    let mut slow: Vec<TcpStream> = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(broker.addr).unwrap();
        stream.write_all(&(1_048_576i32).to_be_bytes()).unwrap();
        stream.write_all(&[0, 3, 0, 1]).unwrap();
        slow.push(stream);
    }
    let started = Instant::now();
    serves_a_real_client(&broker);
    eprintln!(
        "FIGURE served_beside_300_slowloris_ms={}",
        started.elapsed().as_millis()
    );
    // Dribble one more byte each; the broker still answers the well-behaved client.
    for stream in &mut slow {
        let _ = stream.write_all(&[0]);
    }
    serves_a_real_client(&broker);
}

#[test]
fn given_connection_flood_beyond_max_connections_should_refuse_extra_and_recover() {
    let mut broker = started(&["max.connections=40"]);
    let mut flood: Vec<Conn> = (0..80).map(|_| broker.connect()).collect();
    // Connections past the limit are closed at accept.
    let mut closed = 0;
    for conn in flood.iter_mut().skip(40) {
        if conn.is_closed_by_broker() {
            closed += 1;
        }
    }
    assert!(
        closed >= 35,
        "only {closed} of 40 connections past the limit were closed"
    );
    drop(flood);
    // Once the flood is gone, clients are admitted again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut conn = broker.connect();
        conn.send(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
        if conn.read_frame().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "broker did not admit clients after the flood"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    serves_a_real_client(&broker);
    assert!(broker.is_running());
}

#[test]
fn given_too_many_connections_from_one_ip_should_refuse_them() {
    let broker = started(&["max.connections.per.ip=5"]);
    // The set-up connection is uncounted when the broker sees it close, which can come
    // after new connections arrive; hold five that all answer, retrying until it has.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut held: Vec<Conn> = loop {
        let mut held: Vec<Conn> = (0..5).map(|_| broker.connect()).collect();
        if held.iter_mut().all(Conn::answers) {
            break held;
        }
        drop(held);
        assert!(
            Instant::now() < deadline,
            "five connections were never admitted"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut extra = broker.connect();
    assert!(
        extra.is_closed_by_broker(),
        "the sixth connection from 127.0.0.1 is refused"
    );
    // The held ones still work.
    let response: ApiVersionsResponse =
        held[0].call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
    held.clear();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut conn = broker.connect();
        conn.send(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
        if conn.read_frame().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "slots were not released");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn given_idle_connection_should_be_closed_after_connections_max_idle_ms() {
    let broker = started(&["connections.max.idle.ms=300"]);
    let mut idle = broker.connect();
    let started = Instant::now();
    assert!(idle.is_closed_by_broker());
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "not before the idle time"
    );
    serves_a_real_client(&broker);
}
