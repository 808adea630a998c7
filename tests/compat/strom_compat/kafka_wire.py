"""A minimal hand-written Kafka wire client for the tests no library exposes (raw long-poll
Fetch, batch headers). Non-flexible versions only: ApiVersions v0 and Fetch v4..v11.

Written from the protocol spec, independent of the broker's own codec, on purpose.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

API_FETCH = 1
API_VERSIONS = 18
CLIENT_ID = b"strom-compat-raw"


class WireError(Exception):
    pass


def _string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise WireError(f"truncated response: need {n} bytes at {self.pos}, have {len(self.data)}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def i8(self) -> int:
        return struct.unpack(">b", self.take(1))[0]

    def i16(self) -> int:
        return struct.unpack(">h", self.take(2))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def i64(self) -> int:
        return struct.unpack(">q", self.take(8))[0]

    def string(self) -> str | None:
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def nullable_bytes(self) -> bytes | None:
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array_len(self) -> int:
        n = self.i32()
        if n > len(self.data) - self.pos:
            raise WireError(f"array length {n} larger than the remaining response")
        return n


class Connection:
    """One TCP connection speaking request header v1 / response header v0."""

    def __init__(self, host: str, port: int, timeout_s: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.correlation_id = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, api_key: int, api_version: int, body: bytes) -> int:
        self.correlation_id += 1
        header = struct.pack(">hhi", api_key, api_version, self.correlation_id)
        header += struct.pack(">h", len(CLIENT_ID)) + CLIENT_ID
        frame = header + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        return self.correlation_id

    def _read_exact(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.sock.recv(min(n, 1 << 20))
            if not chunk:
                raise WireError("connection closed by the broker")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def receive(self, correlation_id: int) -> Reader:
        (size,) = struct.unpack(">i", self._read_exact(4))
        if size < 4 or size > 64 << 20:
            raise WireError(f"implausible response size {size}")
        reader = Reader(self._read_exact(size))
        got = reader.i32()
        if got != correlation_id:
            raise WireError(f"correlation id {got}, expected {correlation_id}")
        return reader

    def api_versions(self) -> dict[int, tuple[int, int]]:
        reader = self.receive(self.send(API_VERSIONS, 0, b""))
        error = reader.i16()
        if error != 0:
            raise WireError(f"ApiVersions v0 error code {error}")
        versions = {}
        for _ in range(reader.array_len()):
            key, low, high = reader.i16(), reader.i16(), reader.i16()
            versions[key] = (low, high)
        return versions


@dataclass
class FetchPartition:
    partition: int
    error_code: int
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    records: bytes | None
    batches: list["BatchHeader"] = field(default_factory=list)


def encode_fetch(
    version: int,
    topic: str,
    partition: int,
    offset: int,
    max_wait_ms: int,
    min_bytes: int,
    max_bytes: int = 1 << 20,
) -> bytes:
    if not 4 <= version <= 11:
        raise ValueError("only non-flexible Fetch v4..v11 are implemented")
    body = struct.pack(">iiii", -1, max_wait_ms, min_bytes, max_bytes)
    body += struct.pack(">b", 0)  # isolation_level: read_uncommitted
    if version >= 7:
        body += struct.pack(">ii", 0, -1)  # session_id 0, epoch -1: full fetch, no session
    body += struct.pack(">i", 1) + _string(topic)
    body += struct.pack(">i", 1) + struct.pack(">i", partition)
    if version >= 9:
        body += struct.pack(">i", -1)  # current_leader_epoch: unknown
    body += struct.pack(">q", offset)
    if version >= 5:
        body += struct.pack(">q", -1)  # log_start_offset (followers only)
    body += struct.pack(">i", max_bytes)
    if version >= 7:
        body += struct.pack(">i", 0)  # forgotten_topics_data
    if version >= 11:
        body += _string("")  # rack_id
    return body


def decode_fetch(version: int, reader: Reader) -> dict[str, list[FetchPartition]]:
    reader.i32()  # throttle_time_ms
    if version >= 7:
        error = reader.i16()
        reader.i32()  # session_id
        if error != 0:
            raise WireError(f"Fetch v{version} top-level error code {error}")
    topics: dict[str, list[FetchPartition]] = {}
    for _ in range(reader.array_len()):
        name = reader.string()
        partitions = []
        for _ in range(reader.array_len()):
            index, error = reader.i32(), reader.i16()
            high_watermark, last_stable = reader.i64(), reader.i64()
            log_start = reader.i64() if version >= 5 else -1
            aborted = reader.i32()
            for _ in range(max(aborted, 0)):
                reader.i64(), reader.i64()
            if version >= 11:
                reader.i32()  # preferred_read_replica
            records = reader.nullable_bytes()
            partitions.append(
                FetchPartition(index, error, high_watermark, last_stable, log_start, records,
                               parse_batch_headers(records or b""))
            )
        topics[name] = partitions
    return topics


def fetch(conn: Connection, version: int, topic: str, partition: int, offset: int,
          max_wait_ms: int, min_bytes: int) -> FetchPartition:
    body = encode_fetch(version, topic, partition, offset, max_wait_ms, min_bytes)
    reader = conn.receive(conn.send(API_FETCH, version, body))
    topics = decode_fetch(version, reader)
    assert list(topics) == [topic], f"Fetch answered for topics {list(topics)}"
    (result,) = topics[topic]
    return result


def pick_version(versions: dict[int, tuple[int, int]], api_key: int, wanted: list[int]) -> int:
    low, high = versions.get(api_key, (None, None))
    if low is None:
        raise WireError(f"broker does not list API key {api_key} in ApiVersions")
    for version in wanted:
        if low <= version <= high:
            return version
    raise WireError(f"API key {api_key}: broker serves v{low}..v{high}, this client speaks {wanted}")


@dataclass
class BatchHeader:
    base_offset: int
    batch_length: int
    magic: int
    attributes: int
    last_offset_delta: int
    record_count: int

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta


def parse_batch_headers(records: bytes) -> list[BatchHeader]:
    """Walk a record set's v2 batch headers (a partial trailing batch is allowed and ignored)."""
    out = []
    pos = 0
    while pos + 61 <= len(records):
        base_offset, batch_length = struct.unpack_from(">qi", records, pos)
        if pos + 12 + batch_length > len(records):
            break  # partial batch at the end of a size-limited fetch
        magic = records[pos + 16]
        attributes, last_offset_delta = struct.unpack_from(">hi", records, pos + 21)
        (record_count,) = struct.unpack_from(">i", records, pos + 57)
        out.append(BatchHeader(base_offset, batch_length, magic, attributes, last_offset_delta,
                               record_count))
        pos += 12 + batch_length
    return out
