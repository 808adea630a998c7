#!/usr/bin/env python3
"""How Strom behaves with many partitions: one node or a 3-node cluster (RF=3).

Not a test: a measurement tool for closing notes and the README. It starts the broker(s)
on 127.0.0.1 ephemeral ports in temp dirs (killed by PID at the end), then:

1. creates `--partitions` partitions as topics of `--per-topic` partitions, in CreateTopics
   batches of `--batch` topics, and reports how long that took (until every partition has a
   leader in Metadata);
2. times Metadata of all topics and DescribeConfigs of `--describe` topics (medians of 5);
3. reports each broker's RSS and open file descriptors, in all and per partition replica;
4. restarts one broker (SIGTERM, then start) and times how long until every partition is
   back to its full ISR (cluster mode; at most `--restart-timeout` s, reporting how many
   partitions got there), and counts the AlterPartition requests the other two sent for it
   and the ISR changes they carried (their logs' "sending AlterPartition" lines);
5. produces to `--produce-partitions` partitions at once with `strom bench produce` and to
   one partition, and reports both MB/s (`--skip-produce` leaves this out).

In cluster mode it also reports the Raft terms the controller quorum went through (one
elected leader for the whole run is `raft_terms: 1`).

`--partitions 0` skips steps 1-4: only the produce comparison, e.g. on one node:

    tests/compat/.venv/bin/python scripts/bench_scale.py --partitions 0 --produce-partitions 5000

The brokers' RLIMIT_NOFILE is raised to `--nofile` (as Kafka's docs ask of operators) when the
process may. Run it with the compat venv from the repository root:

    tests/compat/.venv/bin/python scripts/bench_scale.py --partitions 2000 [--cluster]
"""

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "compat"))

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # noqa: E402

from strom_compat.broker import Broker, strom_binary  # noqa: E402
from strom_compat.cluster import Cluster  # noqa: E402


def raise_nofile(limit: int) -> None:
    """Applies to this process and so to the brokers it starts (inherited)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, limit), max(hard, limit)))
    except (ValueError, OSError) as error:
        print(f"note: cannot raise RLIMIT_NOFILE to {limit} ({error}); keeping {soft}/{hard}")


def process_stats(pid: int) -> tuple[float, int]:
    """(RSS in MiB, open file descriptors) of `pid`."""
    rss_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    return rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd"))


ANSI = re.compile(r"\x1b\[[0-9;]*m")
ALTER_PARTITION_SENT = re.compile(r"sending AlterPartition.*?partitions=(\d+)")


def alter_partitions_sent(log_path: Path) -> tuple[int, int]:
    """(AlterPartition requests, ISR changes in them) that a node's log says it sent."""
    try:
        text = ANSI.sub("", log_path.read_text(errors="replace"))
    except OSError:
        return 0, 0
    counts = [int(m.group(1)) for m in ALTER_PARTITION_SENT.finditer(text)]
    return len(counts), sum(counts)


def median_ms(action, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.monotonic()
        action()
        times.append((time.monotonic() - started) * 1000)
    return statistics.median(times)


def wait_all_led(admin: AdminClient, topics: list[str], partitions: int, rf: int,
                 timeout: float) -> int:
    """Waits until every partition has a leader and a full ISR; returns how many have one
    (all of them, or fewer when `timeout` ran out)."""
    deadline = time.monotonic() + timeout
    ready = 0
    while True:
        metadata = admin.list_topics(timeout=60)
        ready = sum(
            1
            for name in topics
            for p in (metadata.topics.get(name).partitions.values() if metadata.topics.get(name) else [])
            if p.leader >= 0 and len(p.isrs) == rf
        )
        if ready == partitions:
            return ready
        if time.monotonic() > deadline:
            print(f"only {ready} of {partitions} partitions have a leader and full ISR after {timeout} s")
            return ready
        time.sleep(2)


def bench_produce(bootstrap: str, topic: str, partitions: int, rf: int, seconds: int) -> float:
    run = subprocess.run(
        [str(strom_binary()), "bench", "produce", "--bootstrap-server", bootstrap, "--topic", topic,
         "--create", "--partitions", str(partitions), "--replication-factor", str(rf),
         # Creating thousands of partitions takes longer than the default 30 s.
         "--request-timeout-ms", "300000",
         "--record-size", "1024", "--duration", str(seconds), "--json"],
        capture_output=True, text=True, timeout=seconds * 4 + 420,
    )
    if run.returncode != 0:
        raise SystemExit(f"strom bench produce to {partitions} partitions failed:\n{run.stderr[-2000:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return result["median"]["mb_per_sec"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partitions", type=int, default=2000)
    parser.add_argument("--per-topic", type=int, default=10)
    parser.add_argument("--batch", type=int, default=50, help="topics per CreateTopics request")
    parser.add_argument("--describe", type=int, default=100)
    parser.add_argument("--cluster", action="store_true", help="3 nodes, RF=3")
    parser.add_argument("--produce-partitions", type=int, default=1000)
    parser.add_argument("--produce-seconds", type=int, default=15)
    parser.add_argument("--skip-produce", action="store_true")
    parser.add_argument("--nofile", type=int, default=1_048_576)
    parser.add_argument("--restart-timeout", type=int, default=900,
                        help="seconds to wait for full ISR after the restart")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    raise_nofile(args.nofile)
    rf = 3 if args.cluster else 1
    figures: dict = {"partitions": args.partitions, "replication_factor": rf, "binary": str(strom_binary())}

    if args.cluster:
        # Kafka's default session timeout, not the compat suite's 3 s: opening thousands of
        # partitions on a loaded 2-core machine must not read as a dead broker.
        cluster = Cluster("scale", extra_config={"offsets.topic.num.partitions": "3",
                                                 "transaction.state.log.num.partitions": "3",
                                                 "broker.session.timeout.ms": "9000"})
        cluster.start()
        bootstrap = cluster.bootstrap
        pids = {n.node_id: n.process.pid for n in cluster.nodes.values()}
    else:
        broker = Broker("scale", {})
        broker.start()
        bootstrap = broker.bootstrap
        pids = {1: broker.process.pid}
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 120000})
    try:
        if args.partitions > 0:
            base = {n: process_stats(pid) for n, pid in pids.items()}
            topics = [f"scale-{i:05d}" for i in range(args.partitions // args.per_topic)]
            started = time.monotonic()
            for i in range(0, len(topics), args.batch):
                chunk = topics[i:i + args.batch]
                futures = admin.create_topics([NewTopic(t, args.per_topic, rf) for t in chunk],
                                              request_timeout=120)
                for future in futures.values():
                    future.result(timeout=180)
                done = i + len(chunk)
                print(f"\rcreated {done * args.per_topic:>7} of {args.partitions} partitions "
                      f"({time.monotonic() - started:6.1f} s)", end="", flush=True)
            print()
            if wait_all_led(admin, topics, args.partitions, rf, timeout=600) < args.partitions:
                raise SystemExit("the created partitions did not all get a leader and full ISR")
            figures["create_s"] = round(time.monotonic() - started, 1)
            print(json.dumps(figures), flush=True)

            figures["metadata_all_ms"] = round(median_ms(lambda: admin.list_topics(timeout=120)), 1)
            resources = [ConfigResource("TOPIC", t) for t in topics[:args.describe]]

            def describe():
                for future in admin.describe_configs(resources, request_timeout=120).values():
                    future.result(timeout=120)
            figures["describe_configs_ms"] = round(median_ms(describe), 1)
            figures["describe_configs_topics"] = len(resources)

            replicas_per_broker = args.partitions * rf / len(pids)
            figures["brokers"] = {}
            for node, pid in pids.items():
                rss, fds = process_stats(pid)
                figures["brokers"][node] = {
                    "rss_mib": round(rss, 1), "fds": fds,
                    "rss_kib_per_replica": round((rss - base[node][0]) * 1024 / replicas_per_broker, 1),
                    "fds_per_replica": round((fds - base[node][1]) / replicas_per_broker, 2),
                }

            print(json.dumps(figures), flush=True)
            if args.cluster:
                node = cluster.nodes[2]
                others = [n for n in cluster.nodes.values() if n is not node]
                sent_before = [alter_partitions_sent(n.log_path) for n in others]
                node.stop()
                stopped = time.monotonic()
                node.start()
                ready = wait_all_led(admin, topics, args.partitions, rf, timeout=args.restart_timeout)
                figures["restart_full_isr_partitions"] = ready
                figures["restart_to_full_isr_s"] = round(time.monotonic() - stopped, 1)
                sent_after = [alter_partitions_sent(n.log_path) for n in others]
                figures["restart_alter_partition_requests"] = sum(
                    a[0] - b[0] for a, b in zip(sent_after, sent_before))
                figures["restart_isr_changes_sent"] = sum(
                    a[1] - b[1] for a, b in zip(sent_after, sent_before))
                print(json.dumps(figures), flush=True)

        if args.cluster:
            figures["raft_terms"] = len({term for term, _, _ in cluster.nodes[1].raft_votes()})
        if not args.skip_produce:
            figures["produce_one_partition_mb_s"] = round(
                bench_produce(bootstrap, "scale-bench-one", 1, rf, args.produce_seconds), 1)
            figures["produce_many_partitions"] = args.produce_partitions
            figures["produce_many_partitions_mb_s"] = round(
                bench_produce(bootstrap, "scale-bench-many", args.produce_partitions, rf,
                              args.produce_seconds), 1)
    finally:
        if args.cluster:
            cluster.close()
        else:
            broker.close()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
