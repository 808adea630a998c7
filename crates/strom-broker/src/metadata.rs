//! Where this broker's metadata lives: a local single-voter metadata log (the single-node
//! default), or a Raft quorum of controllers shared by the cluster
//! (`controller.quorum.voters`). Every metadata change goes through here; the resulting
//! image reaches the broker through [`crate::state::Broker::apply_image`].

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strom_controller::{MetadataImage, MetadataQuorum, RaftQuorum};

use crate::cluster::IsrProposal;
use crate::state::Broker;

/// How long a change made through another node waits to show up in this node's image.
const LOCAL_IMAGE_WAIT: Duration = Duration::from_secs(10);

/// Why the controller did not take an ISR change.
#[derive(Debug)]
pub struct IsrRefusal {
    pub message: String,
    /// The refusal proves nothing was written (the leader may drop its proposal).
    pub nothing_applied: bool,
    /// No decision came back (a transport error, a timeout, no controller leader): the
    /// proposal may or may not have been applied, and the same proposal is sent again.
    pub answer_lost: bool,
}

pub enum Metadata {
    /// One voter: the metadata log is a local file, decisions are made in process.
    Local(Mutex<MetadataQuorum>),
    /// A Raft quorum of controllers; changes are forwarded to its leader.
    Raft(RaftQuorum),
}

impl Metadata {
    pub fn image(&self) -> Arc<MetadataImage> {
        match self {
            Metadata::Local(quorum) => quorum.lock().image(),
            Metadata::Raft(raft) => raft.image(),
        }
    }

    /// The active controller's node id (this node for a local log), if there is one.
    pub fn active_controller(&self, node_id: i32) -> Option<i32> {
        match self {
            Metadata::Local(_) => Some(node_id),
            Metadata::Raft(raft) => raft.leader(),
        }
    }

    /// One AlterPartition request for many partitions ([`crate::cluster::isr_sender`]):
    /// one answer per proposal, in order, or one refusal for the whole request (with
    /// `answer_lost` when no decision came back). A single-node log never has followers,
    /// so it never gets here.
    pub async fn alter_partitions(
        &self,
        broker: &Arc<Broker>,
        proposals: &[IsrProposal],
    ) -> Result<Vec<Result<(), IsrRefusal>>, IsrRefusal> {
        let raft = match self {
            Metadata::Local(_) => {
                return Err(IsrRefusal {
                    message: "a single-node cluster has no followers".into(),
                    nothing_applied: true,
                    answer_lost: false,
                })
            }
            Metadata::Raft(raft) => raft,
        };
        let requests = proposals
            .iter()
            .map(|proposal| strom_controller::AlterPartition {
                broker_id: broker.config().node_id,
                topic_id: proposal.topic_id,
                partition: proposal.partition,
                leader_epoch: proposal.leader_epoch,
                partition_epoch: proposal.partition_epoch,
                new_isr: proposal.isr.clone(),
            })
            .collect();
        let answers = raft
            .alter_partitions(requests)
            .await
            .map_err(|error| IsrRefusal {
                // Only a rejected entry is a decision (nothing of it was applied, but a
                // change sent earlier may have been).
                answer_lost: !matches!(&error, strom_controller::RaftQuorumError::Rejected { .. }),
                nothing_applied: false,
                message: error.to_string(),
            })?;
        Ok(answers
            .into_iter()
            .map(|answer| {
                answer.map(|_| ()).map_err(|error| IsrRefusal {
                    // An ineligible replica is refused before anything is written.
                    nothing_applied: matches!(
                        error,
                        strom_controller::PartitionChangeError::IneligibleReplica { .. }
                    ),
                    answer_lost: false,
                    message: error.to_string(),
                })
            })
            .collect())
    }
}

/// Waits until this node's image satisfies `ready` (a change committed through the
/// controller leader reaches followers a moment later), then installs it.
pub async fn wait_for_local_image(
    broker: &Arc<Broker>,
    ready: impl Fn(&MetadataImage) -> bool,
) -> Result<(), crate::partition::PartitionError> {
    let Metadata::Raft(raft) = broker.metadata() else {
        return Ok(());
    };
    let mut images = raft.subscribe();
    let deadline = tokio::time::Instant::now() + LOCAL_IMAGE_WAIT;
    loop {
        let image = images.borrow_and_update().clone();
        if ready(&image) {
            return broker.apply_image_off_runtime(image).await;
        }
        if tokio::time::timeout_at(deadline, images.changed())
            .await
            .map_or(true, |r| r.is_err())
        {
            return broker.apply_image_off_runtime(raft.image()).await;
        }
    }
}
