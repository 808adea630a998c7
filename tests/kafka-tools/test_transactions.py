"""kafka-transactions: list, describe, describe-producers, find-hanging and abort of a
transaction its producer left open, against one strom broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tool import kafka, offsets, out, table

HERE = Path(__file__).resolve().parent


def test_transactions_list_describe_and_abort_an_open_one(broker):
    b = broker.bootstrap
    topic, txn_id = "tools-txn", "tools-open-txn"
    out("kafka-topics", "--bootstrap-server", b, "--create", "--topic", topic, "--partitions", "1")
    subprocess.run([sys.executable, str(HERE / "hang_txn.py"), b, txn_id, topic, "0", "3"],
                   check=True, timeout=60)

    listed = table(out("kafka-transactions", "--bootstrap-server", b, "list"), "TransactionalId")
    (row,) = [r for r in listed if r["TransactionalId"] == txn_id]
    assert row["TransactionState"] == "Ongoing" and row["Coordinator"] == "1", listed
    producer_id = row["ProducerId"]

    described = table(out("kafka-transactions", "--bootstrap-server", b, "describe", "--transactional-id", txn_id),
                      "CoordinatorId")
    assert len(described) == 1, described
    d = described[0]
    assert (d["ProducerId"], d["ProducerEpoch"], d["TransactionState"], d["TransactionTimeoutMs"],
            d["TopicPartitions"]) == (producer_id, "0", "Ongoing", "900000", f"{topic}-0"), d

    producers = table(out("kafka-transactions", "--bootstrap-server", b, "describe-producers", "--topic", topic,
                          "--partition", "0"), "ProducerId")
    assert [(p["ProducerId"], p["LastSequence"], p["CurrentTransactionStartOffset"]) for p in producers] \
        == [(producer_id, "2", "0")], producers

    # The coordinator knows this transaction, so it is open but not hanging.
    hanging = out("kafka-transactions", "--bootstrap-server", b, "find-hanging", "--broker-id", "1",
                  "--max-transaction-timeout", "0")
    assert table(hanging, "Topic") == [], hanging

    # The three open records are in the log.
    assert offsets(out("kafka-get-offsets", "--bootstrap-server", b, "--topic", topic)) == {(topic, 0): 3}

    out("kafka-transactions", "--bootstrap-server", b, "abort", "--topic", topic, "--partition", "0",
        "--start-offset", "0")
    after = table(out("kafka-transactions", "--bootstrap-server", b, "describe-producers", "--topic", topic,
                      "--partition", "0"), "ProducerId")
    assert [(p["ProducerId"], p["CurrentTransactionStartOffset"]) for p in after] == [(producer_id, "None")], after
    # The abort marker took offset 3; the aborted records stay invisible to read_committed.
    assert offsets(out("kafka-get-offsets", "--bootstrap-server", b, "--topic", topic)) == {(topic, 0): 4}
    committed = kafka("kafka-console-consumer", "--bootstrap-server", b, "--topic", topic, "--from-beginning",
                      "--isolation-level", "read_committed", "--timeout-ms", "5000", ok=False)
    assert committed.stdout.strip() == "", committed.stdout
    assert "Processed a total of 0 messages" in committed.stderr
    uncommitted = out("kafka-console-consumer", "--bootstrap-server", b, "--topic", topic, "--from-beginning",
                      "--max-messages", "3", "--timeout-ms", "30000")
    assert uncommitted.splitlines() == ["open-0", "open-1", "open-2"]
