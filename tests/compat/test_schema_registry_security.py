"""The schema registry's listener over HTTPS with HTTP Basic authentication against the
broker's SCRAM users, driven by confluent-kafka's SchemaRegistryClient (`https://` URL,
`ssl.ca.location`, `basic.auth.user.info`) and its Avro serializer: a user with ACLs on a
topic registers and reads that topic's subjects; a wrong password gets 401, a user without
ACLs 403, and a plain-HTTP client gets no answer."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests
from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from strom_compat.broker import Broker, free_port, strom_binary

ORDER = """{"type": "record", "name": "Order", "namespace": "compat",
  "fields": [{"name": "id", "type": "long"}]}"""


@pytest.fixture(scope="module")
def secure_registry(tmp_path_factory):
    certs = tmp_path_factory.mktemp("registry-certs")
    subprocess.run(
        [str(strom_binary()), "tls", "gen-dev-certs", "--dir", str(certs)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{free_port()}"
    broker = Broker(
        "registry-secure",
        {
            "schema.registry.listener": address,
            "schema.registry.ssl.keystore.location": str(certs / "broker.pem"),
            "schema.registry.authentication.method": "BASIC",
            "authorizer.class.name": "strom",
            "super.users": "User:ANONYMOUS",
        },
    )
    broker.start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion("alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"alice-pw"),
        UserScramCredentialUpsertion("bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"bob-pw"),
    ])
    for future in futures.values():
        future.result(timeout=30)
    subprocess.run(
        [str(strom_binary()), "acl", "create", "--allow-principal", "User:alice",
         "--operation", "Read,Write", "--topic", "orders", "--bootstrap-server", broker.bootstrap],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    broker.registry_url = f"https://{address}"
    broker.ca = str(certs / "ca.pem")
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(broker.registry_url + "/subjects", verify=broker.ca, timeout=2)
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield broker
    broker.close()


def client(broker, user_info: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({
        "url": broker.registry_url,
        "ssl.ca.location": broker.ca,
        "basic.auth.user.info": user_info,
    })


def test_a_user_with_acls_registers_and_serializes_over_https(secure_registry):
    alice = client(secure_registry, "alice:alice-pw")
    serializer = AvroSerializer(alice, ORDER)
    value = serializer({"id": 7}, SerializationContext("orders", MessageField.VALUE))
    assert value[0] == 0
    assert alice.get_latest_version("orders-value").version == 1
    schema_id = alice.register_schema("orders-key", Schema('"string"', "AVRO"))
    assert alice.get_schema(schema_id).schema_str == '"string"'


def test_wrong_password_is_401_and_no_acl_is_403(secure_registry):
    with pytest.raises(SchemaRegistryError) as wrong:
        client(secure_registry, "alice:nope").get_subjects()
    assert wrong.value.http_status_code == 401
    assert wrong.value.error_code == 401
    bob = client(secure_registry, "bob:bob-pw")
    assert bob.get_subjects() == [], "the list shows only subjects the user may read"
    with pytest.raises(SchemaRegistryError) as denied:
        bob.register_schema("orders-value", Schema(ORDER, "AVRO"))
    assert denied.value.http_status_code == 403
    assert denied.value.error_code == 40301
    with pytest.raises(SchemaRegistryError) as denied:
        client(secure_registry, "alice:alice-pw").register_schema("payments-value", Schema(ORDER, "AVRO"))
    assert denied.value.http_status_code == 403


def test_plain_http_to_the_tls_listener_gets_no_answer(secure_registry):
    plain = secure_registry.registry_url.replace("https://", "http://")
    with pytest.raises(requests.RequestException):
        requests.get(plain + "/subjects", timeout=5)
