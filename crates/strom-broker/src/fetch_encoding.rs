//! Fetch response encoding with records as file ranges (versions 4–18).
//!
//! The generated `FetchResponse` encoder wants records in memory. This one writes the same
//! bytes (checked against it in the tests below) but leaves each partition's records as a
//! [`ResponsePart::File`], so the connection can `sendfile` them. Of the tagged fields, the
//! current leader (partition tag 1) and node endpoints (response tag 0, v16+) are written
//! when set (KIP-951 leader hints); the ones Strom never sets (diverging epoch, snapshot id)
//! are left out, which is also what Kafka does when they hold their defaults.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;
use strom_storage::FileRange;

use crate::response::{response_header_version, EncodeError, ResponseFrame, ResponsePart};

/// Records of one partition in a fetch response.
#[derive(Clone)]
pub enum FetchRecords {
    None,
    File(FileRange),
    Memory(Bytes),
}

impl FetchRecords {
    pub fn len(&self) -> usize {
        match self {
            FetchRecords::None => 0,
            FetchRecords::File(range) => range.length as usize,
            FetchRecords::Memory(bytes) => bytes.len(),
        }
    }
}

pub struct FetchPartitionOut {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// read_committed fetches: the aborted transactions the records may contain (producer
    /// id, first offset); `None` (null on the wire) for read_uncommitted.
    pub aborted_transactions: Option<Vec<strom_storage::AbortedTransaction>>,
    /// KIP-392: the replica the consumer should fetch from instead (v11+); -1: this one.
    pub preferred_read_replica: i32,
    /// KIP-951: the partition's leader and leader epoch, on NOT_LEADER_OR_FOLLOWER or
    /// FENCED_LEADER_EPOCH (written from v12, filled from v16).
    pub current_leader: Option<(i32, i32)>,
    pub records: FetchRecords,
}

pub struct FetchTopicOut {
    pub name: String,
    pub topic_id: uuid::Uuid,
    pub partitions: Vec<FetchPartitionOut>,
}

pub struct FetchResponseOut {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub session_id: i32,
    pub topics: Vec<FetchTopicOut>,
    /// KIP-951: addresses of the leaders named in `current_leader` (v16+).
    pub node_endpoints: Vec<crate::handlers::BrokerEndpoint>,
}

fn put_unsigned_varint(buf: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

fn put_array_length(buf: &mut BytesMut, flexible: bool, length: usize) {
    if flexible {
        put_unsigned_varint(buf, length as u32 + 1);
    } else {
        buf.put_i32(length as i32);
    }
}

fn put_string(buf: &mut BytesMut, flexible: bool, value: &str) {
    if flexible {
        put_unsigned_varint(buf, value.len() as u32 + 1);
    } else {
        buf.put_i16(value.len() as i16);
    }
    buf.put_slice(value.as_bytes());
}

/// The compact array of NodeEndpoint {node_id, host, port, rack, tagged fields}.
fn encode_node_endpoints(endpoints: &[crate::handlers::BrokerEndpoint]) -> BytesMut {
    let mut out = BytesMut::new();
    put_array_length(&mut out, true, endpoints.len());
    for endpoint in endpoints {
        out.put_i32(endpoint.broker_id);
        put_string(&mut out, true, &endpoint.host);
        out.put_i32(endpoint.port);
        match &endpoint.rack {
            Some(rack) => put_string(&mut out, true, rack),
            None => put_unsigned_varint(&mut out, 0), // null
        }
        put_unsigned_varint(&mut out, 0); // tagged fields
    }
    out
}

/// Encodes a whole fetch response frame (size prefix, header, body).
pub fn encode_fetch_response(
    version: i16,
    correlation_id: i32,
    response: &FetchResponseOut,
) -> Result<ResponseFrame, EncodeError> {
    assert!((4..=18).contains(&version), "fetch v{version} not served");
    let flexible = version >= 12;
    let mut parts: Vec<ResponsePart> = Vec::new();
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0); // frame size, patched below
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, response_header_version(ApiKey::Fetch, version))
        .map_err(|e| EncodeError {
            api_key: ApiKey::Fetch,
            version,
            source: e.into(),
        })?;
    buf.put_i32(response.throttle_time_ms);
    if version >= 7 {
        buf.put_i16(response.error_code);
        buf.put_i32(response.session_id);
    }
    put_array_length(&mut buf, flexible, response.topics.len());
    let mut total_bytes = 0usize;
    for topic in &response.topics {
        if version >= 13 {
            buf.put_slice(topic.topic_id.as_bytes());
        } else {
            put_string(&mut buf, flexible, &topic.name);
        }
        put_array_length(&mut buf, flexible, topic.partitions.len());
        for partition in &topic.partitions {
            buf.put_i32(partition.partition_index);
            buf.put_i16(partition.error_code);
            buf.put_i64(partition.high_watermark);
            buf.put_i64(partition.last_stable_offset);
            if version >= 5 {
                buf.put_i64(partition.log_start_offset);
            }
            match &partition.aborted_transactions {
                None if flexible => put_unsigned_varint(&mut buf, 0),
                None => buf.put_i32(-1),
                Some(aborted) => {
                    put_array_length(&mut buf, flexible, aborted.len());
                    for transaction in aborted {
                        buf.put_i64(transaction.producer_id);
                        buf.put_i64(transaction.first_offset);
                        if flexible {
                            put_unsigned_varint(&mut buf, 0); // tagged fields
                        }
                    }
                }
            }
            if version >= 11 {
                buf.put_i32(partition.preferred_read_replica);
            }
            let length = partition.records.len();
            match &partition.records {
                // Empty, never null: Kafka always sends (possibly empty) records, and
                // librdkafka fails the whole response on a negative MessageSetSize (seen on
                // OFFSET_OUT_OF_RANGE after DeleteRecords).
                FetchRecords::None if flexible => put_unsigned_varint(&mut buf, 1),
                FetchRecords::None => buf.put_i32(0),
                _ if flexible => put_unsigned_varint(&mut buf, length as u32 + 1),
                _ => buf.put_i32(length as i32),
            }
            match &partition.records {
                FetchRecords::None => {}
                FetchRecords::Memory(bytes) => buf.put_slice(bytes),
                FetchRecords::File(range) if range.length > 0 => {
                    total_bytes += buf.len();
                    parts.push(ResponsePart::Bytes(buf.split().freeze()));
                    total_bytes += range.length as usize;
                    parts.push(ResponsePart::File(range.clone()));
                }
                FetchRecords::File(_) => {}
            }
            if flexible {
                // Partition tagged fields: only the current leader (tag 1) is ever set.
                match partition.current_leader {
                    Some((leader_id, leader_epoch)) => {
                        put_unsigned_varint(&mut buf, 1);
                        put_unsigned_varint(&mut buf, 1);
                        put_unsigned_varint(&mut buf, 9);
                        buf.put_i32(leader_id);
                        buf.put_i32(leader_epoch);
                        put_unsigned_varint(&mut buf, 0); // its own tagged fields
                    }
                    None => put_unsigned_varint(&mut buf, 0),
                }
            }
        }
        if flexible {
            put_unsigned_varint(&mut buf, 0); // topic tagged fields
        }
    }
    if version >= 16 && !response.node_endpoints.is_empty() {
        // Response tagged fields: node endpoints (tag 0).
        let endpoints = encode_node_endpoints(&response.node_endpoints);
        put_unsigned_varint(&mut buf, 1);
        put_unsigned_varint(&mut buf, 0);
        put_unsigned_varint(&mut buf, endpoints.len() as u32);
        buf.put_slice(&endpoints);
    } else if flexible {
        put_unsigned_varint(&mut buf, 0); // response tagged fields
    }
    total_bytes += buf.len();
    parts.push(ResponsePart::Bytes(buf.freeze()));
    // Patch the size prefix in the first part.
    let size = (total_bytes - 4) as i32;
    let ResponsePart::Bytes(first) = &parts[0] else {
        unreachable!("first part is always encoded bytes");
    };
    let mut first = BytesMut::from(&first[..]);
    first[0..4].copy_from_slice(&size.to_be_bytes());
    parts[0] = ResponsePart::Bytes(first.freeze());
    Ok(ResponseFrame { parts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{
        FetchResponse, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn sample(records: [Option<Bytes>; 3]) -> FetchResponseOut {
        let id = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788);
        let mut records = records.into_iter();
        let mut partition = |index: i32, error_code: i16| FetchPartitionOut {
            preferred_read_replica: -1,
            // A NOT_LEADER_OR_FOLLOWER partition names its leader.
            current_leader: (error_code == 6).then_some((3, 17)),
            partition_index: index,
            error_code,
            high_watermark: 100 + index as i64,
            last_stable_offset: 100 + index as i64,
            log_start_offset: index as i64,
            // null, a list, and an empty list: all three encodings are compared.
            aborted_transactions: match index {
                0 => None,
                1 => Some(vec![
                    strom_storage::AbortedTransaction {
                        producer_id: 7,
                        first_offset: 40,
                    },
                    strom_storage::AbortedTransaction {
                        producer_id: 9,
                        first_offset: 41,
                    },
                ]),
                _ => Some(Vec::new()),
            },
            records: match records.next().flatten() {
                Some(bytes) => FetchRecords::Memory(bytes),
                None => FetchRecords::None,
            },
        };
        FetchResponseOut {
            throttle_time_ms: 0,
            error_code: 0,
            session_id: 0,
            topics: vec![
                FetchTopicOut {
                    name: "orders".into(),
                    topic_id: id,
                    partitions: vec![partition(0, 0), partition(1, 1)],
                },
                FetchTopicOut {
                    name: "t2".into(),
                    topic_id: id,
                    partitions: vec![partition(7, 0), partition(8, 6)],
                },
            ],
            node_endpoints: vec![
                crate::handlers::BrokerEndpoint {
                    broker_id: 3,
                    host: StrBytes::from_static_str("broker-3.example"),
                    port: 9292,
                    rack: Some(StrBytes::from_static_str("rack-c")),
                },
                crate::handlers::BrokerEndpoint {
                    broker_id: 4,
                    host: StrBytes::from_static_str("broker-4.example"),
                    port: 9392,
                    rack: None,
                },
            ],
        }
    }

    fn reference(version: i16, out: &FetchResponseOut) -> Bytes {
        let response = FetchResponse::default().with_responses(
            out.topics
                .iter()
                .map(|t| {
                    FetchableTopicResponse::default()
                        .with_topic(TopicName(StrBytes::from_string(t.name.clone())))
                        .with_topic_id(t.topic_id)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    PartitionData::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(p.error_code)
                                        .with_high_watermark(p.high_watermark)
                                        .with_last_stable_offset(p.last_stable_offset)
                                        .with_log_start_offset(p.log_start_offset)
                                        .with_aborted_transactions(
                                            p.aborted_transactions.as_ref().map(|aborted| {
                                                aborted
                                                    .iter()
                                                    .map(|a| {
                                                        kafka_protocol::messages::fetch_response::AbortedTransaction::default()
                                                            .with_producer_id(kafka_protocol::messages::ProducerId(a.producer_id))
                                                            .with_first_offset(a.first_offset)
                                                    })
                                                    .collect()
                                            }),
                                        )
                                        .with_records(match &p.records {
                                            FetchRecords::Memory(b) => Some(b.clone()),
                                            // Sent as empty records, never null.
                                            _ => Some(Bytes::new()),
                                        })
                                        .with_current_leader(match p.current_leader {
                                            Some((leader, epoch)) if version >= 12 => {
                                                LeaderIdAndEpoch::default()
                                                    .with_leader_id(BrokerId(leader))
                                                    .with_leader_epoch(epoch)
                                            }
                                            _ => LeaderIdAndEpoch::default(),
                                        })
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
        let response = if version >= 16 {
            response.with_node_endpoints(
                out.node_endpoints
                    .iter()
                    .map(|e| {
                        NodeEndpoint::default()
                            .with_node_id(BrokerId(e.broker_id))
                            .with_host(e.host.clone())
                            .with_port(e.port)
                            .with_rack(e.rack.clone())
                    })
                    .collect(),
            )
        } else {
            response
        };
        let frame =
            crate::response::encode_frame(ApiKey::Fetch, version, 42, &response).expect("encode");
        frame.to_bytes().expect("memory")
    }

    #[test]
    fn given_every_version_when_encoded_should_match_generated_encoder_byte_for_byte() {
        for version in 4..=18 {
            let out = sample([
                Some(Bytes::from_static(b"batch-bytes-0")),
                None,
                Some(Bytes::new()),
            ]);
            let ours = encode_fetch_response(version, 42, &out).expect("encode");
            assert_eq!(
                ours.to_bytes().expect("memory"),
                reference(version, &out),
                "fetch v{version}"
            );
        }
    }

    #[test]
    fn given_file_records_when_encoded_should_split_parts_around_file_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        std::fs::write(&path, b"0123456789abcdef").unwrap();
        let file = std::sync::Arc::new(std::fs::File::open(&path).unwrap());
        let mut out = sample([None, None, None]);
        out.topics[0].partitions[0].records = FetchRecords::File(FileRange {
            file: file.clone(),
            position: 4,
            length: 6,
        });
        let frame = encode_fetch_response(12, 9, &out).expect("encode");
        assert_eq!(frame.parts.len(), 3);
        assert!(matches!(frame.parts[1], ResponsePart::File(_)));
        let mut expected = sample([Some(Bytes::from_static(b"456789")), None, None]);
        expected.topics[0].partitions[0].records =
            FetchRecords::Memory(Bytes::from_static(b"456789"));
        let whole = frame.to_bytes().unwrap();
        let declared = i32::from_be_bytes(whole[0..4].try_into().unwrap()) as usize;
        assert_eq!(declared, whole.len() - 4);
        assert_eq!(
            whole,
            encode_fetch_response(12, 9, &expected)
                .unwrap()
                .to_bytes()
                .unwrap()
        );
    }
}
