#!/usr/bin/env python3
"""Kafka Streams word-count throughput on Strom and on Apache Kafka 4.4.0, on the same machine.

Not a test and not part of CI: a measurement for the README (issue 16). Run it with the compat
venv after `cargo build --release -p strom` and one `tests/streams/run` (which fetches the jars):

    tests/compat/.venv/bin/python scripts/bench_streams.py [--lines 100000] [--runs 3]

One node each (scripts/bench_vs_kafka.py's Strom and scripts/kafka-peer's Kafka, up at the same
time, the same settings as there). Each run loads --lines lines of 8 words into a new
4-partition topic and times the word count of tests/streams (StreamsBench: exactly_once_v2,
Streams' default cache and commit interval, one stream thread) from RUNNING until the output,
read read_committed, holds every word's final count. Runs alternate which broker goes first;
the figures are medians of --runs runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
STREAMS = ROOT / "tests" / "streams"
sys.path.insert(0, str(SCRIPTS))

import bench_vs_kafka  # noqa: E402


def classpath() -> str:
    out = STREAMS / "target" / "bench.classpath"
    subprocess.run(["mvn", "-B", "-q", "-o", "-f", str(STREAMS / "pom.xml"), "test-compile",
                    "dependency:build-classpath", "-Dmdep.includeScope=test", f"-Dmdep.outputFile={out}"],
                   check=True)
    return f"{STREAMS / 'target' / 'test-classes'}:{out.read_text().strip()}"


def run_once(cp: str, bootstrap: str, lines: int, state: Path) -> float:
    tag = uuid.uuid4().hex[:8]
    done = subprocess.run(["java", "-Xmx1g", "-cp", cp, "io.strom.streams.StreamsBench", bootstrap, str(lines), tag,
                           str(state / tag)], capture_output=True, text=True, timeout=900)
    line = [x for x in done.stdout.splitlines() if x.startswith("lines/s=")]
    if done.returncode != 0 or not line:
        raise RuntimeError(f"StreamsBench failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return float(line[0].split()[0].split("=")[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    cp = classpath()
    with tempfile.TemporaryDirectory(prefix="strom-bench-streams-") as tmp:
        root = Path(tmp)
        strom = bench_vs_kafka.Strom(1, root).start()
        kafka = bench_vs_kafka.Kafka(1, root).start()
        results: dict[str, list[float]] = {"strom": [], "kafka": []}
        try:
            for run in range(args.runs):
                order = [("strom", strom), ("kafka", kafka)]
                if run % 2:
                    order.reverse()
                for name, broker in order:
                    rate = run_once(cp, broker.bootstrap, args.lines, root)
                    results[name].append(rate)
                    print(f"run {run + 1} {name}: {rate:.0f} lines/s", flush=True)
        finally:
            strom.stop()
            kafka.stop()
    s, k = statistics.median(results["strom"]), statistics.median(results["kafka"])
    print(f"median lines/s: strom {s:.0f}, kafka {k:.0f}, strom/kafka {s / k:.2f} "
          f"({args.runs} runs of {args.lines} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
