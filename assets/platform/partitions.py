"""The trading-day partitions every daily asset shares."""

from __future__ import annotations

from datetime import date

from dagster import BackfillPolicy

from assets.platform.trading_days import trading_day_partitions
from settings import get_settings
from streaming.refdata import load_calendar

TRADING_DAYS = trading_day_partitions(
    load_calendar(get_settings().calendar_toml), date.fromisoformat(get_settings().partitions_start)
)

ONE_DAY_PER_RUN = BackfillPolicy.multi_run(1)
"""Every daily asset computes one partition per run (a range backfill launches a run per day)."""
