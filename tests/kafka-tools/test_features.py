"""kafka-features describe: the features a strom broker advertises in ApiVersions."""

from __future__ import annotations

import re

from tool import out


def test_features_describe(broker):
    text = out("kafka-features", "--bootstrap-server", broker.bootstrap, "describe")
    described = {}
    for line in text.splitlines():
        f = dict(re.findall(r"(\w+): (\S+)", line))
        if "Feature" in f:
            described[f["Feature"]] = f
    # KIP-890 part 2: transaction.version 2 is finalized, so Kafka 4.x producers use it.
    assert described.get("transaction.version", {}).get("FinalizedVersionLevel") == "2", text
    assert described["transaction.version"]["SupportedMaxVersion"] == "2", text
    assert int(described["transaction.version"]["Epoch"]) >= 0, text
