//! `strom-streams`: stream processing as a Rust library, on `strom-client`, for any
//! Kafka-protocol cluster (Strom or Apache Kafka).
//!
//! Owns: a typed DSL close to Kafka Streams' ([`StreamsBuilder`], [`KStream`], [`KTable`],
//! [`KGroupedStream`]: map, filter, flat_map, branch, merge, select_key with automatic
//! repartition topics, group_by → count/reduce/aggregate, windows with grace and
//! `suppress_until_window_closes`, stream-table, stream-stream, table-table, foreign-key
//! and stream-global table joins ([`global`]), a
//! lower-level [`Processor`] API with stream-time and wall-clock punctuation, serdes
//! ([`Serdes`]: bytes, strings, integers, JSON), state stores with changelog topics
//! ([`store`]), a broker-free [`TopologyTestDriver`], and the runtime that runs a
//! topology against a cluster ([`runtime`]: one or more stream threads per instance,
//! heartbeats during restores, [`StreamsMetrics`]).
//!
//! Must not: depend on the broker crates (only the Kafka protocol through
//! `strom-client`), or do network I/O inside a [`task::Task`] (tasks turn input records into
//! output records and store writes; the runtime and the test driver talk to brokers).
//!
//! ## Design
//!
//! A topology is a graph of nodes over type-erased records; the typed DSL is the only way
//! to build one, so each node receives the types it was built for. A task is the topology
//! for one partition number: every source topic's partition `p` (the runtime requires
//! co-partitioned inputs and creates internal topics with the same partition count).
//! Stream time is the highest record timestamp a task has seen; windows close on stream
//! time, never on the wall clock.
//!
//! ## State stores: why redb
//!
//! Stores are ordered byte maps ([`store::KvStore`]) with an in-memory backend and a
//! persistent one on [redb](https://docs.rs/redb). Compared with fjall (an LSM tree with
//! background compaction and flush threads, strong on write-heavy large data sets), redb is
//! a single-file copy-on-write B-tree: pure Rust, no background threads, ACID commits whose
//! durability we choose per transaction, and a small dependency tree. A streams store is
//! written in bursts between commits and is rebuilt from its changelog when lost, so it
//! needs cheap ordered reads and one atomic write per commit (the data and the changelog
//! checkpoint together) more than LSM write throughput: redb fits that, with fewer moving
//! parts. Puts go to an overlay and reach redb in one transaction per flush.

pub mod builder;
pub mod driver;
pub mod fk_join;
pub mod global;
pub mod grouped;
pub mod grouped_table;
pub mod join;
pub mod processor;
pub mod record;
pub mod runtime;
pub mod serdes;
pub mod store;
pub mod stream;
pub mod table;
pub mod task;
pub mod topology;
pub mod windows;

pub use builder::{Data, StreamsBuilder};
pub use driver::{TestRecord, TestTopic, TopologyTestDriver};
pub use global::{GlobalKTable, GlobalStores};
pub use grouped::KGroupedStream;
pub use grouped_table::KGroupedTable;
pub use join::JoinWindows;
pub use processor::{Processor, ProcessorContext};
pub use record::{Change, OutputRecord, Windowed};
pub use runtime::{
    ProcessingGuarantee, RestoreListener, StateRestoreListener, StreamsApp, StreamsConfig,
    StreamsMetrics,
};
pub use serdes::{Serde, SerdeError, SerdeRef, Serdes};
pub use store::{StoreBackend, StoreError};
pub use stream::{KStream, Predicate};
pub use table::KTable;
pub use task::OnError;
pub use topology::Topology;
pub use windows::{
    SessionWindowedStream, SessionWindows, SlidingWindows, TimeWindowedStream, TimeWindows,
};

/// A topology that cannot be built as declared.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopologyError {
    #[error("{operation} needs a {what} serde: set it with with_serdes (an operator that changes a type forgets the old one)")]
    MissingSerde {
        operation: &'static str,
        what: &'static str,
    },
    #[error("{operation} needs a windowed table")]
    NotWindowed { operation: &'static str },
    #[error("{operation}: window sizes must be positive, the advance at most the size, the grace not negative")]
    InvalidWindows { operation: &'static str },
}

/// Why processing stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("store {store} holds a value its serde cannot read: {source}")]
    CorruptStore {
        store: String,
        #[source]
        source: SerdeError,
    },
    #[error("an input record of {topic} cannot be deserialized: {source}")]
    Undeserializable {
        topic: String,
        #[source]
        source: SerdeError,
    },
    #[error("store {store}: the key's task (partition {partition}) is not held by this instance")]
    NotLocal { store: String, partition: i32 },
    #[error("no store named {name} in this task")]
    UnknownStore { name: String },
    #[error("the topology keeps writing to topics it reads (over a million records fed back for one input)")]
    FeedbackLoop,
    #[error(transparent)]
    Client(#[from] strom_client::ClientError),
    #[error("source topics must have equal partition counts (co-partitioned): {topics:?}")]
    NotCopartitioned { topics: Vec<(String, i32)> },
    #[error("the processing loop stopped (panicked or was killed)")]
    Stopped,
}
