"""kafka-producer-perf-test and kafka-consumer-perf-test with small bounded record counts:
every record sent is acknowledged, and the consumer reads exactly as many back."""

from __future__ import annotations

import re

from tool import offsets, out

RECORDS = 5000
RECORD_BYTES = 200


def test_producer_then_consumer_perf(broker):
    b = broker.bootstrap
    topic = "tools-perf"
    out("kafka-topics", "--bootstrap-server", b, "--create", "--topic", topic, "--partitions", "3")
    produced = out("kafka-producer-perf-test", "--bootstrap-server", b, "--topic", topic,
                   "--num-records", str(RECORDS), "--record-size", str(RECORD_BYTES), "--throughput", "-1",
                   "--command-property", "acks=all", "--command-property", "linger.ms=5", timeout=180)
    final = re.search(r"^(\d+) records sent, [\d.]+ records/sec \(([\d.]+) MB/sec\), [\d.]+ ms avg latency",
                      produced, re.M)
    assert final, produced
    assert int(final.group(1)) == RECORDS
    ends = offsets(out("kafka-get-offsets", "--bootstrap-server", b, "--topic", topic))
    assert sum(ends.values()) == RECORDS and len(ends) == 3, ends

    consumed = out("kafka-consumer-perf-test", "--bootstrap-server", b, "--topic", topic,
                   "--num-records", str(RECORDS), "--timeout", "60000", timeout=180)
    lines = consumed.strip().splitlines()
    header = [h.strip() for h in lines[-2].split(",")]
    values = [v.strip() for v in lines[-1].split(",")]
    stats = dict(zip(header, values))
    assert int(stats["data.consumed.in.nMsg"]) == RECORDS, consumed
    assert abs(float(stats["data.consumed.in.MB"]) - RECORDS * RECORD_BYTES / 1024 / 1024) < 0.001, stats
