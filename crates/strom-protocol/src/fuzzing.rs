//! Entry points for fuzzing the decoders a peer can reach, shared by the cargo-fuzz targets
//! under `fuzz/` (coverage-guided, run by hand for hours) and by the bounded mutation run in
//! this crate's tests (seconds, in every `scripts/test`).
//!
//! Each function takes arbitrary bytes and must return without panicking, hanging or
//! allocating more than a small multiple of the input.

use bytes::Bytes;
use kafka_protocol::messages::RequestKind;

use crate::batch::BatchIter;
use crate::frame::{decode_request_header, peek_header_prefix};
use crate::{bounds, record, versions};

/// The broker's request intake without a broker: header prefix, version check, header
/// decode, bounds check, body decode. `frame` is a request without its size prefix.
/// Returns whether the request would reach a handler.
pub fn request_intake(frame: &[u8]) -> bool {
    let Some(prefix) = peek_header_prefix(frame) else {
        return false;
    };
    let Ok(api_key) = kafka_protocol::messages::ApiKey::try_from(prefix.api_key) else {
        return false;
    };
    if !versions::is_supported(api_key, prefix.api_version) {
        return false;
    }
    let Ok(request) = decode_request_header(Bytes::copy_from_slice(frame)) else {
        return false;
    };
    if bounds::check_request(api_key, prefix.api_version, &request.body).is_err() {
        return false;
    }
    let mut body = request.body;
    RequestKind::decode(api_key, &mut body, prefix.api_version).is_ok()
}

/// What a consumer does with fetched bytes: walk the batches, check CRCs, decode records
/// (decompressing). Returns the number of records decoded.
pub fn record_batches(data: &[u8]) -> usize {
    let mut records = 0;
    for batch in BatchIter::new(data) {
        let Ok(batch) = batch else { break };
        if batch.verify_crc().is_err() {
            continue;
        }
        if let Ok(decoded) = record::decode_batch(&batch) {
            records += decoded.len();
        }
    }
    records
}

/// Valid request frames (without size prefix) for every served API at its lowest and
/// highest version, to seed mutation. Built from default-valued messages, so they are
/// small but carry every header and framing path.
pub fn seed_frames() -> Vec<Vec<u8>> {
    use bytes::BufMut;
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    let mut seeds = Vec::new();
    for (api_key, min, max) in versions::SUPPORTED_APIS {
        for version in [*min, *max] {
            let header = RequestHeader::default()
                .with_request_api_key(*api_key as i16)
                .with_request_api_version(version)
                .with_correlation_id(7)
                .with_client_id(Some(StrBytes::from_static_str("fuzz")));
            let mut buf = bytes::BytesMut::new();
            if header
                .encode(&mut buf, api_key.request_header_version(version))
                .is_err()
            {
                continue;
            }
            let Some(body) = default_request(*api_key) else {
                continue;
            };
            let mut encoded = bytes::BytesMut::new();
            if body.encode(&mut encoded, version).is_err() {
                continue;
            }
            buf.put_slice(&encoded);
            seeds.push(buf.to_vec());
        }
    }
    seeds
}

fn default_request(api_key: kafka_protocol::messages::ApiKey) -> Option<RequestKind> {
    use kafka_protocol::messages::*;
    Some(match api_key {
        ApiKey::Produce => RequestKind::Produce(ProduceRequest::default()),
        ApiKey::Fetch => RequestKind::Fetch(FetchRequest::default()),
        ApiKey::ListOffsets => RequestKind::ListOffsets(ListOffsetsRequest::default()),
        ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default()),
        ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(CreateTopicsRequest::default()),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(DeleteTopicsRequest::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(InitProducerIdRequest::default()),
        ApiKey::OffsetForLeaderEpoch => {
            RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default())
        }
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(DescribeConfigsRequest::default()),
        ApiKey::CreatePartitions => {
            RequestKind::CreatePartitions(CreatePartitionsRequest::default())
        }
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(FindCoordinatorRequest::default()),
        ApiKey::JoinGroup => RequestKind::JoinGroup(JoinGroupRequest::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(SyncGroupRequest::default()),
        ApiKey::Heartbeat => RequestKind::Heartbeat(HeartbeatRequest::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(LeaveGroupRequest::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(OffsetCommitRequest::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(OffsetFetchRequest::default()),
        ApiKey::SaslHandshake => RequestKind::SaslHandshake(SaslHandshakeRequest::default()),
        ApiKey::SaslAuthenticate => {
            RequestKind::SaslAuthenticate(SaslAuthenticateRequest::default())
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Writes the seeds as cargo-fuzz corpus files:
    /// `cargo test -p strom-protocol write_fuzz_corpus -- --ignored` (run from the repo root).
    #[test]
    #[ignore = "a tool, not a test: regenerates fuzz/corpus"]
    fn write_fuzz_corpus() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        for (target, seeds) in [
            ("request_intake", seed_frames()),
            ("request_header", seed_frames()),
            ("record_batches", batch_seeds()),
        ] {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, seed) in seeds.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i:03}")), seed).unwrap();
            }
        }
    }

    fn batch_seeds() -> Vec<Vec<u8>> {
        use crate::batch::Compression;
        use crate::record::{encode_batch, BatchBuilderOptions, RecordHeader, RecordToEncode};
        let records: Vec<RecordToEncode> = (0..5)
            .map(|i| RecordToEncode {
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(vec![b'v'; i * 10])),
                headers: vec![RecordHeader {
                    key: Bytes::from_static(b"h"),
                    value: None,
                }],
                timestamp_ms: 1_000 + i as i64,
            })
            .collect();
        [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ]
        .into_iter()
        .map(|compression| {
            encode_batch(
                &records,
                &BatchBuilderOptions {
                    compression,
                    ..Default::default()
                },
            )
            .unwrap()
            .to_vec()
        })
        .collect()
    }

    /// A bounded mutation run: every seed, then a fixed number of seeded mutations (bit
    /// flips, truncations, insertions of huge counts, splices of two seeds). The property is
    /// that nothing panics and nothing allocates past the test allocator's limit.
    #[test]
    fn given_mutated_requests_and_batches_intake_never_panics() {
        let mut seeds = seed_frames();
        assert!(seeds.len() > 20, "seeds for most served APIs");
        // Plus whatever the committed corpus holds (libFuzzer's finds land there).
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/request_intake");
        let committed: Vec<Vec<u8>> = std::fs::read_dir(&corpus)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| std::fs::read(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        for input in &committed {
            request_intake(input);
        }
        seeds.extend(committed.into_iter().filter(|c| !c.is_empty()));
        for seed in &seed_frames() {
            assert!(request_intake(seed), "a valid seed must pass intake");
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5742_0001);
        let iterations = 100_000;
        let mut accepted = 0;
        for _ in 0..iterations {
            let mut data = seeds[rng.gen_range(0..seeds.len())].clone();
            match rng.gen_range(0..5) {
                0 => {
                    let at = rng.gen_range(0..data.len());
                    data[at] ^= 1 << rng.gen_range(0..8);
                }
                1 => data.truncate(rng.gen_range(0..data.len())),
                2 => {
                    let at = rng.gen_range(8.min(data.len())..=data.len());
                    let huge: [u8; 4] = [0x7f, 0xff, 0xff, rng.gen()];
                    data.splice(at..at, huge);
                }
                3 => {
                    let other = &seeds[rng.gen_range(0..seeds.len())];
                    let cut = rng.gen_range(0..other.len());
                    data.extend_from_slice(&other[cut..]);
                }
                _ => {
                    for _ in 0..rng.gen_range(1..8) {
                        let at = rng.gen_range(0..data.len());
                        data[at] = rng.gen();
                    }
                }
            }
            if request_intake(&data) {
                accepted += 1;
            }
        }
        assert!(
            accepted > 0 && accepted < iterations,
            "mutations both pass and fail"
        );
    }

    #[test]
    fn given_mutated_batches_decoding_never_panics() {
        let seeds = batch_seeds();
        for seed in &seeds {
            assert_eq!(record_batches(seed), 5);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5742_0002);
        for _ in 0..50_000 {
            let mut data = seeds[rng.gen_range(0..seeds.len())].clone();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..data.len());
                data[at] = rng.gen();
            }
            if rng.gen_bool(0.3) {
                data.truncate(rng.gen_range(0..data.len()));
            }
            // CRC-valid mutations reach the record decoder: recompute the CRC half the time.
            if data.len() > 61 && rng.gen_bool(0.5) {
                let crc = crc32c::crc32c(&data[21..]);
                data[17..21].copy_from_slice(&crc.to_be_bytes());
            }
            record_batches(&data);
        }
    }
}
