"""Edge cases that real clients trip over, each on its own topic of the module's broker:
high watermark after a multi-record batch, a consumer starting in the middle of a batch, a
long-polling Fetch woken by a produce, and acks=0 writes."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from strom_compat import kafka_wire
from strom_compat.confluent_driver import create_topic
from strom_compat.steps import step

BATCH_RECORDS = 10
LONG_POLL_MAX_WAIT_MS = 5000


def new_topic(broker, partitions: int = 1, prefix: str = "edge") -> str:
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    with step("confluent_kafka", "CreateTopics"):
        created = create_topic(AdminClient({"bootstrap.servers": broker.bootstrap}), topic, partitions)
    assert created == partitions, f"metadata shows {created} partitions for {topic}, created {partitions}"
    return topic


def produce_one_batch(broker, topic: str, codec: str, count: int = BATCH_RECORDS) -> list[tuple[int, int]]:
    """`count` records in one Produce request: a long linger and one flush make librdkafka send
    them as one batch. Returns (partition, offset) per record, in production order."""
    delivered: list[tuple[int, int] | str] = [None] * count  # type: ignore[list-item]

    def on_delivery(index, err, msg):
        delivered[index] = str(err) if err is not None else (msg.partition(), msg.offset())

    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 1000, "acks": "all",
                         "compression.type": codec, "batch.num.messages": 10000})
    for index in range(count):
        producer.produce(topic, key=b"k", value=b"record-%d" % index, partition=0,
                         on_delivery=lambda err, msg, i=index: on_delivery(i, err, msg))
    remaining = producer.flush(30)
    producer.close()
    assert remaining == 0, f"{remaining} records unacknowledged after 30 s"
    errors = [d for d in delivered if isinstance(d, str)]
    assert not errors, f"delivery errors: {errors}"
    return delivered  # type: ignore[return-value]


def raw_fetch(broker, topic: str, offset: int, max_wait_ms: int = 100, min_bytes: int = 1):
    host, port = broker.bootstrap.split(":")
    with kafka_wire.Connection(host, int(port), timeout_s=max_wait_ms / 1000 + 10) as conn:
        version = kafka_wire.pick_version(conn.api_versions(), kafka_wire.API_FETCH, [11, 4, 5, 6, 7, 8, 9, 10])
        return version, kafka_wire.fetch(conn, version, topic, 0, offset, max_wait_ms, min_bytes)


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_given_multi_record_batch_when_listing_latest_offset_should_be_last_offset_plus_one(broker, codec):
    topic = new_topic(broker)
    delivered = produce_one_batch(broker, topic, codec)
    assert [o for _, o in delivered] == list(range(BATCH_RECORDS)), f"acknowledged offsets {delivered}"

    version, answer = raw_fetch(broker, topic, 0)
    assert answer.error_code == 0, f"Fetch v{version} error code {answer.error_code}"
    assert answer.batches, f"Fetch v{version} from offset 0 returned no complete batch"
    assert max(b.record_count for b in answer.batches) > 1, (
        f"precondition: librdkafka should have sent one multi-record batch, got {answer.batches}"
    )
    last = answer.batches[-1]
    assert last.last_offset + 1 == BATCH_RECORDS, f"last batch header {last}"
    assert answer.high_watermark == BATCH_RECORDS, f"Fetch v{version} high watermark {answer.high_watermark}"

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "edge-unused"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    finally:
        consumer.close()
    assert (low, high) == (0, BATCH_RECORDS), (
        f"ListOffsets earliest/latest = {low}/{high}, expected 0/{BATCH_RECORDS} "
        f"(latest = last offset + 1)"
    )


@pytest.mark.parametrize("codec", ["none", "gzip"])
def test_given_consumer_assigned_mid_batch_when_fetching_should_get_each_record_from_there_once(broker, codec):
    topic = new_topic(broker)
    produce_one_batch(broker, topic, codec)
    start = BATCH_RECORDS // 2

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"edge-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    received: list[tuple[int, bytes]] = []
    try:
        consumer.assign([TopicPartition(topic, 0, start)])
        deadline = time.monotonic() + 20
        eof_at = None
        # Keep polling 2 s past EOF: a broker or client that re-serves the batch shows up here.
        while time.monotonic() < deadline and (eof_at is None or time.monotonic() - eof_at < 2):
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    eof_at = eof_at or time.monotonic()
                    continue
                raise AssertionError(f"consumer error: {msg.error()}")
            received.append((msg.offset(), msg.value()))
    finally:
        consumer.close()
    expected = [(o, b"record-%d" % o) for o in range(start, BATCH_RECORDS)]
    assert received == expected, f"assigned at offset {start} of a {BATCH_RECORDS}-record batch, got {received}"


def test_given_waiting_long_poll_fetch_when_record_produced_should_answer_before_max_wait(broker, record_property):
    topic = new_topic(broker)
    host, port = broker.bootstrap.split(":")
    outcome: dict = {}

    with kafka_wire.Connection(host, int(port), timeout_s=LONG_POLL_MAX_WAIT_MS / 1000 + 10) as conn:
        version = kafka_wire.pick_version(conn.api_versions(), kafka_wire.API_FETCH, [11, 4, 5, 6, 7, 8, 9, 10])
        body = kafka_wire.encode_fetch(version, topic, 0, 0, LONG_POLL_MAX_WAIT_MS, 1)

        def fetch_in_background():
            try:
                started = time.monotonic()
                reader = conn.receive(conn.send(kafka_wire.API_FETCH, version, body))
                outcome["elapsed_s"] = time.monotonic() - started
                outcome["answer"] = kafka_wire.decode_fetch(version, reader)[topic][0]
            except Exception as error:  # reported below
                outcome["error"] = error

        thread = threading.Thread(target=fetch_in_background, daemon=True)
        thread.start()
        time.sleep(0.5)  # let the Fetch reach the broker and park
        produced_at = time.monotonic()
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "1", "linger.ms": 0})
        producer.produce(topic, value=b"wake up", partition=0)
        assert producer.flush(10) == 0, "the record that should wake the fetch was not acknowledged"
        producer.close()
        thread.join(LONG_POLL_MAX_WAIT_MS / 1000 + 10)

    assert "error" not in outcome, f"Fetch v{version}: {outcome.get('error')!r}"
    assert "answer" in outcome, f"Fetch v{version} with max_wait_ms={LONG_POLL_MAX_WAIT_MS} never answered"
    answer = outcome["answer"]
    elapsed_s = outcome["elapsed_s"]
    record_property("long_poll_elapsed_s", round(elapsed_s, 3))
    print(f"long-poll Fetch v{version} answered after {elapsed_s:.3f} s "
          f"({time.monotonic() - produced_at:.3f} s after produce started)")
    assert answer.error_code == 0, f"Fetch v{version} error code {answer.error_code}"
    assert answer.records, (
        f"Fetch v{version} (max_wait_ms={LONG_POLL_MAX_WAIT_MS}, min_bytes=1) answered after "
        f"{elapsed_s:.2f} s with no records, though a record was produced 0.5 s after it was sent"
    )
    assert elapsed_s < LONG_POLL_MAX_WAIT_MS / 1000, (
        f"Fetch v{version} answered only after {elapsed_s:.2f} s >= max_wait: min_bytes=1 was met "
        f"~0.5 s in, so the broker did not wake the parked fetch"
    )


def test_given_acks0_producer_when_it_closes_right_after_flush_should_have_all_records_readable(broker):
    topic = new_topic(broker)
    count = 2000
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "0", "linger.ms": 5})
    for index in range(count):
        producer.produce(topic, value=b"acks0-%d" % index, partition=0)
        producer.poll(0)
    assert producer.flush(30) == 0, "acks=0 producer could not even send within 30 s"
    producer.close()  # and gone: no ack will ever come

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"edge-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    values: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(values) < count:
            msg = consumer.poll(0.5)
            if msg is None or (msg.error() is not None and msg.error().code() == KafkaError._PARTITION_EOF):
                continue
            if msg.error() is not None:
                raise AssertionError(f"consumer error: {msg.error()}")
            values.append(msg.value())
    finally:
        consumer.close()
    expected = [b"acks0-%d" % i for i in range(count)]
    missing = len(set(expected) - set(values))
    assert values == expected, (
        f"acks=0: read {len(values)} records back, {missing} of {count} missing, "
        f"{len(values) - len(set(values))} duplicated"
    )
