"""Java Kafka's default partitioner hash (org.apache.kafka.common.utils.Utils.murmur2)."""

from __future__ import annotations

MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """32-bit murmur2 with Kafka's seed, as a signed Java int."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    h = (seed ^ length) & MASK32
    length4 = length // 4
    for i in range(length4):
        i4 = i * 4
        k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24)
        k = (k * m) & MASK32
        k ^= k >> r  # Java's >>> on an int: k is already unsigned here
        k = (k * m) & MASK32
        h = (h * m) & MASK32
        h ^= k
    tail = length4 * 4
    remaining = length % 4
    if remaining == 3:
        h ^= data[tail + 2] << 16
    if remaining >= 2:
        h ^= data[tail + 1] << 8
    if remaining >= 1:
        h ^= data[tail]
        h = (h * m) & MASK32
    h ^= h >> 13
    h = (h * m) & MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    """`Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions`."""
    assert partitions > 0
    return (murmur2(key) & 0x7FFFFFFF) % partitions
