//! `strom-controller`: the cluster metadata of a Strom cluster.
//!
//! # What it owns
//!
//! - The **metadata log**: every change to cluster metadata (cluster id, broker
//!   registrations, topics, partitions and their leaders/ISR, topic configs) as a
//!   [`MetadataRecord`] in an append-only log behind the narrow [`MetadataLogStore`] trait.
//! - The **metadata image** ([`MetadataImage`]): the state those records build, shared with
//!   the broker as `Arc<MetadataImage>` snapshots.
//! - The **controller's decisions** ([`Controller`]): validating CreateTopics,
//!   DeleteTopics, CreatePartitions and topic-config changes with Kafka's rules and error
//!   codes; placing replicas (round-robin over the unfenced brokers with a rotating start,
//!   rack-alternating when every broker has a rack); and the leadership/ISR rules of
//!   KRaft: fencing and unfencing brokers, AlterPartition, preferred and unclean leader
//!   election, controlled shutdown ([`AlterPartition`], [`ElectionResult`],
//!   [`PartitionChangeError`]). It is a plain struct that returns records and results;
//!   [`MetadataQuorum`] (one voter) or [`RaftQuorum`] (replicated) does the I/O.
//! - The **replicated controller quorum** ([`raft`], [`RaftQuorum`]): the metadata log
//!   replicated with Raft between 1, 3 or 5 controller voters over TCP; each voter's
//!   durable Raft log, vote and snapshots; the state machine that applies committed
//!   entries to the image with [`MetadataImage::apply_entry`] and publishes each new
//!   image on a watch channel ([`RaftQuorum::subscribe`]); the voter list
//!   (`controller.quorum.voters`, [`raft::parse_voters`]). Every [`RaftQuorum`] operation
//!   may be called on any voter: a follower forwards it to the leader over the same TCP
//!   transport, and the leader runs the same [`Controller`] decisions against a
//!   linearizable image, proposes their records and answers once they are committed and
//!   applied (on the leader; a follower's image follows shortly).
//! - **Observers** ([`QuorumRole::Observer`]): a broker-only node is no voter but an
//!   openraft learner. It serves Raft at its own address, announces it to the leader
//!   ([`RaftQuorum::join_as_observer`], which adds or moves its membership entry), and from
//!   then on receives the metadata log (a snapshot first when the log it needs is purged)
//!   and forwards operations like any voter; without a known leader it asks the voters in
//!   turn. This is how brokers are added to a running cluster; voters are the ones the
//!   cluster was first started with. [`RaftQuorum::describe_quorum`] (DescribeQuorum)
//!   reports the leader, its term, the commit point and every voter's and observer's
//!   progress.
//! - **Automatic leader rebalancing** (`auto.leader.rebalance.enable`): every
//!   `leader_rebalance_interval_ms` the leader elects the preferred (first) replica of
//!   every partition where it is in sync, unfenced and not leading
//!   ([`Controller::rebalance_leaders`]).
//! - **Broker liveness** (KRaft's model): brokers register, then heartbeat
//!   ([`RaftQuorum::broker_heartbeat`]). A registration through [`RaftQuorum`] is written
//!   fenced; the first heartbeat unfences. The leader keeps each broker's last heartbeat in
//!   memory (a new leader starts every clock at its election) and, every
//!   [`raft::RAFT_BROKER_LIVENESS_TICK_MS`], fences a broker silent for
//!   `broker_session_timeout_ms`: one entry with `FenceBroker` and the `PartitionChange`s
//!   that move its leaderships to in-sync unfenced replicas (leader epoch + 1) and take
//!   it out of ISRs (never emptying one: an ISR of only that broker stays, leader -1,
//!   until it returns or `unclean.leader.election.enable=true` allows another replica).
//!   Brokers registered through the single-voter [`MetadataQuorum`] are never fenced.

//! # What it must not do
//!
//! Serve client data: no partition logs, no record batches, no Kafka listener. Its only
//! sockets are the controller voters' Raft transport. Kafka request decoding and
//! error-code mapping onto the wire belong to the broker; the broker calls
//! [`MetadataQuorum`] or [`RaftQuorum`] and reads the image.
//!
//! # Why a JSON + CRC32C file
//!
//! Metadata is small and changes rarely (a topic creation, not a produce), so each change
//! is one fsynced frame of human-readable JSON guarded by a CRC32C; a torn last frame is
//! truncated on open. Parse cost and size do not matter at this rate, and being able to
//! read the log with `jq` does. The single-voter [`MetadataQuorum`] keeps its log in
//! `metadata.log` behind the narrow [`MetadataLogStore`] contract ("durable before
//! returning", "no holes", atomic entries); the Raft log keeps the same promises in the
//! same kind of frames.
//!
//! # Why openraft (0.9)
//!
//! Consensus is not something to write again: openraft is a maintained, widely used Raft
//! (Databend and others run it) whose storage traits are narrow and state their contract,
//! which ships a storage test suite our stores pass (`raft::log_store` tests), and which
//! leaves transport and storage to us, so the files stay CRC-framed JSON and the wire
//! stays a small versioned TCP protocol with our own limits. 0.9.25 is its newest stable
//! release; 0.10 is still alpha with a changing API. raft-rs (TiKV) would have us drive
//! the ready loop, persistence ordering and snapshots by hand.
//!
//! # On disk
//!
//! ```text
//! <data_dir>/__cluster_metadata-0/
//!   metadata.log      the single-voter log (MetadataQuorum)
//!   raft/             the replicated quorum (RaftQuorum); see the `raft` module
//!     log             CRC32C frames: [Purged(log id)], then one Raft entry per frame
//!     vote            one frame: the vote, replaced atomically (temp, fsync, rename)
//!     snapshot        one frame: snapshot meta + the records that rebuild the image
//! ```
//!
//! A snapshot is taken every `snapshot_every_entries` entries; the log is then purged up
//! to it (less `entries_kept_after_snapshot`), so a restart loads the snapshot and replays
//! only the entries after it.
//!
//! # Wire (controller to controller)
//!
//! `u32 length | u8 version (1) | u8 kind | JSON payload`, one request in flight per
//! connection; the length is checked against [`raft::RAFT_FRAME_BYTES_MAX`] before
//! anything is buffered; anything malformed closes the connection. Kinds 1-3 carry
//! openraft's AppendEntries, Vote and InstallSnapshot; kind 4 a controller operation
//! forwarded by a follower to the leader, one connection per forwarded call. See
//! `raft::wire` and `raft::forward`.
//!
//! # Records added for liveness
//!
//! `FenceBroker { broker_id }`, `UnfenceBroker { broker_id }` and
//! `PartitionChange { topic_id, partition, leader, leader_epoch, isr, partition_epoch }`
//! (leadership/ISR only; the assignment stays). `RegisterBroker` and `Partition` keep their
//! fields, so logs written before stay readable: their brokers are unfenced and their
//! partitions at partition epoch 0.
//!
//! # Records added for brokers that leave
//!
//! `UnregisterBroker { broker_id }` (issue 19): the registration is removed (see
//! `departure`); [`RaftQuorum::unregister_broker`] also takes an observer out of the Raft
//! membership, so DescribeQuorum no longer lists it.
//!
//! # Records added for reassignment
//!
//! `PartitionReassignment { topic_id, partition, replicas, adding, removing, leader,
//! leader_epoch, isr, partition_epoch }` (KIP-455, see `reassignment`): a reassignment
//! started (adding/removing set), completed or cancelled (both empty). Partitions in older
//! logs have no reassignment in progress (`adding_replicas`/`removing_replicas` empty).
//!
//! # Use from the broker
//!
//! ```
//! use strom_controller::{CreateTopic, MetadataQuorum, TopicDefaults};
//!
//! let data_dir = tempfile::tempdir()?;
//! let mut quorum = MetadataQuorum::open(data_dir.path(), 1, "127.0.0.1", 9092)?;
//! let results = quorum.create_topics(
//!     &[CreateTopic { name: "orders".into(), num_partitions: Some(3), ..Default::default() }],
//!     false,
//!     &TopicDefaults { num_partitions: 1, default_replication_factor: 1 },
//! )?;
//! assert!(results[0].error.is_none());
//!
//! let image = quorum.image(); // an Arc snapshot: hand it to request handlers
//! let orders = image.topic("orders").unwrap();
//! assert_eq!(orders.partitions[2].leader, 1);
//! assert_eq!(image.cluster_id().unwrap().len(), 22);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod acl;
mod controller;
mod departure;
mod error;
mod ids;
mod image;
mod log;
mod partition_change;
mod placement;
mod quorum;
pub mod raft;
mod reassignment;
mod record;
mod topic_config;
mod topic_name;

pub use acl::{AclBinding, AclIndex, QuotaEntity, QuotaEntityPart, QuotaTable, QuotaValue};
pub use controller::{
    Controller, CreatePartitions, CreatePartitionsResult, CreateTopic, CreateTopicResult, Decision,
    DeleteTopicResult, PartitionAssignment, TopicDefaults, TopicRef, CLUSTER_METADATA_TOPIC_NAME,
    NEW_PARTITIONS_PER_REQUEST_MAX, PARTITIONS_PER_TOPIC_MAX,
};
pub use error::{
    ConfigError, ControllerError, FrameDefect, ImageError, InvalidPartitionsReason,
    InvalidRequestReason, InvalidTopicReason, MetadataError, PolicyViolationReason,
    ReplicaAssignmentReason, ReplicationFactorReason,
};
pub use ids::{IdGenerator, RandomIds, SeededIds};
pub use image::{
    BrokerRegistration, MetadataImage, PartitionState, ScramCredentialRecord, TopicImage,
};
pub use log::{
    FileMetadataLog, MemoryMetadataLog, MetadataEntry, MetadataLogStore, METADATA_ENTRY_BYTES_MAX,
    METADATA_LOG_DIR_NAME, METADATA_LOG_FILE_NAME,
};
pub use partition_change::{
    leader_imbalanced, AlterPartition, ElectionOutcome, ElectionResult, IneligibleReason,
    PartitionChangeError, NO_LEADER, REBALANCE_ELECTIONS_MAX, UNCLEAN_LEADER_ELECTION_CONFIG,
};
pub use quorum::MetadataQuorum;
pub use raft::{HeartbeatReply, QuorumRole, RaftQuorum, RaftQuorumConfig, RaftQuorumError};
pub use reassignment::{
    is_reassigning, list_reassignments, OngoingReassignment, ReassignmentOutcome,
    ReassignmentRequest, ReassignmentResult, REASSIGNMENTS_PER_REQUEST_MAX,
};
pub use record::{BrokerListener, MetadataRecord};
pub use topic_config::{
    known_topic_config_names, validate_topic_config, validate_topic_config_key,
};
pub use topic_name::{unify_collision_chars, validate_topic_name, TOPIC_NAME_LENGTH_MAX_CHARS};

/// The broker holds the quorum behind a `Mutex` across threads.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<MetadataQuorum>();
    assert_send::<MetadataImage>();
};
