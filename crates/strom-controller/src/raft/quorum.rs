//! [`RaftQuorum`]: the replicated metadata quorum as the broker will use it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ServerState, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use crate::controller::{Controller, Decision};
use crate::ids::{IdGenerator, RandomIds};
use crate::image::MetadataImage;
use crate::log::{METADATA_ENTRY_BYTES_MAX, METADATA_LOG_DIR_NAME};
use crate::raft::error::RaftQuorumError;
use crate::raft::forward::{
    forward, ControllerReply, ControllerRequest, ForwardError, ForwardFailure,
};
use crate::raft::liveness::BrokerLiveness;
use crate::raft::log_store::LogStore;
use crate::raft::network::PeerNetworkFactory;
use crate::raft::server::{serve, stopped, ForwardHandler, RAFT_FRAME_IO_TIMEOUT};
use crate::raft::state_machine::StateMachine;
use crate::raft::types::{
    kafka_node_id, raft_node_id, EntryOutcome, MetadataProposal, Raft, RaftNodeId, Voter,
};
use crate::record::MetadataRecord;

/// Directory of the raft files inside [`METADATA_LOG_DIR_NAME`].
pub const RAFT_DIR_NAME: &str = "raft";
/// Default interval of leader heartbeats (also openraft's AppendEntries deadline).
pub const RAFT_HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 200;
/// Default lower bound of the randomized election timeout (Kafka's
/// `controller.quorum.election.timeout.ms` is 1000).
pub const RAFT_ELECTION_TIMEOUT_MIN_MS_DEFAULT: u64 = 1000;
/// Default upper bound of the randomized election timeout.
pub const RAFT_ELECTION_TIMEOUT_MAX_MS_DEFAULT: u64 = 2000;
/// Default number of entries after which a snapshot is taken.
pub const RAFT_SNAPSHOT_EVERY_ENTRIES_DEFAULT: u64 = 1000;
/// Default number of entries kept in the log behind a snapshot, so a briefly lagging
/// follower catches up from the log instead of receiving the whole snapshot.
pub const RAFT_ENTRIES_KEPT_AFTER_SNAPSHOT_DEFAULT: u64 = 100;
/// Default longest wait for a proposal to commit (or for leadership to be confirmed).
pub const RAFT_PROPOSE_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// Size of one InstallSnapshot chunk. Its JSON (bytes as numbers, up to 4 characters each)
/// stays far below [`super::RAFT_FRAME_BYTES_MAX`].
pub const RAFT_SNAPSHOT_CHUNK_BYTES: u64 = 4 * 1024 * 1024;
/// Longest wait for a whole snapshot chunk to be sent and installed.
pub const RAFT_INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 10_000;
/// Default `broker.session.timeout.ms` (Kafka's default): a broker not heard from for this
/// long is fenced by the leader.
pub const RAFT_BROKER_SESSION_TIMEOUT_MS_DEFAULT: u64 = 9000;
/// How often the leader looks for brokers whose session expired.
pub const RAFT_BROKER_LIVENESS_TICK_MS: u64 = 250;
/// Pause before a forwarded operation is retried after the leader changed or could not be
/// reached.
const FORWARD_RETRY_INTERVAL: Duration = Duration::from_millis(50);
/// Pause between attempts of the new leader to write the cluster id.
const BOOTSTRAP_RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// Where a node keeps its raft files: `<data_dir>/__cluster_metadata-0/raft/`.
pub fn raft_directory(data_dir: &Path) -> PathBuf {
    data_dir.join(METADATA_LOG_DIR_NAME).join(RAFT_DIR_NAME)
}

/// What a node is in the controller quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumRole {
    /// A controller: votes, may lead, and serves Raft on its entry of the voter list.
    Voter,
    /// A broker-only node (KRaft's observer): it is no voter, but receives the metadata
    /// log as an openraft learner. It serves Raft at `address` (`host:port`; port 0 picks
    /// a free port), which it announces to the leader ([`RaftQuorum::join_as_observer`]),
    /// and reaches the voters through their entries of the voter list.
    Observer { address: String },
}

/// How to start one node of the controller quorum. [`RaftQuorumConfig::new`] fills in the
/// defaults for a voter, [`RaftQuorumConfig::observer`] for an observer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftQuorumConfig {
    /// This node's id; one of `voters` for a voter, none of them for an observer.
    pub node_id: i32,
    pub role: QuorumRole,
    /// Every voter of the quorum (`controller.quorum.voters`, see [`super::parse_voters`]).
    pub voters: Vec<Voter>,
    /// The node's data directory; raft files go to [`raft_directory`].
    pub data_dir: PathBuf,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Take a snapshot of the image after this many entries since the last one.
    pub snapshot_every_entries: u64,
    /// Entries kept in the log behind the latest snapshot (0: purge up to it).
    pub entries_kept_after_snapshot: u64,
    /// Longest wait for a proposal to commit, for leadership to be confirmed, and for a
    /// leader to be known when an operation must be forwarded.
    pub propose_timeout_ms: u64,
    /// A broker that has not heartbeated for this long is fenced
    /// (`broker.session.timeout.ms`).
    pub broker_session_timeout_ms: u64,
    /// Automatic leader rebalancing (`auto.leader.rebalance.enable`): this often
    /// (`leader.imbalance.check.interval.seconds`) the leader gives every partition whose
    /// preferred replica is in sync and alive its preferred leader back. `None`: off.
    pub leader_rebalance_interval_ms: Option<u64>,
}

impl RaftQuorumConfig {
    pub fn new(node_id: i32, voters: Vec<Voter>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            node_id,
            role: QuorumRole::Voter,
            voters,
            data_dir: data_dir.into(),
            heartbeat_interval_ms: RAFT_HEARTBEAT_INTERVAL_MS_DEFAULT,
            election_timeout_min_ms: RAFT_ELECTION_TIMEOUT_MIN_MS_DEFAULT,
            election_timeout_max_ms: RAFT_ELECTION_TIMEOUT_MAX_MS_DEFAULT,
            snapshot_every_entries: RAFT_SNAPSHOT_EVERY_ENTRIES_DEFAULT,
            entries_kept_after_snapshot: RAFT_ENTRIES_KEPT_AFTER_SNAPSHOT_DEFAULT,
            propose_timeout_ms: RAFT_PROPOSE_TIMEOUT_MS_DEFAULT,
            broker_session_timeout_ms: RAFT_BROKER_SESSION_TIMEOUT_MS_DEFAULT,
            leader_rebalance_interval_ms: None,
        }
    }

    /// An observer (a broker-only node) serving Raft at `address`, with the defaults.
    pub fn observer(
        node_id: i32,
        voters: Vec<Voter>,
        data_dir: impl Into<PathBuf>,
        address: impl Into<String>,
    ) -> Self {
        Self {
            role: QuorumRole::Observer {
                address: address.into(),
            },
            ..Self::new(node_id, voters, data_dir)
        }
    }

    /// Where this node serves Raft: its voter entry, or its observer address. Checks that a
    /// voter is in the voter list and an observer is not.
    fn own_address(&self) -> Result<String, RaftQuorumError> {
        let listed = self
            .voters
            .iter()
            .find(|voter| voter.node_id == self.node_id);
        match (&self.role, listed) {
            (QuorumRole::Voter, Some(voter)) => Ok(voter.address()),
            (QuorumRole::Voter, None) => Err(RaftQuorumError::NotAVoter {
                node_id: self.node_id,
                voters: self.voters.iter().map(|v| v.node_id).collect(),
            }),
            (QuorumRole::Observer { .. }, Some(_)) => Err(RaftQuorumError::ObserverIsVoter {
                node_id: self.node_id,
            }),
            (QuorumRole::Observer { address }, None) => Ok(address.clone()),
        }
    }

    fn openraft_config(&self) -> Result<openraft::Config, RaftQuorumError> {
        let invalid = |key, reason: String| RaftQuorumError::InvalidConfig { key, reason };
        if self.snapshot_every_entries == 0 {
            return Err(invalid(
                "snapshot_every_entries",
                "must be at least 1".into(),
            ));
        }
        if self.propose_timeout_ms == 0 {
            return Err(invalid("propose_timeout_ms", "must be at least 1".into()));
        }
        if self.broker_session_timeout_ms == 0 {
            return Err(invalid(
                "broker_session_timeout_ms",
                "must be at least 1".into(),
            ));
        }
        if self.voters.iter().any(|v| v.node_id < 0) {
            return Err(invalid("voters", "node ids must not be negative".into()));
        }
        openraft::Config {
            cluster_name: "strom-controller".to_string(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            install_snapshot_timeout: RAFT_INSTALL_SNAPSHOT_TIMEOUT_MS,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every_entries),
            max_in_snapshot_log_to_keep: self.entries_kept_after_snapshot,
            snapshot_max_chunk_size: RAFT_SNAPSHOT_CHUNK_BYTES,
            ..Default::default()
        }
        .validate()
        .map_err(|error| {
            invalid(
                "heartbeat_interval_ms/election_timeout_min_ms/election_timeout_max_ms",
                error.to_string(),
            )
        })
    }
}

/// One voter of the replicated controller quorum: the Raft node, its TCP server, the
/// metadata image its state machine builds, and the controller decisions run on the leader.
///
/// Cheap to share behind an `Arc`; every method takes `&self`. Call
/// [`RaftQuorum::shutdown`] to stop it; dropping it without stops it in the background.
pub struct RaftQuorum {
    pub(super) shared: Arc<Shared>,
    local_address: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

pub(super) struct Shared {
    pub(super) node_id: i32,
    pub(super) raft: Raft,
    /// The decision logic; the lock also serializes this node's proposals, so each
    /// decision sees the image with every earlier proposal of this node applied.
    pub(super) controller: Mutex<Controller>,
    images: watch::Receiver<Arc<MetadataImage>>,
    pub(super) propose_timeout: Duration,
    /// Every voter's raft address, where operations are forwarded to.
    addresses: BTreeMap<i32, String>,
    /// An observer's announced raft address (host as configured, port as bound); `None`
    /// on a voter.
    pub(super) observer_address: Option<String>,
    /// Broker sessions; meaningful on the leader only. Locked briefly, never across an await.
    pub(super) liveness: std::sync::Mutex<BrokerLiveness>,
    pub(super) broker_session_timeout: Duration,
    leader_rebalance_interval: Option<Duration>,
}

impl std::fmt::Debug for RaftQuorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftQuorum")
            .field("node_id", &self.shared.node_id)
            .field("local_address", &self.local_address)
            .finish_non_exhaustive()
    }
}

impl RaftQuorum {
    /// Starts this node: binds its address (a voter's from the voter list, an observer's
    /// own), opens (or creates) its raft files, and on a voter's fresh directory
    /// initializes the cluster membership to `voters`. Every voter of a new cluster does so
    /// with the same list, which is safe, so the voters may start in any order. An
    /// observer never initializes anything: it waits to be added by the leader
    /// ([`RaftQuorum::join_as_observer`]). Topic and cluster ids are random.
    pub async fn start(config: RaftQuorumConfig) -> Result<Self, RaftQuorumError> {
        let address = config.own_address()?;
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|source| RaftQuorumError::Bind { address, source })?;
        Self::start_with_listener(config, listener, Box::new(RandomIds)).await
    }

    /// [`RaftQuorum::start`] on an already bound listener (tests bind ephemeral ports
    /// first) with an injected id generator.
    pub async fn start_with_listener(
        config: RaftQuorumConfig,
        listener: TcpListener,
        ids: Box<dyn IdGenerator>,
    ) -> Result<Self, RaftQuorumError> {
        config.own_address()?;
        let raft_config = Arc::new(config.openraft_config()?);
        let directory = raft_directory(&config.data_dir);
        let log_store = LogStore::open(&directory)?;
        let (images_sender, images) = watch::channel(Arc::new(MetadataImage::empty()));
        let state_machine = StateMachine::open(&directory, Arc::new(images_sender))?;
        let local_id = raft_node_id(config.node_id);
        let addresses: BTreeMap<RaftNodeId, String> = config
            .voters
            .iter()
            .map(|voter| (raft_node_id(voter.node_id), voter.address()))
            .collect();
        let network = PeerNetworkFactory {
            local_id,
            addresses: Arc::new(addresses.clone()),
        };
        let raft = Raft::new(local_id, raft_config, network, log_store, state_machine)
            .await
            .map_err(|fatal| RaftQuorumError::Stopped(Box::new(fatal)))?;
        let local_address = listener
            .local_addr()
            .map_err(|source| RaftQuorumError::Bind {
                address: "the given listener".to_string(),
                source,
            })?;
        let observer_address = match &config.role {
            QuorumRole::Voter => None,
            QuorumRole::Observer { address } => Some(announced_address(address, local_address)),
        };
        let (stop, stop_signal) = watch::channel(false);
        let shared = Arc::new(Shared {
            node_id: config.node_id,
            raft: raft.clone(),
            controller: Mutex::new(Controller::new(config.node_id, ids)),
            images,
            propose_timeout: Duration::from_millis(config.propose_timeout_ms),
            addresses: config
                .voters
                .iter()
                .map(|voter| (voter.node_id, voter.address()))
                .collect(),
            observer_address,
            liveness: std::sync::Mutex::new(BrokerLiveness::new(Instant::now())),
            broker_session_timeout: Duration::from_millis(config.broker_session_timeout_ms),
            leader_rebalance_interval: config
                .leader_rebalance_interval_ms
                .map(Duration::from_millis),
        });
        let forwarded: ForwardHandler = {
            let shared = Arc::clone(&shared);
            Arc::new(move |request| {
                let shared = Arc::clone(&shared);
                Box::pin(async move { shared.execute(request).await.map_err(ForwardError::from) })
            })
        };
        let server = tokio::spawn(serve(listener, raft, forwarded, stop_signal.clone()));
        let mut quorum = Self {
            shared: Arc::clone(&shared),
            local_address,
            stop,
            tasks: vec![server],
        };
        if config.role == QuorumRole::Voter {
            if let Err(error) = quorum.initialize_membership(addresses).await {
                quorum.stop_tasks().await;
                return Err(error);
            }
        }
        quorum.tasks.push(tokio::spawn(leader_duties(
            Arc::clone(&shared),
            stop_signal.clone(),
        )));
        quorum
            .tasks
            .push(tokio::spawn(liveness_duties(shared, stop_signal)));
        tracing::info!(
            node_id = config.node_id,
            %local_address,
            voters = ?config.voters.iter().map(ToString::to_string).collect::<Vec<_>>(),
            role = if config.role == QuorumRole::Voter { "voter" } else { "observer" },
            "controller quorum node started"
        );
        Ok(quorum)
    }

    async fn initialize_membership(
        &self,
        addresses: BTreeMap<RaftNodeId, String>,
    ) -> Result<(), RaftQuorumError> {
        let raft = &self.shared.raft;
        if raft
            .is_initialized()
            .await
            .map_err(|fatal| RaftQuorumError::Stopped(Box::new(fatal)))?
        {
            return Ok(());
        }
        let members: BTreeMap<RaftNodeId, BasicNode> = addresses
            .into_iter()
            .map(|(id, address)| (id, BasicNode::new(address)))
            .collect();
        match raft.initialize(members).await {
            Ok(()) => {
                tracing::info!(
                    node_id = self.shared.node_id,
                    "initialized the controller quorum membership"
                );
                Ok(())
            }
            // A leader's entries arrived first: the cluster is already formed.
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(RaftError::APIError(error)) => Err(RaftQuorumError::Initialize(Box::new(error))),
            Err(RaftError::Fatal(fatal)) => Err(RaftQuorumError::Stopped(Box::new(fatal))),
        }
    }

    pub fn node_id(&self) -> i32 {
        self.shared.node_id
    }

    /// The address the raft listener is bound to.
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// The current image: everything committed and applied on this node. Cheap.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.shared.image()
    }

    /// Image updates: a new `Arc<MetadataImage>` each time committed entries are applied
    /// (or a snapshot is installed).
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.shared.images.clone()
    }

    /// The leader this node knows of, if any.
    pub fn leader(&self) -> Option<i32> {
        self.shared
            .raft
            .metrics()
            .borrow()
            .current_leader
            .map(kafka_node_id)
    }

    /// Whether this node is the leader now (as far as it knows; a deposed leader learns it
    /// at its next contact with the quorum).
    pub fn is_leader(&self) -> bool {
        self.shared.raft.metrics().borrow().state == ServerState::Leader
    }

    /// The Raft term this node is in.
    pub fn current_term(&self) -> u64 {
        self.shared.raft.metrics().borrow().current_term
    }

    /// Waits until this node knows a leader; `None` after `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<i32> {
        let mut metrics = self.shared.raft.metrics();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(leader) = metrics.borrow_and_update().current_leader {
                return Some(kafka_node_id(leader));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// Waits until a leader is known and this node has applied every entry in its local
    /// log (it has learnt the commit point and caught up with what it already holds), so
    /// its image is no older than what it had before a restart; a node with an empty log
    /// is caught up at once. `false` on timeout.
    pub async fn wait_caught_up(&self, timeout: Duration) -> bool {
        let mut metrics = self.shared.raft.metrics();
        let deadline = Instant::now() + timeout;
        loop {
            {
                let now = metrics.borrow_and_update();
                let applied = now.last_applied.map(|id| id.index);
                // A fresh node has nothing to catch up with.
                let fresh = now.last_log_index.is_none();
                if fresh || (now.current_leader.is_some() && applied >= now.last_log_index) {
                    return true;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return false,
            }
        }
    }

    /// A read barrier: appends an empty entry through the leader (forwarded from a
    /// follower) and waits until this node has applied it, so the local image holds
    /// everything the cluster had committed before the call. What a restarted node does
    /// before acting on its image. `false` when no leader answered or on timeout.
    pub async fn catch_up(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let barrier = self
            .shared
            .call(super::forward::ControllerRequest::Propose {
                records: Vec::new(),
            });
        let index = match tokio::time::timeout(timeout, barrier).await {
            Ok(Ok(super::forward::ControllerReply::Proposed { index })) => index,
            Ok(Ok(other)) => {
                tracing::warn!(
                    reply = other.kind(),
                    "unexpected answer to the catch-up barrier"
                );
                return false;
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "metadata catch-up barrier not committed");
                return false;
            }
            Err(_) => return false,
        };
        let mut metrics = self.shared.raft.metrics();
        loop {
            if metrics
                .borrow_and_update()
                .last_applied
                .is_some_and(|applied| applied.index >= index)
            {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return false,
            }
        }
    }

    /// Stops the voter: the TCP server, the leader's background work and the Raft node,
    /// which releases the raft files. Peers see it as down.
    pub async fn shutdown(mut self) {
        self.stop_tasks().await;
        if let Err(error) = self.shared.raft.shutdown().await {
            tracing::warn!(%error, "the raft core task ended abnormally");
        }
        tracing::info!(
            node_id = self.shared.node_id,
            "controller quorum voter stopped"
        );
    }

    async fn stop_tasks(&mut self) {
        self.stop.send_replace(true);
        for task in self.tasks.drain(..) {
            if let Err(error) = task.await {
                tracing::warn!(%error, "a controller quorum task ended abnormally");
            }
        }
    }
}

impl Drop for RaftQuorum {
    fn drop(&mut self) {
        if self.tasks.is_empty() {
            return; // shut down already
        }
        self.stop.send_replace(true);
        let raft = self.shared.raft.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = raft.shutdown().await;
            });
        }
    }
}

impl Shared {
    pub(super) fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.images.borrow())
    }

    /// Runs `request` on the leader: here when this node leads, else forwarded to the
    /// leader it knows (waiting for one to be known, up to the propose timeout). When
    /// leadership moves meanwhile, or the leader cannot be reached, it tries again at the
    /// new leader until the propose timeout; then [`RaftQuorumError::NotLeader`].
    pub(super) async fn call(
        &self,
        request: ControllerRequest,
    ) -> Result<ControllerReply, RaftQuorumError> {
        let deadline = Instant::now() + self.propose_timeout;
        let mut hint: Option<i32> = None;
        // An observer may know no leader (not yet added, or its leader died and the new
        // one has not reached it): it asks the voters in turn, which answer with a hint.
        let mut voters = self.addresses.keys().copied().cycle();
        let mut unreachable = false;
        loop {
            let known = hint.take().or_else(|| {
                if self.observer_address.is_some() && unreachable {
                    return None;
                }
                self.raft
                    .metrics()
                    .borrow()
                    .current_leader
                    .map(kafka_node_id)
            });
            let leader = match known {
                Some(leader) => leader,
                None if self.observer_address.is_some() => {
                    voters.next().expect("the voter list is never empty")
                }
                None => match self.wait_for_leader(deadline).await {
                    Some(leader) => leader,
                    None => return Err(RaftQuorumError::NotLeader { leader: None }),
                },
            };
            unreachable = false;
            let outcome = if leader == self.node_id {
                self.execute(request.clone()).await
            } else {
                let Some(address) = self.addresses.get(&leader) else {
                    return Err(RaftQuorumError::NotLeader {
                        leader: Some(leader),
                    });
                };
                // The leader bounds its own work by its propose timeout, twice over (leadership
                // confirmation, then the commit); the answer gets a little more.
                let answer_timeout = self.propose_timeout * 2 + RAFT_FRAME_IO_TIMEOUT;
                match forward(address, leader, &request, answer_timeout).await {
                    Ok(outcome) => outcome,
                    Err(ForwardFailure::Lost(error)) => return Err(error),
                    Err(ForwardFailure::Unreachable(error)) => {
                        tracing::debug!(leader, %error, "cannot reach the leader to forward");
                        unreachable = true;
                        Err(RaftQuorumError::NotLeader { leader: None })
                    }
                }
            };
            match outcome {
                Err(RaftQuorumError::NotLeader { leader: next }) if Instant::now() < deadline => {
                    hint = next.filter(|next| *next != leader);
                    tokio::time::sleep(FORWARD_RETRY_INTERVAL).await;
                }
                outcome => return outcome,
            }
        }
    }

    async fn wait_for_leader(&self, deadline: Instant) -> Option<i32> {
        let mut metrics = self.raft.metrics();
        loop {
            if let Some(leader) = metrics.borrow_and_update().current_leader {
                return Some(kafka_node_id(leader));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// The broker sessions, restarted if this node leads in a term they do not belong to.
    /// Call only after leadership was confirmed (inside a decision).
    pub(super) fn liveness(&self, now: Instant) -> std::sync::MutexGuard<'_, BrokerLiveness> {
        let term = self.raft.metrics().borrow().current_term;
        let mut liveness = self
            .liveness
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        liveness.lead(term, now);
        liveness
    }

    /// Runs a controller decision on the leader against an image that has everything
    /// committed before (a linearizable read), proposes its records (preceded by the
    /// cluster id when the log has none yet) and answers once they are applied.
    pub(super) async fn decide<T>(
        &self,
        decide: impl FnOnce(&mut Controller, &MetadataImage) -> Decision<T>,
    ) -> Result<T, RaftQuorumError> {
        let mut controller = self.controller.lock().await;
        self.ensure_linearizable().await?;
        let image = self.image();
        let mut records: Vec<MetadataRecord> =
            controller.cluster_id_record(&image).into_iter().collect();
        let decision = decide(&mut controller, &image);
        records.extend(decision.records);
        if !records.is_empty() {
            self.propose(records).await?;
        }
        Ok(decision.response)
    }

    /// Waits until this node is confirmed leader by a quorum and has applied everything
    /// committed before now.
    pub(super) async fn ensure_linearizable(&self) -> Result<(), RaftQuorumError> {
        let confirmed = tokio::time::timeout(self.propose_timeout, self.raft.ensure_linearizable())
            .await
            .map_err(|_| self.timeout("confirming leadership"))?;
        match confirmed {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward))) => {
                Err(RaftQuorumError::NotLeader {
                    leader: forward.leader_id.map(kafka_node_id),
                })
            }
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                Err(RaftQuorumError::NoQuorum)
            }
            Err(RaftError::Fatal(fatal)) => Err(RaftQuorumError::Stopped(Box::new(fatal))),
        }
    }

    /// Proposes `records`; the caller holds the controller lock.
    pub(super) async fn propose(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<u64, RaftQuorumError> {
        // An empty entry is a read barrier (`RaftQuorum::catch_up`); callers of the public
        // `propose` cannot send one.
        let entry_bytes = serde_json::to_vec(&records)
            .map_err(RaftQuorumError::Encode)?
            .len();
        if entry_bytes > METADATA_ENTRY_BYTES_MAX {
            return Err(RaftQuorumError::ProposalTooLarge {
                entry_bytes,
                limit_bytes: METADATA_ENTRY_BYTES_MAX,
            });
        }
        let write = self.raft.client_write(MetadataProposal { records });
        let written = tokio::time::timeout(self.propose_timeout, write)
            .await
            .map_err(|_| self.timeout("committing a proposal"))?;
        let response = match written {
            Ok(response) => response,
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                return Err(RaftQuorumError::NotLeader {
                    leader: forward.leader_id.map(kafka_node_id),
                })
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(error))) => {
                return Err(RaftQuorumError::MembershipChange(Box::new(error)))
            }
            Err(RaftError::Fatal(fatal)) => return Err(RaftQuorumError::Stopped(Box::new(fatal))),
        };
        let index = response.log_id.index;
        match response.data {
            EntryOutcome::Applied { .. } | EntryOutcome::NoRecords => Ok(index),
            EntryOutcome::Rejected { offset, reason } => Err(RaftQuorumError::Rejected {
                index,
                offset,
                reason,
            }),
        }
    }

    pub(super) fn timeout(&self, operation: &'static str) -> RaftQuorumError {
        RaftQuorumError::Timeout {
            operation,
            timeout_ms: u64::try_from(self.propose_timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// `configured` (`host:port`) with the port the listener was actually bound to (they
/// differ when the configured port is 0).
fn announced_address(configured: &str, bound: SocketAddr) -> String {
    let host = configured
        .rsplit_once(':')
        .map_or(configured, |(host, _)| host);
    format!("{host}:{}", bound.port())
}

/// The leader's background work: write the cluster id into a new log as soon as this node
/// leads, so the image has one before any broker asks.
async fn leader_duties(shared: Arc<Shared>, mut stop_signal: watch::Receiver<bool>) {
    let mut metrics = shared.raft.metrics();
    loop {
        let leading = metrics.borrow_and_update().state == ServerState::Leader;
        let mut retry = false;
        if leading && shared.image().cluster_id().is_none() {
            match shared
                .decide(|_, _| Decision {
                    records: Vec::new(),
                    response: (),
                })
                .await
            {
                Ok(()) => tracing::info!(
                    cluster_id = shared.image().cluster_id().unwrap_or("?"),
                    "wrote the cluster id of a new controller quorum"
                ),
                Err(error) => {
                    tracing::warn!(%error, "could not write the cluster id yet; retrying");
                    retry = true;
                }
            }
        }
        tokio::select! {
            () = stopped(&mut stop_signal) => return,
            changed = metrics.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(BOOTSTRAP_RETRY_INTERVAL), if retry => {}
        }
    }
}

/// The leader's liveness tick: every [`RAFT_BROKER_LIVENESS_TICK_MS`], fence the brokers
/// whose session expired (moving their leaderships and ISR places away in the same entry).
async fn liveness_duties(shared: Arc<Shared>, mut stop_signal: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(RAFT_BROKER_LIVENESS_TICK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first rebalance waits a whole interval, as Kafka's does: brokers that just
    // started get time to catch up and rejoin their ISRs first.
    let mut next_rebalance = shared
        .leader_rebalance_interval
        .map(|interval| Instant::now() + interval);
    loop {
        tokio::select! {
            () = stopped(&mut stop_signal) => return,
            _ = tick.tick() => {}
        }
        if shared.raft.metrics().borrow().state != ServerState::Leader {
            continue;
        }
        complete_reassignments(&shared).await;
        if let (Some(due), Some(interval)) = (next_rebalance, shared.leader_rebalance_interval) {
            if Instant::now() >= due {
                next_rebalance = Some(Instant::now() + interval);
                rebalance_leaders(&shared).await;
            }
        }
        // A cheap look first, so an idle cluster does not confirm leadership every tick.
        let now = Instant::now();
        let candidates = shared.liveness(now).expired(
            &shared.image().unfenced_broker_ids(),
            now,
            shared.broker_session_timeout,
        );
        if candidates.is_empty() {
            continue;
        }
        let fenced = shared
            .decide(|controller, image| {
                let now = Instant::now();
                let expired = shared.liveness(now).expired(
                    &image.unfenced_broker_ids(),
                    now,
                    shared.broker_session_timeout,
                );
                let decision = controller.fence_brokers(image, &expired);
                Decision {
                    records: decision.records,
                    response: expired,
                }
            })
            .await;
        match fenced {
            Ok(fenced) if !fenced.is_empty() => tracing::info!(
                brokers = ?fenced,
                session_timeout_ms = shared.broker_session_timeout.as_millis() as u64,
                "fenced brokers whose session expired"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not fence brokers with expired sessions"),
        }
    }
}

/// Completes reassignments whose ISR already holds every target replica (AlterPartition
/// completes them as the ISR grows; this catches any left, e.g. after a leader change).
async fn complete_reassignments(shared: &Shared) {
    // A cheap look first, so an idle cluster does not confirm leadership every tick.
    let image = shared.image();
    let ready = image
        .topics()
        .flat_map(|topic| topic.partitions.iter())
        .any(crate::reassignment::ready_to_complete);
    if !ready {
        return;
    }
    match shared
        .decide(|controller, image| controller.complete_reassignments(image))
        .await
    {
        Ok(0) => {}
        Ok(completed) => tracing::info!(partitions = completed, "completed reassignments"),
        Err(error) => tracing::warn!(%error, "could not complete reassignments"),
    }
}

/// Automatic leader rebalancing: gives partitions whose preferred replica could lead their
/// preferred leader back (after a broker returned from a restart or a failure).
async fn rebalance_leaders(shared: &Shared) {
    // A cheap look first, so a balanced cluster does not confirm leadership.
    let image = shared.image();
    let imbalanced = image.topics().any(|topic| {
        topic
            .partitions
            .iter()
            .any(|state| crate::partition_change::leader_imbalanced(&image, state))
    });
    if !imbalanced {
        return;
    }
    match shared
        .decide(|controller, image| controller.rebalance_leaders(image))
        .await
    {
        Ok(0) => {}
        Ok(moved) => tracing::info!(
            partitions = moved,
            "automatic leader rebalance: preferred replicas lead again"
        ),
        Err(error) => tracing::warn!(%error, "automatic leader rebalance failed"),
    }
}
