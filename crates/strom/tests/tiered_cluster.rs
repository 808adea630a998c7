//! Tiered storage on a 3-node cluster (RF=3) against a real S3 server (SeaweedFS): the
//! leader copies closed segments, is killed with SIGKILL, and the new leader resumes the
//! copies from the manifest in the bucket: no segment twice, no gap, every later segment
//! under a higher leader epoch, and every acknowledged record read back from offset 0
//! through the bucket once local retention deleted the local copies.

mod broker_support;
mod cluster_support;
mod tiered_support;

use std::time::{Duration, Instant};

use broker_support::{create_topic, list_offset, produce_request, Conn};
use cluster_support::*;
use kafka_protocol::messages::{ApiKey, ProduceResponse};
use strom_tiered::{PartitionManifest, SegmentState};
use tiered_support::{big_batch, expected_values, Seaweed};

const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const RECORDS_PER_BATCH: usize = 40;
/// Batches produced to the first leader, then as many again to the second.
const BATCHES_EACH: usize = 30;

/// acks=all produce of batch `batch_index` to partition 0; the error code.
fn produce_all_acks(conn: &mut Conn, topic: &str, batch_index: usize) -> i16 {
    let request = produce_request(topic, 0, big_batch(batch_index, RECORDS_PER_BATCH), -1);
    let response: ProduceResponse = conn.call(ApiKey::Produce, 9, &request);
    response.responses[0].partition_responses[0].error_code
}

/// Produces batches `range` to the partition's current leader, retrying a batch on a
/// leader change (acks=all: an acknowledged batch is on the in-sync replicas).
fn produce_batches(cluster: &Cluster, topic: &str, range: std::ops::Range<usize>) {
    for batch_index in range {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let leader = leader_of(cluster, topic);
            let code = produce_all_acks(&mut cluster.node(leader).connect(), topic, batch_index);
            if code == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "batch {batch_index}: error {code}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn leader_of(cluster: &Cluster, topic: &str) -> i32 {
    let running = cluster.running_brokers();
    let metadata = cluster.wait_for_on(&running, |m| {
        partition_of(m, topic, 0).is_some_and(|p| running.contains(&p.leader_id.0))
    });
    partition_of(&metadata, topic, 0).unwrap().leader_id.0
}

/// Polls `check` for up to 90 s; panics with `what` and the cluster's logs.
fn wait_until(cluster: &Cluster, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn given_leader_killed_mid_copy_when_new_leader_takes_over_should_copy_the_rest_without_gap_or_duplicate(
) {
    let seaweed = Seaweed::start();
    let bucket = "strom-tiered-cluster";
    let mut settings = seaweed.broker_settings(bucket);
    settings.push("default.replication.factor=3".to_string());
    settings.push("min.insync.replicas=2".to_string());
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let mut cluster = Cluster::start_with(&[Role::Combined; 3], &settings);
    let topic = "tiered-ha";
    create_topic(
        &mut cluster.node(1).connect(),
        topic,
        1,
        &[
            ("remote.storage.enable", "true"),
            ("segment.bytes", "65536"),
            ("local.retention.bytes", "65536"),
            ("retention.ms", "-1"),
        ],
    );
    cluster.wait_for_on(&[1, 2, 3], |m| {
        partition_of(m, topic, 0).is_some_and(|p| p.leader_id.0 > 0 && p.isr_nodes.len() == 3)
    });

    // The first leader copies what it has, then dies with SIGKILL.
    produce_batches(&cluster, topic, 0..BATCHES_EACH);
    let first = leader_of(&cluster, topic);
    let first_half = (BATCHES_EACH * RECORDS_PER_BATCH) as i64;
    wait_until(&cluster, "the first leader's copies", || {
        let (_, last, _) = list_offset(&mut cluster.node(first).connect(), topic, 0, LATEST_TIERED);
        last >= first_half / 2
    });
    cluster.kill(first);

    // The next leader takes over: it copies the rest, starting where the first stopped.
    produce_batches(&cluster, topic, BATCHES_EACH..2 * BATCHES_EACH);
    let second = leader_of(&cluster, topic);
    assert_ne!(second, first);
    let end = (2 * BATCHES_EACH * RECORDS_PER_BATCH) as i64;
    wait_until(
        &cluster,
        "the second leader's copies and local retention",
        || {
            let mut conn = cluster.node(second).connect();
            let (_, last, _) = list_offset(&mut conn, topic, 0, LATEST_TIERED);
            let (_, local_start, _) = list_offset(&mut conn, topic, 0, EARLIEST_LOCAL);
            last >= end - end / 4 && local_start > first_half
        },
    );

    // The manifest: finished segments from 0, each starting one past the previous end,
    // leader epochs never going back, and the second leader's epoch on the later ones.
    let id = {
        let metadata = metadata(&mut cluster.node(second).connect(), Some(&[topic]));
        metadata.topics[0].topic_id
    };
    let manifest: PartitionManifest = serde_json::from_slice(
        &seaweed
            .get(bucket, &format!("{topic}-{id}/0/manifest.json"))
            .expect("the manifest is in the bucket"),
    )
    .unwrap();
    let mut finished: Vec<_> = manifest
        .segments
        .iter()
        .filter(|segment| segment.state == SegmentState::CopySegmentFinished)
        .collect();
    finished.sort_by_key(|segment| segment.base_offset);
    assert_eq!(finished[0].base_offset, 0, "{manifest:?}");
    for pair in finished.windows(2) {
        assert_eq!(
            pair[1].base_offset,
            pair[0].end_offset + 1,
            "a gap or an overlap between two remote segments: {manifest:?}"
        );
        assert!(pair[1].leader_epoch >= pair[0].leader_epoch, "{manifest:?}");
    }
    let epochs: std::collections::BTreeSet<i32> = finished
        .iter()
        .map(|segment| segment.leader_epoch)
        .collect();
    assert!(
        epochs.len() >= 2,
        "both leaders copied segments: {manifest:?}"
    );

    // Every acknowledged record, once and in order, read from 0 through the new leader:
    // the part below its local log start comes from the bucket.
    let values = read_all(&mut cluster.node(second).connect(), topic, 0);
    let expected: Vec<String> = expected_values(2 * BATCHES_EACH, RECORDS_PER_BATCH)
        .into_iter()
        .map(|(_, value)| value)
        .collect();
    assert_eq!(values.len(), expected.len());
    assert!(
        values == expected,
        "records differ from what was acknowledged"
    );
}
