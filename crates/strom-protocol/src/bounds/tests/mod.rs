//! The walker against kafka-protocol's own codec: valid requests of every covered API at
//! every version must pass; truncated and patched ones must fail, or decode within bounds.

mod allocation;
mod samples;

use super::requests::ALL;
use super::schema::{Kind, Message, Struct};
use super::{check_request, walk, BoundsError};
use kafka_protocol::messages::ApiKey;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use samples::{decoder_accepts, decoder_versions, sample_body, Gen, Shape, SAMPLED};

/// Every (schema, version) pair the schemas cover.
fn every_version() -> impl Iterator<Item = (&'static Message, i16)> {
    ALL.iter().flat_map(|message| {
        (message.versions.min..=message.versions.max).map(move |v| (*message, v))
    })
}

/// A few valid bodies of `message` at `version`: rich, sparse and random.
fn valid_bodies(message: &Message, version: i16) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    for seed in 0..2 {
        for shape in [Shape::Rich, Shape::Sparse, Shape::Random] {
            let mut g = Gen::new(seed, shape);
            bodies.push(sample_body(message.api_key, version, &mut g));
        }
    }
    bodies
}

/// The smallest encoding of `kind`, which the count bound relies on being at least 1.
fn min_size_bytes(kind: &Kind, version: i16, flexible: bool) -> usize {
    match kind {
        Kind::Fixed(width_bytes) => *width_bytes,
        Kind::String if !flexible => 2,
        Kind::Bytes | Kind::Array(_) if !flexible => 4,
        Kind::String | Kind::Bytes | Kind::Array(_) => 1,
        Kind::Struct(schema) => struct_min_size_bytes(schema, version, flexible),
    }
}

fn struct_min_size_bytes(schema: &Struct, version: i16, flexible: bool) -> usize {
    let fields: usize = schema
        .fields
        .iter()
        .filter(|field| field.versions.contains(version))
        .map(|field| min_size_bytes(&field.kind, version, flexible))
        .sum();
    fields + usize::from(flexible)
}

/// Calls `visit` with every array element kind reachable in `schema` at `version`.
fn visit_array_elements(schema: &Struct, version: i16, visit: &mut dyn FnMut(&str, &Kind)) {
    let fields = schema
        .fields
        .iter()
        .filter(|field| field.versions.contains(version))
        .map(|field| (field.name, &field.kind));
    let tagged = schema
        .tagged
        .iter()
        .filter(|tagged| tagged.versions.contains(version))
        .map(|tagged| (tagged.name, &tagged.kind));
    for (name, mut kind) in fields.chain(tagged) {
        while let Kind::Array(element) = kind {
            visit(name, element);
            kind = element;
        }
        if let Kind::Struct(inner) = kind {
            visit_array_elements(inner, version, visit);
        }
    }
}

#[test]
fn schemas_cover_the_apis_and_versions_kafka_protocol_decodes() {
    let covered: Vec<ApiKey> = ALL.iter().map(|message| message.api_key).collect();
    assert_eq!(
        covered, SAMPLED,
        "every schema has samples, in the same order"
    );
    assert_eq!(covered.len(), 52);
    for message in ALL {
        let decodable = decoder_versions(message.api_key);
        assert_eq!(
            (message.versions.min, message.versions.max),
            (decodable.min, decodable.max),
            "{:?}",
            message.api_key
        );
        for version in decodable.min..=decodable.max {
            // Flexible bodies go with request header v2; an independent source for the
            // compact/classic switch.
            let header_flexible = message.api_key.request_header_version(version) >= 2;
            assert_eq!(
                message.is_flexible(version),
                header_flexible,
                "{:?} v{version}",
                message.api_key
            );
        }
    }
}

#[test]
fn every_array_element_takes_at_least_one_byte() {
    for (message, version) in every_version() {
        let flexible = message.is_flexible(version);
        visit_array_elements(message.body, version, &mut |name, element| {
            let min = min_size_bytes(element, version, flexible);
            assert!(min >= 1, "{:?} v{version} {name}", message.api_key);
        });
    }
}

#[test]
fn api_without_schema_or_version_is_refused() {
    assert_eq!(
        check_request(ApiKey::CreateDelegationToken, 0, &[]),
        Err(BoundsError::NoSchema {
            api_key: ApiKey::CreateDelegationToken
        })
    );
    assert_eq!(
        check_request(ApiKey::Produce, 2, &[]),
        Err(BoundsError::UnsupportedVersion {
            api_key: ApiKey::Produce,
            version: 2
        })
    );
}

#[test]
fn given_the_frame_from_the_report_when_checked_should_refuse_the_count() {
    // Metadata v1: topics array, count 2^31 - 1, then nothing.
    let body = [0x7f, 0xff, 0xff, 0xff];
    assert_eq!(
        check_request(ApiKey::Metadata, 1, &body),
        Err(BoundsError::CountTooLarge {
            count: 0x7fff_ffff,
            at: 0,
            remaining_bytes: 0
        })
    );
    // Produce v9: null transactional id, acks, timeout, topic_data count 2^32 - 2.
    let body = [0, 0, 1, 0, 0, 0x75, 0x30, 0xff, 0xff, 0xff, 0xff, 0x0f, 0];
    assert!(matches!(
        check_request(ApiKey::Produce, 9, &body),
        Err(BoundsError::CountTooLarge { at: 7, .. })
    ));
}

#[test]
fn given_valid_requests_of_every_api_and_version_when_checked_should_accept() {
    let mut checked = 0;
    for (message, version) in every_version() {
        for body in valid_bodies(message, version) {
            assert_eq!(
                check_request(message.api_key, version, &body),
                Ok(()),
                "{:?} v{version} {body:?}",
                message.api_key
            );
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}

#[test]
fn given_random_valid_requests_when_checked_should_accept() {
    for (message, version) in every_version() {
        for seed in 0..60 {
            let seed = seed * 1000 + u64::from(version as u16);
            let mut g = Gen::new(seed, Shape::Random);
            let body = sample_body(message.api_key, version, &mut g);
            assert_eq!(
                check_request(message.api_key, version, &body),
                Ok(()),
                "{:?} v{version} seed {seed}",
                message.api_key
            );
        }
    }
}

#[test]
fn given_every_truncation_when_checked_should_agree_with_the_decoder() {
    for (message, version) in every_version() {
        for body in valid_bodies(message, version) {
            for length in 0..body.len() {
                let prefix = &body[..length];
                let checked = check_request(message.api_key, version, prefix);
                // Counts in a prefix are honest, so the decoder is safe to run on it.
                let decoded = decoder_accepts(message.api_key, version, prefix);
                assert_eq!(
                    checked.is_ok(),
                    decoded,
                    "{:?} v{version} prefix {length} of {}: {checked:?}",
                    message.api_key,
                    body.len()
                );
            }
        }
    }
}

/// `body` with the count at `at` replaced by the largest count its encoding can hold.
fn with_huge_count(body: &[u8], at: usize, flexible: bool) -> Vec<u8> {
    let mut patched = body[..at].to_vec();
    let rest = if flexible {
        let varint_bytes = body[at..].iter().take_while(|b| **b >= 0x80).count() + 1;
        patched.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        &body[at + varint_bytes..]
    } else {
        patched.extend_from_slice(&0x7fff_ffff_i32.to_be_bytes());
        &body[at + 4..]
    };
    patched.extend_from_slice(rest);
    patched
}

#[test]
fn given_a_huge_array_count_anywhere_when_checked_should_refuse_it() {
    let mut patched_count = 0;
    for (message, version) in every_version() {
        let flexible = message.is_flexible(version);
        for body in valid_bodies(message, version) {
            let offsets = walk::array_count_offsets(message, version, &body).unwrap();
            for at in offsets {
                let patched = with_huge_count(&body, at, flexible);
                let checked = check_request(message.api_key, version, &patched);
                assert!(
                    matches!(checked, Err(BoundsError::CountTooLarge { at: found, .. }) if found == at),
                    "{:?} v{version} count at {at}: {checked:?}",
                    message.api_key
                );
                patched_count += 1;
            }
        }
    }
    assert!(patched_count > 2000, "{patched_count}");
}

/// Hostile variants of a valid body: huge counts spliced in at every offset, and random
/// byte changes.
fn hostile_variants(body: &[u8], flexible: bool, rng: &mut StdRng) -> Vec<Vec<u8>> {
    let mut variants = Vec::new();
    for at in 0..body.len() {
        if flexible {
            let mut patched = body.to_vec();
            patched.splice(at..at + 1, [0xff, 0xff, 0xff, 0xff, 0x0f]);
            variants.push(patched);
        } else if at + 4 <= body.len() {
            let mut patched = body.to_vec();
            patched[at..at + 4].copy_from_slice(&0x7fff_ffff_i32.to_be_bytes());
            variants.push(patched);
        }
    }
    for _ in 0..40 {
        let mut mutated = body.to_vec();
        if mutated.is_empty() {
            break;
        }
        for _ in 0..rng.gen_range(1..=3) {
            let at = rng.gen_range(0..mutated.len());
            mutated[at] = rng.gen();
        }
        variants.push(mutated);
    }
    variants
}

#[test]
fn given_hostile_bodies_when_accepted_should_decode_within_bounds() {
    let mut rng = StdRng::seed_from_u64(0x5742_4f4d);
    let (mut accepted, mut refused) = (0, 0);
    for (message, version) in every_version() {
        let flexible = message.is_flexible(version);
        for body in valid_bodies(message, version).into_iter().take(3) {
            for hostile in hostile_variants(&body, flexible, &mut rng) {
                let checked = check_request(message.api_key, version, &hostile);
                // After any refusal but a count, the decoder fails at the same byte as the
                // walker (it reads in the same order), so it is safe to run. After a count
                // refusal it would go on reading elements the walker never checked.
                let decoder_is_safe = !matches!(checked, Err(BoundsError::CountTooLarge { .. }));
                if !decoder_is_safe {
                    refused += 1;
                    continue;
                }
                let (decoded, largest_allocation_bytes) = allocation::largest_during(|| {
                    decoder_accepts(message.api_key, version, &hostile)
                });
                let context = format!("{:?} v{version} {hostile:?}", message.api_key);
                if checked.is_ok() {
                    accepted += 1;
                    // Each element takes a byte of the body; none is larger than 1 KiB
                    // in memory.
                    let bound_bytes = hostile.len() * 1024 + 4096;
                    assert!(
                        largest_allocation_bytes <= bound_bytes,
                        "{context}: {largest_allocation_bytes} bytes allocated"
                    );
                } else {
                    refused += 1;
                    assert!(!decoded, "{context}: refused {checked:?}, decoder accepts");
                }
            }
        }
    }
    assert!(
        accepted > 10_000 && refused > 10_000,
        "{accepted} {refused}"
    );
}
