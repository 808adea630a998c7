//! Consumer groups: the state machine ([`coordinator::Coordinator`]: events in,
//! [`Action`]s out, time passed in), the two rebalance protocols ([`classic`] and KIP-848's
//! [`consumer`]), the server-side assignors ([`assignor`]) and the `__consumer_offsets`
//! record formats ([`records`], [`consumer_records`], written and replayed by [`persist`]).
//! [`runtime::GroupCoordinator`] drives it over an [`crate::log::InternalLog`]: one shard per
//! `__consumer_offsets` partition, parked answers, timers.

pub mod assignor;
pub mod classic;
pub mod classic_messages;
pub mod consumer;
pub mod consumer_records;
pub mod coordinator;
pub mod persist;
pub mod records;
pub mod runtime;

#[cfg(test)]
mod classic_tests;
#[cfg(test)]
mod consumer_tests;
#[cfg(test)]
mod runtime_tests;

use strom_protocol::ErrorCode;

use classic::{JoinResult, SyncResult};
use records::GroupValue;

pub use persist::OFFSETS_TOPIC;
pub use runtime::{not_committed_code, GroupCoordinator, GroupRuntimeConfig, GroupShard};

/// The wire code of an optional error (0 = none).
pub fn error_code(error: Option<ErrorCode>) -> i16 {
    error.map_or(0, |e| e.code())
}

/// Identifies a parked JoinGroup or SyncGroup request.
pub type WaiterId = u64;

/// What the state machine asks the runtime to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    JoinDone {
        waiter: WaiterId,
        result: JoinResult,
    },
    SyncDone {
        waiter: WaiterId,
        result: SyncResult,
    },
    /// Write the group's metadata record (None = tombstone).
    WriteGroup {
        group_id: String,
        value: Option<GroupValue>,
    },
    /// Write a consumer-protocol group's snapshot (None = tombstone).
    WriteConsumerGroup {
        group_id: String,
        value: Option<bytes::Bytes>,
    },
    /// Write tombstones for these committed offsets.
    DeleteOffsets {
        group_id: String,
        partitions: Vec<(String, i32)>,
    },
}

/// The coordinator's settings (the broker builds them from its config).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub initial_rebalance_delay_ms: i64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_size: usize,
    pub offsets_retention_ms: i64,
    pub offset_metadata_max_bytes: usize,
    pub consumer_heartbeat_interval_ms: i32,
    pub consumer_session_timeout_ms: i64,
    /// Server-side assignors, the first being the default.
    pub consumer_assignors: Vec<String>,
}

impl GroupConfig {
    /// The assignor used when no member asks for one: the first configured. The broker's
    /// config refuses an empty list; should one get here anyway, `uniform` stands in.
    pub fn default_assignor(&self) -> &str {
        self.consumer_assignors
            .first()
            .map_or(assignor::UNIFORM, String::as_str)
    }
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX as usize,
            offsets_retention_ms: 10080 * 60_000,
            offset_metadata_max_bytes: 4096,
            consumer_heartbeat_interval_ms: 5000,
            consumer_session_timeout_ms: 45000,
            consumer_assignors: vec![assignor::UNIFORM.into(), assignor::RANGE.into()],
        }
    }
}
