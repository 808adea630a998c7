//! The active controller's decisions: a plain struct that turns admin requests and the
//! current image into records to append and per-topic results. It does no I/O; the
//! [`crate::MetadataQuorum`] or [`crate::RaftQuorum`] appends the records and applies them.
//! Placement lives in `placement`, leadership and ISR changes in `partition_change`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{
    ControllerError, InvalidPartitionsReason, InvalidRequestReason, InvalidTopicReason,
    PolicyViolationReason, ReplicaAssignmentReason,
};
use crate::ids::{next_kafka_uuid, IdGenerator};
use crate::image::MetadataImage;
use crate::placement::{place_replicas, placement_start};
use crate::record::{BrokerListener, MetadataRecord};
use crate::topic_config::{
    validate_topic_config, validate_topic_config_combination, validate_topic_config_key,
};
use crate::topic_name::{unify_collision_chars, validate_topic_name};
use crate::ConfigError;

/// Most partitions one topic may have. Kafka has no hard cap; this one bounds the work and
/// the log entry of a single request (10,000 partitions encode to ~1.5 MiB).
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;
/// Most partitions one CreateTopics/CreatePartitions request may add in total, so one
/// request's entry stays far below [`crate::METADATA_ENTRY_BYTES_MAX`].
pub const NEW_PARTITIONS_PER_REQUEST_MAX: i64 = 100_000;
/// Kafka's own metadata topic; its directory is where the metadata log lives.
pub const CLUSTER_METADATA_TOPIC_NAME: &str = "__cluster_metadata";

/// Broker-level defaults for CreateTopics fields left at -1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDefaults {
    /// `num.partitions`
    pub num_partitions: i32,
    /// `default.replication.factor`
    pub default_replication_factor: i16,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        Self {
            num_partitions: 1,
            default_replication_factor: 1,
        }
    }
}

/// A manual assignment of one partition's replicas (the first is the preferred leader).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionAssignment {
    pub partition: i32,
    pub broker_ids: Vec<i32>,
}

/// One topic of a CreateTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreateTopic {
    pub name: String,
    /// `None` or `Some(-1)`: the broker default. Must be default with `assignments`.
    pub num_partitions: Option<i32>,
    /// `None` or `Some(-1)`: the broker default. Must be default with `assignments`.
    pub replication_factor: Option<i16>,
    /// Empty: the controller places replicas.
    pub assignments: Vec<PartitionAssignment>,
    /// Topic configs; a `None` value is refused (Kafka: null values are not supported).
    pub configs: Vec<(String, Option<String>)>,
}

/// The outcome for one topic name of a CreateTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicResult {
    pub name: String,
    /// The new topic's id; nil on error and for `validate_only`.
    #[serde(with = "crate::record::uuid_text")]
    pub topic_id: Uuid,
    /// -1 on error.
    pub num_partitions: i32,
    /// -1 on error.
    pub replication_factor: i16,
    pub error: Option<ControllerError>,
}

/// A topic to delete, by name (DeleteTopics v0-5) or by id (v6+).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TopicRef {
    Name(String),
    Id(#[serde(with = "crate::record::uuid_text")] Uuid),
}

/// The outcome for one entry of a DeleteTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteTopicResult {
    /// The topic's name when known (given, or resolved from the id).
    pub name: Option<String>,
    /// The topic's id when known (given, or resolved from the name); nil otherwise.
    #[serde(with = "crate::record::uuid_text")]
    pub topic_id: Uuid,
    pub error: Option<ControllerError>,
}

/// One topic of a CreatePartitions request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePartitions {
    pub name: String,
    /// The new total partition count.
    pub count: i32,
    /// Replicas of each *new* partition, in order; `None`: the controller places them.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// The outcome for one topic name of a CreatePartitions request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePartitionsResult {
    pub name: String,
    pub error: Option<ControllerError>,
}

/// What a decision produced: records to append (empty when nothing changes) and the
/// response to send once they are durable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Decision<T> {
    pub records: Vec<MetadataRecord>,
    pub response: T,
}

/// The single active controller's decision logic. Randomness (topic and cluster ids)
/// comes from the injected [`IdGenerator`]; it has no clock because no decision here
/// depends on time yet.
pub struct Controller {
    node_id: i32,
    ids: Box<dyn IdGenerator>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Controller {
    pub fn new(node_id: i32, ids: Box<dyn IdGenerator>) -> Self {
        Self { node_id, ids }
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// Records that bring a freshly opened log up to date: the cluster id when the log is
    /// new, and this node's registration when it is missing or its address changed.
    pub fn bootstrap(
        &mut self,
        image: &MetadataImage,
        host: &str,
        port: u16,
        rack: Option<&str>,
    ) -> Vec<MetadataRecord> {
        let mut records: Vec<MetadataRecord> = self.cluster_id_record(image).into_iter().collect();
        records.extend(self.register_broker(image, self.node_id, host, port, rack, &[]));
        records
    }

    /// The cluster id record, when the image has no cluster id yet (a new log). The first
    /// entry a log gets must carry it.
    pub fn cluster_id_record(&mut self, image: &MetadataImage) -> Option<MetadataRecord> {
        image
            .cluster_id()
            .is_none()
            .then(|| MetadataRecord::ClusterId {
                cluster_id: crate::ids::new_cluster_id(self.ids.as_mut()),
            })
    }

    /// The registration of broker `broker_id` (`host:port` for inter-broker traffic, and
    /// every listener), unless the image already has exactly this one.
    pub fn register_broker(
        &self,
        image: &MetadataImage,
        broker_id: i32,
        host: &str,
        port: u16,
        rack: Option<&str>,
        listeners: &[BrokerListener],
    ) -> Option<MetadataRecord> {
        let registered = image.broker(broker_id).is_some_and(|broker| {
            broker.host == host
                && broker.port == port
                && broker.rack.as_deref() == rack
                && broker.listeners == listeners
        });
        (!registered).then(|| MetadataRecord::RegisterBroker {
            broker_id,
            host: host.to_string(),
            port,
            rack: rack.map(str::to_string),
            listeners: listeners.to_vec(),
        })
    }

    /// Decides a CreateTopics request. One result per distinct name, in order of first
    /// appearance; a name given more than once fails with INVALID_REQUEST. With
    /// `validate_only` every check runs but no records are produced.
    pub fn create_topics(
        &mut self,
        image: &MetadataImage,
        requests: &[CreateTopic],
        validate_only: bool,
        defaults: &TopicDefaults,
    ) -> Decision<Vec<CreateTopicResult>> {
        let mut occurrences: BTreeMap<&str, usize> = BTreeMap::new();
        for request in requests {
            *occurrences.entry(request.name.as_str()).or_default() += 1;
        }
        let mut seen = BTreeSet::new();
        // Unified name -> name, for the topics this request creates.
        let mut accepted_unified: BTreeMap<String, String> = BTreeMap::new();
        let mut new_partitions: i64 = 0;
        let mut records = Vec::new();
        let mut results = Vec::new();
        for request in requests {
            if !seen.insert(request.name.as_str()) {
                continue;
            }
            let outcome = if occurrences[request.name.as_str()] > 1 {
                Err(ControllerError::InvalidRequest(
                    InvalidRequestReason::DuplicateTopicName,
                ))
            } else {
                let start = placement_start(image, new_partitions);
                check_new_topic(image, request, defaults, &accepted_unified, start).and_then(
                    |plan| {
                        let added = i64::from(plan.partition_count());
                        if new_partitions + added > NEW_PARTITIONS_PER_REQUEST_MAX {
                            return Err(ControllerError::PolicyViolation(
                                PolicyViolationReason::TooManyPartitionsInRequest {
                                    requested: added,
                                    already: new_partitions,
                                    max: NEW_PARTITIONS_PER_REQUEST_MAX,
                                },
                            ));
                        }
                        new_partitions += added;
                        Ok(plan)
                    },
                )
            };
            results.push(match outcome {
                Err(error) => CreateTopicResult {
                    name: request.name.clone(),
                    topic_id: Uuid::nil(),
                    num_partitions: -1,
                    replication_factor: -1,
                    error: Some(error),
                },
                Ok(plan) => {
                    accepted_unified
                        .insert(unify_collision_chars(&request.name), request.name.clone());
                    let num_partitions = plan.partition_count();
                    let replication_factor = plan.replication_factor();
                    let topic_id = if validate_only {
                        Uuid::nil()
                    } else {
                        let topic_id = next_kafka_uuid(self.ids.as_mut());
                        records.extend(plan.into_records(image, &request.name, topic_id, request));
                        topic_id
                    };
                    CreateTopicResult {
                        name: request.name.clone(),
                        topic_id,
                        num_partitions,
                        replication_factor,
                        error: None,
                    }
                }
            });
        }
        Decision {
            records,
            response: results,
        }
    }

    /// Decides a DeleteTopics request. One result per distinct entry, in request order;
    /// an entry given twice fails with INVALID_REQUEST.
    pub fn delete_topics(
        &mut self,
        image: &MetadataImage,
        topics: &[TopicRef],
    ) -> Decision<Vec<DeleteTopicResult>> {
        let mut occurrences: BTreeMap<&TopicRef, usize> = BTreeMap::new();
        for topic in topics {
            *occurrences.entry(topic).or_default() += 1;
        }
        let mut seen = BTreeSet::new();
        let mut removed = BTreeSet::new();
        let mut records = Vec::new();
        let mut results = Vec::new();
        for topic in topics {
            if !seen.insert(topic) {
                continue;
            }
            let found = match topic {
                TopicRef::Name(name) => image.topic(name),
                TopicRef::Id(topic_id) => image.topic_by_id(*topic_id),
            };
            let (name, given_id) = match topic {
                TopicRef::Name(name) => (Some(name.clone()), Uuid::nil()),
                TopicRef::Id(topic_id) => (None, *topic_id),
            };
            let result = if occurrences[topic] > 1 {
                let reason = match topic {
                    TopicRef::Name(_) => InvalidRequestReason::DuplicateTopicName,
                    TopicRef::Id(_) => InvalidRequestReason::DuplicateTopicId,
                };
                DeleteTopicResult {
                    name,
                    topic_id: given_id,
                    error: Some(ControllerError::InvalidRequest(reason)),
                }
            } else if let Some(found) = found {
                // A name and an id may name the same topic: remove it once.
                if removed.insert(found.topic_id) {
                    records.push(MetadataRecord::RemoveTopic {
                        topic_id: found.topic_id,
                    });
                }
                DeleteTopicResult {
                    name: Some(found.name.clone()),
                    topic_id: found.topic_id,
                    error: None,
                }
            } else {
                let error = match topic {
                    TopicRef::Name(name) => {
                        ControllerError::UnknownTopicOrPartition { name: name.clone() }
                    }
                    TopicRef::Id(topic_id) => ControllerError::UnknownTopicId {
                        topic_id: *topic_id,
                    },
                };
                DeleteTopicResult {
                    name,
                    topic_id: given_id,
                    error: Some(error),
                }
            };
            results.push(result);
        }
        Decision {
            records,
            response: results,
        }
    }

    /// Decides a CreatePartitions request: grow each topic to `count` partitions. One
    /// result per distinct name, in order of first appearance.
    pub fn create_partitions(
        &mut self,
        image: &MetadataImage,
        requests: &[CreatePartitions],
        validate_only: bool,
    ) -> Decision<Vec<CreatePartitionsResult>> {
        let mut occurrences: BTreeMap<&str, usize> = BTreeMap::new();
        for request in requests {
            *occurrences.entry(request.name.as_str()).or_default() += 1;
        }
        let mut seen = BTreeSet::new();
        let mut new_partitions: i64 = 0;
        let mut records = Vec::new();
        let mut results = Vec::new();
        for request in requests {
            if !seen.insert(request.name.as_str()) {
                continue;
            }
            let outcome = if occurrences[request.name.as_str()] > 1 {
                Err(ControllerError::InvalidRequest(
                    InvalidRequestReason::DuplicateTopicName,
                ))
            } else {
                let start = placement_start(image, new_partitions);
                check_new_partitions(image, request, start).and_then(
                    |(topic_id, first, replicas)| {
                        let added = replicas.len() as i64;
                        if new_partitions + added > NEW_PARTITIONS_PER_REQUEST_MAX {
                            return Err(ControllerError::PolicyViolation(
                                PolicyViolationReason::TooManyPartitionsInRequest {
                                    requested: added,
                                    already: new_partitions,
                                    max: NEW_PARTITIONS_PER_REQUEST_MAX,
                                },
                            ));
                        }
                        new_partitions += added;
                        Ok((topic_id, first, replicas))
                    },
                )
            };
            let error = match outcome {
                Ok((topic_id, first, replicas)) => {
                    if !validate_only {
                        records.extend((first..).zip(replicas).map(|(partition, replicas)| {
                            partition_record(image, topic_id, partition, replicas)
                        }));
                    }
                    None
                }
                Err(error) => Some(error),
            };
            results.push(CreatePartitionsResult {
                name: request.name.clone(),
                error,
            });
        }
        Decision {
            records,
            response: results,
        }
    }

    /// Decides an (incremental) config change on one topic: `Some(value)` sets a key,
    /// `None` removes it back to the broker default. All changes are checked before any is
    /// applied; one bad change fails the whole call.
    pub fn alter_topic_configs(
        &mut self,
        image: &MetadataImage,
        topic: &str,
        changes: &[(String, Option<String>)],
        validate_only: bool,
    ) -> Decision<Result<(), ControllerError>> {
        let outcome = image
            .topic(topic)
            .ok_or_else(|| ControllerError::UnknownTopicOrPartition {
                name: topic.to_string(),
            })
            .and_then(|found| {
                check_unique_keys(changes)?;
                for (key, value) in changes {
                    match value {
                        Some(value) => validate_topic_config(key, value),
                        None => validate_topic_config_key(key),
                    }
                    .map_err(ControllerError::InvalidConfig)?;
                }
                let mut merged = found.configs.clone();
                for (key, value) in changes {
                    match value {
                        Some(value) => merged.insert(key.clone(), value.clone()),
                        None => merged.remove(key),
                    };
                }
                validate_topic_config_combination(
                    merged.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                )
                .map_err(ControllerError::InvalidConfig)?;
                Ok(found.topic_id)
            });
        let records = match (&outcome, validate_only) {
            (Ok(topic_id), false) => changes
                .iter()
                .map(|(key, value)| MetadataRecord::TopicConfig {
                    topic_id: *topic_id,
                    key: key.clone(),
                    value: value.as_ref().map(|v| v.trim().to_string()),
                })
                .collect(),
            _ => Vec::new(),
        };
        Decision {
            records,
            response: outcome.map(|_| ()),
        }
    }
}

impl Controller {
    /// Decides SCRAM credential changes (upserts and removals): the broker has validated
    /// them, so the controller only records them, as one entry.
    pub fn alter_scram_credentials(&self, records: Vec<MetadataRecord>) -> Decision<()> {
        debug_assert!(records.iter().all(|r| matches!(
            r,
            MetadataRecord::UserScramCredential { .. }
                | MetadataRecord::RemoveUserScramCredential { .. }
        )));
        Decision {
            records,
            response: (),
        }
    }

    /// Decides ACL creations and deletions: validated by the broker, no-ops left out.
    pub fn alter_acls(&self, records: Vec<MetadataRecord>) -> Decision<()> {
        debug_assert!(records.iter().all(|r| matches!(
            r,
            MetadataRecord::Acl { .. } | MetadataRecord::RemoveAcl { .. }
        )));
        Decision {
            records,
            response: (),
        }
    }

    /// Decides dynamic broker config changes: validated by the broker.
    pub fn alter_broker_configs(&self, records: Vec<MetadataRecord>) -> Decision<()> {
        debug_assert!(records
            .iter()
            .all(|r| matches!(r, MetadataRecord::BrokerConfig { .. })));
        Decision {
            records,
            response: (),
        }
    }

    /// Decides client quota changes: validated by the broker.
    pub fn alter_client_quotas(&self, records: Vec<MetadataRecord>) -> Decision<()> {
        debug_assert!(records
            .iter()
            .all(|r| matches!(r, MetadataRecord::ClientQuota { .. })));
        Decision {
            records,
            response: (),
        }
    }
}

/// A new topic that passed every check: its replica lists, one per partition.
struct TopicPlan {
    replicas: Vec<Vec<i32>>,
}

impl TopicPlan {
    fn partition_count(&self) -> i32 {
        i32::try_from(self.replicas.len()).expect("bounded by PARTITIONS_PER_TOPIC_MAX")
    }

    fn replication_factor(&self) -> i16 {
        self.replicas
            .first()
            .map(|r| i16::try_from(r.len()).expect("bounded by the broker count"))
            .unwrap_or(0)
    }

    fn into_records<'a>(
        self,
        image: &'a MetadataImage,
        name: &str,
        topic_id: Uuid,
        request: &'a CreateTopic,
    ) -> impl Iterator<Item = MetadataRecord> + 'a {
        let topic = MetadataRecord::Topic {
            name: name.to_string(),
            topic_id,
        };
        let partitions = (0..).zip(self.replicas).map(move |(partition, replicas)| {
            partition_record(image, topic_id, partition, replicas)
        });
        let configs = request
            .configs
            .iter()
            .map(move |(key, value)| MetadataRecord::TopicConfig {
                topic_id,
                key: key.clone(),
                value: value.as_ref().map(|v| v.trim().to_string()),
            });
        std::iter::once(topic).chain(partitions).chain(configs)
    }
}

/// A new partition, epoch 0: its unfenced replicas are in sync (they are all empty) and
/// the first of them leads. A manual assignment may name only fenced brokers: then every
/// replica is in the ISR and the partition is offline (leader -1) until one is unfenced.
fn partition_record(
    image: &MetadataImage,
    topic_id: Uuid,
    partition: i32,
    replicas: Vec<i32>,
) -> MetadataRecord {
    let unfenced: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|broker_id| image.is_broker_unfenced(*broker_id))
        .collect();
    let (leader, isr) = match unfenced.first() {
        Some(leader) => (*leader, unfenced.clone()),
        None => (-1, replicas.clone()),
    };
    MetadataRecord::Partition {
        topic_id,
        partition,
        leader,
        leader_epoch: 0,
        isr,
        replicas,
    }
}

fn check_new_topic(
    image: &MetadataImage,
    request: &CreateTopic,
    defaults: &TopicDefaults,
    accepted_unified: &BTreeMap<String, String>,
    start: usize,
) -> Result<TopicPlan, ControllerError> {
    let name = request.name.as_str();
    validate_topic_name(name)?;
    if name == CLUSTER_METADATA_TOPIC_NAME {
        return Err(ControllerError::InvalidRequest(
            InvalidRequestReason::ReservedTopicName {
                name: name.to_string(),
            },
        ));
    }
    if image.topic(name).is_some() {
        return Err(ControllerError::TopicAlreadyExists {
            name: name.to_string(),
        });
    }
    let unified = unify_collision_chars(name);
    let existing = image
        .topics()
        .map(|topic| &topic.name)
        .find(|existing| unify_collision_chars(existing) == unified)
        .or_else(|| accepted_unified.get(&unified));
    if let Some(existing) = existing {
        return Err(ControllerError::InvalidTopic(
            InvalidTopicReason::Collides {
                name: name.to_string(),
                existing: existing.clone(),
            },
        ));
    }
    let replicas = if request.assignments.is_empty() {
        let num_partitions = match request.num_partitions {
            None | Some(-1) => defaults.num_partitions,
            Some(n) => n,
        };
        check_partition_count(num_partitions)?;
        let replication_factor = match request.replication_factor {
            None | Some(-1) => defaults.default_replication_factor,
            Some(n) => n,
        };
        place_replicas(image, start, num_partitions, replication_factor)?
    } else {
        if !matches!(request.num_partitions, None | Some(-1)) {
            return Err(ControllerError::InvalidRequest(
                InvalidRequestReason::AssignmentWithPartitionCount,
            ));
        }
        if !matches!(request.replication_factor, None | Some(-1)) {
            return Err(ControllerError::InvalidRequest(
                InvalidRequestReason::AssignmentWithReplicationFactor,
            ));
        }
        let count = i32::try_from(request.assignments.len()).unwrap_or(i32::MAX);
        check_partition_count(count)?;
        let mut assignments: Vec<&PartitionAssignment> = request.assignments.iter().collect();
        assignments.sort_by_key(|a| a.partition);
        for (expected, assignment) in (0..).zip(&assignments) {
            if assignment.partition != expected {
                return Err(ControllerError::InvalidReplicaAssignment(
                    ReplicaAssignmentReason::NonConsecutive {
                        partition: assignment.partition,
                        expected,
                    },
                ));
            }
        }
        let replicas: Vec<Vec<i32>> = assignments.iter().map(|a| a.broker_ids.clone()).collect();
        check_manual_replicas(image, &replicas, None)?;
        replicas
    };
    check_unique_keys(&request.configs)?;
    for (key, value) in &request.configs {
        let value = value.as_deref().ok_or_else(|| {
            ControllerError::InvalidConfig(ConfigError::NullValue { key: key.clone() })
        })?;
        validate_topic_config(key, value).map_err(ControllerError::InvalidConfig)?;
    }
    validate_topic_config_combination(
        request
            .configs
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_deref()?))),
    )
    .map_err(ControllerError::InvalidConfig)?;
    Ok(TopicPlan { replicas })
}

/// Checks a CreatePartitions entry; returns the topic id, the first new partition index
/// and the replicas of each new partition.
fn check_new_partitions(
    image: &MetadataImage,
    request: &CreatePartitions,
    start: usize,
) -> Result<(Uuid, i32, Vec<Vec<i32>>), ControllerError> {
    let topic =
        image
            .topic(&request.name)
            .ok_or_else(|| ControllerError::UnknownTopicOrPartition {
                name: request.name.clone(),
            })?;
    let current = topic.partition_count();
    if request.count == current {
        return Err(ControllerError::InvalidPartitions(
            InvalidPartitionsReason::Unchanged { current },
        ));
    }
    if request.count < current {
        return Err(ControllerError::InvalidPartitions(
            InvalidPartitionsReason::Decrease {
                name: request.name.clone(),
                current,
                requested: request.count,
            },
        ));
    }
    check_partition_count(request.count)?;
    let added = request.count - current;
    let replicas = match &request.assignments {
        Some(assignments) => {
            if assignments.len() != added as usize {
                return Err(ControllerError::InvalidReplicaAssignment(
                    ReplicaAssignmentReason::CountMismatch {
                        added,
                        given: assignments.len(),
                    },
                ));
            }
            let expected = usize::try_from(topic.replication_factor())
                .ok()
                .filter(|rf| *rf > 0);
            check_manual_replicas(image, assignments, expected)?;
            assignments.clone()
        }
        None => place_replicas(image, start, added, topic.replication_factor().max(1))?,
    };
    Ok((topic.topic_id, current, replicas))
}

fn check_partition_count(count: i32) -> Result<(), ControllerError> {
    if count <= 0 {
        return Err(ControllerError::InvalidPartitions(
            InvalidPartitionsReason::NonPositive { requested: count },
        ));
    }
    if count > PARTITIONS_PER_TOPIC_MAX {
        return Err(ControllerError::InvalidPartitions(
            InvalidPartitionsReason::TooMany {
                requested: count,
                max: PARTITIONS_PER_TOPIC_MAX,
            },
        ));
    }
    Ok(())
}

fn check_manual_replicas(
    image: &MetadataImage,
    replicas: &[Vec<i32>],
    expected_replication_factor: Option<usize>,
) -> Result<(), ControllerError> {
    let expected = expected_replication_factor.or_else(|| replicas.first().map(Vec::len));
    for (partition, broker_ids) in (0..).zip(replicas) {
        if broker_ids.is_empty() {
            return Err(ControllerError::InvalidReplicaAssignment(
                ReplicaAssignmentReason::EmptyReplicas,
            ));
        }
        let mut unique = BTreeSet::new();
        for broker_id in broker_ids {
            if image.broker(*broker_id).is_none() {
                return Err(ControllerError::InvalidReplicaAssignment(
                    ReplicaAssignmentReason::UnknownBroker {
                        broker_id: *broker_id,
                        available_brokers: image.broker_ids(),
                    },
                ));
            }
            if !unique.insert(*broker_id) {
                return Err(ControllerError::InvalidReplicaAssignment(
                    ReplicaAssignmentReason::DuplicateBroker {
                        broker_id: *broker_id,
                    },
                ));
            }
        }
        if let Some(expected) = expected {
            if broker_ids.len() != expected {
                return Err(ControllerError::InvalidReplicaAssignment(
                    ReplicaAssignmentReason::UnevenReplicationFactor {
                        partition,
                        found: broker_ids.len(),
                        expected,
                    },
                ));
            }
        }
    }
    Ok(())
}

fn check_unique_keys(configs: &[(String, Option<String>)]) -> Result<(), ControllerError> {
    let mut keys = BTreeSet::new();
    for (key, _) in configs {
        if !keys.insert(key.as_str()) {
            return Err(ControllerError::InvalidRequest(
                InvalidRequestReason::DuplicateConfigKey { key: key.clone() },
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
