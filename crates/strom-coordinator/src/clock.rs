//! The coordinators' clock: epoch milliseconds that never jump ([`now_ms`]) in the broker,
//! a hand-moved clock in tests ([`ManualClock`]).

use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The broker's clock ([`now_ms`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

/// Milliseconds since the Unix epoch: the system clock read once, at the first call, and
/// advanced by the monotonic clock from then on (0 if the system clock is set before 1970).
///
/// Session, transaction and replica-lag timeouts are measured on it, so a step of the wall
/// clock (an NTP correction, a virtual machine resumed after a pause) does not expire every
/// consumer session and open transaction at once: seen on a test machine, where the wall
/// clock moved 8 s ahead of the monotonic clock within one test and the coordinator fenced
/// a producer that had been waiting 3 s. Times it writes (offset commits, transaction
/// starts, LogAppendTime) stay within such steps of the wall clock.
pub fn now_ms() -> i64 {
    static ANCHOR: std::sync::OnceLock<(std::time::Instant, u128)> = std::sync::OnceLock::new();
    // The instant first and the wall clock after, in nanoseconds, rounded down only once:
    // without a wall-clock step this never reads behind the wall clock (a client comparing
    // LogAppendTime with its own clock sees no time going back).
    let (at, wall_ns) = ANCHOR.get_or_init(|| {
        let at = std::time::Instant::now();
        let wall_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        (at, wall_ns)
    });
    let now_ns = wall_ns.saturating_add(at.elapsed().as_nanos());
    i64::try_from(now_ns / 1_000_000).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch by the system clock, as it reads now (0 before 1970).
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start_ms: i64) -> Self {
        ManualClock(AtomicI64::new(start_ms))
    }

    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_broker_clock_should_read_epoch_time_and_never_go_back() {
        let first = now_ms();
        // Epoch milliseconds, not time since boot: within a few seconds of the wall clock
        // (the test machine's clock does not step during these lines).
        assert!(
            (first - wall_clock_ms()).abs() < 5_000,
            "now_ms {first} is not near the wall clock {}",
            wall_clock_ms()
        );
        // Read after the wall clock, it is not behind it (no step happens in this test).
        for _ in 0..1_000 {
            let wall = wall_clock_ms();
            let now = now_ms();
            assert!(now >= wall, "now_ms {now} is behind the wall clock {wall}");
        }
        let mut last = first;
        for _ in 0..1_000 {
            let now = now_ms();
            assert!(now >= last, "the clock went back from {last} to {now}");
            last = now;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(
            now_ms() >= first + 20,
            "the clock did not advance with time"
        );
    }
}
