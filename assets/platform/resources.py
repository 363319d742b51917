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

from assets.platform.event_logs import open_event_log
from settings import Settings
from streaming.calendar import TradingCalendar
from streaming.refdata import Member, Security, load_calendar, load_members, load_securities
from streaming.services.day import DayConfig, session_seed
from streaming.transport.base import EventLog


class PlatformResource(ConfigurableResource):  # type: ignore[type-arg]  # a resource is declared unsubscripted (its value is itself)
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
        return session_seed(self.base_seed, day)

    def session_log(self, day: date) -> EventLog:
        """The day's event log: a SQLite file per day, or a Kafka namespace per day."""
        return open_event_log(self.settings(), day=day)

    def day_config(self, day: date) -> DayConfig:
        """The simulated day's configuration, with the day's fixed seed."""
        return day_config(self.settings(), day, self.seed_for(day))

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


def day_config(settings: Settings, day: date, seed: int) -> DayConfig:
    """A simulated day as settings configure it: the one place settings become a ``DayConfig``."""
    return DayConfig(
        day=day,
        seed=seed,
        securities=load_securities(settings.securities_csv),
        members=load_members(settings.members_csv),
        calendar=load_calendar(settings.calendar_toml),
        stp=settings.stp_mode,
        band_pct=settings.price_band_pct,
        grace_ns=settings.bar_grace_ms * 1_000_000,
    )
