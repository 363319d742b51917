"""The local stack: every real service, built from settings, in start order."""

from __future__ import annotations

from typing import Protocol

from deploy.kafka.service import KafkaService, java_for_kafka
from orchestration.settings import Settings


class Service(Protocol):
    name: str

    def install(self) -> object: ...
    def start(self) -> None: ...
    def stop(self) -> bool: ...
    def status(self) -> dict[str, object]: ...


def services(settings: Settings) -> dict[str, Service]:
    """Name -> service, in the order they start (and the reverse of how they stop)."""
    return {
        "kafka": KafkaService(
            home=settings.stack_home / "kafka",
            cache=settings.cache_dir,
            port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            heap_mb=settings.kafka_heap_mb,
            java=java_for_kafka(),
        ),
    }
