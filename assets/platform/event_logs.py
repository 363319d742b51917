"""The event log chosen by settings: the one place that knows which transport is in use."""

from __future__ import annotations

from settings import Settings
from streaming.transport.base import EventLog


def open_event_log(
    settings: Settings,
    read_your_writes: bool = True,
    shared_groups: bool = False,
    instance: str = "0",
) -> EventLog:
    """SQLite file (embedded) or Kafka (stack), optionally under a namespace.

    ``shared_groups``: this process is one of several instances of a service
    splitting its input partitions (Kafka only; ``instance`` must be unique).
    """
    log: EventLog
    if settings.event_log == "kafka":
        from assets.platform.stack import kafka_security
        from streaming.transport.kafka import KafkaEventLog

        log = KafkaEventLog(
            settings.kafka_bootstrap,
            client_id=f"marketlake-{settings.namespace or 'default'}",
            retention_hours=settings.kafka_retention_hours,
            read_your_writes=read_your_writes,
            shared_groups=shared_groups,
            instance=instance,
            security=kafka_security(settings),
        )
    else:
        from streaming.transport.sqlite import SqliteEventLog

        log = SqliteEventLog(settings.event_log_path)
    if settings.namespace:
        from streaming.transport.namespace import NamespacedEventLog

        log = NamespacedEventLog(log, settings.namespace)
    return log
