"""The round-trip scenario through kafka-python (pure Python; its defaults, including
idempotence on and the Java-compatible murmur2 partitioner)."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from .scenario import Record, Result, Spec
from .steps import step

CLIENT = "kafka-python"
WAIT_S = 30.0


def base_config(bootstrap: str) -> dict:
    return {"bootstrap_servers": bootstrap, "client_id": "strom-compat-kafka-python",
            "request_timeout_ms": 30000}


def partition_count(admin: KafkaAdminClient, topic: str) -> int:
    (description,) = admin.describe_topics([topic])
    if description.get("error_code", 0) != 0:
        return -1
    return len(description["partitions"])


def wait_for_partitions(admin: KafkaAdminClient, topic: str, partitions: int) -> int:
    deadline = time.monotonic() + WAIT_S
    seen = -1
    while time.monotonic() < deadline:
        seen = partition_count(admin, topic)
        if seen >= partitions:
            return seen
        time.sleep(0.2)
    return seen


def topic_gone(admin: KafkaAdminClient, topic: str) -> bool:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if topic not in admin.list_topics():
            return True
        time.sleep(0.2)
    return False


def run(bootstrap: str, spec: Spec) -> Result:
    admin = KafkaAdminClient(**base_config(bootstrap))
    try:
        return _run(admin, bootstrap, spec)
    finally:
        admin.close()


def _run(admin: KafkaAdminClient, bootstrap: str, spec: Spec) -> Result:
    with step(CLIENT, "CreateTopics"):
        admin.create_topics([NewTopic(spec.topic, num_partitions=spec.partitions, replication_factor=1)])
        created = wait_for_partitions(admin, spec.topic, spec.partitions)

    delivered: dict[int, tuple[int, int]] = {}
    with step(CLIENT, f"Produce (compression {spec.compression})"):
        producer = KafkaProducer(
            **base_config(bootstrap),
            compression_type=None if spec.compression == "none" else spec.compression,
            linger_ms=20,
        )
        try:
            futures = [
                (
                    message.id,
                    producer.send(
                        spec.topic,
                        key=message.key,
                        value=message.value,
                        headers=message.headers,
                        timestamp_ms=message.timestamp_ms,
                    ),
                )
                for message in spec.messages
            ]
            producer.flush(timeout=WAIT_S)
            for message_id, future in futures:
                metadata = future.get(timeout=WAIT_S)
                delivered[message_id] = (metadata.partition, metadata.offset)
        finally:
            producer.close(timeout=5)

    with step(CLIENT, "Fetch (assigned partitions, from beginning)"):
        consumer = KafkaConsumer(**base_config(bootstrap), group_id=None, enable_auto_commit=False,
                                 auto_offset_reset="earliest")
        consumed: list[Record] = []
        try:
            partitions = [TopicPartition(spec.topic, p) for p in range(spec.partitions)]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            end_offsets = consumer.end_offsets(partitions)
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                if all(consumer.position(tp) >= end_offsets[tp] for tp in partitions):
                    break
                for tp, batch in consumer.poll(timeout_ms=500).items():
                    for r in batch:
                        consumed.append(Record(tp.partition, r.offset, r.key, r.value,
                                               list(r.headers or []), r.timestamp))

            times: list[tuple[int, int, int | None]] = []
            with step(CLIENT, "ListOffsets by timestamp (offsets_for_times)"):
                for timestamp in spec.timestamp_queries:
                    answer = consumer.offsets_for_times({tp: timestamp for tp in partitions})
                    for tp in partitions:
                        found = answer.get(tp)
                        times.append((timestamp, tp.partition, None if found is None else found.offset))
        finally:
            consumer.close()

    with step(CLIENT, "DeleteTopics"):
        admin.delete_topics([spec.topic])
        gone = topic_gone(admin, spec.topic)

    return Result(created, consumed, delivered, times, gone)
