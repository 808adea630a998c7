//! The transaction coordinator's runtime over the in-memory log: shards of
//! `__transaction_state` serve their transactional ids independently.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use strom_protocol::ErrorCode;

use super::runtime::{ProducerIds, TransactionCoordinator, TxnRuntimeConfig};
use super::state::{ProducerIdAndEpoch, TxnLimits, TxnResult};
use super::TRANSACTION_STATE_TOPIC;
use crate::clock::ManualClock;
use crate::group::{GroupConfig, GroupCoordinator, GroupRuntimeConfig, OFFSETS_TOPIC};
use crate::log::{InternalLog, InternalTopic, ReplayItem};
use crate::memory_log::MemoryLog;

const PARTITIONS: i32 = 4;
const DATA: &str = "data";

struct Counter(AtomicI64);

impl ProducerIds for Counter {
    fn next_producer_id(&self) -> Result<i64, String> {
        Ok(self.0.fetch_add(1, Ordering::SeqCst))
    }
}

fn topic(name: &'static str) -> InternalTopic {
    InternalTopic {
        name,
        partitions: PARTITIONS,
        replication_factor: 1,
        segment_bytes: 1 << 20,
    }
}

async fn coordinator(log: &MemoryLog) -> Arc<TransactionCoordinator> {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let groups = Arc::new(GroupCoordinator::new(
        GroupRuntimeConfig {
            group: GroupConfig::default(),
            offsets_topic: topic(OFFSETS_TOPIC),
        },
        Arc::new(log.clone()),
        clock.clone(),
    ));
    log.ensure_created(topic(DATA)).await.unwrap();
    TransactionCoordinator::new(
        TxnRuntimeConfig {
            limits: TxnLimits {
                max_timeout_ms: 900_000,
                id_expiration_ms: 604_800_000,
            },
            state_topic: topic(TRANSACTION_STATE_TOPIC),
            abort_timed_out_interval_ms: 10_000,
            remove_expired_interval_ms: 3_600_000,
        },
        Arc::new(log.clone()),
        clock,
        Arc::new(Counter(AtomicI64::new(1000))),
        groups,
    )
}

/// A transactional id that lives in `__transaction_state` partition `index`.
fn id_in(index: i32, tag: &str) -> String {
    (0..)
        .map(|n| format!("{tag}-{n}"))
        .find(|id| crate::partition_for(id, PARTITIONS) == index)
        .unwrap_or_default()
}

/// One whole transaction of one record's partition: InitProducerId, AddPartitions, EndTxn.
async fn one_transaction(
    coordinator: &TransactionCoordinator,
    transactional_id: &str,
    partition: i32,
) -> Result<ProducerIdAndEpoch, ErrorCode> {
    let producer = coordinator
        .init_producer_id(transactional_id, 60_000, None)
        .await?;
    coordinator
        .add_partitions(transactional_id, producer, &[(DATA.to_string(), partition)])
        .await?;
    coordinator
        .end_transaction(transactional_id, producer, TxnResult::Commit, false)
        .await?;
    Ok(producer)
}

fn commit_markers(log: &MemoryLog, partition: i32, producer_id: i64) -> usize {
    log.items(DATA, partition)
        .iter()
        .filter(|item| {
            matches!(item, ReplayItem::Marker { producer_id: p, commit: true, .. } if *p == producer_id)
        })
        .count()
}

#[tokio::test]
async fn a_stalled_state_partition_delays_no_transaction_of_another() {
    let log = MemoryLog::default();
    let coordinator = coordinator(&log).await;
    coordinator.ensure_loaded().await.unwrap();
    let stalled_id = id_in(0, "stalled");
    let free_id = id_in(1, "free");
    // A stopped follower of partition 0: its writes are never committed meanwhile.
    log.set_stalled(TRANSACTION_STATE_TOPIC, 0, true);
    let waiting = {
        let coordinator = coordinator.clone();
        let stalled_id = stalled_id.clone();
        tokio::spawn(async move { one_transaction(&coordinator, &stalled_id, 0).await })
    };
    // Transactions of partition 1 go on, several in a row, while partition 0 waits.
    let done = tokio::time::timeout(Duration::from_secs(5), async {
        let mut last = None;
        for _ in 0..3 {
            last = Some(one_transaction(&coordinator, &free_id, 1).await);
        }
        last
    })
    .await
    .expect("transactions of another state partition must not wait for the stalled one");
    let producer = done.unwrap().unwrap();
    assert!(commit_markers(&log, 1, producer.producer_id) >= 1);
    assert!(
        !waiting.is_finished(),
        "the stalled partition's answer came before its commit"
    );
    // Once the follower is back, the stalled id's transaction completes too.
    log.set_stalled(TRANSACTION_STATE_TOPIC, 0, false);
    let stalled = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the stalled transaction ends once its partition commits")
        .unwrap()
        .unwrap();
    assert_eq!(commit_markers(&log, 0, stalled.producer_id), 1);
}
