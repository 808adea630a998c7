"""The client-independent round-trip scenario: what to produce, and what must come back.

Every client driver (confluent_kafka, kafka-python, kafkajs) gets the same `Spec`, does
create-topic / produce / consume / offsets-for-times / delete-topic with its own API, and
returns a `Result` in one JSON-able shape; `check_result` then asserts the same outcomes
for all of them.
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import asdict, dataclass, field

from .murmur2 import java_partition

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PARTITIONS = 3
MESSAGE_COUNT = 40
TIMESTAMP_STEP_MS = 10

KEYS = [
    b"alpha",
    b"beta",
    b"gamma",
    b"\xff\xfe\x00\x80binary-key",
    b"user-42",
    b"\xc3\x28",  # invalid UTF-8
    b"k",
]
BINARY_VALUE = b"\x00\xff\xfe\x80" + bytes(range(256))
LARGE_VALUE = b"strom compresses this repetitive payload nicely. " * 400  # ~20 KB


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


@dataclass
class Message:
    key: bytes
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp_ms: int

    @property
    def id(self) -> int:
        assert self.headers[0][0] == "id"
        return int(self.headers[0][1])

    def to_json(self) -> dict:
        return {
            "key": b64(self.key),
            "value": b64(self.value),
            "headers": [[k, b64(v)] for k, v in self.headers],
            "timestamp": self.timestamp_ms,
        }


@dataclass
class Spec:
    topic: str
    partitions: int
    compression: str
    messages: list[Message]
    timestamp_queries: list[int]

    def to_json(self) -> dict:
        return {
            "topic": self.topic,
            "partitions": self.partitions,
            "compression": self.compression,
            "messages": [m.to_json() for m in self.messages],
            "timestamp_queries": self.timestamp_queries,
        }


def make_spec(client: str, compression: str) -> Spec:
    """Keyed messages, each with an `id` header first; repeated header keys kept adjacent
    (kafkajs folds repeated keys into one array, which keeps order only for adjacent ones)."""
    base_ms = (int(time.time() * 1000) - 3_600_000) // 1000 * 1000
    messages = []
    for i in range(MESSAGE_COUNT):
        headers: list[tuple[str, bytes]] = [("id", str(i).encode())]
        if i % 2 == 0:
            headers += [("dup", b"first"), ("dup", b"second"), ("dup", b"")]
        if i % 3 == 0:
            headers += [("bin", b"\xff\x00\x80\xfe")]
        if i == 3:
            value = None  # a tombstone
        elif i == 5:
            value = BINARY_VALUE
        elif i == 7:
            value = LARGE_VALUE
        elif i == 9:
            value = b""
        else:
            value = b"value-%d" % i
        messages.append(Message(KEYS[i % len(KEYS)], value, headers, base_ms + i * TIMESTAMP_STEP_MS))
    queries = [
        base_ms,  # every partition's first offset
        base_ms + (MESSAGE_COUNT // 2) * TIMESTAMP_STEP_MS + 1,  # between two records
        base_ms + (MESSAGE_COUNT - 1) * TIMESTAMP_STEP_MS,  # exactly the last record
        base_ms + MESSAGE_COUNT * TIMESTAMP_STEP_MS + 60_000,  # after everything: no offset
    ]
    topic = f"compat-{client}-{compression}-{uuid.uuid4().hex[:8]}"
    return Spec(topic, PARTITIONS, compression, messages, queries)


@dataclass
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    timestamp_ms: int

    @staticmethod
    def from_json(obj: dict) -> "Record":
        return Record(
            int(obj["partition"]),
            int(obj["offset"]),
            unb64(obj["key"]),
            unb64(obj["value"]),
            [(k, unb64(v)) for k, v in obj["headers"]],
            int(obj["timestamp"]),
        )


@dataclass
class Result:
    """What a driver observed. `delivered` maps message id -> [partition, offset] when the
    client reports per-message offsets (kafkajs reports per-batch base offsets instead).
    `offsets_for_times` is a list of [timestamp, partition, offset-or-None]."""

    created_partitions: int
    consumed: list[Record]
    delivered: dict[int, tuple[int, int]] | None
    offsets_for_times: list[tuple[int, int, int | None]]
    topic_gone_after_delete: bool
    notes: list[str] = field(default_factory=list)

    @staticmethod
    def from_json(obj: dict) -> "Result":
        delivered = obj.get("delivered")
        return Result(
            int(obj["created_partitions"]),
            [Record.from_json(r) for r in obj["consumed"]],
            None if delivered is None else {int(k): tuple(v) for k, v in delivered.items()},
            [(int(t), int(p), None if o is None else int(o)) for t, p, o in obj["offsets_for_times"]],
            bool(obj["topic_gone_after_delete"]),
            list(obj.get("notes", [])),
        )


def check_result(spec: Spec, result: Result, java_murmur2: bool) -> None:
    """Assert everything a user of any client cares about. Independent checks all run, and
    one AssertionError lists every one that failed, so one run shows the whole picture."""
    assert result.created_partitions == spec.partitions, (
        f"topic created with {spec.partitions} partitions, metadata shows {result.created_partitions}"
    )
    by_id: dict[int, Record] = {}
    for record in result.consumed:
        assert record.headers and record.headers[0][0] == "id", f"record without id header: {record}"
        message_id = int(record.headers[0][1])
        assert message_id not in by_id, (
            f"message {message_id} consumed twice: at {by_id[message_id].partition}/"
            f"{by_id[message_id].offset} and {record.partition}/{record.offset}"
        )
        by_id[message_id] = record
    missing = sorted(m.id for m in spec.messages if m.id not in by_id)
    assert not missing, f"messages never consumed: {missing} (consumed {len(by_id)} of {len(spec.messages)})"
    per_partition: dict[int, list[Record]] = {}
    for record in result.consumed:
        per_partition.setdefault(record.partition, []).append(record)

    failures: list[str] = []
    for name, check in [
        ("bytes back equal bytes in", lambda: _check_bytes(spec, result, by_id)),
        ("order per partition", lambda: _check_order(spec, per_partition)),
        ("key placement", lambda: _check_placement(spec, by_id, java_murmur2)),
        ("ListOffsets by timestamp", lambda: _check_offsets_for_times(spec, result, per_partition)),
        ("DeleteTopics", lambda: _check_deleted(spec, result)),
    ]:
        try:
            check()
        except AssertionError as error:
            failures.append(f"[{name}] {error}")
    assert not failures, "\n".join(failures)


def _check_bytes(spec: Spec, result: Result, by_id: dict[int, Record]) -> None:
    for message in spec.messages:
        record = by_id[message.id]
        where = f"message {message.id} at partition {record.partition} offset {record.offset}"
        assert record.key == message.key, f"{where}: key {record.key!r} != produced {message.key!r}"
        assert record.value == message.value, (
            f"{where}: value {record.value!r:.80} != produced {message.value!r:.80}"
        )
        assert record.headers == message.headers, (
            f"{where}: headers {record.headers} != produced {message.headers}"
        )
        assert record.timestamp_ms == message.timestamp_ms, (
            f"{where}: timestamp {record.timestamp_ms} != produced CreateTime {message.timestamp_ms}"
        )
        if result.delivered is not None:
            assert tuple(result.delivered[message.id]) == (record.partition, record.offset), (
                f"{where}: producer was told {result.delivered[message.id]}"
            )


def _check_order(spec: Spec, per_partition: dict[int, list[Record]]) -> None:
    """Offsets contiguous from 0 and in production order."""
    for partition, records in per_partition.items():
        assert 0 <= partition < spec.partitions, f"record from partition {partition}"
        offsets = [r.offset for r in records]
        assert offsets == list(range(len(records))), (
            f"partition {partition}: consumed offsets {offsets}, expected 0..{len(records) - 1} in order"
        )
        ids = [int(r.headers[0][1]) for r in records]
        assert ids == sorted(ids), f"partition {partition}: production order broken, ids in offset order {ids}"


def _check_placement(spec: Spec, by_id: dict[int, Record], java_murmur2: bool) -> None:
    """Same key -> same partition; Java's murmur2 where the client claims it."""
    partition_of_key: dict[bytes, int] = {}
    for message in spec.messages:
        partition = by_id[message.id].partition
        previous = partition_of_key.setdefault(message.key, partition)
        assert previous == partition, f"key {message.key!r} landed on partitions {previous} and {partition}"
    if java_murmur2:
        for key, partition in partition_of_key.items():
            expected = java_partition(key, spec.partitions)
            assert partition == expected, (
                f"key {key!r} on partition {partition}, Java's murmur2 partitioner says {expected}"
            )


def _check_offsets_for_times(spec: Spec, result: Result, per_partition: dict[int, list[Record]]) -> None:
    """The first offset whose timestamp is >= the query (record-exact, not batch-exact)."""
    wrong = []
    for timestamp, partition, offset in result.offsets_for_times:
        records = per_partition.get(partition, [])
        expected = next((r.offset for r in records if r.timestamp_ms >= timestamp), None)
        if expected is None:
            # Kafka answers -1 (clients: None / OFFSET_END); kafkajs substitutes the high watermark.
            if offset not in (None, len(records)):
                wrong.append(f"partition {partition} ts {timestamp}: got {offset}, expected none "
                             f"(no record at/after it; end offset {len(records)})")
        elif offset != expected:
            wrong.append(f"partition {partition} ts {timestamp}: got {offset}, expected {expected}")
    queried = {(t, p) for t, p, _ in result.offsets_for_times}
    expected_queries = {(t, p) for t in spec.timestamp_queries for p in range(spec.partitions)}
    if queried != expected_queries:
        wrong.append(f"answered {sorted(queried)}, asked {sorted(expected_queries)}")
    base = spec.messages[0].timestamp_ms
    assert not wrong, (
        f"offsets_for_times wrong for {len(wrong)} of {len(expected_queries)} queries "
        f"(record timestamps are {base} + 10 ms * message id):\n  " + "\n  ".join(wrong)
    )


def _check_deleted(spec: Spec, result: Result) -> None:
    assert result.topic_gone_after_delete, f"topic {spec.topic} still in metadata 30 s after DeleteTopics"


def result_to_json(result: Result) -> dict:
    obj = asdict(result)
    obj["consumed"] = [
        {
            "partition": r.partition,
            "offset": r.offset,
            "key": b64(r.key),
            "value": b64(r.value),
            "headers": [[k, b64(v)] for k, v in r.headers],
            "timestamp": r.timestamp_ms,
        }
        for r in result.consumed
    ]
    return obj
