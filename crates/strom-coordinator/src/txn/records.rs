//! Records of the `__transaction_state` topic, in Kafka's format (`TransactionLogKey` v0,
//! `TransactionLogValue` v0 or v1), so tools that read the topic understand them.
//!
//! Key: version i16 = 0, transactional id (string). Value v0: version i16 = 0, producer id
//! i64, producer epoch i16, transaction timeout ms i32, status i8, partitions (nullable array
//! of topic string + partition i32 array), last update timestamp i64, start timestamp i64. A
//! null value is a tombstone (the id expired).
//!
//! Value v1 (Kafka 4.x, flexible: compact strings and arrays, tag sections) has the same
//! fields plus tagged ones for transaction version 2: 0 previous producer id, 1 next producer
//! id, 2 client transaction version (3, next producer epoch, is Kafka's two-phase commit
//! and not used here). v1 is written only while one of them matters (the last end bumped the
//! epoch, or a new producer id is pending), so ids that only ever used transaction version
//! 1 stay readable by an older Strom.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use super::state::{TxnMetadata, TxnState, TRANSACTION_VERSION_2};
use crate::group::records::{put_string, Reader, RecordCodecError};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;
const VALUE_VERSION_FLEXIBLE: i16 = 1;

const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
const TAG_NEXT_PRODUCER_ID: u32 = 1;
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;

pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + transactional_id.len());
    buf.put_i16(KEY_VERSION);
    put_string(&mut buf, transactional_id);
    buf.freeze()
}

/// The transactional id of a key; `None` for key versions this coordinator does not know.
pub fn decode_key(bytes: &[u8]) -> Result<Option<String>, RecordCodecError> {
    let mut reader = Reader { buf: bytes };
    let version = reader.i16()?;
    if version != KEY_VERSION {
        return Ok(None);
    }
    reader.string().map(Some)
}

fn put_uvarint(buf: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

fn read_uvarint(reader: &mut Reader<'_>) -> Result<u32, RecordCodecError> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        reader.need(1)?;
        let byte = reader.buf[0];
        reader.buf = &reader.buf[1..];
        value |= u32::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(RecordCodecError::BadLength(-1))
}

/// A compact length (N + 1, 0 for null) that the remaining bytes can hold at
/// `min_item_bytes` each; `None` for null.
fn read_compact_len(
    reader: &mut Reader<'_>,
    min_item_bytes: usize,
) -> Result<Option<usize>, RecordCodecError> {
    let raw = read_uvarint(reader)?;
    if raw == 0 {
        return Ok(None);
    }
    let len = (raw - 1) as usize;
    if len.saturating_mul(min_item_bytes) > reader.buf.len() {
        return Err(RecordCodecError::BadLength(
            len.min(i32::MAX as usize) as i32
        ));
    }
    Ok(Some(len))
}

fn is_flexible(metadata: &TxnMetadata) -> bool {
    metadata.client_transaction_version >= TRANSACTION_VERSION_2 || metadata.next_producer_id >= 0
}

/// Topics in order with their partitions, as the value's partitions array holds them.
fn topics_of(metadata: &TxnMetadata) -> Vec<(&str, Vec<i32>)> {
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in &metadata.partitions {
        match topics.last_mut() {
            Some((last, partitions)) if *last == topic.as_str() => partitions.push(*partition),
            _ => topics.push((topic.as_str(), vec![*partition])),
        }
    }
    topics
}

pub fn encode_value(metadata: &TxnMetadata) -> Bytes {
    let flexible = is_flexible(metadata);
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(if flexible {
        VALUE_VERSION_FLEXIBLE
    } else {
        VALUE_VERSION
    });
    buf.put_i64(metadata.producer_id);
    buf.put_i16(metadata.producer_epoch);
    buf.put_i32(metadata.timeout_ms);
    buf.put_i8(metadata.state.code());
    // Kafka writes a null array for Empty and Complete states; the partitions only matter
    // while a transaction is open or being ended.
    let topics = topics_of(metadata);
    if flexible {
        if topics.is_empty() {
            put_uvarint(&mut buf, 0);
        } else {
            put_uvarint(&mut buf, topics.len() as u32 + 1);
            for (topic, partitions) in topics {
                put_uvarint(&mut buf, topic.len() as u32 + 1);
                buf.put_slice(topic.as_bytes());
                put_uvarint(&mut buf, partitions.len() as u32 + 1);
                for partition in partitions {
                    buf.put_i32(partition);
                }
                put_uvarint(&mut buf, 0);
            }
        }
    } else if topics.is_empty() {
        buf.put_i32(-1);
    } else {
        buf.put_i32(topics.len() as i32);
        for (topic, partitions) in topics {
            put_string(&mut buf, topic);
            buf.put_i32(partitions.len() as i32);
            for partition in partitions {
                buf.put_i32(partition);
            }
        }
    }
    buf.put_i64(metadata.last_update_ms);
    buf.put_i64(metadata.txn_start_ms);
    if flexible {
        // Tagged fields in ascending tag order, those at their default left out.
        let mut tags: Vec<(u32, Vec<u8>)> = Vec::new();
        if metadata.previous_producer_id != -1 {
            tags.push((
                TAG_PREVIOUS_PRODUCER_ID,
                metadata.previous_producer_id.to_be_bytes().to_vec(),
            ));
        }
        if metadata.next_producer_id != -1 {
            tags.push((
                TAG_NEXT_PRODUCER_ID,
                metadata.next_producer_id.to_be_bytes().to_vec(),
            ));
        }
        if metadata.client_transaction_version != 0 {
            tags.push((
                TAG_CLIENT_TRANSACTION_VERSION,
                metadata.client_transaction_version.to_be_bytes().to_vec(),
            ));
        }
        put_uvarint(&mut buf, tags.len() as u32);
        for (tag, value) in tags {
            put_uvarint(&mut buf, tag);
            put_uvarint(&mut buf, value.len() as u32);
            buf.put_slice(&value);
        }
    }
    buf.freeze()
}

pub fn decode_value(transactional_id: &str, bytes: &[u8]) -> Result<TxnMetadata, RecordCodecError> {
    let mut reader = Reader { buf: bytes };
    let version = reader.i16()?;
    if version != VALUE_VERSION && version != VALUE_VERSION_FLEXIBLE {
        return Err(RecordCodecError::UnknownVersion(version));
    }
    let flexible = version == VALUE_VERSION_FLEXIBLE;
    let producer_id = reader.i64()?;
    let producer_epoch = reader.i16()?;
    let timeout_ms = reader.i32()?;
    reader.need(1)?;
    let status = reader.buf[0] as i8;
    reader.buf = &reader.buf[1..];
    let state =
        TxnState::from_code(status).ok_or(RecordCodecError::UnknownVersion(status as i16))?;
    let mut partitions = BTreeSet::new();
    if flexible {
        // Each topic takes at least 3 bytes (name length, array length, tag count).
        let topic_count = read_compact_len(&mut reader, 3)?.unwrap_or(0);
        for _ in 0..topic_count {
            let name_len = read_compact_len(&mut reader, 1)?.unwrap_or(0);
            let (name, rest) = reader.buf.split_at(name_len);
            let topic = String::from_utf8(name.to_vec()).map_err(|_| RecordCodecError::NotUtf8)?;
            reader.buf = rest;
            let count = read_compact_len(&mut reader, 4)?.unwrap_or(0);
            for _ in 0..count {
                partitions.insert((topic.clone(), reader.i32()?));
            }
            skip_tags(&mut reader)?;
        }
    } else {
        let topic_count = reader.i32()?;
        if topic_count > 0 {
            // Each topic takes at least 6 bytes: refuse counts the bytes cannot hold.
            if topic_count as usize > reader.buf.len() / 6 {
                return Err(RecordCodecError::BadLength(topic_count));
            }
            for _ in 0..topic_count {
                let topic = reader.string()?;
                let count = reader.i32()?;
                if count < 0 || count as usize > reader.buf.len() / 4 {
                    return Err(RecordCodecError::BadLength(count));
                }
                for _ in 0..count {
                    partitions.insert((topic.clone(), reader.i32()?));
                }
            }
        }
    }
    let last_update_ms = reader.i64()?;
    let txn_start_ms = reader.i64()?;
    let mut metadata = TxnMetadata {
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions,
        txn_start_ms,
        last_update_ms,
        ..TxnMetadata::new(
            transactional_id.to_string(),
            producer_id,
            timeout_ms,
            last_update_ms,
        )
    };
    if flexible {
        let count = read_uvarint(&mut reader)?;
        for _ in 0..count {
            let tag = read_uvarint(&mut reader)?;
            let size = read_uvarint(&mut reader)? as usize;
            reader.need(size)?;
            let (value, rest) = reader.buf.split_at(size);
            reader.buf = rest;
            let mut field = Reader { buf: value };
            match tag {
                TAG_PREVIOUS_PRODUCER_ID => metadata.previous_producer_id = field.i64()?,
                TAG_NEXT_PRODUCER_ID => metadata.next_producer_id = field.i64()?,
                TAG_CLIENT_TRANSACTION_VERSION => {
                    metadata.client_transaction_version = field.i16()?
                }
                _ => {}
            }
        }
        if metadata.client_transaction_version >= TRANSACTION_VERSION_2 && producer_epoch > 0 {
            // A version-2 end bumped the epoch from the one before.
            metadata.last_producer_epoch = producer_epoch - 1;
        }
    }
    Ok(metadata)
}

fn skip_tags(reader: &mut Reader<'_>) -> Result<(), RecordCodecError> {
    let count = read_uvarint(reader)?;
    for _ in 0..count {
        read_uvarint(reader)?;
        let size = read_uvarint(reader)? as usize;
        reader.need(size)?;
        reader.buf = &reader.buf[size..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_metadata_when_encoded_should_decode_to_the_same() {
        let metadata = TxnMetadata {
            transactional_id: "payments".into(),
            producer_id: 4000,
            producer_epoch: 7,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [
                ("a".to_string(), 0),
                ("a".to_string(), 3),
                ("b".to_string(), 1),
            ]
            .into_iter()
            .collect(),
            txn_start_ms: 1_000,
            last_update_ms: 2_000,
            ..TxnMetadata::new("payments".into(), 4000, 60_000, 2_000)
        };
        let key = encode_key("payments");
        assert_eq!(decode_key(&key).unwrap().as_deref(), Some("payments"));
        let value = encode_value(&metadata);
        assert_eq!(decode_value("payments", &value).unwrap(), metadata);
    }

    #[test]
    fn given_truncated_or_hostile_values_when_decoded_should_error_not_panic() {
        let metadata = TxnMetadata::new("t".into(), 1, 1000, 0);
        let value = encode_value(&metadata);
        for cut in 0..value.len() {
            assert!(decode_value("t", &value[..cut]).is_err(), "cut at {cut}");
        }
        let mut hostile = BytesMut::new();
        hostile.put_i16(0);
        hostile.put_i64(1);
        hostile.put_i16(0);
        hostile.put_i32(1000);
        hostile.put_i8(1);
        hostile.put_i32(i32::MAX);
        assert_eq!(
            decode_value("t", &hostile),
            Err(RecordCodecError::BadLength(i32::MAX))
        );
    }

    fn version_2_metadata() -> TxnMetadata {
        TxnMetadata {
            producer_epoch: i16::MAX,
            last_producer_epoch: i16::MAX - 1,
            state: TxnState::PrepareCommit,
            partitions: [("orders".to_string(), 0), ("orders".to_string(), 9)]
                .into_iter()
                .collect(),
            txn_start_ms: 1_000,
            previous_producer_id: 4000,
            next_producer_id: 5000,
            client_transaction_version: 2,
            ..TxnMetadata::new("payments".into(), 4000, 60_000, 2_000)
        }
    }

    #[test]
    fn given_version_2_fields_when_encoded_should_write_value_v1_and_decode_them() {
        let metadata = version_2_metadata();
        let value = encode_value(&metadata);
        assert_eq!(&value[..2], &[0, 1], "value v1 (flexible)");
        assert_eq!(decode_value("payments", &value).unwrap(), metadata);

        // Complete after the overflow: new id, epoch 0, nothing pending.
        let done = TxnMetadata {
            producer_id: 5000,
            producer_epoch: 0,
            last_producer_epoch: -1,
            state: TxnState::CompleteCommit,
            partitions: BTreeSet::new(),
            txn_start_ms: -1,
            next_producer_id: -1,
            ..metadata
        };
        assert_eq!(
            decode_value("payments", &encode_value(&done)).unwrap(),
            done
        );
    }

    #[test]
    fn given_only_version_1_use_when_encoded_should_stay_value_v0() {
        let metadata = TxnMetadata::new("t".into(), 1, 1000, 0);
        assert_eq!(&encode_value(&metadata)[..2], &[0, 0]);
    }

    #[test]
    fn given_truncated_or_hostile_v1_values_when_decoded_should_error_not_panic() {
        let value = encode_value(&version_2_metadata());
        for cut in 0..value.len() {
            assert!(decode_value("t", &value[..cut]).is_err(), "cut at {cut}");
        }
        let mut hostile = BytesMut::new();
        hostile.put_i16(1);
        hostile.put_i64(1);
        hostile.put_i16(0);
        hostile.put_i32(1000);
        hostile.put_i8(1);
        hostile.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // ~2^32 topics
        assert!(decode_value("t", &hostile).is_err());
    }
}
