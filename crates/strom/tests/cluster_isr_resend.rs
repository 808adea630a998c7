//! A leader whose AlterPartition answer is lost to a transport error resends it: a follower
//! that caught up while the only controller was down joins the ISR once the controller is
//! back, although no metadata change would otherwise settle the lost proposal. Real
//! processes: one controller-only node and two broker-only nodes.

mod broker_support;
mod cluster_support;

use std::time::Duration;

use cluster_support::*;

const TOPIC: &str = "isr-resend";

fn isr(metadata: &kafka_protocol::messages::MetadataResponse) -> Option<Vec<i32>> {
    let partition = partition_of(metadata, TOPIC, 0)?;
    let mut isr: Vec<i32> = partition.isr_nodes.iter().map(|b| b.0).collect();
    isr.sort_unstable();
    Some(isr)
}

#[test]
fn given_the_controller_down_while_a_follower_catches_up_when_it_returns_should_resend_the_isr_expansion(
) {
    let mut cluster = Cluster::start_with(
        &[Role::Controller, Role::Broker, Role::Broker],
        &["replica.lag.time.max.ms=1500"],
    );
    let code = create_topic(&mut cluster.node(2).connect(), TOPIC, 1, 2, Some(&[2, 3]));
    assert_eq!(code, 0, "create");
    cluster.wait_for(|m| isr(m) == Some(vec![2, 3]));

    // Broker 3 freezes (its fetches and heartbeats stop): it leaves the ISR.
    cluster.node(3).signal("STOP");
    cluster.wait_for_on(&[2], |m| isr(m) == Some(vec![2]));

    // With the only controller gone, broker 3 resumes, catches up with leader 2, and
    // broker 2's proposal to take it back into the ISR finds no controller: the call gives
    // up after the controller client's propose timeout (10 s), its answer lost.
    cluster.kill(1);
    cluster.node(3).signal("CONT");
    std::thread::sleep(Duration::from_secs(14));
    let metadata = cluster.wait_for_on(&[2], |m| isr(m).is_some());
    assert_eq!(
        isr(&metadata),
        Some(vec![2]),
        "no controller, no ISR change"
    );

    // The controller returns: the resent proposal brings broker 3 back into the ISR.
    cluster.restart(1);
    cluster.wait_for(|m| isr(m) == Some(vec![2, 3]));
    assert!(
        cluster
            .node(2)
            .log()
            .contains("ISR change answer lost; resending"),
        "broker 2 resent a proposal whose answer was lost"
    );
}
