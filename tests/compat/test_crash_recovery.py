"""kill -9 the broker under a live producer, restart it on the same data dir and port, and
check that no acknowledged write is lost: every acknowledged payload is at the offset the
producer was told, offsets are contiguous from 0, and duplicates exist only where retries
explain them (none at all with idempotence)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from strom_compat.confluent_driver import create_topic

WRITE_BEFORE_KILL_S = 2.0
DOWN_S = 0.5
WRITE_AFTER_RESTART_S = 1.0
MESSAGE_INTERVAL_S = 0.001


def run_kill9_scenario(broker, producer_config: dict) -> dict:
    topic = "crash-test"
    created = create_topic(AdminClient({"bootstrap.servers": broker.bootstrap}), topic, 1)
    assert created == 1, f"metadata shows {created} partitions"

    acked: dict[bytes, int] = {}
    failed: dict[bytes, str] = {}
    fatal: list[str] = []

    def on_error(err):
        if err.fatal():
            fatal.append(str(err))

    def on_delivery(err, msg):
        if err is not None:
            failed[msg.value()] = str(err)
        else:
            acked[msg.value()] = msg.offset()

    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "linger.ms": 2,
        "message.timeout.ms": 60000,
        "retry.backoff.ms": 100,
        "reconnect.backoff.max.ms": 500,
        "log.connection.close": False,
        "error_cb": on_error,
        **producer_config,
    })
    produced: list[bytes] = []

    def write_for(seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            payload = b"msg-%07d" % len(produced)
            try:
                producer.produce(topic, value=payload, partition=0, on_delivery=on_delivery)
                produced.append(payload)
                producer.poll(0)
            except KafkaException as error:  # a fatal producer error: stop writing, report it
                fatal.append(f"produce()/poll() raised {error}")
                return
            time.sleep(MESSAGE_INTERVAL_S)

    write_for(WRITE_BEFORE_KILL_S)
    acked_before_kill = dict(acked)  # a subset of what the broker had acknowledged by then
    broker.kill()
    write_for(DOWN_S)  # queued in the client while the broker is down
    broker.start()
    write_for(WRITE_AFTER_RESTART_S)
    try:
        unacknowledged = producer.flush(30)
    except KafkaException as error:
        fatal.append(f"flush() raised {error}")
        unacknowledged = len(producer)
    producer.close()

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "crash-test-reader",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    log: list[tuple[int, bytes]] = []
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    break
                raise AssertionError(f"consumer error after restart: {msg.error()}")
            log.append((msg.offset(), msg.value()))
    finally:
        consumer.close()

    summary = {
        "produced": len(produced),
        "acked_before_kill": len(acked_before_kill),
        "acked": len(acked),
        "failed": len(failed),
        "unacknowledged_after_flush": unacknowledged,
        "read_back": len(log),
        "fatal_producer_errors": fatal[:3],
        "delivery_errors": sorted(set(failed.values()))[:3],
    }
    print(f"kill -9 scenario: {summary}")
    return {"acked": acked, "acked_before_kill": acked_before_kill, "failed": failed, "log": log, "fatal": fatal,
            "unacknowledged": unacknowledged, "summary": summary}


def check_no_acked_write_lost(outcome: dict) -> dict[bytes, int]:
    log, acked = outcome["log"], outcome["acked"]
    offsets = [offset for offset, _ in log]
    assert offsets == list(range(len(log))), (
        f"offsets after recovery not contiguous from 0: first gaps at "
        f"{[b for a, b in zip(offsets, offsets[1:]) if b != a + 1][:5]} ({outcome['summary']})"
    )
    at_offset = dict(log)
    lost = [(p, o) for p, o in acked.items() if at_offset.get(o) != p]
    assert not lost, (
        f"{len(lost)} acknowledged writes not at their acknowledged offset after kill -9 + restart, "
        f"e.g. {[(p.decode(), o, at_offset.get(o)) for p, o in lost[:5]]} ({outcome['summary']})"
    )
    copies: dict[bytes, int] = {}
    for _, payload in log:
        copies[payload] = copies.get(payload, 0) + 1
    return copies


def test_given_acks1_producer_when_broker_killed_and_restarted_should_lose_no_acknowledged_write(own_broker):
    broker = own_broker("kill9-acks1").start()
    outcome = run_kill9_scenario(broker, {"acks": "1", "enable.idempotence": False})
    copies = check_no_acked_write_lost(outcome)
    # A retry can duplicate only a record whose first ack never reached the client, so a
    # record acknowledged before the kill must be there exactly once.
    duplicated_early = [p for p in outcome["acked_before_kill"] if copies.get(p, 0) != 1]
    assert not duplicated_early, (
        f"records acknowledged before the kill appear more than once: {duplicated_early[:5]}"
    )
    assert not outcome["fatal"], f"producer hit a fatal error: {outcome['fatal'][:3]}"
    assert outcome["unacknowledged"] == 0 and not outcome["failed"], (
        f"after the restart the producer could not deliver everything: {outcome['summary']}, "
        f"errors {list(outcome['failed'].values())[:3]}"
    )


def test_given_idempotent_producer_when_broker_killed_and_restarted_should_have_no_duplicates(own_broker):
    broker = own_broker("kill9-idempotent").start()
    outcome = run_kill9_scenario(broker, {"enable.idempotence": True})  # implies acks=all
    copies = check_no_acked_write_lost(outcome)
    duplicates = {p: n for p, n in copies.items() if n > 1}
    assert not duplicates, (
        f"idempotent producer: {len(duplicates)} payloads written more than once after the "
        f"restart, e.g. {list(duplicates.items())[:5]} ({outcome['summary']})"
    )
    assert not outcome["fatal"], (
        f"idempotent producer hit a fatal error across the restart (the broker must keep producer "
        f"id/epoch/sequence state through recovery): {outcome['fatal'][:3]} ({outcome['summary']})"
    )
    assert outcome["unacknowledged"] == 0 and not outcome["failed"], (
        f"after the restart the idempotent producer could not deliver everything: "
        f"{outcome['summary']}, errors {list(outcome['failed'].values())[:3]}"
    )
