#!/usr/bin/env python3
"""Coordinator throughput of strom builds, one node against a 3-node cluster.

Not a test: a measurement tool for closing notes. For each binary, in interleaved rounds
(the machine is shared and noisy), it starts one node and a 3-node cluster (internal
topics RF=3, min.insync.replicas=2, on 127.0.0.1 ephemeral ports, killed by PID at the
end) and measures:

- transactions/s of N transactional producers, each doing 1-message transactions;
- offset commits/s of M consumers, each committing in its own group, one commit at a time.

Run it with the compat venv from the repository root:

    tests/compat/.venv/bin/python scripts/bench_coordinators.py \\
        --binary before=path/to/old/strom --binary after=target/release/strom --rounds 2
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "compat"))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from strom_compat.broker import Broker  # noqa: E402
from strom_compat.cluster import Cluster  # noqa: E402

INTERNAL = {
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.num.partitions": "3",
}
CLUSTER_EXTRA = {
    **INTERNAL,
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "min.insync.replicas": "2",
}


def create_topic(bootstrap, name, partitions, replication_factor):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions,
                                            replication_factor=replication_factor)])
    for future in futures.values():
        future.result(timeout=30)


def run_threads(count, seconds, work):
    """Runs `work(index, deadline)` on `count` threads; returns the sum of their counts."""
    counts = [0] * count
    errors = []
    deadline = time.monotonic() + seconds

    def one(index):
        try:
            counts[index] = work(index, deadline)
        except Exception as error:  # noqa: BLE001 - reported, not hidden
            errors.append(repr(error))

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    if errors:
        print(f"  {len(errors)} worker(s) failed, first: {errors[0]}", file=sys.stderr)
    return sum(counts)


def bench_txn(bootstrap, producers, seconds, replication_factor):
    topic = "bench-txn-" + uuid.uuid4().hex[:6]
    # On the cluster min.insync.replicas=2 applies to this topic too: RF=1 could take no
    # acks=all write.
    create_topic(bootstrap, topic, producers, replication_factor)
    ready = threading.Barrier(producers)

    def work(index, _deadline):
        producer = Producer({
            "bootstrap.servers": bootstrap,
            "transactional.id": f"bench-{uuid.uuid4().hex[:8]}",
            "linger.ms": 0,
        })
        producer.init_transactions(60)
        ready.wait(120)
        end = time.monotonic() + seconds
        done = 0
        while time.monotonic() < end:
            producer.begin_transaction()
            producer.produce(topic, b"x" * 100, partition=index)
            producer.commit_transaction(30)
            done += 1
        producer.flush(10)
        return done

    started = time.monotonic()
    total = run_threads(producers, seconds + 60, work)
    return total / seconds, time.monotonic() - started


def bench_commits(bootstrap, consumers, seconds, replication_factor):
    topic = "bench-commit-" + uuid.uuid4().hex[:6]
    create_topic(bootstrap, topic, 1, replication_factor)
    ready = threading.Barrier(consumers)

    def work(index, _deadline):
        consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{index}-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
        })
        # The first commit finds the coordinator (and creates the topic on first use).
        consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
        ready.wait(120)
        end = time.monotonic() + seconds
        done = 0
        offset = 1
        while time.monotonic() < end:
            consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
            offset += 1
            done += 1
        consumer.close()
        return done

    total = run_threads(consumers, seconds + 60, work)
    return total / seconds


def measure(label, binary, nodes, args):
    os.environ["STROM_BIN"] = str(Path(binary).resolve())
    if nodes == 1:
        server = Broker(f"bench-{label}", extra_config=INTERNAL)
        server.start()
        bootstrap = server.bootstrap
    else:
        server = Cluster(f"bench-{label}", nodes=nodes, extra_config=CLUSTER_EXTRA)
        server.start()
        bootstrap = server.bootstrap
    try:
        replication_factor = min(nodes, 3)
        txns, _ = bench_txn(bootstrap, args.producers, args.seconds, replication_factor)
        commits = bench_commits(bootstrap, args.consumers, args.seconds, replication_factor)
    finally:
        server.close()
    return txns, commits


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", action="append", required=True,
                        help="label=path of a strom binary; repeat to compare")
    parser.add_argument("--producers", type=int, default=16)
    parser.add_argument("--consumers", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    binaries = [entry.split("=", 1) for entry in args.binary]
    results = {}
    for round_index in range(args.rounds):
        for label, binary in binaries:
            for nodes in (1, 3):
                txns, commits = measure(label, binary, nodes, args)
                results.setdefault((label, nodes), []).append((txns, commits))
                print(f"round {round_index + 1} {label:>8} nodes={nodes}: "
                      f"{txns:8.0f} txn/s {commits:8.0f} commits/s", flush=True)
    rows = []
    for (label, nodes), runs in results.items():
        rows.append({
            "binary": label,
            "nodes": nodes,
            "txn_per_s": statistics.median(r[0] for r in runs),
            "commits_per_s": statistics.median(r[1] for r in runs),
        })
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print("median:")
        for row in rows:
            print(f"  {row['binary']:>8} nodes={row['nodes']}: {row['txn_per_s']:8.0f} txn/s "
                  f"{row['commits_per_s']:8.0f} commits/s")


if __name__ == "__main__":
    main()
