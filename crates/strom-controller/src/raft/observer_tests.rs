//! Observers (broker-only nodes) on a three-voter quorum: joining as a learner (the log
//! purged, so a snapshot first), forwarding every operation, surviving the leader's loss,
//! a restart at another address, and the refusals. Real loopback TCP, real files.

use std::time::Duration;

use tokio::net::TcpListener;

use super::cluster_tests::image_where;
use super::quorum_tests::{
    agreed_leader, bind_voters, by_id, converged, create_topic, register_all, start, test_config,
    wait_until, CLUSTER_WAIT,
};
use super::*;
use crate::controller::TopicDefaults;

const OBSERVER_ID: i32 = 4;

fn observer_config(voters: &[Voter], dir: &std::path::Path, address: &str) -> RaftQuorumConfig {
    RaftQuorumConfig {
        role: QuorumRole::Observer {
            address: address.to_string(),
        },
        ..test_config(OBSERVER_ID, voters, dir)
    }
}

/// Joins, retrying while the quorum settles (as the broker's start-up does).
async fn join(observer: &RaftQuorum) {
    let deadline = std::time::Instant::now() + CLUSTER_WAIT;
    loop {
        match observer.join_as_observer().await {
            Ok(()) => return,
            Err(error) if std::time::Instant::now() < deadline => {
                println!("join not accepted yet: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the observer could not join: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_observer_when_joining_late_should_learn_snapshot_forward_operations_and_follow_new_leader(
) {
    let (voters, listeners) = bind_voters(3).await;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let voter_config = |index: usize| RaftQuorumConfig {
        snapshot_every_entries: 5,
        entries_kept_after_snapshot: 0,
        ..test_config(voters[index].node_id, &voters, dirs[index].path())
    };
    let mut nodes = Vec::new();
    for (index, listener) in listeners.into_iter().enumerate() {
        nodes.push(start(voter_config(index), listener).await);
    }
    let refs: Vec<&RaftQuorum> = nodes.iter().collect();
    let leader_id = agreed_leader(&refs).await;
    register_all(by_id(&nodes, leader_id), &voters).await;
    for index in 0..8 {
        create_topic(by_id(&nodes, leader_id), &format!("before-{index}"), 1, 3).await;
    }
    let before = converged(&refs, "8 topics on every voter", |i| i.topic_count() == 8).await;
    // The log was purged behind a snapshot, so the observer can only start from one.
    let leader_dir = raft_directory(dirs[(leader_id - 1) as usize].path());
    wait_until(CLUSTER_WAIT, "a snapshot on the leader", || {
        leader_dir
            .join(RAFT_SNAPSHOT_FILE_NAME)
            .exists()
            .then_some(())
    })
    .await;

    let observer = RaftQuorum::start(observer_config(&voters, dirs[3].path(), "127.0.0.1:0"))
        .await
        .unwrap();
    assert!(!observer.is_leader());
    join(&observer).await;
    let learnt = image_where(&observer, "the voters' image on the observer", |i| {
        i.topic_count() == 8
    })
    .await;
    assert_eq!(learnt.cluster_id(), before.cluster_id());
    assert_eq!(observer.leader(), Some(leader_id));
    // Joining again with the same address changes nothing.
    observer.join_as_observer().await.unwrap();
    // DescribeQuorum, asked on the observer, answered by the leader.
    let described = observer.describe_quorum().await.unwrap();
    assert_eq!(described.leader_id, leader_id);
    assert_eq!(
        described
            .voters
            .iter()
            .map(|r| r.node_id)
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(described.observers.len(), 1, "{described:?}");
    let seen = &described.observers[0];
    assert_eq!(seen.node_id, OBSERVER_ID);
    assert!(seen.log_end_offset > 0 && seen.log_end_offset <= described.high_watermark);
    assert_eq!(
        seen.address.as_deref(),
        Some(observer.local_address().to_string().as_str())
    );
    let leader_entry = described
        .voters
        .iter()
        .find(|r| r.node_id == leader_id)
        .unwrap();
    assert!(leader_entry.log_end_offset >= described.high_watermark);

    // The observer registers and heartbeats through the leader like any broker, and gets
    // replicas once unfenced.
    observer
        .register_broker(OBSERVER_ID, "127.0.0.1", 9999, None, &[])
        .await
        .unwrap();
    assert!(!observer.broker_heartbeat(OBSERVER_ID).await.unwrap().fenced);
    let wide = observer
        .create_topics(
            &[super::quorum_tests::topic("four-wide", 2, 4)],
            false,
            &TopicDefaults::default(),
        )
        .await
        .unwrap();
    assert!(wide[0].error.is_none(), "{wide:?}");
    let image = image_where(&observer, "four-wide on the observer", |i| {
        i.topic("four-wide").is_some()
    })
    .await;
    for partition in &image.topic("four-wide").unwrap().partitions {
        assert!(partition.replicas.contains(&OBSERVER_ID), "{partition:?}");
    }

    // The leader goes away: the observer follows the new one and its calls still land.
    let old_leader = nodes.remove(nodes.iter().position(|n| n.node_id() == leader_id).unwrap());
    old_leader.shutdown().await;
    let refs: Vec<&RaftQuorum> = nodes.iter().collect();
    let new_leader = agreed_leader(&refs).await;
    assert_ne!(new_leader, leader_id);
    wait_until(CLUSTER_WAIT, "the observer to know the new leader", || {
        (observer.leader() == Some(new_leader)).then_some(())
    })
    .await;
    create_topic(&observer, "after-failover", 1, 2).await;
    image_where(&observer, "after-failover on the observer", |i| {
        i.topic("after-failover").is_some()
    })
    .await;

    // Restarted on another port, the observer announces the new address and catches up.
    observer.shutdown().await;
    create_topic(by_id(&nodes, new_leader), "while-away", 1, 2).await;
    let moved = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let moved_address = moved.local_addr().unwrap().to_string();
    drop(moved);
    let observer = RaftQuorum::start(observer_config(&voters, dirs[3].path(), &moved_address))
        .await
        .unwrap();
    join(&observer).await;
    assert!(observer.wait_caught_up(CLUSTER_WAIT).await);
    assert!(observer.catch_up(CLUSTER_WAIT).await);
    assert!(observer.image().topic("while-away").is_some());
    assert!(observer.image().topic("before-0").is_some());

    observer.shutdown().await;
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn given_observer_with_voter_id_or_voter_asked_to_join_should_refuse() {
    let (voters, _listeners) = bind_voters(2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = RaftQuorumConfig {
        role: QuorumRole::Observer {
            address: "127.0.0.1:0".to_string(),
        },
        ..test_config(2, &voters, dir.path())
    };
    match RaftQuorum::start(config).await {
        Err(RaftQuorumError::ObserverIsVoter { node_id: 2 }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_voter_when_asked_to_join_as_observer_should_refuse() {
    let (voters, mut listeners) = bind_voters(1).await;
    let dir = tempfile::tempdir().unwrap();
    let node = start(test_config(1, &voters, dir.path()), listeners.remove(0)).await;
    match node.join_as_observer().await {
        Err(RaftQuorumError::NotAnObserver { node_id: 1 }) => {}
        other => panic!("{other:?}"),
    }
    node.shutdown().await;
}
