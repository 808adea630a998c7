//! KIP-951: a Produce (v10+) or Fetch (v16+) answered NOT_LEADER_OR_FOLLOWER (or, for
//! Fetch, FENCED_LEADER_EPOCH) also names the partition's current leader and epoch, and the
//! response lists those leaders' addresses on the client's listener (`node_endpoints`), so
//! the client moves to the new leader without waiting for a metadata refresh.

use std::collections::BTreeSet;

use strom_controller::MetadataImage;
use strom_protocol::ErrorCode;

use super::{broker_endpoints, Advertised, BrokerEndpoint};
use crate::state::Broker;

/// The first Produce version with `current_leader` and `node_endpoints`.
pub const PRODUCE_MIN_VERSION: i16 = 10;
/// The first Fetch version with `node_endpoints` (and filled `current_leader`).
pub const FETCH_MIN_VERSION: i16 = 16;

/// Whether an error code is one a leader hint goes with (Produce only ever answers the
/// first of the two).
pub fn wants_hint(error_code: i16) -> bool {
    error_code == ErrorCode::NotLeaderOrFollower.code()
        || error_code == ErrorCode::FencedLeaderEpoch.code()
}

/// Collects the leaders named in one response.
#[derive(Default)]
pub struct LeaderHints {
    leaders: BTreeSet<i32>,
}

impl LeaderHints {
    /// The current leader and leader epoch of a partition as the image has it, when it has
    /// a leader; remembered for [`LeaderHints::endpoints`].
    pub fn leader_of(
        &mut self,
        image: &MetadataImage,
        topic_id: uuid::Uuid,
        index: i32,
    ) -> Option<(i32, i32)> {
        let partition = image.partition(topic_id, index)?;
        if partition.leader < 0 {
            return None;
        }
        self.leaders.insert(partition.leader);
        Some((partition.leader, partition.leader_epoch))
    }

    /// The named leaders' addresses on the client's listener.
    pub fn endpoints(
        &self,
        broker: &Broker,
        image: &MetadataImage,
        advertised: &Advertised,
    ) -> Vec<BrokerEndpoint> {
        if self.leaders.is_empty() {
            return Vec::new();
        }
        broker_endpoints(broker, image, advertised)
            .into_iter()
            .filter(|endpoint| self.leaders.contains(&endpoint.broker_id))
            .collect()
    }
}
