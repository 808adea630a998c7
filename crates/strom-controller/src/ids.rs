//! Where new identifiers come from: injected so tests and simulations are deterministic.

use uuid::Uuid;

/// Bounded retries when a generated uuid is one Kafka reserves; a generator that keeps
/// producing reserved ids is broken.
const RESERVED_ID_RETRIES_MAX: usize = 100;

/// Source of fresh uuids (topic ids, the cluster id).
pub trait IdGenerator: Send {
    fn next_uuid(&mut self) -> Uuid;
}

/// Random (v4) uuids: what a running cluster uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn next_uuid(&mut self) -> Uuid {
        Uuid::new_v4()
    }
}

/// Deterministic uuids for tests: 1, 2, 3, ... mixed through a fixed multiplier so they
/// look unlike each other. The same `seed` gives the same sequence.
#[derive(Debug, Clone)]
pub struct SeededIds {
    state: u128,
}

impl SeededIds {
    pub fn new(seed: u64) -> Self {
        Self {
            state: u128::from(seed),
        }
    }
}

impl IdGenerator for SeededIds {
    fn next_uuid(&mut self) -> Uuid {
        self.state = self.state.wrapping_add(1);
        // An odd 128-bit multiplier is a bijection: distinct states give distinct ids.
        let mixed = self
            .state
            .wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        Uuid::from_u128(mixed)
    }
}

/// A uuid Kafka would accept as a topic or cluster id: not the zero uuid, not the
/// metadata topic's reserved id (1), and its base64url text does not start with '-'
/// (Kafka's `Uuid.randomUuid` rules; a leading '-' reads as a CLI flag).
pub(crate) fn next_kafka_uuid(ids: &mut dyn IdGenerator) -> Uuid {
    for _ in 0..RESERVED_ID_RETRIES_MAX {
        let id = ids.next_uuid();
        if id.as_u128() > 1 && !base64url(id.as_bytes()).starts_with('-') {
            return id;
        }
    }
    panic!("id generator produced {RESERVED_ID_RETRIES_MAX} reserved uuids in a row");
}

/// A new cluster id: 22-character unpadded base64url of a random uuid, like Kafka's
/// `kafka-storage random-uuid`.
pub(crate) fn new_cluster_id(ids: &mut dyn IdGenerator) -> String {
    let cluster_id = base64url(next_kafka_uuid(ids).as_bytes());
    assert_eq!(cluster_id.len(), 22);
    cluster_id
}

/// Unpadded base64url (RFC 4648 §5); 16 bytes give 22 characters.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars_in_chunk = chunk.len() + 1;
        for i in 0..chars_in_chunk {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_known_bytes_when_base64url_encoded_should_match_rfc4648_vectors() {
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn given_seeded_ids_when_cluster_id_generated_should_be_22_url_safe_chars_and_repeatable() {
        let first = new_cluster_id(&mut SeededIds::new(7));
        let again = new_cluster_id(&mut SeededIds::new(7));
        assert_eq!(first, again);
        assert_eq!(first.len(), 22);
        assert!(first
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert!(!first.starts_with('-'));
    }

    struct Scripted(Vec<Uuid>);
    impl IdGenerator for Scripted {
        fn next_uuid(&mut self) -> Uuid {
            self.0.remove(0)
        }
    }

    #[test]
    fn given_reserved_uuids_when_generating_should_skip_them() {
        let good = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let leading_dash = Uuid::from_bytes([0xf8; 16]); // base64url starts with '-'
        assert!(base64url(leading_dash.as_bytes()).starts_with('-'));
        let mut ids = Scripted(vec![Uuid::nil(), Uuid::from_u128(1), leading_dash, good]);
        assert_eq!(next_kafka_uuid(&mut ids), good);
    }
}
