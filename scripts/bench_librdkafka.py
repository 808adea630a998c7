#!/usr/bin/env python3
"""Produce/consume throughput with librdkafka (confluent_kafka) against any Kafka broker.

Not a test: a measurement tool for closing notes. Run it with the compat venv:

    tests/compat/.venv/bin/python scripts/bench_librdkafka.py --bootstrap 127.0.0.1:9092 \
        --partitions 8 --size 1024 --count 500000 --acks 1 --runs 3

Prints one line per run and the median, as a table or --json.
"""

import argparse
import json
import statistics
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


EXTRA = {}


def create_topic(bootstrap, name, partitions, replication_factor=1, configs=None):
    admin = AdminClient({"bootstrap.servers": bootstrap, **EXTRA})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                                                config=configs or {})])
    for future in futures.values():
        future.result(timeout=30)


def produce(bootstrap, topic, size, count, acks, compression):
    latencies = []
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "linger.ms": 5,
        "batch.size": 1024 * 1024,
        "queue.buffering.max.kbytes": 1024 * 1024,
        "queue.buffering.max.messages": 1_000_000,
        "compression.type": compression,
        "enable.idempotence": False,
        "partitioner": "murmur2_random",
        **EXTRA,
    })
    payload = b"x" * size
    delivered = 0

    def on_delivery(error, message):
        nonlocal delivered
        if error is not None:
            raise RuntimeError(error)
        delivered += 1
        latencies.append(message.latency())

    started = time.perf_counter()
    for i in range(count):
        while True:
            try:
                producer.produce(topic, payload, key=str(i % 1024).encode(), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(120)
    elapsed = time.perf_counter() - started
    if delivered != count:
        raise RuntimeError(f"only {delivered} of {count} delivered")
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    return {
        "msgs_per_s": count / elapsed,
        "mb_per_s": count * size / elapsed / 1e6,
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "p999_ms": pick(0.999),
    }


def consume(bootstrap, topic, partitions, count, size):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "unused-" + uuid.uuid4().hex,
        "enable.auto.commit": False,
        "fetch.max.bytes": 50 * 1024 * 1024,
        "max.partition.fetch.bytes": 8 * 1024 * 1024,
        "queued.max.messages.kbytes": 512 * 1024,
        **EXTRA,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    received = 0
    started = time.perf_counter()
    deadline = started + 300
    while received < count and time.perf_counter() < deadline:
        for message in consumer.consume(num_messages=10000, timeout=1.0):
            if message.error() is None:
                received += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    if received < count:
        raise RuntimeError(f"consumed only {received} of {count}")
    return {"msgs_per_s": received / elapsed, "mb_per_s": received * size / elapsed / 1e6}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--acks", default="1")
    parser.add_argument("--replication-factor", type=int, default=1,
                        help="replicas of the benchmark topic (a cluster; min.insync.replicas=2 when > 1)")
    parser.add_argument("--compression", default="none")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-X", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                        help="extra librdkafka config, e.g. -X security.protocol=ssl -X ssl.ca.location=ca.pem")
    args = parser.parse_args()
    for pair in args.extra:
        key, _, value = pair.partition("=")
        EXTRA[key] = value

    runs = []
    for run in range(args.runs):
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        create_topic(args.bootstrap, topic, args.partitions, args.replication_factor,
                     {"min.insync.replicas": "2"} if args.replication_factor > 1 else None)
        p = produce(args.bootstrap, topic, args.size, args.count, args.acks, args.compression)
        c = consume(args.bootstrap, topic, args.partitions, args.count, args.size)
        runs.append({"produce": p, "consume": c})
        if not args.json:
            print(
                f"run {run + 1}: produce {p['msgs_per_s']:.0f} msg/s {p['mb_per_s']:.1f} MB/s "
                f"p50 {p['p50_ms']:.1f} ms p99 {p['p99_ms']:.1f} ms | "
                f"consume {c['msgs_per_s']:.0f} msg/s {c['mb_per_s']:.1f} MB/s",
                file=sys.stderr,
            )
    median = lambda phase, key: statistics.median(r[phase][key] for r in runs)
    summary = {
        "partitions": args.partitions,
        "size": args.size,
        "acks": args.acks,
        "runs": args.runs,
        "produce_mb_per_s": median("produce", "mb_per_s"),
        "produce_msgs_per_s": median("produce", "msgs_per_s"),
        "produce_p99_ms": median("produce", "p99_ms"),
        "consume_mb_per_s": median("consume", "mb_per_s"),
        "consume_msgs_per_s": median("consume", "msgs_per_s"),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"median of {args.runs}: partitions={args.partitions} size={args.size} acks={args.acks} "
            f"produce {summary['produce_mb_per_s']:.1f} MB/s ({summary['produce_msgs_per_s']:.0f} msg/s, "
            f"p99 {summary['produce_p99_ms']:.1f} ms) consume {summary['consume_mb_per_s']:.1f} MB/s"
        )


if __name__ == "__main__":
    main()
