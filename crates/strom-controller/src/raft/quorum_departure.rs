//! UnregisterBroker on the replicated quorum: a broker leaves the cluster for good. The
//! leader decides it with [`crate::Controller::unregister_broker`] (out of every
//! leadership and ISR, then the registration removed, in one entry), forgets the broker's
//! session, and takes an observer out of the Raft membership so DescribeQuorum no longer
//! lists it (a voter stays a voter: changing voters is KIP-853's AddRaftVoter and
//! RemoveRaftVoter).

use std::collections::BTreeSet;
use std::time::Instant;

use openraft::error::{ClientWriteError, RaftError};
use openraft::ChangeMembers;

use crate::raft::error::RaftQuorumError;
use crate::raft::forward::{ControllerReply, ControllerRequest};
use crate::raft::quorum::{RaftQuorum, Shared};
use crate::raft::types::{kafka_node_id, raft_node_id};

impl RaftQuorum {
    /// UnregisterBroker: broker `broker_id` leaves the cluster for good (see the module
    /// docs). Its heartbeats are refused from then on
    /// ([`RaftQuorumError::BrokerNotRegistered`]); registering again (a restart) brings
    /// it back as a new broker. [`RaftQuorumError::BrokerNotRegistered`] when it is not
    /// registered.
    pub async fn unregister_broker(&self, broker_id: i32) -> Result<(), RaftQuorumError> {
        match self
            .shared
            .call(ControllerRequest::UnregisterBroker { broker_id })
            .await?
        {
            ControllerReply::Done => Ok(()),
            other => Err(other.unexpected()),
        }
    }
}

impl Shared {
    /// Runs an UnregisterBroker here, as the leader.
    pub(super) async fn unregister_broker(&self, broker_id: i32) -> Result<(), RaftQuorumError> {
        let registered = self
            .decide(|controller, image| {
                let decision = controller.unregister_broker(image, broker_id);
                if decision.response {
                    self.liveness(Instant::now()).forget(broker_id);
                }
                decision
            })
            .await?;
        if !registered {
            return Err(RaftQuorumError::BrokerNotRegistered { broker_id });
        }
        self.remove_observer(broker_id).await
    }

    /// Takes observer `node_id` out of the membership. A voter, or a node not in the
    /// membership, is left as it is.
    async fn remove_observer(&self, node_id: i32) -> Result<(), RaftQuorumError> {
        // One membership change at a time, in order with this node's proposals.
        let _serialized = self.controller.lock().await;
        self.ensure_linearizable().await?;
        let id = raft_node_id(node_id);
        let membership = self.raft.metrics().borrow().membership_config.clone();
        if !membership
            .membership()
            .learner_ids()
            .any(|learner| learner == id)
        {
            return Ok(());
        }
        let change = ChangeMembers::RemoveNodes(BTreeSet::from([id]));
        let changed = tokio::time::timeout(
            self.propose_timeout,
            self.raft.change_membership(change, false),
        )
        .await
        .map_err(|_| self.timeout("removing an observer from the membership"))?;
        match changed {
            Ok(_) => {
                tracing::info!(
                    node_id,
                    "observer removed from the controller quorum membership"
                );
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
