"""The round-trip scenario through confluent_kafka (librdkafka, bundled in the wheel)."""

from __future__ import annotations

import functools
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from .scenario import Record, Result, Spec
from .steps import step

CLIENT = "confluent_kafka"
WAIT_S = 30.0


def base_config(bootstrap: str) -> dict:
    return {
        "bootstrap.servers": bootstrap,
        "client.id": "strom-compat-confluent",
        "socket.timeout.ms": 10000,
    }


def create_topic(admin: AdminClient, topic: str, partitions: int) -> int:
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)], operation_timeout=10
    )
    futures[topic].result(timeout=WAIT_S)
    return wait_for_partitions(admin, topic, partitions)


def wait_for_partitions(admin: AdminClient, topic: str, partitions: int) -> int:
    """Metadata may lag creation briefly (LEADER_NOT_AVAILABLE); wait until leaders exist."""
    deadline = time.monotonic() + WAIT_S
    seen = -1
    while time.monotonic() < deadline:
        metadata = admin.list_topics(timeout=10).topics.get(topic)
        if metadata is not None and metadata.error is None:
            seen = len(metadata.partitions)
            if seen >= partitions and all(p.leader >= 0 for p in metadata.partitions.values()):
                return seen
        time.sleep(0.2)
    return seen


def topic_gone(admin: AdminClient, topic: str) -> bool:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if topic not in admin.list_topics(timeout=10).topics:
            return True
        time.sleep(0.2)
    return False


def consume_all(bootstrap: str, topic: str, partitions: int, expected: int) -> list[Record]:
    """Explicit assignment from the beginning (no group protocol), until every partition
    reported EOF and `expected` records arrived, or WAIT_S passed."""
    consumer = Consumer(
        {
            **base_config(bootstrap),
            "group.id": f"strom-compat-unused-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    records: list[Record] = []
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        eof: set[int] = set()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and not (len(eof) == partitions and len(records) >= expected):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(msg.partition())
                    continue
                raise RuntimeError(f"consumer error: {msg.error()}")
            eof.discard(msg.partition())
            records.append(
                Record(
                    msg.partition(),
                    msg.offset(),
                    msg.key(),
                    msg.value(),
                    list(msg.headers() or []),
                    msg.timestamp()[1],
                )
            )
    finally:
        consumer.close()
    return records


def offsets_for_times(bootstrap: str, spec: Spec) -> list[tuple[int, int, int | None]]:
    consumer = Consumer({**base_config(bootstrap), "group.id": "strom-compat-unused"})
    out = []
    try:
        for timestamp in spec.timestamp_queries:
            answer = consumer.offsets_for_times(
                [TopicPartition(spec.topic, p, timestamp) for p in range(spec.partitions)], timeout=WAIT_S
            )
            for tp in answer:
                if tp.error is not None:
                    raise RuntimeError(f"partition {tp.partition} ts {timestamp}: {tp.error}")
                out.append((timestamp, tp.partition, None if tp.offset < 0 else tp.offset))
    finally:
        consumer.close()
    return out


def run(bootstrap: str, spec: Spec) -> Result:
    admin = AdminClient(base_config(bootstrap))
    with step(CLIENT, "CreateTopics"):
        created = create_topic(admin, spec.topic, spec.partitions)

    delivered: dict[int, tuple[int, int]] = {}
    errors: list[str] = []

    def on_delivery(message_id, err, msg):
        # Never raise in a librdkafka callback: the exception would surface as a SystemError.
        if err is not None:
            errors.append(f"message {message_id}: {err}")
        else:
            delivered[message_id] = (msg.partition(), msg.offset())

    with step(CLIENT, f"Produce (compression {spec.compression})"):
        producer = Producer(
            {
                **base_config(bootstrap),
                "compression.type": spec.compression,
                "partitioner": "murmur2_random",  # Java-compatible for non-null keys
                "linger.ms": 20,
                "acks": "all",
                "message.timeout.ms": 30000,
            }
        )
        for message in spec.messages:
            producer.produce(
                spec.topic,
                key=message.key,
                value=message.value,
                headers=message.headers,
                timestamp=message.timestamp_ms,
                on_delivery=functools.partial(on_delivery, message.id),
            )
        remaining = producer.flush(WAIT_S)
        producer.close()
        assert not errors, f"delivery failed: {errors[:5]}"
        assert remaining == 0, f"{remaining} messages still unacknowledged after {WAIT_S} s"

    with step(CLIENT, "Fetch (assigned partitions, from beginning)"):
        consumed = consume_all(bootstrap, spec.topic, spec.partitions, len(spec.messages))

    with step(CLIENT, "ListOffsets by timestamp (offsets_for_times)"):
        times = offsets_for_times(bootstrap, spec)

    with step(CLIENT, "DeleteTopics"):
        admin.delete_topics([spec.topic], operation_timeout=10)[spec.topic].result(timeout=WAIT_S)
        gone = topic_gone(admin, spec.topic)

    return Result(created, consumed, delivered, times, gone)
