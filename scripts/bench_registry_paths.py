#!/usr/bin/env python3
"""Latency of the schema registry's newer paths (issue 17, items 4 and 5) on a strom build.

Not a test: a measurement tool for closing notes. Starts one broker (temp data dir, killed
at the end) with the registry's Basic authentication on, and measures one at a time:

- produce with server-side validation: N single-record acks=1 produces (each flushed) of a
  serializer-framed value to a topic with confluent.value.schema.validation=true, next to
  the same to a topic without it;
- GET /schemas/ids/{id} with Basic credentials (a verified password is remembered) next to
  the same broker's answer of 401 to a wrong password (a full PBKDF2 check every time).

    STROM_BIN=target/release/strom tests/compat/.venv/bin/python scripts/bench_registry_paths.py
"""

import argparse
import base64
import http.client
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "compat"))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from strom_compat.broker import Broker, free_port, strom_binary  # noqa: E402


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def report(name, samples):
    print(f"{name}: n={len(samples)} p50={percentile(samples, 50) * 1000:.3f} ms "
          f"p99={percentile(samples, 99) * 1000:.3f} ms")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000)
    args = parser.parse_args()
    port = free_port()
    config = {
        "schema.registry.listener": f"127.0.0.1:{port}",
        "schema.registry.authentication.method": "BASIC",
    }
    with Broker("bench-registry-paths", config) as broker:
        subprocess.run([str(strom_binary()), "user", "create", "bench", "--password", "pw",
                        "--bootstrap-server", broker.bootstrap], check=True, stdout=subprocess.DEVNULL)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        futures = admin.create_topics([
            NewTopic("validated", 1, 1, config={"confluent.value.schema.validation": "true"}),
            NewTopic("plain", 1, 1),
        ])
        for future in futures.values():
            future.result(30)
        auth = {"Authorization": "Basic " + base64.b64encode(b"bench:pw").decode(),
                "Content-Type": "application/vnd.schemaregistry.v1+json"}
        wrong = dict(auth, Authorization="Basic " + base64.b64encode(b"bench:nope").decode())
        conn = http.client.HTTPConnection("127.0.0.1", port)
        schema = '{"schema": "{\\"type\\": \\"record\\", \\"name\\": \\"R\\", \\"fields\\": []}"}'
        conn.request("POST", "/subjects/validated-value/versions", schema, auth)
        answer = conn.getresponse()
        schema_id = int(__import__("json").loads(answer.read())["id"])
        value = b"\x00" + struct.pack(">i", schema_id) + b"payload"

        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": 1, "linger.ms": 0})
        timings = {"validated": [], "plain": []}
        for i in range(args.n):
            for topic in ("validated", "plain"):
                started = time.perf_counter()
                producer.produce(topic, value=value)
                producer.flush(10)
                timings[topic].append(time.perf_counter() - started)
        report("produce, value validation on (acks=1, one record)", timings["validated"])
        report("produce, no validation       (acks=1, one record)", timings["plain"])

        for name, headers, count in (("GET /schemas/ids/{id}, Basic auth", auth, args.n),
                                     ("GET /schemas/ids/{id}, wrong password (401)", wrong, args.n // 10)):
            samples = []
            for _ in range(count):
                started = time.perf_counter()
                conn.request("GET", f"/schemas/ids/{schema_id}", headers=headers)
                conn.getresponse().read()
                samples.append(time.perf_counter() - started)
            report(name, samples)


if __name__ == "__main__":
    main()
