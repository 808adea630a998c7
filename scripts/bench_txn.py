#!/usr/bin/env python3
"""Transactional produce throughput with librdkafka (confluent_kafka) against any Kafka broker.

Not a test: a measurement tool for closing notes. For each transaction size it runs
transactions (begin, produce N messages, commit) for a fixed number of messages and reports
transactions/s, messages/s and MB/s, next to idempotent non-transactional produce of the same
messages on the same broker. Run it with the compat venv:

    tests/compat/.venv/bin/python scripts/bench_txn.py --bootstrap 127.0.0.1:9092 \
        --sizes 1,100,10000 --size 1024 --runs 3

--producers N runs N transactional producers at once (threads of this process, each with its
own transactional.id and librdkafka instance, sharing the messages of a run); transactions/s
is then the total over all of them.

Prints one line per run and the medians, as a table or --json.
"""

import argparse
import json
import statistics
import sys
import threading
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def create_topic(bootstrap, name, partitions, replication_factor=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    configs = {"min.insync.replicas": "2"} if replication_factor > 1 else {}
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions,
                                            replication_factor=replication_factor, config=configs)])
    for future in futures.values():
        future.result(timeout=30)


def producer_config(bootstrap, transactional_id=None):
    config = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "batch.size": 1024 * 1024,
        "queue.buffering.max.kbytes": 1024 * 1024,
        "queue.buffering.max.messages": 1_000_000,
    }
    if transactional_id:
        config["transactional.id"] = transactional_id
    return config


def produce_one(producer, topic, payload):
    """Queues one message, waiting for room when librdkafka's queue is full."""
    while True:
        try:
            producer.produce(topic, payload)
            return
        except BufferError:
            producer.poll(0.01)


def run_transactions(bootstrap, topic, per_txn, size, total, producers=1):
    """`producers` transactional producers run their share of `total` messages in
    transactions of `per_txn` at once; the clock runs from when all have their producer id
    (init_transactions) until the last one committed its last transaction."""
    payload = b"x" * size
    transactions = max(producers, total // per_txn)
    shares = [transactions // producers + (1 if i < transactions % producers else 0) for i in range(producers)]
    instances = []
    for _ in range(producers):
        producer = Producer(producer_config(bootstrap, "bench-" + uuid.uuid4().hex[:8]))
        producer.init_transactions(30)
        instances.append(producer)
    errors = []
    start_line = threading.Barrier(producers + 1)

    def work(producer, count):
        try:
            start_line.wait()
            for _ in range(count):
                producer.begin_transaction()
                for _ in range(per_txn):
                    produce_one(producer, topic, payload)
                producer.commit_transaction(60)
        except Exception as e:  # noqa: BLE001 - reported after the join
            errors.append(e)

    threads = [threading.Thread(target=work, args=(p, n)) for p, n in zip(instances, shares)]
    for t in threads:
        t.start()
    start_line.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} of {producers} transactional producers failed: {errors[0]}")
    messages = transactions * per_txn
    return transactions / elapsed, messages / elapsed, messages * size / elapsed / 1e6


def run_plain(bootstrap, topic, size, total):
    producer = Producer(producer_config(bootstrap))
    payload = b"x" * size
    # Connect and get a producer id before timing, as init_transactions does for the
    # transactional runs.
    produce_one(producer, topic, payload)
    producer.flush(30)
    started = time.perf_counter()
    for _ in range(total):
        produce_one(producer, topic, payload)
    producer.flush(60)
    elapsed = time.perf_counter() - started
    return None, total / elapsed, total * size / elapsed / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--sizes", default="1,100,10000", help="messages per transaction")
    parser.add_argument("--size", type=int, default=1024, help="bytes per message")
    parser.add_argument("--messages", type=int, default=200_000,
                        help="messages per run (transactions of 1 message use a tenth of it)")
    parser.add_argument("--producers", type=int, default=1,
                        help="transactional producers running at once (threads)")
    parser.add_argument("--replication-factor", type=int, default=1,
                        help="replicas of the benchmark topic (min.insync.replicas=2 when > 1)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    topic = "bench-txn-" + uuid.uuid4().hex[:8]
    create_topic(args.bootstrap, topic, args.partitions, args.replication_factor)
    cases = [("idempotent, no transaction", None)] + [
        (f"{n} per transaction", int(n)) for n in args.sizes.split(",")
    ]
    results = []
    for label, per_txn in cases:
        runs = []
        for _ in range(args.runs):
            total = args.messages
            if per_txn is not None and per_txn < 10:
                total = max(per_txn, args.messages // 10)
            if per_txn is None:
                outcome = run_plain(args.bootstrap, topic, args.size, total)
            else:
                outcome = run_transactions(args.bootstrap, topic, per_txn, args.size, total, args.producers)
            runs.append(outcome)
            if not args.json:
                txns = "-" if outcome[0] is None else f"{outcome[0]:,.0f}"
                print(f"  {label:<28} txn/s {txns:>9}  msg/s {outcome[1]:>10,.0f}  MB/s {outcome[2]:>7.1f}",
                      file=sys.stderr)
        median = lambda i: statistics.median(r[i] for r in runs) if runs[0][i] is not None else None
        results.append({"case": label, "transactions_per_s": median(0),
                        "messages_per_s": median(1), "mb_per_s": median(2)})
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'case':<28} {'txn/s':>10} {'msg/s':>12} {'MB/s':>8}")
    for r in results:
        txns = "-" if r["transactions_per_s"] is None else f"{r['transactions_per_s']:,.0f}"
        print(f"{r['case']:<28} {txns:>10} {r['messages_per_s']:>12,.0f} {r['mb_per_s']:>8.1f}")


if __name__ == "__main__":
    main()
