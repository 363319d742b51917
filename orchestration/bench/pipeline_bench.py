"""The pipeline benchmark: simulated trading days through every asset, end to end.

1. Days: the ``days`` trading days (settings' calendar) ending at the latest
   trading day strictly before today, so every day is a complete past
   session and a partition that exists.
2. Run: one embedded backfill (``orchestration.backfill.backfill``) of those
   days in a fresh temporary data directory with ``DAGSTER_HOME`` inside it:
   every day is simulated from nothing, and the user's lake, sessions and
   Dagster instance are never read or written. ``DAGSTER_HOME`` is restored
   afterwards.
3. Figures: a day's wall time is its whole ``materialize`` call (run set-up,
   every step, run teardown); a step's seconds are Dagster's own step
   duration, so per asset the steps sum to less than the days. The first day
   also pays for warm-up (imports, first use of the catalog).

Target: one simulated trading day end to end (session and every asset) in
under 30 s, i.e. the mean day under ``TARGET_DAY_S``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from orchestration.backfill import DayRun, backfill
from settings import Settings
from streaming.calendar import TradingCalendar
from streaming.refdata import load_calendar

DEFAULT_DAYS = 20
TARGET_DAY_S = 30.0
"""One simulated trading day end to end (session and every asset), in seconds."""


def bench_days(calendar: TradingCalendar, today: date, count: int) -> list[date]:
    """The ``count`` trading days ending at the last one strictly before ``today``, oldest first.

    Strictly before: today's session may not have closed, and a past day is
    always a partition (the partitions end today).
    """
    if count < 1:
        raise ValueError("the pipeline benchmark needs at least one day")
    days = [calendar.previous_trading_day(today)]
    while len(days) < count:
        days.append(calendar.previous_trading_day(days[-1]))
    return days[::-1]


@contextmanager
def dagster_home(path: Path) -> Iterator[None]:
    """``DAGSTER_HOME`` set to ``path`` for the block, then as it was (or unset) again."""
    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = before


def summarise(runs: list[DayRun], planned: int) -> dict[str, Any]:
    """Per asset (step key) and per day figures of a backfill's runs; pure.

    ``success`` needs all ``planned`` days to have run and succeeded: a
    backfill silently skips days that are not partitions (before
    ``partitions_start``), and a benchmark of fewer days is not the one asked.
    """
    per_step: dict[str, list[float]] = {}
    for run in runs:
        for step, seconds in run.steps.items():
            per_step.setdefault(step, []).append(seconds)
    day_s = [r.seconds for r in runs]
    mean_day = sum(day_s) / len(day_s) if day_s else 0.0
    success = len(runs) == planned and all(r.success for r in runs)
    return {
        "days": len(runs),
        "total_s": sum(day_s),
        "day_mean_s": mean_day,
        "day_max_s": max(day_s, default=0.0),
        "per_asset": {
            step: {"total_s": sum(s), "mean_s": sum(s) / len(s), "runs": len(s)}
            for step, s in sorted(per_step.items(), key=lambda kv: -sum(kv[1]))
        },
        "per_day": [
            {"day": r.day, "seconds": r.seconds, "success": r.success, "run_id": r.run_id}
            for r in runs
        ],
        "success": success,
        "target_day_s": TARGET_DAY_S,
        "target_met": success and mean_day < TARGET_DAY_S,
    }


def bench_pipeline(
    days: int = DEFAULT_DAYS,
    on_day: Callable[[DayRun], None] | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Backfill ``days`` simulated trading days in a throwaway data dir and time every asset.

    Stops at the first failed day (as a backfill does); ``success`` then is
    false and ``days`` counts the days that ran. ``today`` (default: today on
    the calendar's time zone) is for tests.
    """
    calendar = load_calendar(Settings().calendar_toml)
    today = today or datetime.now(calendar.tz).date()
    planned = bench_days(calendar, today, days)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="marketlake-bench-", ignore_cleanup_errors=True) as tmp:
        home = Path(tmp)
        with dagster_home(home / "dagster"):
            runs = backfill(Settings(data_dir=home / "data"), planned[0], planned[-1], on_day)
    return {
        "first_day": planned[0].isoformat(),
        "last_day": planned[-1].isoformat(),
        "days_planned": len(planned),
        **summarise(runs, len(planned)),
        "wall_s": time.perf_counter() - started,
    }
