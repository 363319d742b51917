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
whose open has passed starts at the current time. Stopped mid-session (or
found interrupted on restart after its close time), a day is closed as it stands,
never thrown away; found interrupted while its session still runs on the clock, it
resumes until its close (gateways and calendar; the seeded participants cannot).
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
    wait_caught_up,
)
from settings import Settings
from streaming.calendar import TradingCalendar
from streaming.events import SessionControl, encode
from streaming.gateways.gateway import Gateway
from streaming.gateways.http_api import TOKEN_TTL_S, create_app
from streaming.gateways.venue import Opening, Venue
from streaming.portfolio import Position
from streaming.refdata import load_calendar
from streaming.services.clock import ExchangeClock
from streaming.services.day import PRE_OPEN_NS, session_seed, session_so_far, session_state
from streaming.services.gc_pauses import collect_all, keep_gc_pauses_short
from streaming.services.handlers import MatcherService, ParticipantsService
from streaming.services.runner import ServiceMetrics
from streaming.topics import TOPICS
from streaming.transport.base import broadcast


class ExchangeError(RuntimeError):
    """The exchange cannot run a day (what to do instead is in the message)."""


def _last_event_ns(settings: Settings, day: date) -> int:
    from assets.platform.event_logs import open_event_log

    log = open_event_log(settings, day=day)
    try:
        return session_so_far(log)[1]
    finally:
        log.close()


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
    fix_port: int | None = None,
) -> list[SessionRun]:
    """Run sessions day after day until ``days`` are done or ``stop`` is set.

    ``first`` defaults to today's session (if not closed) on the wall clock.
    ``on_session(day, clock)`` is called once the day's services run, before
    its pre-open (tests and gateways learn the day and the clock there).
    ``api_port``: serve the HTTP API there (127.0.0.1); ``fix_port``: the FIX 4.4
    acceptor; both follow the day, on one venue (one set of client order ids).
    """
    logger = get_logger("exchange")
    gateway = _gateway(settings) if api_port is not None or fix_port is not None else None
    api = _start_api(gateway, api_port) if gateway is not None and api_port is not None else None
    acceptor = _start_fix(settings, gateway, fix_port) if gateway and fix_port else None
    if gateway is not None:
        follow = on_session

        def on_session(day: date, clock: ExchangeClock) -> None:
            gateway.switch(_venue(settings, day, clock))
            if follow is not None:
                follow(day, clock)

    try:
        return _run_days(settings, first, days, speed, simulator, members, matchers, port,
                         base_seed, stop, clock, on_session, logger)  # fmt: skip
    finally:
        if acceptor is not None:
            acceptor.stop()
        if gateway is not None:
            gateway.switch(None)
        if api is not None:
            api.should_exit = True


def _gateway(settings: Settings) -> Gateway:
    """What the gateways share: the accounts, the API's token key, the day's venue."""
    from streaming.accounts import AccountStore
    from streaming.login import SessionCodec, load_or_create_key

    key = load_or_create_key(settings.data_dir / "gateway" / "api-token.key")
    return Gateway(AccountStore(settings.accounts_path),
                   SessionCodec(key, TOKEN_TTL_S, purpose="api"))  # fmt: skip


def _start_fix(settings: Settings, gateway: Gateway, port: int) -> Any:
    """The FIX 4.4 acceptor on 127.0.0.1:``port``: a session per clearing member."""
    from streaming.gateways.fix_acceptor import FixAcceptor, acceptor_config
    from streaming.refdata import load_members

    base = settings.data_dir / "gateway" / "fix"
    members = [m.member_id for m in load_members(settings.members_csv)]
    config = acceptor_config(base / "acceptor.cfg", base / "store", port, settings.fix_comp_id,
                             members)  # fmt: skip
    acceptor = FixAcceptor(gateway, config, state=base / "sent")
    acceptor.start()
    get_logger("exchange").info("fix acceptor listening", host="127.0.0.1", port=port,
                                comp_id=settings.fix_comp_id)  # fmt: skip
    return acceptor


def _start_api(gateway: Gateway, port: int) -> Any:
    """The HTTP API on 127.0.0.1:``port`` in a thread of this process (it shares the clock)."""
    import uvicorn

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
    return server


def _venue(settings: Settings, day: date, clock: ExchangeClock) -> Venue:
    from assets.platform.event_logs import open_event_log
    from streaming.refdata import load_members, load_securities

    log = open_event_log(settings, day=day, instance="gateway")
    log.create_topics(TOPICS, partitions_for(settings))
    reader = open_event_log(settings, day=day, instance="gateway-reader")
    capital = {m.member_id: m.capital for m in load_members(settings.members_csv)}
    return Venue(day.isoformat(), log, clock.now_ns, load_securities(settings.securities_csv),
                 capital, reader=reader, opening=opening_positions(settings, day, capital),
                 allow_short=settings.allow_short,
                 journal=settings.data_dir / "gateway" / "journal" / f"{day}.jsonl")  # fmt: skip


def opening_positions(settings: Settings, day: date, capital: dict[str, int]) -> dict[str, Opening]:
    """Each member's opening state for the gateway's pre-trade check: the lake's latest close.

    What clearing will open the day with (if the day before has landed by then);
    capital and no holdings before the first landed day.
    """
    from assets.clearing.clearing_assets import opening_state
    from assets.platform.lake_engines import catalog as lake_catalog

    state, previous = opening_state(lake_catalog(settings), day, capital)
    get_logger("exchange").info("opening positions", day=day.isoformat(),
                                from_close=previous.isoformat() if previous else None)  # fmt: skip
    return {
        member: Opening(
            round(s.cash),
            {sym: Position(h.qty, round(h.cost)) for sym, h in s.holdings.items() if h.qty},
        )
        for member, s in state.items()
    }


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
    keep_gc_pauses_short()
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
        resume = state == "truncated"
        if resume:
            last_ns = _last_event_ns(settings, day)
            if not clock.realtime:
                clock.jump(max(clock.now_ns(), last_ns))
            if clock.now_ns() >= close_ns:
                logger.warning("session interrupted before its close: closing it as it stands",
                               day=day.isoformat())  # fmt: skip
                close_as_it_stands(settings, day, None, matchers, port, "the exchange restarted "
                                   "after the session was interrupted")  # fmt: skip
                runs.append(SessionRun(day, session_seed(base_seed, day), 0))
                day = calendar.next_trading_day(day)
                continue
            logger.warning("session interrupted: resuming it until its close, without the "
                           "simulator and the members", day=day.isoformat())  # fmt: skip
        seed = session_seed(base_seed, day)
        try:
            sent = _run_session(settings, day, seed, clock, simulator, members, matchers, port,
                                stop, on_session, resume)  # fmt: skip
        except SessionStopped:
            logger.info("stopped during the session: closing it", day=day.isoformat())
            close_as_it_stands(settings, day, min(clock.now_ns(), close_ns), matchers, port,
                               "the exchange was stopped before the calendar's close")  # fmt: skip
            break
        runs.append(SessionRun(day, seed, sent))
        # the night is the time for a full collection (the day's dead cycles, frozen or not)
        logger.info("session done", day=day.isoformat(), orders=sent, collected=collect_all())
        day = calendar.next_trading_day(day)
    return runs


EXCHANGE_ACTOR = "exchange"
"""The actor of a close the exchange itself sends (a stop or restart mid-session)."""


def close_as_it_stands(
    settings: Settings, day: date, at_ns: int | None, matchers: int, port: int, reason: str
) -> None:
    """Close a day's session early, keeping everything it holds.

    A real venue that stops mid-session ends the session; nothing on the log is
    thrown away (outside orders could not be sent again), and the day becomes
    complete, so the batch lands and settles it as it is. The services restart
    on the log (they recover their state from it), the close goes to
    ``control`` at ``at_ns`` (default: just after the log's last event), and the
    participants' group is moved past it: nobody drives that day any more.
    """
    from assets.platform.event_logs import open_event_log

    def drive(_: ServiceMetrics) -> int:
        log = open_event_log(settings, read_your_writes=True, instance="exchange", day=day)
        try:
            log.create_topics(TOPICS, partitions_for(settings))
            ts = max(session_so_far(log)[1], at_ns or 0)
            ctl = SessionControl("close", ts, None, day.isoformat(), actor=EXCHANGE_ACTOR,
                                 reason=reason)  # fmt: skip
            log.produce(broadcast("control", encode(ctl), ts, log.partitions("control")))
            wait_caught_up(log, MatcherService.group, MatcherService.inputs, threading.Event())
            log.settle(ParticipantsService.inputs)
            while log.step(ParticipantsService.group, ParticipantsService.inputs, lambda _: ()):
                pass
            return 0
        finally:
            log.close()

    supervised_session(settings, port, matchers, "exchange", threading.Event(), drive, session=day)


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
    resume: bool = False,
) -> int:
    """One day: its services as supervised children on the day's log, the session driven."""

    def drive(metrics: ServiceMetrics) -> int:
        if on_session is not None:
            on_session(day, clock)
        return drive_session(
            settings, day, seed, port, simulator=simulator, members=members, stop=stop,
            metrics=metrics, clock=clock, day_log=True, resume=resume,
        )  # fmt: skip

    return supervised_session(settings, port, matchers, "exchange", stop, drive, session=day)
