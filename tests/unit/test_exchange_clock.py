"""The exchange clock: wall time or a faster simulated time, jumps forward, never back."""

from __future__ import annotations

import threading
from datetime import date, datetime

import pytest

from orchestration.exchange import first_session
from streaming.refdata import load_calendar
from streaming.services.clock import ExchangeClock

pytestmark = pytest.mark.unit

S = 1_000_000_000


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_simulated_clock_runs_speed_times_the_wall_and_jumps_only_forward():
    wall = FakeMonotonic()
    clock = ExchangeClock(1_000 * S, speed=60.0, monotonic=wall)
    assert clock.now_ns() == 1_000 * S
    wall.t += 2.0  # two wall seconds: two exchange minutes
    assert clock.now_ns() == 1_120 * S
    assert clock.wall_seconds_until(1_180 * S) == pytest.approx(1.0)
    clock.jump(5_000 * S)
    assert clock.now_ns() == 5_000 * S
    clock.jump(10 * S)  # never back
    assert clock.now_ns() == 5_000 * S
    wall.t += 1.0
    assert clock.now_ns() == 5_060 * S
    assert clock.wall_seconds_until(10 * S) == 0.0


def test_an_unpaced_clock_is_set_by_what_it_waits_for():
    clock = ExchangeClock(0, speed=0.0)
    stop = threading.Event()
    assert clock.sleep_until(42 * S, stop)
    assert clock.now_ns() == 42 * S and clock.wall_seconds_until(10**20) == 0.0
    stop.set()
    assert not clock.sleep_until(43 * S, stop)  # a stopped exchange does not go on
    with pytest.raises(ValueError, match="speed"):
        ExchangeClock(0, speed=-1.0)


def test_sleep_until_waits_on_the_wall_and_stops_when_told():
    clock = ExchangeClock(0, speed=1000.0)  # a real wait of about 20 ms
    assert clock.sleep_until(20_000_000 * 1000, threading.Event())
    assert clock.now_ns() >= 20_000_000 * 1000
    stop = threading.Event()
    stop.set()
    assert not clock.sleep_until(10**18, stop)


def test_the_first_session_is_today_until_its_close_then_the_next_trading_day():
    cal = load_calendar()
    friday = date(2026, 11, 20)
    open_ns, close_ns = cal.session_bounds(friday)
    assert first_session(cal, open_ns - 3600 * S) == friday  # before the open
    assert first_session(cal, open_ns + 3600 * S) == friday  # during: starts late
    assert first_session(cal, close_ns) == date(2026, 11, 23)  # after the close: Monday
    saturday = int(datetime(2026, 11, 21, 12, tzinfo=cal.tz).timestamp()) * S
    assert first_session(cal, saturday) == date(2026, 11, 23)


def test_a_session_started_late_sends_nothing_before_the_clock(tmp_path):
    """A live exchange started at noon begins there, not with a burst of the morning."""
    from assets.platform.resources import day_config
    from settings import Settings
    from streaming.events import decode
    from streaming.services.day import Participants, session_seed
    from streaming.topics import TOPICS
    from streaming.transport.sqlite import SqliteEventLog
    from tests.support import short_calendar

    settings = Settings(_env_file=None, data_dir=tmp_path, calendar_toml=short_calendar(tmp_path))
    day = date(2026, 11, 20)
    log = SqliteEventLog(tmp_path / "day.sqlite")
    log.create_topics(TOPICS)
    participants = Participants(log, day_config(settings, day, session_seed(42, day)))
    start = participants.open_ns + 10 * 60 * S  # ten minutes into the half-hour session
    paced: list[int] = []
    sent = participants.run(lambda _: None, start_ns=start, pace=paced.append)
    stamps = [r.timestamp for r in log.read("orders", 0)]
    cycle = participants.cfg.simulator.cycle_ms * 1_000_000
    assert sent == len(stamps) > 0
    assert min(stamps) >= start - cycle  # the cycle that holds the start, and later ones
    actions = [decode(r.value).action for r in log.read("control", 0)]  # type: ignore[union-attr]
    assert actions == ["pre_open", "open", "close"]
    assert paced == sorted(paced) and paced[-1] == participants.close_ns  # waited in order
