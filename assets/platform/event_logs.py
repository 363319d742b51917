"""The event log chosen by settings: the one place that knows which transport is in use."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from settings import Settings
from streaming.transport.base import EventLog


def open_event_log(
    settings: Settings,
    read_your_writes: bool = True,
    shared_groups: bool = False,
    instance: str = "0",
    *,
    day: date | None = None,
) -> EventLog:
    """SQLite file (embedded) or Kafka (stack), optionally under a namespace.

    ``shared_groups``: this process is one of several instances of a service
    splitting its input partitions (Kafka only; ``instance`` must be unique).
    ``day``: that day's session log, which backfills simulate and land (a
    SQLite file per day, a Kafka namespace per day) instead of the live log.
    """
    namespace = settings.namespace
    if day is not None:
        namespace = f"{settings.namespace or 'session'}-{day:%Y%m%d}"
    log: EventLog
    if settings.event_log == "kafka":
        from assets.platform.stack import kafka_security
        from streaming.transport.kafka import KafkaEventLog

        log = KafkaEventLog(
            settings.kafka_bootstrap,
            client_id=f"marketlake-{namespace or 'default'}",
            retention_hours=settings.kafka_retention_hours,
            read_your_writes=read_your_writes,
            shared_groups=shared_groups,
            instance=instance,
            security=kafka_security(settings),
        )
    else:
        from streaming.transport.sqlite import SqliteEventLog

        if day is not None:
            path = session_log_path(settings, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            return SqliteEventLog(path)  # the file is the day's: no namespace inside it
        log = SqliteEventLog(settings.event_log_path)
    if namespace:
        from streaming.transport.namespace import NamespacedEventLog

        log = NamespacedEventLog(log, namespace)
    return log


def session_log_path(settings: Settings, day: date) -> Path:
    """Where the embedded mode keeps ``day``'s session (one SQLite file per day)."""
    return settings.data_dir / "sessions" / f"{day.isoformat()}.sqlite"
