"""Backfill trading days from the command line, recorded in the Dagster instance.

Each day is one run of every asset for that partition, executed in this
process against the instance in ``DAGSTER_HOME`` (SQLite under the data
directory by default), so the runs show in the UI exactly as if launched
there. Assets replace their partition, so backfilling a range again changes
nothing in the lake.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, materialize

from orchestration.settings import Settings


@dataclass
class DayRun:
    day: str
    run_id: str
    success: bool
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)


def instance_for(settings: Settings) -> DagsterInstance:
    """The Dagster instance of ``DAGSTER_HOME``, defaulting to ``<data dir>/dagster``.

    A missing ``dagster.yaml`` is written from settings: SQLite storage in the
    home embedded, the stack's PostgreSQL (database ``dagster``) in the stack.
    """
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(settings.data_dir / "dagster")))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(_instance_yaml(settings, home))
        config.chmod(0o600)  # the stack's holds a database password
    return DagsterInstance.get()


def _instance_yaml(settings: Settings, home: Path) -> str:
    # a self-hosted platform sends nothing home; one run at a time, in the order queued,
    # so the days of a job backfill settle in order (a day opens with the previous close)
    telemetry = "telemetry:\n  enabled: false\nrun_queue:\n  max_concurrent_runs: 1\n"
    if settings.mode != "stack":
        return f"storage:\n  sqlite:\n    base_dir: {home / 'storage'}\n{telemetry}"
    from orchestration.stack import postgres

    pg = postgres(settings)
    pg.ensure_database("dagster")
    # the driver named: SQLAlchemy 2.1 defaults postgresql:// to psycopg 3, on which
    # dagster-postgres's parameterised NOTIFY is a syntax error
    return f'storage:\n  postgres:\n    postgres_url: "{pg.sqlalchemy_url_for("dagster")}"\n{telemetry}'


def days_between(first: date, last: date) -> list[str]:
    """The trading-day partition keys from ``first`` to ``last`` inclusive."""
    from assets.partitions import TRADING_DAYS

    keys = TRADING_DAYS.get_partition_keys()
    return [k for k in keys if first.isoformat() <= k <= last.isoformat()]


def backfill(
    settings: Settings,
    first: date,
    last: date,
    on_day: Callable[[DayRun], None] | None = None,
    log_level: str = "WARNING",
    now: str | None = None,
    overrides: dict[str, Any] | None = None,
    ops: dict[str, Any] | None = None,
) -> list[DayRun]:
    """Materialise every asset for each trading day in ``[first, last]``; stops at a failure.

    What the steps print (dbt's log lines) is appended to ``<data dir>/logs/backfill.log``;
    the runs themselves, with their events and check results, are in the instance.
    ``now`` (ISO 8601) sets the platform's clock, ``overrides`` are settings
    that take precedence over the environment, ``ops`` is per-op run config
    (``{"intel_fetches": {"config": {...}}}``)."""
    from orchestration.definitions import ALL_ASSETS, resources_for
    from orchestration.resources import PlatformResource

    instance = instance_for(settings)
    platform = PlatformResource(
        data_dir=str(settings.data_dir), now=now,
        overrides=json.dumps(overrides) if overrides else None,
    )  # fmt: skip
    resources = resources_for(platform)
    runs: list[DayRun] = []
    log_path = settings.data_dir / "logs" / "backfill.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for key in days_between(first, last):
        started = time.perf_counter()
        # what steps print (dbt's progress lines) goes to the log, not over the caller's output
        with log_path.open("a") as log, contextlib.redirect_stdout(log):
            result = materialize(
                ALL_ASSETS, partition_key=key, instance=instance,
                resources=resources,
                tags={"marketlake/backfill": f"{first}..{last}"}, raise_on_error=False,
                run_config={
                    "loggers": {"console": {"config": {"log_level": log_level}}},
                    **({"ops": ops} if ops else {}),
                },
            )  # fmt: skip
        steps = {
            ev.step_key: ev.event_specific_data.duration_ms / 1000  # type: ignore[union-attr]
            for ev in result.all_events
            if ev.event_type_value == "STEP_SUCCESS" and ev.step_key
        }
        run = DayRun(key, result.run_id, result.success, time.perf_counter() - started, steps)
        runs.append(run)
        if on_day is not None:
            on_day(run)
        if not result.success:
            break
    return runs
