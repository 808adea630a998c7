"""Fetch from the closest replica (KIP-392) with librdkafka on a three-node Strom cluster:
brokers in racks r1, r2, r3 with the rack-aware replica selector, and a consumer with
`client.rack` set to a follower's rack reads every record, in order, from that follower,
which the brokers' own byte counters (Prometheus, `/metrics`) show: the follower in the
consumer's rack served the records, the other follower served none.
"""

from __future__ import annotations

import re
import time
import urllib.request
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from strom_compat.broker import free_port
from strom_compat.cluster import Cluster

RECORDS = 2000


def topic_bytes_out(port: int, topic: str) -> int:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    pattern = re.compile(r'^strom_topic_bytes_out_total\{[^}]*topic="' + re.escape(topic) + r'"[^}]*\} (\d+)',
                         re.MULTILINE)
    match = pattern.search(text)
    return int(match.group(1)) if match else 0


def test_consumer_with_client_rack_reads_from_the_follower_in_its_rack(request, strom_bin):
    cluster = Cluster("follower-fetch", extra_config={
        "replica.selector.class": "org.apache.kafka.common.replica.RackAwareReplicaSelector",
    })
    request.node.extra_brokers = list(cluster.nodes.values())
    http_ports = {}
    for node in cluster.nodes.values():
        http_ports[node.node_id] = free_port()
        node.extra_config = {"broker.rack": f"r{node.node_id}",
                             "http.listener": f"127.0.0.1:{http_ports[node.node_id]}"}
    try:
        cluster.start()
        topic = f"racked-{uuid.uuid4().hex[:8]}"
        cluster.admin().create_topics([NewTopic(topic, 1, 3)], operation_timeout=15)[topic].result(timeout=30)
        cluster.wait_full_isr(topic, 1, timeout=30)
        leader = cluster.leader(topic, 0)
        follower, other = [n for n in (1, 2, 3) if n != leader]

        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5})
        for seq in range(RECORDS):
            producer.produce(topic, value=b"v-%06d" % seq, partition=0)
        assert producer.flush(30) == 0
        before = {n: topic_bytes_out(http_ports[n], topic) for n in (1, 2, 3)}

        consumer = Consumer({
            "bootstrap.servers": cluster.bootstrap,
            "group.id": f"rack-{uuid.uuid4().hex[:8]}",
            "client.rack": f"r{follower}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        })
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        values = []
        deadline = time.monotonic() + 60
        while len(values) < RECORDS and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            values.append(message.value())
        consumer.close()
        assert values == [b"v-%06d" % seq for seq in range(RECORDS)]

        served = {n: topic_bytes_out(http_ports[n], topic) - before[n] for n in (1, 2, 3)}
        payload_bytes = sum(len(v) for v in values)
        assert served[follower] >= payload_bytes, served
        assert served[other] == 0, served
        print(f"FIGURE follower_fetch follower={follower} leader={leader} bytes_by_broker={served}")
    finally:
        cluster.close()
