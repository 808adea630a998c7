"""Fixtures: one real `strom broker` per test module (ephemeral port, temp data dir, killed by
PID at teardown). Tests that need isolation (restarts, kill -9) make their own `Broker`.

Nothing is built here: scripts/test runs `cargo build` first.
"""

from __future__ import annotations

import pytest

from strom_compat.broker import Broker, strom_binary


@pytest.fixture(scope="session")
def strom_bin():
    try:
        return strom_binary()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def module_broker(request, strom_bin):
    name = request.module.__name__.rsplit(".", 1)[-1]
    broker = Broker(name)
    try:
        broker.start()
    except RuntimeError as error:
        broker.close()
        pytest.fail(str(error), pytrace=False)
    yield broker
    broker.close()


@pytest.fixture
def broker(request, module_broker):
    """The module's broker, restarted on the same data dir if an earlier test crashed it,
    so one crash fails one test, not the whole module. A crash during this test fails it
    (pytest_runtest_call below)."""
    if not module_broker.alive():
        module_broker.start()
    yield module_broker


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Every broker a test takes as a fixture (`broker`, and the group, transaction, ACL,
    security and registry modules' own) must still run when the test ends: a broker that
    died during the test fails it, even when what the test checked looked like a refusal
    (a dead broker also refuses). A test that kills one on purpose restarts it."""
    brokers = [value for value in item.funcargs.values() if isinstance(value, Broker)]
    running = [broker for broker in brokers if broker.alive()]
    outcome = yield
    dead = [broker for broker in running if not broker.alive()]
    if dead:
        pytest.fail(
            "\n".join(
                f"strom broker {broker.bootstrap} died during {item.name} "
                f"(exit status {broker.process.returncode})\n{broker.log_tail()}"
                for broker in dead
            ),
            pytrace=False,
        )
    return outcome


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the broker log tail to every failed test's report."""
    report = yield
    if report.failed:
        brokers = [v for v in item.funcargs.values() if isinstance(v, Broker)]
        brokers += getattr(item, "extra_brokers", [])
        seen = set()
        for broker in brokers:
            if id(broker) in seen:
                continue
            seen.add(id(broker))
            report.sections.append((f"strom broker log ({broker.bootstrap})", broker.log_tail()))
    return report


@pytest.fixture
def own_broker(request, strom_bin):
    """A fresh broker for this test alone; its log is attached if the test fails."""
    started: list[Broker] = []

    def make(name: str = "own", extra_config: dict[str, str] | None = None) -> Broker:
        broker = Broker(name, extra_config)
        started.append(broker)
        request.node.extra_brokers = list(started)
        return broker

    yield make
    for broker in started:
        broker.close()
