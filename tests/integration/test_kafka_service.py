"""Kafka as deploy/ runs it: installed once, healthy, survives kill -9 with its data."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.integration


def _roundtrip(bootstrap: str, topic: str, payload: bytes, login: dict) -> list[bytes]:
    producer = Producer({"bootstrap.servers": bootstrap, **login})
    producer.produce(topic, payload, key=b"AAPL")
    assert producer.flush(10) == 0
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "t", "auto.offset.reset": "earliest", **login}
    )
    consumer.subscribe([topic])
    got: list[bytes] = []
    for _ in range(40):
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            got.append(msg.value())
            if payload in got:
                break
    consumer.close()
    return got


def test_install_is_cached_and_broker_is_healthy(kafka):
    libs = kafka.install()
    assert (libs / ".complete").exists()
    assert any(p.name.startswith("log4j-slf4j-impl") for p in libs.iterdir())
    assert kafka.install() == libs  # second install: nothing to do
    st = kafka.status()
    assert st["state"] == "healthy" and st["address"] == kafka.bootstrap
    assert "started (kafka.server" in kafka.process.log_file.read_text()  # log4j binding works


def test_produce_consume_and_restart_after_kill(kafka):
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap, **kafka.client_config()})
    for fut in admin.create_topics([NewTopic("svc-test", 2, 1)]).values():
        fut.result(30)
    assert _roundtrip(kafka.bootstrap, "svc-test", b"before", kafka.client_config()) == [b"before"]
    credentials = kafka.credentials_file.read_text()
    kafka.kill()
    assert kafka.status()["state"] == "stopped"
    kafka.start()
    assert kafka.healthy()
    assert kafka.credentials_file.read_text() == credentials  # generated once, then reused
    got = _roundtrip(kafka.bootstrap, "svc-test", b"after", kafka.client_config())
    assert b"after" in got  # the topic (and its data) survived the crash


def test_a_backfilled_days_records_are_kept_by_write_time_not_event_time(kafka):
    """Retention counts from the append: event time a year ago must not expire on arrival."""
    import uuid

    from confluent_kafka.admin import ConfigResource

    from streaming.transport.base import Output
    from streaming.transport.kafka import KafkaEventLog

    log = KafkaEventLog(kafka.bootstrap, retention_hours=1, security=kafka.client_config())
    topic = f"old-{uuid.uuid4().hex[:8]}"
    log.create_topics([topic])
    year_ago_ns = 1_731_000_000 * 1_000_000_000  # 2024-11-07
    log.produce([Output(topic, "k", b"v", year_ago_ns)])
    (record,) = list(log.read(topic, 0))
    assert record.timestamp == year_ago_ns  # event time survives in the header
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap, **kafka.client_config()})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    config = admin.describe_configs([resource])[resource].result(10)
    assert config["message.timestamp.type"].value == "LogAppendTime"
    assert config["retention.ms"].value == str(3_600_000)
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": topic,
                         "auto.offset.reset": "earliest", **kafka.client_config()})  # fmt: skip
    try:
        consumer.subscribe([topic])
        msg = None
        for _ in range(30):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                break
        assert msg is not None and msg.error() is None
        # Kafka's own timestamp is now-ish (the append), which is what retention reads
        assert msg.timestamp()[1] > year_ago_ns // 1_000_000 + 300 * 24 * 3_600_000
    finally:
        consumer.close()
    log.close()
