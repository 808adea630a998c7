//! An [`InternalLog`] in memory, for tests: every partition is led by this node until told
//! otherwise, and a write commits at once unless its partition is stalled (a stopped
//! follower: its writes stay uncommitted until the stall ends or leadership moves).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use strom_protocol::ErrorCode;

use crate::log::{
    BoxFuture, InternalLog, InternalTopic, LogError, Pending, ReplayItem, TxnMarker, Writer,
};

#[derive(Default)]
struct PartitionState {
    items: Vec<ReplayItem>,
    /// Leader epoch while this node leads the partition.
    leader_epoch: Option<i32>,
    high_watermark: usize,
    stalled: bool,
}

#[derive(Default)]
struct Topics {
    /// Topic name -> its partitions.
    topics: HashMap<String, Vec<PartitionState>>,
}

struct Inner {
    topics: Mutex<Topics>,
    /// Markers handed to other leaders.
    sent: Mutex<Vec<(i32, String, i32, TxnMarker)>>,
    /// Bumped on every change that may resolve a [`Pending`].
    changed: watch::Sender<u64>,
}

/// See the module documentation. Clones share one log.
#[derive(Clone)]
pub struct MemoryLog {
    inner: Arc<Inner>,
}

impl Default for MemoryLog {
    fn default() -> Self {
        MemoryLog {
            inner: Arc::new(Inner {
                topics: Mutex::new(Topics::default()),
                sent: Mutex::new(Vec::new()),
                changed: watch::channel(0).0,
            }),
        }
    }
}

impl MemoryLog {
    fn notify(&self) {
        self.inner.changed.send_modify(|n| *n += 1);
    }

    /// Holds back the commits of partition `index` (`true`) or lets them through.
    pub fn set_stalled(&self, topic: &str, index: i32, stalled: bool) {
        self.partition_mut(topic, index, |p| {
            p.stalled = stalled;
            if !stalled {
                p.high_watermark = p.items.len();
            }
        });
        self.notify();
    }

    /// Moves the leadership of partition `index`: `Some(epoch)` = this node leads it in
    /// that epoch, `None` = another node does.
    pub fn set_leader(&self, topic: &str, index: i32, epoch: Option<i32>) {
        self.partition_mut(topic, index, |p| p.leader_epoch = epoch);
        self.notify();
    }

    /// The items of a partition (what a replay would see), committed or not.
    pub fn items(&self, topic: &str, index: i32) -> Vec<ReplayItem> {
        let topics = self.inner.topics.lock();
        topics
            .topics
            .get(topic)
            .and_then(|ps| ps.get(index as usize))
            .map(|p| p.items.clone())
            .unwrap_or_default()
    }

    /// Appends a transaction marker to a partition (as a marker write would).
    pub fn append_marker(&self, topic: &str, index: i32, producer_id: i64, commit: bool) {
        self.partition_mut(topic, index, |p| {
            p.items.push(ReplayItem::Marker {
                partition: index,
                producer_id,
                commit,
            });
            if !p.stalled {
                p.high_watermark = p.items.len();
            }
        });
        self.notify();
    }

    fn partition_mut<R>(
        &self,
        topic: &str,
        index: i32,
        f: impl FnOnce(&mut PartitionState) -> R,
    ) -> Option<R> {
        let mut topics = self.inner.topics.lock();
        let p = topics
            .topics
            .get_mut(topic)?
            .get_mut(usize::try_from(index).ok()?)?;
        Some(f(p))
    }

    /// Markers sent to other leaders ([`InternalLog::send_markers`]), in order: (leader,
    /// topic, partition, marker).
    pub fn sent_markers(&self) -> Vec<(i32, String, i32, TxnMarker)> {
        self.inner.sent.lock().clone()
    }

    /// Resolves when partition `index` commits `end` items; fails when this node stops
    /// leading it first.
    fn wait(&self, topic: &'static str, index: i32, end: usize) -> Pending {
        self.wait_named(topic.to_string(), topic, index, end)
    }

    /// [`Self::wait`] for any topic; `label` names it in errors.
    fn wait_named(&self, topic: String, label: &'static str, index: i32, end: usize) -> Pending {
        let log = self.clone();
        let mut changed = self.inner.changed.subscribe();
        Pending::new(async move {
            let topic = topic;
            loop {
                changed.borrow_and_update();
                let state = log.partition_mut(&topic, index, |p| {
                    (p.leader_epoch.is_some(), p.high_watermark >= end)
                });
                match state {
                    Some((_, true)) => return Ok(()),
                    Some((true, false)) => {}
                    _ => {
                        return Err(LogError::NotLeader {
                            topic: label,
                            partition: index,
                        })
                    }
                }
                if changed.changed().await.is_err() {
                    return Err(LogError::Other("the log was dropped".into()));
                }
            }
        })
    }
}

impl InternalLog for MemoryLog {
    fn partition_count(&self, topic: &str) -> Option<i32> {
        let topics = self.inner.topics.lock();
        topics.topics.get(topic).map(|ps| ps.len() as i32)
    }

    fn led_partitions(&self, topic: &str) -> Vec<(i32, i32)> {
        let topics = self.inner.topics.lock();
        topics.topics.get(topic).map_or_else(Vec::new, |ps| {
            ps.iter()
                .enumerate()
                .filter_map(|(i, p)| p.leader_epoch.map(|epoch| (i as i32, epoch)))
                .collect()
        })
    }

    fn ensure_created(&self, topic: InternalTopic) -> BoxFuture<'_, Result<(), LogError>> {
        Box::pin(async move {
            let mut topics = self.inner.topics.lock();
            topics
                .topics
                .entry(topic.name.to_string())
                .or_insert_with(|| {
                    (0..topic.partitions.max(1))
                        .map(|_| PartitionState {
                            leader_epoch: Some(0),
                            ..PartitionState::default()
                        })
                        .collect()
                });
            Ok(())
        })
    }

    fn replay(
        &self,
        topic: &'static str,
        index: i32,
    ) -> BoxFuture<'_, Result<Vec<ReplayItem>, LogError>> {
        Box::pin(async move { Ok(self.items(topic, index)) })
    }

    fn append(
        &self,
        topic: &'static str,
        index: i32,
        entries: Vec<(Bytes, Option<Bytes>)>,
        transactional: Option<Writer>,
    ) -> Result<Pending, LogError> {
        if entries.is_empty() {
            return Ok(Pending::none());
        }
        let end = self
            .partition_mut(topic, index, |p| {
                p.leader_epoch?;
                for (key, value) in entries {
                    p.items.push(ReplayItem::Record {
                        partition: index,
                        key,
                        value,
                        transactional,
                    });
                }
                if !p.stalled {
                    p.high_watermark = p.items.len();
                }
                Some(p.items.len())
            })
            .ok_or(LogError::NotHosted {
                topic,
                partition: index,
            })?
            .ok_or(LogError::NotLeader {
                topic,
                partition: index,
            })?;
        self.notify();
        Ok(self.wait(topic, index, end))
    }

    fn log_end(&self, topic: &'static str, index: i32) -> Pending {
        match self.partition_mut(topic, index, |p| p.items.len()) {
            Some(end) => self.wait(topic, index, end),
            None => Pending::none(),
        }
    }

    /// A marker on a partition led here is appended like a record; a partition led
    /// elsewhere is NOT_LEADER_OR_FOLLOWER; an unknown one UNKNOWN_TOPIC_OR_PARTITION.
    fn write_marker(
        &self,
        topic: &str,
        index: i32,
        marker: TxnMarker,
    ) -> Result<Pending, ErrorCode> {
        let end = self
            .partition_mut(topic, index, |p| {
                p.leader_epoch?;
                p.items.push(ReplayItem::Marker {
                    partition: index,
                    producer_id: marker.producer_id,
                    commit: marker.commit,
                });
                if !p.stalled {
                    p.high_watermark = p.items.len();
                }
                Some(p.items.len())
            })
            .ok_or(ErrorCode::UnknownTopicOrPartition)?
            .ok_or(ErrorCode::NotLeaderOrFollower)?;
        self.notify();
        Ok(self.wait_named(topic.to_string(), "a transaction's partition", index, end))
    }

    /// Node 1 leads what this node does not (node 0) lead.
    fn leader_of(&self, topic: &str, index: i32) -> i32 {
        match self.partition_mut(topic, index, |p| p.leader_epoch.is_some()) {
            Some(true) => 0,
            Some(false) => 1,
            None => -1,
        }
    }

    /// Recorded ([`MemoryLog::sent_markers`]) and appended to the partitions, as their
    /// leader would; answered at once.
    fn send_markers(
        &self,
        leader: i32,
        partitions: Vec<(String, i32)>,
        marker: TxnMarker,
    ) -> BoxFuture<'static, Result<(), ErrorCode>> {
        for (topic, index) in &partitions {
            self.inner
                .sent
                .lock()
                .push((leader, topic.clone(), *index, marker));
            self.append_marker(topic, *index, marker.producer_id, marker.commit);
        }
        Box::pin(async { Ok(()) })
    }
}
