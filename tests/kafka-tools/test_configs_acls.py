"""kafka-configs on brokers (dynamic configs, per broker and cluster default) and user/client quotas, and kafka-acls on a broker with the
authorizer on (PLAINTEXT clients are User:ANONYMOUS, made a super user so the tools may
administer)."""

from __future__ import annotations

import re

import pytest

from conftest import start_broker
from tool import kafka, out


def test_broker_configs_dynamic_and_read_only(broker):
    b = broker.bootstrap
    everything = out("kafka-configs", "--bootstrap-server", b, "--entity-type", "brokers", "--entity-name", "1",
                     "--describe", "--all")
    assert everything.startswith("All configs for broker 1 are:"), everything[:200]
    values = dict(re.findall(r"^  (\S+?)=(\S*) sensitive=(?:true|false) synonyms=", everything, re.M))
    assert values["group.initial.rebalance.delay.ms"] == "0"  # the --set this broker started with
    assert values["num.partitions"] == "1"
    assert values["log.dirs"] == str(broker.data_dir)
    one = ("--bootstrap-server", b, "--entity-type", "brokers", "--entity-name", "1")
    default = ("--bootstrap-server", b, "--entity-type", "brokers", "--entity-default")
    assert out("kafka-configs", *one, "--describe").strip() == "Dynamic configs for broker 1 are:"
    # Dynamic configs: the cluster default and this broker's own, described with Kafka's
    # sources and synonyms, most specific first.
    out("kafka-configs", *default, "--alter", "--add-config", "log.retention.ms=200000")
    out("kafka-configs", *one, "--alter", "--add-config", "log.retention.ms=100000,num.io.threads=4")
    own = out("kafka-configs", *one, "--describe")
    assert ("log.retention.ms=100000 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.retention.ms=100000, "
            "DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=200000, DEFAULT_CONFIG:log.retention.ms=604800000}") in own, own
    assert "num.io.threads=4 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:num.io.threads=4}" in own, own
    defaults = out("kafka-configs", *default, "--describe")
    assert "log.retention.ms=200000" in defaults and "num.io.threads" not in defaults, defaults
    out("kafka-configs", *one, "--alter", "--delete-config", "log.retention.ms,num.io.threads")
    assert "log.retention.ms" not in out("kafka-configs", *one, "--describe")
    # Read-only configs are refused with Kafka's message.
    refused = kafka("kafka-configs", *one, "--alter", "--add-config", "log.dirs=/elsewhere", ok=False)
    assert refused.returncode != 0
    assert "Cannot update these configs dynamically: Set(log.dirs)" in refused.stdout + refused.stderr
    # Deleting an override that is not set succeeds, as in Kafka.
    out("kafka-configs", *one, "--alter", "--delete-config", "leader.replication.throttled.rate")


def test_user_and_client_quotas(broker):
    b = broker.bootstrap

    def configs(*entity):
        return out("kafka-configs", "--bootstrap-server", b, *entity, *rest)

    rest = ("--alter", "--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048")
    assert "Completed updating config for user alice." in configs("--entity-type", "users", "--entity-name", "alice")
    rest = ("--alter", "--add-config", "request_percentage=50")
    assert "Completed updating config for client app1." in configs("--entity-type", "clients", "--entity-name", "app1")
    rest = ("--alter", "--add-config", "producer_byte_rate=4096")
    configs("--entity-type", "users", "--entity-name", "alice", "--entity-type", "clients", "--entity-name", "app1")
    rest = ("--alter", "--add-config", "consumer_byte_rate=512")
    configs("--entity-type", "users", "--entity-default")
    rest = ("--alter", "--delete-config", "consumer_byte_rate")
    configs("--entity-type", "users", "--entity-name", "alice")

    listed = out("kafka-configs", "--bootstrap-server", b, "--entity-type", "users", "--describe")
    quotas = {m.group(1): dict(kv.split("=") for kv in m.group(2).split(", "))
              for m in re.finditer(r"^Quota configs for (.+?) are (.+)$", listed, re.M)}
    assert quotas == {
        "user-principal 'alice'": {"producer_byte_rate": "1024.0"},
        "the default user-principal": {"consumer_byte_rate": "512.0"},
    }, listed
    both = out("kafka-configs", "--bootstrap-server", b, "--entity-type", "users", "--entity-name", "alice",
               "--entity-type", "clients", "--entity-name", "app1", "--describe")
    assert both.strip() == "Quota configs for user-principal 'alice', client-id 'app1' are producer_byte_rate=4096.0"
    client = out("kafka-configs", "--bootstrap-server", b, "--entity-type", "clients", "--entity-name", "app1",
                 "--describe")
    assert client.strip() == "Quota configs for client-id 'app1' are request_percentage=50.0"


ACL = re.compile(r"\(principal=(\S+), host=(\S+), operation=(\w+), permissionType=(\w+)\)")
RESOURCE = re.compile(r"ResourcePattern\(resourceType=(\w+), name=(\S+), patternType=(\w+)\)")


def acl_listing(text: str) -> set[tuple]:
    """Every (resource type, name, pattern type, principal, host, operation, permission) a
    `kafka-acls --list` prints."""
    found = set()
    resource = None
    for line in text.splitlines():
        r = RESOURCE.search(line)
        if r:
            resource = r.groups()
            continue
        a = ACL.search(line)
        if a and resource:
            found.add(resource + a.groups())
    return found


@pytest.fixture(scope="module")
def acl_broker(strom_bin):
    broker = start_broker("acls", {"authorizer.class.name": "strom", "super.users": "User:ANONYMOUS"})
    yield broker
    broker.close()


def test_acls_add_list_remove(acl_broker):
    b = acl_broker.bootstrap
    added = out("kafka-acls", "--bootstrap-server", b, "--add", "--allow-principal", "User:alice",
                "--operation", "Read", "--operation", "Write", "--topic", "orders")
    assert "Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`" in added
    out("kafka-acls", "--bootstrap-server", b, "--add", "--allow-principal", "User:alice", "--operation", "Read",
        "--group", "orders-", "--resource-pattern-type", "prefixed")
    out("kafka-acls", "--bootstrap-server", b, "--add", "--deny-principal", "User:bob", "--deny-host", "10.0.0.1",
        "--operation", "All", "--topic", "*")
    # The --producer convenience: WRITE, DESCRIBE, CREATE on the topic and the transactional id.
    out("kafka-acls", "--bootstrap-server", b, "--add", "--allow-principal", "User:carol", "--producer",
        "--topic", "logs", "--transactional-id", "tx1")

    everything = acl_listing(out("kafka-acls", "--bootstrap-server", b, "--list"))
    assert everything == {
        ("TOPIC", "orders", "LITERAL", "User:alice", "*", "READ", "ALLOW"),
        ("TOPIC", "orders", "LITERAL", "User:alice", "*", "WRITE", "ALLOW"),
        ("GROUP", "orders-", "PREFIXED", "User:alice", "*", "READ", "ALLOW"),
        ("TOPIC", "*", "LITERAL", "User:bob", "10.0.0.1", "ALL", "DENY"),
        ("TOPIC", "logs", "LITERAL", "User:carol", "*", "WRITE", "ALLOW"),
        ("TOPIC", "logs", "LITERAL", "User:carol", "*", "DESCRIBE", "ALLOW"),
        ("TOPIC", "logs", "LITERAL", "User:carol", "*", "CREATE", "ALLOW"),
        ("TRANSACTIONAL_ID", "tx1", "LITERAL", "User:carol", "*", "WRITE", "ALLOW"),
        ("TRANSACTIONAL_ID", "tx1", "LITERAL", "User:carol", "*", "DESCRIBE", "ALLOW"),
    }, everything

    out("kafka-acls", "--bootstrap-server", b, "--remove", "--force", "--allow-principal", "User:alice",
        "--operation", "Write", "--topic", "orders")
    # Filters: by resource, by principal.
    orders = acl_listing(out("kafka-acls", "--bootstrap-server", b, "--list", "--topic", "orders"))
    assert orders == {("TOPIC", "orders", "LITERAL", "User:alice", "*", "READ", "ALLOW")}, orders
    alice = acl_listing(out("kafka-acls", "--bootstrap-server", b, "--list", "--principal", "User:alice"))
    assert {a[:3] for a in alice} == {("TOPIC", "orders", "LITERAL"), ("GROUP", "orders-", "PREFIXED")}, alice

    # Removing everything on a resource pattern.
    out("kafka-acls", "--bootstrap-server", b, "--remove", "--force", "--topic", "logs")
    left = acl_listing(out("kafka-acls", "--bootstrap-server", b, "--list"))
    assert left == {
        ("TOPIC", "orders", "LITERAL", "User:alice", "*", "READ", "ALLOW"),
        ("GROUP", "orders-", "PREFIXED", "User:alice", "*", "READ", "ALLOW"),
        ("TOPIC", "*", "LITERAL", "User:bob", "10.0.0.1", "ALL", "DENY"),
        ("TRANSACTIONAL_ID", "tx1", "LITERAL", "User:carol", "*", "WRITE", "ALLOW"),
        ("TRANSACTIONAL_ID", "tx1", "LITERAL", "User:carol", "*", "DESCRIBE", "ALLOW"),
    }, left
