"""kcat from Debian (1.7.1 on librdkafka 2.0.2, older than the wheel's): it mis-skips tagged
fields that hold their default value, so it catches a broker that sends them."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
TIMEOUT_S = 60

pytestmark = pytest.mark.skipif(
    KCAT is None, reason="kcat is not installed (Debian package `kcat`; scripts/test installs it)"
)


def kcat(broker, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    cmd = [KCAT, "-b", broker.bootstrap, "-m", "15", *args]
    completed = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert completed.returncode == 0, (
        f"`{' '.join(cmd)}` exited {completed.returncode}\n--- stderr ---\n{completed.stderr[-3000:]}"
        f"\n--- stdout ---\n{completed.stdout[-1000:]}"
    )
    return completed


def test_kcat_metadata_lists_the_broker(broker):
    out = kcat(broker, "-L").stdout
    assert "1 brokers:" in out, out
    assert f"at {broker.bootstrap}" in out, f"broker not advertised as {broker.bootstrap}:\n{out}"


def test_kcat_produce_then_consume_round_trips_keys_values_headers(broker):
    topic = f"kcat-{uuid.uuid4().hex[:8]}"
    lines = [f"key-{i}:value-{i}" for i in range(20)]
    # -P auto-creates the topic (auto.create.topics.enable=true, num.partitions=1).
    kcat(broker, "-P", "-t", topic, "-K", ":", "-H", "origin=kcat", "-H", "origin=again", "-z", "snappy",
         stdin="\n".join(lines) + "\n")
    out = kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
               "-f", "%p|%o|%k|%s|%h\n").stdout
    got = [line.split("|") for line in out.splitlines() if line]
    expected = [["0", str(i), f"key-{i}", f"value-{i}", "origin=kcat,origin=again"] for i in range(20)]
    assert got == expected, f"kcat read back:\n{out}"

    listing = kcat(broker, "-L", "-t", topic).stdout
    assert f'topic "{topic}" with 1 partitions' in listing, listing
