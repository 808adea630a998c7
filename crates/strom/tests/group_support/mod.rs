//! Shared by the group integration tests: a minimal classic-protocol group member that runs
//! on its own thread over a raw connection (join, leader assigns round-robin, sync,
//! heartbeat, rejoin on rebalance), so tests can watch assignments and crash members.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::broker_support::Conn;

pub const SESSION_TIMEOUT_MS: i32 = 6000;
pub const HEARTBEAT_INTERVAL_MS: u64 = 300;
const REBALANCE_TIMEOUT_MS: i32 = 10_000;

pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const MEMBER_ID_REQUIRED: i16 = 79;

pub fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// What a member currently holds: (generation, partitions).
pub type Held = Arc<Mutex<(i32, Vec<i32>)>>;

pub struct Member {
    crash: Arc<AtomicBool>,
    leave: Arc<AtomicBool>,
    pub held: Held,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    /// Starts a member of `group` on `conn` for a topic of `partitions` partitions.
    pub fn start(conn: Conn, group: &str, partitions: i32) -> Member {
        let crash = Arc::new(AtomicBool::new(false));
        let leave = Arc::new(AtomicBool::new(false));
        let held: Held = Arc::new(Mutex::new((-1, Vec::new())));
        let thread = {
            let (crash, leave, held, group) = (
                crash.clone(),
                leave.clone(),
                held.clone(),
                group.to_string(),
            );
            std::thread::spawn(move || run(conn, &group, partitions, &crash, &leave, &held))
        };
        Member {
            crash,
            leave,
            held,
            thread: Some(thread),
        }
    }

    /// Stops without LeaveGroup and closes the socket, as a killed process would.
    pub fn crash(mut self) {
        self.crash.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    pub fn held(&self) -> (i32, Vec<i32>) {
        self.held.lock().unwrap().clone()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.leave.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn encode_partitions(partitions: &[i32]) -> Bytes {
    let mut buf = BytesMut::new();
    for p in partitions {
        buf.put_i32(*p);
    }
    buf.freeze()
}

fn decode_partitions(mut bytes: Bytes) -> Vec<i32> {
    let mut out = Vec::new();
    while bytes.remaining() >= 4 {
        out.push(bytes.get_i32());
    }
    out
}

fn run(
    mut conn: Conn,
    group: &str,
    partitions: i32,
    crash: &AtomicBool,
    leave: &AtomicBool,
    held: &Held,
) {
    let mut member_id = String::new();
    'membership: loop {
        if crash.load(Ordering::SeqCst) {
            return;
        }
        if leave.load(Ordering::SeqCst) {
            let request = LeaveGroupRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_members(vec![
                    leave_group_request::MemberIdentity::default().with_member_id(s(&member_id))
                ]);
            let _: LeaveGroupResponse = conn.call(ApiKey::LeaveGroup, 3, &request);
            return;
        }
        let join = JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(SESSION_TIMEOUT_MS)
            .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
            .with_member_id(s(&member_id))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("test-roundrobin"))
                .with_metadata(Bytes::from_static(b"meta"))]);
        let joined: JoinGroupResponse = conn.call(ApiKey::JoinGroup, 5, &join);
        match joined.error_code {
            0 => {}
            MEMBER_ID_REQUIRED => {
                member_id = joined.member_id.to_string();
                continue;
            }
            UNKNOWN_MEMBER_ID => {
                member_id.clear();
                continue;
            }
            _ => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        member_id = joined.member_id.to_string();
        let generation = joined.generation_id;
        let assignments = if joined.leader == joined.member_id {
            let mut ids: Vec<String> = joined
                .members
                .iter()
                .map(|m| m.member_id.to_string())
                .collect();
            ids.sort();
            ids.iter()
                .enumerate()
                .map(|(index, id)| {
                    let mine: Vec<i32> = (0..partitions)
                        .filter(|p| *p as usize % ids.len() == index)
                        .collect();
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(id))
                        .with_assignment(encode_partitions(&mine))
                })
                .collect()
        } else {
            Vec::new()
        };
        let sync = SyncGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(generation)
            .with_member_id(s(&member_id))
            .with_assignments(assignments);
        let synced: SyncGroupResponse = conn.call(ApiKey::SyncGroup, 3, &sync);
        if synced.error_code != 0 {
            continue;
        }
        *held.lock().unwrap() = (generation, decode_partitions(synced.assignment));
        loop {
            let deadline = Instant::now() + Duration::from_millis(HEARTBEAT_INTERVAL_MS);
            while Instant::now() < deadline {
                if crash.load(Ordering::SeqCst) {
                    return;
                }
                if leave.load(Ordering::SeqCst) {
                    continue 'membership;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let heartbeat = HeartbeatRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_generation_id(generation)
                .with_member_id(s(&member_id));
            let beat: HeartbeatResponse = conn.call(ApiKey::Heartbeat, 3, &heartbeat);
            match beat.error_code {
                0 => {}
                UNKNOWN_MEMBER_ID => {
                    member_id.clear();
                    continue 'membership;
                }
                _ => continue 'membership,
            }
        }
    }
}

/// Waits until every member holds the same generation and together they hold each of
/// `partitions` exactly once; returns that generation and the holdings.
pub fn wait_settled(
    members: &[&Member],
    partitions: i32,
    timeout: Duration,
) -> (i32, Vec<Vec<i32>>) {
    let deadline = Instant::now() + timeout;
    loop {
        let held: Vec<(i32, Vec<i32>)> = members.iter().map(|m| m.held()).collect();
        let generation = held[0].0;
        let mut all: Vec<i32> = held.iter().flat_map(|(_, p)| p.clone()).collect();
        all.sort();
        if generation > 0
            && held.iter().all(|(g, _)| *g == generation)
            && all == (0..partitions).collect::<Vec<_>>()
        {
            return (generation, held.into_iter().map(|(_, p)| p).collect());
        }
        assert!(Instant::now() < deadline, "group never settled: {held:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
