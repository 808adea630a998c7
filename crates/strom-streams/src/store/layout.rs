//! Key layouts of window, session and join stores over a byte-ordered store.
//!
//! Timestamps are written as 8 big-endian bytes with the sign bit flipped, so byte order is
//! time order. A user key is prefixed with its 4-byte length so that one key's entries are
//! one contiguous range even when another key has it as a prefix.

/// Time as order-preserving bytes.
pub fn time_bytes(timestamp_ms: i64) -> [u8; 8] {
    ((timestamp_ms as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn time_from(bytes: &[u8]) -> Option<i64> {
    let array: [u8; 8] = bytes.try_into().ok()?;
    Some((u64::from_be_bytes(array) ^ (1 << 63)) as i64)
}

/// `len(key) ++ key`: the prefix of all of one key's entries.
pub fn key_prefix(key: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4 + key.len() + 16);
    bytes.extend_from_slice(&(key.len() as u32).to_be_bytes());
    bytes.extend_from_slice(key);
    bytes
}

/// `len(key) ++ key ++ time`: a window store key (window start, or record time).
pub fn keyed_time(key: &[u8], timestamp_ms: i64) -> Vec<u8> {
    let mut bytes = key_prefix(key);
    bytes.extend_from_slice(&time_bytes(timestamp_ms));
    bytes
}

/// `len(key) ++ key ++ end ++ start`: a session store key.
pub fn keyed_session(key: &[u8], start_ms: i64, end_ms: i64) -> Vec<u8> {
    let mut bytes = key_prefix(key);
    bytes.extend_from_slice(&time_bytes(end_ms));
    bytes.extend_from_slice(&time_bytes(start_ms));
    bytes
}

/// `time ++ len(key) ++ key`: join buffers, swept in time order.
pub fn time_keyed(timestamp_ms: i64, key: &[u8]) -> Vec<u8> {
    let mut bytes = time_bytes(timestamp_ms).to_vec();
    bytes.extend_from_slice(&(key.len() as u32).to_be_bytes());
    bytes.extend_from_slice(key);
    bytes
}

/// Split a `time_keyed` key into (time, key).
pub fn split_time_keyed(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let time = time_from(bytes.get(..8)?)?;
    let length = u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?) as usize;
    Some((time, bytes.get(12..12 + length)?))
}

/// The bound just after every key starting with `prefix` (exclusive end of a prefix scan).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

/// Several values in one store entry: each a 4-byte length then its bytes.
pub fn encode_list(values: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for value in values {
        bytes.extend_from_slice(&(value.len() as u32).to_be_bytes());
        bytes.extend_from_slice(value);
    }
    bytes
}

/// The values of an `encode_list` entry; a truncated tail is ignored.
pub fn decode_list(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut values = Vec::new();
    while bytes.len() >= 4 {
        let length = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let Some(value) = bytes.get(4..4 + length) else {
            break;
        };
        values.push(value.to_vec());
        bytes = &bytes[4 + length..];
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_times_when_encoded_should_sort_in_time_order() {
        let times = [i64::MIN, -5, -1, 0, 1, 1000, i64::MAX];
        for pair in times.windows(2) {
            assert!(time_bytes(pair[0]) < time_bytes(pair[1]));
            assert_eq!(time_from(&time_bytes(pair[0])), Some(pair[0]));
        }
    }

    #[test]
    fn given_keys_sharing_a_prefix_should_keep_separate_ranges() {
        let a = keyed_time(b"ab", 5);
        let b = keyed_time(b"abc", 1);
        let prefix = key_prefix(b"ab");
        assert!(a.starts_with(&prefix) && !b.starts_with(&prefix));
        assert_eq!(
            split_time_keyed(&time_keyed(9, b"k")),
            Some((9, b"k".as_slice()))
        );
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
    }

    #[test]
    fn given_a_list_should_round_trip_and_survive_truncation() {
        let list = vec![b"x".to_vec(), vec![], b"yz".to_vec()];
        let bytes = encode_list(&list);
        assert_eq!(decode_list(&bytes), list);
        assert_eq!(decode_list(&bytes[..bytes.len() - 1]).len(), 2);
    }
}
