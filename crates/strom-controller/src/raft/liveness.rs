//! Broker sessions as the leader sees them: when each broker last heartbeated, and which
//! are in controlled shutdown. Kept in memory on the leader only, as in KRaft: a new leader
//! starts every broker's clock at the moment it learns it leads (so a broker gets a full
//! session to reach the new leader before it is fenced). Plain struct; time comes in.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct BrokerLiveness {
    /// The Raft term these clocks belong to.
    term: Option<u64>,
    /// When this node started leading in `term`: the clock of a broker not heard from yet.
    leading_since: Instant,
    last_heartbeat: BTreeMap<i32, Instant>,
    /// Brokers in controlled shutdown: their heartbeats do not unfence them.
    shutting_down: BTreeSet<i32>,
}

impl BrokerLiveness {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            term: None,
            leading_since: now,
            last_heartbeat: BTreeMap::new(),
            shutting_down: BTreeSet::new(),
        }
    }

    /// This node leads in `term` at `now`; a term other than the last one seen restarts
    /// every clock (and forgets controlled shutdowns, which a restart re-announces).
    pub(crate) fn lead(&mut self, term: u64, now: Instant) {
        if self.term != Some(term) {
            self.term = Some(term);
            self.leading_since = now;
            self.last_heartbeat.clear();
            self.shutting_down.clear();
        }
    }

    pub(crate) fn heartbeat(&mut self, broker_id: i32, now: Instant) {
        self.last_heartbeat.insert(broker_id, now);
    }

    /// The broker (re-)registered: it is alive and no longer shutting down.
    pub(crate) fn registered(&mut self, broker_id: i32, now: Instant) {
        self.shutting_down.remove(&broker_id);
        self.heartbeat(broker_id, now);
    }

    /// The broker was unregistered: forget its clock and any controlled shutdown.
    pub(crate) fn forget(&mut self, broker_id: i32) {
        self.last_heartbeat.remove(&broker_id);
        self.shutting_down.remove(&broker_id);
    }

    pub(crate) fn begin_shutdown(&mut self, broker_id: i32) {
        self.shutting_down.insert(broker_id);
    }

    pub(crate) fn is_shutting_down(&self, broker_id: i32) -> bool {
        self.shutting_down.contains(&broker_id)
    }

    /// Which of `unfenced` have not heartbeated for longer than `session` at `now`.
    pub(crate) fn expired(&self, unfenced: &[i32], now: Instant, session: Duration) -> Vec<i32> {
        unfenced
            .iter()
            .copied()
            .filter(|broker_id| {
                let last = self
                    .last_heartbeat
                    .get(broker_id)
                    .copied()
                    .unwrap_or(self.leading_since);
                now.saturating_duration_since(last) > session
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: Duration = Duration::from_secs(9);

    #[test]
    fn given_heartbeats_when_session_passes_should_expire_only_the_silent_broker() {
        let start = Instant::now();
        let mut liveness = BrokerLiveness::new(start);
        liveness.lead(1, start);
        liveness.heartbeat(1, start + Duration::from_secs(5));
        let now = start + Duration::from_secs(10);
        assert_eq!(liveness.expired(&[1, 2], now, SESSION), vec![2]);
        assert!(liveness
            .expired(&[1, 2], start + Duration::from_secs(9), SESSION)
            .is_empty());
    }

    #[test]
    fn given_new_term_when_leading_should_restart_every_clock() {
        let start = Instant::now();
        let mut liveness = BrokerLiveness::new(start);
        liveness.lead(1, start);
        liveness.begin_shutdown(3);
        let later = start + Duration::from_secs(20);
        assert_eq!(liveness.expired(&[1], later, SESSION), vec![1]);
        liveness.lead(1, later); // same term: nothing restarts
        assert_eq!(liveness.expired(&[1], later, SESSION), vec![1]);
        liveness.lead(2, later);
        assert!(liveness.expired(&[1], later, SESSION).is_empty());
        assert!(!liveness.is_shutting_down(3));
    }

    #[test]
    fn given_controlled_shutdown_when_registered_again_should_clear_it() {
        let start = Instant::now();
        let mut liveness = BrokerLiveness::new(start);
        liveness.lead(1, start);
        liveness.begin_shutdown(2);
        assert!(liveness.is_shutting_down(2));
        liveness.registered(2, start);
        assert!(!liveness.is_shutting_down(2));
    }
}
