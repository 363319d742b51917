"""The trading calendar: which days trade and when a session opens and closes.

Pure: it converts dates to session bounds in event time (UTC nanoseconds) and
never reads the clock, so backfills and simulations agree with the live core.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
NS = 1_000_000_000


@dataclass(frozen=True)
class TradingCalendar:
    """Exchange-local open/close times, weekend days and full-day holidays."""

    exchange: str
    timezone: str
    open_time: time
    close_time: time
    weekend: tuple[str, ...] = ("Sat", "Sun")
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.close_time <= self.open_time:
            raise ValueError("calendar close must be after open")
        bad = [d for d in self.weekend if d not in _DAY_NAMES]
        if bad:
            raise ValueError(f"unknown weekend day names: {bad}")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_trading_day(self, day: date) -> bool:
        return _DAY_NAMES[day.weekday()] not in self.weekend and day not in self.holidays

    def session_bounds(self, day: date) -> tuple[int, int]:
        """(open, close) of ``day`` in UTC nanoseconds; DST is handled by the zone."""
        if not self.is_trading_day(day):
            raise ValueError(f"{day} is not a trading day on {self.exchange}")
        tz = self.tz
        open_dt = datetime.combine(day, self.open_time, tzinfo=tz).astimezone(UTC)
        close_dt = datetime.combine(day, self.close_time, tzinfo=tz).astimezone(UTC)
        return _to_ns(open_dt), _to_ns(close_dt)

    def trading_days(self, start: date, end: date) -> Iterator[date]:
        """Trading days in ``[start, end]``."""
        day = start
        while day <= end:
            if self.is_trading_day(day):
                yield day
            day += timedelta(days=1)

    def next_trading_day(self, day: date) -> date:
        """The first trading day strictly after ``day``."""
        day += timedelta(days=1)
        while not self.is_trading_day(day):
            day += timedelta(days=1)
        return day

    def previous_trading_day(self, day: date) -> date:
        """The last trading day strictly before ``day``."""
        day -= timedelta(days=1)
        while not self.is_trading_day(day):
            day -= timedelta(days=1)
        return day

    def latest_trading_day(self, day: date) -> date:
        """``day`` itself if it trades, else the trading day before it."""
        return day if self.is_trading_day(day) else self.previous_trading_day(day)


def _to_ns(dt: datetime) -> int:
    return int(dt.timestamp()) * NS + dt.microsecond * 1000


def ns_to_datetime(ns: int, tz: ZoneInfo | None = None) -> datetime:
    """UTC nanoseconds -> aware datetime (microsecond precision) in ``tz`` or UTC."""
    dt = datetime.fromtimestamp(ns // NS, tz=UTC) + timedelta(microseconds=(ns % NS) // 1000)
    return dt.astimezone(tz) if tz else dt
