//! Server-side schema validation (issue 17, item 5), as Confluent Server does it: a topic
//! with `confluent.key.schema.validation=true` (or `confluent.value.schema.validation=true`)
//! accepts a record only when its key (value) is in the Confluent wire format, magic byte 0
//! then a 4-byte big-endian schema id, and that id is the schema of a live version of the
//! subject TopicNameStrategy names: `<topic>-key` (`<topic>-value`). A null key or value
//! passes (tombstones), as in Confluent Server. A batch with any refused record is refused
//! whole with INVALID_RECORD, naming each refused record in `record_errors` (KIP-467, v8+).
//!
//! Cost: topics without either config are not looked into (two map lookups per partition
//! of a produce request). Validated topics walk each batch (in place when uncompressed)
//! reading five bytes of each key/value, then check the batch's distinct ids against the
//! registry's in-memory state ([`Registry::read_now`]: one log-end check and a shared
//! lock); only when `_schemas` has records the state has not applied yet is it caught up
//! on the blocking pool first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse,
};
use strom_controller::TopicImage;
use strom_protocol::batch::{batch_size_bytes, BatchView, Compression};
use strom_protocol::record::decode_batch;
use strom_protocol::{ErrorCode, StrBytes};
use strom_registry::{Registry, RegistryError};
use strom_storage::RECORD_ERRORS_MAX;

use crate::server::schema_log::BrokerSchemaLog;
use crate::state::Broker;

/// Validate record keys against `<topic>-key` (Confluent Server's name).
pub const KEY_VALIDATION: &str = "confluent.key.schema.validation";
/// Validate record values against `<topic>-value` (Confluent Server's name).
pub const VALUE_VALIDATION: &str = "confluent.value.schema.validation";

/// The wire format's magic byte.
const MAGIC: u8 = 0;

/// This broker's registry state, created on first use and shared with the REST listener.
pub fn registry(broker: &Arc<Broker>) -> Arc<Registry> {
    broker
        .schema_registry()
        .get_or_init(|| Registry::new(Arc::new(BrokerSchemaLog::new(broker.clone()))))
        .clone()
}

fn enabled(configs: &BTreeMap<String, String>, key: &str) -> bool {
    configs
        .get(key)
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

/// One side (key or value) of one record, as validation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    /// Null: passes.
    Null,
    /// Magic byte 0 and this schema id.
    Id(i32),
    /// Shorter than five bytes or another first byte.
    NotWireFormat,
}

fn prefix(bytes: Option<&[u8]>) -> Prefix {
    match bytes {
        None => Prefix::Null,
        Some([MAGIC, a, b, c, d, ..]) => Prefix::Id(i32::from_be_bytes([*a, *b, *c, *d])),
        Some(_) => Prefix::NotWireFormat,
    }
}

/// A batch whose records could not be walked: left to the append path, which refuses it
/// with its own error.
struct Unreadable;

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn varlong(&mut self) -> Result<i64, Unreadable> {
        let mut raw: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = *self.data.get(self.at).ok_or(Unreadable)?;
            self.at += 1;
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        Err(Unreadable)
    }

    /// A nullable length-prefixed field ending at or before `end`.
    fn field(&mut self, end: usize) -> Result<Option<&[u8]>, Unreadable> {
        let length = self.varlong()?;
        if length == -1 {
            return Ok(None);
        }
        let length = usize::try_from(length).map_err(|_| Unreadable)?;
        let stop = self.at.checked_add(length).filter(|stop| *stop <= end);
        let stop = stop.ok_or(Unreadable)?;
        let bytes = &self.data[self.at..stop];
        self.at = stop;
        Ok(Some(bytes))
    }
}

/// The key and value prefixes of every record of an uncompressed records section.
fn walk(raw: &[u8], count: i32, out: &mut Vec<(Prefix, Prefix)>) -> Result<(), Unreadable> {
    let mut cursor = Cursor { data: raw, at: 0 };
    for _ in 0..count.max(0) {
        let length = usize::try_from(cursor.varlong()?).map_err(|_| Unreadable)?;
        let end = cursor
            .at
            .checked_add(length)
            .filter(|end| *end <= raw.len());
        let end = end.ok_or(Unreadable)?;
        cursor.at += 1; // attributes
        cursor.varlong()?; // timestamp delta
        cursor.varlong()?; // offset delta
        let key = prefix(cursor.field(end)?);
        let value = prefix(cursor.field(end)?);
        out.push((key, value));
        cursor.at = end;
    }
    Ok(())
}

/// The key and value prefixes of each record of one batch.
fn prefixes(view: &BatchView<'_>) -> Result<Vec<(Prefix, Prefix)>, Unreadable> {
    let mut out = Vec::with_capacity(view.record_count().clamp(0, 4096) as usize);
    if view.compression() == Compression::None {
        walk(view.records_bytes(), view.record_count(), &mut out)?;
    } else {
        for record in decode_batch(view).map_err(|_| Unreadable)? {
            out.push((
                prefix(record.key.as_deref()),
                prefix(record.value.as_deref()),
            ));
        }
    }
    Ok(out)
}

/// Why one record is refused.
struct Refusal {
    record_index: usize,
    message: String,
}

/// Checks the records of one partition of a produce request against the topic's schema
/// validation configs. `None`: nothing to refuse (or no validation configured); otherwise
/// the partition's answer, INVALID_RECORD.
pub async fn check(
    broker: &Arc<Broker>,
    topic: &TopicImage,
    index: i32,
    records: &[u8],
    version: i16,
) -> Option<PartitionProduceResponse> {
    let keys = enabled(&topic.configs, KEY_VALIDATION);
    let values = enabled(&topic.configs, VALUE_VALIDATION);
    if !keys && !values {
        return None;
    }
    let key_subject = format!("{}-key", topic.name);
    let value_subject = format!("{}-value", topic.name);
    let mut at = 0;
    while at < records.len() {
        let size = batch_size_bytes(&records[at..]).filter(|size| at + size <= records.len())?;
        let view = BatchView::parse(&records[at..at + size]).ok()?;
        at += size;
        if view.is_control() {
            continue;
        }
        let batch = prefixes(&view).ok()?;
        let mut wanted: BTreeSet<(bool, i32)> = BTreeSet::new();
        for (key, value) in &batch {
            if let (true, Prefix::Id(id)) = (keys, key) {
                wanted.insert((true, *id));
            }
            if let (true, Prefix::Id(id)) = (values, value) {
                wanted.insert((false, *id));
            }
        }
        let known = match lookup(broker, &key_subject, &value_subject, wanted).await {
            Ok(known) => known,
            Err(error) => {
                let message = format!(
                    "schema validation of {}-{index} could not read the schema registry: {error}",
                    topic.name
                );
                return Some(refused(version, index, message, Vec::new()));
            }
        };
        let mut refusals = Vec::new();
        for (record_index, (key, value)) in batch.iter().enumerate() {
            let sides = [
                (keys, "key", &key_subject, key, true),
                (values, "value", &value_subject, value, false),
            ];
            for (on, side, subject, prefix, is_key) in sides {
                if !on {
                    continue;
                }
                let message =
                    match prefix {
                        Prefix::Null => continue,
                        Prefix::Id(id) if known.get(&(is_key, *id)) == Some(&true) => continue,
                        Prefix::Id(id) => format!(
                            "Schema id {id} of the record's {side} is not registered under \
                         subject {subject} (topic config {})",
                            if is_key {
                                KEY_VALIDATION
                            } else {
                                VALUE_VALIDATION
                            }
                        ),
                        Prefix::NotWireFormat => {
                            format!(
                        "The record's {side} does not start with magic byte 0 and a 4-byte \
                         schema id of subject {subject} (topic config {})",
                        if is_key { KEY_VALIDATION } else { VALUE_VALIDATION }
                    )
                        }
                    };
                refusals.push(Refusal {
                    record_index,
                    message,
                });
                break;
            }
        }
        if !refusals.is_empty() {
            let total = refusals.len();
            let shown: Vec<String> = refusals
                .iter()
                .take(3)
                .map(|r| {
                    format!(
                        "RecordError(batchIndex={}, message='{}')",
                        r.record_index, r.message
                    )
                })
                .collect();
            let summary = format!(
                "One or more records have been rejected due to {total} record errors in total, \
                 and only showing the first three errors at most: [{}]",
                shown.join(", ")
            );
            refusals.truncate(RECORD_ERRORS_MAX);
            return Some(refused(version, index, summary, refusals));
        }
    }
    None
}

/// Whether each (is key, id) is the schema of a live version of its subject.
async fn lookup(
    broker: &Arc<Broker>,
    key_subject: &str,
    value_subject: &str,
    wanted: BTreeSet<(bool, i32)>,
) -> Result<HashMap<(bool, i32), bool>, RegistryError> {
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let registry = registry(broker);
    let subjects = (key_subject.to_string(), value_subject.to_string());
    // The common case: the state is caught up with `_schemas`.
    if let Some(known) = registry.read_now(|state| known(state, &subjects, &wanted)) {
        return Ok(known);
    }
    registry
        .read_async(false, move |state| Ok(known(state, &subjects, &wanted)))
        .await
}

fn known(
    state: &strom_registry::state::State,
    (key_subject, value_subject): &(String, String),
    wanted: &BTreeSet<(bool, i32)>,
) -> HashMap<(bool, i32), bool> {
    wanted
        .iter()
        .map(|&(is_key, id)| {
            let subject = if is_key { key_subject } else { value_subject };
            ((is_key, id), state.subject_has_id(subject, id))
        })
        .collect()
}

fn refused(
    version: i16,
    index: i32,
    message: String,
    refusals: Vec<Refusal>,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(ErrorCode::InvalidRecord.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1);
    if version < 8 {
        return response;
    }
    response
        .with_error_message(Some(StrBytes::from_string(message)))
        .with_record_errors(
            refusals
                .into_iter()
                .map(|refusal| {
                    BatchIndexAndErrorMessage::default()
                        .with_batch_index(refusal.record_index as i32)
                        .with_batch_index_error_message(Some(StrBytes::from_string(
                            refusal.message,
                        )))
                })
                .collect(),
        )
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordToEncode};

    use super::*;

    fn record(key: Option<&[u8]>, value: Option<&[u8]>) -> RecordToEncode {
        RecordToEncode {
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
            headers: vec![],
            timestamp_ms: 0,
        }
    }

    #[test]
    fn given_wire_format_and_other_bytes_when_prefixed_should_read_the_id_or_refuse() {
        assert_eq!(prefix(None), Prefix::Null);
        assert_eq!(prefix(Some(&[0, 0, 0, 1, 2, 9])), Prefix::Id(258));
        assert_eq!(prefix(Some(&[0, 0, 0, 1, 2])), Prefix::Id(258));
        assert_eq!(prefix(Some(&[0, 0, 0, 1])), Prefix::NotWireFormat);
        assert_eq!(prefix(Some(&[1, 0, 0, 0, 1])), Prefix::NotWireFormat);
        assert_eq!(prefix(Some(b"")), Prefix::NotWireFormat);
    }

    #[test]
    fn given_batches_compressed_or_not_when_walked_should_match_the_records() {
        let records = vec![
            record(Some(&[0, 0, 0, 0, 7, 1]), Some(b"raw")),
            record(None, Some(&[0, 0, 0, 0, 3])),
            record(Some(b"k"), None),
        ];
        let want = vec![
            (Prefix::Id(7), Prefix::NotWireFormat),
            (Prefix::Null, Prefix::Id(3)),
            (Prefix::NotWireFormat, Prefix::Null),
        ];
        for compression in [Compression::None, Compression::Gzip, Compression::Lz4] {
            let options = BatchBuilderOptions {
                compression,
                ..BatchBuilderOptions::default()
            };
            let batch = encode_batch(&records, &options).unwrap();
            let view = BatchView::parse(&batch).unwrap();
            let got = prefixes(&view).ok().unwrap();
            assert_eq!(got, want, "{compression:?}");
        }
    }

    #[test]
    fn given_truncated_records_when_walked_should_be_unreadable_not_panic() {
        let batch = encode_batch(
            &[record(Some(&[0, 0, 0, 0, 7]), Some(&[0, 0, 0, 0, 7]))],
            &BatchBuilderOptions::default(),
        )
        .unwrap();
        let view = BatchView::parse(&batch).unwrap();
        let raw = view.records_bytes();
        for cut in 0..raw.len() {
            let mut out = Vec::new();
            assert!(walk(&raw[..cut], 1, &mut out).is_err(), "cut at {cut}");
        }
        let mut out = Vec::new();
        assert!(walk(&[0xff; 12], 1, &mut out).is_err());
        assert!(walk(raw, 1, &mut out).is_ok());
    }
}
