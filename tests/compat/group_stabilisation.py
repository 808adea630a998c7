"""Measures how long a 10-member librdkafka group takes to stabilise after an 11th member
joins and after one leaves, for the classic protocol (eager range, cooperative-sticky) and
the consumer protocol (KIP-848). Not a test: run it by hand and read the numbers.

    tests/compat/.venv/bin/python tests/compat/group_stabilisation.py [--runs 3]

"Stable" = every member's assignment is non-empty, they are disjoint and cover every
partition. Times are measured from the join (or close) call to the first stable sample
(sampled every 20 ms).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from confluent_kafka import Consumer  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

from strom_compat.broker import Broker  # noqa: E402
from strom_compat.confluent_driver import create_topic  # noqa: E402

PARTITIONS = 20
MEMBERS = 10


class Member:
    def __init__(self, config: dict, topic: str):
        self.consumer = Consumer(config)
        self.consumer.subscribe([topic])
        self.assignment: frozenset[int] = frozenset()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            self.consumer.poll(0.05)
            self.assignment = frozenset(tp.partition for tp in self.consumer.assignment())
        self.consumer.close()

    def close(self):
        self.stop.set()
        self.thread.join(30)


def stable(members: list[Member]) -> bool:
    seen: list[int] = []
    for m in members:
        if not m.assignment:
            return False
        seen.extend(m.assignment)
    return sorted(seen) == list(range(PARTITIONS))


def wait_stable(members: list[Member], timeout_s: float = 120) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if stable(members):
            return time.monotonic() - start
        time.sleep(0.02)
    raise RuntimeError("group did not stabilise")


def measure(bootstrap: str, mode: str) -> tuple[float, float]:
    topic = f"stab-{uuid.uuid4().hex[:8]}"
    create_topic(AdminClient({"bootstrap.servers": bootstrap}), topic, PARTITIONS)
    config = {"bootstrap.servers": bootstrap, "group.id": f"stab-{uuid.uuid4().hex[:8]}",
              "enable.auto.commit": False}
    if mode == "consumer":
        config["group.protocol"] = "consumer"
    else:
        config["partition.assignment.strategy"] = mode
    members = [Member(config, topic) for _ in range(MEMBERS)]
    wait_stable(members)
    time.sleep(1)
    start = time.monotonic()
    members.append(Member(config, topic))
    joined = wait_stable(members)
    time.sleep(1)
    leaving = members.pop(0)
    start = time.monotonic()
    leaving.close()
    left = max(wait_stable(members), 0.0)
    _ = start
    for m in members:
        m.close()
    return joined, left


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bootstrap", help="an already running broker (default: start one)")
    args = parser.parse_args()
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = Broker("stabilisation")
        broker.start()
        bootstrap = broker.bootstrap
    try:
        for mode in ["range", "cooperative-sticky", "consumer"]:
            joins, leaves = [], []
            for _ in range(args.runs):
                joined, left = measure(bootstrap, mode)
                joins.append(joined)
                leaves.append(left)
            print(f"{mode:20s} join: median {statistics.median(joins):.2f}s {['%.2f' % j for j in joins]}"
                  f"  leave: median {statistics.median(leaves):.2f}s {['%.2f' % x for x in leaves]}", flush=True)
    finally:
        if broker is not None:
            broker.close()


if __name__ == "__main__":
    main()
