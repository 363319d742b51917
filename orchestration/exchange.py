"""``marketlake exchange run``: the live exchange, one trading day after another.

Each trading day is a session on that day's log (a SQLite file per day
embedded, a Kafka namespace per day on the stack: the log the batch lands
and the EOD job settles). For each day the matcher(s) and the bar builder
start as supervised child processes on that log (restarted if they crash),
the participants (the liquidity simulator and the clearing members, each
optional) drive the session paced by the exchange clock, the calendar's
``pre_open``/``open``/``close`` go to ``control`` at their times, and once
the close is processed the children stop and the next trading day follows.
External participants (the gateways) write to the same day's ``orders``
alongside them.

The clock is the wall clock (speed 1) or a simulated one (``--speed``):
simulated, it starts at the first day's pre-open and jumps over nights and
weekends; on the wall clock the exchange waits for each pre-open, and a day
whose open has passed starts at the current time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from orchestration.logging import get_logger
from orchestration.sidecar import (
    SessionStopped,
    drive_session,
    on_signals,
    partitions_for,
    supervised_session,
)
from settings import Settings
from streaming.calendar import TradingCalendar
from streaming.gateways.http_api import TOKEN_TTL_S, Gateway, create_app
from streaming.gateways.venue import Venue
from streaming.refdata import load_calendar
from streaming.services.clock import ExchangeClock
from streaming.services.day import PRE_OPEN_NS, session_seed, session_state
from streaming.services.runner import ServiceMetrics
from streaming.topics import TOPICS


class ExchangeError(RuntimeError):
    """The exchange cannot run a day (what to do instead is in the message)."""


def _state(settings: Settings, day: date) -> str:
    from assets.platform.event_logs import open_event_log

    log = open_event_log(settings, day=day)
    try:
        log.create_topics(TOPICS, partitions_for(settings))  # as many shards as the services use
        return session_state(log)
    finally:
        log.close()


@dataclass(frozen=True)
class SessionRun:
    """One trading day the exchange ran."""

    day: date
    seed: int
    orders_sent: int  # by the simulator and the members (external orders are not counted)


def first_session(calendar: TradingCalendar, now_ns: int) -> date:
    """Today's session if it has not closed yet at ``now_ns``, else the next trading day."""
    today = datetime.fromtimestamp(now_ns / 1e9, calendar.tz).date()
    if calendar.is_trading_day(today) and now_ns < calendar.session_bounds(today)[1]:
        return today
    return calendar.next_trading_day(today)


def run_exchange(
    settings: Settings,
    *,
    first: date | None = None,
    days: int | None = None,
    speed: float = 1.0,
    simulator: bool = True,
    members: bool = True,
    matchers: int = 1,
    port: int = 9470,
    base_seed: int = 42,
    stop: threading.Event | None = None,
    clock: ExchangeClock | None = None,
    on_session: Callable[[date, ExchangeClock], None] | None = None,
    api_port: int | None = None,
) -> list[SessionRun]:
    """Run sessions day after day until ``days`` are done or ``stop`` is set.

    ``first`` defaults to today's session (if not closed) on the wall clock.
    ``on_session(day, clock)`` is called once the day's services run, before
    its pre-open (tests and gateways learn the day and the clock there).
    ``api_port``: serve the HTTP API there (127.0.0.1), following the day.
    """
    logger = get_logger("exchange")
    api = _start_api(settings, api_port) if api_port is not None else None
    if api is not None:
        gateway = api[0]
        follow = on_session

        def on_session(day: date, clock: ExchangeClock) -> None:
            gateway.switch(_venue(settings, day, clock))
            if follow is not None:
                follow(day, clock)

    try:
        return _run_days(settings, first, days, speed, simulator, members, matchers, port,
                         base_seed, stop, clock, on_session, logger)  # fmt: skip
    finally:
        if api is not None:
            api[0].switch(None)
            api[1].should_exit = True


def _start_api(settings: Settings, port: int) -> tuple[Gateway, Any]:
    """The HTTP API on 127.0.0.1:``port`` in a thread of this process (it shares the clock)."""
    import uvicorn

    from streaming.accounts import AccountStore
    from streaming.login import SessionCodec, load_or_create_key

    key = load_or_create_key(settings.data_dir / "gateway" / "api-token.key")
    gateway = Gateway(AccountStore(settings.accounts_path),
                      SessionCodec(key, TOKEN_TTL_S, purpose="api"))  # fmt: skip
    config = uvicorn.Config(create_app(gateway), host="127.0.0.1", port=port,
                            log_level="warning", access_log=False)  # fmt: skip
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name="http-api", daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise ExchangeError(f"the HTTP API did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    get_logger("exchange").info("http api listening", url=f"http://127.0.0.1:{port}/docs")
    return gateway, server


def _venue(settings: Settings, day: date, clock: ExchangeClock) -> Venue:
    from assets.platform.event_logs import open_event_log
    from streaming.refdata import load_members, load_securities

    log = open_event_log(settings, day=day, instance="gateway")
    log.create_topics(TOPICS, partitions_for(settings))
    reader = open_event_log(settings, day=day, instance="gateway-reader")
    capital = {m.member_id: m.capital for m in load_members(settings.members_csv)}
    return Venue(day.isoformat(), log, clock.now_ns, load_securities(settings.securities_csv),
                 capital, reader=reader)  # fmt: skip


def _run_days(
    settings: Settings,
    first: date | None,
    days: int | None,
    speed: float,
    simulator: bool,
    members: bool,
    matchers: int,
    port: int,
    base_seed: int,
    stop: threading.Event | None,
    clock: ExchangeClock | None,
    on_session: Callable[[date, ExchangeClock], None] | None,
    logger: Any,
) -> list[SessionRun]:
    calendar = load_calendar(settings.calendar_toml)
    if stop is None:
        stop = threading.Event()
        on_signals(stop)
    day = first or first_session(calendar, clock.now_ns() if clock else time.time_ns())
    if not calendar.is_trading_day(day):
        day = calendar.next_trading_day(day)
    if clock is None:
        if speed == 1.0 and first is None:
            clock = ExchangeClock(speed=1.0)  # the wall clock
        else:  # simulated: from the first day's pre-open
            clock = ExchangeClock(calendar.session_bounds(day)[0] - PRE_OPEN_NS, speed)
    runs: list[SessionRun] = []
    while not stop.is_set() and (days is None or len(runs) < days):
        open_ns, close_ns = calendar.session_bounds(day)
        if clock.now_ns() >= close_ns:
            logger.info("session already closed on the clock: next day", day=day.isoformat())
            day = calendar.next_trading_day(day)
            continue
        if not clock.realtime:
            clock.jump(open_ns - PRE_OPEN_NS)  # nights and weekends pass at once
        state = _state(settings, day)
        if state == "complete":
            logger.info("session already on its log: next day", day=day.isoformat())
            day = calendar.next_trading_day(day)
            continue
        if state == "truncated":
            raise ExchangeError(
                f"the session of {day} was interrupted before its close (its log keeps what was "
                f"sent); start with the next day: marketlake exchange run --from "
                f"{calendar.next_trading_day(day)}"
            )
        seed = session_seed(base_seed, day)
        try:
            sent = _run_session(settings, day, seed, clock, simulator, members, matchers, port,
                                stop, on_session)  # fmt: skip
        except SessionStopped:
            logger.info("stopped during the session", day=day.isoformat())
            break
        runs.append(SessionRun(day, seed, sent))
        logger.info("session done", day=day.isoformat(), orders=sent)
        day = calendar.next_trading_day(day)
    return runs


def _run_session(
    settings: Settings,
    day: date,
    seed: int,
    clock: ExchangeClock,
    simulator: bool,
    members: bool,
    matchers: int,
    port: int,
    stop: threading.Event,
    on_session: Callable[[date, ExchangeClock], None] | None,
) -> int:
    """One day: its services as supervised children on the day's log, the session driven."""

    def drive(metrics: ServiceMetrics) -> int:
        if on_session is not None:
            on_session(day, clock)
        return drive_session(
            settings, day, seed, port, simulator=simulator, members=members, stop=stop,
            metrics=metrics, clock=clock, day_log=True,
        )  # fmt: skip

    return supervised_session(settings, port, matchers, "exchange", stop, drive, session=day)
