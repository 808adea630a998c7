"""kafka-reassign-partitions (generate, execute, verify) and kafka-leader-election
(preferred) on a 3-node strom cluster, checked with kafka-topics --describe and
kafka-metadata-quorum."""

from __future__ import annotations

import json
import re
import time

import pytest

from tool import describe_partitions, kafka, out

TOPIC = "tools-moved"


@pytest.fixture(scope="module")
def cluster(strom_bin):
    from strom_compat.cluster import Cluster
    cluster = Cluster("tools", extra_config={"group.initial.rebalance.delay.ms": "0"})
    try:
        cluster.start()
    except Exception:
        cluster.close()
        raise
    yield cluster
    cluster.close()


def placement(cluster) -> dict[int, tuple[str, str, str]]:
    text = out("kafka-topics", "--bootstrap-server", cluster.bootstrap, "--describe", "--topic", TOPIC)
    return {p: (f["Leader"], f["Replicas"], f["Isr"]) for p, f in describe_partitions(text).items()}


def test_reassign_generate_execute_verify_and_preferred_election(cluster, tmp_path):
    b = cluster.bootstrap
    quorum = out("kafka-metadata-quorum", "--bootstrap-server", b, "describe", "--replication")
    roles = sorted((int(row.split()[0]), row.split()[-1]) for row in quorum.splitlines()[1:] if row.strip())
    assert [r[0] for r in roles] == [1, 2, 3], quorum
    assert sorted(r[1] for r in roles) == ["Follower", "Follower", "Leader"], quorum

    out("kafka-topics", "--bootstrap-server", b, "--create", "--topic", TOPIC,
        "--replica-assignment", "1:2,2:3,3:1")
    out("kafka-console-producer", "--bootstrap-server", b, "--topic", TOPIC, "--command-property", "acks=all",
        input="".join(f"record-{i}\n" for i in range(30)))
    before = placement(cluster)
    assert {p: r for p, (_, r, _) in before.items()} == {0: "1,2", 1: "2,3", 2: "3,1"}, before

    # --generate proposes a placement over the given brokers, and prints the current one.
    topics_file = tmp_path / "topics.json"
    topics_file.write_text(json.dumps({"version": 1, "topics": [{"topic": TOPIC}]}))
    generated = out("kafka-reassign-partitions", "--bootstrap-server", b, "--topics-to-move-json-file",
                    str(topics_file), "--broker-list", "1,2,3", "--generate")
    current_json, proposed_json = re.findall(r"^\{.*\}$", generated, re.M)
    current = {p["partition"]: p["replicas"] for p in json.loads(current_json)["partitions"]}
    assert current == {0: [1, 2], 1: [2, 3], 2: [3, 1]}, generated
    proposed = json.loads(proposed_json)["partitions"]
    assert sorted(p["partition"] for p in proposed) == [0, 1, 2]
    assert all(len(p["replicas"]) == 2 and set(p["replicas"]) <= {1, 2, 3} for p in proposed), proposed

    # Move partition 0 to nodes 2,3 and turn partition 1 around (3 preferred).
    plan = {"version": 1, "partitions": [{"topic": TOPIC, "partition": 0, "replicas": [2, 3]},
                                         {"topic": TOPIC, "partition": 1, "replicas": [3, 2]}]}
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    executed = out("kafka-reassign-partitions", "--bootstrap-server", b, "--reassignment-json-file",
                   str(plan_file), "--execute", "--throttle", "50000000")
    assert f"Successfully started partition reassignments for {TOPIC}-0,{TOPIC}-1" in executed, executed
    # --throttle set the brokers' dynamic replication throttle rates.
    throttles = out("kafka-configs", "--bootstrap-server", b, "--entity-type", "brokers", "--entity-name", "2",
                    "--describe")
    assert "follower.replication.throttled.rate=50000000" in throttles, throttles

    deadline = time.monotonic() + 60
    while True:
        verified = kafka("kafka-reassign-partitions", "--bootstrap-server", b, "--reassignment-json-file",
                         str(plan_file), "--verify", ok=False)
        done = re.findall(rf"Reassignment of partition {TOPIC}-(\d) is completed\.", verified.stdout)
        if sorted(done) == ["0", "1"]:
            break
        assert time.monotonic() < deadline, f"reassignment not completed in 60 s:\n{verified.stdout}"
        time.sleep(1)
    # --verify also clears the replication throttles on every broker and the topic.
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Clearing broker-level throttles on brokers 1,2,3" in verified.stdout
    assert "throttled.rate" not in out("kafka-configs", "--bootstrap-server", b, "--entity-type", "brokers",
                                       "--entity-name", "2", "--describe")
    assert f"Clearing topic-level throttles on topic {TOPIC}" in verified.stdout

    after = placement(cluster)
    assert after[0][1] == "2,3" and set(after[0][2].split(",")) == {"2", "3"}, after
    assert after[1][1] == "3,2" and set(after[1][2].split(",")) == {"2", "3"}, after
    assert after[2] == before[2]
    listed = out("kafka-reassign-partitions", "--bootstrap-server", b, "--list")
    assert "No partition reassignments found." in listed

    # Partition 1 still has its old leader (2) unless the move elected 3: a preferred
    # election puts every partition on its first replica.
    elected = kafka("kafka-leader-election", "--bootstrap-server", b, "--election-type", "preferred",
                    "--all-topic-partitions")
    assert elected.returncode == 0, elected.stdout + elected.stderr
    deadline = time.monotonic() + 30
    while True:
        leaders = {p: leader for p, (leader, _, _) in placement(cluster).items()}
        if leaders == {0: "2", 1: "3", 2: "3"}:
            break
        assert time.monotonic() < deadline, f"preferred leaders not elected: {leaders}"
        time.sleep(1)

    # Roll back with the file --execute printed: it names each replica's log directory
    # (from DescribeLogDirs), which the tool then asks for with AlterReplicaLogDirs.
    rollback_json = re.search(r"^Current partition replica assignment\s*\n\s*(\{.*\})$", executed, re.M).group(1)
    rollback = json.loads(rollback_json)
    assert all(d != "any" for p in rollback["partitions"] for d in p["log_dirs"]), rollback
    rollback_file = tmp_path / "rollback.json"
    rollback_file.write_text(rollback_json)
    out("kafka-reassign-partitions", "--bootstrap-server", b, "--reassignment-json-file", str(rollback_file),
        "--execute")
    deadline = time.monotonic() + 60
    while True:
        verified = kafka("kafka-reassign-partitions", "--bootstrap-server", b, "--reassignment-json-file",
                         str(rollback_file), "--verify", ok=False)
        if verified.returncode == 0 and "is still in progress" not in verified.stdout:
            break
        assert time.monotonic() < deadline, f"rollback not completed in 60 s:\n{verified.stdout}{verified.stderr}"
        time.sleep(1)
    assert re.findall(rf"Reassignment of partition {TOPIC}-\d is completed\.", verified.stdout), verified.stdout
    assert {p: r for p, (_, r, _) in placement(cluster).items()} == {0: "1,2", 1: "2,3", 2: "3,1"}

    # Every record is still there, in order, read from the new leaders.
    consumed = out("kafka-console-consumer", "--bootstrap-server", b, "--topic", TOPIC, "--from-beginning",
                   "--max-messages", "30", "--timeout-ms", "30000")
    got = sorted(consumed.splitlines(), key=lambda v: int(v.split("-")[1]))
    assert got == [f"record-{i}" for i in range(30)]
