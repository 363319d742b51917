"""Real services for integration tests, started through deploy/ on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deploy.kafka.service import KafkaService, java_for_kafka
from orchestration.settings import Settings
from tests.support import free_port


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
