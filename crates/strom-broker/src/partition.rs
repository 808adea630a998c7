//! The partitions this broker hosts, keyed by topic id and index, kept in step with the
//! metadata image.
//!
//! Each partition's log sits behind its own mutex: appends to one partition are serial (they
//! must be, offsets are assigned in order) and never wait for another partition. A read holds
//! the lock only to locate a file range; the bytes are sent after it is released.
//!
//! Each partition is a leader or a follower, as the image says ([`ReplicaRole`]). A leader
//! tracks its followers and the high watermark in a [`LeaderState`]; a follower's log is
//! filled by the replica fetcher (`crate::replica_fetcher`) and it learns the high
//! watermark from its leader. Lock order: `log` before `role`, never the other way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use strom_controller::MetadataImage;
use strom_storage::{LogConfig, PartitionLog};
use tracing::{info, warn};
use uuid::Uuid;

use crate::config::{log_config_for_topic, BrokerConfig};
use crate::replication::leader::LeaderState;

/// File in each partition directory naming the topic id it belongs to, so a directory left
/// by a deleted topic is never mistaken for a new topic of the same name.
const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// Whether this broker leads a partition or follows its leader.
#[derive(Debug)]
pub enum ReplicaRole {
    Leader(LeaderState),
    /// Following `leader` (-1: the partition has no leader, it is offline).
    Follower {
        leader: i32,
    },
}

pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    pub log: Mutex<PartitionLog>,
    pub role: Mutex<ReplicaRole>,
    leader_epoch: AtomicI32,
    /// The partition epoch of the image entry the role was set from (AlterPartition).
    partition_epoch: AtomicI32,
    high_watermark: AtomicI64,
    /// A follower that started following a new leader epoch: truncate to the epoch
    /// boundary (OffsetForLeaderEpoch) before fetching.
    needs_truncation: AtomicBool,
}

impl Partition {
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub fn partition_epoch(&self) -> i32 {
        self.partition_epoch.load(Ordering::Acquire)
    }

    /// The high watermark: consumers read below it; acks=all waits for it.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub fn is_leader(&self) -> bool {
        matches!(*self.role.lock(), ReplicaRole::Leader(_))
    }

    /// The leader this replica follows, if it is a follower.
    pub fn followed_leader(&self) -> Option<i32> {
        match *self.role.lock() {
            ReplicaRole::Follower { leader } if leader >= 0 => Some(leader),
            _ => None,
        }
    }

    pub fn needs_truncation(&self) -> bool {
        self.needs_truncation.load(Ordering::Acquire)
    }

    pub fn truncated(&self) {
        self.needs_truncation.store(false, Ordering::Release);
    }

    /// The follower's log and the leader's disagree: truncate again before fetching.
    pub fn needs_truncation_again(&self) {
        self.needs_truncation.store(true, Ordering::Release);
    }

    /// Runs a leader append under the log lock with this replica's leader epoch, then moves
    /// the high watermark. `None` when this replica is not the leader (the caller answers
    /// NOT_LEADER_OR_FOLLOWER); the append itself decides its own success.
    pub fn append_as_leader<T, E>(
        &self,
        now_ms: i64,
        append: impl FnOnce(&mut PartitionLog, i32) -> Result<T, E>,
    ) -> Option<Result<T, E>> {
        let mut log = self.log.lock();
        // One role lock for the check and the high-watermark update (lock order: log,
        // then role), so appends are seen in order.
        let mut role = self.role.lock();
        let ReplicaRole::Leader(state) = &mut *role else {
            return None;
        };
        let result = append(&mut log, self.leader_epoch());
        if result.is_ok() {
            if let Some(high_watermark) = state.on_local_append(log.log_end_offset(), now_ms) {
                self.high_watermark.store(high_watermark, Ordering::Release);
            }
        }
        Some(result)
    }

    /// acks=all: whether the write ending at `required_offset` (exclusive) is committed.
    /// `Ok(false)`: keep waiting.
    pub fn check_committed(
        &self,
        required_offset: i64,
        min_insync_replicas: usize,
    ) -> Result<bool, strom_protocol::ErrorCode> {
        match &*self.role.lock() {
            ReplicaRole::Leader(state) => state
                .check_committed(required_offset, min_insync_replicas)
                .map_err(|_| strom_protocol::ErrorCode::NotEnoughReplicasAfterAppend),
            ReplicaRole::Follower { .. } => Err(strom_protocol::ErrorCode::NotLeaderOrFollower),
        }
    }

    /// Stores a high watermark computed elsewhere (a leader's state, or what a follower
    /// learned from its leader, capped by its own log end).
    pub fn set_high_watermark(&self, high_watermark: i64) {
        self.high_watermark.store(high_watermark, Ordering::Release);
    }

    /// Stores the high watermark a follower learned from `leader`, only while it still
    /// follows that leader (checked under the role lock). A fetch answer that lands just
    /// after this replica became leader must not overwrite the leader's high watermark: the
    /// leader publishes its own only when it advances, so consumers would be held below a
    /// stale value (seen after a network partition healed: acknowledged records past it
    /// were unreadable).
    pub fn set_follower_high_watermark(&self, leader: i32, high_watermark: i64) {
        let role = self.role.lock();
        if matches!(*role, ReplicaRole::Follower { leader: followed } if followed == leader) {
            self.high_watermark.store(high_watermark, Ordering::Release);
        }
    }

    /// Sets the role from the image's entry for this partition. A new leader epoch on a
    /// follower means truncating before fetching again.
    fn apply_image_state(
        &self,
        node_id: i32,
        state: &strom_controller::PartitionState,
        log_end: i64,
        now_ms: i64,
    ) {
        let mut role = self.role.lock();
        let epoch_changed = self.leader_epoch() != state.leader_epoch;
        if state.leader == node_id {
            match &mut *role {
                ReplicaRole::Leader(leader) if !epoch_changed => {
                    // A new partition epoch settles any pending ISR proposal, even when
                    // the committed ISR did not change.
                    if leader.isr() != state.isr.as_slice()
                        || self.partition_epoch() != state.partition_epoch
                    {
                        if let Some(high_watermark) = leader.apply_isr(state.isr.clone(), log_end) {
                            self.high_watermark.store(high_watermark, Ordering::Release);
                        }
                    }
                }
                _ => {
                    let isr = if state.isr.contains(&node_id) {
                        state.isr.clone()
                    } else {
                        vec![node_id]
                    };
                    let leader = LeaderState::new(
                        node_id,
                        state.leader_epoch,
                        state.replicas.clone(),
                        isr,
                        log_end,
                        self.high_watermark(),
                        now_ms,
                    );
                    self.high_watermark
                        .store(leader.high_watermark(), Ordering::Release);
                    *role = ReplicaRole::Leader(leader);
                }
            }
        } else {
            if epoch_changed
                || !matches!(*role, ReplicaRole::Follower { leader } if leader == state.leader)
            {
                self.needs_truncation.store(true, Ordering::Release);
            }
            *role = ReplicaRole::Follower {
                leader: state.leader,
            };
        }
        self.leader_epoch
            .store(state.leader_epoch, Ordering::Release);
        self.partition_epoch
            .store(state.partition_epoch, Ordering::Release);
    }
}

#[derive(Default)]
pub struct PartitionRegistry {
    partitions: RwLock<HashMap<(Uuid, i32), Arc<Partition>>>,
}

pub fn partition_dir(log_dirs: &Path, topic: &str, index: i32) -> PathBuf {
    log_dirs.join(format!("{topic}-{index}"))
}

fn read_topic_id(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA_FILE)).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("topic_id: "))
        .and_then(|id| Uuid::parse_str(id.trim()).ok())
}

fn write_topic_id(dir: &Path, topic_id: Uuid) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(PARTITION_METADATA_FILE);
    let tmp = dir.join(format!("{PARTITION_METADATA_FILE}.tmp"));
    std::fs::write(&tmp, format!("version: 0\ntopic_id: {topic_id}\n"))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(tmp, path)
}

#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("cannot open partition {topic}-{index} in {dir}: {source}")]
    Open {
        topic: String,
        index: i32,
        dir: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A partition of the image that this broker hosts and has not opened yet.
struct ToOpen {
    topic: String,
    topic_id: Uuid,
    index: i32,
    state: strom_controller::PartitionState,
    log_config: LogConfig,
}

/// Runs `open` over `items` on up to `threads` scoped threads (the caller's thread is one of
/// them), results in no particular order. Opening a log is mostly fsyncs of small files, so
/// it waits on the disk, not the CPU: a restarted broker with thousands of replicas opens
/// them several at a time, as Kafka's `num.recovery.threads.per.data.dir` does.
fn open_in_parallel<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    open: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.into_iter().map(open).collect();
    }
    let queue = Mutex::new(items);
    let next = || queue.lock().pop();
    let work = || {
        let mut done = Vec::new();
        while let Some(item) = next() {
            done.push(open(item));
        }
        done
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut results = work();
        for helper in helpers {
            match helper.join() {
                Ok(done) => results.extend(done),
                // A panic while opening stays a panic, as it was when opened one by one.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

/// Opens (creating if new) one partition's log directory and sets its role from the image.
fn open_partition(
    config: &BrokerConfig,
    item: ToOpen,
    now_ms: i64,
) -> Result<Partition, PartitionError> {
    let ToOpen {
        topic,
        topic_id,
        index,
        state,
        log_config,
    } = item;
    let dir = partition_dir(&config.log_dirs, &topic, index);
    let found = read_topic_id(&dir);
    if found != Some(topic_id) && dir.exists() {
        warn!(dir = %dir.display(), "removing partition directory of a deleted topic with the same name");
        if let Err(error) = std::fs::remove_dir_all(&dir) {
            warn!(dir = %dir.display(), %error, "cannot remove stale partition directory");
        }
    }
    let open_error = |source: Box<dyn std::error::Error + Send + Sync>| PartitionError::Open {
        topic: topic.clone(),
        index,
        dir: dir.clone(),
        source,
    };
    // A directory that already names this topic id keeps its file: rewriting it would cost
    // an fsync per partition on every start.
    if found != Some(topic_id) {
        write_topic_id(&dir, topic_id).map_err(|e| open_error(e.into()))?;
    }
    let log = PartitionLog::open(&dir, log_config, now_ms).map_err(|e| open_error(e.into()))?;
    info!(%topic, partition = index, log_end_offset = log.log_end_offset(), "partition opened");
    let log_end = log.log_end_offset();
    // A single replica is its own ISR: everything it has is committed. Otherwise the high
    // watermark is learned again from the replicas (Kafka checkpoints it; starting low only
    // delays consumers until the followers' first fetches).
    let high_watermark = if state.replicas.len() == 1 {
        log_end
    } else {
        log.log_start_offset()
    };
    let partition = Partition {
        topic,
        topic_id,
        index,
        log: Mutex::new(log),
        role: Mutex::new(ReplicaRole::Follower { leader: -1 }),
        leader_epoch: AtomicI32::new(-1),
        partition_epoch: AtomicI32::new(-1),
        high_watermark: AtomicI64::new(high_watermark),
        needs_truncation: AtomicBool::new(false),
    };
    partition.apply_image_state(config.node_id, &state, log_end, now_ms);
    Ok(partition)
}

impl PartitionRegistry {
    pub fn get(&self, topic_id: Uuid, index: i32) -> Option<Arc<Partition>> {
        self.partitions.read().get(&(topic_id, index)).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// Opens logs for partitions in `image` not yet open, and closes and deletes the logs of
    /// partitions no longer in it. Directories of deleted topics found at start-up (a crash
    /// between the metadata record and the directory removal) are deleted too.
    pub fn sync_with_image(
        &self,
        config: &BrokerConfig,
        image: &MetadataImage,
        now_ms: i64,
    ) -> Result<(), PartitionError> {
        let mut wanted: HashMap<
            (Uuid, i32),
            (String, strom_controller::PartitionState, LogConfig),
        > = HashMap::new();
        // Topic defaults come from the dynamic broker configs where some are set.
        let effective = crate::config::dynamic::effective(config, image);
        let defaults = effective.as_ref().unwrap_or(config);
        for topic in image.topics() {
            let log_config = log_config_for_topic(defaults, &topic.configs);
            for partition in &topic.partitions {
                if partition.replicas.contains(&config.node_id) {
                    wanted.insert(
                        (topic.topic_id, partition.partition),
                        (topic.name.clone(), partition.clone(), log_config.clone()),
                    );
                }
            }
        }
        let removed: Vec<Arc<Partition>> = {
            let mut map = self.partitions.write();
            let gone: Vec<(Uuid, i32)> = map
                .keys()
                .filter(|k| !wanted.contains_key(k))
                .cloned()
                .collect();
            gone.iter().filter_map(|k| map.remove(k)).collect()
        };
        for partition in removed {
            self.delete_partition(config, partition);
        }
        let mut to_open = Vec::new();
        for ((topic_id, index), (topic, state, log_config)) in wanted {
            if let Some(existing) = self.get(topic_id, index) {
                let mut log = existing.log.lock();
                log.set_config(log_config);
                let log_end = log.log_end_offset();
                existing.apply_image_state(config.node_id, &state, log_end, now_ms);
                continue;
            }
            to_open.push(ToOpen {
                topic,
                topic_id,
                index,
                state,
                log_config,
            });
        }
        // Each partition is listed as soon as it is open, so its replica fetcher and its
        // clients need not wait for the thousands opened with it.
        let opened = open_in_parallel(to_open, defaults.recovery_threads, |item| {
            let partition = open_partition(config, item, now_ms)?;
            self.partitions
                .write()
                .insert((partition.topic_id, partition.index), Arc::new(partition));
            Ok(())
        });
        // The others stay open; the next image retries the ones that failed.
        let first_error = opened.into_iter().find_map(Result::err);
        if let Some(error) = first_error {
            return Err(error);
        }
        // A Raft image may lag the cluster (a restarted node learns the commit point from
        // the leader): a directory absent from it may belong to a topic it has not caught
        // up with, so only the local log's image, replayed in full, may delete strays.
        if config.cluster.voters.is_empty() {
            self.remove_stray_dirs(config, image);
        }
        Ok(())
    }

    fn delete_partition(&self, config: &BrokerConfig, partition: Arc<Partition>) {
        let dir = partition_dir(&config.log_dirs, &partition.topic, partition.index);
        info!(topic = %partition.topic, partition = partition.index, "deleting partition");
        match Arc::try_unwrap(partition) {
            Ok(partition) => {
                if let Err(error) = partition.log.into_inner().delete() {
                    warn!(dir = %dir.display(), %error, "cannot delete partition log");
                }
            }
            // A request still holds it; its reads keep working on the open files.
            Err(_) => {
                if let Err(error) = std::fs::remove_dir_all(&dir) {
                    warn!(dir = %dir.display(), %error, "cannot delete partition directory");
                }
            }
        }
    }

    fn remove_stray_dirs(&self, config: &BrokerConfig, image: &MetadataImage) {
        let Ok(entries) = std::fs::read_dir(&config.log_dirs) else {
            return;
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            let Some(topic_id) = read_topic_id(&dir) else {
                continue;
            };
            if image.topic_by_id(topic_id).is_none() {
                warn!(dir = %dir.display(), "removing partition directory of a deleted topic");
                if let Err(error) = std::fs::remove_dir_all(&dir) {
                    warn!(dir = %dir.display(), %error, "cannot remove partition directory");
                }
            }
        }
    }

    /// Closes every log cleanly (flush, producer-state snapshot, clean-shutdown marker).
    pub fn close_all(&self) {
        let partitions: Vec<Arc<Partition>> =
            self.partitions.write().drain().map(|(_, p)| p).collect();
        for partition in partitions {
            let name = format!("{}-{}", partition.topic, partition.index);
            match Arc::try_unwrap(partition) {
                Ok(partition) => {
                    if let Err(error) = partition.log.into_inner().close() {
                        warn!(partition = %name, %error, "unclean close");
                    }
                }
                Err(partition) => {
                    if let Err(error) = partition.log.lock().flush() {
                        warn!(partition = %name, %error, "flush at shutdown failed");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_controller::PartitionState;

    fn state(leader: i32, leader_epoch: i32) -> PartitionState {
        PartitionState {
            partition: 0,
            replicas: vec![1, 2, 3],
            leader,
            leader_epoch,
            isr: vec![1, 2, 3],
            partition_epoch: leader_epoch,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    /// Replica 1 follows 2, then becomes leader; an answer from 2 that lands afterwards
    /// must leave the new leader's high watermark alone.
    #[test]
    fn given_replica_that_became_leader_when_old_leader_answer_lands_should_keep_its_high_watermark(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        let partition = Partition {
            topic: "t".into(),
            topic_id: Uuid::nil(),
            index: 0,
            log: Mutex::new(log),
            role: Mutex::new(ReplicaRole::Follower { leader: -1 }),
            leader_epoch: AtomicI32::new(-1),
            partition_epoch: AtomicI32::new(-1),
            high_watermark: AtomicI64::new(0),
            needs_truncation: AtomicBool::new(false),
        };
        partition.apply_image_state(1, &state(2, 0), 0, 0);
        partition.set_follower_high_watermark(2, 7);
        assert_eq!(
            partition.high_watermark(),
            7,
            "a follower learns from its leader"
        );
        partition.set_follower_high_watermark(3, 9);
        assert_eq!(
            partition.high_watermark(),
            7,
            "not from a replica it does not follow"
        );

        partition.apply_image_state(1, &state(1, 1), 0, 0);
        partition.set_high_watermark(12); // the new leader's own, published on advance
        partition.set_follower_high_watermark(2, 7);
        assert_eq!(
            partition.high_watermark(),
            12,
            "a late answer from the old leader"
        );
    }

    /// Every item is opened once, whatever the thread count, including more threads than
    /// items and none at all.
    #[test]
    fn given_items_when_opened_in_parallel_should_open_each_exactly_once() {
        for threads in [0, 1, 2, 8, 100] {
            let seen = Mutex::new(Vec::new());
            let results = open_in_parallel((0..37).collect(), threads, |item: i32| {
                seen.lock().push(item);
                item * 2
            });
            let mut seen = seen.into_inner();
            seen.sort_unstable();
            assert_eq!(seen, (0..37).collect::<Vec<_>>(), "threads = {threads}");
            let mut results = results;
            results.sort_unstable();
            assert_eq!(results, (0..37).map(|i| i * 2).collect::<Vec<_>>());
        }
    }

    /// A restart opens a partition whose directory already names its topic id without
    /// rewriting `partition.metadata` (an fsync per partition per start); a directory left by
    /// another topic of the same name is replaced.
    #[test]
    fn given_directory_of_same_topic_id_when_reopened_should_keep_its_metadata_file() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let mut raw = crate::config::RawConfig::new();
        raw.set("log.dirs", dir.path().to_str().unwrap()).unwrap();
        let config = BrokerConfig::from_raw(raw).unwrap();
        let topic_id = Uuid::from_u128(7);
        let item = |topic_id| ToOpen {
            topic: "t".into(),
            topic_id,
            index: 0,
            state: state(1, 0),
            log_config: LogConfig::default(),
        };
        let metadata = partition_dir(&config.log_dirs, "t", 0).join(PARTITION_METADATA_FILE);

        let first = open_partition(&config, item(topic_id), 0).unwrap();
        first.log.into_inner().close().unwrap();
        let inode = std::fs::metadata(&metadata).unwrap().ino();
        let again = open_partition(&config, item(topic_id), 0).unwrap();
        assert_eq!(read_topic_id(metadata.parent().unwrap()), Some(topic_id));
        assert_eq!(
            std::fs::metadata(&metadata).unwrap().ino(),
            inode,
            "partition.metadata was rewritten"
        );
        again.log.into_inner().close().unwrap();

        let other = Uuid::from_u128(8);
        let replaced = open_partition(&config, item(other), 0).unwrap();
        assert_eq!(read_topic_id(metadata.parent().unwrap()), Some(other));
        assert_eq!(replaced.topic_id, other);
    }
}
