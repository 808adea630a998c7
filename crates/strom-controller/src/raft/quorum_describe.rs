//! DescribeQuorum (KIP-595) as the leader sees the metadata log: who leads in which term,
//! how far the log is committed, and how far each voter and observer has replicated it.

use serde::{Deserialize, Serialize};

use crate::raft::error::RaftQuorumError;
use crate::raft::forward::{ControllerReply, ControllerRequest};
use crate::raft::quorum::{RaftQuorum, Shared};
use crate::raft::types::{kafka_node_id, RaftNodeId};

/// One replica of the metadata log, as the leader knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumReplica {
    pub node_id: i32,
    /// One past the last entry the leader knows this replica holds (Raft index + 1); 0
    /// when it has confirmed nothing yet.
    pub log_end_offset: i64,
    /// The replica's Raft address, from the membership.
    pub address: Option<String>,
}

/// The quorum's state, read on the leader after confirming its leadership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumDescription {
    pub leader_id: i32,
    /// The Raft term (KRaft's leader epoch).
    pub leader_epoch: i32,
    /// One past the last entry applied on the leader (everything below is committed).
    pub high_watermark: i64,
    /// Voters in node id order, the leader included.
    pub voters: Vec<QuorumReplica>,
    /// Observers (broker-only nodes receiving the log) in node id order.
    pub observers: Vec<QuorumReplica>,
}

impl RaftQuorum {
    /// DescribeQuorum: the leader, its term, the commit point and every replica's progress,
    /// answered by the leader (forwarded from any node).
    pub async fn describe_quorum(&self) -> Result<QuorumDescription, RaftQuorumError> {
        match self.shared.call(ControllerRequest::DescribeQuorum).await? {
            ControllerReply::DescribeQuorum(description) => Ok(description),
            other => Err(other.unexpected()),
        }
    }
}

impl Shared {
    pub(super) async fn describe_quorum(&self) -> Result<QuorumDescription, RaftQuorumError> {
        self.ensure_linearizable().await?;
        let metrics = self.raft.metrics().borrow().clone();
        let leader_id = kafka_node_id(metrics.id);
        let matched = metrics.replication.clone().unwrap_or_default();
        let membership = metrics.membership_config.membership().clone();
        let replica = |id: RaftNodeId| {
            let log_end_offset = if id == metrics.id {
                metrics.last_log_index.map_or(0, |index| index as i64 + 1)
            } else {
                matched
                    .get(&id)
                    .copied()
                    .flatten()
                    .map_or(0, |log_id| log_id.index as i64 + 1)
            };
            QuorumReplica {
                node_id: kafka_node_id(id),
                log_end_offset,
                address: membership.get_node(&id).map(|node| node.addr.clone()),
            }
        };
        let mut voters: Vec<RaftNodeId> = membership.voter_ids().collect();
        voters.sort_unstable();
        let mut observers: Vec<RaftNodeId> = membership.learner_ids().collect();
        observers.sort_unstable();
        Ok(QuorumDescription {
            leader_id,
            leader_epoch: i32::try_from(metrics.current_term).unwrap_or(i32::MAX),
            high_watermark: metrics
                .last_applied
                .map_or(0, |log_id| log_id.index as i64 + 1),
            voters: voters.into_iter().map(replica).collect(),
            observers: observers.into_iter().map(replica).collect(),
        })
    }
}
