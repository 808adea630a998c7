//! Partition replication: the leader's and the follower's rules as pure state machines.
//!
//! Kafka's model, which Strom follows: each partition has one leader per *leader epoch*,
//! chosen by the controller from the in-sync replicas (ISR). Followers pull from the leader
//! with Fetch; the offset a follower fetches at is its log end. The leader keeps the *high
//! watermark* (HW) at the smallest log end among the ISR: every entry below it is on every
//! ISR member, so any leader the controller can elect (it elects from the ISR) holds it.
//! That is what "committed" means, and what an acks=all produce waits for — provided the
//! ISR has at least `min.insync.replicas` members, or a single broker loss could lose it.
//! The leader asks the controller to drop followers that stop catching up (so one slow
//! follower cannot stall the HW) and to re-admit them once they reach the HW; the
//! controller commits those changes only for the current leader epoch, so a deposed
//! leader cannot rewrite the ISR.
//!
//! On a leader change a follower may hold entries the new leader never got. It truncates
//! them by asking the leader where its epochs end rather than trusting its own HW, which
//! can lag and so cut committed entries (KIP-101, "Alter Replication Protocol to use Leader
//! Epoch rather than High Watermark for Truncation"); KIP-279 ("Fix log divergence between
//! leader and follower after fast leader fail over") makes the follower also stop at its
//! own end of the epoch the leader names, and repeat the question when it does not know
//! that epoch. KIP-392 ("Allow consumers to fetch from closest replica") is why followers
//! learn and serve the HW: a follower's HW is `min(leader HW, own log end)`, and a consumer
//! reading from it must not see past it.
//!
//! Why pure: the rules are where replication goes wrong, and they go wrong in interleavings
//! (a crash between an append and a fetch, a deposed leader still answering). Plain structs
//! that take events — with `now_ms` passed in — and return what changed can be driven by
//! the broker's fetch/produce handlers and the follower fetcher, and equally by a
//! deterministic simulation that tries thousands of interleavings per second and checks the
//! safety properties after every step (`simulation`, in tests). No I/O, sockets, clocks or
//! tasks live here.
//!
//! - [`leader`]: follower progress, HW, ISR shrink/expand proposals, acks=all.
//! - [`follower`]: the truncation rule on a new leader epoch.
//! - [`election`]: the controller's choice of leader from the ISR.
//! - [`read_replica`]: which replica a consumer in a given rack reads from (KIP-392).

pub mod election;
pub mod follower;
pub mod leader;
pub mod read_replica;

pub use election::elect_leader;
pub use follower::{truncation_offset, truncation_step, TruncationStep};
pub use leader::{AckError, FollowerFetchOutcome, LeaderState};

#[cfg(test)]
mod leader_tests;
#[cfg(test)]
mod simulation;
