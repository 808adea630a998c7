//! Records of the `__transaction_state` topic, in Kafka's format (`TransactionLogKey` v0,
//! `TransactionLogValue` v0), so tools that read the topic understand them.
//!
//! Key: version i16 = 0, transactional id (string). Value: version i16 = 0, producer id i64,
//! producer epoch i16, transaction timeout ms i32, status i8, partitions (nullable array of
//! topic string + partition i32 array), last update timestamp i64, start timestamp i64. A
//! null value is a tombstone (the id expired).

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use super::state::{TxnMetadata, TxnState};
use crate::group::records::{put_string, Reader, RecordCodecError};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

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

pub fn encode_value(metadata: &TxnMetadata) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(VALUE_VERSION);
    buf.put_i64(metadata.producer_id);
    buf.put_i16(metadata.producer_epoch);
    buf.put_i32(metadata.timeout_ms);
    buf.put_i8(metadata.state.code());
    // Kafka writes a null array for Empty and Complete states; the partitions only matter
    // while a transaction is open or being ended.
    if metadata.partitions.is_empty() {
        buf.put_i32(-1);
    } else {
        let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
        for (topic, partition) in &metadata.partitions {
            match topics.last_mut() {
                Some((last, partitions)) if *last == topic.as_str() => partitions.push(*partition),
                _ => topics.push((topic.as_str(), vec![*partition])),
            }
        }
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
    buf.freeze()
}

pub fn decode_value(transactional_id: &str, bytes: &[u8]) -> Result<TxnMetadata, RecordCodecError> {
    let mut reader = Reader { buf: bytes };
    let version = reader.i16()?;
    if version != VALUE_VERSION {
        return Err(RecordCodecError::UnknownVersion(version));
    }
    let producer_id = reader.i64()?;
    let producer_epoch = reader.i16()?;
    let timeout_ms = reader.i32()?;
    reader.need(1)?;
    let status = reader.buf[0] as i8;
    reader.buf = &reader.buf[1..];
    let state =
        TxnState::from_code(status).ok_or(RecordCodecError::UnknownVersion(status as i16))?;
    let topic_count = reader.i32()?;
    let mut partitions = BTreeSet::new();
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
    let last_update_ms = reader.i64()?;
    let txn_start_ms = reader.i64()?;
    Ok(TxnMetadata {
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
    })
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
}
