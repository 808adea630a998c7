//! ElectLeaders (KIP-183, KIP-460): move partition leadership back to the preferred replica
//! (election type 0), or give a partition without a leader any unfenced replica (type 1,
//! unclean). Requires ALTER on the cluster.
//!
//! On a Raft cluster the election is decided by the active controller
//! ([`strom_controller::RaftQuorum::elect_leaders`]); the answer waits until this node's
//! own image shows the new leaders, so a Metadata request that follows on the same
//! connection sees them. A single-node broker is the only replica of every partition and
//! always leads it: every partition answers ELECTION_NOT_NEEDED.
//!
//! As in Kafka, a request without topics (null `topic_partitions`) asks about every
//! partition and is answered only with the partitions the election acted on or could not
//! act on; ELECTION_NOT_NEEDED rows are left out of that shape.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_controller::{ElectionOutcome, MetadataImage, RaftQuorumError};
use strom_protocol::ErrorCode;
use tracing::{info, warn};
use uuid::Uuid;

use crate::authz::Check;
use crate::metadata::Metadata;
use crate::state::Broker;
use strom_controller::acl::operation as acl_op;

const ELECTION_TYPE_PREFERRED: i8 = 0;
const ELECTION_TYPE_UNCLEAN: i8 = 1;

/// One partition of the request and, once known, its answer.
struct Row {
    topic: String,
    partition: i32,
    /// The partition as the controller knows it; `None` when the topic is unknown here.
    topic_id: Option<Uuid>,
    /// The error code (0 for elected) and message.
    answer: Option<(i16, Option<String>)>,
}

pub async fn handle(
    broker: &Arc<Broker>,
    check: &Check<'_>,
    request: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    let image = broker.image();
    let all_partitions = request.topic_partitions.is_none();
    if !crate::authz::apis::cluster(check, acl_op::ALTER) {
        // Named partitions are answered; "all partitions" names none, and must not list
        // the topics to someone who may not act on them.
        let rows = match all_partitions {
            true => Vec::new(),
            false => requested_rows(&image, &request),
        };
        return refuse_all(
            rows,
            version,
            ErrorCode::ClusterAuthorizationFailed,
            "ElectLeaders needs ALTER on the cluster",
        );
    }
    let mut rows = requested_rows(&image, &request);
    // v0 carries no election type: it always asked for the preferred leader.
    let election_type = if version >= 1 {
        request.election_type
    } else {
        ELECTION_TYPE_PREFERRED
    };
    let preferred = match election_type {
        ELECTION_TYPE_PREFERRED => true,
        ELECTION_TYPE_UNCLEAN => false,
        other => {
            return refuse_all(
                rows,
                version,
                ErrorCode::InvalidRequest,
                &format!("unknown election type {other}: 0 is preferred, 1 is unclean"),
            )
        }
    };

    for row in rows.iter_mut().filter(|row| row.topic_id.is_none()) {
        row.answer = Some((ErrorCode::UnknownTopicOrPartition.code(), None));
    }
    let wanted: Vec<(Uuid, i32)> = rows
        .iter()
        .filter_map(|row| Some((row.topic_id?, row.partition)))
        .collect();

    match broker.metadata() {
        Metadata::Local(_) => {
            for row in rows.iter_mut().filter(|row| row.answer.is_none()) {
                let topic_id = row.topic_id.expect("unknown topics were answered above");
                row.answer = Some(match image.partition(topic_id, row.partition) {
                    None => (ErrorCode::UnknownTopicOrPartition.code(), None),
                    Some(_) => (
                        ErrorCode::ElectionNotNeeded.code(),
                        Some("a single-node cluster's only replica always leads".into()),
                    ),
                });
            }
        }
        Metadata::Raft(raft) if !wanted.is_empty() => {
            let results = match raft.elect_leaders(wanted, preferred).await {
                Ok(results) => results,
                Err(error) => {
                    warn!(%error, "leader election failed");
                    let code = match &error {
                        RaftQuorumError::NotLeader { .. } => ErrorCode::NotController,
                        RaftQuorumError::Timeout { .. } => ErrorCode::RequestTimedOut,
                        _ => ErrorCode::UnknownServerError,
                    };
                    return refuse_all(rows, version, code, &error.to_string());
                }
            };
            let elected: Vec<(Uuid, i32, i32)> = results
                .iter()
                .filter_map(|r| match r.outcome {
                    ElectionOutcome::Elected { leader } => Some((r.topic_id, r.partition, leader)),
                    _ => None,
                })
                .collect();
            let mut results = results.into_iter();
            for row in rows.iter_mut().filter(|row| row.answer.is_none()) {
                let result = results
                    .next()
                    .expect("one election result per partition asked");
                assert_eq!(
                    (Some(result.topic_id), result.partition),
                    (row.topic_id, row.partition),
                    "election results come in the order asked"
                );
                row.answer = Some(answer_of(result.outcome, preferred));
            }
            assert!(results.next().is_none(), "no election result left over");
            if !elected.is_empty() {
                info!(partitions = elected.len(), preferred, "leaders elected");
                let shown = crate::metadata::wait_for_local_image(broker, |image| {
                    elected.iter().all(|(topic_id, partition, leader)| {
                        image
                            .partition(*topic_id, *partition)
                            .is_none_or(|state| state.leader == *leader)
                    })
                })
                .await;
                if let Err(error) = shown {
                    warn!(%error, "installing the image after an election failed");
                }
            }
        }
        Metadata::Raft(_) => {}
    }

    let rows = rows.into_iter().filter(|row| {
        !(all_partitions
            && matches!(&row.answer, Some((code, _)) if *code == ErrorCode::ElectionNotNeeded.code()))
    });
    ElectLeadersResponse::default()
        .with_error_code(0)
        .with_replica_election_results(group_by_topic(rows))
}

/// The partitions the request names, in its order, or every partition of the image.
fn requested_rows(image: &MetadataImage, request: &ElectLeadersRequest) -> Vec<Row> {
    match &request.topic_partitions {
        None => image
            .topics()
            .flat_map(|topic| {
                topic.partitions.iter().map(|p| Row {
                    topic: topic.name.clone(),
                    partition: p.partition,
                    topic_id: Some(topic.topic_id),
                    answer: None,
                })
            })
            .collect(),
        Some(topics) => topics
            .iter()
            .flat_map(|wanted| {
                let name = wanted.topic.0.to_string();
                let topic_id = image.topic(&name).map(|t| t.topic_id);
                wanted.partitions.iter().map(move |partition| Row {
                    topic: name.clone(),
                    partition: *partition,
                    topic_id,
                    answer: None,
                })
            })
            .collect(),
    }
}

fn answer_of(outcome: ElectionOutcome, preferred: bool) -> (i16, Option<String>) {
    let message = match outcome {
        ElectionOutcome::Elected { .. } | ElectionOutcome::UnknownTopicOrPartition => None,
        ElectionOutcome::ElectionNotNeeded if preferred => {
            Some("the preferred replica already leads")
        }
        ElectionOutcome::ElectionNotNeeded => Some("the partition has a leader"),
        ElectionOutcome::PreferredLeaderNotAvailable => {
            Some("the preferred replica is fenced or not in the ISR")
        }
        ElectionOutcome::EligibleLeadersNotAvailable => {
            Some("no replica of the partition is unfenced")
        }
    };
    (outcome.code(), message.map(str::to_string))
}

/// The same error for every partition, and at the top (v1+).
fn refuse_all(
    rows: Vec<Row>,
    version: i16,
    code: ErrorCode,
    message: &str,
) -> ElectLeadersResponse {
    let rows = rows.into_iter().map(|mut row| {
        row.answer = Some((code.code(), Some(message.to_string())));
        row
    });
    let mut response =
        ElectLeadersResponse::default().with_replica_election_results(group_by_topic(rows));
    if version >= 1 {
        response.error_code = code.code();
    }
    response
}

/// One result per topic, topics in the order they first appear.
fn group_by_topic(rows: impl Iterator<Item = Row>) -> Vec<ReplicaElectionResult> {
    let mut results: Vec<ReplicaElectionResult> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let (code, message) = row.answer.expect("every row is answered before encoding");
        let partition = PartitionResult::default()
            .with_partition_id(row.partition)
            .with_error_code(code)
            .with_error_message(message.map(StrBytes::from_string));
        let index = *index_of.entry(row.topic.clone()).or_insert_with(|| {
            results.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(row.topic))),
            );
            results.len() - 1
        });
        results[index].partition_result.push(partition);
    }
    results
}
