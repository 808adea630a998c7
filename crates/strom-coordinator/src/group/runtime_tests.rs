//! The group coordinator's runtime over the in-memory log: shards load, commit and unload
//! independently.

use std::sync::Arc;

use strom_protocol::ErrorCode;

use super::records::OffsetValue;
use super::runtime::{not_committed_code, GroupCoordinator, GroupRuntimeConfig};
use super::{GroupConfig, OFFSETS_TOPIC};
use crate::clock::ManualClock;
use crate::log::InternalTopic;
use crate::memory_log::MemoryLog;

const PARTITIONS: i32 = 4;

fn coordinator(log: &MemoryLog) -> GroupCoordinator {
    GroupCoordinator::new(
        GroupRuntimeConfig {
            group: GroupConfig::default(),
            offsets_topic: InternalTopic {
                name: OFFSETS_TOPIC,
                partitions: PARTITIONS,
                replication_factor: 1,
                segment_bytes: 1 << 20,
            },
        },
        Arc::new(log.clone()),
        Arc::new(ManualClock::new(1_000_000)),
    )
}

/// A group id that lives in offsets partition `index`.
fn group_in(index: i32, tag: &str) -> String {
    (0..)
        .map(|n| format!("{tag}-{n}"))
        .find(|id| crate::partition_for(id, PARTITIONS) == index)
        .unwrap_or_default()
}

/// OffsetCommit's path for one partition of topic `t`: check, append and apply under the
/// shard lock, then wait for the commit with no lock held.
async fn commit(coordinator: &GroupCoordinator, group: &str, offset: i64) -> Result<(), ErrorCode> {
    coordinator.ensure_coordinator(group).await?;
    let pending = {
        let mut shard = coordinator.lock_group(group)?;
        let value = OffsetValue {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: coordinator.now_ms(),
        };
        let commits = vec![("t".to_string(), 0, value)];
        let pending = shard
            .write_offsets(group, &commits)
            .map_err(|e| not_committed_code(&e))?;
        for (topic, partition, value) in commits {
            shard.apply_commit(group, &topic, partition, value);
        }
        pending
    };
    pending
        .committed()
        .await
        .map_err(|e| not_committed_code(&e))
}

fn committed(coordinator: &GroupCoordinator, group: &str) -> Option<i64> {
    coordinator.read_group(group, |state| {
        state.committed(group, "t", 0).map(|v| v.offset)
    })
}

#[tokio::test]
async fn given_a_stalled_offsets_partition_when_groups_commit_should_not_delay_other_partitions() {
    let log = MemoryLog::default();
    let coordinator = Arc::new(coordinator(&log));
    coordinator.ensure_loaded().await.unwrap();
    let stuck = group_in(0, "stuck");
    let others: Vec<String> = (1..PARTITIONS).map(|i| group_in(i, "free")).collect();

    // A follower of partition 0 stopped: its writes are appended but never committed.
    log.set_stalled(OFFSETS_TOPIC, 0, true);
    let waiting = {
        let coordinator = coordinator.clone();
        let stuck = stuck.clone();
        tokio::spawn(async move { commit(&coordinator, &stuck, 7).await })
    };
    tokio::task::yield_now().await;
    for round in 0..50 {
        for group in &others {
            commit(&coordinator, group, round).await.unwrap();
        }
    }
    for group in &others {
        assert_eq!(committed(&coordinator, group), Some(49));
    }
    assert!(
        !waiting.is_finished(),
        "the stalled partition's commit was answered"
    );

    // The follower catches up: the parked commit is answered.
    log.set_stalled(OFFSETS_TOPIC, 0, false);
    waiting.await.unwrap().unwrap();
    assert_eq!(committed(&coordinator, &stuck), Some(7));
}

#[tokio::test]
async fn given_a_partition_led_elsewhere_when_it_comes_back_should_reload_only_that_shard() {
    let log = MemoryLog::default();
    let coordinator = coordinator(&log);
    coordinator.ensure_loaded().await.unwrap();
    let moving = group_in(2, "moving");
    let staying = group_in(3, "staying");
    commit(&coordinator, &moving, 5).await.unwrap();
    commit(&coordinator, &staying, 6).await.unwrap();

    log.set_leader(OFFSETS_TOPIC, 2, None);
    assert_eq!(
        commit(&coordinator, &moving, 9).await,
        Err(ErrorCode::NotCoordinator)
    );
    assert_eq!(
        committed(&coordinator, &moving),
        None,
        "a dropped shard is not read"
    );
    commit(&coordinator, &staying, 8).await.unwrap();
    assert_eq!(
        coordinator.loaded_partitions(),
        vec![(0, 0), (1, 0), (3, 0)]
    );

    // Back in a new epoch: replayed from the log, the others untouched.
    log.set_leader(OFFSETS_TOPIC, 2, Some(1));
    coordinator.ensure_coordinator(&moving).await.unwrap();
    assert_eq!(committed(&coordinator, &moving), Some(5));
    assert_eq!(committed(&coordinator, &staying), Some(8));
    assert_eq!(
        coordinator.loaded_partitions(),
        vec![(0, 0), (1, 0), (2, 1), (3, 0)]
    );
}

#[tokio::test]
async fn given_a_leadership_loss_while_a_commit_waits_should_answer_not_coordinator() {
    let log = MemoryLog::default();
    let coordinator = Arc::new(coordinator(&log));
    coordinator.ensure_loaded().await.unwrap();
    let group = group_in(1, "lost");
    log.set_stalled(OFFSETS_TOPIC, 1, true);
    let waiting = {
        let coordinator = coordinator.clone();
        let group = group.clone();
        tokio::spawn(async move { commit(&coordinator, &group, 3).await })
    };
    while log.items(OFFSETS_TOPIC, 1).is_empty() {
        tokio::task::yield_now().await;
    }
    log.set_leader(OFFSETS_TOPIC, 1, None);
    assert_eq!(waiting.await.unwrap(), Err(ErrorCode::NotCoordinator));
}

#[tokio::test]
async fn given_a_restart_when_loaded_should_replay_every_partition() {
    let log = MemoryLog::default();
    let groups: Vec<String> = (0..PARTITIONS).map(|i| group_in(i, "replayed")).collect();
    {
        let coordinator = coordinator(&log);
        for (n, group) in groups.iter().enumerate() {
            commit(&coordinator, group, n as i64 * 10).await.unwrap();
        }
    }
    let restarted = coordinator(&log);
    assert!(!restarted.is_loaded());
    restarted.ensure_loaded().await.unwrap();
    assert!(restarted.is_loaded());
    for (n, group) in groups.iter().enumerate() {
        assert_eq!(committed(&restarted, group), Some(n as i64 * 10));
    }
}
