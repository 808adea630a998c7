//! WriteTxnMarkers: write COMMIT/ABORT markers for a producer to partitions this broker
//! leads. Sent by transaction coordinators (once clusters land) and by operators aborting a
//! hanging transaction (`strom txn abort`, Kafka's `kafka-transactions.sh abort`).
//! Requires CLUSTER_ACTION on the cluster, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use strom_controller::acl::operation as op;
use strom_protocol::ErrorCode;

use crate::authz::Check;
use crate::internal_topics::Pending;
use crate::state::Broker;
use crate::txn::markers::{marker_committed, write_marker};

/// Markers per request at most (bounded work per request).
const MARKERS_PER_REQUEST_MAX: usize = 10_000;

pub async fn handle(
    broker: &Arc<Broker>,
    check: &Check<'_>,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let allowed = check.allows_cluster(op::CLUSTER_ACTION);
    let too_many = request
        .markers
        .iter()
        .map(|m| {
            m.topics
                .iter()
                .map(|t| t.partition_indexes.len())
                .sum::<usize>()
        })
        .sum::<usize>()
        > MARKERS_PER_REQUEST_MAX;
    // Every marker is appended first, then the answer waits for the replicas of all of
    // them: one round of replication per request, not one per marker.
    let mut written = Vec::with_capacity(request.markers.len());
    for marker in request.markers {
        let mut topics = Vec::with_capacity(marker.topics.len());
        for topic in marker.topics {
            let partitions: Vec<(i32, Result<Pending, ErrorCode>)> = topic
                .partition_indexes
                .iter()
                .map(|&index| {
                    let result = if !allowed {
                        Err(ErrorCode::ClusterAuthorizationFailed)
                    } else if too_many {
                        Err(ErrorCode::InvalidRequest)
                    } else {
                        write_marker(
                            broker,
                            &topic.name,
                            index,
                            marker.producer_id.0,
                            marker.producer_epoch,
                            marker.transaction_result,
                            marker.coordinator_epoch,
                        )
                    };
                    (index, result)
                })
                .collect();
            topics.push((topic.name, partitions));
        }
        written.push((marker.producer_id, topics));
    }
    let mut markers = Vec::with_capacity(written.len());
    for (producer_id, topics) in written {
        let mut topic_results = Vec::with_capacity(topics.len());
        for (name, partitions) in topics {
            let mut partition_results = Vec::with_capacity(partitions.len());
            for (index, result) in partitions {
                let result = match result {
                    Ok(pending) => marker_committed(broker, pending).await,
                    Err(code) => Err(code),
                };
                partition_results.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(result.err().map_or(0, |c| c.code())),
                );
            }
            topic_results.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(name)
                    .with_partitions(partition_results),
            );
        }
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(producer_id)
                .with_topics(topic_results),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}
