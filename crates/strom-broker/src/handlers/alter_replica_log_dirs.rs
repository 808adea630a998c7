//! AlterReplicaLogDirs: move replicas between this broker's log directories. Strom keeps one
//! log directory per broker (`log.dirs`), so the only move there is is to stay: a replica
//! asked into that directory answers NONE, any other path LOG_DIR_NOT_FOUND.
//!
//! Kafka's tools need the answer even so: kafka-reassign-partitions prints the current
//! placement with each replica's directory (from DescribeLogDirs) as the rollback file, and
//! executing such a file asks for those directories. As in Kafka, a replica this broker does
//! not host yet answers REPLICA_NOT_AVAILABLE, which the tool retries until the reassignment
//! has created it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse};
use strom_protocol::ErrorCode;

use crate::state::Broker;

/// `path` made absolute (against the working directory, as Kafka does) and with symbolic
/// links resolved where it exists, so a client may name the directory either way.
fn normalised(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    std::fs::canonicalize(&absolute).unwrap_or(absolute)
}

/// Every named partition answering `error_code` (a refused request: ALTER on the cluster).
pub fn all_failed(
    request: AlterReplicaLogDirsRequest,
    error_code: i16,
) -> AlterReplicaLogDirsResponse {
    let results = request
        .dirs
        .into_iter()
        .flat_map(|dir| dir.topics)
        .map(|topic| {
            AlterReplicaLogDirTopicResult::default()
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .map(|&index| {
                            AlterReplicaLogDirPartitionResult::default()
                                .with_partition_index(index)
                                .with_error_code(error_code)
                        })
                        .collect(),
                )
                .with_topic_name(topic.name)
        })
        .collect();
    AlterReplicaLogDirsResponse::default().with_results(results)
}

pub fn handle(
    broker: &Arc<Broker>,
    request: AlterReplicaLogDirsRequest,
) -> AlterReplicaLogDirsResponse {
    let image = broker.image();
    let own_dir = normalised(&broker.config().log_dirs);
    let mut results: Vec<AlterReplicaLogDirTopicResult> = Vec::new();
    for dir in request.dirs {
        let dir_known = normalised(Path::new(dir.path.as_str())) == own_dir;
        for topic in dir.topics {
            let topic_image = image.topic(topic.name.0.as_str());
            let partitions = topic
                .partitions
                .iter()
                .map(|&index| {
                    let error = if !dir_known {
                        Some(ErrorCode::LogDirNotFound)
                    } else {
                        match topic_image {
                            None => Some(ErrorCode::UnknownTopicOrPartition),
                            Some(t) if index < 0 || index >= t.partition_count() => {
                                Some(ErrorCode::UnknownTopicOrPartition)
                            }
                            Some(t) if broker.partitions().get(t.topic_id, index).is_none() => {
                                Some(ErrorCode::ReplicaNotAvailable)
                            }
                            Some(_) => None,
                        }
                    };
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            results.push(
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(topic.name)
                    .with_partitions(partitions),
            );
        }
    }
    AlterReplicaLogDirsResponse::default().with_results(results)
}
