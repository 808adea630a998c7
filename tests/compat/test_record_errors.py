"""Per-record produce errors (KIP-467) as librdkafka sees them: a mixed batch (some records
break the topic's rules, the others are fine) is refused whole, and librdkafka fails exactly
the records the broker named in record_errors, and the others with _INVALID_DIFFERENT_RECORD
("an invalid record in the same batch caused the failure of this message too").

What librdkafka 2.16 really reports: INVALID_RECORD for each named record whatever the
partition's error (the broker answers INVALID_TIMESTAMP for timestamps outside
message.timestamp.before.max.ms, yet the named records still come back INVALID_RECORD), with
its own generic text, not the broker's per-record message (the Rust test
produce_record_errors.rs checks those messages on the wire). Without record_errors, or with
the wrong indexes, the good records would fail as INVALID_RECORD or the bad ones as
_INVALID_DIFFERENT_RECORD, and these tests fail."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from strom_compat.confluent_driver import wait_for_partitions
from strom_compat.steps import step

HOUR_MS = 3_600_000
BATCH = 5
BAD = {1, 3}


def new_topic(broker, config: dict[str, str]) -> str:
    topic = f"recerr-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    with step("confluent_kafka", "CreateTopics"):
        futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config=config)],
                                      operation_timeout=10)
        futures[topic].result(timeout=30)
        assert wait_for_partitions(admin, topic, 1) == 1
    return topic


def produce_one_batch(broker, topic: str, records: list[tuple[bytes | None, int]]) -> list[KafkaError | int]:
    """Sends `records` (key, timestamp ms) to partition 0 as one batch (long linger, one flush);
    returns each record's delivery report: its KafkaError, or its offset."""
    reports: list[KafkaError | int | None] = [None] * len(records)

    def on_delivery(index, err, msg):
        reports[index] = err if err is not None else msg.offset()

    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 1000, "acks": "all",
                         "batch.num.messages": 10000, "retries": 0, "enable.idempotence": False})
    for index, (key, timestamp_ms) in enumerate(records):
        producer.produce(topic, key=key, value=b"value-%d" % index, partition=0, timestamp=timestamp_ms,
                         on_delivery=lambda err, msg, i=index: on_delivery(i, err, msg))
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} records without a delivery report after 30 s"
    assert all(report is not None for report in reports)
    return reports  # type: ignore[return-value]


def high_watermark(broker, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"hw-{uuid.uuid4().hex[:6]}"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return high
    finally:
        consumer.close()


def assert_only_bad_records_invalid(reports):
    for index, report in enumerate(reports):
        assert isinstance(report, KafkaError), f"record {index} was written at offset {report}"
        if index in BAD:
            assert report.code() == KafkaError.INVALID_RECORD, f"record {index}: {report}"
        else:
            assert report.code() == KafkaError._INVALID_DIFFERENT_RECORD, f"record {index}: {report}"


def test_given_compacted_topic_when_batch_mixes_keyless_records_should_fail_exactly_them_as_invalid_record(broker):
    topic = new_topic(broker, {"cleanup.policy": "compact"})
    now = int(time.time() * 1000)
    records = [(None if index in BAD else b"key-%d" % index, now) for index in range(BATCH)]
    with step("confluent_kafka", "produce a mixed batch"):
        reports = produce_one_batch(broker, topic, records)
    assert_only_bad_records_invalid(reports)
    assert high_watermark(broker, topic) == 0, "a refused batch must append nothing"
    # The same batch with every key is taken whole.
    with step("confluent_kafka", "produce a keyed batch"):
        reports = produce_one_batch(broker, topic, [(b"key-%d" % index, now) for index in range(BATCH)])
    assert reports == list(range(BATCH))


def test_given_timestamp_bound_when_batch_mixes_old_records_should_fail_exactly_them_as_invalid_timestamp(broker):
    topic = new_topic(broker, {"message.timestamp.before.max.ms": str(HOUR_MS)})
    now = int(time.time() * 1000)
    old = now - 48 * HOUR_MS
    records = [(b"k", old if index in BAD else now) for index in range(BATCH)]
    with step("confluent_kafka", "produce a mixed batch"):
        reports = produce_one_batch(broker, topic, records)
    assert_only_bad_records_invalid(reports)
    assert high_watermark(broker, topic) == 0, "a refused batch must append nothing"
    # Timestamps inside the bound are taken.
    with step("confluent_kafka", "produce a batch in bounds"):
        reports = produce_one_batch(broker, topic, [(b"k", now - HOUR_MS // 2) for _ in range(BATCH)])
    assert reports == list(range(BATCH))
