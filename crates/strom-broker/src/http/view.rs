//! Read-only snapshots of broker state for the HTTP routes, taken one short lock at a time.

use std::collections::BTreeMap;

use crate::partition::Partition;
use crate::state::Broker;

/// Offsets and size of one hosted partition log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogView {
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub size_bytes: u64,
}

/// Reads a partition's offsets under its lock (a few field reads).
pub fn log_view(partition: &Partition) -> LogView {
    let log = partition.log.lock();
    LogView {
        log_start_offset: log.log_start_offset(),
        log_end_offset: log.log_end_offset(),
        size_bytes: log.size_bytes(),
    }
}

/// Every hosted partition, by (topic, partition), locked one after another.
pub fn all_logs(broker: &Broker) -> BTreeMap<(String, i32), LogView> {
    broker
        .partitions()
        .all()
        .iter()
        .map(|partition| {
            (
                (partition.topic.clone(), partition.index),
                log_view(partition),
            )
        })
        .collect()
}

/// One committed offset with the lag behind the partition's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedLag {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
    /// `None` when the partition is not hosted here (deleted topic).
    pub log_end_offset: Option<i64>,
    /// `log_end_offset - committed_offset`, never negative; `None` when unknown.
    pub lag: Option<i64>,
}

/// Committed offsets of `group` (or of every group) with their lag. The coordinator lock is
/// held only to copy the offsets; log ends are read after it is released.
pub fn committed_lag(
    broker: &Broker,
    group: Option<&str>,
    logs: &BTreeMap<(String, i32), LogView>,
) -> Vec<CommittedLag> {
    let committed: Vec<(String, String, i32, i64)> = {
        let mut committed = Vec::new();
        broker.groups().read_all(|state| {
            committed.extend(
                state
                    .offsets
                    .iter()
                    .filter(|(id, _)| group.is_none_or(|wanted| wanted == id.as_str()))
                    .flat_map(|(id, offsets)| {
                        offsets.iter().map(move |((topic, partition), value)| {
                            (id.clone(), topic.clone(), *partition, value.offset)
                        })
                    }),
            )
        });
        committed
    };
    let mut out: Vec<CommittedLag> = committed
        .into_iter()
        .map(|(group, topic, partition, committed_offset)| {
            let log_end_offset = logs
                .get(&(topic.clone(), partition))
                .map(|log| log.log_end_offset);
            CommittedLag {
                lag: log_end_offset.map(|end| (end - committed_offset).max(0)),
                group,
                topic,
                partition,
                committed_offset,
                log_end_offset,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.group, &a.topic, a.partition).cmp(&(&b.group, &b.topic, b.partition)));
    out
}
