//! Choosing a partition for a record, compatible with Kafka's Java client.
//!
//! Keyed records go to `(murmur2(key) & 0x7fffffff) % partitions`, exactly as Java's
//! `BuiltInPartitioner.partitionForKey`, so a key lands on the same partition whichever
//! client wrote it. Records without a key stick to one partition until its batch is full
//! or a batch's worth of bytes went to it, then move on (Java's sticky partitioner,
//! KIP-480 and KIP-794), or rotate per record (round robin).

use std::collections::HashMap;

/// Kafka's `Utils.murmur2`: MurmurHash2, 32-bit, seed `0x9747b28c`, little-endian words.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    // Java's switch falls through from 3 to 2 to 1.
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`.
pub fn to_positive(value: i32) -> i32 {
    value & 0x7fff_ffff
}

/// The partition Java's default partitioner picks for a keyed record.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    to_positive(murmur2(key)) % partitions
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartitionerKind {
    /// murmur2 for keyed records, sticky for records without a key (Java's default).
    #[default]
    Default,
    /// murmur2 for keyed records, one partition after another for the rest.
    RoundRobin,
}

/// Per-topic partitioner state. Not thread-safe on its own; the producer holds it under
/// its lock.
#[derive(Debug)]
pub struct Partitioner {
    kind: PartitionerKind,
    sticky: HashMap<String, i32>,
    /// Bytes sent to the current sticky partition of each topic.
    sticky_bytes: HashMap<String, usize>,
    sticky_bytes_max: usize,
    round_robin: HashMap<String, u32>,
    rng: rand::rngs::StdRng,
}

impl Partitioner {
    pub fn new(kind: PartitionerKind, seed: u64) -> Self {
        use rand::SeedableRng;
        Partitioner {
            kind,
            sticky: HashMap::new(),
            sticky_bytes: HashMap::new(),
            sticky_bytes_max: 16 * 1024,
            round_robin: HashMap::new(),
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        }
    }

    pub fn partition(&mut self, topic: &str, key: Option<&[u8]>, partitions: i32) -> i32 {
        assert!(partitions > 0, "a topic has at least one partition");
        if let Some(key) = key {
            return partition_for_key(key, partitions);
        }
        match self.kind {
            PartitionerKind::Default => {
                if let Some(&current) = self.sticky.get(topic) {
                    if current < partitions {
                        return current;
                    }
                }
                let chosen = self.random_partition(partitions, None);
                self.sticky.insert(topic.to_string(), chosen);
                chosen
            }
            PartitionerKind::RoundRobin => {
                let counter = self.round_robin.entry(topic.to_string()).or_insert(0);
                let chosen = (*counter % partitions as u32) as i32;
                *counter = counter.wrapping_add(1);
                chosen
            }
        }
    }

    /// Keyless records move on after this many bytes went to one partition (the
    /// producer's batch size), even when batches close by linger before filling.
    pub fn with_sticky_bytes_max(mut self, bytes: usize) -> Self {
        self.sticky_bytes_max = bytes.max(1);
        self
    }

    /// Counts a keyless record's bytes against its sticky partition.
    pub fn on_keyless_appended(
        &mut self,
        topic: &str,
        partition: i32,
        bytes: usize,
        partitions: i32,
    ) {
        if self.kind != PartitionerKind::Default || self.sticky.get(topic) != Some(&partition) {
            return;
        }
        let total = self.sticky_bytes.entry(topic.to_string()).or_insert(0);
        *total += bytes;
        if *total >= self.sticky_bytes_max {
            self.on_batch_closed(topic, partition, partitions);
        }
    }

    /// Called when the batch of the sticky partition of `topic` was closed: the next
    /// keyless record goes to another partition.
    pub fn on_batch_closed(&mut self, topic: &str, closed_partition: i32, partitions: i32) {
        if self.kind != PartitionerKind::Default || partitions <= 0 {
            return;
        }
        if self.sticky.get(topic) == Some(&closed_partition) {
            let next = self.random_partition(partitions, Some(closed_partition));
            self.sticky.insert(topic.to_string(), next);
            self.sticky_bytes.remove(topic);
        }
    }

    fn random_partition(&mut self, partitions: i32, avoid: Option<i32>) -> i32 {
        use rand::Rng;
        if partitions == 1 {
            return 0;
        }
        loop {
            let candidate = self.rng.gen_range(0..partitions);
            if Some(candidate) != avoid {
                return candidate;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_kafka_utils_test_vectors_when_hashed_should_match_java() {
        // UtilsTest.testMurmur2 in Apache Kafka's clients module.
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
            // Not in UtilsTest; the value other Java-compatible ports pin.
            (b"", 275_646_681),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                *expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn given_key_when_partitioned_should_equal_positive_murmur2_modulo() {
        let mut partitioner = Partitioner::new(PartitionerKind::Default, 1);
        for partitions in [1, 3, 7, 16] {
            for key in ["21", "foobar", "abc", "user-42"] {
                let expected = (murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions;
                assert_eq!(
                    partitioner.partition("t", Some(key.as_bytes()), partitions),
                    expected
                );
            }
        }
        // "21" hashes negative: the sign bit is masked, not abs()'d.
        assert_eq!(
            partition_for_key(b"21", 16),
            (-973_932_308i32 & 0x7fff_ffff) % 16
        );
    }

    #[test]
    fn given_no_key_when_sticky_should_stay_until_batch_closed_then_move() {
        let mut partitioner = Partitioner::new(PartitionerKind::Default, 7);
        let first = partitioner.partition("t", None, 4);
        for _ in 0..100 {
            assert_eq!(partitioner.partition("t", None, 4), first);
        }
        partitioner.on_batch_closed("t", first, 4);
        let second = partitioner.partition("t", None, 4);
        assert_ne!(second, first);
        // Closing a batch of another partition does not move the sticky choice.
        partitioner.on_batch_closed("t", (second + 1) % 4, 4);
        assert_eq!(partitioner.partition("t", None, 4), second);
    }

    #[test]
    fn given_no_key_when_a_batch_worth_of_bytes_sent_should_move_on() {
        let mut partitioner =
            Partitioner::new(PartitionerKind::Default, 3).with_sticky_bytes_max(100);
        let first = partitioner.partition("t", None, 3);
        partitioner.on_keyless_appended("t", first, 60, 3);
        assert_eq!(partitioner.partition("t", None, 3), first);
        partitioner.on_keyless_appended("t", first, 60, 3);
        let second = partitioner.partition("t", None, 3);
        assert_ne!(second, first);
        partitioner.on_keyless_appended("t", second, 99, 3);
        assert_eq!(
            partitioner.partition("t", None, 3),
            second,
            "count restarted"
        );
    }

    #[test]
    fn given_no_key_when_round_robin_should_cycle_all_partitions() {
        let mut partitioner = Partitioner::new(PartitionerKind::RoundRobin, 0);
        let chosen: Vec<i32> = (0..6)
            .map(|_| partitioner.partition("t", None, 3))
            .collect();
        assert_eq!(chosen, vec![0, 1, 2, 0, 1, 2]);
    }
}
