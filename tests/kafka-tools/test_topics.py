"""kafka-topics, kafka-configs (topics), kafka-get-offsets, kafka-delete-records,
kafka-console-producer/-consumer and the cluster views (kafka-broker-api-versions,
kafka-metadata-quorum, kafka-cluster, kafka-leader-election, kafka-log-dirs) against one
strom broker."""

from __future__ import annotations

import json
import os
import re

from tool import describe_partitions, fields, kafka, offsets, out


def test_topics_create_list_describe_alter_delete(broker):
    b = broker.bootstrap
    created = out("kafka-topics", "--bootstrap-server", b, "--create", "--topic", "tools-orders",
                  "--partitions", "3", "--replication-factor", "1",
                  "--config", "retention.ms=3600000", "--config", "cleanup.policy=compact")
    assert "Created topic tools-orders." in created
    out("kafka-topics", "--bootstrap-server", b, "--create", "--topic", "tools-scratch")

    # Creating it again fails, saying why; --if-not-exists makes that a no-op.
    again = kafka("kafka-topics", "--bootstrap-server", b, "--create", "--topic", "tools-orders",
                  "--partitions", "3", ok=False)
    assert again.returncode != 0
    assert "already exists" in again.stdout + again.stderr
    out("kafka-topics", "--bootstrap-server", b, "--create", "--if-not-exists", "--topic", "tools-orders")

    listed = out("kafka-topics", "--bootstrap-server", b, "--list").split()
    assert {"tools-orders", "tools-scratch"} <= set(listed)

    described = out("kafka-topics", "--bootstrap-server", b, "--describe", "--topic", "tools-orders")
    head = fields(described.splitlines()[0])
    assert head["Topic"] == "tools-orders"
    assert head["PartitionCount"] == "3" and head["ReplicationFactor"] == "1"
    assert set(head["Configs"].split(",")) == {"cleanup.policy=compact", "retention.ms=3600000"}
    parts = describe_partitions(described)
    assert sorted(parts) == [0, 1, 2]
    for p in parts.values():
        assert (p["Leader"], p["Replicas"], p["Isr"]) == ("1", "1", "1"), p

    out("kafka-topics", "--bootstrap-server", b, "--alter", "--topic", "tools-orders", "--partitions", "5")
    # Fewer partitions is refused (Kafka's INVALID_PARTITIONS), and the count stays 5.
    fewer = kafka("kafka-topics", "--bootstrap-server", b, "--alter", "--topic", "tools-orders",
                  "--partitions", "2", ok=False)
    assert fewer.returncode != 0
    described = out("kafka-topics", "--bootstrap-server", b, "--describe", "--topic", "tools-(orders|scratch)")
    assert sorted(describe_partitions(described)) == [0, 1, 2, 3, 4]
    counts = {fields(line)["Topic"]: fields(line)["PartitionCount"]
              for line in described.splitlines() if "PartitionCount" in line}
    assert counts == {"tools-orders": "5", "tools-scratch": "1"}

    out("kafka-topics", "--bootstrap-server", b, "--delete", "--topic", "tools-scratch")
    listed = out("kafka-topics", "--bootstrap-server", b, "--list").split()
    assert "tools-scratch" not in listed and "tools-orders" in listed


def test_console_producer_and_consumer_keys_headers_and_formatters(broker):
    b = broker.bootstrap
    topic = "tools-console"
    out("kafka-topics", "--bootstrap-server", b, "--create", "--topic", topic, "--partitions", "1")
    lines = ["k1:first", "k2:second value", "k1:third"]
    out("kafka-console-producer", "--bootstrap-server", b, "--topic", topic,
        "--reader-property", "parse.key=true", "--reader-property", "key.separator=:",
        input="\n".join(lines) + "\n")
    # Headers: `h1:v1,h2:v2<TAB>key<TAB>value` with the default separators.
    out("kafka-console-producer", "--bootstrap-server", b, "--topic", topic,
        "--reader-property", "parse.key=true", "--reader-property", "parse.headers=true",
        input="trace:abc,kind:x\tk3\tfourth\n")

    consumed = out("kafka-console-consumer", "--bootstrap-server", b, "--topic", topic,
                   "--from-beginning", "--max-messages", "4", "--timeout-ms", "30000",
                   "--formatter-property", "print.key=true", "--formatter-property", "print.headers=true",
                   "--formatter-property", "print.timestamp=true", "--formatter-property", "print.partition=true",
                   "--formatter-property", "print.offset=true", "--formatter-property", "key.separator=|")
    records = [line.split("|") for line in consumed.splitlines() if line.startswith("CreateTime:")]
    # CreateTime:<ms>|Partition:<p>|Offset:<o>|<headers>|<key>|<value>: the formatter puts its
    # key.separator between all the fields it prints.
    assert len(records) == 4, consumed
    parsed = []
    for fields_ in records:
        assert re.fullmatch(r"CreateTime:\d{13}", fields_[0]), fields_
        parsed.append(tuple(fields_[1:]))
    assert parsed == [
        ("Partition:0", "Offset:0", "NO_HEADERS", "k1", "first"),
        ("Partition:0", "Offset:1", "NO_HEADERS", "k2", "second value"),
        ("Partition:0", "Offset:2", "NO_HEADERS", "k1", "third"),
        ("Partition:0", "Offset:3", "trace:abc,kind:x", "k3", "fourth"),
    ]

    # --max-messages stops early; --offset/--partition start in the middle.
    tail = out("kafka-console-consumer", "--bootstrap-server", b, "--topic", topic, "--partition", "0",
               "--offset", "2", "--max-messages", "2", "--timeout-ms", "30000")
    assert tail.splitlines() == ["third", "fourth"]


def test_get_offsets_and_delete_records(broker, tmp_path):
    b = broker.bootstrap
    topic = "tools-offsets"
    out("kafka-topics", "--bootstrap-server", b, "--create", "--topic", topic, "--partitions", "2")
    # Records with chosen timestamps, one partition each (librdkafka; the console producer
    # cannot set either).
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": b})
    base = 1_700_000_000_000
    for i in range(6):
        producer.produce(topic, value=f"v{i}".encode(), partition=0, timestamp=base + i * 1000)
    for i in range(3):
        producer.produce(topic, value=f"w{i}".encode(), partition=1, timestamp=base + i * 1000)
    assert producer.flush(30) == 0

    def get(*args):
        return offsets(out("kafka-get-offsets", "--bootstrap-server", b, "--topic", topic, *args))

    assert get("--time", "earliest") == {(topic, 0): 0, (topic, 1): 0}
    assert get("--time", "latest") == {(topic, 0): 6, (topic, 1): 3}
    # The first record at or after the time; none after it leaves the partition out.
    assert get("--time", str(base + 1500)) == {(topic, 0): 2, (topic, 1): 2}
    assert get("--time", str(base + 4000)) == {(topic, 0): 4}
    assert get("--time", "max-timestamp") == {(topic, 0): 5, (topic, 1): 2}

    spec = tmp_path / "delete.json"
    spec.write_text('{"version": 1, "partitions": [{"topic": "%s", "partition": 0, "offset": 4},'
                    ' {"topic": "%s", "partition": 1, "offset": -1}]}' % (topic, topic))
    deleted = out("kafka-delete-records", "--bootstrap-server", b, "--offset-json-file", str(spec))
    low = dict(re.findall(r"partition: (\S+)\s+low_watermark: (\d+)", deleted))
    assert low == {f"{topic}-0": "4", f"{topic}-1": "3"}, deleted
    assert get("--time", "earliest") == {(topic, 0): 4, (topic, 1): 3}
    assert get("--time", "latest") == {(topic, 0): 6, (topic, 1): 3}
    remaining = out("kafka-console-consumer", "--bootstrap-server", b, "--topic", topic, "--partition", "0",
                    "--offset", "earliest", "--max-messages", "2", "--timeout-ms", "30000")
    assert remaining.splitlines() == ["v4", "v5"]


def test_topic_configs(broker):
    b = broker.bootstrap
    topic = "tools-configs"
    out("kafka-topics", "--bootstrap-server", b, "--create", "--topic", topic)
    done = out("kafka-configs", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", topic,
               "--alter", "--add-config", "retention.ms=86400000,max.message.bytes=65536,cleanup.policy=[compact,delete]")
    assert f"Completed updating config for topic {topic}." in done
    out("kafka-configs", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", topic,
        "--alter", "--delete-config", "max.message.bytes")
    described = out("kafka-configs", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", topic,
                    "--describe")
    assert f"Dynamic configs for topic {topic} are:" in described
    dynamic = dict(re.findall(r"^  (\S+?)=(\S*) sensitive=false synonyms=\{DYNAMIC_TOPIC_CONFIG", described, re.M))
    assert dynamic == {"retention.ms": "86400000", "cleanup.policy": "compact,delete"}, described
    # --all shows defaults too, with the broker default as the synonym.
    everything = out("kafka-configs", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", topic,
                     "--describe", "--all")
    values = dict(re.findall(r"^  (\S+?)=(\S*) sensitive=", everything, re.M))
    assert values["retention.ms"] == "86400000"
    assert values["max.message.bytes"] == "1048588"
    assert values["segment.bytes"] == "1073741824"
    # An invalid value is refused and names the key.
    bad = kafka("kafka-configs", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", topic,
                "--alter", "--add-config", "retention.ms=banana", ok=False)
    assert bad.returncode != 0 and "retention.ms" in bad.stdout + bad.stderr


def test_cluster_views(broker):
    b = broker.bootstrap
    versions = out("kafka-broker-api-versions", "--bootstrap-server", b)
    assert re.search(rf"^{re.escape(b)} \(id: 1 rack: null isFenced: false\) -> \(", versions, re.M), versions
    usable = dict(re.findall(r"^\s+(\w+)\(\d+\): .*\[usable: (\d+)\]", versions, re.M))
    # The tool's own client reaches each API's newest version Strom serves.
    assert int(usable["Produce"]) >= 9 and int(usable["Fetch"]) >= 12 and int(usable["Metadata"]) >= 9
    assert {"CreateTopics", "DescribeConfigs", "OffsetDelete", "DescribeQuorum"} <= set(usable)

    status = out("kafka-metadata-quorum", "--bootstrap-server", b, "describe", "--status")
    s = dict(re.findall(r"^(\w+):\s+(.*)$", status, re.M))
    assert s["LeaderId"] == "1" and int(s["LeaderEpoch"]) >= 1 and int(s["HighWatermark"]) > 0, status
    assert s["CurrentVoters"].replace(" ", "").startswith('[{"id":1'), status
    replication = out("kafka-metadata-quorum", "--bootstrap-server", b, "describe", "--replication")
    rows = [line.split() for line in replication.splitlines()[1:] if line.strip()]
    assert [(r[0], r[-1]) for r in rows] == [("1", "Leader")], replication
    assert int(rows[0][2]) >= int(s["HighWatermark"])

    # The cluster id the quorum tool reports is the one kafka-cluster reads.
    assert out("kafka-cluster", "cluster-id", "--bootstrap-server", b).strip() == f"Cluster ID: {s['ClusterId']}"

    # One broker: every partition already has its preferred leader.
    out("kafka-topics", "--bootstrap-server", b, "--create", "--topic", "tools-elect", "--partitions", "2")
    elected = out("kafka-leader-election", "--bootstrap-server", b, "--election-type", "preferred",
                  "--topic", "tools-elect", "--partition", "1")
    assert "Valid replica already elected for partitions tools-elect-1" in elected

    # kafka-log-dirs prints JSON after a status line: the broker's one directory, each
    # partition of the topic in it.
    dirs_text = out("kafka-log-dirs", "--bootstrap-server", b, "--describe", "--topic-list", "tools-elect")
    dirs = json.loads(dirs_text.splitlines()[-1])
    (only,) = dirs["brokers"]
    (log_dir,) = only["logDirs"]
    assert only["broker"] == 1 and log_dir["error"] is None
    assert os.path.samefile(log_dir["logDir"], broker.data_dir)
    assert sorted(p["partition"] for p in log_dir["partitions"]) == ["tools-elect-0", "tools-elect-1"]
    assert all(p["size"] == 0 and p["isFuture"] is False for p in log_dir["partitions"])
