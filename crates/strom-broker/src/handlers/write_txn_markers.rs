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
use crate::state::Broker;
use crate::txn::markers::write_marker;

/// Markers per request at most (bounded work per request).
const MARKERS_PER_REQUEST_MAX: usize = 10_000;

pub fn handle(
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
    let markers = request
        .markers
        .into_iter()
        .map(|marker| {
            let topics = marker
                .topics
                .into_iter()
                .map(|topic| {
                    let partitions = topic
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
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(index)
                                .with_error_code(result.err().map_or(0, |c| c.code()))
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(topic.name)
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics)
        })
        .collect();
    WriteTxnMarkersResponse::default().with_markers(markers)
}
