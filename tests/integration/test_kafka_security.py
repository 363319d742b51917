"""The broker refuses whoever is not the platform: SASL/SCRAM-SHA-512 on the client listener,
ACLs with ``allow.everyone.if.no.acl.found=false``, generated credentials kept private.

Anyone on the machine can reach 127.0.0.1; without the platform's login nobody may write
``orders`` or ``control``, create or delete topics. The ACL-limited ``client`` principal
reads, and writes nothing.
"""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streaming.transport.base import Output
from streaming.transport.kafka import KafkaEventLog

pytestmark = pytest.mark.integration


@pytest.fixture
def topics(kafka):
    """``<ns>.orders`` and ``<ns>.control``, created by the platform, each holding one record."""
    ns = f"sec{uuid.uuid4().hex[:6]}"
    log = KafkaEventLog(kafka.bootstrap, client_id=ns, security=kafka.client_config())
    names = [f"{ns}.orders", f"{ns}.control"]
    log.create_topics(names)
    log.produce([Output(t, "AAPL", b"from the platform", 1) for t in names])
    yield log, names
    log.close()


def _produce(kafka, login: dict, topic: str, bootstrap: str | None = None):
    """Try to write one record; the delivery error (None: written) and client errors."""
    errors: list[KafkaError] = []
    delivered: list[KafkaError | None] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap or kafka.bootstrap,
            "message.timeout.ms": 6000,
            "socket.timeout.ms": 3000,
            "log_level": 0,
            "error_cb": errors.append,
            **login,
        }
    )
    producer.produce(topic, b"intruder", key=b"AAPL", on_delivery=lambda e, m: delivered.append(e))
    producer.flush(15)
    return delivered[0] if delivered else "undelivered", errors


def _admin(kafka, login: dict) -> AdminClient:
    return AdminClient(
        {"bootstrap.servers": kafka.bootstrap, "socket.timeout.ms": 3000, "log_level": 0, **login}
    )


def _refused(futures) -> bool:
    try:
        for fut in futures.values():
            fut.result(15)
    except Exception:
        return True
    return False


def _ends(log, names):
    return {t: log.end_offsets(t) for t in names}


WRONG_PASSWORD = {"sasl.password": "not-the-password"}


def test_without_the_platforms_login_nothing_is_written_created_or_deleted(kafka, topics):
    log, names = topics
    before = _ends(log, names)
    intruders = {
        "anonymous": {},
        "wrong password": {**kafka.client_config(), **WRONG_PASSWORD},
        "client": kafka.client_config("client"),
    }
    for who, login in intruders.items():
        for topic in names:
            delivery, _ = _produce(kafka, login, topic)
            assert delivery is not None, f"{who} wrote to {topic}"
        admin = _admin(kafka, login)
        new = f"{names[0]}-new"
        assert _refused(admin.create_topics([NewTopic(new, 1, 1)], request_timeout=8)), who
        assert _refused(admin.delete_topics([names[0]], request_timeout=8)), who
    # the broker said why: authentication for the wrong password, authorization for client
    _, errors = _produce(kafka, {**kafka.client_config(), **WRONG_PASSWORD}, names[0])
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    delivery, _ = _produce(kafka, kafka.client_config("client"), names[0])
    assert delivery.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # nothing changed: same records, same topics, no new one
    assert _ends(log, names) == before
    listed = _admin(kafka, kafka.client_config()).list_topics(timeout=10).topics
    assert all(t in listed for t in names) and f"{names[0]}-new" not in listed


def test_the_platform_principal_writes_and_the_client_principal_reads(kafka, topics):
    _, names = topics
    delivery, _ = _produce(kafka, kafka.client_config(), names[0])
    assert delivery is None
    consumer = Consumer(
        {"bootstrap.servers": kafka.bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:6]}",
         "log_level": 0, **kafka.client_config("client")}
    )  # fmt: skip
    try:
        consumer.assign([TopicPartition(names[0], 0, 0)])
        got: list[bytes] = []
        for _ in range(40):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
            if len(got) == 2:
                break
    finally:
        consumer.close()
    assert got == [b"from the platform", b"intruder"]


def test_the_controller_listener_refuses_clients(kafka):
    for login in ({}, kafka.client_config(), kafka.client_config("client")):
        admin = AdminClient(
            {"bootstrap.servers": f"{kafka.host}:{kafka.controller_port}",
             "socket.timeout.ms": 3000, "log_level": 0, **login}
        )  # fmt: skip
        with pytest.raises(Exception):  # noqa: B017 - refused, whichever way librdkafka says it
            admin.list_topics(timeout=6)
        assert _refused(admin.create_topics([NewTopic("via-controller", 1, 1)], request_timeout=6))


def test_credentials_are_generated_private_and_never_on_a_command_line(kafka):
    creds = json.loads(kafka.credentials_file.read_text())
    assert set(creds) == {"admin", "client", "broker", "controller"}
    passwords = [c["password"] for c in creds.values()]
    assert len(set(passwords)) == 4 and all(len(p) >= 32 for p in passwords)
    assert stat.S_IMODE(kafka.credentials_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(kafka.home.stat().st_mode) == 0o700
    assert stat.S_IMODE(kafka.config_file.stat().st_mode) == 0o600
    pid = kafka.process.pid()
    assert pid is not None
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    log = kafka.process.log_file.read_text(errors="replace")
    for password in passwords:
        assert password not in cmdline and password not in environ and password not in log
    assert not (kafka.config_file.parent / "format.args").exists()
    # the settings that point a process at this broker carry a file path, not a secret
    assert not any(p in v for v in kafka.env().values() for p in passwords)
