//! A byte-rate limit for the catch-up of replicas a reassignment is adding (Kafka's
//! `follower.replication.throttled.rate` with `follower.replication.throttled.replicas`
//! set to the moving partitions, KIP-73/KIP-455), so a large move does not crowd out the
//! replication of partitions that are not moving.
//!
//! Pure: the replica fetcher asks [`is_throttled`] which of its partitions are catching
//! up as an adding replica, reports the bytes it fetched for them to a
//! [`ReplicationThrottle`] and waits the delay it answers before fetching those
//! partitions again. Partitions that are not moving are never delayed.

use std::time::{Duration, Instant};

use strom_controller::MetadataImage;
use uuid::Uuid;

/// Whether this broker (`node_id`) is catching up on partition `partition` of `topic_id`
/// as a replica a reassignment is adding: only those fetches are throttled.
pub fn is_throttled(image: &MetadataImage, topic_id: Uuid, partition: i32, node_id: i32) -> bool {
    image
        .partition(topic_id, partition)
        .is_some_and(|state| state.adding_replicas.contains(&node_id))
}

/// A token bucket over bytes: refills at `rate_bytes_per_second`, holds at most one
/// second's worth (the burst), and may go into debt by one fetch, which the next delay
/// pays back. A rate of 0 means unlimited.
#[derive(Debug, Clone)]
pub struct ReplicationThrottle {
    rate_bytes_per_second: u64,
    /// Bytes that may be fetched now; negative: the debt to wait out.
    available_bytes: f64,
    refilled_at: Instant,
}

impl ReplicationThrottle {
    pub fn new(rate_bytes_per_second: u64, now: Instant) -> Self {
        Self {
            rate_bytes_per_second,
            available_bytes: rate_bytes_per_second as f64,
            refilled_at: now,
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.rate_bytes_per_second == 0
    }

    /// A new rate (a config change); the bucket keeps its level, capped by the new burst.
    pub fn set_rate(&mut self, rate_bytes_per_second: u64, now: Instant) {
        self.refill(now);
        self.rate_bytes_per_second = rate_bytes_per_second;
        self.available_bytes = self.available_bytes.min(rate_bytes_per_second as f64);
    }

    /// Records `bytes` fetched for throttled partitions at `now`; answers how long to wait
    /// before fetching them again (zero while the bucket has bytes left).
    pub fn record(&mut self, bytes: u64, now: Instant) -> Duration {
        if self.is_unlimited() {
            return Duration::ZERO;
        }
        self.refill(now);
        self.available_bytes -= bytes as f64;
        self.delay()
    }

    /// How long until the bucket is out of debt (zero when it is not in debt).
    pub fn delay(&self) -> Duration {
        if self.is_unlimited() || self.available_bytes >= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(-self.available_bytes / self.rate_bytes_per_second as f64)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.refilled_at = now;
        let burst = self.rate_bytes_per_second as f64;
        self.available_bytes =
            (self.available_bytes + elapsed * self.rate_bytes_per_second as f64).min(burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_rate_when_fetching_faster_should_delay_until_the_debt_is_paid() {
        let start = Instant::now();
        let mut throttle = ReplicationThrottle::new(1_000, start);
        // The first second's worth passes at once (the burst).
        assert_eq!(throttle.record(1_000, start), Duration::ZERO);
        // 500 more bytes: half a second of debt.
        assert_eq!(throttle.record(500, start), Duration::from_millis(500));
        // Waiting it out clears the debt; the bucket then refills, up to the burst only.
        let later = start + Duration::from_millis(500);
        assert_eq!(throttle.record(0, later), Duration::ZERO);
        let much_later = later + Duration::from_secs(60);
        assert_eq!(throttle.record(1_000, much_later), Duration::ZERO);
        assert_eq!(throttle.record(2_000, much_later), Duration::from_secs(2));
    }

    #[test]
    fn given_no_rate_should_never_delay() {
        let now = Instant::now();
        let mut throttle = ReplicationThrottle::new(0, now);
        assert!(throttle.is_unlimited());
        assert_eq!(throttle.record(u64::MAX / 2, now), Duration::ZERO);
        throttle.set_rate(10, now);
        assert_eq!(throttle.record(20, now), Duration::from_secs(2));
    }

    #[test]
    fn given_a_reassignment_should_throttle_only_the_adding_replica() {
        use strom_controller::MetadataRecord;
        let topic_id = Uuid::from_u128(9);
        let mut image = MetadataImage::empty();
        image
            .apply_entry(
                0,
                &[
                    MetadataRecord::Topic {
                        name: "t".into(),
                        topic_id,
                    },
                    MetadataRecord::Partition {
                        topic_id,
                        partition: 0,
                        replicas: vec![1, 2],
                        leader: 1,
                        leader_epoch: 0,
                        isr: vec![1, 2],
                    },
                    MetadataRecord::PartitionReassignment {
                        topic_id,
                        partition: 0,
                        replicas: vec![2, 3, 1],
                        adding: vec![3],
                        removing: vec![1],
                        leader: 1,
                        leader_epoch: 1,
                        isr: vec![1, 2],
                        partition_epoch: 1,
                    },
                ],
            )
            .unwrap();
        assert!(is_throttled(&image, topic_id, 0, 3));
        assert!(!is_throttled(&image, topic_id, 0, 2));
        assert!(!is_throttled(&image, topic_id, 1, 3));
    }
}
