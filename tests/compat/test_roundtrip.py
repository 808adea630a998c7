"""Three independent clients, five codecs: create a 3-partition topic, produce keyed records
with headers (a repeated key, binary values, a null value), read them back byte-identical and
in order per partition, check Java-murmur2 placement, ListOffsets by timestamp, delete the
topic. Every client/codec pair gets its own topic on the module's broker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import kafka.codec
import pytest

from strom_compat import confluent_driver, kafka_python_driver
from strom_compat.scenario import CODECS, Result, check_result, make_spec

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_TIMEOUT_S = 180


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_kafka_roundtrip(broker, codec):
    spec = make_spec("confluent", codec)
    result = confluent_driver.run(broker.bootstrap, spec)
    check_result(spec, result, java_murmur2=True)


KAFKA_PYTHON_CODEC_SUPPORT = {
    "none": lambda: True,
    "gzip": kafka.codec.has_gzip,
    "snappy": kafka.codec.has_snappy,
    "lz4": kafka.codec.has_lz4,
    "zstd": kafka.codec.has_zstd,
}


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_roundtrip(broker, codec):
    if not KAFKA_PYTHON_CODEC_SUPPORT[codec]():
        pytest.skip(f"kafka-python cannot use {codec}: its codec library is not installed")
    spec = make_spec("kafka-python", codec)
    result = kafka_python_driver.run(broker.bootstrap, spec)
    check_result(spec, result, java_murmur2=True)


def run_kafkajs(bootstrap: str, spec, mode: str, tmp_path: Path) -> Result:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (scripts/test expects Node.js 18+ on PATH)", pytrace=False)
    if not (NODE_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.fail("tests/compat/node/node_modules is missing: run `npm ci` there (scripts/test does)",
                    pytrace=False)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec.to_json()))
    env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
    try:
        completed = subprocess.run(
            [node, str(NODE_DIR / "roundtrip.js"), bootstrap, str(spec_path), mode],
            cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=NODE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as timeout:
        stderr = (timeout.stderr or b"")
        stderr = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
        pytest.fail(f"kafkajs script did not finish within {NODE_TIMEOUT_S} s\n"
                    f"--- kafkajs stderr (tail) ---\n{stderr[-4000:]}", pytrace=False)
    lines = [l for l in completed.stdout.splitlines() if l.startswith("RESULT ")]
    stderr_tail = completed.stderr[-4000:]
    if not lines:
        pytest.fail(f"kafkajs script printed no RESULT (exit {completed.returncode})\n"
                    f"--- stdout ---\n{completed.stdout[-2000:]}\n--- stderr ---\n{stderr_tail}",
                    pytrace=False)
    payload = json.loads(lines[-1][len("RESULT "):])
    if "error" in payload:
        error = payload["error"]
        pytest.fail(f"kafkajs: {error['step']} failed: {error['type']}: {error['message']}"
                    f"{' (cause: ' + error['cause'] + ')' if error.get('cause') else ''}\n"
                    f"--- kafkajs stderr (tail) ---\n{stderr_tail}", pytrace=False)
    return Result.from_json(payload)


@pytest.mark.parametrize("codec", CODECS)
def test_kafkajs_roundtrip(broker, codec, tmp_path):
    """kafkajs has no public assign(); this reads with its own Fetch v11 encoder/decoder
    through its cluster object, partitions assigned explicitly, no group."""
    spec = make_spec("kafkajs", codec)
    result = run_kafkajs(broker.bootstrap, spec, "assign", tmp_path)
    check_result(spec, result, java_murmur2=True)  # kafkajs 2.x DefaultPartitioner = Java murmur2


@pytest.mark.parametrize("codec", ["none", "lz4"])
def test_kafkajs_consumer_group_roundtrip(broker, codec, tmp_path):
    """The way kafkajs users read: a consumer group subscribed from the beginning."""
    spec = make_spec("kafkajs-group", codec)
    result = run_kafkajs(broker.bootstrap, spec, "group", tmp_path)
    check_result(spec, result, java_murmur2=True)
