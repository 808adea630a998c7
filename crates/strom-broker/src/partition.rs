//! The partitions this broker hosts, keyed by topic id and index, kept in step with the
//! metadata image.
//!
//! Each partition's log sits behind its own mutex: appends to one partition are serial (they
//! must be, offsets are assigned in order) and never wait for another partition. A read holds
//! the lock only to locate a file range; the bytes are sent after it is released.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use strom_controller::MetadataImage;
use strom_storage::{LogConfig, PartitionLog};
use tracing::{info, warn};
use uuid::Uuid;

use crate::config::{log_config_for_topic, BrokerConfig};

/// File in each partition directory naming the topic id it belongs to, so a directory left
/// by a deleted topic is never mistaken for a new topic of the same name.
const PARTITION_METADATA_FILE: &str = "partition.metadata";

pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    pub leader_epoch: i32,
    pub log: Mutex<PartitionLog>,
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
        let mut wanted: HashMap<(Uuid, i32), (String, i32, LogConfig)> = HashMap::new();
        for topic in image.topics() {
            let log_config = log_config_for_topic(config, &topic.configs);
            for partition in &topic.partitions {
                if partition.replicas.contains(&config.node_id) {
                    wanted.insert(
                        (topic.topic_id, partition.partition),
                        (
                            topic.name.clone(),
                            partition.leader_epoch,
                            log_config.clone(),
                        ),
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
        for ((topic_id, index), (topic, leader_epoch, log_config)) in wanted {
            if let Some(existing) = self.get(topic_id, index) {
                existing.log.lock().set_config(log_config);
                continue;
            }
            let dir = partition_dir(&config.log_dirs, &topic, index);
            if dir.exists() && read_topic_id(&dir) != Some(topic_id) {
                warn!(dir = %dir.display(), "removing partition directory of a deleted topic with the same name");
                if let Err(error) = std::fs::remove_dir_all(&dir) {
                    warn!(dir = %dir.display(), %error, "cannot remove stale partition directory");
                }
            }
            let open_error =
                |source: Box<dyn std::error::Error + Send + Sync>| PartitionError::Open {
                    topic: topic.clone(),
                    index,
                    dir: dir.clone(),
                    source,
                };
            write_topic_id(&dir, topic_id).map_err(|e| open_error(e.into()))?;
            let log =
                PartitionLog::open(&dir, log_config, now_ms).map_err(|e| open_error(e.into()))?;
            info!(%topic, partition = index, log_end_offset = log.log_end_offset(), "partition opened");
            self.partitions.write().insert(
                (topic_id, index),
                Arc::new(Partition {
                    topic: topic.clone(),
                    topic_id,
                    index,
                    leader_epoch,
                    log: Mutex::new(log),
                }),
            );
        }
        self.remove_stray_dirs(config, image);
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
