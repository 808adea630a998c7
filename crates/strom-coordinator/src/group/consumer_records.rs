//! Consumer-protocol (KIP-848) groups in `__consumer_offsets`: one snapshot record per group
//! (key version [`CONSUMER_GROUP_KEY_VERSION`]), rewritten whenever epochs, membership or
//! assignments change, and a tombstone when the group goes away. Replayed at load, so a
//! broker restart does not force every member to rejoin (their epochs stay valid for
//! commits and heartbeats).
//!
//! Kafka spreads this state over six record types (keys 3-8). Strom writes one snapshot
//! under a key version Kafka does not use, which keeps replay trivial (last one wins) at
//! the cost of rewriting the whole group on each change — fine for the group sizes a
//! single coordinator partition holds, and compaction keeps only the latest.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

use super::assignor::Assignment;
use super::consumer::{compile_topic_regex, ConsumerGroup, ConsumerMember, MemberState};
use super::records::RecordCodecError;

/// Key version of a Strom consumer-group snapshot (Kafka's own keys stop at 8-ish).
pub const CONSUMER_GROUP_KEY_VERSION: i16 = 1000;
const SNAPSHOT_VERSION: i16 = 0;
/// Bounds on counts read back, so a corrupt record cannot make us allocate wildly.
const COUNT_MAX: i32 = 1 << 20;

pub fn encode_key(group: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + group.len());
    buf.put_i16(CONSUMER_GROUP_KEY_VERSION);
    put_string(&mut buf, group);
    buf.freeze()
}

fn put_string(buf: &mut BytesMut, value: &str) {
    let len = value.len().min(i16::MAX as usize);
    buf.put_i16(len as i16);
    buf.put_slice(&value.as_bytes()[..len]);
}

fn put_nullable(buf: &mut BytesMut, value: Option<&str>) {
    match value {
        Some(value) => put_string(buf, value),
        None => buf.put_i16(-1),
    }
}

fn put_assignment(buf: &mut BytesMut, assignment: &Assignment) {
    buf.put_i32(assignment.len() as i32);
    for (topic, partitions) in assignment {
        buf.put_slice(topic.as_bytes());
        buf.put_i32(partitions.len() as i32);
        for p in partitions {
            buf.put_i32(*p);
        }
    }
}

fn state_code(state: MemberState) -> i8 {
    match state {
        MemberState::Stable => 0,
        MemberState::UnrevokedPartitions => 1,
        MemberState::UnreleasedPartitions => 2,
    }
}

pub fn encode_snapshot(group: &ConsumerGroup) -> Bytes {
    let mut buf = BytesMut::with_capacity(128);
    buf.put_i16(SNAPSHOT_VERSION);
    buf.put_i32(group.group_epoch);
    buf.put_i32(group.assignment_epoch);
    put_string(&mut buf, &group.assignor_name);
    buf.put_i32(group.subscription_metadata.len() as i32);
    for (name, (id, partitions)) in &group.subscription_metadata {
        put_string(&mut buf, name);
        buf.put_slice(id.as_bytes());
        buf.put_i32(*partitions);
    }
    buf.put_i32(group.members.len() as i32);
    for m in group.members.values() {
        put_string(&mut buf, &m.member_id);
        put_nullable(&mut buf, m.instance_id.as_deref());
        put_nullable(&mut buf, m.rack_id.as_deref());
        put_string(&mut buf, &m.client_id);
        put_string(&mut buf, &m.client_host);
        buf.put_i32(m.member_epoch);
        buf.put_i32(m.previous_member_epoch);
        buf.put_i8(state_code(m.state));
        buf.put_i32(m.rebalance_timeout_ms);
        put_nullable(&mut buf, m.server_assignor.as_deref());
        put_nullable(&mut buf, m.subscribed_topic_regex.as_deref());
        buf.put_i32(m.subscribed_topic_names.len() as i32);
        for name in &m.subscribed_topic_names {
            put_string(&mut buf, name);
        }
        put_assignment(&mut buf, &m.assigned);
        put_assignment(&mut buf, &m.pending_revocation);
        put_assignment(
            &mut buf,
            group.target.get(&m.member_id).unwrap_or(&Assignment::new()),
        );
    }
    buf.freeze()
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn need(&self, n: usize) -> Result<(), RecordCodecError> {
        if self.0.remaining() < n {
            Err(RecordCodecError::Truncated)
        } else {
            Ok(())
        }
    }
    fn i8(&mut self) -> Result<i8, RecordCodecError> {
        self.need(1)?;
        Ok(self.0.get_i8())
    }
    fn i16(&mut self) -> Result<i16, RecordCodecError> {
        self.need(2)?;
        Ok(self.0.get_i16())
    }
    fn i32(&mut self) -> Result<i32, RecordCodecError> {
        self.need(4)?;
        Ok(self.0.get_i32())
    }
    fn count(&mut self) -> Result<usize, RecordCodecError> {
        let count = self.i32()?;
        if !(0..=COUNT_MAX).contains(&count) || count as usize > self.0.remaining() {
            return Err(RecordCodecError::BadLength(count));
        }
        Ok(count as usize)
    }
    fn uuid(&mut self) -> Result<Uuid, RecordCodecError> {
        self.need(16)?;
        let mut bytes = [0u8; 16];
        self.0.copy_to_slice(&mut bytes);
        Ok(Uuid::from_bytes(bytes))
    }
    fn nullable(&mut self) -> Result<Option<String>, RecordCodecError> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        self.need(len as usize)?;
        let text = String::from_utf8(self.0[..len as usize].to_vec())
            .map_err(|_| RecordCodecError::NotUtf8)?;
        self.0.advance(len as usize);
        Ok(Some(text))
    }
    fn string(&mut self) -> Result<String, RecordCodecError> {
        Ok(self.nullable()?.unwrap_or_default())
    }
    fn assignment(&mut self) -> Result<Assignment, RecordCodecError> {
        let topics = self.count()?;
        let mut out = Assignment::new();
        for _ in 0..topics {
            let topic = self.uuid()?;
            let partitions = self.count()?;
            let mut set = BTreeSet::new();
            for _ in 0..partitions {
                set.insert(self.i32()?);
            }
            out.insert(topic, set);
        }
        Ok(out)
    }
}

/// Rebuilds a group from its snapshot; members get a full session from `now_ms`.
pub fn decode_snapshot(
    group_id: &str,
    bytes: &[u8],
    now_ms: i64,
    session_timeout_ms: i64,
    assignor_default: &str,
) -> Result<ConsumerGroup, RecordCodecError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if version != SNAPSHOT_VERSION {
        return Err(RecordCodecError::UnknownVersion(version));
    }
    let group_epoch = r.i32()?;
    let assignment_epoch = r.i32()?;
    let assignor_name = r.string()?;
    let mut subscription_metadata = BTreeMap::new();
    for _ in 0..r.count()? {
        let name = r.string()?;
        let id = r.uuid()?;
        let partitions = r.i32()?;
        subscription_metadata.insert(name, (id, partitions));
    }
    let mut members = BTreeMap::new();
    let mut target = HashMap::new();
    let mut static_members = HashMap::new();
    for _ in 0..r.count()? {
        let member_id = r.string()?;
        let instance_id = r.nullable()?;
        let rack_id = r.nullable()?;
        let client_id = r.string()?;
        let client_host = r.string()?;
        let member_epoch = r.i32()?;
        let previous_member_epoch = r.i32()?;
        let state = match r.i8()? {
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        };
        let rebalance_timeout_ms = r.i32()?;
        let server_assignor = r.nullable()?;
        let subscribed_topic_regex = r.nullable()?;
        let mut subscribed_topic_names = Vec::new();
        for _ in 0..r.count()? {
            subscribed_topic_names.push(r.string()?);
        }
        let assigned = r.assignment()?;
        let pending_revocation = r.assignment()?;
        let member_target = r.assignment()?;
        if let Some(instance) = &instance_id {
            static_members.insert(instance.clone(), member_id.clone());
        }
        target.insert(member_id.clone(), member_target);
        let topic_pattern = subscribed_topic_regex
            .as_deref()
            .and_then(|regex| compile_topic_regex(regex).ok());
        members.insert(
            member_id.clone(),
            ConsumerMember {
                member_id,
                instance_id,
                rack_id,
                client_id,
                client_host,
                member_epoch,
                previous_member_epoch,
                state,
                subscribed_topic_names,
                subscribed_topic_regex,
                topic_pattern,
                server_assignor,
                rebalance_timeout_ms,
                revocation_deadline_ms: (state == MemberState::UnrevokedPartitions)
                    .then_some(now_ms + rebalance_timeout_ms as i64),
                assigned,
                pending_revocation,
                session_deadline_ms: now_ms + session_timeout_ms,
            },
        );
    }
    Ok(ConsumerGroup {
        group_id: group_id.to_string(),
        group_epoch,
        assignment_epoch,
        members,
        target,
        static_members,
        subscription_metadata,
        assignor_name: if assignor_name.is_empty() {
            assignor_default.to_string()
        } else {
            assignor_name
        },
        // Unknown until the first change is looked at: the first check encodes.
        last_snapshot: Some(Bytes::copy_from_slice(bytes)),
        last_fingerprint: 0,
    })
}
