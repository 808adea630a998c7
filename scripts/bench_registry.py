#!/usr/bin/env python3
"""Schema registry latency and throughput of a strom build (one node).

Not a test: a measurement tool for closing notes. Starts one broker with its registry on an
ephemeral port (temp data dir, killed by PID at the end) and measures, over HTTP/1.1
keep-alive connections from the standard library's client:

- register latency: N distinct Avro schemas registered one at a time (each a new id and
  version, appended to _schemas and committed before the answer);
- lookup latency: POST /subjects/{s} (lookup by schema) of those schemas, one at a time;
- id lookups/s: GET /schemas/ids/{id} (what a deserializer asks) from C client processes
  for D seconds.

Run it with the compat venv from the repository root (STROM_BIN picks the binary):

    STROM_BIN=target/release/strom tests/compat/.venv/bin/python scripts/bench_registry.py
"""

import argparse
import http.client
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "compat"))

from strom_compat.broker import Broker, free_port  # noqa: E402

HEADERS = {"Content-Type": "application/vnd.schemaregistry.v1+json"}


def schema(i: int) -> str:
    return json.dumps(
        {"type": "record", "name": f"R{i}", "fields": [{"name": "f", "type": "long"}]}
    )


def call(conn, method, path, body=None):
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=HEADERS)
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{method} {path}: {response.status} {data!r}")
    return json.loads(data)


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def id_reader(port, ids, seconds, out):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for schema_id in ids:
            call(conn, "GET", f"/schemas/ids/{schema_id}")
            done += 1
    out.put(done)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--schemas", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    port = free_port()
    with Broker("bench-registry", {"schema.registry.listener": f"127.0.0.1:{port}"}) as broker:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        deadline = time.monotonic() + 30
        while True:
            try:
                call(conn, "GET", "/subjects")
                break
            except (OSError, RuntimeError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise
                conn = http.client.HTTPConnection("127.0.0.1", port)
                time.sleep(0.1)
        # The first write creates _schemas: not measured.
        call(conn, "POST", "/subjects/warmup/versions", {"schema": schema(999999)})
        register_ms, lookup_ms, ids = [], [], []
        for i in range(args.schemas):
            start = time.perf_counter()
            answer = call(conn, "POST", f"/subjects/s{i}-value/versions", {"schema": schema(i)})
            register_ms.append((time.perf_counter() - start) * 1000)
            ids.append(answer["id"])
        for i in range(args.schemas):
            start = time.perf_counter()
            call(conn, "POST", f"/subjects/s{i}-value", {"schema": schema(i)})
            lookup_ms.append((time.perf_counter() - start) * 1000)
        queue = multiprocessing.Queue()
        readers = [
            multiprocessing.Process(target=id_reader, args=(port, ids, args.seconds, queue))
            for _ in range(args.clients)
        ]
        for reader in readers:
            reader.start()
        total = sum(queue.get() for _ in readers)
        for reader in readers:
            reader.join()
        result = {
            "binary": str(broker.command()[0]),
            "schemas": args.schemas,
            "register_ms": {"p50": round(statistics.median(register_ms), 3), "p99": round(percentile(register_ms, 99), 3)},
            "lookup_ms": {"p50": round(statistics.median(lookup_ms), 3), "p99": round(percentile(lookup_ms, 99), 3)},
            "id_lookups_per_s": round(total / args.seconds),
            "id_clients": args.clients,
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
