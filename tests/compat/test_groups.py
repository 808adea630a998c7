"""Consumer groups with real clients: librdkafka (classic range and cooperative-sticky, and
the KIP-848 consumer protocol), kafka-python, and the admin APIs; committed offsets survive a
broker kill -9 and restart; a member killed without leaving loses its partitions to the rest
within the session timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from strom_compat.broker import Broker
from strom_compat.confluent_driver import create_topic

PARTITIONS = 6
# Short initial delay so tests do not wait Kafka's 3 s for every new group.
GROUP_BROKER_CONFIG = {"group.initial.rebalance.delay.ms": "300", "num.partitions": "1"}


@pytest.fixture(scope="module")
def gbroker(strom_bin):
    broker = Broker("groups", GROUP_BROKER_CONFIG)
    broker.start()
    yield broker
    broker.close()


def new_topic(broker, partitions: int = PARTITIONS) -> str:
    topic = f"grp-{uuid.uuid4().hex[:8]}"
    created = create_topic(AdminClient({"bootstrap.servers": broker.bootstrap}), topic, partitions)
    assert created == partitions
    return topic


def produce(broker, topic: str, count: int, partitions: int = PARTITIONS) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for index in range(count):
        producer.produce(topic, value=b"v-%d" % index, partition=index % partitions)
    assert producer.flush(30) == 0
    producer.close() if hasattr(producer, "close") else None


def consumer_config(broker, group: str, protocol: str, assignor: str | None = None) -> dict:
    config = {
        "bootstrap.servers": broker.bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    if protocol == "consumer":
        config["group.protocol"] = "consumer"
    else:
        config["session.timeout.ms"] = 6000
        config["heartbeat.interval.ms"] = 500
        if assignor:
            config["partition.assignment.strategy"] = assignor
    return config


def wait_for_assignments(consumers: list[Consumer], partitions: int, timeout_s: float = 40.0):
    """Polls every consumer until their assignments are disjoint and cover all partitions."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        for consumer in consumers:
            consumer.poll(0.05)
        assigned = [sorted(tp.partition for tp in c.assignment()) for c in consumers]
        flat = sorted(p for a in assigned for p in a)
        last = assigned
        if flat == list(range(partitions)) and all(assigned):
            return assigned
    raise AssertionError(f"assignments never covered {partitions} partitions disjointly: {last}")


@pytest.mark.parametrize(
    "protocol,assignor",
    [("classic", "range"), ("classic", "roundrobin"), ("classic", "cooperative-sticky"), ("consumer", None)],
)
def test_given_three_librdkafka_consumers_when_subscribed_should_split_six_partitions(gbroker, protocol, assignor):
    topic = new_topic(gbroker)
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumers = [Consumer(consumer_config(gbroker, group, protocol, assignor)) for _ in range(3)]
    try:
        for consumer in consumers:
            consumer.subscribe([topic])
        assigned = wait_for_assignments(consumers, PARTITIONS)
        assert all(len(a) == 2 for a in assigned), assigned
        # A fourth member joins, then leaves: the group settles again each time.
        extra = Consumer(consumer_config(gbroker, group, protocol, assignor))
        extra.subscribe([topic])
        start = time.monotonic()
        wait_for_assignments(consumers + [extra], PARTITIONS)
        joined_s = time.monotonic() - start
        extra.close()
        wait_for_assignments(consumers, PARTITIONS)
        print(f"{protocol}/{assignor}: 4th member settled in {joined_s:.2f}s")
    finally:
        for consumer in consumers:
            consumer.close()


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_given_commits_when_consumer_restarts_should_resume_at_committed_offset(gbroker, protocol):
    topic = new_topic(gbroker, 3)
    group = f"g-{uuid.uuid4().hex[:8]}"
    produce(gbroker, topic, 90, 3)
    consumer = Consumer(consumer_config(gbroker, group, protocol))
    consumer.subscribe([topic])
    seen = []
    deadline = time.monotonic() + 30
    while len(seen) < 45 and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        seen.append((msg.partition(), msg.offset()))
        consumer.commit(message=msg, asynchronous=False)
    consumer.close()
    assert len(seen) == 45
    committed_count = len(seen)

    consumer = Consumer(consumer_config(gbroker, group, protocol))
    consumer.subscribe([topic])
    rest = []
    deadline = time.monotonic() + 30
    while len(rest) < 90 - committed_count and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        rest.append((msg.partition(), msg.offset()))
    time.sleep(0.5)
    extra = consumer.poll(0.5)
    consumer.close()
    assert extra is None or extra.error(), "read beyond the end"
    assert len(rest) == 90 - committed_count
    assert not set(rest) & set(seen), "re-read committed records"
    assert len(set(rest) | set(seen)) == 90


def test_given_committed_offsets_when_broker_killed_and_restarted_should_keep_them(own_broker):
    broker = own_broker("groups-restart", GROUP_BROKER_CONFIG)
    broker.start()
    topic = new_topic(broker, 3)
    group = f"g-{uuid.uuid4().hex[:8]}"
    produce(broker, topic, 60, 3)
    consumer = Consumer(consumer_config(broker, group, "classic"))
    consumer.subscribe([topic])
    seen = []
    deadline = time.monotonic() + 30
    while len(seen) < 30 and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        seen.append((msg.partition(), msg.offset()))
    consumer.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in consumer.committed(
        [TopicPartition(topic, p) for p in range(3)], timeout=10)}
    consumer.close()

    broker.kill()
    broker.start()

    consumer = Consumer(consumer_config(broker, group, "classic"))
    after = {tp.partition: tp.offset for tp in consumer.committed(
        [TopicPartition(topic, p) for p in range(3)], timeout=20)}
    assert after == committed
    consumer.subscribe([topic])
    rest = []
    deadline = time.monotonic() + 30
    while len(rest) < 30 and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        rest.append((msg.partition(), msg.offset()))
    consumer.close()
    assert len(rest) == 30
    assert not set(rest) & set(seen)
    for partition, offset in rest:
        assert offset >= committed[partition]


MEMBER_SCRIPT = textwrap.dedent("""
    import sys, time
    from confluent_kafka import Consumer
    bootstrap, group, topic = sys.argv[1:4]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 6000,
                  "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    while True:
        c.poll(0.1)
        if c.assignment():
            print("assigned", flush=True)
""")


def test_given_member_killed_without_leaving_when_session_expires_should_move_its_partitions(gbroker):
    topic = new_topic(gbroker)
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumers = [Consumer(consumer_config(gbroker, group, "classic", "range")) for _ in range(2)]
    for consumer in consumers:
        consumer.subscribe([topic])
    member = subprocess.Popen([sys.executable, "-c", MEMBER_SCRIPT, gbroker.bootstrap, group, topic],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            for consumer in consumers:
                consumer.poll(0.05)
            owned = sum(len(c.assignment()) for c in consumers)
            if owned == 4 and member.poll() is None:
                break
        assert sum(len(c.assignment()) for c in consumers) == 4, "third member never got partitions"
        os.kill(member.pid, signal.SIGKILL)
        member.wait(10)
        killed_at = time.monotonic()
        assigned = wait_for_assignments(consumers, PARTITIONS, timeout_s=30)
        moved_s = time.monotonic() - killed_at
        # wait_for_assignments fails only if the partitions never move; the time is a figure.
        print(f"FIGURE test=kill_member moved_ms={round(1000 * moved_s)} session_timeout_ms=6000", flush=True)
        assert sorted(len(a) for a in assigned) == [3, 3]
    finally:
        if member.poll() is None:
            member.kill()
        for consumer in consumers:
            consumer.close()


def test_given_kafka_python_group_when_consuming_should_commit_and_resume(gbroker):
    from kafka import KafkaConsumer

    topic = new_topic(gbroker, 2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    produce(gbroker, topic, 20, 2)
    consumer = KafkaConsumer(topic, bootstrap_servers=gbroker.bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=10000)
    seen = []
    for msg in consumer:
        seen.append((msg.partition, msg.offset))
        if len(seen) == 20:
            break
    consumer.commit()
    consumer.close()
    assert len(seen) == 20

    # Records written after the commit: the resumed member must read exactly these, from
    # the committed offsets (an empty read would also pass if it never joined).
    produce(gbroker, topic, 6, 2)
    consumer = KafkaConsumer(topic, bootstrap_servers=gbroker.bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=10000)
    resumed = []
    for msg in consumer:
        resumed.append((msg.partition, msg.offset, msg.value))
        if len(resumed) == 6:
            break
    assert sorted(resumed) == [(p, 10 + i, b"v-%d" % (2 * i + p)) for p in range(2) for i in range(3)], resumed
    from kafka import TopicPartition as KTP
    assert consumer.committed(KTP(topic, 0)) == 10
    consumer.close()


def test_given_groups_when_admin_lists_describes_and_deletes_should_report_them(gbroker):
    from confluent_kafka import ConsumerGroupTopicPartitions

    admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    topic = new_topic(gbroker, 2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    produce(gbroker, topic, 10, 2)
    consumer = Consumer(consumer_config(gbroker, group, "classic", "range"))
    consumer.subscribe([topic])
    wait_for_assignments([consumer], 2)

    listed = admin.list_consumer_groups().result(timeout=10)
    ids = {g.group_id for g in listed.valid}
    assert group in ids

    described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    assert str(described.state).endswith("STABLE"), described.state
    assert len(described.members) == 1
    assert sorted(tp.partition for tp in described.members[0].assignment.topic_partitions) == [0, 1]

    # A group with members cannot be deleted.
    with pytest.raises(KafkaException) as error:
        admin.delete_consumer_groups([group])[group].result(timeout=10)
    assert error.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
    consumer.close()

    # Offsets set by the admin while the group is empty, then read back.
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4)])])[group].result(timeout=10)
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=10)
    assert sorted((tp.partition, tp.offset) for tp in offsets.topic_partitions) == [(0, 3), (1, 4)]

    admin.delete_consumer_groups([group])[group].result(timeout=10)
    listed = admin.list_consumer_groups().result(timeout=10)
    assert group not in {g.group_id for g in listed.valid}
    with pytest.raises(KafkaException) as error:
        admin.delete_consumer_groups([group])[group].result(timeout=10)
    assert error.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND


def test_given_client_produce_to_offsets_topic_should_be_refused(gbroker):
    # Make sure the topic exists (a group lookup creates it).
    admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    admin.list_consumer_groups().result(timeout=10)
    c = Consumer({"bootstrap.servers": gbroker.bootstrap, "group.id": "probe"})
    c.committed([TopicPartition("any", 0)], timeout=10)
    c.close()
    errors = []
    producer = Producer({"bootstrap.servers": gbroker.bootstrap, "message.send.max.retries": 0})
    producer.produce("__consumer_offsets", value=b"x", partition=0,
                     on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert errors and errors[0] is not None
    assert errors[0].code() in (KafkaError.TOPIC_EXCEPTION, KafkaError.TOPIC_AUTHORIZATION_FAILED), errors[0]


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_given_regex_subscription_should_consume_matching_topics(gbroker, protocol):
    prefix = f"re{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    for suffix in ("a", "b"):
        assert create_topic(admin, f"{prefix}-{suffix}", 2) == 2
        produce(gbroker, f"{prefix}-{suffix}", 4, 2)
    assert create_topic(admin, f"other-{prefix}", 1) == 1
    produce(gbroker, f"other-{prefix}", 3, 1)
    consumer = Consumer(consumer_config(gbroker, f"g-{prefix}", protocol))
    consumer.subscribe([f"^{prefix}-.*"])
    topics = set()
    count = 0
    deadline = time.monotonic() + 40
    while count < 8 and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        topics.add(msg.topic())
        count += 1
    consumer.close()
    assert count == 8
    assert topics == {f"{prefix}-a", f"{prefix}-b"}


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_given_running_consumer_when_broker_restarts_should_keep_consuming_without_loss(own_broker, protocol):
    """The same consumer instance rides out a broker kill -9 and restart: records produced
    afterwards arrive, and with commits after each record nothing is lost or re-read beyond
    the last commit."""
    broker = own_broker(f"groups-ride-{protocol}", GROUP_BROKER_CONFIG)
    broker.start()
    topic = new_topic(broker, 2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    produce(broker, topic, 10, 2)
    consumer = Consumer(consumer_config(broker, group, protocol))
    consumer.subscribe([topic])
    seen = []

    def drain(until: int, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while len(seen) < until and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            seen.append(msg.value())
            consumer.commit(message=msg, asynchronous=False)

    try:
        drain(10, 30)
        assert len(seen) == 10
        broker.kill()
        broker.start()
        produce(broker, topic, 10, 2)
        drain(20, 60)
    finally:
        consumer.close()
    assert len(seen) == 20, f"{len(seen)} records after the restart"
    assert sorted(seen) == sorted([b"v-%d" % i for i in range(10)] * 2)
