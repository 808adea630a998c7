"""TLS and SASL with real clients: librdkafka (confluent_kafka) and kafka-python over SSL,
mutual TLS, SASL_PLAINTEXT and SASL_SSL with PLAIN and SCRAM; wrong passwords and untrusted
certificates fail the way clients expect."""

import subprocess
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    NewTopic,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from strom_compat.broker import Broker, free_port, strom_binary

PASSWORD = "s3cret-Pa55"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    subprocess.run(
        [str(strom_binary()), "tls", "gen-dev-certs", "--dir", str(directory), "--client", "alice"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return directory


@pytest.fixture(scope="module")
def secure_broker(certs):
    """One broker with all four listener kinds, and SCRAM users alice (SHA-256) and bob
    (SHA-512) created over the PLAINTEXT listener."""
    ports = {name: free_port() for name in ("SSL", "SASL_PLAINTEXT", "SASL_SSL")}
    broker = Broker("secure", {})
    listeners = [f"PLAINTEXT://127.0.0.1:{broker.port}"] + [
        f"{name}://127.0.0.1:{port}" for name, port in ports.items()
    ]
    broker.extra_config.update({
        "listeners": ",".join(listeners),
        "ssl.keystore.location": str(certs / "broker.pem"),
    })
    broker.start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion("alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), PASSWORD.encode()),
        UserScramCredentialUpsertion("bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), PASSWORD.encode()),
    ])
    for future in futures.values():
        future.result(timeout=30)
    broker.secure_ports = ports
    yield broker
    broker.close()


def client_config(broker, certs, protocol, mechanism=None, user="alice", password=PASSWORD):
    config = {
        "bootstrap.servers": f"127.0.0.1:{broker.secure_ports[protocol]}",
        "security.protocol": protocol,
    }
    if "SSL" in protocol:
        config["ssl.ca.location"] = str(certs / "ca.pem")
    if mechanism:
        config.update({"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password})
    return config


def round_trip(config, count=20):
    topic = f"secure-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(config)  # kept alive until the future resolves
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    producer = Producer({**config, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, f"v{i}".encode(), key=f"k{i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer({**config, "group.id": f"g-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    for _ in range(100):
        for message in consumer.consume(num_messages=count, timeout=0.5):
            assert message.error() is None, message.error()
            values.append(message.value().decode())
        if len(values) >= count:
            break
    consumer.close()
    assert values == [f"v{i}" for i in range(count)]


def test_given_users_when_described_should_list_mechanisms_and_iterations(secure_broker):
    admin = AdminClient({"bootstrap.servers": secure_broker.bootstrap})
    described = admin.describe_user_scram_credentials(["alice", "bob"])
    alice = described["alice"].result(timeout=30)
    bob = described["bob"].result(timeout=30)
    assert [(c.mechanism, c.iterations) for c in alice.scram_credential_infos] == [(ScramMechanism.SCRAM_SHA_256, 4096)]
    assert [(c.mechanism, c.iterations) for c in bob.scram_credential_infos] == [(ScramMechanism.SCRAM_SHA_512, 8192)]
    missing = admin.describe_user_scram_credentials(["nobody"])["nobody"]
    with pytest.raises(KafkaException):
        missing.result(timeout=30)


@pytest.mark.parametrize(
    "protocol,mechanism,user",
    [
        ("SSL", None, None),
        ("SASL_PLAINTEXT", "SCRAM-SHA-256", "alice"),
        ("SASL_PLAINTEXT", "SCRAM-SHA-512", "bob"),
        ("SASL_PLAINTEXT", "PLAIN", "alice"),
        ("SASL_SSL", "SCRAM-SHA-512", "bob"),
        ("SASL_SSL", "PLAIN", "bob"),
    ],
)
def test_given_listener_when_librdkafka_authenticates_should_round_trip(secure_broker, certs, protocol, mechanism, user):
    round_trip(client_config(secure_broker, certs, protocol, mechanism, user or "alice"))


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_given_wrong_password_should_fail_authentication(secure_broker, certs, mechanism):
    config = client_config(secure_broker, certs, "SASL_PLAINTEXT", mechanism, "alice", "wrong")
    reported = []
    admin = AdminClient({**config, "error_cb": reported.append})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=10)
    admin.poll(1)
    # The broker's refusal itself, not a transport error (which a dead broker also gives).
    codes = [error.code() for error in reported]
    assert KafkaError._AUTHENTICATION in codes, f"no authentication failure reported: {reported}"
    # The same user with the right password gets in.
    right = client_config(secure_broker, certs, "SASL_PLAINTEXT", mechanism, "alice")
    assert AdminClient(right).list_topics(timeout=10).brokers


def test_given_untrusted_ca_should_fail_the_handshake(secure_broker, tmp_path):
    subprocess.run(
        [str(strom_binary()), "tls", "gen-dev-certs", "--dir", str(tmp_path)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    config = {
        "bootstrap.servers": f"127.0.0.1:{secure_broker.secure_ports['SSL']}",
        "security.protocol": "SSL",
        "ssl.ca.location": str(tmp_path / "ca.pem"),
    }
    reported = []
    admin = AdminClient({**config, "error_cb": reported.append})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=10)
    admin.poll(1)
    # The client refused the broker's certificate: a handshake failure, not a dead broker.
    assert any(error.code() == KafkaError._SSL or "certificate verify failed" in error.str()
               for error in reported), f"no TLS handshake failure reported: {reported}"


def test_given_kafka_python_over_ssl_and_scram_should_round_trip(secure_broker, certs):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTopicPartition

    for extra in (
        {
            "bootstrap_servers": f"127.0.0.1:{secure_broker.secure_ports['SSL']}",
            "security_protocol": "SSL",
            "ssl_cafile": str(certs / "ca.pem"),
            "ssl_check_hostname": False,
        },
        {
            "bootstrap_servers": f"127.0.0.1:{secure_broker.secure_ports['SASL_PLAINTEXT']}",
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_plain_username": "alice",
            "sasl_plain_password": PASSWORD,
        },
        {
            "bootstrap_servers": f"127.0.0.1:{secure_broker.secure_ports['SASL_SSL']}",
            "security_protocol": "SASL_SSL",
            "ssl_cafile": str(certs / "ca.pem"),
            "ssl_check_hostname": False,
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": "bob",
            "sasl_plain_password": PASSWORD,
        },
        {
            "bootstrap_servers": f"127.0.0.1:{secure_broker.secure_ports['SASL_SSL']}",
            "security_protocol": "SASL_SSL",
            "ssl_cafile": str(certs / "ca.pem"),
            "ssl_check_hostname": False,
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "bob",
            "sasl_plain_password": PASSWORD,
        },
    ):
        topic = f"kp-secure-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": secure_broker.bootstrap})
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
        producer = KafkaProducer(**extra)
        for i in range(10):
            producer.send(topic, value=f"m{i}".encode(), partition=0)
        producer.flush(30)
        producer.close()
        consumer = KafkaConsumer(**extra, consumer_timeout_ms=5000, enable_auto_commit=False)
        consumer.assign([KTopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        values = [m.value.decode() for m in consumer]
        consumer.close()
        assert values == [f"m{i}" for i in range(10)], extra["security_protocol"]


def test_given_required_client_auth_should_admit_only_clients_with_certificates(certs):
    ssl_port = free_port()
    broker = Broker("mtls", {})
    broker.extra_config.update({
        "listeners": f"PLAINTEXT://127.0.0.1:{broker.port},SSL://127.0.0.1:{ssl_port}",
        "ssl.keystore.location": str(certs / "broker.pem"),
        "ssl.truststore.location": str(certs / "ca.pem"),
        "ssl.client.auth": "required",
    })
    with broker:
        base = {
            "bootstrap.servers": f"127.0.0.1:{ssl_port}",
            "security.protocol": "SSL",
            "ssl.ca.location": str(certs / "ca.pem"),
        }
        with pytest.raises(KafkaException):
            AdminClient(base).list_topics(timeout=10)
        with_cert = {
            **base,
            "ssl.certificate.location": str(certs / "client-alice.pem"),
            "ssl.key.location": str(certs / "client-alice.pem"),
        }
        round_trip(with_cert, count=5)

        # kafka-python with the same client certificate.
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTopicPartition

        kp = {
            "bootstrap_servers": f"127.0.0.1:{ssl_port}",
            "security_protocol": "SSL",
            "ssl_cafile": str(certs / "ca.pem"),
            "ssl_certfile": str(certs / "client-alice.pem"),
            "ssl_keyfile": str(certs / "client-alice.pem"),
            "ssl_check_hostname": False,
        }
        topic = f"kp-mtls-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
        producer = KafkaProducer(**kp)
        for i in range(5):
            producer.send(topic, value=f"t{i}".encode(), partition=0)
        producer.flush(30)
        producer.close()
        consumer = KafkaConsumer(**kp, consumer_timeout_ms=5000, enable_auto_commit=False)
        consumer.assign([KTopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        assert [m.value.decode() for m in consumer] == [f"t{i}" for i in range(5)]
        consumer.close()


def test_given_session_lifetime_when_librdkafka_reauthenticates_should_keep_producing():
    """KIP-368: with connections.max.reauth.ms the broker tells clients how long a SASL
    session lasts; librdkafka re-authenticates in time and keeps working on one connection."""
    sasl_port = free_port()
    broker = Broker("reauth", {})
    broker.extra_config.update({
        "listeners": f"PLAINTEXT://127.0.0.1:{broker.port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "connections.max.reauth.ms": "1500",
    })
    with broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        futures = admin.alter_user_scram_credentials([
            UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), PASSWORD.encode()),
        ])
        for future in futures.values():
            future.result(timeout=30)
        topic = f"reauth-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
        producer = Producer({
            "bootstrap.servers": f"127.0.0.1:{sasl_port}",
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": "carol",
            "sasl.password": PASSWORD,
            "linger.ms": 0,
        })
        errors = []
        delivered = []
        import time
        deadline = time.monotonic() + 5
        i = 0
        while time.monotonic() < deadline:
            producer.produce(topic, f"m{i}".encode(), on_delivery=lambda e, m: (errors if e else delivered).append(e or m.offset()))
            producer.poll(0.05)
            i += 1
        producer.flush(30)
        assert errors == []
        assert len(delivered) == i
        log = broker.log_tail(400)
        assert log.count("SASL authentication succeeded") >= 2, "the client re-authenticated"
