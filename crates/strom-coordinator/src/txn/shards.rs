//! The transaction coordinator's shards: one [`TxnStateMachine`] and lock per
//! `__transaction_state` partition this node leads, replayed and dropped on its own when
//! the partition's leadership moves, so loading one partition delays no transactional id of
//! another.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;
use strom_protocol::ErrorCode;
use tracing::{info, warn};

use super::records;
use super::runtime::{Loading, TransactionCoordinator, TxnShard, TRANSACTION_STATE_TOPIC};
use super::state::TxnStateMachine;
use crate::log::ReplayItem;

/// Replays of one partition a request tries while its leadership keeps moving.
const LOAD_ROUNDS_MAX: usize = 3;

impl TransactionCoordinator {
    pub(super) fn is_current(&self, index: i32, epoch: i32) -> bool {
        crate::shards::is_current(&self.shards, index, epoch)
    }

    /// Creates `__transaction_state` unless it exists; the group coordinator is loaded
    /// first (transactional offset commits settle against its state).
    async fn ensure_topic(&self) -> Result<(), ErrorCode> {
        self.groups.ensure_loaded().await?;
        crate::shards::ensure_topic(
            self.log.as_ref(),
            &self.create_lock,
            self.is_loaded(),
            TRANSACTION_STATE_TOPIC,
            &self.config.state_topic,
        )
        .await
    }

    /// Drops the shards of partitions not led any more, or led in another epoch.
    fn drop_stale(&self, led: &[(i32, i32)]) {
        if !crate::shards::drop_stale(&self.shards, led).is_empty() {
            info!("transaction coordinator gave up state partitions led elsewhere or in an older epoch");
        }
    }

    /// Replays partition `index` into a new shard (not installed if the leadership moved
    /// meanwhile); false when another request is replaying it now.
    async fn load_shard(&self, index: i32, epoch: i32) -> Result<bool, ErrorCode> {
        if !self.loading.lock().insert(index) {
            return Ok(false);
        }
        let _loading = Loading(&self.loading, index);
        let items = match self.log.replay(TRANSACTION_STATE_TOPIC, index).await {
            Ok(items) => items,
            Err(error) => {
                warn!(partition = index, %error, "transaction coordinator load failed");
                return Err(ErrorCode::CoordinatorNotAvailable);
            }
        };
        let records = items.len();
        let mut state = TxnStateMachine::new(self.config.limits);
        for item in items {
            let ReplayItem::Record { key, value, .. } = item else {
                continue;
            };
            let Ok(Some(transactional_id)) = records::decode_key(&key) else {
                continue;
            };
            match value {
                None => state.remove(&transactional_id),
                Some(value) => match records::decode_value(&transactional_id, &value) {
                    Ok(metadata) => state.install(metadata),
                    Err(error) => {
                        warn!(%transactional_id, %error, "skipping undecodable transaction record")
                    }
                },
            }
        }
        // The leadership may have moved during the replay: install only a current shard.
        if !self
            .log
            .led_partitions(TRANSACTION_STATE_TOPIC)
            .contains(&(index, epoch))
        {
            return Ok(true);
        }
        info!(
            partition = index,
            leader_epoch = epoch,
            records,
            "transaction coordinator loaded a state partition"
        );
        self.shards.write().insert(
            index,
            TxnShard {
                epoch,
                state: Arc::new(Mutex::new(state)),
            },
        );
        Ok(true)
    }

    /// Makes sure `__transaction_state` exists and every partition of it this broker leads
    /// is replayed (again, after a leadership change), drops the partitions led elsewhere
    /// now, and finishes transactions a restart or a leadership change caught between
    /// Prepare and Complete. COORDINATOR_LOAD_IN_PROGRESS while another request loads a
    /// partition.
    pub async fn ensure_loaded(&self) -> Result<(), ErrorCode> {
        self.ensure_topic().await?;
        let led = self.log.led_partitions(TRANSACTION_STATE_TOPIC);
        self.drop_stale(&led);
        let mut busy = false;
        let mut loaded = false;
        for &(index, epoch) in &led {
            if self.is_current(index, epoch) {
                continue;
            }
            match self.load_shard(index, epoch).await? {
                true => loaded = true,
                false => busy = true,
            }
        }
        if led.iter().all(|(i, e)| self.is_current(*i, *e)) {
            self.topic_ready.store(true, Ordering::Release);
        }
        if loaded {
            self.complete_preparing();
        }
        if busy {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        }
        Ok(())
    }

    /// What every request about one transactional id needs first: the topic exists, this
    /// broker leads the id's partition (NOT_COORDINATOR otherwise) and that partition is
    /// loaded. Only that partition is replayed if it is not, so loading one partition
    /// delays no id of another.
    pub(super) async fn ensure_id(&self, transactional_id: &str) -> Result<(), ErrorCode> {
        // The common case, checked without the topic and group steps below: the id's
        // partition is led here and loaded in its current epoch.
        if self.is_loaded() {
            if let Ok(index) = self.state_partition(transactional_id) {
                let led = self.log.led_partitions(TRANSACTION_STATE_TOPIC);
                let epoch = led.iter().find(|(i, _)| *i == index).map(|(_, e)| *e);
                if epoch.is_some_and(|epoch| self.is_current(index, epoch)) {
                    return Ok(());
                }
            }
        }
        self.ensure_topic().await?;
        let index = self.state_partition(transactional_id)?;
        // A leadership change during the replay (a new epoch) replays again.
        for _ in 0..LOAD_ROUNDS_MAX {
            let led = self.log.led_partitions(TRANSACTION_STATE_TOPIC);
            self.drop_stale(&led);
            let Some(&(_, epoch)) = led.iter().find(|(i, _)| *i == index) else {
                return Err(ErrorCode::NotCoordinator);
            };
            if self.is_current(index, epoch) {
                return self.check_coordinator(transactional_id);
            }
            if !self.load_shard(index, epoch).await? {
                return Err(ErrorCode::CoordinatorLoadInProgress);
            }
            if led.iter().all(|(i, e)| self.is_current(*i, *e)) {
                self.topic_ready.store(true, Ordering::Release);
            }
            self.complete_preparing();
        }
        Err(ErrorCode::CoordinatorLoadInProgress)
    }

    /// The state machine of `transactional_id`'s partition, with the leader epoch it was
    /// loaded in (the coordinator epoch of its markers): NOT_COORDINATOR when no loaded
    /// shard holds it (led elsewhere, or its leadership just moved).
    pub(super) fn shard_of(
        &self,
        transactional_id: &str,
    ) -> Result<(Arc<Mutex<TxnStateMachine>>, i32), ErrorCode> {
        let index = self.state_partition(transactional_id)?;
        if self.loading.lock().contains(&index) {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        }
        self.shards
            .read()
            .get(&index)
            .map(|shard| (shard.state.clone(), shard.epoch))
            .ok_or(ErrorCode::NotCoordinator)
    }

    /// Reads the state of `transactional_id`'s shard (None: no loaded shard holds it).
    pub fn read_id<R>(
        &self,
        transactional_id: &str,
        f: impl FnOnce(&TxnStateMachine) -> R,
    ) -> Option<R> {
        let (shard, _) = self.shard_of(transactional_id).ok()?;
        let state = shard.lock();
        Some(f(&state))
    }

    /// Reads every loaded shard, one at a time, in partition order.
    pub fn read_all(&self, mut f: impl FnMut(&TxnStateMachine)) {
        for shard in self.all_shards() {
            f(&shard.lock());
        }
    }

    pub(super) fn all_shards(&self) -> Vec<Arc<Mutex<TxnStateMachine>>> {
        let mut shards: Vec<(i32, Arc<Mutex<TxnStateMachine>>)> = self
            .shards
            .read()
            .iter()
            .map(|(index, shard)| (*index, shard.state.clone()))
            .collect();
        shards.sort_unstable_by_key(|(index, _)| *index);
        shards.into_iter().map(|(_, state)| state).collect()
    }
}
