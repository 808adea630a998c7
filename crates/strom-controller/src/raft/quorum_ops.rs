//! [`RaftQuorum`]'s operations: each one may be called on any voter. It runs on the leader
//! (forwarded there when this voter does not lead, see [`super::forward`]) as a
//! [`crate::Controller`] decision against a linearizable image, and answers once its
//! records are committed and applied on the leader. A follower's own image catches up
//! shortly after; [`RaftQuorum::subscribe`] tells when.

use std::collections::BTreeMap;
use std::time::Instant;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use uuid::Uuid;

use crate::controller::{
    CreatePartitions, CreatePartitionsResult, CreateTopic, CreateTopicResult, Decision,
    DeleteTopicResult, TopicDefaults, TopicRef,
};
use crate::error::ControllerError;
use crate::image::PartitionState;
use crate::partition_change::{AlterPartition, ElectionResult, PartitionChangeError};
use crate::raft::error::RaftQuorumError;
use crate::raft::forward::{ControllerReply, ControllerRequest, HeartbeatReply, PartitionRef};
use crate::raft::quorum::{RaftQuorum, Shared};
use crate::raft::types::{kafka_node_id, raft_node_id};
use crate::reassignment::{
    list_reassignments, OngoingReassignment, ReassignmentRequest, ReassignmentResult,
};
use crate::record::{BrokerListener, MetadataRecord};

impl RaftQuorum {
    /// Appends `records` as one entry and returns its Raft log index once it is committed
    /// and applied on the leader. The records are not checked against the image first; if
    /// one does not fit when applied, no record of the entry is applied, on any voter, and
    /// this fails with [`RaftQuorumError::Rejected`].
    pub async fn propose(&self, records: Vec<MetadataRecord>) -> Result<u64, RaftQuorumError> {
        if records.is_empty() {
            return Err(RaftQuorumError::EmptyProposal);
        }
        match self
            .shared
            .call(ControllerRequest::Propose { records })
            .await?
        {
            ControllerReply::Proposed { index } => Ok(index),
            other => Err(other.unexpected()),
        }
    }

    /// CreateTopics, decided by [`crate::Controller::create_topics`] against the leader's
    /// image and answered once the new topics are committed. Replicas go to unfenced
    /// brokers only.
    pub async fn create_topics(
        &self,
        requests: &[CreateTopic],
        validate_only: bool,
        defaults: &TopicDefaults,
    ) -> Result<Vec<CreateTopicResult>, RaftQuorumError> {
        let request = ControllerRequest::CreateTopics {
            requests: requests.to_vec(),
            validate_only,
            defaults: *defaults,
        };
        match self.shared.call(request).await? {
            ControllerReply::CreateTopics(results) => Ok(results),
            other => Err(other.unexpected()),
        }
    }

    /// DeleteTopics, decided by [`crate::Controller::delete_topics`].
    pub async fn delete_topics(
        &self,
        topics: &[TopicRef],
    ) -> Result<Vec<DeleteTopicResult>, RaftQuorumError> {
        let request = ControllerRequest::DeleteTopics {
            topics: topics.to_vec(),
        };
        match self.shared.call(request).await? {
            ControllerReply::DeleteTopics(results) => Ok(results),
            other => Err(other.unexpected()),
        }
    }

    /// CreatePartitions, decided by [`crate::Controller::create_partitions`].
    pub async fn create_partitions(
        &self,
        requests: &[CreatePartitions],
        validate_only: bool,
    ) -> Result<Vec<CreatePartitionsResult>, RaftQuorumError> {
        let request = ControllerRequest::CreatePartitions {
            requests: requests.to_vec(),
            validate_only,
        };
        match self.shared.call(request).await? {
            ControllerReply::CreatePartitions(results) => Ok(results),
            other => Err(other.unexpected()),
        }
    }

    /// Registers broker `broker_id` at `host:port`. A new registration (or one with a new
    /// address or rack) is written fenced, as in KRaft: the broker gets no leadership and
    /// no new replicas until its first [`RaftQuorum::broker_heartbeat`]. Nothing is written
    /// when the image already has exactly this registration. Either way the broker's
    /// session clock starts now and a controlled shutdown it was in is over, so a broker
    /// calls this every time it starts.
    pub async fn register_broker(
        &self,
        broker_id: i32,
        host: &str,
        port: u16,
        rack: Option<&str>,
        listeners: &[BrokerListener],
    ) -> Result<(), RaftQuorumError> {
        let request = ControllerRequest::RegisterBroker {
            broker_id,
            host: host.to_string(),
            port,
            rack: rack.map(str::to_string),
            listeners: listeners.to_vec(),
        };
        match self.shared.call(request).await? {
            ControllerReply::Done => Ok(()),
            other => Err(other.unexpected()),
        }
    }

    /// Incremental config change on one topic (`None` removes a key), decided by
    /// [`crate::Controller::alter_topic_configs`]; the inner `Err` is the per-topic answer.
    pub async fn alter_topic_configs(
        &self,
        topic: &str,
        changes: &[(String, Option<String>)],
        validate_only: bool,
    ) -> Result<Result<(), ControllerError>, RaftQuorumError> {
        let request = ControllerRequest::AlterTopicConfigs {
            topic: topic.to_string(),
            changes: changes.to_vec(),
            validate_only,
        };
        match self.shared.call(request).await? {
            ControllerReply::AlterTopicConfigs(outcome) => Ok(outcome),
            other => Err(other.unexpected()),
        }
    }

    /// Writes SCRAM credential changes (upserts and removals, validated by the broker) as
    /// one entry.
    pub async fn alter_scram_credentials(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<(), RaftQuorumError> {
        self.done(ControllerRequest::AlterScramCredentials { records })
            .await
    }

    /// Writes ACL creations and deletions (validated by the broker) as one entry.
    pub async fn alter_acls(&self, records: Vec<MetadataRecord>) -> Result<(), RaftQuorumError> {
        self.done(ControllerRequest::AlterAcls { records }).await
    }

    /// Writes client quota changes (validated by the broker) as one entry.
    pub async fn alter_client_quotas(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<(), RaftQuorumError> {
        self.done(ControllerRequest::AlterClientQuotas { records })
            .await
    }

    /// A heartbeat of broker `broker_id`: the leader notes the time (its session lasts
    /// `broker_session_timeout_ms` from now) and unfences the broker if it is fenced,
    /// which also gives it the leadership of offline partitions whose ISR has it. A broker
    /// in controlled shutdown stays fenced (`fenced: true`) until it registers again.
    /// [`RaftQuorumError::BrokerNotRegistered`] when the broker must register first.
    pub async fn broker_heartbeat(
        &self,
        broker_id: i32,
    ) -> Result<HeartbeatReply, RaftQuorumError> {
        match self
            .shared
            .call(ControllerRequest::BrokerHeartbeat { broker_id })
            .await?
        {
            ControllerReply::Heartbeat(reply) => Ok(reply),
            other => Err(other.unexpected()),
        }
    }

    /// Kafka's AlterPartition: the leader `broker_id` of `partition` sets its ISR to
    /// `new_isr`. Accepted only at the current `leader_epoch` and `partition_epoch`, from the
    /// current leader, with an ISR that holds the leader and only assigned, unfenced
    /// replicas; otherwise [`RaftQuorumError::AlterPartition`] with the reason (and its Kafka
    /// code). Answers the partition's state as committed (partition epoch + 1; unchanged
    /// and nothing written when the ISR already is `new_isr`).
    pub async fn alter_partition(
        &self,
        broker_id: i32,
        topic_id: Uuid,
        partition: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        new_isr: Vec<i32>,
    ) -> Result<PartitionState, RaftQuorumError> {
        let request = ControllerRequest::AlterPartition(AlterPartition {
            broker_id,
            topic_id,
            partition,
            leader_epoch,
            partition_epoch,
            new_isr,
        });
        match self.shared.call(request).await? {
            ControllerReply::AlterPartition(state) => Ok(state),
            other => Err(other.unexpected()),
        }
    }

    /// AlterPartition with many partitions in one request (Kafka's AlterPartition carries
    /// every ISR change a leader has pending): each entry is checked and answered as by
    /// [`RaftQuorum::alter_partition`], against the state the earlier entries left, and
    /// the changes of all accepted entries are committed as one entry. One answer per
    /// entry, in order; the outer error is for the whole request (no leader, a timeout),
    /// when it is not known whether the changes were applied.
    pub async fn alter_partitions(
        &self,
        requests: Vec<AlterPartition>,
    ) -> Result<Vec<Result<PartitionState, PartitionChangeError>>, RaftQuorumError> {
        match self
            .shared
            .call(ControllerRequest::AlterPartitions { requests })
            .await?
        {
            ControllerReply::AlterPartitions(answers) => Ok(answers),
            other => Err(other.unexpected()),
        }
    }

    /// ElectLeaders: with `preferred`, each partition's first replica takes the lead when
    /// it is in the ISR and unfenced; otherwise (unclean) a partition without a leader gets
    /// its first unfenced replica. One [`ElectionResult`] per entry, in order.
    pub async fn elect_leaders(
        &self,
        partitions: Vec<(Uuid, i32)>,
        preferred: bool,
    ) -> Result<Vec<ElectionResult>, RaftQuorumError> {
        let request = ControllerRequest::ElectLeaders {
            partitions: partitions
                .into_iter()
                .map(|(topic_id, partition)| PartitionRef {
                    topic_id,
                    partition,
                })
                .collect(),
            preferred,
        };
        match self.shared.call(request).await? {
            ControllerReply::ElectLeaders(results) => Ok(results),
            other => Err(other.unexpected()),
        }
    }

    /// Controlled shutdown of broker `broker_id`: fences it and, in the same entry, moves
    /// every leadership it has to another in-sync unfenced replica and takes it out of
    /// every ISR (a partition it alone has in sync goes offline, as on a crash). Answers
    /// once committed; the broker may then stop, and should stop heartbeating (its
    /// heartbeats no longer unfence it until it registers again).
    pub async fn controlled_shutdown(&self, broker_id: i32) -> Result<(), RaftQuorumError> {
        self.done(ControllerRequest::ControlledShutdown { broker_id })
            .await
    }

    /// AlterPartitionReassignments (KIP-455), decided by
    /// [`crate::Controller::alter_partition_reassignments`]: per partition a target replica
    /// list (`None` cancels). One [`ReassignmentResult`] per entry, in order, once the
    /// start (or cancel) is committed; the move itself completes later, when the ISR holds
    /// every target replica.
    pub async fn alter_partition_reassignments(
        &self,
        requests: Vec<ReassignmentRequest>,
    ) -> Result<Vec<ReassignmentResult>, RaftQuorumError> {
        let request = ControllerRequest::AlterPartitionReassignments { requests };
        match self.shared.call(request).await? {
            ControllerReply::AlterPartitionReassignments(results) => Ok(results),
            other => Err(other.unexpected()),
        }
    }

    /// ListPartitionReassignments: the reassignments in progress, read on the leader (all
    /// of them, or only among `partitions`).
    pub async fn list_partition_reassignments(
        &self,
        partitions: Option<Vec<(Uuid, i32)>>,
    ) -> Result<Vec<OngoingReassignment>, RaftQuorumError> {
        let request = ControllerRequest::ListPartitionReassignments {
            partitions: partitions.map(|partitions| {
                partitions
                    .into_iter()
                    .map(|(topic_id, partition)| PartitionRef {
                        topic_id,
                        partition,
                    })
                    .collect()
            }),
        };
        match self.shared.call(request).await? {
            ControllerReply::ListPartitionReassignments(ongoing) => Ok(ongoing),
            other => Err(other.unexpected()),
        }
    }

    /// An observer (a broker-only node) asks the leader to send it the metadata log at its
    /// raft address: the leader adds it to the membership as a learner, or updates its
    /// address, and replicates to it from then on (a snapshot first when the log it needs
    /// was purged). Nothing is written when the membership already has this address. Call
    /// it at every start (the address may have changed) before waiting to catch up.
    pub async fn join_as_observer(&self) -> Result<(), RaftQuorumError> {
        let Some(address) = self.shared.observer_address.clone() else {
            return Err(RaftQuorumError::NotAnObserver {
                node_id: self.shared.node_id,
            });
        };
        self.done(ControllerRequest::AddObserver {
            node_id: self.shared.node_id,
            address,
        })
        .await
    }

    async fn done(&self, request: ControllerRequest) -> Result<(), RaftQuorumError> {
        match self.shared.call(request).await? {
            ControllerReply::Done => Ok(()),
            other => Err(other.unexpected()),
        }
    }
}

impl Shared {
    /// Runs `request` here, as the leader; never forwards (a forwarded request that finds
    /// this node no longer leading answers [`RaftQuorumError::NotLeader`] and the caller
    /// tries the new leader).
    pub(super) async fn execute(
        &self,
        request: ControllerRequest,
    ) -> Result<ControllerReply, RaftQuorumError> {
        Ok(match request {
            ControllerRequest::Propose { records } => {
                let _serialized = self.controller.lock().await;
                ControllerReply::Proposed {
                    index: self.propose(records).await?,
                }
            }
            ControllerRequest::CreateTopics {
                requests,
                validate_only,
                defaults,
            } => ControllerReply::CreateTopics(
                self.decide(|controller, image| {
                    controller.create_topics(image, &requests, validate_only, &defaults)
                })
                .await?,
            ),
            ControllerRequest::DeleteTopics { topics } => ControllerReply::DeleteTopics(
                self.decide(|controller, image| controller.delete_topics(image, &topics))
                    .await?,
            ),
            ControllerRequest::CreatePartitions {
                requests,
                validate_only,
            } => ControllerReply::CreatePartitions(
                self.decide(|controller, image| {
                    controller.create_partitions(image, &requests, validate_only)
                })
                .await?,
            ),
            ControllerRequest::RegisterBroker {
                broker_id,
                host,
                port,
                rack,
                listeners,
            } => {
                self.decide(|controller, image| {
                    self.liveness(Instant::now())
                        .registered(broker_id, Instant::now());
                    let Some(record) = controller.register_broker(
                        image,
                        broker_id,
                        &host,
                        port,
                        rack.as_deref(),
                        &listeners,
                    ) else {
                        return Decision {
                            records: Vec::new(),
                            response: (),
                        };
                    };
                    // Fence the (re-)registered broker, moving away whatever it led.
                    let mut registered = image.clone();
                    registered
                        .apply(&record)
                        .expect("a registration always fits the image");
                    let mut records = vec![record];
                    records.extend(controller.fence_brokers(&registered, &[broker_id]).records);
                    Decision {
                        records,
                        response: (),
                    }
                })
                .await?;
                ControllerReply::Done
            }
            ControllerRequest::AlterTopicConfigs {
                topic,
                changes,
                validate_only,
            } => ControllerReply::AlterTopicConfigs(
                self.decide(|controller, image| {
                    controller.alter_topic_configs(image, &topic, &changes, validate_only)
                })
                .await?,
            ),
            ControllerRequest::AlterScramCredentials { records } => {
                self.decide(|controller, _| controller.alter_scram_credentials(records))
                    .await?;
                ControllerReply::Done
            }
            ControllerRequest::AlterAcls { records } => {
                self.decide(|controller, _| controller.alter_acls(records))
                    .await?;
                ControllerReply::Done
            }
            ControllerRequest::AlterClientQuotas { records } => {
                self.decide(|controller, _| controller.alter_client_quotas(records))
                    .await?;
                ControllerReply::Done
            }
            ControllerRequest::BrokerHeartbeat { broker_id } => {
                let reply = self
                    .decide(|controller, image| {
                        let now = Instant::now();
                        let mut liveness = self.liveness(now);
                        let refused = |error| Decision {
                            records: Vec::new(),
                            response: Err(error),
                        };
                        let Some(broker) = image.broker(broker_id) else {
                            return refused(RaftQuorumError::BrokerNotRegistered { broker_id });
                        };
                        liveness.heartbeat(broker_id, now);
                        if liveness.is_shutting_down(broker_id) {
                            return Decision {
                                records: Vec::new(),
                                response: Ok(HeartbeatReply {
                                    fenced: broker.fenced,
                                }),
                            };
                        }
                        Decision {
                            records: controller.unfence_broker(image, broker_id).records,
                            response: Ok(HeartbeatReply { fenced: false }),
                        }
                    })
                    .await??;
                ControllerReply::Heartbeat(reply)
            }
            ControllerRequest::AlterPartition(request) => {
                let state = self
                    .decide(|controller, image| controller.alter_partition(image, &request))
                    .await?
                    .map_err(RaftQuorumError::AlterPartition)?;
                ControllerReply::AlterPartition(state)
            }
            ControllerRequest::AlterPartitions { requests } => ControllerReply::AlterPartitions(
                self.decide(|controller, image| controller.alter_partitions(image, &requests))
                    .await?,
            ),
            ControllerRequest::ElectLeaders {
                partitions,
                preferred,
            } => {
                let partitions: Vec<(Uuid, i32)> = partitions
                    .iter()
                    .map(|p| (p.topic_id, p.partition))
                    .collect();
                ControllerReply::ElectLeaders(
                    self.decide(|controller, image| {
                        controller.elect_leaders(image, &partitions, preferred)
                    })
                    .await?,
                )
            }
            ControllerRequest::AlterPartitionReassignments { requests } => {
                ControllerReply::AlterPartitionReassignments(
                    self.decide(|controller, image| {
                        controller.alter_partition_reassignments(image, &requests)
                    })
                    .await?,
                )
            }
            ControllerRequest::ListPartitionReassignments { partitions } => {
                let only: Option<Vec<(Uuid, i32)>> = partitions.map(|partitions| {
                    partitions
                        .iter()
                        .map(|p| (p.topic_id, p.partition))
                        .collect()
                });
                ControllerReply::ListPartitionReassignments(
                    self.decide(|_, image| Decision {
                        records: Vec::new(),
                        response: list_reassignments(image, only.as_deref()),
                    })
                    .await?,
                )
            }
            ControllerRequest::DescribeQuorum => {
                ControllerReply::DescribeQuorum(self.describe_quorum().await?)
            }
            ControllerRequest::AddObserver { node_id, address } => {
                self.add_observer(node_id, address).await?;
                ControllerReply::Done
            }
            ControllerRequest::UnregisterBroker { broker_id } => {
                self.unregister_broker(broker_id).await?;
                ControllerReply::Done
            }
            ControllerRequest::ControlledShutdown { broker_id } => {
                let registered = self
                    .decide(|controller, image| {
                        let decision = controller.controlled_shutdown(image, broker_id);
                        if decision.response {
                            self.liveness(Instant::now()).begin_shutdown(broker_id);
                        }
                        decision
                    })
                    .await?;
                if !registered {
                    return Err(RaftQuorumError::BrokerNotRegistered { broker_id });
                }
                ControllerReply::Done
            }
        })
    }
}

impl Shared {
    /// Adds observer `node_id` at `address` to the membership as a learner (or moves it
    /// there), on the leader. A voter's id is refused: a learner entry for it would demote
    /// nothing but would confuse every later membership change.
    async fn add_observer(&self, node_id: i32, address: String) -> Result<(), RaftQuorumError> {
        // One membership change at a time, in order with this node's proposals.
        let _serialized = self.controller.lock().await;
        self.ensure_linearizable().await?;
        let id = raft_node_id(node_id);
        let membership = self.raft.metrics().borrow().membership_config.clone();
        if membership.membership().voter_ids().any(|voter| voter == id) {
            return Err(RaftQuorumError::ObserverIsVoter { node_id });
        }
        if membership
            .membership()
            .get_node(&id)
            .is_some_and(|node| node.addr == address)
        {
            return Ok(());
        }
        let change = ChangeMembers::SetNodes(BTreeMap::from([(id, BasicNode::new(&address))]));
        let changed = tokio::time::timeout(
            self.propose_timeout,
            self.raft.change_membership(change, true),
        )
        .await
        .map_err(|_| self.timeout("adding an observer to the membership"))?;
        match changed {
            Ok(_) => {
                tracing::info!(node_id, %address, "observer added to the controller quorum membership");
                Ok(())
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                Err(RaftQuorumError::NotLeader {
                    leader: forward.leader_id.map(kafka_node_id),
                })
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(error))) => {
                Err(RaftQuorumError::MembershipChange(Box::new(error)))
            }
            Err(RaftError::Fatal(fatal)) => Err(RaftQuorumError::Stopped(Box::new(fatal))),
        }
    }
}
