//! A deterministic simulation of one partition on three replicas, driven by a seeded RNG:
//! acks=all producers (min.insync.replicas=2), followers fetching and truncating, a
//! controller fencing and electing, and random faults — crashes, restarts, network
//! isolation, heals and lag-timer expiry. Every safety invariant is checked after every
//! step; at the end everything heals and the logs must converge.
//!
//! Crash model: a crashed replica keeps its whole log and epoch cache (a process crash
//! leaves the page cache; Kafka's acks=all promise does not cover power loss without
//! fsync). Its high watermark survives as a checkpoint; its metadata and leadership do not.
//! Isolation cuts a replica off from the other replicas and the controller but not from
//! producers, so a deposed leader keeps taking writes it can never commit.
//!
//! A failure prints the seed and the last events; `STROM_SIM_SEED=<seed>` replays that
//! seed alone (`STROM_SIM_STEPS` changes the step count, `STROM_SIM_SEEDS` how many seeds
//! from 0 a longer search runs).

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{self, AssertUnwindSafe};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::follower::{truncation_offset, truncation_step, TruncationStep};
use super::leader::LeaderState;
use alter::AlterRequest;
use model::{Controller, Entry, Metadata, SimLog};

mod alter;
mod checks;
mod model;

const REPLICAS: [i32; 3] = [0, 1, 2];
const MIN_INSYNC_REPLICAS: usize = 2;
const LAG_TIME_MAX_MS: i64 = 400;
const REQUEST_TIMEOUT_MS: i64 = 2_000;
const FETCH_ENTRIES_MAX: usize = 4;
const BATCH_ENTRIES_MAX: u64 = 3;
const WRITES_IN_FLIGHT_MAX: usize = 16;
const TRUNCATION_ROUNDS_MAX: usize = 64;
const CONVERGENCE_ROUNDS_MAX: usize = 32;
const TRACE_EVENTS_MAX: usize = 60;

const SEEDS: u64 = 500;
const STEPS: usize = 2_000;

/// What happened at a step, kept for the failure report; read only through `Debug`.
#[allow(dead_code)]
#[derive(Debug, Clone)]
enum Event {
    Produce {
        node: i32,
        epoch: i32,
        offsets: (i64, i64),
    },
    ProduceRefused {
        node: i32,
    },
    Fetch {
        follower: i32,
        leader: i32,
        from: i64,
        count: usize,
        high_watermark: i64,
    },
    Truncate {
        node: i32,
        from: i64,
        to: i64,
    },
    Propose {
        leader: i32,
        isr: Vec<i32>,
    },
    AlterAnswered {
        leader: i32,
        isr: Vec<i32>,
        committed: bool,
        delivered: bool,
    },
    Learn {
        node: i32,
        metadata: Metadata,
    },
    Fence {
        node: i32,
    },
    Unfence {
        node: i32,
    },
    Crash {
        node: i32,
    },
    Restart {
        node: i32,
    },
    Isolate {
        node: i32,
    },
    Heal {
        node: i32,
    },
    ClockJump {
        ms: i64,
    },
    Ack {
        offsets: (i64, i64),
    },
    WriteFailed {
        offsets: (i64, i64),
    },
}

/// How often interesting things happened, summed over the seeds, so a simulation that
/// never exercised the rules cannot pass.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    acked: u64,
    failed: u64,
    elections: u64,
    truncated_entries: u64,
    truncation_retries: u64,
    isr_shrinks: u64,
    isr_expansions: u64,
    proposals_rejected: u64,
}

struct Node {
    id: i32,
    log: SimLog,
    high_watermark: i64,
    crashed: bool,
    isolated: bool,
    /// The metadata this replica has learned (lost on a crash).
    known: Option<Metadata>,
    leader: Option<LeaderState>,
    must_truncate: bool,
    /// Length of the common prefix of this log and the committed prefix.
    agreement: usize,
}

impl Node {
    fn reachable(&self) -> bool {
        !self.crashed && !self.isolated
    }
}

struct PendingWrite {
    node: i32,
    leader_epoch: i32,
    first_offset: i64,
    end_offset: i64,
    first_payload: u64,
    deadline_ms: i64,
}

/// The follower's rule, replaceable so a test can show the simulation catches a wrong one.
type TruncationRule = fn(i64, Option<(i32, i64)>, (i32, i64), i64) -> TruncationStep;

struct World {
    rng: StdRng,
    truncation_rule: TruncationRule,
    now_ms: i64,
    nodes: Vec<Node>,
    controller: Controller,
    /// The longest prefix any leader's high watermark ever covered.
    committed: Vec<Entry>,
    committed_payloads: HashSet<u64>,
    /// Acknowledged payloads and the offsets they were acknowledged at.
    acked: Vec<(u64, i64)>,
    pending: Vec<PendingWrite>,
    /// AlterPartition requests on their way to the controller, at most one per leader.
    alter_inbox: VecDeque<AlterRequest>,
    next_payload: u64,
    leader_of_epoch: HashMap<i32, i32>,
    high_watermark_of_leader: HashMap<(i32, i32), i64>,
    controller_epoch_seen: i32,
    trace: VecDeque<(usize, Event)>,
    step: usize,
    stats: Stats,
}

impl World {
    fn new(seed: u64, truncation_rule: TruncationRule) -> Self {
        let controller = Controller::new(REPLICAS.to_vec());
        let nodes = REPLICAS
            .iter()
            .map(|&id| Node {
                id,
                log: SimLog::default(),
                high_watermark: 0,
                crashed: false,
                isolated: false,
                known: None,
                leader: None,
                must_truncate: false,
                agreement: 0,
            })
            .collect();
        let mut world = World {
            rng: StdRng::seed_from_u64(seed),
            truncation_rule,
            now_ms: 1_000_000,
            nodes,
            controller,
            committed: Vec::new(),
            committed_payloads: HashSet::new(),
            acked: Vec::new(),
            pending: Vec::new(),
            alter_inbox: VecDeque::new(),
            next_payload: 1,
            leader_of_epoch: HashMap::new(),
            high_watermark_of_leader: HashMap::new(),
            controller_epoch_seen: 0,
            trace: VecDeque::with_capacity(TRACE_EVENTS_MAX),
            step: 0,
            stats: Stats::default(),
        };
        for id in REPLICAS {
            world.deliver_metadata(id);
        }
        world
    }

    fn record(&mut self, event: Event) {
        if self.trace.len() == TRACE_EVENTS_MAX {
            self.trace.pop_front();
        }
        self.trace.push_back((self.step, event));
    }

    fn node(&self, id: i32) -> &Node {
        &self.nodes[id as usize]
    }

    fn node_mut(&mut self, id: i32) -> &mut Node {
        &mut self.nodes[id as usize]
    }

    fn random_node(&mut self) -> i32 {
        REPLICAS[self.rng.gen_range(0..REPLICAS.len())]
    }

    fn run(&mut self, steps: usize) {
        for _ in 0..steps {
            self.step += 1;
            self.random_step();
            self.after_step();
        }
        self.converge();
    }

    fn random_step(&mut self) {
        self.now_ms += self.rng.gen_range(0..=20);
        let node = self.random_node();
        match self.rng.gen_range(0..1000) {
            0..=249 => self.produce(node),
            250..=549 => self.fetch(node, FETCH_ENTRIES_MAX),
            550..=599 => self.maintain_isr(node),
            600..=649 => self.answer_alter_partition(),
            650..=739 => self.deliver_metadata(node),
            740..=809 => self.controller_tick(),
            810..=822 => self.crash(node),
            823..=852 => self.restart(node),
            853..=865 => self.isolate(node),
            866..=895 => self.heal(node),
            896..=910 => {
                let ms = self
                    .rng
                    .gen_range(LAG_TIME_MAX_MS + 1..=3 * LAG_TIME_MAX_MS);
                self.now_ms += ms;
                self.record(Event::ClockJump { ms });
            }
            _ => {}
        }
    }

    fn after_step(&mut self) {
        self.observe_leaders();
        self.settle_writes();
        self.check_invariants();
    }

    /// An acks=all produce of 1..=3 entries to `node`, if it believes it leads.
    fn produce(&mut self, id: i32) {
        if self.pending.len() >= WRITES_IN_FLIGHT_MAX {
            return;
        }
        let count = self.rng.gen_range(1..=BATCH_ENTRIES_MAX);
        let first_payload = self.next_payload;
        let now_ms = self.now_ms;
        let node = &mut self.nodes[id as usize];
        if node.crashed {
            return;
        }
        let Some(leader) = node.leader.as_mut() else {
            return;
        };
        if !leader.has_min_isr(MIN_INSYNC_REPLICAS) {
            self.record(Event::ProduceRefused { node: id });
            return;
        }
        let epoch = leader.leader_epoch();
        let first_offset = node.log.end();
        for index in 0..count {
            node.log.append(Entry {
                offset: first_offset + index as i64,
                epoch,
                payload: first_payload + index,
            });
        }
        let end_offset = node.log.end();
        leader.on_local_append(end_offset, now_ms);
        self.next_payload += count;
        self.pending.push(PendingWrite {
            node: id,
            leader_epoch: epoch,
            first_offset,
            end_offset,
            first_payload,
            deadline_ms: now_ms + REQUEST_TIMEOUT_MS,
        });
        self.record(Event::Produce {
            node: id,
            epoch,
            offsets: (first_offset, end_offset),
        });
    }

    /// The leader `follower` believes in, if that leader would answer it: reachable and
    /// leading exactly the epoch the follower knows (Kafka fences any other epoch).
    fn fetch_target(&self, follower: i32) -> Option<i32> {
        let node = self.node(follower);
        if !node.reachable() || node.leader.is_some() {
            return None;
        }
        let known = node.known.as_ref()?;
        let leader_id = known.leader.filter(|&leader| leader != follower)?;
        let leader_node = self.node(leader_id);
        let leading = leader_node.leader.as_ref()?;
        (leader_node.reachable() && leading.leader_epoch() == known.leader_epoch)
            .then_some(leader_id)
    }

    fn fetch(&mut self, follower: i32, entries_max: usize) {
        let Some(leader_id) = self.fetch_target(follower) else {
            return;
        };
        if self.node(follower).must_truncate {
            self.truncate(follower, leader_id);
        }
        let now_ms = self.now_ms;
        let fetch_offset = self.node(follower).log.end();
        let leader_end = self.node(leader_id).log.end();
        assert!(
            fetch_offset <= leader_end,
            "follower {follower} at {fetch_offset} is past leader {leader_id}'s end {leader_end}"
        );
        if fetch_offset > 0 {
            assert_eq!(
                self.node(follower).log.entry(fetch_offset - 1),
                self.node(leader_id).log.entry(fetch_offset - 1),
                "follower {follower} diverges from leader {leader_id} below its fetch offset"
            );
        }
        let leader_node = &mut self.nodes[leader_id as usize];
        let leader = leader_node.leader.as_mut().expect("fetch target leads");
        let outcome = leader.on_follower_fetch(follower, fetch_offset, leader_end, now_ms);
        let high_watermark = leader.high_watermark();
        let start = fetch_offset as usize;
        let end = leader_node
            .log
            .entries()
            .len()
            .min(start.saturating_add(entries_max));
        let fetched = leader_node.log.entries()[start..end].to_vec();
        if let Some(proposed) = outcome.propose_isr {
            self.propose(leader_id, proposed);
        }
        let node = self.node_mut(follower);
        for entry in &fetched {
            node.log.append(*entry);
        }
        node.high_watermark = high_watermark.min(node.log.end());
        self.record(Event::Fetch {
            follower,
            leader: leader_id,
            from: fetch_offset,
            count: fetched.len(),
            high_watermark,
        });
    }

    /// OffsetForLeaderEpoch rounds against the leader until the follower's log is a prefix
    /// of the leader's (asserted at the next fetch).
    fn truncate(&mut self, follower: i32, leader_id: i32) {
        for _ in 0..TRUNCATION_ROUNDS_MAX {
            let node = self.node(follower);
            let Some(latest) = node.log.latest_epoch() else {
                assert_eq!(node.log.end(), 0, "entries without a cached epoch");
                self.node_mut(follower).must_truncate = false;
                return;
            };
            let answer = self
                .node(leader_id)
                .log
                .end_offset_for(latest)
                .unwrap_or((-1, -1));
            let node = self.node(follower);
            let local = node.log.end_offset_for(answer.0);
            let step = (self.truncation_rule)(node.log.end(), local, answer, node.high_watermark);
            let (offset, done) = match step {
                TruncationStep::Done(offset) => (offset, true),
                TruncationStep::Retry(offset) => (offset, false),
            };
            assert!(
                offset >= node.high_watermark,
                "follower {follower} would truncate to {offset}, below its high watermark {}",
                node.high_watermark
            );
            let from = node.log.end();
            let node = self.node_mut(follower);
            node.log.truncate_to(offset);
            node.agreement = node.agreement.min(node.log.entries().len());
            let removed = (from - node.log.end()) as u64;
            self.stats.truncated_entries += removed;
            if removed > 0 {
                self.record(Event::Truncate {
                    node: follower,
                    from,
                    to: offset,
                });
            }
            if done {
                self.node_mut(follower).must_truncate = false;
                return;
            }
            self.stats.truncation_retries += 1;
        }
        panic!("truncation of {follower} against {leader_id} did not finish");
    }

    /// The leader's periodic ISR task: resend a pending change, or propose a shrink.
    fn maintain_isr(&mut self, id: i32) {
        let node = self.node(id);
        let Some(leader) = node.leader.as_ref() else {
            return;
        };
        let proposal = match (leader.pending_isr(), leader.isr_proposal_to_resend()) {
            (_, Some(resend)) => Some(resend.to_vec()),
            (Some(_awaiting_metadata), None) => None,
            (None, None) => leader.isr_to_shrink(self.now_ms, LAG_TIME_MAX_MS),
        };
        if let Some(proposed) = proposal {
            self.propose(id, proposed);
        }
    }

    /// The controller's current record reaches `id` (if reachable): a new epoch makes it
    /// leader or a follower that must truncate; a newer ISR in its own epoch is applied.
    fn deliver_metadata(&mut self, id: i32) {
        if !self.node(id).reachable() {
            return;
        }
        let metadata = self.controller.metadata().clone();
        let now_ms = self.now_ms;
        let node = &mut self.nodes[id as usize];
        let new_epoch = match &node.known {
            None => true,
            Some(known) => {
                assert!(
                    metadata.leader_epoch > known.leader_epoch
                        || (metadata.leader_epoch == known.leader_epoch
                            && metadata.partition_epoch >= known.partition_epoch),
                    "replica {id} would go back from {known:?} to {metadata:?}"
                );
                if metadata == *known {
                    return;
                }
                metadata.leader_epoch > known.leader_epoch
            }
        };
        if new_epoch {
            node.leader = None;
            node.must_truncate = false;
            if metadata.leader == Some(id) {
                let end = node.log.end();
                node.log.assign_epoch(metadata.leader_epoch, end);
                node.leader = Some(LeaderState::new(
                    id,
                    metadata.leader_epoch,
                    REPLICAS.to_vec(),
                    metadata.isr.clone(),
                    end,
                    node.high_watermark,
                    now_ms,
                ));
            } else {
                node.must_truncate = true;
            }
        } else if let Some(leader) = node.leader.as_mut() {
            leader.apply_isr(metadata.isr.clone(), node.log.end());
        }
        node.known = Some(metadata.clone());
        self.record(Event::Learn { node: id, metadata });
    }

    /// Session expiry and re-registration: unreachable replicas are fenced, reachable
    /// fenced ones unfenced (which may elect a leader for an offline partition).
    fn controller_tick(&mut self) {
        for id in REPLICAS {
            let reachable = self.node(id).reachable();
            let fenced = self.controller.is_fenced(id);
            if !reachable && !fenced {
                self.controller.fence(id);
                self.record(Event::Fence { node: id });
            } else if reachable && fenced {
                self.controller.unfence(id);
                self.record(Event::Unfence { node: id });
            }
        }
    }

    fn crash(&mut self, id: i32) {
        let node = self.node_mut(id);
        if node.crashed {
            return;
        }
        node.crashed = true;
        node.known = None;
        node.leader = None;
        node.must_truncate = false;
        self.record(Event::Crash { node: id });
    }

    /// A restarted broker registers again: the controller fences its old incarnation
    /// (KRaft does, so it never leads an epoch it led before the crash).
    fn restart(&mut self, id: i32) {
        if !self.node(id).crashed {
            return;
        }
        self.node_mut(id).crashed = false;
        self.controller.fence(id);
        self.record(Event::Restart { node: id });
    }

    fn isolate(&mut self, id: i32) {
        let node = self.node_mut(id);
        if node.crashed || node.isolated {
            return;
        }
        node.isolated = true;
        self.record(Event::Isolate { node: id });
    }

    fn heal(&mut self, id: i32) {
        let node = self.node_mut(id);
        if !node.isolated {
            return;
        }
        node.isolated = false;
        self.record(Event::Heal { node: id });
    }
}

/// Runs one seed; on a failure prints the seed, how to replay it and the last events.
fn run_seed(seed: u64, steps: usize, truncation_rule: TruncationRule) -> Stats {
    let mut world = World::new(seed, truncation_rule);
    let result = panic::catch_unwind(AssertUnwindSafe(|| world.run(steps)));
    if let Err(failure) = result {
        eprintln!(
            "replication simulation failed: seed {seed} at step {}",
            world.step
        );
        eprintln!("replay with STROM_SIM_SEED={seed}; last events:");
        for (step, event) in &world.trace {
            eprintln!("  {step:>5} {event:?}");
        }
        panic::resume_unwind(failure);
    }
    world.stats
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

#[test]
fn given_random_faults_when_simulating_many_seeds_should_keep_every_invariant_and_converge() {
    let steps = env_number("STROM_SIM_STEPS").map_or(STEPS, |steps| steps as usize);
    let seeds: Vec<u64> = match env_number("STROM_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_number("STROM_SIM_SEEDS").unwrap_or(SEEDS)).collect(),
    };
    let mut total = Stats::default();
    for &seed in &seeds {
        let stats = run_seed(seed, steps, truncation_step);
        total.acked += stats.acked;
        total.failed += stats.failed;
        total.elections += stats.elections;
        total.truncated_entries += stats.truncated_entries;
        total.truncation_retries += stats.truncation_retries;
        total.isr_shrinks += stats.isr_shrinks;
        total.isr_expansions += stats.isr_expansions;
        total.proposals_rejected += stats.proposals_rejected;
    }
    eprintln!("{} seeds x {steps} steps: {total:?}", seeds.len());
    if seeds.len() > 1 {
        assert!(total.acked > 0, "nothing was acknowledged: {total:?}");
        assert!(total.failed > 0, "no write ever failed: {total:?}");
        assert!(
            total.elections > seeds.len() as u64,
            "few elections: {total:?}"
        );
        assert!(
            total.truncated_entries > 0,
            "nothing was truncated: {total:?}"
        );
        assert!(
            total.isr_shrinks > 0 && total.isr_expansions > 0,
            "{total:?}"
        );
        assert!(total.proposals_rejected > 0, "no stale proposal: {total:?}");
    }
}

/// KIP-101 before KIP-279: the leader's end offset alone, one round.
fn kip_101_rule(
    local_log_end: i64,
    _local_epoch_end: Option<(i32, i64)>,
    leader_answer: (i32, i64),
    local_high_watermark: i64,
) -> TruncationStep {
    TruncationStep::Done(truncation_offset(
        local_log_end,
        None,
        leader_answer,
        local_high_watermark,
    ))
}

#[test]
fn given_the_pre_kip_279_truncation_rule_when_simulating_should_catch_divergent_logs() {
    let caught = (0..SEEDS)
        .find(|&seed| panic::catch_unwind(|| run_seed(seed, STEPS, kip_101_rule)).is_err());
    assert!(
        caught.is_some(),
        "the simulation cannot tell KIP-101 from KIP-279"
    );
}
