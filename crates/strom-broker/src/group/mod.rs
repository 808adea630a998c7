//! The group coordinator, hosted: `strom-coordinator`'s runtime
//! ([`strom_coordinator::group::GroupCoordinator`], sharded by `__consumer_offsets`
//! partition) over this broker's internal topics ([`crate::internal_topics::BrokerLog`]).
//! The state machine, the rebalance protocols, the assignors and the record formats live in
//! that crate too and are re-exported here for the handlers.

#[cfg(test)]
mod wire_tests;

pub use strom_coordinator::group::{
    assignor, classic, classic_messages, consumer, consumer_records, coordinator, error_code,
    not_committed_code, persist, records, runtime, Action, GroupConfig, GroupCoordinator,
    GroupRuntimeConfig, GroupShard, WaiterId, OFFSETS_TOPIC,
};

use crate::config::BrokerConfig;
use crate::internal_topics::InternalTopic;

/// The coordinator's settings from the broker config.
pub fn group_config(config: &BrokerConfig) -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: config.group.initial_rebalance_delay_ms,
        min_session_timeout_ms: config.group.min_session_timeout_ms,
        max_session_timeout_ms: config.group.max_session_timeout_ms,
        max_size: config.group.max_size,
        offsets_retention_ms: config.group.offsets_retention_minutes * 60_000,
        offset_metadata_max_bytes: config.group.offset_metadata_max_bytes,
        consumer_heartbeat_interval_ms: config.group.consumer_heartbeat_interval_ms,
        consumer_session_timeout_ms: config.group.consumer_session_timeout_ms as i64,
        consumer_assignors: config.group.consumer_assignors.clone(),
    }
}

/// The runtime's settings from the broker config: the state machine's and how
/// `__consumer_offsets` is created.
pub fn runtime_config(config: &BrokerConfig) -> GroupRuntimeConfig {
    GroupRuntimeConfig {
        group: group_config(config),
        offsets_topic: InternalTopic {
            name: OFFSETS_TOPIC,
            partitions: config.group.offsets_topic_num_partitions,
            replication_factor: config.group.offsets_topic_replication_factor,
            segment_bytes: config.group.offsets_topic_segment_bytes,
        },
    }
}
