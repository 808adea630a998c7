//! A rolling restart (issue 19, item 6) on real processes, as the README describes it:
//! each node of a three-node cluster in turn is stopped with SIGTERM (controlled shutdown:
//! its leaderships move first), started again, and the next one waits until every
//! partition's ISR is whole again. An acks=all idempotent load runs throughout; every
//! acknowledged record must be readable exactly once at its offset afterwards. The longest
//! gap between two acknowledgements is printed (run with `--nocapture`), never asserted.

mod broker_support;
mod cli_support;
mod cluster_support;
mod ops_support;

use cluster_support::*;

use ops_support::{assert_every_ack_readable, Load};

#[test]
fn given_a_loaded_three_node_cluster_when_each_node_is_restarted_in_turn_should_lose_no_acknowledged_record(
) {
    let mut cluster = Cluster::start_with(&[Role::Combined; 3], &[]);
    let topic = "rolling";
    let partitions = 3;
    assert_eq!(
        create_topic(&mut cluster.node(1).connect(), topic, partitions, 3, None),
        0
    );
    let whole = |m: &kafka_protocol::messages::MetadataResponse| {
        live_brokers(m).len() == 3
            && (0..partitions)
                .all(|p| partition_of(m, topic, p).is_some_and(|p| p.isr_nodes.len() == 3))
    };
    cluster.wait_for_on(&[1, 2, 3], whole);
    let bootstrap = [1, 2, 3].map(|id| cluster.address(id)).join(",");
    let load = Load::start(&bootstrap, topic, partitions);
    load.wait_for_more(100, CHANGE_TIMEOUT);

    for node in [1, 2, 3] {
        cluster.stop(node);
        load.wait_for_more(50, CHANGE_TIMEOUT);
        cluster.restart(node);
        // The next node goes only once this one is back in every ISR.
        cluster.wait_for_on(&[1, 2, 3], whole);
        load.wait_for_more(50, CHANGE_TIMEOUT);
    }

    let report = load.stop();
    println!(
        "rolling restart of 3 nodes under load: {} acknowledged, {} failed, longest gap \
         between acknowledgements {:?} over {:?}",
        report.acked.len(),
        report.failed,
        report.longest_gap,
        report.ran_for
    );
    assert!(!report.acked.is_empty());
    assert_every_ack_readable(&cluster, topic, &report);
}
