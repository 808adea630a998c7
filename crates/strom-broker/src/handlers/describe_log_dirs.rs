//! DescribeLogDirs: the one log directory (`log.dirs`) with the size of every partition
//! in it (segment files, as Kafka counts), and from v4 the file system's total and usable
//! bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::state::Broker;

/// (total, usable) bytes of the file system holding `path`, or -1s when unknown.
fn disk_bytes(path: &std::path::Path) -> (i64, i64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return (-1, -1);
    };
    // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return (-1, -1);
    }
    let block = stat.f_frsize as i64;
    (
        (stat.f_blocks as i64).saturating_mul(block),
        (stat.f_bavail as i64).saturating_mul(block),
    )
}

pub fn handle(broker: &Arc<Broker>, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let image = broker.image();
    // topic name -> partition -> size
    let mut sizes: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    for partition in broker.partitions().all() {
        let wanted = match &request.topics {
            None => true,
            Some(topics) => topics.iter().any(|t| {
                t.topic.0.as_str() == partition.topic && t.partitions.contains(&partition.index)
            }),
        };
        if !wanted || image.topic(&partition.topic).is_none() {
            continue;
        }
        let size = partition.log.lock().size_bytes() as i64;
        sizes
            .entry(partition.topic.clone())
            .or_default()
            .insert(partition.index, size);
    }
    let topics = sizes
        .into_iter()
        .map(|(name, partitions)| {
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, size)| {
                            DescribeLogDirsPartition::default()
                                .with_partition_index(index)
                                .with_partition_size(size)
                                .with_offset_lag(0)
                                .with_is_future_key(false)
                        })
                        .collect(),
                )
        })
        .collect();
    let dir = &broker.config().log_dirs;
    let (total_bytes, usable_bytes) = disk_bytes(dir);
    let absolute = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(absolute.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(total_bytes)
        .with_usable_bytes(usable_bytes)])
}
