"""Fixtures: real `strom broker` processes (tests/compat's Broker and Cluster: ephemeral
loopback ports, temp data dirs, killed by PID at teardown), one per test module, driven by
Apache Kafka 4.4's own tools through scripts/kafka.

Nothing is built here: scripts/test builds target/debug/strom, and tests/kafka-tools/run
fetches Kafka's jars first.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))

from strom_compat.broker import Broker, strom_binary  # noqa: E402

# The console consumer and the perf consumer join classic groups: without the default 3 s
# wait for more members every such call would take 3 s longer.
TOOL_BROKER_CONFIG = {"group.initial.rebalance.delay.ms": "0", "num.partitions": "1"}


@pytest.fixture(scope="session")
def strom_bin():
    try:
        return strom_binary()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


def start_broker(name: str, extra: dict[str, str] | None = None) -> Broker:
    broker = Broker(f"tools-{name}", {**TOOL_BROKER_CONFIG, **(extra or {})})
    try:
        broker.start()
    except RuntimeError as error:
        broker.close()
        pytest.fail(str(error), pytrace=False)
    return broker


@pytest.fixture(scope="module")
def broker(request, strom_bin):
    """One broker for the whole module (JVM start-up dominates; tests share it and use their
    own topic and group names)."""
    broker = start_broker(request.module.__name__.rsplit(".", 1)[-1])
    yield broker
    broker.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the broker log tails of a failed test's brokers (and cluster nodes)."""
    report = yield
    if report.failed:
        brokers = [v for v in item.funcargs.values() if isinstance(v, Broker)]
        for value in item.funcargs.values():
            nodes = getattr(value, "nodes", None)
            if isinstance(nodes, dict):
                brokers += [n for n in nodes.values() if isinstance(n, Broker)]
        for broker in brokers:
            report.sections.append((f"strom broker log ({broker.bootstrap})", broker.log_tail()))
    return report
