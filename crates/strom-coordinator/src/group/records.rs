//! Records of the `__consumer_offsets` topic, in Kafka's own format so tools that read the
//! topic (and a future migration) understand them.
//!
//! Keys: version 0/1 = offset commit (group, topic, partition); version 2 = group metadata
//! (group). Values: offset commit v3 (offset, leader epoch, metadata, commit timestamp) and
//! group metadata v3. A null value is a tombstone. Keys of versions this coordinator does
//! not write (KIP-848 records, 3 and up) decode as [`RecordKey::Other`] and are skipped on
//! replay, so a log written by Kafka does not stop the load.

use bytes::{Buf, BufMut, Bytes, BytesMut};

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordCodecError {
    #[error("record truncated")]
    Truncated,
    #[error("record string is not UTF-8")]
    NotUtf8,
    #[error("record length {0} is invalid")]
    BadLength(i32),
    #[error("unknown value version {0}")]
    UnknownVersion(i16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
    /// A Strom consumer-protocol group snapshot (see `consumer_records`).
    ConsumerGroup {
        group: String,
    },
    /// A record type this coordinator neither writes nor needs (KIP-848 records).
    Other(i16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberValue>,
}

pub(crate) fn put_string(buf: &mut BytesMut, value: &str) {
    let len = value.len().min(i16::MAX as usize);
    buf.put_i16(len as i16);
    buf.put_slice(&value.as_bytes()[..len]);
}

fn put_nullable_string(buf: &mut BytesMut, value: Option<&str>) {
    match value {
        Some(value) => put_string(buf, value),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, value: &[u8]) {
    buf.put_i32(value.len() as i32);
    buf.put_slice(value);
}

/// A bounds-checked reader of the big-endian record formats (shared with the
/// `__transaction_state` records).
pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
}

impl Reader<'_> {
    pub(crate) fn need(&self, n: usize) -> Result<(), RecordCodecError> {
        if self.buf.remaining() < n {
            Err(RecordCodecError::Truncated)
        } else {
            Ok(())
        }
    }
    pub(crate) fn i16(&mut self) -> Result<i16, RecordCodecError> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }
    pub(crate) fn i32(&mut self) -> Result<i32, RecordCodecError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }
    pub(crate) fn i64(&mut self) -> Result<i64, RecordCodecError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }
    pub(crate) fn nullable_string(&mut self) -> Result<Option<String>, RecordCodecError> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        self.need(len as usize)?;
        let (text, rest) = self.buf.split_at(len as usize);
        self.buf = rest;
        String::from_utf8(text.to_vec())
            .map(Some)
            .map_err(|_| RecordCodecError::NotUtf8)
    }
    pub(crate) fn string(&mut self) -> Result<String, RecordCodecError> {
        Ok(self.nullable_string()?.unwrap_or_default())
    }
    pub(crate) fn bytes(&mut self) -> Result<Bytes, RecordCodecError> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(Bytes::new());
        }
        if len as usize > self.buf.remaining() {
            return Err(RecordCodecError::BadLength(len));
        }
        let (data, rest) = self.buf.split_at(len as usize);
        self.buf = rest;
        Ok(Bytes::copy_from_slice(data))
    }
}

pub fn encode_offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::with_capacity(8 + group.len() + topic.len());
    buf.put_i16(OFFSET_KEY_VERSION);
    put_string(&mut buf, group);
    put_string(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

pub fn encode_group_key(group: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + group.len());
    buf.put_i16(GROUP_KEY_VERSION);
    put_string(&mut buf, group);
    buf.freeze()
}

pub fn decode_key(bytes: &[u8]) -> Result<RecordKey, RecordCodecError> {
    let mut reader = Reader { buf: bytes };
    let version = reader.i16()?;
    match version {
        0 | 1 => Ok(RecordKey::Offset {
            group: reader.string()?,
            topic: reader.string()?,
            partition: reader.i32()?,
        }),
        2 => Ok(RecordKey::Group {
            group: reader.string()?,
        }),
        super::consumer_records::CONSUMER_GROUP_KEY_VERSION => Ok(RecordKey::ConsumerGroup {
            group: reader.string()?,
        }),
        other => Ok(RecordKey::Other(other)),
    }
}

pub fn encode_offset_value(value: &OffsetValue) -> Bytes {
    let mut buf = BytesMut::with_capacity(32 + value.metadata.len());
    buf.put_i16(OFFSET_VALUE_VERSION);
    buf.put_i64(value.offset);
    buf.put_i32(value.leader_epoch);
    put_string(&mut buf, &value.metadata);
    buf.put_i64(value.commit_timestamp_ms);
    buf.freeze()
}

pub fn decode_offset_value(bytes: &[u8]) -> Result<OffsetValue, RecordCodecError> {
    let mut reader = Reader { buf: bytes };
    let version = reader.i16()?;
    let offset = reader.i64()?;
    let (leader_epoch, metadata, commit_timestamp_ms) = match version {
        0 | 2 => (-1, reader.string()?, reader.i64()?),
        1 => {
            let metadata = reader.string()?;
            let commit = reader.i64()?;
            let _expire = reader.i64()?;
            (-1, metadata, commit)
        }
        // v4 is v3 plus tagged fields, which we may ignore.
        3 | 4 => (reader.i32()?, reader.string()?, reader.i64()?),
        other => return Err(RecordCodecError::UnknownVersion(other)),
    };
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

pub fn encode_group_value(value: &GroupValue) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(GROUP_VALUE_VERSION);
    put_string(&mut buf, &value.protocol_type);
    buf.put_i32(value.generation);
    put_nullable_string(&mut buf, value.protocol.as_deref());
    put_nullable_string(&mut buf, value.leader.as_deref());
    buf.put_i64(value.current_state_timestamp_ms);
    buf.put_i32(value.members.len() as i32);
    for member in &value.members {
        put_string(&mut buf, &member.member_id);
        put_nullable_string(&mut buf, member.group_instance_id.as_deref());
        put_string(&mut buf, &member.client_id);
        put_string(&mut buf, &member.client_host);
        buf.put_i32(member.rebalance_timeout_ms);
        buf.put_i32(member.session_timeout_ms);
        put_bytes(&mut buf, &member.subscription);
        put_bytes(&mut buf, &member.assignment);
    }
    buf.freeze()
}

pub fn decode_group_value(bytes: &[u8]) -> Result<GroupValue, RecordCodecError> {
    let mut reader = Reader { buf: bytes };
    let version = reader.i16()?;
    if !(0..=4).contains(&version) {
        return Err(RecordCodecError::UnknownVersion(version));
    }
    let protocol_type = reader.string()?;
    let generation = reader.i32()?;
    let protocol = reader.nullable_string()?;
    let leader = reader.nullable_string()?;
    let current_state_timestamp_ms = if version >= 2 { reader.i64()? } else { -1 };
    let count = reader.i32()?;
    // A member takes at least 24 bytes: never trust the count further than the data.
    if count < 0 || count as usize > reader.buf.remaining() / 24 + 1 {
        return Err(RecordCodecError::BadLength(count));
    }
    let mut members = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let member_id = reader.string()?;
        let group_instance_id = if version >= 3 {
            reader.nullable_string()?
        } else {
            None
        };
        let client_id = reader.string()?;
        let client_host = reader.string()?;
        let rebalance_timeout_ms = if version >= 1 { reader.i32()? } else { -1 };
        let session_timeout_ms = reader.i32()?;
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription: reader.bytes()?,
            assignment: reader.bytes()?,
        });
    }
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

/// Kafka's `partitionFor(groupId)`: `abs(String.hashCode) % partitions`, with Java's
/// `Utils.abs` (`i32::MIN` maps to 0) and UTF-16 code units.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    crate::partition_for(group_id, partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_offset_record_when_round_tripped_should_match() {
        let key = encode_offset_key("g", "t", 3);
        assert_eq!(
            decode_key(&key).unwrap(),
            RecordKey::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 3
            }
        );
        let value = OffsetValue {
            offset: 42,
            leader_epoch: 7,
            metadata: "meta".into(),
            commit_timestamp_ms: 1000,
        };
        assert_eq!(
            decode_offset_value(&encode_offset_value(&value)).unwrap(),
            value
        );
    }

    #[test]
    fn given_group_record_when_round_tripped_should_match() {
        let value = GroupValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 9,
            members: vec![MemberValue {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300000,
                session_timeout_ms: 45000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(
            decode_group_value(&encode_group_value(&value)).unwrap(),
            value
        );
        assert_eq!(
            decode_key(&encode_group_key("g")).unwrap(),
            RecordKey::Group { group: "g".into() }
        );
    }

    #[test]
    fn given_truncated_or_hostile_values_when_decoded_should_fail_cleanly() {
        let value = encode_offset_value(&OffsetValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 0,
        });
        for len in 0..value.len() {
            assert!(decode_offset_value(&value[..len]).is_err());
        }
        let mut hostile = BytesMut::new();
        hostile.put_i16(3);
        put_string(&mut hostile, "consumer");
        hostile.put_i32(1);
        hostile.put_i16(-1);
        hostile.put_i16(-1);
        hostile.put_i64(0);
        hostile.put_i32(i32::MAX);
        assert!(decode_group_value(&hostile).is_err());
        assert_eq!(decode_key(&[0, 9]).unwrap(), RecordKey::Other(9));
    }

    #[test]
    fn given_group_ids_when_hashed_should_match_java_string_hash_code() {
        // "a".hashCode() = 97; "test-group".hashCode() = 627841412;
        // "polygenelubricants".hashCode() = i32::MIN, which Kafka's Utils.abs maps to 0.
        assert_eq!(partition_for("a", 50), 97 % 50);
        assert_eq!(partition_for("test-group", 50), 627841412 % 50);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("", 50), 0);
    }
}
