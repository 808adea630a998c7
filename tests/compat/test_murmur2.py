"""The test's own murmur2 must match Java's, or the placement checks prove nothing."""

from strom_compat.murmur2 import java_partition, murmur2


def test_murmur2_matches_java_reference_values():
    # Values from Kafka's UtilsTest.testMurmur2 (org.apache.kafka.common.utils).
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        bytes([ord("a"), ord("b"), ord("c")]): 479470107,
    }
    for key, expected in cases.items():
        assert murmur2(key) == expected, key


def test_java_partition_is_positive_modulo():
    for key in (b"", b"x", b"\xff\xfe\x00", b"key-1234567"):
        assert 0 <= java_partition(key, 3) < 3
