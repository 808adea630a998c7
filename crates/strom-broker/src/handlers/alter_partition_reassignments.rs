//! AlterPartitionReassignments (KIP-455): move partitions to new replica sets, or cancel a
//! move (null replicas). Requires ALTER on the cluster.
//!
//! The controller decides ([`strom_controller::RaftQuorum::alter_partition_reassignments`]);
//! the answer comes once the start is committed and shown in this node's image. The move
//! itself then runs on its own: new replicas open as followers on their brokers and catch
//! up, the leader adds them to the ISR, and the controller commits the final replica set,
//! after which removed replicas delete their logs. ListPartitionReassignments shows the
//! moves in progress.
//!
//! A single-node broker has one broker: the only valid target is the current replica list
//! (a no-op); any other is INVALID_REPLICA_ASSIGNMENT.
//!
//! v1 (KIP-860) adds `allow_replication_factor_change`: when false, a target with another
//! replica count than the partition's is refused with INVALID_REPLICATION_FACTOR.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_controller::{
    MetadataImage, RaftQuorumError, ReassignmentRequest, ReassignmentResult,
    REASSIGNMENTS_PER_REQUEST_MAX,
};
use strom_protocol::ErrorCode;
use tracing::{info, warn};
use uuid::Uuid;

use crate::authz::Check;
use crate::metadata::Metadata;
use crate::state::Broker;
use strom_controller::acl::operation as acl_op;

/// One partition of the request and, once known, its answer.
struct Row {
    topic: String,
    partition: i32,
    target: Option<Vec<i32>>,
    /// `None` when the topic is unknown here.
    topic_id: Option<Uuid>,
    answer: Option<(i16, Option<String>)>,
}

pub async fn handle(
    broker: &Arc<Broker>,
    check: &Check<'_>,
    request: AlterPartitionReassignmentsRequest,
    version: i16,
) -> AlterPartitionReassignmentsResponse {
    let image = broker.image();
    let allow_replication_factor_change = version < 1 || request.allow_replication_factor_change;
    let mut rows = requested_rows(&image, &request);
    if !crate::authz::apis::cluster(check, acl_op::ALTER) {
        return refuse_all(
            rows,
            ErrorCode::ClusterAuthorizationFailed,
            "AlterPartitionReassignments needs ALTER on the cluster",
            version,
        );
    }
    if rows.len() > REASSIGNMENTS_PER_REQUEST_MAX {
        return refuse_all(
            rows,
            ErrorCode::InvalidRequest,
            &format!("at most {REASSIGNMENTS_PER_REQUEST_MAX} partitions per request"),
            version,
        );
    }
    for row in rows.iter_mut() {
        let Some(topic_id) = row.topic_id else {
            row.answer = Some((ErrorCode::UnknownTopicOrPartition.code(), None));
            continue;
        };
        let (Some(state), Some(target)) = (image.partition(topic_id, row.partition), &row.target)
        else {
            continue;
        };
        let original = state
            .replicas
            .iter()
            .filter(|r| !state.adding_replicas.contains(r))
            .count();
        if !allow_replication_factor_change && target.len() != original {
            row.answer = Some((
                ErrorCode::InvalidReplicationFactor.code(),
                Some(format!(
                    "the target has {} replicas, the partition {original}, and \
                     allow_replication_factor_change is false",
                    target.len()
                )),
            ));
        }
    }
    let wanted: Vec<ReassignmentRequest> = rows
        .iter()
        .filter(|row| row.answer.is_none())
        .map(|row| ReassignmentRequest {
            topic_id: row.topic_id.expect("unknown topics were answered above"),
            partition: row.partition,
            target: row.target.clone(),
        })
        .collect();
    if !wanted.is_empty() {
        let results = match decide(broker, wanted.clone()).await {
            Ok(results) => results,
            Err((code, message)) => {
                warn!(message, "partition reassignment failed");
                return refuse_all(rows, code, &message, version);
            }
        };
        assert_eq!(
            results.len(),
            wanted.len(),
            "one result per partition asked"
        );
        let mut results = results.into_iter();
        for row in rows.iter_mut().filter(|row| row.answer.is_none()) {
            let result = results.next().expect("counted above");
            assert_eq!(
                (Some(result.topic_id), result.partition),
                (row.topic_id, row.partition),
                "reassignment results come in the order asked"
            );
            row.answer = Some((result.outcome.code(), result.outcome.message()));
        }
        let accepted: Vec<&ReassignmentRequest> = wanted
            .iter()
            .filter(|w| {
                rows.iter().any(|row| {
                    (row.topic_id, row.partition) == (Some(w.topic_id), w.partition)
                        && matches!(row.answer, Some((0, _)))
                })
            })
            .collect();
        if !accepted.is_empty() {
            info!(
                partitions = accepted.len(),
                "partition reassignments accepted"
            );
            let shown = crate::metadata::wait_for_local_image(broker, |image| {
                accepted.iter().all(|w| shows(image, w))
            })
            .await;
            if let Err(error) = shown {
                warn!(%error, "installing the image after a reassignment failed");
            }
        }
    }
    let mut response = AlterPartitionReassignmentsResponse::default()
        .with_error_code(0)
        .with_responses(group_by_topic(rows));
    if version >= 1 {
        response.allow_replication_factor_change = allow_replication_factor_change;
    }
    response
}

/// Whether `image` shows the reassignment `request` asked for (started or done; for a
/// cancel: nothing in progress).
fn shows(image: &MetadataImage, request: &ReassignmentRequest) -> bool {
    let Some(state) = image.partition(request.topic_id, request.partition) else {
        return true;
    };
    match &request.target {
        None => !strom_controller::is_reassigning(state),
        Some(target) => {
            let moving_to: Vec<i32> = state
                .replicas
                .iter()
                .copied()
                .filter(|r| !state.removing_replicas.contains(r))
                .collect();
            moving_to == *target
        }
    }
}

/// Runs the decision on the controller; the error is the code and message for every
/// partition.
async fn decide(
    broker: &Arc<Broker>,
    wanted: Vec<ReassignmentRequest>,
) -> Result<Vec<ReassignmentResult>, (ErrorCode, String)> {
    match broker.metadata() {
        Metadata::Local(_) => {
            let broker = Arc::clone(broker);
            let decided = tokio::task::spawn_blocking(move || {
                let Metadata::Local(quorum) = broker.metadata() else {
                    unreachable!("checked above");
                };
                let mut quorum = quorum.lock();
                let results = quorum
                    .alter_partition_reassignments(&wanted)
                    .map_err(|e| e.to_string())?;
                broker
                    .apply_image(quorum.image())
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>(results)
            })
            .await;
            match decided {
                Ok(Ok(results)) => Ok(results),
                Ok(Err(message)) => Err((ErrorCode::UnknownServerError, message)),
                Err(join) => Err((ErrorCode::UnknownServerError, join.to_string())),
            }
        }
        Metadata::Raft(raft) => raft
            .alter_partition_reassignments(wanted)
            .await
            .map_err(|error| {
                let code = match &error {
                    RaftQuorumError::NotLeader { .. } | RaftQuorumError::NoQuorum => {
                        ErrorCode::NotController
                    }
                    RaftQuorumError::Timeout { .. } => ErrorCode::RequestTimedOut,
                    _ => ErrorCode::UnknownServerError,
                };
                (code, error.to_string())
            }),
    }
}

/// The partitions the request names, in its order.
fn requested_rows(image: &MetadataImage, request: &AlterPartitionReassignmentsRequest) -> Vec<Row> {
    request
        .topics
        .iter()
        .flat_map(|topic| {
            let name = topic.name.0.to_string();
            let topic_id = image.topic(&name).map(|t| t.topic_id);
            topic.partitions.iter().map(move |partition| Row {
                topic: name.clone(),
                partition: partition.partition_index,
                target: partition
                    .replicas
                    .as_ref()
                    .map(|replicas| replicas.iter().map(|r| r.0).collect()),
                topic_id,
                answer: None,
            })
        })
        .collect()
}

/// The same error for every partition, and at the top.
fn refuse_all(
    rows: Vec<Row>,
    code: ErrorCode,
    message: &str,
    version: i16,
) -> AlterPartitionReassignmentsResponse {
    let rows = rows.into_iter().map(|mut row| {
        row.answer = Some((code.code(), Some(message.to_string())));
        row
    });
    let mut response = AlterPartitionReassignmentsResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message.to_string())))
        .with_responses(group_by_topic(rows));
    if version >= 1 {
        response.allow_replication_factor_change = true;
    }
    response
}

/// One response per topic, topics in the order they first appear.
fn group_by_topic(rows: impl IntoIterator<Item = Row>) -> Vec<ReassignableTopicResponse> {
    let mut results: Vec<ReassignableTopicResponse> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let (code, message) = row.answer.expect("every row is answered before encoding");
        let partition = ReassignablePartitionResponse::default()
            .with_partition_index(row.partition)
            .with_error_code(code)
            .with_error_message(message.map(StrBytes::from_string));
        let index = *index_of.entry(row.topic.clone()).or_insert_with(|| {
            results.push(
                ReassignableTopicResponse::default()
                    .with_name(TopicName(StrBytes::from_string(row.topic))),
            );
            results.len() - 1
        });
        results[index].partitions.push(partition);
    }
    results
}
