//! `strom-client`: a native async Kafka client on tokio and `strom-protocol`.
//!
//! Owns: connections to brokers ([`connection`]: framing, pipelining, version
//! negotiation, and their security: TLS with rustls, SASL PLAIN and SCRAM-SHA-256/512
//! authentication, KIP-368 session lifetimes — see [`ClientSecurity`] and its
//! [`ClientSecurity::from_properties`] for Kafka/librdkafka-style settings), the cluster view ([`cluster`]: bootstrap, metadata, retries), the
//! [`producer`] (partitioning, batching, compression, acks, idempotence), the
//! [`consumer`] (assigned partitions, seek, fetch, batch decoding) and [`admin`]
//! (topics, configs, partitions, offsets), with [`transactions`] for transaction
//! administration (list, describe, hanging, abort), and [`membership`] for members of a
//! classic group of any protocol type (JoinGroup, SyncGroup, Heartbeat, LeaveGroup); [`member_offsets`]
//! commits offsets as a member, and [`txn_producer`] is a transactional producer (records
//! and consumer offsets committed together, for exactly-once streams). Used by the CLI and bench, by follower
//! replication and transaction markers between brokers, and later by connectors and streams.
//!
//! Must not: depend on the broker (or storage/controller) crates. It speaks only the
//! Kafka protocol, so everything here works against any Kafka-compatible cluster. Must not
//! read certificate files per connection (the TLS configuration is built once), trust any
//! CA it was not given, or retry a failed authentication.
//!
//! Message bodies are encoded with the `kafka-protocol` crate; record batches with
//! `strom_protocol::record`, whose headers are an ordered list (keys may repeat) — not
//! `kafka-protocol`'s record codec, which keeps headers in a map.
//!
//! Limits live in one place each: [`connection::RESPONSE_BYTES_MAX`] and
//! [`connection::ConnectionConfig`] (in-flight requests, timeouts), [`producer::ProducerConfig`]
//! (buffered bytes, batch size, in-flight batches), [`consumer::ConsumerConfig`] (fetch sizes).

pub mod admin;
pub mod cluster;
pub mod cluster_admin;
pub mod configs;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod groups;
pub mod member_offsets;
pub mod membership;
pub mod offsets;
pub mod partitioner;
pub mod producer;
pub mod reassignments;
pub mod security;
pub mod transactions;
pub mod txn_producer;

pub use admin::{Admin, AlterConfigOp, ConfigEntry, ConfigResource, CreatedTopic, NewTopic};
pub use cluster::{Client, ClientConfig, ClusterMetadata, TopicMetadata};
pub use cluster_admin::{
    BrokerStatus, ClusterDescription, ElectionResult, ElectionType, QuorumReplicaStatus,
    QuorumStatus,
};
pub use configs::{ConfigOp, LogDirInfo, ProducerInfo};
pub use connection::{
    ClientSecurity, SaslCredentials, SaslMechanism, SecurityProtocol, TlsConnector, TlsOptions,
};
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, SeekTo};
pub use error::{ClientError, Result};
pub use offsets::{ListedOffset, OffsetSpec};
pub use partitioner::{murmur2, partition_for_key, PartitionerKind};
pub use producer::{
    Acks, DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};
pub use reassignments::{OngoingReassignment, PartitionMove, ReassignmentResult};
pub use security::{AclBinding, AclFilter, QuotaEntity, QuotaMatch, ScramMechanism};
pub use strom_protocol::batch::Compression;
pub use strom_protocol::record::RecordHeader;
pub use transactions::{
    AbortSpec, HangingTransaction, ListTransactionsFilter, PartitionProducer,
    TransactionDescription, TransactionListing,
};
pub use txn_producer::{TransactionalProducer, TxnOffsets};
