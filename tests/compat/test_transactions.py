"""Transactions with real clients: librdkafka's transactional producer (commit and abort over
several partitions, send_offsets_to_transaction, zombie fencing, transaction.timeout.ms),
read_committed consumers in librdkafka and kafka-python (blocked at the last stable offset,
never shown aborted data or control records), kafka-python's transactional producer, `strom
txn` against live and hanging transactions (on one node and on a three-node cluster), and
exactly-once consume-transform-produce under repeated kill -9 of the application.

Every test bounds itself in time; the exactly-once test kills only the PIDs it started.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from strom_compat.broker import Broker, strom_binary
from strom_compat.confluent_driver import create_topic

HERE = Path(__file__).resolve().parent
# Kafka's defaults, scaled down: a small __transaction_state and __consumer_offsets so the
# coordinators load fast, and the timed-out-transaction sweep every 500 ms instead of 10 s.
TXN_BROKER_CONFIG = {
    "num.partitions": "1",
    "transaction.state.log.num.partitions": "5",
    "offsets.topic.num.partitions": "5",
    "group.initial.rebalance.delay.ms": "300",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
}
WAIT_S = 30.0
FENCING_ERRORS = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


@pytest.fixture(scope="module")
def tbroker(request, strom_bin):
    broker = Broker("transactions", TXN_BROKER_CONFIG)
    broker.start()
    yield broker
    broker.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_topic(broker: Broker, partitions: int) -> str:
    topic = unique("txn")
    assert create_topic(AdminClient({"bootstrap.servers": broker.bootstrap}), topic, partitions) == partitions
    return topic


def txn_producer(broker: Broker, transactional_id: str, **extra) -> Producer:
    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "transactional.id": transactional_id,
        "linger.ms": 5,
        **extra,
    })
    producer.init_transactions(WAIT_S)
    return producer


def plain_produce(broker: Broker, topic: str, partition: int, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for value in values:
        producer.produce(topic, value=value, partition=partition)
    assert producer.flush(WAIT_S) == 0


def read_partitions(broker: Broker, topic: str, partitions: int, isolation: str,
                    timeout_s: float = WAIT_S) -> dict[int, list[bytes]]:
    """Every record from the beginning of each partition up to its end (the last stable offset
    under read_committed), by explicit assignment; values per partition, in offset order."""
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": unique("unused"),
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": isolation,
    })
    out: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    offsets: dict[int, list[int]] = {p: [] for p in range(partitions)}
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        eof: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(eof) < partitions and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                eof.add(msg.partition())
                continue
            eof.discard(msg.partition())
            out[msg.partition()].append(msg.value())
            offsets[msg.partition()].append(msg.offset())
        assert len(eof) == partitions, f"no end of partition within {timeout_s:.0f} s: {sorted(eof)}"
    finally:
        consumer.close()
    for partition, seen in offsets.items():
        assert seen == sorted(seen) and len(set(seen)) == len(seen), f"partition {partition}: {seen}"
    return out


def poll_values(consumer: Consumer, duration_s: float, until_count: int | None = None) -> list[tuple[int, bytes]]:
    """Polls for `duration_s` (or until `until_count` records); (partition, value) pairs."""
    seen = []
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline and (until_count is None or len(seen) < until_count):
        msg = consumer.poll(0.2)
        if msg is None or msg.error() is not None:
            continue
        seen.append((msg.partition(), msg.value()))
    return seen


def strom(broker: Broker, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(strom_binary()), *args, "--bootstrap-server", broker.bootstrap],
        capture_output=True, text=True, timeout=60,
    )


# ----------------------------------------------------------------------------------------------


def test_given_commits_and_aborts_over_partitions_when_read_should_show_only_committed_to_read_committed(tbroker):
    partitions = 3
    topic = new_topic(tbroker, partitions)
    producer = txn_producer(tbroker, unique("mix"))
    outcomes = ["commit", "abort", "commit", "abort", "abort", "commit"]
    committed: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    everything: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    markers = collections.Counter()
    for txn, outcome in enumerate(outcomes):
        producer.begin_transaction()
        # Transaction 3 skips partition 2, so partitions see different marker counts.
        touched = range(partitions) if txn != 3 else range(2)
        for index in range(12):
            partition = touched[index % len(touched)]
            value = f"{outcome}-{txn}-{index}".encode()
            producer.produce(topic, value=value, partition=partition)
            everything[partition].append(value)
            if outcome == "commit":
                committed[partition].append(value)
        for partition in touched:
            markers[partition] += 1
        # librdkafka purges records still queued when a transaction aborts: flush first, so
        # the aborted records are in the log for read_uncommitted to see.
        assert producer.flush(WAIT_S) == 0
        if outcome == "commit":
            producer.commit_transaction(WAIT_S)
        else:
            producer.abort_transaction(WAIT_S)

    assert read_partitions(tbroker, topic, partitions, "read_committed") == committed
    # read_uncommitted sees the aborted records too, and never a control record as a message.
    assert read_partitions(tbroker, topic, partitions, "read_uncommitted") == everything

    # Each transaction wrote one marker per partition it touched, taking one offset each.
    consumer = Consumer({"bootstrap.servers": tbroker.bootstrap, "group.id": unique("wm")})
    try:
        for partition in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            assert (low, high) == (0, len(everything[partition]) + markers[partition]), partition
    finally:
        consumer.close()


def test_given_open_transaction_when_read_committed_should_block_at_lso_until_commit(tbroker):
    topic = new_topic(tbroker, 1)
    producer = txn_producer(tbroker, unique("lso"))
    producer.begin_transaction()
    for index in range(3):
        producer.produce(topic, value=b"before-%d" % index, partition=0)
    producer.commit_transaction(WAIT_S)

    producer.begin_transaction()
    for index in range(5):
        producer.produce(topic, value=b"open-%d" % index, partition=0)
    assert producer.flush(WAIT_S) == 0
    # Written after the open transaction's first record, outside any transaction.
    plain_produce(tbroker, topic, 0, [b"after-%d" % index for index in range(3)])

    consumer = Consumer({
        "bootstrap.servers": tbroker.bootstrap,
        "group.id": unique("lso"),
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        seen = poll_values(consumer, 4.0)
        assert [v for _, v in seen] == [b"before-0", b"before-1", b"before-2"], \
            "read_committed must stop at the last stable offset (the open transaction's first record)"

        producer.commit_transaction(WAIT_S)
        rest = poll_values(consumer, WAIT_S, until_count=8)
        assert [v for _, v in rest] == [b"open-%d" % i for i in range(5)] + [b"after-%d" % i for i in range(3)]
        assert poll_values(consumer, 1.0) == []
    finally:
        consumer.close()


def committed_offsets(broker: Broker, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        result = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=WAIT_S)
        return {tp.partition: tp.offset for tp in result}
    finally:
        consumer.close()


def consume_in_group(broker: Broker, group: str, topic: str, count: int) -> Consumer:
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "session.timeout.ms": 6000,
    })
    consumer.subscribe([topic])
    seen = poll_values(consumer, WAIT_S, until_count=count)
    assert len(seen) == count, f"group {group} read {len(seen)} of {count} records"
    return consumer


@pytest.mark.parametrize("outcome", ["commit", "abort"])
def test_given_offsets_sent_to_transaction_when_it_ends_should_commit_them_only_if_committed(tbroker, outcome):
    partitions = 2
    source = new_topic(tbroker, partitions)
    sink = new_topic(tbroker, 1)
    for partition in range(partitions):
        plain_produce(tbroker, source, partition, [b"in-%d-%d" % (partition, i) for i in range(5)])
    group = unique("sendoffsets")
    consumer = consume_in_group(tbroker, group, source, 10)
    producer = txn_producer(tbroker, unique("sendoffsets"))
    try:
        producer.begin_transaction()
        producer.produce(sink, value=b"derived", partition=0)
        positions = consumer.position(consumer.assignment())
        assert sorted((tp.partition, tp.offset) for tp in positions) == [(0, 5), (1, 5)]
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), WAIT_S)
        if outcome == "commit":
            producer.commit_transaction(WAIT_S)
        else:
            producer.abort_transaction(WAIT_S)
        committed = committed_offsets(tbroker, group, source, partitions)
        # OFFSET_INVALID (-1001): the group has no committed offset there.
        expected = {0: 5, 1: 5} if outcome == "commit" else {0: -1001, 1: -1001}
        assert committed == expected
        sink_values = read_partitions(tbroker, sink, 1, "read_committed")[0]
        assert sink_values == ([b"derived"] if outcome == "commit" else [])
    finally:
        consumer.close()


def test_given_second_producer_with_same_transactional_id_when_zombie_writes_should_be_fenced(tbroker):
    topic = new_topic(tbroker, 2)
    transactional_id = unique("zombie")
    zombie = txn_producer(tbroker, transactional_id)
    zombie.begin_transaction()
    zombie.produce(topic, value=b"zombie-0", partition=0)
    assert zombie.flush(WAIT_S) == 0

    live = txn_producer(tbroker, transactional_id)  # bumps the epoch, aborts the zombie's txn
    live.begin_transaction()
    live.produce(topic, value=b"live-0", partition=0)
    live.produce(topic, value=b"live-1", partition=1)
    live.commit_transaction(WAIT_S)

    # librdkafka learns of the fencing at its next AddPartitionsToTxn, Produce or EndTxn,
    # and raises it from whichever call comes next: all of it must fail, fatally.
    with pytest.raises(KafkaException) as raised:
        zombie.produce(topic, value=b"zombie-1", partition=1)
        zombie.flush(10)
        zombie.commit_transaction(WAIT_S)
    error: KafkaError = raised.value.args[0]
    assert error.fatal(), f"expected a fatal fencing error, got {error}"
    assert error.code() in FENCING_ERRORS, f"expected a fencing error, got {error}"

    assert read_partitions(tbroker, topic, 2, "read_committed") == {0: [b"live-0"], 1: [b"live-1"]}


def test_given_producer_that_hangs_when_transaction_times_out_should_be_aborted_by_broker(tbroker):
    topic = new_topic(tbroker, 1)
    timeout_ms = 3000
    hung = txn_producer(tbroker, unique("hung"), **{"transaction.timeout.ms": timeout_ms})
    hung.begin_transaction()
    for index in range(3):
        hung.produce(topic, value=b"hung-%d" % index, partition=0)
    assert hung.flush(WAIT_S) == 0
    started = time.monotonic()
    plain_produce(tbroker, topic, 0, [b"after-0", b"after-1"])

    consumer = Consumer({
        "bootstrap.servers": tbroker.bootstrap,
        "group.id": unique("hung"),
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        seen = poll_values(consumer, 20.0, until_count=2)
        waited_s = time.monotonic() - started
        assert [v for _, v in seen] == [b"after-0", b"after-1"], \
            f"read_committed got {seen} within {waited_s:.1f} s of the hung transaction"
        # Not before the timeout; within it plus a few sweeps.
        assert waited_s >= timeout_ms / 1000 - 0.5, f"aborted after only {waited_s:.1f} s"
        print(f"timed-out transaction aborted; consumer advanced after {waited_s:.1f} s")
    finally:
        consumer.close()
    # The aborted transaction can no longer be committed by its producer.
    with pytest.raises(KafkaException):
        hung.commit_transaction(10)
    assert read_partitions(tbroker, topic, 1, "read_uncommitted")[0] == \
        [b"hung-0", b"hung-1", b"hung-2", b"after-0", b"after-1"]


def test_given_confluent_transactions_when_kafka_python_reads_committed_should_skip_aborted(tbroker):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTopicPartition

    partitions = 2
    topic = new_topic(tbroker, partitions)
    producer = txn_producer(tbroker, unique("kpy"))
    expected_committed = collections.defaultdict(list)
    expected_all = collections.defaultdict(list)
    for txn, outcome in enumerate(["commit", "abort", "commit", "abort"]):
        producer.begin_transaction()
        for index in range(6):
            value = f"{outcome}-{txn}-{index}".encode()
            producer.produce(topic, value=value, partition=index % partitions)
            expected_all[index % partitions].append(value)
            if outcome == "commit":
                expected_committed[index % partitions].append(value)
        assert producer.flush(WAIT_S) == 0  # aborted records too must reach the log
        if outcome == "commit":
            producer.commit_transaction(WAIT_S)
        else:
            producer.abort_transaction(WAIT_S)

    def read(isolation: str, count: int) -> dict[int, list[bytes]]:
        consumer = KafkaConsumer(bootstrap_servers=tbroker.bootstrap, isolation_level=isolation,
                                 enable_auto_commit=False, group_id=None)
        try:
            tps = [KTopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            out = collections.defaultdict(list)
            total = 0
            deadline = time.monotonic() + WAIT_S
            # Read until the expected count, then one more second for anything that should not be.
            quiet_until = None
            while time.monotonic() < deadline and (quiet_until is None or time.monotonic() < quiet_until):
                for tp, records in consumer.poll(timeout_ms=200).items():
                    for record in records:
                        out[tp.partition].append(record.value)
                        total += 1
                if total >= count and quiet_until is None:
                    quiet_until = time.monotonic() + 1.0
            return dict(out)
        finally:
            consumer.close()

    committed_count = sum(len(v) for v in expected_committed.values())
    assert read("read_committed", committed_count) == dict(expected_committed)
    all_count = sum(len(v) for v in expected_all.values())
    assert read("read_uncommitted", all_count) == dict(expected_all)


def test_given_kafka_python_transactions_when_librdkafka_reads_committed_should_skip_aborted(tbroker):
    """The other direction: kafka-python's transactional producer (its own InitProducerId,
    AddPartitionsToTxn and EndTxn versions) against librdkafka's read_committed consumer."""
    from kafka import KafkaProducer

    partitions = 2
    topic = new_topic(tbroker, partitions)
    producer = KafkaProducer(bootstrap_servers=tbroker.bootstrap, transactional_id=unique("kpy-txn"))
    try:
        producer.init_transactions()
        committed = {p: [] for p in range(partitions)}
        everything = {p: [] for p in range(partitions)}
        for txn, outcome in enumerate(["commit", "abort", "commit"]):
            producer.begin_transaction()
            for index in range(4):
                value = f"{outcome}-{txn}-{index}".encode()
                producer.send(topic, value=value, partition=index % partitions).get(timeout=WAIT_S)
                everything[index % partitions].append(value)
                if outcome == "commit":
                    committed[index % partitions].append(value)
            if outcome == "commit":
                producer.commit_transaction()
            else:
                producer.abort_transaction()
    finally:
        producer.close(timeout=10)
    assert read_partitions(tbroker, topic, partitions, "read_committed") == committed
    assert read_partitions(tbroker, topic, partitions, "read_uncommitted") == everything


def test_given_open_transaction_when_operator_runs_strom_txn_should_list_describe_and_not_call_it_hanging(tbroker):
    topic = new_topic(tbroker, 2)
    transactional_id = unique("cli")
    producer = txn_producer(tbroker, transactional_id, **{"transaction.timeout.ms": 60000})
    producer.begin_transaction()
    producer.produce(topic, value=b"v0", partition=0)
    producer.produce(topic, value=b"v1", partition=1)
    assert producer.flush(WAIT_S) == 0

    listed = strom(tbroker, "txn", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    mine = [t for t in json.loads(listed.stdout) if t["transactional_id"] == transactional_id]
    assert len(mine) == 1 and mine[0]["state"] == "Ongoing", listed.stdout
    ongoing = strom(tbroker, "txn", "list", "--state", "ongoing", "--json")
    assert transactional_id in [t["transactional_id"] for t in json.loads(ongoing.stdout)]
    complete = strom(tbroker, "txn", "list", "--state", "CompleteCommit", "--json")
    assert transactional_id not in [t["transactional_id"] for t in json.loads(complete.stdout)]

    described = strom(tbroker, "txn", "describe", transactional_id, "--json")
    assert described.returncode == 0, described.stderr
    [description] = json.loads(described.stdout)
    assert description["state"] == "Ongoing"
    assert description["producer_id"] == mine[0]["producer_id"]
    assert description["transaction_timeout_ms"] == 60000
    assert description["transaction_start_time_ms"] is not None
    assert sorted((p["topic"], p["partition"]) for p in description["partitions"]) == [(topic, 0), (topic, 1)]

    table = strom(tbroker, "txn", "describe", transactional_id)
    assert table.returncode == 0 and "Ongoing" in table.stdout and f"{topic}-0" in table.stdout, table.stdout

    # The default (15 min) rules it out by age; with 0 ms it is a candidate, and the coordinator
    # still holds both partitions, so it is not hanging either.
    for max_ms in ("900000", "0"):
        hanging = strom(tbroker, "txn", "find-hanging", "--topic", topic,
                        "--max-transaction-timeout-ms", max_ms, "--json")
        assert hanging.returncode == 0, hanging.stderr
        assert json.loads(hanging.stdout) == [], f"--max-transaction-timeout-ms {max_ms}: {hanging.stdout}"

    producer.commit_transaction(WAIT_S)
    after = json.loads(strom(tbroker, "txn", "describe", transactional_id, "--json").stdout)[0]
    assert after["state"] == "CompleteCommit" and after["partitions"] == [], after

    missing = strom(tbroker, "txn", "describe", unique("nobody"))
    assert missing.returncode == 1
    assert "not found" in missing.stderr and "strom txn list" in missing.stderr, missing.stderr


def test_given_open_transaction_when_operator_aborts_it_by_start_offset_should_unblock_read_committed(tbroker):
    topic = new_topic(tbroker, 1)
    plain_produce(tbroker, topic, 0, [b"first"])
    producer = txn_producer(tbroker, unique("abort"), **{"transaction.timeout.ms": 60000})
    producer.begin_transaction()
    producer.produce(topic, value=b"stuck", partition=0)
    assert producer.flush(WAIT_S) == 0
    plain_produce(tbroker, topic, 0, [b"behind"])

    no_such = strom(tbroker, "txn", "abort", "--topic", topic, "--partition", "0", "--start-offset", "0")
    assert no_such.returncode == 1 and "offset 0" in no_such.stderr and "at offset 1" in no_such.stderr, \
        no_such.stderr
    aborted = strom(tbroker, "txn", "abort", "--topic", topic, "--partition", "0", "--start-offset", "1",
                    "--json")
    assert aborted.returncode == 0, aborted.stderr
    assert json.loads(aborted.stdout)["aborted"] is True
    assert read_partitions(tbroker, topic, 1, "read_committed", timeout_s=15)[0] == [b"first", b"behind"]
    producer.abort_transaction(WAIT_S)


def commit_and_describe_producer(broker: Broker) -> tuple[dict, int]:
    """Opens a transaction on partition 0 (checking describe-producers shows it open), commits
    it 300 ms later; the partition's producer state after the COMMIT marker, and the time
    just before the commit (ms)."""
    topic = new_topic(broker, 2)
    producer = txn_producer(broker, unique("producers"))
    producer.begin_transaction()
    producer.produce(topic, value=b"open", partition=0)
    assert producer.flush(WAIT_S) == 0
    opened = json.loads(strom(broker, "txn", "describe-producers", "--topic", topic, "--json").stdout)
    assert [(p["partition"], p["current_txn_start_offset"]) for p in opened] == [(0, 0)], opened
    assert opened[0]["coordinator_epoch"] is None, "no marker yet"
    time.sleep(0.3)  # the commit marker is written measurably later than the data
    before_commit_ms = int(time.time() * 1000)
    producer.commit_transaction(WAIT_S)
    described = strom(broker, "txn", "describe-producers", "--topic", topic, "--partition", "0", "--json")
    assert described.returncode == 0, described.stderr
    [state] = json.loads(described.stdout)
    assert state["current_txn_start_offset"] is None, state
    return state, before_commit_ms


def test_given_committed_transaction_when_describing_producers_should_show_the_markers_coordinator_epoch(tbroker):
    """Kafka's ProducerStateEntry takes the coordinator epoch of every marker
    (ProducerAppendInfo.appendEndTxnMarker): `describe-producers` shows the epoch an abort
    must match. A one-node cluster's coordinator runs at epoch 0 (its state partition's
    leader epoch)."""
    state, _ = commit_and_describe_producer(tbroker)
    assert state["coordinator_epoch"] == 0, f"coordinator epoch of the COMMIT marker: {state}"


def test_given_committed_transaction_when_describing_producers_should_show_the_markers_time(tbroker):
    """Kafka's ProducerStateEntry also takes the marker's timestamp as the producer's last
    timestamp (ProducerAppendInfo.appendEndTxnMarker -> ProducerStateEntry.update)."""
    state, before_commit_ms = commit_and_describe_producer(tbroker)
    assert state["last_timestamp_ms"] >= before_commit_ms - 50, \
        f"last timestamp should be the COMMIT marker's (after {before_commit_ms}): {state}"


def test_given_coordinator_state_lost_when_operator_finds_hanging_and_aborts_should_unblock_read_committed(own_broker):
    """A hanging transaction for real: the partition keeps an open transaction that no
    coordinator remembers (its __transaction_state was lost with the broker down), so
    nothing will ever end it and read_committed consumers stop there for good."""
    broker = own_broker("txn-hanging", TXN_BROKER_CONFIG)
    broker.start()
    topic = new_topic(broker, 1)
    plain_produce(broker, topic, 0, [b"first"])
    producer = txn_producer(broker, unique("lost"), **{"transaction.timeout.ms": 60000})
    producer.begin_transaction()
    producer.produce(topic, value=b"lost", partition=0)
    assert producer.flush(WAIT_S) == 0
    broker.kill()
    del producer
    state_dirs = [d for d in broker.data_dir.rglob("__transaction_state*") if d.is_dir()]
    assert state_dirs, f"no __transaction_state partitions under {broker.data_dir}"
    for directory in state_dirs:
        shutil.rmtree(directory)
    broker.start()
    plain_produce(broker, topic, 0, [b"behind"])

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("stuck"),
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        assert [v for _, v in poll_values(consumer, 3.0)] == [b"first"], "read_committed should be stuck"
    finally:
        consumer.close()

    young = strom(broker, "txn", "find-hanging", "--topic", topic, "--json")
    assert young.returncode == 0 and json.loads(young.stdout) == [], "younger than the default 15 min"
    found = strom(broker, "txn", "find-hanging", "--topic", topic, "--max-transaction-timeout-ms", "0", "--json")
    assert found.returncode == 0, found.stderr
    [hanging] = json.loads(found.stdout)
    assert (hanging["topic"], hanging["partition"], hanging["start_offset"]) == (topic, 0, 1), hanging
    assert hanging["transactional_id"] is None, hanging

    aborted = strom(broker, "txn", "abort", "--topic", topic, "--partition", "0", "--start-offset", "1")
    assert aborted.returncode == 0, aborted.stderr
    assert read_partitions(broker, topic, 1, "read_committed", timeout_s=15)[0] == [b"first", b"behind"]
    again = strom(broker, "txn", "find-hanging", "--topic", topic, "--max-transaction-timeout-ms", "0", "--json")
    assert json.loads(again.stdout) == []


def java_hash(text: str) -> int:
    """Java's String.hashCode (for UTF-16 BMP text), which picks a transactional id's
    __transaction_state partition."""
    h = 0
    for ch in text:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def test_given_three_node_cluster_when_operator_runs_strom_txn_should_reach_every_coordinator_and_leader(request):
    """The routing of `strom txn`: ListTransactions at every broker, DescribeTransactions at
    each id's coordinator, DescribeProducers and the abort's WriteTxnMarkers at each
    partition's leader — with coordinators and leaders spread over three nodes."""
    from strom_compat.cluster import Cluster

    state_partitions = 3
    with Cluster("txn", 3, extra_config={"transaction.state.log.num.partitions": str(state_partitions)}) as cluster:
        request.node.extra_brokers = list(cluster.nodes.values())
        cluster.start()
        admin = cluster.admin()
        from confluent_kafka.admin import NewTopic
        admin.create_topics([NewTopic("orders", 3, 3)])["orders"].result(WAIT_S)
        cluster.wait_full_isr("orders", 3)
        # One transactional id per __transaction_state partition (so per coordinator).
        ids: dict[int, str] = {}
        index = 0
        while len(ids) < state_partitions:
            candidate = f"cluster-app-{index}"
            ids.setdefault(abs(java_hash(candidate)) % state_partitions, candidate)
            index += 1
        producers = {}
        for transactional_id in ids.values():
            producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": transactional_id,
                                 "transaction.timeout.ms": 60000})
            producer.init_transactions(WAIT_S)
            producer.begin_transaction()
            for partition in range(3):
                producer.produce("orders", value=f"{transactional_id}-{partition}".encode(), partition=partition)
            assert producer.flush(WAIT_S) == 0
            producers[transactional_id] = producer

        def run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([str(strom_binary()), *args, "--bootstrap-server", cluster.bootstrap],
                                  capture_output=True, text=True, timeout=60)

        listed = run("txn", "list", "--state", "Ongoing", "--json")
        assert listed.returncode == 0, listed.stderr
        coordinators = {t["transactional_id"]: t["coordinator"] for t in json.loads(listed.stdout)}
        assert sorted(coordinators) == sorted(ids.values()), listed.stdout
        assert len(set(coordinators.values())) > 1, f"every id on one coordinator: {coordinators}"
        described = run("txn", "describe", *ids.values(), "--json")
        assert described.returncode == 0, described.stderr
        for description in json.loads(described.stdout):
            assert description["state"] == "Ongoing", description
            assert description["coordinator"] == coordinators[description["transactional_id"]]
            assert sorted(p["partition"] for p in description["partitions"]) == [0, 1, 2], description

        open_producers = json.loads(run("txn", "describe-producers", "--topic", "orders", "--json").stdout)
        assert sorted(p["partition"] for p in open_producers if p["current_txn_start_offset"] is not None) == \
            sorted([0, 1, 2] * len(ids)), open_producers
        hanging = run("txn", "find-hanging", "--topic", "orders", "--max-transaction-timeout-ms", "0", "--json")
        assert hanging.returncode == 0 and json.loads(hanging.stdout) == [], hanging.stdout + hanging.stderr

        # The operator aborts the first id's transaction on partition 2 (at that partition's
        # leader); the producer's commit later cannot bring those records back.
        victim = ids[0]
        victim_pid = [t for t in json.loads(described.stdout) if t["transactional_id"] == victim][0]["producer_id"]
        start = [p["current_txn_start_offset"] for p in open_producers
                 if p["partition"] == 2 and p["producer_id"] == victim_pid][0]
        aborted = run("txn", "abort", "--topic", "orders", "--partition", "2", "--start-offset", str(start))
        assert aborted.returncode == 0, aborted.stderr
        for producer in producers.values():
            producer.commit_transaction(WAIT_S)
        seen = read_partitions(cluster.nodes[1], "orders", 3, "read_committed")
        for transactional_id in ids.values():
            for partition in range(3):
                expected = not (transactional_id == victim and partition == 2)
                assert (f"{transactional_id}-{partition}".encode() in seen[partition]) == expected, \
                    (transactional_id, partition, seen)


def test_given_transaction_coordinator_node_killed_when_producer_goes_on_should_keep_its_state_and_epochs(request):
    """Kafka replicates __transaction_state like any partition: when the coordinator's node
    dies, the new leader of the id's state partition loads the id (producer id, epoch) and the
    producer's next transaction commits. Its markers then carry the new coordinator epoch,
    which DescribeProducers reports, so `strom txn abort --start-offset` still matches it."""
    from confluent_kafka.admin import NewTopic
    from strom_compat.cluster import Cluster

    with Cluster("txn-failover", 3, extra_config={"transaction.state.log.num.partitions": "1"}) as cluster:
        request.node.extra_brokers = list(cluster.nodes.values())
        cluster.start()
        cluster.admin().create_topics([NewTopic("orders", 1, 3)])["orders"].result(WAIT_S)
        cluster.wait_full_isr("orders", 1)
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": unique("failover"),
                             "transaction.timeout.ms": 60000})
        producer.init_transactions(WAIT_S)
        producer.begin_transaction()
        producer.produce("orders", value=b"before", partition=0)
        producer.commit_transaction(WAIT_S)
        cluster.wait_full_isr("__transaction_state", 1)
        coordinator = cluster.leader("__transaction_state", 0)
        cluster.nodes[coordinator].kill()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            parts = cluster.partitions("__transaction_state")
            if parts and parts[0][0] not in (-1, coordinator):
                break
            time.sleep(0.3)
        else:
            pytest.fail("no new leader for __transaction_state-0")

        producer.begin_transaction()
        producer.produce("orders", value=b"after", partition=0)
        producer.commit_transaction(WAIT_S)  # at the new coordinator, which must know the id
        producer.begin_transaction()
        producer.produce("orders", value=b"open", partition=0)
        assert producer.flush(WAIT_S) == 0

        def run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([str(strom_binary()), *args, "--bootstrap-server", cluster.bootstrap],
                                  capture_output=True, text=True, timeout=60)

        producers = json.loads(run("txn", "describe-producers", "--topic", "orders", "--json").stdout)
        [mine] = [p for p in producers if p["current_txn_start_offset"] is not None]
        assert mine["coordinator_epoch"] is not None and mine["coordinator_epoch"] >= 1, \
            f"the COMMIT marker came from the new coordinator's epoch: {mine}"
        aborted = run("txn", "abort", "--topic", "orders", "--partition", "0",
                      "--start-offset", str(mine["current_txn_start_offset"]))
        assert aborted.returncode == 0, aborted.stderr
        alive = next(n for n in cluster.nodes.values() if n.alive())
        assert read_partitions(alive, "orders", 1, "read_committed")[0] == [b"before", b"after"]


# ----------------------------------------------------------------------------------------------
# Exactly once under kill -9 of the application.

EOS_INPUT_PARTITIONS = 3
EOS_INPUT_RECORDS = 3000
EOS_KILLS = 5
EOS_TIME_LIMIT_S = 100.0
# 150 transactions of 20 records, each held open 40 ms: at most 10 commits per killed run
# leave work for the final run, and most kills land inside an open transaction.
EOS_BATCH_MAX = 20
EOS_PAUSE_MS = 40


@pytest.mark.parametrize("membership", ["static", "dynamic"])
def test_given_transform_app_killed_repeatedly_when_it_finishes_should_output_every_input_exactly_once(
        tbroker, membership):
    """static: a restart takes the killed member's place at once (group.instance.id).
    dynamic: the killed member stays in the group until its 6 s session expires, so each
    restart rebalances, and offsets sent by a stale generation must be refused."""
    seed = int(os.environ.get("STROM_EOS_SEED", random.randrange(1 << 30)))
    print(f"exactly-once kill -9 test ({membership}): seed {seed} (rerun with STROM_EOS_SEED={seed})")
    rng = random.Random(seed)
    started = time.monotonic()
    source = new_topic(tbroker, EOS_INPUT_PARTITIONS)
    sink = new_topic(tbroker, EOS_INPUT_PARTITIONS)
    producer = Producer({"bootstrap.servers": tbroker.bootstrap, "linger.ms": 20,
                         "enable.idempotence": True})
    inputs = [b"in-%05d" % index for index in range(EOS_INPUT_RECORDS)]
    for index, value in enumerate(inputs):
        producer.produce(source, value=value, partition=index % EOS_INPUT_PARTITIONS)
    assert producer.flush(WAIT_S) == 0

    group = unique("eos")
    command = [sys.executable, str(HERE / "eos_loop.py"), "--bootstrap", tbroker.bootstrap,
               "--input", source, "--output", sink, "--group", group,
               "--transactional-id", unique("eos"),
               "--batch-max", str(EOS_BATCH_MAX), "--in-transaction-pause-ms", str(EOS_PAUSE_MS)]
    if membership == "static":
        command += ["--instance-id", "eos-app-0"]
    logs: list[str] = []

    def run_app(extra: list[str], kill_after_commits: int | None, kill_when_open: bool = False) -> int:
        """Runs the app; with `kill_after_commits`, SIGKILLs it (by PID) that many committed
        transactions in, at a random moment of the next one (`kill_when_open`: as soon as the
        next one's records are in the log, before it commits)."""
        remaining = EOS_TIME_LIMIT_S - (time.monotonic() - started)
        assert remaining > 5, f"out of time after {len(logs)} runs:\n" + "\n---\n".join(logs)
        app = subprocess.Popen(command + extra + ["--deadline-s", f"{remaining:.0f}"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in app.stdout], daemon=True)
        reader.start()
        output: list[str] = []
        try:
            if kill_after_commits is None:
                app.wait(timeout=remaining)
            else:
                commits = 0
                line_deadline = time.monotonic() + min(remaining, 30)
                while commits < kill_after_commits and app.poll() is None \
                        and time.monotonic() < line_deadline:
                    try:
                        line = lines.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    output.append(line)
                    commits += line.startswith("committed")
                if kill_when_open:
                    while app.poll() is None and time.monotonic() < line_deadline:
                        try:
                            line = lines.get(timeout=0.2)
                        except queue.Empty:
                            continue
                        output.append(line)
                        if line.startswith("open"):
                            break
                else:
                    time.sleep(rng.uniform(0, EOS_PAUSE_MS / 1000 * 1.5))
                if app.poll() is None:
                    os.kill(app.pid, signal.SIGKILL)
                app.wait(timeout=10)
        finally:
            if app.poll() is None:
                os.kill(app.pid, signal.SIGKILL)
                app.wait(timeout=10)
            reader.join(5)
            while not lines.empty():
                output.append(lines.get())
            logs.append("".join(output)[-3000:])
        return app.returncode

    # The first kill lands inside an open transaction for sure (its records are in the log
    # and it pauses 3 s before committing); the others at random moments.
    code = run_app(["--in-transaction-pause-ms", "3000"], kill_after_commits=rng.randint(1, 10),
                   kill_when_open=True)
    assert code == -signal.SIGKILL, f"the open-transaction run ended by itself ({code}):\n{logs[-1]}"
    assert logs[-1].rstrip().splitlines()[-1].startswith("open"), \
        f"the kill did not land inside an open transaction:\n{logs[-1]}"
    for kill in range(1, EOS_KILLS):
        code = run_app([], kill_after_commits=rng.randint(1, 10))
        assert code == -signal.SIGKILL, f"run {kill} ended by itself ({code}) before the kill:\n{logs[-1]}"
    code = run_app(["--exit-when-done"], kill_after_commits=None)
    assert code == 0, f"final run exited {code}:\n" + "\n---\n".join(logs)

    out = read_partitions(tbroker, sink, EOS_INPUT_PARTITIONS, "read_committed")
    values = [v for partition in out.values() for v in partition]
    counts = collections.Counter(values)
    duplicates = {v: n for v, n in counts.items() if n > 1}
    missing = [v for v in inputs if counts[b"out:" + v] == 0]
    assert not duplicates, f"{len(duplicates)} duplicated outputs (seed {seed}), e.g. {list(duplicates.items())[:5]}"
    assert not missing, f"{len(missing)} inputs never output (seed {seed}), e.g. {missing[:5]}"
    assert len(values) == EOS_INPUT_RECORDS
    # Each output partition keeps its input partition's order.
    for partition, records in out.items():
        expected = [b"out:" + v for i, v in enumerate(inputs) if i % EOS_INPUT_PARTITIONS == partition]
        assert records == expected, f"partition {partition} out of order (seed {seed})"
    # The killed runs left aborted transactions behind: read_uncommitted sees at least as much.
    uncommitted = read_partitions(tbroker, sink, EOS_INPUT_PARTITIONS, "read_uncommitted")
    written = sum(len(v) for v in uncommitted.values())
    assert written > len(values), (
        f"read_uncommitted sees {written} records, read_committed {len(values)}: the records of "
        f"the transaction killed while open are not in the log (seed {seed})")
