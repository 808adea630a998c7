//! Client quotas as Kafka defines them: `producer_byte_rate`, `consumer_byte_rate` (bytes per
//! second) and `request_percentage` (percent of one request-handling thread), per user and
//! client id, with defaults, stored in the metadata log (AlterClientQuotas).
//!
//! Measurement follows Kafka's `Rate` over `quota.window.num` samples of
//! `quota.window.size.seconds` each: the window is never taken shorter than
//! `num - 1` samples, so a fresh client's first burst is spread over the whole window
//! instead of throttling at once. A client above its quota gets
//! `throttle_ms = (rate - quota) / quota * window_ms` (capped at the window), sent as
//! `throttle_time_ms` in its response; the router then holds that connection's next request
//! for as long (KIP-219: the broker answers at once and mutes the channel).
//!
//! With no quota configured at all the cost is one `is_empty` check on the image.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;
use strom_controller::{MetadataImage, QuotaEntity, QuotaEntityPart};

use crate::config::SecuritySettings;

pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// Quota keys accepted by AlterClientQuotas, with the entity kinds they apply to and
/// whether the value must be a whole number.
pub const QUOTA_KEYS: &[(&str, bool, bool)] = &[
    // (key, applies to user/client-id (else ip), whole number)
    (PRODUCER_BYTE_RATE, true, true),
    (CONSUMER_BYTE_RATE, true, true),
    (REQUEST_PERCENTAGE, true, false),
    ("controller_mutation_rate", true, false),
    ("connection_creation_rate", false, true),
];

/// Most (key, user, client id) rate sensors kept; beyond it the least recently used goes.
/// Bounds memory against clients that invent a new client id per connection.
const SENSORS_MAX: usize = 100_000;

/// A windowed rate: `num` samples of `window_ms` each.
#[derive(Debug, Clone)]
struct Rate {
    samples: VecDeque<(u64, f64)>,
    last_used_ms: u64,
}

impl Rate {
    fn new() -> Self {
        Rate {
            samples: VecDeque::new(),
            last_used_ms: 0,
        }
    }

    fn record(&mut self, value: f64, now_ms: u64, window_ms: u64, num: usize) {
        let start = now_ms - now_ms % window_ms;
        match self.samples.back_mut() {
            Some((sample_start, total)) if *sample_start == start => *total += value,
            _ => self.samples.push_back((start, value)),
        }
        self.expire(now_ms, window_ms, num);
        self.last_used_ms = now_ms;
    }

    fn expire(&mut self, now_ms: u64, window_ms: u64, num: usize) {
        let horizon = now_ms.saturating_sub(window_ms * num as u64);
        while self
            .samples
            .front()
            .is_some_and(|(start, _)| *start + window_ms <= horizon)
        {
            self.samples.pop_front();
        }
        while self.samples.len() > num {
            self.samples.pop_front();
        }
    }

    /// Kafka's `Rate.windowSize`: time since the oldest sample began, at least `num - 1`
    /// whole samples.
    fn window_ms(&self, now_ms: u64, window_ms: u64, num: usize) -> u64 {
        let oldest = self
            .samples
            .front()
            .map(|(start, _)| *start)
            .unwrap_or(now_ms);
        let elapsed = now_ms.saturating_sub(oldest).max(1);
        elapsed.max(window_ms * (num as u64 - 1))
    }

    /// Units per second.
    fn per_second(&self, now_ms: u64, window_ms: u64, num: usize) -> f64 {
        let total: f64 = self.samples.iter().map(|(_, value)| value).sum();
        total * 1000.0 / self.window_ms(now_ms, window_ms, num) as f64
    }
}

/// The throttle for `rate` against `quota` over a window of `window_ms`: Kafka's
/// `(rate - quota) / quota * window`, 0 when within quota, never more than `max_ms`.
pub fn throttle_ms(rate: f64, quota: f64, window_ms: u64, max_ms: u64) -> u64 {
    if quota <= 0.0 || rate <= quota {
        return 0;
    }
    let throttle = ((rate - quota) / quota * window_ms as f64).round();
    (throttle as u64).min(max_ms)
}

/// The user name of a principal (`User:alice` -> `alice`).
pub fn user_of(principal: &str) -> &str {
    principal.strip_prefix("User:").unwrap_or(principal)
}

fn part(entity_type: &str, name: Option<&str>) -> QuotaEntityPart {
    QuotaEntityPart {
        entity_type: entity_type.to_string(),
        name: name.map(str::to_string),
    }
}

/// The quota for `key` that applies to (`user`, `client_id`), in Kafka's order of
/// precedence, and which sensor it is measured by (the tags of the matched entity's kinds).
pub fn resolve(
    image: &MetadataImage,
    key: &str,
    user: &str,
    client_id: &str,
) -> Option<(f64, SensorTags)> {
    let quotas = image.client_quotas();
    // Each level: the user part and the client-id part, `None` when the level has no
    // such part, `Some(None)` for the default entity.
    type Level<'a> = (Option<Option<&'a str>>, Option<Option<&'a str>>);
    let candidates: [Level; 8] = [
        (Some(Some(user)), Some(Some(client_id))),
        (Some(Some(user)), Some(None)),
        (Some(Some(user)), None),
        (Some(None), Some(Some(client_id))),
        (Some(None), Some(None)),
        (Some(None), None),
        (None, Some(Some(client_id))),
        (None, Some(None)),
    ];
    for (user_part, client_part) in candidates {
        // Parts sorted by entity type: "client-id" < "user".
        let mut entity: QuotaEntity = Vec::with_capacity(2);
        if let Some(name) = client_part {
            entity.push(part(CLIENT_ID, name));
        }
        if let Some(name) = user_part {
            entity.push(part(USER, name));
        }
        if let Some(value) = quotas.get(&entity).and_then(|values| values.get(key)) {
            let tags = (
                user_part.map(|_| user.to_string()),
                client_part.map(|_| client_id.to_string()),
            );
            return Some((value.0, tags));
        }
    }
    None
}

/// The user and client-id a rate is kept for (`None` when the matched quota's entity has
/// no such part, so all its users or clients share one rate).
pub type SensorTags = (Option<String>, Option<String>);

type SensorKey = (&'static str, Option<String>, Option<String>);

/// Rates per (quota key, user, client id) and the throttles they earn.
pub struct QuotaManager {
    window_ms: u64,
    window_num: usize,
    sensors: Mutex<HashMap<SensorKey, Rate>>,
}

impl QuotaManager {
    pub fn new(settings: &SecuritySettings) -> Self {
        QuotaManager {
            window_ms: settings.quota_window_size_ms.max(1),
            window_num: (settings.quota_window_num as usize).max(2),
            sensors: Mutex::new(HashMap::new()),
        }
    }

    /// Records `value` (bytes, or request time in ms for `request_percentage`) for the
    /// client and returns the throttle in ms it has earned (0 without a quota).
    pub fn record(
        &self,
        image: &MetadataImage,
        key: &'static str,
        principal: &str,
        client_id: &str,
        value: f64,
        now_ms: u64,
    ) -> u64 {
        if image.client_quotas().is_empty() {
            return 0;
        }
        let user = user_of(principal);
        let Some((quota, (user_tag, client_tag))) = resolve(image, key, user, client_id) else {
            return 0;
        };
        let mut sensors = self.sensors.lock();
        if sensors.len() >= SENSORS_MAX {
            if let Some(oldest) = sensors
                .iter()
                .min_by_key(|(_, rate)| rate.last_used_ms)
                .map(|(key, _)| key.clone())
            {
                sensors.remove(&oldest);
            }
        }
        let rate = sensors
            .entry((key, user_tag, client_tag))
            .or_insert_with(Rate::new);
        rate.record(value, now_ms, self.window_ms, self.window_num);
        let per_second = rate.per_second(now_ms, self.window_ms, self.window_num);
        // request_percentage: `value` is ms of handling; per second that is ms/s, and
        // 10 ms/s is 1 % of a thread.
        let (observed, bound) = if key == REQUEST_PERCENTAGE {
            (per_second / 10.0, quota)
        } else {
            (per_second, quota)
        };
        let window = rate.window_ms(now_ms, self.window_ms, self.window_num);
        throttle_ms(
            observed,
            bound,
            window,
            self.window_ms * self.window_num as u64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_controller::{MetadataRecord, QuotaValue};

    fn image_with(quotas: &[(Vec<QuotaEntityPart>, &str, f64)]) -> MetadataImage {
        let mut image = MetadataImage::empty();
        for (entity, key, value) in quotas {
            image
                .apply(&MetadataRecord::ClientQuota {
                    entity: entity.clone(),
                    key: key.to_string(),
                    value: Some(QuotaValue(*value)),
                })
                .unwrap();
        }
        image
    }

    fn manager() -> QuotaManager {
        QuotaManager::new(&SecuritySettings {
            quota_window_num: 11,
            quota_window_size_ms: 1000,
            ..SecuritySettings::default()
        })
    }

    #[test]
    fn given_quotas_at_several_levels_when_resolved_should_follow_kafka_precedence() {
        let image = image_with(&[
            (vec![part(CLIENT_ID, None)], PRODUCER_BYTE_RATE, 1.0),
            (vec![part(USER, None)], PRODUCER_BYTE_RATE, 2.0),
            (
                vec![part(CLIENT_ID, Some("app")), part(USER, Some("alice"))],
                PRODUCER_BYTE_RATE,
                3.0,
            ),
            (vec![part(USER, Some("bob"))], PRODUCER_BYTE_RATE, 4.0),
        ]);
        let quota = |user: &str, client: &str| {
            resolve(&image, PRODUCER_BYTE_RATE, user, client).map(|(value, _)| value)
        };
        assert_eq!(quota("alice", "app"), Some(3.0));
        assert_eq!(quota("alice", "other"), Some(2.0), "user default");
        assert_eq!(quota("bob", "app"), Some(4.0));
        assert_eq!(resolve(&image, CONSUMER_BYTE_RATE, "bob", "app"), None);
        let clients_only = image_with(&[(vec![part(CLIENT_ID, None)], PRODUCER_BYTE_RATE, 1.0)]);
        let (_, tags) = resolve(&clients_only, PRODUCER_BYTE_RATE, "x", "c1").unwrap();
        assert_eq!(tags, (None, Some("c1".to_string())), "each client its own");
    }

    #[test]
    fn given_a_burst_above_the_quota_when_recorded_should_throttle_in_proportion() {
        let image = image_with(&[(vec![part(USER, Some("alice"))], PRODUCER_BYTE_RATE, 1000.0)]);
        let quotas = manager();
        // 5 kB in the first second: spread over the 10 s minimum window, 500 B/s: fine.
        assert_eq!(
            quotas.record(
                &image,
                PRODUCER_BYTE_RATE,
                "User:alice",
                "c",
                5000.0,
                10_000
            ),
            0
        );
        // 20 kB more: 2500 B/s over 10 s, 1.5 times over the quota -> 15 s, capped at 11 s.
        let throttle = quotas.record(
            &image,
            PRODUCER_BYTE_RATE,
            "User:alice",
            "c",
            20_000.0,
            10_500,
        );
        assert_eq!(throttle, 11_000);
        // Someone without a quota is never throttled.
        assert_eq!(
            quotas.record(&image, PRODUCER_BYTE_RATE, "User:bob", "c", 1e9, 10_500),
            0
        );
    }

    #[test]
    fn given_throttle_formula_should_match_kafka() {
        assert_eq!(throttle_ms(1500.0, 1000.0, 10_000, 60_000), 5_000);
        assert_eq!(throttle_ms(900.0, 1000.0, 10_000, 60_000), 0);
        assert_eq!(throttle_ms(1e12, 1.0, 10_000, 30_000), 30_000);
    }

    #[test]
    fn given_encoded_responses_when_patched_should_carry_the_throttle_where_clients_read_it() {
        use kafka_protocol::messages::*;
        use kafka_protocol::protocol::Decodable;
        fn decode<T: Decodable>(
            frame: &crate::response::ResponseFrame,
            api_key: ApiKey,
            version: i16,
        ) -> T {
            let mut bytes = frame.to_bytes().unwrap();
            bytes::Buf::advance(&mut bytes, 4);
            let header_version = crate::response::response_header_version(api_key, version);
            ResponseHeader::decode(&mut bytes, header_version).unwrap();
            T::decode(&mut bytes, version).unwrap()
        }
        for version in [3, 8, 9, 11] {
            let mut frame = crate::response::encode_frame(
                ApiKey::Produce,
                version,
                7,
                &ProduceResponse::default(),
            )
            .unwrap();
            assert!(patch_throttle(&mut frame, ApiKey::Produce, version, 1234));
            let decoded: ProduceResponse = decode(&frame, ApiKey::Produce, version);
            assert_eq!(decoded.throttle_time_ms, 1234, "produce v{version}");
        }
        for version in [4, 11, 12, 16] {
            let mut frame =
                crate::response::encode_frame(ApiKey::Fetch, version, 7, &FetchResponse::default())
                    .unwrap();
            assert!(patch_throttle(&mut frame, ApiKey::Fetch, version, 99));
            let decoded: FetchResponse = decode(&frame, ApiKey::Fetch, version);
            assert_eq!(decoded.throttle_time_ms, 99, "fetch v{version}");
        }
        let mut frame =
            crate::response::encode_frame(ApiKey::Metadata, 12, 7, &MetadataResponse::default())
                .unwrap();
        assert!(patch_throttle(&mut frame, ApiKey::Metadata, 12, 5));
        assert_eq!(
            decode::<MetadataResponse>(&frame, ApiKey::Metadata, 12).throttle_time_ms,
            5
        );
        // Metadata v0 has no throttle field: left alone.
        let mut frame =
            crate::response::encode_frame(ApiKey::Metadata, 0, 7, &MetadataResponse::default())
                .unwrap();
        assert!(!patch_throttle(&mut frame, ApiKey::Metadata, 0, 5));
    }

    #[test]
    fn given_request_frames_when_reading_the_client_id_should_never_panic() {
        let mut frame = vec![0, 0, 0, 9, 0, 0, 0, 1, 0, 3];
        frame.extend_from_slice(b"app");
        assert_eq!(client_id_of(&frame), "app");
        assert_eq!(client_id_of(&frame[..11]), "");
        assert_eq!(client_id_of(&[0, 0, 0, 9, 0, 0, 0, 1, 0xff, 0xff]), "");
        assert_eq!(client_id_of(&[]), "");
    }

    #[test]
    fn given_old_samples_when_the_window_passes_should_forget_them() {
        let mut rate = Rate::new();
        rate.record(10_000.0, 0, 1000, 3);
        assert!(rate.per_second(500, 1000, 3) > 4000.0);
        rate.record(0.0, 10_000, 1000, 3);
        assert_eq!(rate.per_second(10_000, 1000, 3), 0.0);
    }
}

/// Byte offset of `throttle_time_ms` in an encoded response body, if the API carries it as
/// its first field at `version` (most do; Produce carries it last and is handled apart).
fn throttle_is_first_field(api_key: kafka_protocol::messages::ApiKey, version: i16) -> bool {
    use kafka_protocol::messages::ApiKey::*;
    let since = match api_key {
        Fetch | FindCoordinator | Heartbeat | LeaveGroup | SyncGroup | DescribeGroups
        | ListGroups | DeleteTopics => 1,
        JoinGroup | ListOffsets => 2,
        Metadata | OffsetFetch | OffsetCommit => 3,
        CreateTopics
        | DeleteRecords
        | InitProducerId
        | OffsetForLeaderEpoch
        | DescribeAcls
        | CreateAcls
        | DeleteAcls
        | DescribeConfigs
        | AlterConfigs
        | DescribeLogDirs
        | AlterReplicaLogDirs
        | CreatePartitions
        | DeleteGroups
        | IncrementalAlterConfigs
        | DescribeClientQuotas
        | AlterClientQuotas
        | DescribeUserScramCredentials
        | AlterUserScramCredentials
        | DescribeCluster
        | DescribeProducers
        | ConsumerGroupHeartbeat
        | ConsumerGroupDescribe => 0,
        _ => return false,
    };
    version >= since
}

/// Writes `throttle_ms` into an encoded response frame's `throttle_time_ms`. Returns false
/// (and leaves the frame) when this API/version has no field where it can be patched.
pub fn patch_throttle(
    frame: &mut crate::response::ResponseFrame,
    api_key: kafka_protocol::messages::ApiKey,
    version: i16,
    throttle_ms: i32,
) -> bool {
    use crate::response::ResponsePart;
    let header_bytes = match crate::response::response_header_version(api_key, version) {
        0 => 4,
        // Correlation id + an empty tagged-field section (one zero byte, as we encode it).
        _ => 5,
    };
    let single = frame.parts.len() == 1;
    let Some(ResponsePart::Bytes(first)) = frame.parts.first() else {
        return false;
    };
    let at = if api_key == kafka_protocol::messages::ApiKey::Produce {
        // Last field; flexible versions follow it with the tagged-field section, which we
        // leave alone unless it is the usual empty one.
        if !single {
            return false;
        }
        let flexible = version >= 9;
        match (flexible, first.last()) {
            (false, _) => first.len().checked_sub(4),
            (true, Some(0)) => first.len().checked_sub(5),
            _ => None,
        }
    } else if throttle_is_first_field(api_key, version) {
        Some(4 + header_bytes)
    } else {
        None
    };
    let Some(at) = at.filter(|at| at + 4 <= first.len() && *at >= 4 + header_bytes) else {
        return false;
    };
    let mut bytes = bytes::BytesMut::from(&first[..]);
    bytes[at..at + 4].copy_from_slice(&throttle_ms.to_be_bytes());
    frame.parts[0] = ResponsePart::Bytes(bytes.freeze());
    true
}

/// The client id of a request frame (header v1+: INT16-length string after api key,
/// version and correlation id), empty when absent or unreadable.
pub fn client_id_of(frame: &[u8]) -> &str {
    let Some(length) = frame.get(8..10) else {
        return "";
    };
    let length = i16::from_be_bytes([length[0], length[1]]);
    if length <= 0 {
        return "";
    }
    frame
        .get(10..10 + length as usize)
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .unwrap_or("")
}

/// One request's quota accounting: made before routing, settled with the outcome.
pub struct Pending {
    api_key: Option<kafka_protocol::messages::ApiKey>,
    version: i16,
    client_id: String,
    request_bytes: usize,
    started: std::time::Instant,
    image: Option<std::sync::Arc<MetadataImage>>,
}

impl Pending {
    /// Starts accounting for one request. (The throttle a previous request earned is
    /// waited out by the connection before it reads this one:
    /// [`crate::handlers::ConnectionContext::wait_out_throttle`].)
    pub fn start(broker: &crate::state::Broker, frame: &[u8]) -> Pending {
        let image = broker.image();
        let active = !image.client_quotas().is_empty();
        let prefix = strom_protocol::frame::peek_header_prefix(frame);
        Pending {
            api_key: prefix
                .and_then(|p| kafka_protocol::messages::ApiKey::try_from(p.api_key).ok()),
            version: prefix.map(|p| p.api_version).unwrap_or(0),
            client_id: if active {
                client_id_of(frame).to_string()
            } else {
                String::new()
            },
            request_bytes: frame.len(),
            started: std::time::Instant::now(),
            image: active.then_some(image),
        }
    }

    /// Records the request against the client's quotas; a throttle goes into the response
    /// and mutes the connection until it has passed.
    pub fn finish(
        self,
        broker: &crate::state::Broker,
        principal: &str,
        throttled_until: &mut Option<std::time::Instant>,
        mut outcome: crate::handlers::Outcome,
    ) -> crate::handlers::Outcome {
        use kafka_protocol::messages::ApiKey;
        let (Some(image), Some(api_key)) = (self.image, self.api_key) else {
            return outcome;
        };
        if matches!(
            api_key,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        ) {
            return outcome;
        }
        let now_ms = crate::state::now_ms().max(0) as u64;
        let elapsed_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let quotas = broker.quotas();
        // Long polls and rebalances park without using a thread: not request time.
        let parks = matches!(
            api_key,
            ApiKey::Fetch | ApiKey::JoinGroup | ApiKey::SyncGroup
        );
        let mut throttle = if parks {
            0
        } else {
            quotas.record(
                &image,
                REQUEST_PERCENTAGE,
                principal,
                &self.client_id,
                elapsed_ms,
                now_ms,
            )
        };
        match (&outcome, api_key) {
            (_, ApiKey::Produce) => {
                throttle = throttle.max(quotas.record(
                    &image,
                    PRODUCER_BYTE_RATE,
                    principal,
                    &self.client_id,
                    self.request_bytes as f64,
                    now_ms,
                ));
            }
            (crate::handlers::Outcome::Respond(frame), ApiKey::Fetch) => {
                throttle = throttle.max(quotas.record(
                    &image,
                    CONSUMER_BYTE_RATE,
                    principal,
                    &self.client_id,
                    frame.size_bytes() as f64,
                    now_ms,
                ));
            }
            _ => {}
        }
        if throttle == 0 {
            return outcome;
        }
        let throttle_ms = i32::try_from(throttle).unwrap_or(i32::MAX);
        if let crate::handlers::Outcome::Respond(frame) = &mut outcome {
            patch_throttle(frame, api_key, self.version, throttle_ms);
        }
        tracing::debug!(principal, client_id = %self.client_id, throttle_ms, "client throttled");
        *throttled_until =
            Some(std::time::Instant::now() + std::time::Duration::from_millis(throttle));
        outcome
    }
}
