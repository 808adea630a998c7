"""The schema registry built into strom, driven by confluent-kafka's own SchemaRegistryClient
and its Avro, JSON Schema and Protobuf serializers and deserializers: typed records produced
and consumed end to end, schema evolution allowed and refused, soft and permanent delete,
modes, a Confluent `_schemas` copied in under IMPORT, and a kill -9."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from strom_compat.broker import Broker, free_port

USER_V1 = """{"type": "record", "name": "User", "namespace": "compat",
  "fields": [{"name": "name", "type": "string"}, {"name": "visits", "type": "long"}]}"""
# v1 plus a field with a default: BACKWARD compatible.
USER_V2 = """{"type": "record", "name": "User", "namespace": "compat",
  "fields": [{"name": "name", "type": "string"}, {"name": "visits", "type": "long"},
             {"name": "email", "type": ["null", "string"], "default": null}]}"""
# visits changes from long to string: incompatible.
USER_BAD = """{"type": "record", "name": "User", "namespace": "compat",
  "fields": [{"name": "name", "type": "string"}, {"name": "visits", "type": "string"}]}"""


@pytest.fixture
def registry_broker(strom_bin):
    broker = Broker("schema-registry", {"schema.registry.listener": f"127.0.0.1:{free_port()}"})
    broker.start()
    yield broker
    broker.close()


def registry_url(broker: Broker) -> str:
    return "http://" + broker.extra_config["schema.registry.listener"]


def client(broker: Broker) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry_url(broker)})


def wait_registry(broker: Broker) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            client(broker).get_subjects()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def produce_users(broker: Broker, topic: str, schema: str, users: list[dict]) -> None:
    serializer = AvroSerializer(client(broker), schema)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for user in users:
        value = serializer(user, SerializationContext(topic, MessageField.VALUE))
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0


def consume_users(broker: Broker, topic: str, count: int, reader_schema: str | None = None) -> list[dict]:
    deserializer = AvroDeserializer(client(broker), reader_schema)
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"g-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    out: list[dict] = []
    deadline = time.monotonic() + 60
    try:
        while len(out) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            out.append(deserializer(message.value(), SerializationContext(topic, MessageField.VALUE)))
    finally:
        consumer.close()
    return out


def test_avro_records_round_trip_through_the_registry_and_evolve(registry_broker):
    wait_registry(registry_broker)
    topic = "users"
    produce_users(registry_broker, topic, USER_V1, [{"name": f"u{i}", "visits": i} for i in range(5)])
    sr = client(registry_broker)
    assert sr.get_subjects() == [f"{topic}-value"]
    v1 = sr.get_latest_version(f"{topic}-value")
    assert v1.version == 1

    # A compatible evolution: registered by the serializer, read back by an old and a new reader.
    produce_users(
        registry_broker, topic, USER_V2, [{"name": "new", "visits": 9, "email": "n@example.com"}]
    )
    assert sr.get_versions(f"{topic}-value") == [1, 2]
    records = consume_users(registry_broker, topic, 6)
    assert [r["name"] for r in records] == ["u0", "u1", "u2", "u3", "u4", "new"]
    assert records[5]["email"] == "n@example.com"
    # Old records read with the new schema get the default.
    upgraded = consume_users(registry_broker, topic, 6, reader_schema=USER_V2)
    assert upgraded[0] == {"name": "u0", "visits": 0, "email": None}

    # An incompatible change is refused with 409 and tested false beforehand.
    assert not sr.test_compatibility(f"{topic}-value", Schema(USER_BAD, "AVRO"))
    with pytest.raises(SchemaRegistryError) as refused:
        sr.register_schema(f"{topic}-value", Schema(USER_BAD, "AVRO"))
    assert refused.value.http_status_code == 409
    # Under NONE it goes in.
    sr.set_compatibility(f"{topic}-value", "NONE")
    assert sr.get_compatibility(f"{topic}-value") == "NONE"
    sr.register_schema(f"{topic}-value", Schema(USER_BAD, "AVRO"))
    assert sr.get_versions(f"{topic}-value") == [1, 2, 3]


def test_lookup_delete_and_modes_through_the_client(registry_broker):
    wait_registry(registry_broker)
    sr = client(registry_broker)
    schema_id = sr.register_schema("a-value", Schema(USER_V1, "AVRO"))
    assert sr.register_schema("b-value", Schema(USER_V1, "AVRO")) == schema_id
    found = sr.lookup_schema("a-value", Schema(USER_V1, "AVRO"))
    assert (found.schema_id, found.version) == (schema_id, 1)
    assert sr.get_schema(schema_id).schema_type == "AVRO"

    with pytest.raises(SchemaRegistryError) as unknown:
        sr.get_latest_version("nothing-value")
    assert unknown.value.error_code == 40401

    assert sr.delete_subject("b-value") == [1]
    assert sr.get_subjects() == ["a-value"]
    assert sr.delete_subject("b-value", permanent=True) == [1]

    assert sr.update_global_mode("READONLY") == "READONLY"
    with pytest.raises(SchemaRegistryError) as read_only:
        sr.register_schema("a-value", Schema(USER_V2, "AVRO"))
    assert read_only.value.error_code == 42205
    assert sr.update_global_mode("READWRITE") == "READWRITE"
    assert sr.update_mode("a-value", "READONLY") == "READONLY"
    assert sr.get_mode("a-value") == "READONLY"
    with pytest.raises(SchemaRegistryError):
        sr.register_schema("a-value", Schema(USER_V2, "AVRO"))
    assert sr.delete_mode("a-value") == "READONLY"
    sr.register_schema("a-value", Schema(USER_V2, "AVRO"))
    assert sr.get_versions("a-value") == [1, 2]


def test_registry_survives_kill_9(registry_broker):
    wait_registry(registry_broker)
    sr = client(registry_broker)
    ids = [sr.register_schema(f"s{i}-value", Schema(USER_V1 if i % 2 else USER_V2, "AVRO")) for i in range(6)]
    sr.set_compatibility(level="FULL")
    registry_broker.kill()
    registry_broker.start()
    wait_registry(registry_broker)
    sr = client(registry_broker)
    assert sr.get_subjects() == [f"s{i}-value" for i in range(6)]
    assert sr.get_compatibility() == "FULL"
    for i, schema_id in enumerate(ids):
        assert sr.get_latest_version(f"s{i}-value").schema_id == schema_id


def test_a_confluent_schemas_topic_copied_in_under_import_mode_is_served(registry_broker):
    """Records in Confluent's own `_schemas` key/value formats, produced by a plain Kafka
    producer (as a copy of a Confluent registry's topic would be), are served with their ids."""
    wait_registry(registry_broker)
    sr = client(registry_broker)
    assert sr.update_global_mode("IMPORT") == "IMPORT"  # also creates _schemas
    producer = Producer({"bootstrap.servers": registry_broker.bootstrap})
    subject = "legacy-value"
    records = [
        (
            {"keytype": "SCHEMA", "subject": subject, "version": 3, "magic": 1},
            {"subject": subject, "version": 3, "id": 42, "schema": USER_V1, "deleted": False},
        ),
        ({"keytype": "CONFIG", "subject": subject, "magic": 0}, {"compatibilityLevel": "FULL"}),
        ({"keytype": "NOOP", "magic": 0}, None),
    ]
    for key, value in records:
        producer.produce(
            "_schemas",
            key=json.dumps(key).encode(),
            value=None if value is None else json.dumps(value).encode(),
        )
    assert producer.flush(30) == 0

    registered = sr.get_latest_version(subject)
    assert (registered.schema_id, registered.version) == (42, 3)
    assert sr.get_compatibility(subject) == "FULL"
    # A record written with id 42 round-trips.
    serializer = AvroSerializer(
        sr, USER_V1, conf={"auto.register.schemas": False, "use.latest.version": True}
    )
    context = SerializationContext("legacy", MessageField.VALUE)
    payload = serializer({"name": "old", "visits": 1}, context)
    assert payload[1:5] == (42).to_bytes(4, "big")
    assert AvroDeserializer(sr)(payload, context) == {"name": "old", "visits": 1}

    # Back to READWRITE: new ids follow the imported ones.
    assert sr.update_global_mode("READWRITE") == "READWRITE"
    assert sr.register_schema("fresh-value", Schema(USER_BAD, "AVRO")) == 43


ORDER_JSON_SCHEMA = json.dumps(
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Order",
        "type": "object",
        "properties": {"id": {"type": "string"}, "cents": {"type": "integer"}},
        "required": ["id", "cents"],
    }
)


def round_trip(broker: Broker, topic: str, serializer, deserializer, values: list) -> list:
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for value in values:
        producer.produce(topic, value=serializer(value, SerializationContext(topic, MessageField.VALUE)))
    assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": f"g-{uuid.uuid4()}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    out = []
    deadline = time.monotonic() + 60
    try:
        while len(out) < len(values) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            out.append(deserializer(message.value(), SerializationContext(topic, MessageField.VALUE)))
    finally:
        consumer.close()
    return out


def test_json_schema_records_round_trip(registry_broker):
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer

    wait_registry(registry_broker)
    sr = client(registry_broker)
    values = [{"id": f"o{i}", "cents": i * 100} for i in range(3)]
    serializer = JSONSerializer(ORDER_JSON_SCHEMA, sr)
    deserializer = JSONDeserializer(ORDER_JSON_SCHEMA)
    assert round_trip(registry_broker, "orders-json", serializer, deserializer, values) == values
    registered = sr.get_latest_version("orders-json-value")
    assert registered.schema.schema_type == "JSON"


def test_protobuf_records_round_trip(registry_broker):
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer

    wait_registry(registry_broker)
    sr = client(registry_broker)
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="compat_order.proto", package="compat", syntax="proto3")
    message = file.message_type.add(name="Order")
    message.field.add(name="id", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    message.field.add(name="cents", number=2, type=field.TYPE_INT64, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    order = message_factory.GetMessageClass(pool.FindMessageTypeByName("compat.Order"))

    serializer = ProtobufSerializer(order, sr, {"use.deprecated.format": False})
    deserializer = ProtobufDeserializer(order, {"use.deprecated.format": False})
    values = [order(id=f"o{i}", cents=i) for i in range(3)]
    got = round_trip(registry_broker, "orders-proto", serializer, deserializer, values)
    assert [(o.id, o.cents) for o in got] == [("o0", 0), ("o1", 1), ("o2", 2)]
    assert sr.get_latest_version("orders-proto-value").schema.schema_type == "PROTOBUF"


def retry(call, timeout: float = 40.0):
    """`call()` until it stops raising (a leader election under way), or the last error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_three_nodes_serve_the_registry_and_survive_a_writer_kill(request, strom_bin):
    from strom_compat.cluster import Cluster

    cluster = Cluster("schema-registry")
    request.node.extra_brokers = list(cluster.nodes.values())
    urls = {}
    for node_id, node in cluster.nodes.items():
        address = f"127.0.0.1:{free_port()}"
        node.extra_config["schema.registry.listener"] = address
        urls[node_id] = f"http://{address}"
    try:
        cluster.start()
        topic = "cluster-users"
        # Serialized through node 2's registry, whichever node is the writer.
        sr2 = SchemaRegistryClient({"url": urls[2]})
        serializer = AvroSerializer(sr2, USER_V1)
        context = SerializationContext(topic, MessageField.VALUE)
        first = retry(lambda: serializer({"name": "a", "visits": 1}, context))
        schema_id = int.from_bytes(first[1:5], "big")

        leader = cluster.partitions("_schemas")[0][0]
        cluster.nodes[leader].kill()
        survivor = next(n for n in urls if n != leader)
        sr = SchemaRegistryClient({"url": urls[survivor]})
        # Everything registered before the kill is there; evolving still works.
        assert retry(lambda: sr.get_schema(schema_id)).schema_type == "AVRO"
        evolved = retry(lambda: sr.register_schema(f"{topic}-value", Schema(USER_V2, "AVRO")))
        assert evolved > schema_id
        assert retry(lambda: sr.get_versions(f"{topic}-value")) == [1, 2]
        payload = AvroDeserializer(sr)(first, context)
        assert payload == {"name": "a", "visits": 1}
    finally:
        cluster.close()
