"""ACLs and quotas with librdkafka (confluent_kafka): the admin client creates, describes
and deletes ACLs; a producer without WRITE gets TOPIC_AUTHORIZATION_FAILED, a consumer
without group READ gets GROUP_AUTHORIZATION_FAILED, a super user may do everything; a
producer over its byte-rate quota is told to back off (throttle_time_ms > 0)."""

import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from strom_compat.broker import Broker, free_port, strom_binary

PASSWORD = "acl-Pa55word"


@pytest.fixture(scope="module")
def acl_broker():
    """Authoriser on; the PLAINTEXT listener's ANONYMOUS principal and `admin` are super
    users; alice, bob and admin log in with SCRAM on the SASL_PLAINTEXT listener."""
    sasl_port = free_port()
    broker = Broker("acls", {})
    broker.extra_config.update({
        "listeners": f"PLAINTEXT://127.0.0.1:{broker.port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:ANONYMOUS;User:admin",
    })
    broker.start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion(user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), PASSWORD.encode())
        for user in ("alice", "bob", "admin")
    ])
    for future in futures.values():
        future.result(timeout=30)
    broker.sasl_port = sasl_port
    yield broker
    broker.close()


def as_user(broker, user, **extra):
    return {
        "bootstrap.servers": f"127.0.0.1:{broker.sasl_port}",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": user,
        "sasl.password": PASSWORD,
        **extra,
    }


def new_topic(broker, prefix):
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    return topic


def create_acls(broker, bindings):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_acls(bindings).values():
        future.result(timeout=30)


def allow(resource_type, name, principal, operation, pattern=ResourcePatternType.LITERAL):
    return AclBinding(resource_type, name, pattern, principal, "*", operation, AclPermissionType.ALLOW)


def produce_errors(config, topic, count=3):
    errors = []

    def delivered(error, _message):
        if error is not None:
            errors.append(error)

    producer = Producer({**config, "message.timeout.ms": 10000, "retries": 0})
    for i in range(count):
        producer.produce(topic, f"v{i}".encode(), on_delivery=delivered)
    producer.flush(30)
    return errors


def test_given_admin_client_when_managing_acls_should_create_describe_and_delete(acl_broker):
    admin = AdminClient({"bootstrap.servers": acl_broker.bootstrap})
    topic = f"acl-admin-{uuid.uuid4().hex[:6]}"
    bindings = [
        allow(ResourceType.TOPIC, topic, "User:carol", AclOperation.READ),
        allow(ResourceType.TOPIC, topic[:8], "User:carol", AclOperation.WRITE, ResourcePatternType.PREFIXED),
        allow(ResourceType.GROUP, "carol-group", "User:carol", AclOperation.READ),
    ]
    for future in admin.create_acls(bindings).values():
        assert future.result(timeout=30) is None

    carol = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, "User:carol", None,
        AclOperation.ANY, AclPermissionType.ANY,
    )
    described = admin.describe_acls(carol).result(timeout=30)
    assert sorted((b.restype, b.name, b.resource_pattern_type) for b in described) == sorted(
        (b.restype, b.name, b.resource_pattern_type) for b in bindings
    )
    matching = admin.describe_acls(AclBindingFilter(
        ResourceType.TOPIC, topic, ResourcePatternType.MATCH, None, None, AclOperation.ANY, AclPermissionType.ANY,
    )).result(timeout=30)
    assert {b.resource_pattern_type for b in matching} == {ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED}

    deleted = admin.delete_acls([carol])[carol].result(timeout=30)
    assert len(deleted) == 3
    assert admin.describe_acls(carol).result(timeout=30) == []


def test_given_invalid_acl_when_created_should_fail_with_invalid_request(acl_broker):
    admin = AdminClient({"bootstrap.servers": acl_broker.bootstrap})
    # librdkafka names the cluster resource type BROKER (4).
    bad = AclBinding(ResourceType.BROKER, "not-kafka-cluster", ResourcePatternType.LITERAL, "User:x", "*",
                     AclOperation.ALTER, AclPermissionType.ALLOW)
    with pytest.raises(KafkaException) as failure:
        admin.create_acls([bad])[bad].result(timeout=30)
    assert failure.value.args[0].code() == KafkaError.INVALID_REQUEST


def test_given_no_write_acl_when_producing_should_get_topic_authorization_failed(acl_broker):
    topic = new_topic(acl_broker, "acl-produce")
    create_acls(acl_broker, [allow(ResourceType.TOPIC, topic, "User:alice", AclOperation.DESCRIBE)])
    errors = produce_errors(as_user(acl_broker, "alice"), topic)
    assert errors and all(e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errors), errors

    create_acls(acl_broker, [allow(ResourceType.TOPIC, topic, "User:alice", AclOperation.WRITE)])
    assert produce_errors(as_user(acl_broker, "alice"), topic) == []


def test_given_no_group_read_acl_when_consuming_should_get_group_authorization_failed(acl_broker):
    topic = new_topic(acl_broker, "acl-consume")
    create_acls(acl_broker, [allow(ResourceType.TOPIC, topic, "User:bob", AclOperation.READ)])
    consumer = Consumer(as_user(acl_broker, "bob", **{"group.id": "bob-denied-group", "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    seen = None
    deadline = time.monotonic() + 30
    while seen is None and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is not None:
            seen = message.error()
    consumer.close()
    assert seen is not None and seen.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, seen


def test_given_super_user_when_acls_deny_everyone_should_still_do_everything(acl_broker):
    topic = new_topic(acl_broker, "acl-super")
    create_acls(acl_broker, [AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:*", "*",
                                        AclOperation.ALL, AclPermissionType.DENY)])
    config = as_user(acl_broker, "admin")
    assert produce_errors(config, topic) == []
    consumer = Consumer({**config, "group.id": f"admin-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    deadline = time.monotonic() + 30
    while len(values) < 3 and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=3, timeout=0.5):
            assert message.error() is None, message.error()
            values.append(message.value())
    consumer.close()
    assert values == [b"v0", b"v1", b"v2"]
    errors = produce_errors(as_user(acl_broker, "alice"), topic)
    assert errors and all(e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errors), \
        f"the DENY still applies to others: {errors}"


def test_given_producer_byte_rate_quota_when_exceeded_should_report_throttle(acl_broker):
    topic = new_topic(acl_broker, "quota")
    create_acls(acl_broker, [allow(ResourceType.TOPIC, topic, "User:alice", AclOperation.WRITE)])
    subprocess.run(
        [str(strom_binary()), "quota", "alter", "--bootstrap-server", acl_broker.bootstrap,
         "--user", "alice", "--client-id", "throttled-producer", "--add-config", "producer_byte_rate=1024"],
        check=True, stdout=subprocess.DEVNULL,
    )
    throttles = []
    producer = Producer(as_user(acl_broker, "alice", **{
        "client.id": "throttled-producer",
        "linger.ms": 5,
        "throttle_cb": lambda event: throttles.append(event.throttle_time),
    }))
    payload = b"x" * 10_000
    deadline = time.monotonic() + 60
    while not throttles and time.monotonic() < deadline:
        for _ in range(5):
            producer.produce(topic, payload)
        producer.flush(30)
        producer.poll(0.2)
    assert throttles and max(throttles) > 0


def test_given_kafka_python_without_write_acl_should_raise_topic_authorization_failed(acl_broker):
    from kafka import KafkaProducer
    from kafka.errors import TopicAuthorizationFailedError

    topic = new_topic(acl_broker, "acl-kp")
    producer = KafkaProducer(
        bootstrap_servers=f"127.0.0.1:{acl_broker.sasl_port}",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_plain_username="bob",
        sasl_plain_password=PASSWORD,
        max_block_ms=10000,
    )
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(topic, b"denied").get(timeout=10)
    finally:
        producer.close(timeout=5)


def test_given_mutual_tls_principal_when_acls_name_it_should_authorise_by_certificate(tmp_path):
    subprocess.run(
        [str(strom_binary()), "tls", "gen-dev-certs", "--dir", str(tmp_path), "--client", "alice"],
        check=True, stdout=subprocess.DEVNULL,
    )
    ssl_port = free_port()
    broker = Broker("acl-mtls", {})
    broker.extra_config.update({
        "listeners": f"PLAINTEXT://127.0.0.1:{broker.port},SSL://127.0.0.1:{ssl_port}",
        "ssl.keystore.location": str(tmp_path / "broker.pem"),
        "ssl.truststore.location": str(tmp_path / "ca.pem"),
        "ssl.client.auth": "required",
        # The certificate subject's CN becomes the user name: User:alice.
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
        "authorizer.class.name": "strom",
        "super.users": "User:ANONYMOUS",
    })
    with broker:
        allowed, denied = new_topic(broker, "mtls-ok"), new_topic(broker, "mtls-no")
        create_acls(broker, [
            allow(ResourceType.TOPIC, allowed, "User:alice", AclOperation.WRITE),
            allow(ResourceType.TOPIC, denied, "User:alice", AclOperation.DESCRIBE),
        ])
        config = {
            "bootstrap.servers": f"127.0.0.1:{ssl_port}",
            "security.protocol": "SSL",
            "ssl.ca.location": str(tmp_path / "ca.pem"),
            "ssl.certificate.location": str(tmp_path / "client-alice.pem"),
            "ssl.key.location": str(tmp_path / "client-alice.pem"),
        }
        assert produce_errors(config, allowed) == []
        errors = produce_errors(config, denied)
        assert errors and all(e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errors), errors
