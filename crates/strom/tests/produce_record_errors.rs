//! Per-record errors in Produce (KIP-467) against the real binary: a batch refused because
//! of some of its records names each one (`record_errors`: index within the batch and
//! Kafka's message) and sums them up in `error_message`, at v8 and the latest version; v7
//! has neither field. Keyless records on a compacted topic get INVALID_RECORD; timestamps
//! outside `message.timestamp.before.max.ms`/`after.max.ms`, and producer batches stamped
//! LogAppendTime on a LogAppendTime topic, get INVALID_TIMESTAMP. Nothing
//! of a refused batch is appended, and a malformed batch or frame names no record.

mod broker_support;

use std::time::{SystemTime, UNIX_EPOCH};

use broker_support::*;
use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::*;
use strom_protocol::record::{encode_batch, BatchBuilderOptions, RecordToEncode};

const INVALID_TIMESTAMP: i16 = 32;
const INVALID_RECORD: i16 = 87;
/// The newest Produce version Strom serves (v13 names topics by id).
const PRODUCE_LATEST: i16 = 13;
const HOUR_MS: i64 = 60 * 60 * 1000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// One batch of records `(key, timestamp)`, uncompressed or zstd.
fn records(entries: &[(Option<&str>, i64)], compressed: bool) -> Bytes {
    let records: Vec<RecordToEncode> = entries
        .iter()
        .enumerate()
        .map(|(i, (key, timestamp_ms))| RecordToEncode {
            key: key.map(|k| Bytes::from(k.to_string())),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: vec![],
            timestamp_ms: *timestamp_ms,
        })
        .collect();
    let options = BatchBuilderOptions {
        compression: if compressed {
            strom_protocol::batch::Compression::Zstd
        } else {
            strom_protocol::batch::Compression::None
        },
        ..Default::default()
    };
    encode_batch(&records, &options).expect("encode")
}

fn topic_id(conn: &mut Conn, name: &str) -> uuid::Uuid {
    let request = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(topic_name(name))),
    ]));
    let response: MetadataResponse = conn.call(ApiKey::Metadata, 12, &request);
    assert_eq!(response.topics[0].error_code, 0);
    response.topics[0].topic_id
}

/// Produces `records` to partition 0 of `topic` at `version` (by id from v13) and returns
/// the partition's answer.
fn produce_at(
    conn: &mut Conn,
    version: i16,
    topic: &str,
    records: Bytes,
) -> PartitionProduceResponse {
    let mut topic_data =
        TopicProduceData::default().with_partition_data(vec![PartitionProduceData::default()
            .with_index(0)
            .with_records(Some(records))]);
    if version >= 13 {
        topic_data = topic_data.with_topic_id(topic_id(conn, topic));
    } else {
        topic_data = topic_data.with_name(topic_name(topic));
    }
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![topic_data]);
    let response: ProduceResponse = conn.call(ApiKey::Produce, version, &request);
    response.responses[0].partition_responses[0].clone()
}

fn named(partition: &PartitionProduceResponse) -> Vec<(i32, String)> {
    partition
        .record_errors
        .iter()
        .map(|e| {
            (
                e.batch_index,
                e.batch_index_error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn log_end(conn: &mut Conn, topic: &str) -> i64 {
    let (code, offset, _) = list_offset(conn, topic, 0, -1);
    assert_eq!(code, 0);
    offset
}

#[test]
fn given_compacted_topic_when_records_1_and_3_have_no_key_should_name_exactly_them() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "table", 1, &[("cleanup.policy", "compact")]);
    let now = now_ms();
    let key_message =
        "Compacted topic cannot accept message without key in topic partition table-0";
    let summary = format!(
        "One or more records have been rejected due to 2 record errors in total, and only \
         showing the first three errors at most: [RecordError(batchIndex=1, message='{key_message}'), \
         RecordError(batchIndex=3, message='{key_message}')]"
    );
    for compressed in [false, true] {
        let mixed = records(
            &[
                (Some("a"), now),
                (None, now),
                (Some("c"), now),
                (None, now),
                (Some("e"), now),
            ],
            compressed,
        );
        for version in [8, PRODUCE_LATEST] {
            let partition = produce_at(&mut conn, version, "table", mixed.clone());
            assert_eq!(partition.error_code, INVALID_RECORD, "v{version}");
            assert_eq!(partition.base_offset, -1);
            assert_eq!(
                named(&partition),
                vec![(1, key_message.to_string()), (3, key_message.to_string())],
                "v{version} compressed={compressed}"
            );
            assert_eq!(
                partition.error_message.as_deref(),
                Some(summary.as_str()),
                "v{version}"
            );
        }
        // v7 has neither field; the response decodes at v7 with no trailing bytes.
        let partition = produce_at(&mut conn, 7, "table", mixed);
        assert_eq!(partition.error_code, INVALID_RECORD);
        assert!(partition.record_errors.is_empty());
        assert_eq!(partition.error_message, None);
    }
    // Nothing of a refused batch was appended; a batch with every key is taken whole.
    assert_eq!(log_end(&mut conn, "table"), 0);
    let keyed = records(&[(Some("a"), now), (Some("b"), now)], false);
    let partition = produce_at(&mut conn, PRODUCE_LATEST, "table", keyed);
    assert_eq!((partition.error_code, partition.base_offset), (0, 0));
    assert!(partition.record_errors.is_empty());
    assert_eq!(log_end(&mut conn, "table"), 2);
}

#[test]
fn given_timestamp_bounds_when_records_1_and_3_are_out_of_range_should_answer_invalid_timestamp() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    let hour = HOUR_MS.to_string();
    create_topic(
        &mut conn,
        "bounded",
        1,
        &[
            ("message.timestamp.before.max.ms", hour.as_str()),
            ("message.timestamp.after.max.ms", hour.as_str()),
        ],
    );
    let now = now_ms();
    let too_old = now - 48 * HOUR_MS;
    let too_new = now + 48 * HOUR_MS;
    let mixed = records(
        &[
            (None, now),
            (None, too_old),
            (None, now),
            (None, too_new),
            (None, now),
        ],
        false,
    );
    for version in [8, PRODUCE_LATEST] {
        let sent_at = now_ms();
        let partition = produce_at(&mut conn, version, "bounded", mixed.clone());
        let answered_at = now_ms();
        assert_eq!(partition.error_code, INVALID_TIMESTAMP, "v{version}");
        assert_eq!(
            partition.error_message.as_deref(),
            Some("One or more records have been rejected due to invalid timestamp")
        );
        let errors = named(&partition);
        assert_eq!(
            errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![1, 3]
        );
        for ((index, message), timestamp) in errors.iter().zip([too_old, too_new]) {
            let prefix = format!(
                "Timestamp {timestamp} of message with offset {index} is out of range. \
                 The timestamp should be within ["
            );
            let bounds = message
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(']'))
                .unwrap_or_else(|| panic!("unexpected message {message:?}"));
            let (min, max) = bounds.split_once(", ").expect("two bounds");
            let (min, max): (i64, i64) = (min.parse().unwrap(), max.parse().unwrap());
            // The broker's clock read between our two reads.
            assert_eq!(max - min, 2 * HOUR_MS);
            assert!(
                (sent_at..=answered_at).contains(&(min + HOUR_MS)),
                "{message}"
            );
        }
    }
    let partition = produce_at(&mut conn, 7, "bounded", mixed);
    assert_eq!(partition.error_code, INVALID_TIMESTAMP);
    assert!(partition.record_errors.is_empty());
    assert_eq!(log_end(&mut conn, "bounded"), 0);
    // Timestamps inside the bounds are taken.
    let fine = records(
        &[(None, now - HOUR_MS / 2), (None, now + HOUR_MS / 2)],
        false,
    );
    assert_eq!(produce_at(&mut conn, 8, "bounded", fine).error_code, 0);
    assert_eq!(log_end(&mut conn, "bounded"), 2);
}

/// A record gets one error, its key's first (as Kafka checks); one timestamp error makes
/// the partition's error INVALID_TIMESTAMP.
#[test]
fn given_keyless_and_late_records_when_produced_should_name_each_once_with_invalid_timestamp() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(
        &mut conn,
        "both",
        1,
        &[
            ("cleanup.policy", "compact"),
            ("message.timestamp.before.max.ms", "60000"),
        ],
    );
    let now = now_ms();
    let old = now - HOUR_MS;
    let mixed = records(
        &[
            (Some("a"), now),
            (None, now),
            (Some("c"), old),
            (None, old),
            (Some("e"), now),
        ],
        true,
    );
    let partition = produce_at(&mut conn, PRODUCE_LATEST, "both", mixed);
    assert_eq!(partition.error_code, INVALID_TIMESTAMP);
    let errors = named(&partition);
    assert_eq!(
        errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(errors[0]
        .1
        .starts_with("Compacted topic cannot accept message without key"));
    assert!(errors[1]
        .1
        .starts_with(&format!("Timestamp {old} of message with offset 2 ")));
    assert!(errors[2]
        .1
        .starts_with("Compacted topic cannot accept message without key"));
    assert_eq!(log_end(&mut conn, "both"), 0);
}

/// Only the broker stamps LogAppendTime: a producer's batch with that attribute, sent to a
/// LogAppendTime topic, has every record refused with INVALID_TIMESTAMP.
#[test]
fn given_log_append_time_topic_when_producer_sets_log_append_time_should_refuse_every_record() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(
        &mut conn,
        "stamped",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    );
    let now = now_ms();
    let mut stamped = records(&[(Some("k0"), now), (None, now)], false).to_vec();
    strom_protocol::batch::set_log_append_time(&mut stamped, now);
    let partition = produce_at(&mut conn, PRODUCE_LATEST, "stamped", Bytes::from(stamped));
    assert_eq!(partition.error_code, INVALID_TIMESTAMP);
    let message = |offset: usize, key_bytes: usize| {
        format!(
            "Invalid timestamp type in message DefaultRecord(offset={offset}, timestamp={now}, \
             key={key_bytes} bytes, value=2 bytes). Producer should not set timestamp type to \
             LogAppendTime."
        )
    };
    assert_eq!(
        named(&partition),
        vec![(0, message(0, 2)), (1, message(1, 0))]
    );
    assert_eq!(log_end(&mut conn, "stamped"), 0);
    // The same records as producers send them are stamped by the broker.
    let plain = records(&[(Some("k0"), now), (None, now)], false);
    assert_eq!(produce_at(&mut conn, 8, "stamped", plain).error_code, 0);
}

#[test]
fn given_malformed_records_or_frame_when_produced_should_name_no_record_and_keep_serving() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "table", 1, &[("cleanup.policy", "compact")]);
    let now = now_ms();
    // A batch whose CRC is right but whose second record claims more bytes than the batch
    // holds: the records cannot be walked, so no record can be named.
    let good = records(&[(Some("a"), now), (Some("b"), now)], false);
    let mut bad = good.to_vec();
    let view = strom_protocol::batch::BatchView::parse(&good).expect("parse");
    let first_record_bytes = 1 + (view.records_bytes()[0] as usize >> 1);
    let second_record_at = bad.len() - view.records_bytes().len() + first_record_bytes;
    bad[second_record_at] = 0x7e; // zigzag varint 63: past the end of the batch
    let crc = strom_protocol::batch::BatchView::parse(&bad)
        .expect("parse")
        .computed_crc();
    bad[17..21].copy_from_slice(&crc.to_be_bytes());
    for version in [8, PRODUCE_LATEST] {
        let partition = produce_at(&mut conn, version, "table", Bytes::from(bad.clone()));
        assert_eq!(partition.error_code, INVALID_RECORD, "v{version}");
        assert!(partition.record_errors.is_empty(), "v{version}");
        assert!(partition
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("cannot be decoded")));
    }
    assert_eq!(log_end(&mut conn, "table"), 0);

    // A Produce v8 frame cut short closes that connection only.
    let keyless = records(&[(Some("a"), now), (None, now)], false);
    let request = produce_request("table", 0, keyless.clone(), 1);
    for cut in [1, 7, keyless.len() / 2] {
        let mut cut_conn = broker.connect();
        cut_conn
            .send_raw(&truncated_frame(ApiKey::Produce, 8, &request, cut))
            .expect("write");
        assert!(cut_conn.is_closed_by_broker(), "cut {cut}");
    }
    let partition = produce_at(&mut conn, 8, "table", keyless);
    assert_eq!(partition.error_code, INVALID_RECORD);
    assert_eq!(
        named(&partition)
            .iter()
            .map(|(i, _)| *i)
            .collect::<Vec<_>>(),
        vec![1]
    );
}
