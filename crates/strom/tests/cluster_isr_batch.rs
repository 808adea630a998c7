//! A restarted broker rejoins the ISR of every partition, and its leaders ask for that with
//! a few AlterPartition requests that each carry many partitions (Kafka's
//! `AlterPartitionManager`), not one request per partition. Real processes: three combined
//! nodes, one topic of 300 partitions with replication factor 3.

mod broker_support;
mod cluster_support;

use std::time::{Duration, Instant};

use cluster_support::*;

const TOPIC: &str = "isr-batch";
const PARTITIONS: usize = 300;
/// Opening, catching up and re-admitting 300 replicas on a loaded 2-core machine in a debug
/// build: bounded, but generous.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(180);

/// Partitions of [`TOPIC`] whose ISR is every replica (0 while the topic is unknown).
fn full_isr(metadata: &kafka_protocol::messages::MetadataResponse) -> usize {
    partitions_where(metadata, |p| p.isr_nodes.len() == p.replica_nodes.len())
}

fn partitions_where(
    metadata: &kafka_protocol::messages::MetadataResponse,
    keep: impl Fn(&kafka_protocol::messages::metadata_response::MetadataResponsePartition) -> bool,
) -> usize {
    metadata
        .topics
        .iter()
        .filter(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == TOPIC))
        .flat_map(|t| t.partitions.iter())
        .filter(|p| p.error_code == 0 && keep(p))
        .count()
}

/// Polls node `node_id` until `ready` holds, for at most `timeout`.
fn wait_on(
    cluster: &Cluster,
    node_id: i32,
    timeout: Duration,
    what: &str,
    ready: impl Fn(&kafka_protocol::messages::MetadataResponse) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let metadata = metadata(&mut cluster.node(node_id).connect(), Some(&[TOPIC]));
        if ready(&metadata) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached in {timeout:?}; {} of {PARTITIONS} partitions at full ISR\n{}",
            full_isr(&metadata),
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The AlterPartition requests a node's log says it sent: (requests, partitions in them).
fn alter_partitions_sent(log: &str) -> (usize, usize) {
    let mut requests = 0;
    let mut partitions = 0;
    for line in log.lines().filter(|l| l.contains("sending AlterPartition")) {
        let plain = strip_ansi(line);
        let count = plain
            .split("partitions=")
            .nth(1)
            .and_then(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no partition count in {plain:?}"));
        requests += 1;
        partitions += count;
    }
    (requests, partitions)
}

fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in '@'..='~'.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn given_a_restarted_broker_when_it_catches_up_should_rejoin_every_isr_through_batched_alter_partitions(
) {
    let mut cluster = Cluster::start();
    let code = create_topic(
        &mut cluster.node(1).connect(),
        TOPIC,
        PARTITIONS as i32,
        3,
        None,
    );
    assert_eq!(code, 0, "create");
    wait_on(&cluster, 1, REJOIN_TIMEOUT, "created", |m| {
        full_isr(m) == PARTITIONS
    });

    // A clean stop: the controller moves every leadership away from node 3 and takes it
    // out of every ISR.
    cluster.stop(3);
    wait_on(
        &cluster,
        1,
        REJOIN_TIMEOUT,
        "node 3 out of every ISR",
        |m| partitions_where(m, |p| p.isr_nodes.iter().all(|b| b.0 != 3)) == PARTITIONS,
    );
    let sent_before: Vec<(usize, usize)> = [1, 2]
        .iter()
        .map(|&n| alter_partitions_sent(&cluster.node(n).log()))
        .collect();

    cluster.restart(3);
    wait_on(
        &cluster,
        1,
        REJOIN_TIMEOUT,
        "full ISR after the restart",
        |m| full_isr(m) == PARTITIONS,
    );

    // Nodes 1 and 2 lead every partition now; between them they re-admitted node 3 to
    // all 300 ISRs.
    let (mut requests, mut partitions) = (0, 0);
    for (&node, before) in [1, 2].iter().zip(&sent_before) {
        let after = alter_partitions_sent(&cluster.node(node).log());
        requests += after.0 - before.0;
        partitions += after.1 - before.1;
    }
    eprintln!("{requests} AlterPartition requests carried {partitions} ISR changes");
    assert!(
        partitions >= PARTITIONS,
        "the leaders proposed {partitions} ISR changes for {PARTITIONS} partitions"
    );
    assert!(
        requests * 10 <= PARTITIONS,
        "{requests} AlterPartition requests for {partitions} ISR changes: not batched"
    );
}
