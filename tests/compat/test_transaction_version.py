"""Transaction version 2 advertised, old clients unharmed.

Strom finalizes `transaction.version` 2 in ApiVersions v3+ (KIP-890 part 2; the Java 4.x
producer then uses EndTxn v5 and Produce v12, see tests/java TransactionsV2Test). librdkafka
does not know the feature: it keeps transaction version 1 (AddPartitionsToTxn, EndTxn v1, one
epoch for all transactions). Debian's kcat (librdkafka 2.0) skips one byte too few per tagged
field (fixed in librdkafka 2.2); in ApiVersions the tags end the body, so it survives them, as
it survives Apache Kafka 4.4's (which sends the same three tags, checked by hand; see README).
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from strom_compat import kafka_wire
from strom_compat.confluent_driver import create_topic

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
WAIT_S = 30.0
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def module_broker(request, strom_bin):
    from strom_compat.broker import Broker

    broker = Broker("transaction-version", {
        "transaction.state.log.num.partitions": "3",
        "offsets.topic.num.partitions": "3",
    })
    broker.start()
    yield broker
    broker.close()


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(data):
            raise IndexError("uvarint past the end")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def api_versions_v3(bootstrap: str) -> tuple[dict[int, tuple[int, int]], bytes]:
    """Raw ApiVersions v3 as librdkafka sends it: (api key -> (min, max), the tag section)."""
    host, port = bootstrap.rsplit(":", 1)
    name, version = b"librdkafka", b"2.0.2"
    body = bytes([len(name) + 1]) + name + bytes([len(version) + 1]) + version + b"\x00"
    header = struct.pack(">hhih", 18, 3, 7, 5) + b"probe" + b"\x00"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        frame = header + body
        sock.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", _recv(sock, 4))[0]
        data = _recv(sock, size)
    assert struct.unpack_from(">i", data, 0)[0] == 7, "correlation id"
    assert struct.unpack_from(">h", data, 4)[0] == 0, "error code"
    count, pos = _uvarint(data, 6)
    keys = {}
    for _ in range(count - 1):
        key, low, high = struct.unpack_from(">hhh", data, pos)
        keys[key] = (low, high)
        _, pos = _uvarint(data, pos + 6)
    pos += 4  # throttle_time_ms
    return keys, data[pos:]


def _recv(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, "broker closed the connection"
        out += chunk
    return out


def finalized_features(tags: bytes) -> dict[str, tuple[int, int]]:
    """Tag 2 of ApiVersionsResponse: name -> (min level, max level)."""
    count, pos = _uvarint(tags, 0)
    out = {}
    for _ in range(count):
        tag, pos = _uvarint(tags, pos)
        size, pos = _uvarint(tags, pos)
        value = tags[pos:pos + size]
        pos += size
        if tag != 2:
            continue
        entries, at = _uvarint(value, 0)
        for _ in range(entries - 1):
            length, at = _uvarint(value, at)
            name = value[at:at + length - 1].decode()
            at += length - 1
            max_level, min_level = struct.unpack_from(">hh", value, at)
            _, at = _uvarint(value, at + 4)
            out[name] = (min_level, max_level)
    assert pos == len(tags), "the tag section ends the response"
    return out


def old_librdkafka_skip_ok(tags: bytes) -> bool:
    """librdkafka < 2.2's rd_kafka_buf_skip_tags: skips length - 1 bytes per tag. A read past
    the end fails its ApiVersions parse (and the connection)."""
    try:
        count, pos = _uvarint(tags, 0)
        for _ in range(count):
            _, pos = _uvarint(tags, pos)
            size, pos = _uvarint(tags, pos)
            pos += max(size - 1, 0)
            if pos > len(tags):
                return False
    except IndexError:
        return False
    return True


def test_broker_finalizes_transaction_version_2_in_a_layout_librdkafka_2_0_survives(broker):
    keys, tags = api_versions_v3(broker.bootstrap)
    assert keys[26] == (0, 5), "EndTxn v5 served"
    assert keys[0][1] >= 12, "Produce v12 served"
    assert finalized_features(tags) == {"transaction.version": (2, 2)}
    assert old_librdkafka_skip_ok(tags), tags.hex()


def kcat(broker, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    cmd = [KCAT, "-b", broker.bootstrap, "-m", "15", *args]
    completed = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert completed.returncode == 0, (
        f"`{' '.join(cmd)}` exited {completed.returncode}\n--- stderr ---\n{completed.stderr[-3000:]}"
    )
    return completed


@pytest.mark.skipif(KCAT is None, reason="kcat is not installed (scripts/test installs it)")
def test_kcat_lists_produces_and_consumes_with_transaction_version_2_advertised(broker):
    assert "transaction.version" in finalized_features(api_versions_v3(broker.bootstrap)[1])
    listing = kcat(broker, "-L").stdout
    assert f"at {broker.bootstrap}" in listing, listing
    topic = f"tv-kcat-{uuid.uuid4().hex[:8]}"
    lines = [f"k{i}:v{i}" for i in range(10)]
    kcat(broker, "-P", "-t", topic, "-K", ":", stdin="\n".join(lines) + "\n")
    out = kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%o|%k|%s\n").stdout
    assert out.splitlines() == [f"{i}|k{i}|v{i}" for i in range(10)], out


def marker_epochs(broker, topic: str) -> tuple[list[int], list[int]]:
    """(producer epochs of the data batches, of the control batches) of partition 0."""
    host, port = broker.bootstrap.rsplit(":", 1)
    with kafka_wire.Connection(host, int(port)) as conn:
        part = kafka_wire.fetch(conn, 11, topic, 0, 0, 0, 0)
    data, control = [], []
    records = part.records or b""
    pos = 0
    while pos + 61 <= len(records):
        (batch_length,) = struct.unpack_from(">i", records, pos + 8)
        (attributes,) = struct.unpack_from(">h", records, pos + 21)
        (epoch,) = struct.unpack_from(">h", records, pos + 51)
        (control if attributes & 0x20 else data).append(epoch)
        pos += 12 + batch_length
    return data, control


def test_confluent_kafka_transactions_keep_version_1_and_read_committed_sees_the_committed(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = f"tv-rdkafka-{uuid.uuid4().hex[:8]}"
    assert create_topic(admin, topic, 1) == 1
    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "transactional.id": f"tv-{uuid.uuid4().hex[:8]}",
        "linger.ms": 5,
    })
    producer.init_transactions(WAIT_S)
    expected = []
    for t, commit in enumerate([True, False, True, False, True]):
        producer.begin_transaction()
        for i in range(3):
            producer.produce(topic, value=f"t{t}-{i}".encode(), partition=0)
        if commit:
            producer.commit_transaction(WAIT_S)
            expected += [f"t{t}-{i}" for i in range(3)]
        else:
            producer.flush(WAIT_S)
            producer.abort_transaction(WAIT_S)
    # Plain produce on the same client library still works beside it.
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce(topic, value=b"plain", partition=0)
    assert plain.flush(WAIT_S) == 0
    expected.append("plain")

    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": f"tv-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
    })
    got = []
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                if len(got) >= len(expected):
                    break
                continue
            got.append(msg.value().decode())
    finally:
        consumer.close()
    assert got == expected

    data, control = marker_epochs(broker, topic)
    assert len(control) == 5, "one marker per transaction"
    epochs = set(data[:-1]) | set(control)
    assert len(epochs) == 1, (
        f"librdkafka uses transaction version 1: one epoch for all its transactions, got {epochs}"
    )
