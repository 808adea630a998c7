//! The steps both coordinators take on their shard maps: one shard per internal partition
//! this node leads, keyed by partition index and tagged with the leader epoch it was
//! replayed in.

use std::collections::HashMap;

use parking_lot::RwLock;
use strom_protocol::ErrorCode;
use tracing::warn;

use crate::log::{InternalLog, InternalTopic};

/// A shard's leader epoch.
pub(crate) trait Epoch {
    fn epoch(&self) -> i32;
}

/// Whether partition `index` has a shard loaded in leader epoch `epoch`.
pub(crate) fn is_current<S: Epoch>(
    shards: &RwLock<HashMap<i32, S>>,
    index: i32,
    epoch: i32,
) -> bool {
    shards
        .read()
        .get(&index)
        .is_some_and(|shard| shard.epoch() == epoch)
}

/// Drops the shards of partitions not led any more, or led in another epoch (those are
/// replayed again); other shards are not touched. The partitions dropped.
pub(crate) fn drop_stale<S: Epoch>(
    shards: &RwLock<HashMap<i32, S>>,
    led: &[(i32, i32)],
) -> Vec<i32> {
    let kept = |index: &i32, shard: &S| led.contains(&(*index, shard.epoch()));
    if shards
        .read()
        .iter()
        .all(|(index, shard)| kept(index, shard))
    {
        return Vec::new();
    }
    let mut dropped = Vec::new();
    shards.write().retain(|index, shard| {
        let keep = kept(index, shard);
        if !keep {
            dropped.push(*index);
        }
        keep
    });
    dropped
}

/// Creates the internal topic `name` (as `topic`) unless this coordinator is loaded or the
/// log has it already; one creation at a time (others are told the load is in progress).
pub(crate) async fn ensure_topic(
    log: &dyn InternalLog,
    create_lock: &tokio::sync::Mutex<()>,
    loaded: bool,
    name: &str,
    topic: &InternalTopic,
) -> Result<(), ErrorCode> {
    if loaded || log.partition_count(name).is_some() {
        return Ok(());
    }
    let Ok(_guard) = create_lock.try_lock() else {
        return Err(ErrorCode::CoordinatorLoadInProgress);
    };
    log.ensure_created(topic.clone()).await.map_err(|error| {
        warn!(%error, topic = name, "coordinator cannot create its internal topic");
        ErrorCode::CoordinatorNotAvailable
    })
}
