//! The broker's side of the cluster: proposing ISR changes for the partitions it leads.
//!
//! A leader's [`crate::replication::leader::LeaderState`] decides when a follower joins or
//! leaves the ISR; the change becomes real only when the controller commits it to the
//! metadata log, and comes back to every broker in the image. Proposals are batched into
//! AlterPartition requests by [`isr_sender`].

pub mod isr_sender;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::metadata::Metadata;
use crate::partition::ReplicaRole;
use crate::state::{now_ms, Broker};

/// Pause between registration attempts while the quorum has no leader yet.
const REGISTRATION_RETRY: Duration = Duration::from_millis(500);
/// Heartbeats outstanding at once (a stalled controller holds each until its timeout).
const HEARTBEATS_IN_FLIGHT_MAX: usize = 8;
/// Longest a clean stop waits for the controller to move leadership away.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// An ISR change a leader asks the controller for (Kafka's AlterPartition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
}

impl IsrProposal {
    /// `isr` for `partition`, based on the leader and partition epochs it has now.
    pub fn for_partition(partition: &crate::partition::Partition, isr: Vec<i32>) -> Self {
        IsrProposal {
            topic_id: partition.topic_id,
            partition: partition.index,
            leader_epoch: partition.leader_epoch(),
            partition_epoch: partition.partition_epoch(),
            isr,
        }
    }
}

/// Queues `proposal` for the controller ([`isr_sender`]): the next AlterPartition request
/// this broker sends carries it, with every other change queued by then. A refusal is
/// forgotten (the image brings the current state); a lost answer is resent as long as the
/// proposal is still the leader's pending one, since a leader whose proposal never reached
/// the controller would otherwise wait for an image that never comes, with its ISR frozen.
///
/// An ISR naming a replica this broker's image shows fenced (a restarted broker before its
/// first heartbeat) is not sent, as Kafka's leaders do not propose ineligible replicas
/// (KIP-841): the controller would refuse it, and thousands of partitions would ask again
/// on every fetch. The proposal is dropped instead and made again on a fetch once the
/// image shows the replica unfenced.
pub fn propose_isr(broker: &Arc<Broker>, proposal: IsrProposal) {
    let image = broker.image();
    if let Some(fenced) = proposal
        .isr
        .iter()
        .find(|&&replica| !image.is_broker_unfenced(replica))
    {
        debug!(
            ?proposal,
            fenced, "not proposing an ISR with a fenced replica"
        );
        if let Some(partition) = broker
            .partitions()
            .get(proposal.topic_id, proposal.partition)
        {
            if let ReplicaRole::Leader(state) = &mut *partition.role.lock() {
                if state.pending_isr() == Some(proposal.isr.as_slice()) {
                    state.on_isr_proposal_not_applied();
                }
            }
        }
        return;
    }
    debug!(?proposal, "proposing an ISR change");
    broker.isr_sender().enqueue(proposal);
}

/// Starts what a broker of a Raft cluster runs besides serving clients: registration and
/// heartbeats to the active controller, installing every new image, ISR shrinking for the
/// partitions it leads, the AlterPartition sender, and the replica fetcher. A single-node
/// broker runs the ISR check and the (idle) sender only: it never has followers, so it
/// never proposes anything.
pub fn spawn_tasks(broker: &Arc<Broker>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = vec![
        spawn_isr_shrinker(broker.clone()),
        isr_sender::spawn(broker.clone()),
    ];
    if matches!(broker.metadata(), Metadata::Raft(_)) {
        tasks.push(spawn_membership(broker.clone()));
        tasks.push(spawn_image_follower(broker.clone()));
        tasks.push(crate::replica_fetcher::spawn(broker.clone()));
    }
    tasks
}

fn raft(broker: &Broker) -> &strom_controller::RaftQuorum {
    match broker.metadata() {
        Metadata::Raft(raft) => raft,
        Metadata::Local(_) => unreachable!("cluster tasks run on Raft brokers only"),
    }
}

/// Registers this broker (until it succeeds), then heartbeats every
/// `broker.heartbeat.interval.ms`. A broker the controller fenced is unfenced by its next
/// heartbeat.
fn spawn_membership(broker: Arc<Broker>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = Duration::from_millis(broker.config().cluster.heartbeat_interval_ms as u64);
        loop {
            if broker.config().cluster.roles.is_broker_only() {
                if let Err(error) = raft(&broker).join_as_observer().await {
                    debug!(%error, "observer join not accepted yet; retrying");
                    tokio::time::sleep(REGISTRATION_RETRY).await;
                    continue;
                }
            }
            let registered = raft(&broker)
                .register_broker(
                    broker.config().node_id,
                    broker.advertised_host(),
                    broker.advertised_port(),
                    broker.config().cluster.rack.as_deref(),
                    broker.advertised_listeners(),
                )
                .await;
            match registered {
                Ok(()) => {
                    info!(
                        node_id = broker.config().node_id,
                        "registered with the controller quorum"
                    );
                    break;
                }
                Err(error) => {
                    debug!(%error, "registration not accepted yet; retrying");
                    tokio::time::sleep(REGISTRATION_RETRY).await;
                }
            }
        }
        let mut tick = tokio::time::interval(interval);
        let fenced = Arc::new(AtomicBool::new(false));
        let in_flight = Arc::new(AtomicUsize::new(0));
        loop {
            tick.tick().await;
            // Each heartbeat on its own task: one stuck on a controller that stopped
            // answering (its connection accepts but nobody reads) must not hold back the
            // next, or the new controller would fence this healthy broker.
            if in_flight.load(Ordering::Acquire) >= HEARTBEATS_IN_FLIGHT_MAX {
                continue;
            }
            in_flight.fetch_add(1, Ordering::AcqRel);
            let (broker, fenced, in_flight) = (broker.clone(), fenced.clone(), in_flight.clone());
            tokio::spawn(async move {
                match raft(&broker)
                    .broker_heartbeat(broker.config().node_id)
                    .await
                {
                    Ok(reply) => {
                        if fenced.swap(reply.fenced, Ordering::AcqRel) != reply.fenced {
                            info!(
                                fenced = reply.fenced,
                                "controller changed this broker's fencing"
                            );
                        }
                    }
                    Err(error) => debug!(%error, "heartbeat not delivered"),
                }
                in_flight.fetch_sub(1, Ordering::AcqRel);
            });
        }
    })
}

/// Installs every image the quorum publishes (partitions open, change roles, close).
fn spawn_image_follower(broker: Arc<Broker>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut images = raft(&broker).subscribe();
        loop {
            let image = images.borrow_and_update().clone();
            if !Arc::ptr_eq(&image, &broker.image()) {
                if let Err(error) = broker.apply_image_off_runtime(image).await {
                    warn!(%error, "cannot apply the metadata image");
                }
                // Leadership moved: waiting fetches and produces must look again.
                broker.notify_appended();
            }
            if images.changed().await.is_err() {
                return;
            }
        }
    })
}

/// Leaders drop followers that have not caught up for `replica.lag.time.max.ms`.
fn spawn_isr_shrinker(broker: Arc<Broker>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let lag_max_ms = broker.config().cluster.replica_lag_time_max_ms;
        let period = Duration::from_millis((lag_max_ms as u64 / 2).clamp(100, 5_000));
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let now = now_ms();
            for partition in broker.partitions().all() {
                let proposal = match &*partition.role.lock() {
                    ReplicaRole::Leader(state) => state
                        .isr_to_shrink(now, lag_max_ms)
                        .map(|isr| IsrProposal::for_partition(&partition, isr)),
                    ReplicaRole::Follower { .. } => None,
                };
                if let Some(proposal) = proposal {
                    info!(topic = %partition.topic, partition = partition.index, isr = ?proposal.isr, "follower lagging: shrinking the ISR");
                    propose_isr(&broker, proposal);
                }
            }
        }
    })
}

/// Before a clean stop: ask the controller to move leadership away from this broker and
/// take it out of every ISR, so clients move on without waiting for a session timeout.
pub async fn controlled_shutdown(broker: &Arc<Broker>) {
    let Metadata::Raft(raft) = broker.metadata() else {
        return;
    };
    info!("controlled shutdown: moving leadership away");
    match tokio::time::timeout(
        CONTROLLED_SHUTDOWN_TIMEOUT,
        raft.controlled_shutdown(broker.config().node_id),
    )
    .await
    {
        Ok(Ok(())) => info!("controlled shutdown done"),
        Ok(Err(error)) => warn!(%error, "controlled shutdown refused; stopping anyway"),
        Err(_) => warn!("controlled shutdown timed out; stopping anyway"),
    }
}
