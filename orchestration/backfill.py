"""Backfill trading days from the command line, recorded in the Dagster instance.

Each day is one run of every asset for that partition, executed in this
process against the instance in ``DAGSTER_HOME`` (SQLite under the data
directory by default), so the runs show in the UI exactly as if launched
there. Assets replace their partition, so backfilling a range again changes
nothing in the lake.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

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
    """The Dagster instance of ``DAGSTER_HOME``, defaulting to ``<data dir>/dagster``."""
    home = os.environ.setdefault("DAGSTER_HOME", str(settings.data_dir / "dagster"))
    os.makedirs(home, exist_ok=True)
    return DagsterInstance.get()


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
) -> list[DayRun]:
    """Materialise every asset for each trading day in ``[first, last]``; stops at a failure."""
    from orchestration.definitions import ALL_ASSETS
    from orchestration.resources import PlatformResource

    instance = instance_for(settings)
    platform = PlatformResource(data_dir=str(settings.data_dir))
    runs: list[DayRun] = []
    for key in days_between(first, last):
        started = time.perf_counter()
        result = materialize(
            ALL_ASSETS, partition_key=key, instance=instance, resources={"platform": platform},
            tags={"marketlake/backfill": f"{first}..{last}"}, raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
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
