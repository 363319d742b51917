"""The shipped trading calendar (MLX, Europe/Berlin, 09:00-15:30) via ``load_calendar``."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from streaming.calendar import NS, TradingCalendar, ns_to_datetime
from streaming.refdata import load_calendar

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def cal() -> TradingCalendar:
    return load_calendar()


def utc_ns(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * NS


def test_shipped_calendar(cal: TradingCalendar) -> None:
    assert cal.exchange == "MLX"
    assert cal.timezone == "Europe/Berlin"
    assert (cal.open_time, cal.close_time) == (time(9, 0), time(15, 30))
    assert cal.weekend == ("Sat", "Sun")
    assert date(2025, 12, 25) in cal.holidays


def test_weekends_do_not_trade(cal: TradingCalendar) -> None:
    assert cal.is_trading_day(date(2025, 6, 6))  # Friday
    assert not cal.is_trading_day(date(2025, 6, 7))  # Saturday
    assert not cal.is_trading_day(date(2025, 6, 8))  # Sunday
    assert cal.is_trading_day(date(2025, 6, 9))  # Monday


@pytest.mark.parametrize(
    "day", [date(2025, 1, 1), date(2025, 4, 18), date(2025, 12, 25), date(2026, 5, 1)]
)
def test_holidays_do_not_trade(cal: TradingCalendar, day: date) -> None:
    assert day.weekday() < 5
    assert not cal.is_trading_day(day)
    with pytest.raises(ValueError, match="not a trading day"):
        cal.session_bounds(day)


def test_weekend_has_no_session(cal: TradingCalendar) -> None:
    with pytest.raises(ValueError):
        cal.session_bounds(date(2025, 6, 7))


def test_session_bounds_winter_and_summer(cal: TradingCalendar) -> None:
    # CET (UTC+1) in January, CEST (UTC+2) in July
    assert cal.session_bounds(date(2025, 1, 15)) == (
        utc_ns(2025, 1, 15, 8, 0),
        utc_ns(2025, 1, 15, 14, 30),
    )
    assert cal.session_bounds(date(2025, 7, 15)) == (
        utc_ns(2025, 7, 15, 7, 0),
        utc_ns(2025, 7, 15, 13, 30),
    )


def test_session_bounds_around_the_dst_switch(cal: TradingCalendar) -> None:
    # clocks go forward on Sunday 2025-03-30 and back on Sunday 2025-10-26
    fri_open, fri_close = cal.session_bounds(date(2025, 3, 28))
    mon_open, mon_close = cal.session_bounds(date(2025, 3, 31))
    assert fri_open == utc_ns(2025, 3, 28, 8, 0)
    assert mon_open == utc_ns(2025, 3, 31, 7, 0)
    assert mon_open - fri_open == (3 * 24 - 1) * 3600 * NS
    assert fri_close - fri_open == mon_close - mon_open == int(6.5 * 3600) * NS
    assert cal.session_bounds(date(2025, 10, 24))[0] == utc_ns(2025, 10, 24, 7, 0)
    assert cal.session_bounds(date(2025, 10, 27))[0] == utc_ns(2025, 10, 27, 8, 0)


def test_session_bounds_are_local_open_and_close(cal: TradingCalendar) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    for day in (date(2025, 2, 3), date(2025, 8, 4), date(2026, 11, 2)):
        start, end = cal.session_bounds(day)
        assert ns_to_datetime(start, berlin).replace(tzinfo=None) == datetime.combine(
            day, time(9, 0)
        )
        assert ns_to_datetime(end, berlin).replace(tzinfo=None) == datetime.combine(
            day, time(15, 30)
        )


def test_trading_days_over_christmas(cal: TradingCalendar) -> None:
    days = list(cal.trading_days(date(2025, 12, 22), date(2026, 1, 5)))
    assert days == [
        date(2025, 12, 22),
        date(2025, 12, 23),
        date(2025, 12, 29),
        date(2025, 12, 30),
        date(2026, 1, 2),
        date(2026, 1, 5),
    ]
    assert list(cal.trading_days(date(2025, 12, 24), date(2025, 12, 24))) == []
    assert list(cal.trading_days(date(2025, 12, 23), date(2025, 12, 22))) == []


def test_next_previous_and_latest_trading_day(cal: TradingCalendar) -> None:
    assert cal.next_trading_day(date(2025, 12, 23)) == date(2025, 12, 29)
    assert cal.next_trading_day(date(2025, 6, 6)) == date(2025, 6, 9)  # Friday -> Monday
    assert cal.next_trading_day(date(2025, 6, 9)) == date(2025, 6, 10)
    assert cal.previous_trading_day(date(2026, 1, 2)) == date(2025, 12, 30)
    assert cal.previous_trading_day(date(2025, 4, 22)) == date(2025, 4, 17)  # Easter
    assert cal.latest_trading_day(date(2025, 12, 27)) == date(2025, 12, 23)
    assert cal.latest_trading_day(date(2025, 12, 23)) == date(2025, 12, 23)


def test_a_year_of_trading_days(cal: TradingCalendar) -> None:
    days = list(cal.trading_days(date(2025, 1, 1), date(2025, 12, 31)))
    weekdays = sum(
        1 for d in range(365) if date.fromordinal(date(2025, 1, 1).toordinal() + d).weekday() < 5
    )
    assert len(days) == weekdays - 8  # all eight 2025 holidays fall on weekdays
    assert all(cal.next_trading_day(a) == b for a, b in itertools.pairwise(days))


def test_invalid_calendars() -> None:
    with pytest.raises(ValueError, match="close must be after open"):
        TradingCalendar("X", "UTC", time(16, 0), time(9, 0))
    with pytest.raises(ValueError, match="weekend"):
        TradingCalendar("X", "UTC", time(9, 0), time(16, 0), weekend=("Saturday",))


def test_ns_to_datetime() -> None:
    ns = utc_ns(2025, 7, 15, 7, 0) + 123_456_789
    dt = ns_to_datetime(ns)
    assert dt == datetime(2025, 7, 15, 7, 0, 0, 123_456, tzinfo=UTC)
    assert ns_to_datetime(ns, ZoneInfo("Europe/Berlin")).hour == 9
