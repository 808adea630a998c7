//! ApiVersions: the versions of every API this broker serves, and (v3+) the features it
//! supports and has finalized.
//!
//! Features: `transaction.version` is finalized at level 2 (KIP-890 part 2), which is what
//! makes the Java producer (4.x) use EndTxn v5, Produce v12 and TxnOffsetCommit v5.
//! Clients that do not know the feature (librdkafka, kafka-python, kafkajs) skip the tagged
//! fields and keep the transaction-version-1 requests, which Strom still serves.
//!
//! The fields follow Apache Kafka 4.4 exactly: tags in ascending order (0 supported, 1
//! epoch, 2 finalized), and at v3 the supported features with minimum 0 left out
//! (KAFKA-17011: older clients refuse a minimum of 0). Debian's kcat (librdkafka 2.0) reads
//! this layout; see README "Compatibility notes".

use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::versions::SUPPORTED_APIS;
use strom_protocol::ErrorCode;

use super::{respond, Outcome};
use crate::txn::state::TRANSACTION_VERSION_2;

/// Kafka's name of the transaction protocol feature.
pub const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";

/// (name, supported min, supported max, finalized level) of every feature Strom advertises.
const FEATURES: [(&str, i16, i16, i16); 1] = [(
    TRANSACTION_VERSION_FEATURE,
    0,
    TRANSACTION_VERSION_2,
    TRANSACTION_VERSION_2,
)];

/// The first ApiVersions version that may carry features (the first flexible one).
const FEATURES_VERSION: i16 = 3;

/// The first version whose clients accept a supported minimum of 0 (KAFKA-17011).
const MIN_VERSION_ZERO_VERSION: i16 = 4;

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|(key, min, max)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect()
}

/// `features_epoch`: the finalized features' epoch (Kafka uses the metadata log offset;
/// clients keep the answer with the highest epoch). Negative means unknown: no features.
pub fn handle(
    _request: &ApiVersionsRequest,
    version: i16,
    features_epoch: i64,
) -> ApiVersionsResponse {
    let response = ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(api_keys());
    if version < FEATURES_VERSION || features_epoch < 0 {
        return response;
    }
    let supported = FEATURES
        .iter()
        .filter(|(_, min, _, _)| *min > 0 || version >= MIN_VERSION_ZERO_VERSION)
        .map(|(name, min, max, _)| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(name))
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect();
    let finalized = FEATURES
        .iter()
        .map(|(name, _, _, level)| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_static_str(name))
                .with_max_version_level(*level)
                .with_min_version_level(*level)
        })
        .collect();
    response
        .with_supported_features(supported)
        .with_finalized_features_epoch(features_epoch)
        .with_finalized_features(finalized)
}

/// A client asked for an ApiVersions version we do not serve: answer in the v0 format with
/// UNSUPPORTED_VERSION and our list, so it can retry with a version we know.
pub fn unsupported_version(correlation_id: i32) -> Outcome {
    let response = ApiVersionsResponse::default()
        .with_error_code(ErrorCode::UnsupportedVersion.code())
        .with_api_keys(api_keys());
    respond(ApiKey::ApiVersions, 0, correlation_id, &response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Decodable, Encodable};

    fn round_trip(version: i16, epoch: i64) -> ApiVersionsResponse {
        let response = handle(&ApiVersionsRequest::default(), version, epoch);
        let mut buf = BytesMut::new();
        response.encode(&mut buf, version).unwrap();
        ApiVersionsResponse::decode(&mut buf.freeze(), version).unwrap()
    }

    #[test]
    fn given_v4_should_finalize_transaction_version_2_and_support_0_to_2() {
        let response = round_trip(4, 17);
        assert_eq!(response.finalized_features_epoch, 17);
        let finalized = &response.finalized_features[0];
        assert_eq!(finalized.name.as_str(), "transaction.version");
        assert_eq!(
            (finalized.min_version_level, finalized.max_version_level),
            (2, 2)
        );
        let supported = &response.supported_features[0];
        assert_eq!(supported.name.as_str(), "transaction.version");
        assert_eq!((supported.min_version, supported.max_version), (0, 2));
    }

    #[test]
    fn given_v3_should_leave_out_supported_features_with_minimum_0() {
        let response = round_trip(3, 17);
        assert!(response.supported_features.is_empty());
        assert_eq!(response.finalized_features.len(), 1);
    }

    #[test]
    fn given_v0_to_v2_or_unknown_epoch_should_carry_no_features() {
        for version in 0..3 {
            let response = round_trip(version, 17);
            assert!(response.finalized_features.is_empty());
        }
        let response = round_trip(4, -1);
        assert!(response.finalized_features.is_empty() && response.supported_features.is_empty());
        assert_eq!(response.finalized_features_epoch, -1);
    }

    #[test]
    fn given_v3_features_should_encode_tags_in_ascending_order_as_kafka_does() {
        let response = handle(&ApiVersionsRequest::default(), 3, 5);
        let mut buf = BytesMut::new();
        response.encode(&mut buf, 3).unwrap();
        // The body ends: tag count 2, tag 1 (8-byte epoch), tag 2 (finalized features).
        let tail_len = 1 + (1 + 1 + 8) + (1 + 1 + 1 + 1 + 19 + 2 + 2 + 1);
        let tail = &buf[buf.len() - tail_len..];
        assert_eq!(&tail[..3], &[2, 1, 8]);
        assert_eq!(&tail[3..11], &5i64.to_be_bytes());
        assert_eq!(tail[11], 2, "finalized features come after the epoch");
    }

    /// librdkafka before 2.2 (Debian's kcat is 2.0) skips one byte too few per tagged
    /// field (librdkafka PR 4278). In ApiVersions the tags end the body, so the misread
    /// bytes are never used, as long as the short skips never run past the end (which
    /// librdkafka reports as a parse error and fails the handshake).
    fn old_librdkafka_skips_tags(body_tail: &[u8]) -> bool {
        fn uvarint(buf: &[u8], at: &mut usize) -> Option<u64> {
            let mut value = 0u64;
            for shift in (0..64).step_by(7) {
                let byte = *buf.get(*at)?;
                *at += 1;
                value |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    return Some(value);
                }
            }
            None
        }
        let mut at = 0;
        let Some(count) = uvarint(body_tail, &mut at) else {
            return false;
        };
        for _ in 0..count {
            let (Some(_tag), Some(len)) =
                (uvarint(body_tail, &mut at), uvarint(body_tail, &mut at))
            else {
                return false;
            };
            at += len.saturating_sub(1) as usize;
            if at > body_tail.len() {
                return false;
            }
        }
        true
    }

    #[test]
    fn given_any_features_epoch_when_librdkafka_2_0_skips_the_tags_should_stay_in_bounds() {
        let mut epochs: Vec<i64> = (0..5_000).collect();
        epochs.extend((0..64).map(|shift| 1i64 << shift).filter(|e| *e > 0));
        epochs.extend((0..256).map(|low| 0x7f00 | low));
        // librdkafka 2.0 asks for v3 at most (v4 with a huge epoch would overrun).
        let version = 3;
        for &epoch in &epochs {
            let response = handle(&ApiVersionsRequest::default(), version, epoch);
            let mut without = response.clone();
            without.supported_features.clear();
            without.finalized_features.clear();
            without.finalized_features_epoch = -1;
            let (mut full, mut bare) = (BytesMut::new(), BytesMut::new());
            response.encode(&mut full, version).unwrap();
            without.encode(&mut bare, version).unwrap();
            // The tag section starts where the body without features ends its fields.
            let tail = &full[bare.len() - 1..];
            assert!(
                old_librdkafka_skips_tags(tail),
                "v{version} epoch {epoch}: librdkafka 2.0 would read past the end"
            );
        }
    }
}
