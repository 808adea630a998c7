"""kafka-consumer-groups: --list, --describe (LAG per partition), --reset-offsets in every
mode with --dry-run and --execute, --delete-offsets and --delete, against one strom broker.

Records carry chosen timestamps (produced with librdkafka, which can set them) so the
time-based resets land on known offsets; the group's offsets are committed by Kafka's own
console consumer.
"""

from __future__ import annotations

import time

import pytest

from tool import out, table

TOPIC = "tools-groups"
GROUP = "tools-app"
HOUR_MS = 3_600_000
# Partition 0: 6 records, three 3 h old then three 1 h old; partition 1: 4 records, two of
# each. The first record younger than 2 h is offset 3 on partition 0 and 2 on partition 1.
OLD_NEW = {0: (3, 3), 1: (2, 2)}
END = {p: old + new for p, (old, new) in OLD_NEW.items()}
FIRST_NEW = {p: old for p, (old, _) in OLD_NEW.items()}


def group_rows(broker, *extra) -> dict[int, dict[str, str]]:
    text = out("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap, "--describe",
               "--group", GROUP, *extra)
    return {int(r["PARTITION"]): r for r in table(text, "GROUP") if r["TOPIC"] == TOPIC}


def reset(broker, *args) -> dict[int, int]:
    """--reset-offsets ARGS; the NEW-OFFSET table it prints, per partition."""
    text = out("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap, "--group", GROUP,
               "--reset-offsets", *args)
    rows = table(text, "GROUP")
    assert rows, text
    return {int(r["PARTITION"]): int(r["NEW-OFFSET"]) for r in rows if r["TOPIC"] == TOPIC}


@pytest.fixture(scope="module")
def prepared(broker):
    from confluent_kafka import Producer
    out("kafka-topics", "--bootstrap-server", broker.bootstrap, "--create", "--topic", TOPIC,
        "--partitions", "2")
    now = int(time.time() * 1000)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for partition, (old, new) in OLD_NEW.items():
        for i in range(old):
            producer.produce(TOPIC, value=b"old%d" % i, partition=partition, timestamp=now - 3 * HOUR_MS + i)
        for i in range(new):
            producer.produce(TOPIC, value=b"new%d" % i, partition=partition, timestamp=now - HOUR_MS + i)
    assert producer.flush(30) == 0
    # Consume 5 of the 10 records one poll at a time, so the offsets committed on close are
    # exactly the 5 consumed.
    consumed = out("kafka-console-consumer", "--bootstrap-server", broker.bootstrap, "--topic", TOPIC,
                   "--group", GROUP, "--from-beginning", "--max-messages", "5", "--timeout-ms", "30000",
                   "--command-property", "max.poll.records=1")
    assert len(consumed.splitlines()) == 5, consumed
    return now


def test_list_and_describe_lag_per_partition(broker, prepared):
    listed = out("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap, "--list").split()
    assert GROUP in listed
    # kafka-groups (KIP-1043) tells the group's type and protocol: a classic consumer group.
    typed = table(out("kafka-groups", "--bootstrap-server", broker.bootstrap, "--list"), "GROUP")
    assert {(r["GROUP"], r["TYPE"], r["PROTOCOL"]) for r in typed} == {(GROUP, "Classic", "consumer")}, typed
    rows = group_rows(broker)
    assert sorted(rows) == [0, 1]
    current = {p: int(r["CURRENT-OFFSET"]) for p, r in rows.items()}
    assert sum(current.values()) == 5, rows
    for p, r in rows.items():
        assert int(r["LOG-END-OFFSET"]) == END[p], r
        assert int(r["LAG"]) == END[p] - current[p], r
        assert r["CONSUMER-ID"] == "-", "the console consumer has left"

    state = out("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap, "--describe",
                "--group", GROUP, "--state")
    (row,) = [r for r in table(state, "GROUP") if r["GROUP"] == GROUP] or [None]
    assert row is not None and row["STATE"] == "Empty" and row["#MEMBERS"] == "0", state


def test_reset_offsets_every_mode(broker, prepared, tmp_path):
    before = {p: int(r["CURRENT-OFFSET"]) for p, r in group_rows(broker).items()}
    scope = ("--topic", TOPIC)

    # --dry-run shows the plan and changes nothing.
    assert reset(broker, *scope, "--to-earliest", "--dry-run") == {0: 0, 1: 0}
    assert {p: int(r["CURRENT-OFFSET"]) for p, r in group_rows(broker).items()} == before

    assert reset(broker, *scope, "--to-earliest", "--execute") == {0: 0, 1: 0}
    assert reset(broker, *scope, "--to-latest", "--execute") == END
    assert reset(broker, *scope, "--to-offset", "2", "--execute") == {0: 2, 1: 2}
    assert reset(broker, *scope, "--shift-by", "1", "--execute") == {0: 3, 1: 3}
    # Shifting below the start is clamped to the earliest offset.
    assert reset(broker, "--topic", f"{TOPIC}:1", "--shift-by", "-10", "--execute") == {1: 0}

    # Time-based: the first record at or after the time (UTC when no zone is given).
    two_hours_ago = prepared - 2 * HOUR_MS
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(two_hours_ago / 1000)) + ".%03d" % (two_hours_ago % 1000)
    assert reset(broker, *scope, "--to-datetime", stamp, "--dry-run") == FIRST_NEW
    assert reset(broker, *scope, "--to-datetime", stamp, "--execute") == FIRST_NEW
    assert reset(broker, *scope, "--to-earliest", "--execute") == {0: 0, 1: 0}
    # --by-duration counts back from now: 2 h ago falls between the old and the new records.
    assert reset(broker, *scope, "--by-duration", "PT2H", "--execute") == FIRST_NEW
    # --to-current keeps what is committed (here, what by-duration set).
    assert reset(broker, "--all-topics", "--to-current", "--execute") == FIRST_NEW

    # --export writes the plan as CSV, which --from-file applies.
    plan = out("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap, "--group", GROUP,
               "--reset-offsets", *scope, "--to-offset", "1", "--dry-run", "--export")
    assert sorted(line for line in plan.splitlines() if line) == [f"{TOPIC},0,1", f"{TOPIC},1,1"]
    csv = tmp_path / "offsets.csv"
    csv.write_text(f"{TOPIC},0,5\n{TOPIC},1,2\n")
    assert reset(broker, "--from-file", str(csv), "--execute") == {0: 5, 1: 2}

    rows = group_rows(broker)
    assert {p: (int(r["CURRENT-OFFSET"]), int(r["LAG"])) for p, r in rows.items()} == {0: (5, 1), 1: (2, 2)}


def test_delete_offsets_then_delete_group(broker, prepared):
    b = broker.bootstrap
    # Runs after the resets (file order): the group has offsets on both partitions.
    deleted = out("kafka-consumer-groups", "--bootstrap-server", b, "--group", GROUP, "--delete-offsets",
                  "--topic", f"{TOPIC}:0")
    assert f"Request succeeded for deleting offsets from group {GROUP}." in deleted
    statuses = table(deleted, "TOPIC")
    assert [(r["TOPIC"], r["PARTITION"], r["STATUS"]) for r in statuses] == [(TOPIC, "0", "Successful")]
    rows = group_rows(broker)
    # The deleted partition has no committed offset any more ('-'); the other keeps its own.
    assert rows.get(0, {}).get("CURRENT-OFFSET", "-") == "-"
    assert rows[1]["CURRENT-OFFSET"] == "2"

    gone = out("kafka-consumer-groups", "--bootstrap-server", b, "--delete", "--group", GROUP)
    assert f"Deletion of requested consumer groups ('{GROUP}') was successful." in gone
    assert GROUP not in out("kafka-consumer-groups", "--bootstrap-server", b, "--list").split()
