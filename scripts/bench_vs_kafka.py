#!/usr/bin/env python3
"""Strom next to Apache Kafka 4.4.0: the same workloads, the same clients, in one run.

Not a test and not part of CI: a measurement for the README's benchmark section. Run it with
the compat venv after `cargo build --release -p strom`:

    tests/compat/.venv/bin/python scripts/bench_vs_kafka.py            # full: 3 runs per row, over 30 min on 2 busy cores
    tests/compat/.venv/bin/python scripts/bench_vs_kafka.py --quick    # smoke run: 1 run, small counts
    ... --json                                                          # one JSON document on stdout
    ... --markdown                                                      # the table as Markdown

Two phases, each with a Strom and an Apache Kafka (scripts/kafka-peer) of the same shape up at
the same time, on 127.0.0.1:

- single: one node each; topics with replication factor 1, produced with acks=1;
- cluster: three nodes each (combined broker+controller); topics with replication factor 3 and
  min.insync.replicas=2, produced with acks=all.

Rows, per phase: produce then consume of 1 KiB and 100 B records on 1 and 16 partitions with
two clients (the Java client: kafka-producer-perf-test / kafka-consumer-perf-test; librdkafka:
scripts/bench_librdkafka.py), and transactions of 1 and 100 messages (1 KiB) from 16
transactional librdkafka producers at once (scripts/bench_txn.py). Every run uses a new topic,
deleted afterwards. For each row the runs alternate Strom and Kafka (Strom first on odd runs,
Kafka first on even), so both see the same background load; the figures are the medians of
--runs runs. MB is 10^6 bytes; latency is the producer's send-to-acknowledgement time per
record (p50/p99); consume MB/s excludes the Java consumer's group join (fetch.MB.sec).

Settings on both sides: page-cache flushing (no fsync by count or time), num.partitions=1,
offsets/transaction topics with 10 partitions and replication factor 1 (single) or 3
(cluster), min.insync.replicas 1 / 2, group.initial.rebalance.delay.ms=0. Strom runs its
release build (target/release/strom, or STROM_BIN), Kafka with 1 GiB heap per node.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.machinery
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))

import bench_librdkafka  # noqa: E402
import bench_txn  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402


def _load_peer():
    loader = importlib.machinery.SourceFileLoader("kafka_peer", str(SCRIPTS / "kafka-peer"))
    spec = importlib.util.spec_from_loader("kafka_peer", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


peer = _load_peer()

# Java client flags for the perf tools: full JIT (scripts/kafka's C1-only flags suit one-shot tools).
JAVA_CLIENT = ["-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]
PRODUCER_PROPS = ["linger.ms=5", "batch.size=262144", "buffer.memory=67108864"]


# ---------------------------------------------------------------- Strom
class Strom:
    """N `strom broker` processes on free loopback ports, each combined broker+controller,
    started as tests/compat/strom_compat/cluster.py does; killed by PID."""

    def __init__(self, nodes: int, root: Path):
        self.nodes = nodes
        self.root = root
        self.pids: list[int] = []
        self.procs = []
        self.ports = [(peer.free_port(), peer.free_port()) for _ in range(nodes)]
        self.bootstrap = ",".join(f"127.0.0.1:{p}" for p, _ in self.ports)

    def start(self) -> "Strom":
        binary = os.environ.get("STROM_BIN", str(ROOT / "target" / "release" / "strom"))
        if not Path(binary).is_file():
            raise SystemExit(f"{binary} missing: cargo build --release -p strom")
        rf = min(self.nodes, 3)
        common = {
            "http.listener": "",
            "num.partitions": "1",
            "default.replication.factor": str(rf),
            "min.insync.replicas": "2" if self.nodes >= 3 else "1",
            "offsets.topic.replication.factor": str(rf),
            "offsets.topic.num.partitions": str(peer.INTERNAL_TOPIC_PARTITIONS),
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.num.partitions": str(peer.INTERNAL_TOPIC_PARTITIONS),
            "group.initial.rebalance.delay.ms": "0",
        }
        voters = ",".join(f"{i + 1}@127.0.0.1:{raft}" for i, (_, raft) in enumerate(self.ports))
        for i, (port, _) in enumerate(self.ports):
            node_dir = self.root / f"strom-node{i + 1}"
            (node_dir / "data").mkdir(parents=True, exist_ok=True)
            config = {"node.id": str(i + 1), "log.dirs": str(node_dir / "data"),
                      "listeners": f"PLAINTEXT://127.0.0.1:{port}", **common}
            if self.nodes > 1:
                config["controller.quorum.voters"] = voters
            cmd = [binary, "broker"]
            for key, value in config.items():
                cmd += ["--set", f"{key}={value}"]
            env = dict(os.environ, STROM_LOG=os.environ.get("STROM_LOG", "warn"))
            with open(node_dir / "strom.log", "ab") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=env, start_new_session=True)
            self.procs.append(proc)
            self.pids.append(proc.pid)
        peer.wait_cluster([("127.0.0.1", p) for p, _ in self.ports], self.pids, 90.0, "Strom")
        return self

    def stop(self) -> None:
        peer.kill_pids(self.pids)
        for proc in self.procs:
            proc.poll()


class Kafka:
    def __init__(self, nodes: int, root: Path):
        self.nodes = nodes
        self.root = root / "kafka"
        self.pids: list[int] = []
        self.bootstrap = ""

    def start(self) -> "Kafka":
        info = peer.start(self.nodes, self.root, os.environ.get("KAFKA_PEER_HEAP", "1g"),
                          os.environ.get("JAVA", "java"))
        self.pids = info["pids"]
        self.bootstrap = info["bootstrap"]
        return self

    def stop(self) -> None:
        peer.kill_pids(self.pids)


# ---------------------------------------------------------------- workloads
def create_topic(bootstrap: str, partitions: int, rf: int) -> str:
    topic = f"vs-{uuid.uuid4().hex[:10]}"
    bench_librdkafka.create_topic(bootstrap, topic, partitions, rf, {"min.insync.replicas": "2"} if rf > 1 else None)
    # Until every partition has a leader and a full ISR, so no run starts with a failover.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        md = admin.list_topics(topic, timeout=10)
        t = md.topics.get(topic)
        if (t is not None and t.error is None and len(t.partitions) == partitions
                and all(p.leader >= 0 and len(p.isrs) >= rf for p in t.partitions.values())):
            return topic
        time.sleep(0.2)
    raise RuntimeError(f"{topic}: partitions not ready in 60 s")


def delete_topic(bootstrap: str, topic: str) -> None:
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for f in admin.delete_topics([topic]).values():
            f.result(timeout=30)
    except Exception as e:  # noqa: BLE001 - only tidying up
        print(f"  (could not delete {topic}: {e})", file=sys.stderr)


_classpath = None


def java(cls: str, args: list[str], timeout: float) -> str:
    global _classpath
    if _classpath is None:
        _classpath = peer.kafka_classpath()
    log4j = SCRIPTS / "kafka-dist" / "log4j2.properties"
    cmd = [os.environ.get("JAVA", "java"), *JAVA_CLIENT, f"-Dlog4j2.configurationFile={log4j}", "-cp", _classpath,
           cls, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{cls} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


PERF_LINE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec .*?([\d.]+) ms avg latency.*?"
                       r"(\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th")


def java_produce_consume(bootstrap: str, topic: str, size: int, count: int, acks: str) -> dict:
    out = java("org.apache.kafka.tools.ProducerPerformance",
               ["--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(count),
                "--record-size", str(size), "--throughput", "-1",
                "--command-property", f"acks={acks}", *PRODUCER_PROPS], timeout=300)
    m = None
    for line in out.splitlines():
        m = PERF_LINE.search(line) or m
    if m is None or int(m.group(1)) != count:
        raise RuntimeError(f"producer-perf-test output not understood:\n{out[-1500:]}")
    rate = float(m.group(2))
    out = java("org.apache.kafka.tools.ConsumerPerformance",
               ["--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(count),
                "--timeout", "60000", "--hide-header", "--group", "vs-" + uuid.uuid4().hex[:8]], timeout=300)
    fields = [f.strip() for f in out.strip().splitlines()[-1].split(",")]
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
    # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
    if len(fields) < 10 or int(fields[4]) < count:
        raise RuntimeError(f"consumer-perf-test consumed too little:\n{out[-1500:]}")
    return {"produce_mb_s": rate * size / 1e6, "p50_ms": float(m.group(4)), "p99_ms": float(m.group(6)),
            "consume_mb_s": float(fields[9]) * size / 1e6}


def rdkafka_produce_consume(bootstrap: str, topic: str, size: int, count: int, acks: str, partitions: int) -> dict:
    p = bench_librdkafka.produce(bootstrap, topic, size, count, acks, "none")
    c = bench_librdkafka.consume(bootstrap, topic, partitions, count, size)
    return {"produce_mb_s": p["mb_per_s"], "p50_ms": p["p50_ms"], "p99_ms": p["p99_ms"],
            "consume_mb_s": c["mb_per_s"]}


def run_row(row: dict, bootstrap: str) -> dict:
    topic = create_topic(bootstrap, row["partitions"], row["rf"])
    try:
        if row["kind"] == "txn":
            txn_s, _, mb_s = bench_txn.run_transactions(bootstrap, topic, row["per_txn"], row["size"], row["count"],
                                                         row["producers"])
            return {"txn_s": txn_s, "produce_mb_s": mb_s}
        if row["client"] == "java":
            return java_produce_consume(bootstrap, topic, row["size"], row["count"], row["acks"])
        return rdkafka_produce_consume(bootstrap, topic, row["size"], row["count"], row["acks"], row["partitions"])
    finally:
        delete_topic(bootstrap, topic)


# ---------------------------------------------------------------- plan and report
METRICS = {"produce": [("produce_mb_s", "produce MB/s"), ("p50_ms", "produce p50 ms"), ("p99_ms", "produce p99 ms"),
                       ("consume_mb_s", "consume MB/s")],
           "txn": [("txn_s", "transactions/s"), ("produce_mb_s", "produce MB/s")]}


def plan(phase: str, scale: float, clients: list[str]) -> list[dict]:
    nodes = 1 if phase == "single" else 3
    rf, acks = (1, "1") if nodes == 1 else (3, "all")
    rows = []
    for client in clients:
        for size, count in ((1024, 50_000), (100, 250_000)):
            for partitions in (1, 16):
                rows.append({"phase": phase, "kind": "produce", "client": client, "size": size,
                             "partitions": partitions, "rf": rf, "acks": acks, "count": int(count * scale),
                             "name": f"{size} B x {int(count * scale):,}, {partitions} part., RF={rf} acks={acks}"})
    for per_txn, txns in ((1, 960), (100, 96)):
        txns = max(16, int(txns * scale))
        rows.append({"phase": phase, "kind": "txn", "client": "librdkafka", "size": 1024, "partitions": 1, "rf": rf,
                     "acks": "all", "per_txn": per_txn, "producers": 16, "count": txns * per_txn,
                     "name": f"txn of {per_txn} x 1 KiB, 16 producers, {txns} txns, RF={rf}"})
    return rows


def ratio(s, k):
    return s / k if s is not None and k else None


def lines_of(results: list[dict]) -> list[tuple]:
    out = []
    for r in results:
        for key, label in METRICS[r["kind"]]:
            s, k = r["strom"].get(key), r["kafka"].get(key)
            out.append((r["phase"], r["name"], r["client"], label, s, k, ratio(s, k)))
    return out


def fmt(v, label=""):
    if v is None:
        return "-"
    if "ms" in label:
        return f"{v:.1f}"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def print_table(results: list[dict], markdown: bool) -> None:
    rows = [(ph, name, client, label, fmt(s, label), fmt(k, label), "-" if q is None else f"{q:.2f}")
            for ph, name, client, label, s, k, q in lines_of(results)]
    head = ("phase", "workload", "client", "metric", "Strom", "Kafka", "Strom/Kafka")
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join(["---"] * 4 + ["---:"] * 3) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(str(x[i])) for x in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  ".join(str(c).ljust(w) if i < 4 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--quick", action="store_true", help="smoke run: one run per row, a tenth of the records")
    parser.add_argument("--runs", type=int, help="runs per row and broker (default 3, 1 with --quick)")
    parser.add_argument("--scale", type=float, help="record counts times this (default 1, 0.1 with --quick)")
    parser.add_argument("--phases", default="single,cluster", help="single, cluster or both (default)")
    parser.add_argument("--clients", default="java,librdkafka")
    parser.add_argument("--only", default="", help="run only rows whose workload text contains this")
    parser.add_argument("--dir", type=Path, help="where the brokers' data goes (default: a temp dir, removed)")
    parser.add_argument("--json", action="store_true", help="results as JSON on stdout")
    parser.add_argument("--markdown", action="store_true", help="the table as Markdown")
    parser.add_argument("--out", type=Path, help="also write the JSON document here, rewritten after every row")
    parser.add_argument("--from-json", type=Path, nargs="+", metavar="FILE",
                        help="run nothing: print the table of earlier --json outputs (e.g. one per phase)")
    args = parser.parse_args()
    if args.from_json:
        docs = [json.loads(f.read_text()) for f in args.from_json]
        print_table([r for d in docs for r in d["results"]], args.markdown)
        print(f"\nmedians of {', '.join(str(d['runs']) for d in docs)} run(s) per row and broker; "
              f"{sum(d['elapsed_s'] for d in docs) / 60:.0f} min in all")
        return 0
    runs = args.runs or (1 if args.quick else 3)
    clients = [c for c in args.clients.split(",") if c]
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-vs-kafka-"))
    started = time.monotonic()
    results = []

    def document() -> dict:
        return {"date": datetime.date.today().isoformat(), "host": platform.node(), "cpus": os.cpu_count(),
                "runs": runs, "elapsed_s": round(time.monotonic() - started), "results": results}
    for phase in [p for p in args.phases.split(",") if p]:
        rows = [r for r in plan(phase, args.scale or (0.1 if args.quick else 1.0), clients) if args.only in r["name"]]
        if not rows:
            continue
        nodes = 1 if phase == "single" else 3
        phase_dir = root / phase
        print(f"== {phase}: starting Strom and Apache Kafka ({nodes} node{'s' if nodes > 1 else ''} each)",
              file=sys.stderr)
        strom, kafka = Strom(nodes, phase_dir), Kafka(nodes, phase_dir)
        try:
            strom.start()
            kafka.start()
            print(f"   Strom {strom.bootstrap} (pids {strom.pids}); Kafka {kafka.bootstrap} (pids {kafka.pids})",
                  file=sys.stderr)
            targets = {"strom": strom, "kafka": kafka}
            for row in rows:
                got = {"strom": [], "kafka": []}
                for run in range(runs):
                    order = ["strom", "kafka"] if run % 2 == 0 else ["kafka", "strom"]
                    for name in order:
                        got[name].append(run_row(row, targets[name].bootstrap))
                    print(f"   {row['name']} [{row['client']}] run {run + 1}: "
                          + " | ".join(f"{n} " + " ".join(f"{k}={v:.1f}" for k, v in got[n][-1].items())
                                       for n in ("strom", "kafka")), file=sys.stderr)
                med = {n: {k: statistics.median(r[k] for r in got[n]) for k in got[n][0]} for n in got}
                results.append({**{k: v for k, v in row.items()}, "runs": runs, **med,
                                "all_runs": got})
                if args.out:
                    args.out.write_text(json.dumps(document(), indent=2) + "\n")
        finally:
            strom.stop()
            kafka.stop()
    elapsed = time.monotonic() - started
    if args.dir is None:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(document(), indent=2))
    else:
        print_table(results, args.markdown)
        print(f"\n{runs} run(s) per row and broker, medians; Strom/Kafka > 1 means Strom's figure is higher "
              f"(better for MB/s and transactions/s, worse for latency). {elapsed / 60:.1f} min.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
