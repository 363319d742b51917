"""Dagster resources, chosen by settings: where sessions live and where the lake is.

Assets never ask which mode they run in; they ask a resource for the day's
event log or for the lake, and settings decide whether that is a SQLite file
and a local warehouse or Kafka and MinIO.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pyiceberg.catalog import Catalog

from settings import Settings
from streaming.calendar import TradingCalendar
from streaming.refdata import Member, Security, load_calendar, load_members, load_securities
from streaming.transport.base import EventLog


class PlatformResource(ConfigurableResource):  # type: ignore[misc]
    """Settings plus what is derived from them; ``env`` overrides (tests, the CLI)."""

    data_dir: str | None = None
    base_seed: int = 42
    now: str | None = None  # ISO 8601 with offset: the platform's clock starts there (tests)
    # JSON object of settings that take precedence over the environment for this
    # platform only (the demo points the news provider at its recorded stories)
    overrides: str | None = None

    def settings(self) -> Settings:
        values: dict[str, Any] = json.loads(self.overrides) if self.overrides else {}
        if self.data_dir:
            values["data_dir"] = Path(self.data_dir)
        return Settings(**values)

    def calendar(self) -> TradingCalendar:
        return load_calendar(self.settings().calendar_toml)

    def securities(self) -> list[Security]:
        return load_securities(self.settings().securities_csv)

    def members(self) -> list[Member]:
        return load_members(self.settings().members_csv)

    def seed_for(self, day: date) -> int:
        """A day's simulation seed: fixed per day, so a backfill is reproducible."""
        return self.base_seed * 100_000_000 + int(day.strftime("%Y%m%d"))

    def session_log(self, day: date) -> EventLog:
        """The day's event log: a SQLite file per day, or a Kafka namespace per day."""
        settings = self.settings()
        if settings.event_log == "kafka":
            from assets.platform.stack import kafka_security
            from streaming.transport.kafka import KafkaEventLog
            from streaming.transport.namespace import NamespacedEventLog

            prefix = f"{settings.namespace or 'session'}-{day:%Y%m%d}"
            log = KafkaEventLog(
                settings.kafka_bootstrap,
                client_id=f"marketlake-{prefix}",
                security=kafka_security(settings),
            )
            return NamespacedEventLog(log, prefix)
        from streaming.transport.sqlite import SqliteEventLog

        path = settings.data_dir / "sessions" / f"{day.isoformat()}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteEventLog(path)

    def clock(self) -> Callable[[], int]:
        """Wall time in ns, or (``now`` set) a clock that starts at ``now`` and runs on.

        Injected so what depends on "now" (which sources are due, which day is
        live, the time a trend is as of) can be replayed: a test or a replay
        sets ``now`` and gets the same decisions on every run.
        """
        if self.now is None:
            return time.time_ns
        start = int(datetime.fromisoformat(self.now).timestamp() * 1_000_000_000)
        base = time.monotonic_ns()
        return lambda: start + (time.monotonic_ns() - base)

    def catalog(self) -> Catalog:
        from assets.platform.lake_engines import catalog

        return catalog(self.settings())
