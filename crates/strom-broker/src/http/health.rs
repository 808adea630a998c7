//! `/health` (the process is up and serving HTTP) and `/ready` (the broker can serve
//! clients: metadata loaded, every partition it leads open, committed offsets loaded).

use std::collections::HashSet;

use bytes::Bytes;
use hyper::StatusCode;
use serde::Serialize;
use strom_controller::MetadataImage;
use uuid::Uuid;

use super::{json_response, response, HttpError, HttpResponse};
use crate::state::Broker;

/// Most problems listed in a `/ready` answer (a broker with thousands of closed partitions
/// says how many, not which).
const PROBLEMS_MAX: usize = 20;

/// Liveness: answering at all is the signal.
pub fn health() -> HttpResponse {
    response(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        Bytes::from_static(b"ok\n"),
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// The metadata log is replayed and this node is registered in it.
    pub metadata_loaded: bool,
    /// Partitions this node leads according to the image.
    pub partitions_led: usize,
    /// Of those, how many have an open log.
    pub partitions_open: usize,
    /// `__consumer_offsets` exists and is not yet replayed (group requests would get
    /// COORDINATOR_LOAD_IN_PROGRESS).
    pub groups_loading: bool,
    /// Why not ready, at most [`PROBLEMS_MAX`] entries.
    pub problems: Vec<String>,
}

/// Decides readiness from a snapshot. Pure, so every branch is testable without a broker.
pub fn readiness(
    node_id: i32,
    image: &MetadataImage,
    open: &HashSet<(Uuid, i32)>,
    groups_loading: bool,
) -> Readiness {
    let mut problems = Vec::new();
    let metadata_loaded = image.cluster_id().is_some() && image.broker(node_id).is_some();
    if !metadata_loaded {
        problems.push(format!(
            "metadata not loaded: node {node_id} is not registered in the metadata image"
        ));
    }
    let mut partitions_led = 0;
    let mut partitions_open = 0;
    let mut closed = 0usize;
    for topic in image.topics() {
        for partition in &topic.partitions {
            if partition.leader != node_id {
                continue;
            }
            partitions_led += 1;
            if open.contains(&(topic.topic_id, partition.partition)) {
                partitions_open += 1;
            } else {
                closed += 1;
                if problems.len() < PROBLEMS_MAX {
                    problems.push(format!(
                        "partition {}-{} is led here but its log is not open",
                        topic.name, partition.partition
                    ));
                }
            }
        }
    }
    if closed > 0 && problems.len() >= PROBLEMS_MAX {
        problems.push(format!("{closed} partitions led here are not open in all"));
    }
    if groups_loading {
        problems.push("committed offsets (__consumer_offsets) are still loading".to_string());
    }
    Readiness {
        ready: metadata_loaded && closed == 0 && !groups_loading,
        metadata_loaded,
        partitions_led,
        partitions_open,
        groups_loading,
        problems,
    }
}

/// Readiness of the running broker: 200 when ready, 503 otherwise, with the details.
pub fn ready(broker: &Broker) -> Result<HttpResponse, HttpError> {
    let image = broker.image();
    let open: HashSet<(Uuid, i32)> = broker
        .partitions()
        .all()
        .iter()
        .map(|partition| (partition.topic_id, partition.index))
        .collect();
    let groups_loading =
        image.topic(crate::group::OFFSETS_TOPIC).is_some() && !broker.groups().is_loaded();
    let readiness = readiness(broker.config().node_id, &image, &open, groups_loading);
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json_response(status, &readiness))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_controller::MetadataRecord;

    fn image_with_topic(node_id: i32, leader: i32) -> (MetadataImage, Uuid) {
        let topic_id = Uuid::from_u128(7);
        let mut image = MetadataImage::empty();
        let records = vec![
            MetadataRecord::ClusterId {
                cluster_id: "test".into(),
            },
            MetadataRecord::RegisterBroker {
                broker_id: node_id,
                host: "127.0.0.1".into(),
                port: 9092,
                rack: None,
                listeners: Vec::new(),
            },
            MetadataRecord::Topic {
                name: "orders".into(),
                topic_id,
            },
            MetadataRecord::Partition {
                topic_id,
                partition: 0,
                replicas: vec![leader],
                isr: vec![leader],
                leader,
                leader_epoch: 0,
            },
        ];
        image.apply_entry(0, &records).expect("valid records");
        (image, topic_id)
    }

    #[test]
    fn given_empty_image_when_checked_should_not_be_ready() {
        let readiness = readiness(1, &MetadataImage::empty(), &HashSet::new(), false);
        assert!(!readiness.ready);
        assert!(!readiness.metadata_loaded);
    }

    #[test]
    fn given_led_partition_not_open_when_checked_should_not_be_ready_and_name_it() {
        let (image, _) = image_with_topic(1, 1);
        let readiness = readiness(1, &image, &HashSet::new(), false);
        assert!(readiness.metadata_loaded);
        assert!(!readiness.ready);
        assert_eq!(readiness.partitions_led, 1);
        assert_eq!(readiness.partitions_open, 0);
        assert!(readiness.problems[0].contains("orders-0"));
    }

    #[test]
    fn given_all_led_partitions_open_when_checked_should_be_ready() {
        let (image, topic_id) = image_with_topic(1, 1);
        let open: HashSet<(Uuid, i32)> = [(topic_id, 0)].into_iter().collect();
        let readiness = readiness(1, &image, &open, false);
        assert!(readiness.ready, "{readiness:?}");
        assert!(readiness.problems.is_empty());
    }

    #[test]
    fn given_offsets_loading_when_checked_should_not_be_ready() {
        let (image, topic_id) = image_with_topic(1, 1);
        let open: HashSet<(Uuid, i32)> = [(topic_id, 0)].into_iter().collect();
        assert!(!readiness(1, &image, &open, true).ready);
    }
}
