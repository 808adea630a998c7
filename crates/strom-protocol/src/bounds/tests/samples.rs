//! Sampled requests for every covered API, built with kafka-protocol's own types and
//! encoders, so the tests compare the walker against the real generated codec.
//!
//! The `Sample` implementations of the message structs are in `sample_messages.rs`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Message as _, StrBytes, VersionRange};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// How a sample fills optional and repeated values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// Every nullable value present, two or three elements in every array, unknown tagged
    /// fields in every flexible struct.
    Rich,
    /// Nulls, empty arrays and strings, no tagged fields.
    Sparse,
    /// Sizes and presence drawn from the RNG.
    Random,
}

/// A seeded source of sample values.
pub(super) struct Gen {
    rng: StdRng,
    shape: Shape,
}

impl Gen {
    pub(super) fn new(seed: u64, shape: Shape) -> Self {
        Gen {
            rng: StdRng::seed_from_u64(seed),
            shape,
        }
    }

    pub(super) fn sample<T: Sample>(&mut self, version: i16) -> T {
        T::sample(self, version)
    }

    fn length(&mut self, rich_min: usize, max: usize) -> usize {
        match self.shape {
            Shape::Rich => self.rng.gen_range(rich_min..=max),
            Shape::Sparse => 0,
            Shape::Random => self.rng.gen_range(0..=max),
        }
    }

    fn present(&mut self) -> bool {
        match self.shape {
            Shape::Rich => true,
            Shape::Sparse => false,
            Shape::Random => self.rng.gen_bool(0.75),
        }
    }

    /// Tags no covered struct knows (the known ones are 0 and 1), with random payloads.
    pub(super) fn unknown_tagged_fields(&mut self) -> BTreeMap<i32, Bytes> {
        let count = self.length(1, 2);
        let mut fields = BTreeMap::new();
        for _ in 0..count {
            let tag = self.rng.gen_range(10..20_000);
            let size_bytes = self.rng.gen_range(0..=9);
            let payload: Vec<u8> = (0..size_bytes).map(|_| self.rng.gen()).collect();
            fields.insert(tag, Bytes::from(payload));
        }
        fields
    }
}

pub(super) trait Sample: Sized {
    fn sample(g: &mut Gen, version: i16) -> Self;
}

macro_rules! sample_by_rng {
    ($($t:ty),*) => {$(
        impl Sample for $t {
            fn sample(g: &mut Gen, _version: i16) -> Self {
                g.rng.gen()
            }
        }
    )*};
}
sample_by_rng!(bool, i8, i16, i32, i64, u16, u32);

impl Sample for uuid::Uuid {
    fn sample(g: &mut Gen, _version: i16) -> Self {
        uuid::Uuid::from_bytes(g.rng.gen())
    }
}

impl Sample for StrBytes {
    fn sample(g: &mut Gen, _version: i16) -> Self {
        let length = g.length(1, 12);
        let text: String = (0..length)
            .map(|_| char::from(g.rng.gen_range(b'a'..=b'z')))
            .collect();
        StrBytes::from_string(text)
    }
}

/// Record sets and opaque bytes (SASL tokens, group assignments): random content.
impl Sample for Bytes {
    fn sample(g: &mut Gen, _version: i16) -> Self {
        let length = g.length(1, 80);
        let content: Vec<u8> = (0..length).map(|_| g.rng.gen()).collect();
        Bytes::from(content)
    }
}

impl<T: Sample> Sample for Option<T> {
    fn sample(g: &mut Gen, version: i16) -> Self {
        g.present().then(|| T::sample(g, version))
    }
}

impl<T: Sample> Sample for Vec<T> {
    fn sample(g: &mut Gen, version: i16) -> Self {
        let length = g.length(2, 3);
        (0..length).map(|_| T::sample(g, version)).collect()
    }
}

macro_rules! sample_newtype {
    ($($t:ident),*) => {$(
        impl Sample for $t {
            fn sample(g: &mut Gen, version: i16) -> Self {
                $t(g.sample(version))
            }
        }
    )*};
}
sample_newtype!(BrokerId, GroupId, ProducerId, TopicName, TransactionalId);

/// Samples a `T`, encodes it at `version`, and checks that the generated decoder reads it
/// back unchanged (so the sample is valid input, not just bytes).
fn encode_sample<T>(g: &mut Gen, version: i16) -> Vec<u8>
where
    T: Sample + Encodable + Decodable + PartialEq + Debug,
{
    let request = T::sample(g, version);
    let mut body = BytesMut::new();
    request
        .encode(&mut body, version)
        .unwrap_or_else(|error| panic!("encode v{version} of {request:?}: {error}"));
    let decoded = T::decode(&mut Bytes::copy_from_slice(&body), version)
        .unwrap_or_else(|error| panic!("decode v{version} of {request:?}: {error}"));
    assert_eq!(decoded, request, "round trip at v{version}");
    body.to_vec()
}

fn decode_is_ok<T: Decodable>(body: &[u8], version: i16) -> bool {
    T::decode(&mut Bytes::copy_from_slice(body), version).is_ok()
}

macro_rules! requests {
    ($($key:ident => $request:ty,)*) => {
        /// Every API the tests know how to sample.
        pub(super) const SAMPLED: &[ApiKey] = &[$(ApiKey::$key,)*];

        /// A valid body of `api_key` at `version`, encoded by kafka-protocol.
        pub(super) fn sample_body(api_key: ApiKey, version: i16, g: &mut Gen) -> Vec<u8> {
            match api_key {
                $(ApiKey::$key => encode_sample::<$request>(g, version),)*
                other => panic!("no sample for {other:?}"),
            }
        }

        /// Whether kafka-protocol's generated decoder accepts `body`.
        pub(super) fn decoder_accepts(api_key: ApiKey, version: i16, body: &[u8]) -> bool {
            match api_key {
                $(ApiKey::$key => decode_is_ok::<$request>(body, version),)*
                other => panic!("no decoder for {other:?}"),
            }
        }

        /// The versions kafka-protocol's request type supports.
        pub(super) fn decoder_versions(api_key: ApiKey) -> VersionRange {
            match api_key {
                $(ApiKey::$key => <$request>::VERSIONS,)*
                other => panic!("no request type for {other:?}"),
            }
        }
    };
}

requests! {
    Produce => ProduceRequest,
    Fetch => FetchRequest,
    ListOffsets => ListOffsetsRequest,
    Metadata => MetadataRequest,
    ApiVersions => ApiVersionsRequest,
    CreateTopics => CreateTopicsRequest,
    DeleteTopics => DeleteTopicsRequest,
    InitProducerId => InitProducerIdRequest,
    OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
    DescribeConfigs => DescribeConfigsRequest,
    CreatePartitions => CreatePartitionsRequest,
    DescribeCluster => DescribeClusterRequest,
    FindCoordinator => FindCoordinatorRequest,
    JoinGroup => JoinGroupRequest,
    SyncGroup => SyncGroupRequest,
    Heartbeat => HeartbeatRequest,
    LeaveGroup => LeaveGroupRequest,
    OffsetCommit => OffsetCommitRequest,
    OffsetFetch => OffsetFetchRequest,
    ListGroups => ListGroupsRequest,
    DescribeGroups => DescribeGroupsRequest,
    DeleteGroups => DeleteGroupsRequest,
    OffsetDelete => OffsetDeleteRequest,
    AlterConfigs => AlterConfigsRequest,
    IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
    DeleteRecords => DeleteRecordsRequest,
    SaslHandshake => SaslHandshakeRequest,
    SaslAuthenticate => SaslAuthenticateRequest,
    ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest,
    ConsumerGroupDescribe => ConsumerGroupDescribeRequest,
    AddPartitionsToTxn => AddPartitionsToTxnRequest,
    AddOffsetsToTxn => AddOffsetsToTxnRequest,
    EndTxn => EndTxnRequest,
    TxnOffsetCommit => TxnOffsetCommitRequest,
    DescribeProducers => DescribeProducersRequest,
}
