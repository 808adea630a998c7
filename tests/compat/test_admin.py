"""Admin calls from independent clients: librdkafka (confluent_kafka AdminClient) and
kafka-python (KafkaAdminClient). Configs (describe, alter, incremental alter, invalid
values), delete_records, create_partitions, and a compacted topic seen by a consumer."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
)

from strom_compat.confluent_driver import create_topic, wait_for_partitions

WAIT_S = 30.0


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin_for(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def describe_topic(admin: AdminClient, topic: str) -> dict:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return admin.describe_configs([resource])[resource].result(timeout=WAIT_S)


def incremental(admin: AdminClient, topic: str, entries: list[ConfigEntry]):
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    return admin.incremental_alter_configs([resource])[resource].result(timeout=WAIT_S)


def produce(broker, topic: str, records: list[tuple[bytes | None, bytes]]) -> list:
    errors = []
    # Small batches: the compacted topic below has tiny segments, and a request larger than
    # segment.bytes is refused (RECORD_LIST_TOO_LARGE), as Kafka does.
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0,
                         "batch.num.messages": 5})
    for key, value in records:
        producer.produce(topic, key=key, value=value, partition=0,
                         on_delivery=lambda err, msg: errors.append(err))
    producer.flush(WAIT_S)
    return errors


def consume_all(broker, topic: str, high_watermark: int) -> list[tuple[int, bytes | None, bytes]]:
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": fresh("admin-reader"),
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    consumer.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.monotonic() + WAIT_S
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                if out and out[-1][0] >= high_watermark - 1:
                    break
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    break
                raise KafkaException(message.error())
            out.append((message.offset(), message.key(), message.value()))
            if message.offset() >= high_watermark - 1:
                break
    finally:
        consumer.close()
    return out


def test_given_librdkafka_admin_when_configs_altered_should_describe_them_with_sources(broker):
    admin = admin_for(broker)
    topic = fresh("admin-configs")
    assert create_topic(admin, topic, 1) == 1

    incremental(admin, topic, [
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
    ])
    configs = describe_topic(admin, topic)
    assert configs["retention.ms"].value == "3600000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["cleanup.policy"].value == "delete,compact"
    assert configs["segment.bytes"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    incremental(admin, topic, [
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT),
    ])
    configs = describe_topic(admin, topic)
    assert configs["retention.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["cleanup.policy"].value == "compact"

    with pytest.raises(KafkaException) as raised:
        incremental(admin, topic, [
            ConfigEntry("retention.ms", "-7", incremental_operation=AlterConfigOpType.SET),
        ])
    error = raised.value.args[0]
    assert error.code() == KafkaError.INVALID_CONFIG
    assert "retention.ms" in error.str()

    # The legacy AlterConfigs (full replace) still works for clients that send it.
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"segment.ms": "600000"})
    admin.alter_configs([resource])[resource].result(timeout=WAIT_S)
    configs = describe_topic(admin, topic)
    assert configs["segment.ms"].value == "600000"
    assert configs["cleanup.policy"].value == "delete", "full replace removed the override"

    unknown = ConfigResource(ConfigResource.Type.TOPIC, fresh("no-such-topic"),
                             incremental_configs=[ConfigEntry("retention.ms", "1",
                                                              incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as raised:
        admin.incremental_alter_configs([unknown])[unknown].result(timeout=WAIT_S)
    assert raised.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_given_librdkafka_admin_when_records_deleted_and_partitions_added_should_apply(broker):
    admin = admin_for(broker)
    topic = fresh("admin-records")
    assert create_topic(admin, topic, 1) == 1
    assert produce(broker, topic, [(b"k", str(i).encode()) for i in range(20)]) == [None] * 20

    result = admin.delete_records([TopicPartition(topic, 0, 7)])
    deleted = result[TopicPartition(topic, 0, 7)].result(timeout=WAIT_S)
    assert deleted.low_watermark == 7
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": fresh("wm")})
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.close()
    assert (low, high) == (7, 20)
    records = consume_all(broker, topic, 20)
    assert [offset for offset, _, _ in records] == list(range(7, 20))

    admin.create_partitions([NewPartitions(topic, 3)])[topic].result(timeout=WAIT_S)
    assert wait_for_partitions(admin, topic, 3) == 3


def test_given_compacted_topic_when_cleaner_runs_should_serve_latest_per_key(own_broker):
    broker = own_broker("admin-compact", {"log.cleaner.backoff.ms": "100"})
    broker.start()
    admin = admin_for(broker)
    topic = fresh("admin-compact")
    assert create_topic(admin, topic, 1) == 1
    incremental(admin, topic, [
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.bytes", "2048", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET),
    ])
    records = [(f"key-{i % 5}".encode(), f"value-{i}".encode()) for i in range(200)]
    assert produce(broker, topic, records) == [None] * 200

    errors = produce(broker, topic, [(None, b"no key")])
    assert errors[0] is not None and errors[0].code() == KafkaError.INVALID_RECORD

    deadline = time.monotonic() + WAIT_S
    seen = consume_all(broker, topic, 200)
    while len(seen) > 40 and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = consume_all(broker, topic, 200)
    assert len(seen) <= 40, f"not compacted: {len(seen)} records"
    latest = {}
    for offset, key, value in seen:
        assert value == f"value-{offset}".encode(), "offsets are unchanged"
        latest[key] = value
    assert latest == {f"key-{k}".encode(): f"value-{195 + k}".encode() for k in range(5)}


def test_given_kafka_python_admin_when_configs_and_partitions_changed_should_apply(broker):
    from kafka.admin import ConfigResource as KpResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient, NewPartitions as KpPartitions
    from kafka.admin import NewTopic as KpTopic

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        topic = fresh("admin-kp")
        admin.create_topics([KpTopic(topic, num_partitions=1, replication_factor=1)])
        admin.alter_configs([KpResource(ConfigResourceType.TOPIC, topic,
                                        configs={"retention.ms": "7200000"})])
        described = admin.describe_configs([KpResource(ConfigResourceType.TOPIC, topic)])
        text = repr(described)
        assert "retention.ms" in text and "7200000" in text
        admin.create_partitions({topic: KpPartitions(total_count=2)})
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            topics = admin.describe_topics([topic])
            if len(topics[0]["partitions"]) == 2:
                break
            time.sleep(0.2)
        assert len(topics[0]["partitions"]) == 2
        assert produce(broker, topic, [(b"k", b"v")] * 5) == [None] * 5
        from kafka.structs import TopicPartition as KpTopicPartition
        result = admin.delete_records({KpTopicPartition(topic, 0): 3})
        low_watermark = result[KpTopicPartition(topic, 0)]
        low_watermark = low_watermark.get("low_watermark", low_watermark) if isinstance(low_watermark, dict) else low_watermark
        assert low_watermark == 3, result
    finally:
        admin.close()
