"""The event log chosen by settings: the one place that knows which transport is in use."""

from __future__ import annotations

from orchestration.settings import Settings
from streaming.transport.base import EventLog


def open_event_log(settings: Settings, read_your_writes: bool = True) -> EventLog:
    """SQLite file (embedded) or Kafka (stack), optionally under a namespace."""
    log: EventLog
    if settings.event_log == "kafka":
        from streaming.transport.kafka import KafkaEventLog

        log = KafkaEventLog(
            settings.kafka_bootstrap,
            client_id=f"marketlake-{settings.namespace or 'default'}",
            retention_hours=settings.kafka_retention_hours,
            read_your_writes=read_your_writes,
        )
    else:
        from streaming.transport.sqlite import SqliteEventLog

        log = SqliteEventLog(settings.event_log_path)
    if settings.namespace:
        from streaming.transport.namespace import NamespacedEventLog

        log = NamespacedEventLog(log, settings.namespace)
    return log
