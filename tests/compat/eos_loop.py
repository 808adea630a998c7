"""A consume-transform-produce application with exactly-once semantics (librdkafka's
transactional producer), run as its own process so a test can kill it with SIGKILL.

    eos_loop.py --bootstrap HOST:PORT --input IN --output OUT --group G --transactional-id T

Each transaction: poll up to --batch-max records from IN (read_committed, no auto commit),
produce `out:<value>` for each to OUT (same partition, key = the input value), send the
consumer's positions with send_offsets_to_transaction, commit. Restarted with the same
transactional.id, init_transactions fences the killed instance and aborts its open
transaction, and the group's committed offsets say where to resume.

Exits 0 once every input partition's committed offset reached its end (with --exit-when-done)
or --deadline-s passed (exit 3). Prints one line per committed transaction
(`committed N records`) so a watcher can see progress. Never writes outside OUT and the group.
"""

from __future__ import annotations

import argparse
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

# One transaction's records; small enough that kills land inside transactions often.
BATCH_MAX_DEFAULT = 50
POLL_TIMEOUT_S = 0.5


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--transactional-id", required=True)
    parser.add_argument("--instance-id", default=None,
                        help="group.instance.id (static membership: a restart takes the "
                             "killed member's place without waiting for its session to expire)")
    parser.add_argument("--batch-max", type=int, default=BATCH_MAX_DEFAULT)
    parser.add_argument("--in-transaction-pause-ms", type=int, default=0,
                        help="sleep this long between producing a batch and committing it, so a "
                             "kill lands inside an open transaction more often")
    parser.add_argument("--exit-when-done", action="store_true")
    parser.add_argument("--deadline-s", type=float, default=60.0)
    parser.add_argument("--debug", default=None,
                        help="librdkafka debug contexts for both clients, e.g. cgrp,eos")
    return parser.parse_args(argv)


def input_ends(consumer: Consumer, topic: str) -> dict[int, int]:
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    ends = {}
    for partition in metadata.partitions:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        ends[partition] = high
    return ends


def all_committed(consumer: Consumer, topic: str, ends: dict[int, int]) -> bool:
    committed = consumer.committed([TopicPartition(topic, p) for p in ends], timeout=10)
    return all(tp.offset >= ends[tp.partition] for tp in committed)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    deadline = time.monotonic() + args.deadline_s
    consumer_config = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    producer_config = {
        "bootstrap.servers": args.bootstrap,
        "transactional.id": args.transactional_id,
        "transaction.timeout.ms": 10000,
        "linger.ms": 5,
    }
    if args.instance_id:
        consumer_config["group.instance.id"] = args.instance_id
    if args.debug:
        consumer_config["debug"] = producer_config["debug"] = args.debug
    producer = Producer(producer_config)
    # Before joining the group: fencing the killed instance aborts its open transaction and
    # with it any offsets it sent, so the committed offsets we resume from are stable.
    producer.init_transactions(30)
    print("initialised", flush=True)
    consumer = Consumer(consumer_config)
    consumer.subscribe([args.input])
    ends = input_ends(consumer, args.input)
    committed_total = 0
    try:
        while time.monotonic() < deadline:
            records = consumer.consume(num_messages=args.batch_max, timeout=POLL_TIMEOUT_S)
            records = [r for r in records if r.error() is None]
            if not records:
                if args.exit_when_done and consumer.assignment() and all_committed(
                        consumer, args.input, ends):
                    print(f"done after {committed_total} records", flush=True)
                    return 0
                continue
            producer.begin_transaction()
            for record in records:
                producer.produce(args.output, key=record.value(), value=b"out:" + record.value(),
                                 partition=record.partition())
            if args.in_transaction_pause_ms:
                producer.flush(30)  # the open transaction's records reach the log first
                print(f"open {len(records)} records", flush=True)
                time.sleep(args.in_transaction_pause_ms / 1000)
            positions = consumer.position(consumer.assignment())
            producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
            try:
                producer.commit_transaction(30)
            except KafkaException as error:
                if error.args[0].txn_requires_abort():
                    # Abortable (e.g. a rebalance fenced our offsets): abort, rewind to the
                    # committed offsets and do the batch again.
                    producer.abort_transaction(30)
                    rewind = consumer.committed(consumer.assignment(), timeout=10)
                    for tp in rewind:
                        if tp.offset < 0:
                            tp.offset = -2  # OFFSET_BEGINNING
                        consumer.seek(tp)
                    print(f"aborted: {error}", flush=True)
                    continue
                raise
            committed_total += len(records)
            print(f"committed {len(records)} records", flush=True)
        print(f"deadline passed after {committed_total} records", flush=True)
        return 3
    finally:
        # Reached only on a clean exit; a SIGKILL skips it, which is the point of the test.
        consumer.close()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KafkaException as error:
        kafka_error: KafkaError = error.args[0]
        print(f"fatal: {kafka_error} (fatal={kafka_error.fatal()})", file=sys.stderr, flush=True)
        sys.exit(2)
