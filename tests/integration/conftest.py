"""Real services for integration tests, started through deploy/ on free ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from deploy.kafka.service import KafkaService, java_for_kafka
from orchestration.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def kafka(tmp_path_factory) -> Iterator[KafkaService]:
    """One Kafka node for the whole test session (installed once into the shared cache)."""
    svc = KafkaService(
        home=tmp_path_factory.mktemp("kafka"),
        cache=Settings().cache_dir,
        port=free_port(),
        controller_port=free_port(),
        heap_mb=768,
        java=java_for_kafka(),
    )
    svc.start()
    yield svc
    svc.stop()
