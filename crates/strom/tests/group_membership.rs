//! Classic group membership against the real binary: members get disjoint assignments
//! covering every partition; a member that dies without LeaveGroup loses its partitions
//! to the others within the session timeout; a member that joins is absorbed quickly.

mod broker_support;
mod group_support;

use std::time::{Duration, Instant};

use broker_support::{create_topic, TestBroker};
use group_support::{wait_settled, Member, SESSION_TIMEOUT_MS};

const PARTITIONS: i32 = 6;

fn broker() -> TestBroker {
    TestBroker::start(&[
        "group.initial.rebalance.delay.ms=200",
        "offsets.topic.num.partitions=5",
    ])
}

#[test]
fn given_three_members_when_one_is_killed_should_move_its_partitions_to_the_survivors() {
    let broker = broker();
    create_topic(&mut broker.connect(), "orders", PARTITIONS, &[]);
    let members: Vec<Member> = (0..3)
        .map(|_| Member::start(broker.connect(), "g-kill", PARTITIONS))
        .collect();
    let (generation, held) = wait_settled(
        &members.iter().collect::<Vec<_>>(),
        PARTITIONS,
        Duration::from_secs(30),
    );
    assert!(held.iter().all(|p| p.len() == 2), "{held:?}");

    let mut members = members;
    let victim = members.pop().unwrap();
    let lost = victim.held().1;
    let killed_at = Instant::now();
    victim.crash();
    let (next, held) = wait_settled(
        &members.iter().collect::<Vec<_>>(),
        PARTITIONS,
        Duration::from_secs(30),
    );
    let moved_after = killed_at.elapsed();
    assert!(next > generation);
    assert!(held.iter().all(|p| p.len() == 3), "{held:?}");
    for partition in lost {
        assert!(held.iter().any(|p| p.contains(&partition)));
    }
    // wait_settled fails the test only if the partitions never move; the time is a figure.
    eprintln!(
        "FIGURE killed_member_moved_ms={} session_timeout_ms={SESSION_TIMEOUT_MS}",
        moved_after.as_millis()
    );
}

#[test]
fn given_ten_member_group_when_one_joins_and_one_leaves_should_settle() {
    let broker = broker();
    create_topic(&mut broker.connect(), "wide", 20, &[]);
    let mut members: Vec<Member> = (0..10)
        .map(|_| Member::start(broker.connect(), "g-ten", 20))
        .collect();
    wait_settled(
        &members.iter().collect::<Vec<_>>(),
        20,
        Duration::from_secs(30),
    );

    let joined_at = Instant::now();
    members.push(Member::start(broker.connect(), "g-ten", 20));
    let (_, held) = wait_settled(
        &members.iter().collect::<Vec<_>>(),
        20,
        Duration::from_secs(30),
    );
    let join_settled = joined_at.elapsed();
    assert_eq!(held.len(), 11);

    let leaving = members.remove(0);
    let left_at = Instant::now();
    drop(leaving); // sends LeaveGroup
    wait_settled(
        &members.iter().collect::<Vec<_>>(),
        20,
        Duration::from_secs(30),
    );
    let leave_settled = left_at.elapsed();
    // Each wait_settled fails the test only if the group never settles; the times are figures.
    eprintln!(
        "FIGURE ten_member_join_settled_ms={} leave_settled_ms={} heartbeat_interval_ms=300",
        join_settled.as_millis(),
        leave_settled.as_millis()
    );
}
