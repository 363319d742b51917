"""Trading-day partitions: one per session of the exchange's calendar.

Weekends and holidays are not partitions at all, so a backfill of a year is
exactly the year's sessions. ``end_offset=1`` makes today's partition exist
from midnight, so the EOD schedule can settle today after the close.
"""

from __future__ import annotations

from datetime import date, datetime

from dagster import TimeWindowPartitionsDefinition

from streaming.calendar import TradingCalendar

_CRON_DAYS = {"Sun": 0, "Mon": 1, "Tue": 2, "Wed": 3, "Thu": 4, "Fri": 5, "Sat": 6}


def trading_day_partitions(
    calendar: TradingCalendar, start: date
) -> TimeWindowPartitionsDefinition:
    """Daily partitions keyed ``YYYY-MM-DD`` on the calendar's trading days."""
    days = sorted(n for name, n in _CRON_DAYS.items() if name not in calendar.weekend)
    holidays = [datetime(h.year, h.month, h.day) for h in sorted(calendar.holidays) if h >= start]
    return TimeWindowPartitionsDefinition(
        cron_schedule=f"0 0 * * {','.join(str(d) for d in days)}",
        start=datetime(start.year, start.month, start.day),
        fmt="%Y-%m-%d",
        timezone=calendar.timezone,
        end_offset=1,
        exclusions=holidays or None,
    )
