"""Server-side schema validation (Confluent Server's topic configs
`confluent.value.schema.validation` / `confluent.key.schema.validation`) driven by
confluent-kafka: records its Avro serializer writes (magic byte 0 + a registered id of
`<topic>-value`) are taken; raw bytes and ids of another subject are refused with
INVALID_RECORD, which librdkafka reports per record."""

from __future__ import annotations

import struct

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from test_schema_registry import USER_V1, client, registry_broker, wait_registry  # noqa: F401

OTHER = """{"type": "record", "name": "Other", "namespace": "compat", "fields": []}"""


def create(broker, topic: str, configs: dict[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([NewTopic(topic, 1, 1, config=configs)])
    futures[topic].result(30)


def produce(broker, topic: str, values: list[bytes | None], keys: list[bytes | None] | None = None):
    """Produces each value (one batch, idempotence off so a refusal is not retried); the
    delivery error of each, None for delivered."""
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "linger.ms": 50,
            "enable.idempotence": False,
            "retries": 0,
        }
    )
    results: list = [Ellipsis] * len(values)

    def report(index):
        def done(error, _message):
            results[index] = error

        return done

    for index, value in enumerate(values):
        key = keys[index] if keys else None
        producer.produce(topic, value=value, key=key, on_delivery=report(index))
    assert producer.flush(30) == 0
    return results


def test_serializer_records_are_taken_and_raw_bytes_refused(registry_broker):
    wait_registry(registry_broker)
    topic = "validated"
    create(registry_broker, topic, {"confluent.value.schema.validation": "true"})
    serializer = AvroSerializer(client(registry_broker), USER_V1)
    context = SerializationContext(topic, MessageField.VALUE)
    good = [serializer({"name": f"u{i}", "visits": i}, context) for i in range(3)]
    assert good[0][0] == 0, "the serializer writes the wire format"
    assert produce(registry_broker, topic, good) == [None, None, None]

    other_id = client(registry_broker).register_schema("elsewhere-value", Schema(OTHER, "AVRO"))
    foreign = b"\x00" + struct.pack(">i", other_id) + b"\x02"
    results = produce(registry_broker, topic, [good[0], b"not avro", foreign, None])
    assert results[3] is None or results[3].code() != KafkaError.INVALID_RECORD, results
    refused = [r for r in results[:3] if r is not None]
    assert refused, results
    # The named records are INVALID_RECORD; their batch mates fail as different records.
    assert results[1].code() == KafkaError.INVALID_RECORD, results
    assert results[2].code() == KafkaError.INVALID_RECORD, results
    assert results[0].code() != KafkaError.NO_ERROR, results

    # A tombstone alone passes, as in Confluent Server.
    assert produce(registry_broker, topic, [None]) == [None]


def test_key_validation_checks_the_key_subject(registry_broker):
    wait_registry(registry_broker)
    topic = "keyed"
    create(registry_broker, topic, {"confluent.key.schema.validation": "true"})
    serializer = AvroSerializer(client(registry_broker), USER_V1)
    key = serializer({"name": "k", "visits": 1}, SerializationContext(topic, MessageField.KEY))
    assert client(registry_broker).get_subjects() == [f"{topic}-key"]
    assert produce(registry_broker, topic, [b"any value"], keys=[key]) == [None]
    (error,) = produce(registry_broker, topic, [b"any value"], keys=[b"raw key"])
    assert error is not None and error.code() == KafkaError.INVALID_RECORD, error
