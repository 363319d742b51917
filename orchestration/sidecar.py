"""The live core's services as processes, configured from settings.

``matcher`` and ``bars`` consume, process and produce exactly once and run
until told to stop; several matcher instances can share one consumer group
(``shared``), each owning some partitions. ``simulator`` (the liquidity
simulator and, unless switched off, the members) and ``members`` (members
only) drive one session on a simulated clock as the single writer of
``orders`` and exit after the close. ``all`` runs every one of them as a
child process under a supervisor (a crashed child is restarted with backoff,
a crash loop reported) and stops them once the session is processed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from pydantic import SecretStr

from assets.platform.event_logs import open_event_log
from assets.platform.resources import day_config
from orchestration.logging import get_logger
from orchestration.supervisor import Supervisor
from settings import Settings
from streaming.refdata import load_calendar, load_members, load_securities
from streaming.services.clock import ExchangeClock
from streaming.services.day import Participants, session_so_far
from streaming.services.gc_pauses import keep_gc_pauses_short
from streaming.services.handlers import (
    BarService,
    MatcherService,
    ParticipantsService,
    shard_count,
    sharded_bars,
    sharded_matcher,
)
from streaming.services.runner import ServiceMetrics, ServiceRunner, serve_http
from streaming.topics import TOPICS
from streaming.transport.base import EventLog, Handler, caught_up


class SessionStopped(Exception):
    """SIGTERM/SIGINT while a session was being driven."""


@dataclass(frozen=True)
class ServiceSpec:
    group: str
    inputs: tuple[str, ...]
    make: Callable[[Settings, EventLog], Callable[[], Handler]]


def _matcher(settings: Settings, log: EventLog) -> Callable[[], Handler]:
    securities = load_securities(settings.securities_csv)
    members = [m.member_id for m in load_members(settings.members_csv)]
    partitions = shard_count(log)

    def make() -> Handler:
        return sharded_matcher(
            securities, members, partitions, stp=settings.stp_mode, band_pct=settings.price_band_pct
        )

    return make


def _bars(settings: Settings, log: EventLog) -> Callable[[], Handler]:
    def make() -> Handler:
        return sharded_bars(settings.bar_grace_ms * 1_000_000)

    return make


SERVICES: dict[str, ServiceSpec] = {
    "matcher": ServiceSpec(MatcherService.group, MatcherService.inputs, _matcher),
    "bars": ServiceSpec(BarService.group, BarService.inputs, _bars),
}
DRIVERS = ("simulator", "members")
NAMES = (*DRIVERS, *SERVICES, "all")


PACED_SLICE_NS = 500_000_000
"""On the clock, the simulator's orders go out half a second of exchange time at a time: an
outside writer's orders, stamped at the clock, then trade at most that far behind them
(well inside the bars' grace)."""


def partitions_for(settings: Settings) -> int:
    return settings.kafka_partitions if settings.event_log == "kafka" else 1


def on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def run_sidecar(
    name: str,
    settings: Settings,
    port: int,
    max_records: int,
    shared: bool = False,
    instance: str = "0",
    day: date | None = None,
) -> None:
    """Run one service until SIGTERM/SIGINT; the current step always completes.

    ``day``: serve that day's session log (what ``exchange run`` and the batch
    use) instead of the live log of settings.
    """
    spec = SERVICES[name]
    # readers downstream poll, so a step need not wait until its writes are visible
    log = open_event_log(
        settings, read_your_writes=False, shared_groups=shared, instance=instance, day=day
    )
    log.create_topics(TOPICS, partitions_for(settings))
    logger = get_logger(f"sidecar.{name}")
    metrics = ServiceMetrics(name)
    runner = ServiceRunner(
        log, spec.group, spec.inputs, spec.make(settings, log), metrics, max_records,
        on_assignment=lambda owned, replayed: logger.info(
            "partitions assigned", partitions=[f"{t}-{p}" for t, p in owned], replayed=replayed
        ),
    )  # fmt: skip
    stop = threading.Event()
    on_signals(stop)
    keep_gc_pauses_short()
    server = serve_http(port, metrics, runner.healthy)
    logger.info(
        "service starting",
        transport=settings.event_log,
        namespace=settings.namespace,
        port=port,
        instance=instance,
        shared=shared,
    )
    try:
        runner.run(stop)
    finally:
        server.shutdown()
        log.close()
        logger.info("service stopped", consumed=metrics.consumed._value.get())


def drive_session(
    settings: Settings,
    day: date,
    seed: int,
    port: int,
    simulator: bool = True,
    members: bool = True,
    speed: float = 0.0,
    timeout: float = 300.0,
    stop: threading.Event | None = None,
    metrics: ServiceMetrics | None = None,
    clock: ExchangeClock | None = None,
    day_log: bool = False,
    resume: bool = False,
) -> int:
    """Send one session's orders, cycle by cycle, waiting for the matcher after each write.

    After every write the driver waits until the matcher group has committed
    past it and its outputs are readable, then consumes the executions and
    book tops it caused (exactly once, as group ``participants``) before the
    next cycle. The log therefore equals the in-process ``run_day`` of the same
    date and seed, however many matcher instances share the work. ``speed``
    > 0 paces the simulated clock against the wall clock (1.0 = real time),
    from the open; ``clock`` (the live exchange's) paces it instead, and a
    session whose open it has passed starts at the clock's time. ``day_log``:
    the session goes to the day's log (as ``exchange run`` and the batch use
    it), not to the live log of settings. ``resume``: the log holds the start of
    this session (the exchange stopped without closing it): the calendar goes
    on from the log's last event, without the simulator and the members (their
    seeded state cannot be picked up mid-day). Returns the number of order
    requests sent.
    """
    name = "simulator" if simulator else "members"
    logger = get_logger(f"sidecar.{name}")
    calendar = load_calendar(settings.calendar_toml)
    if not calendar.is_trading_day(day):
        raise ValueError(f"{day} is not a trading day on {calendar.exchange}")
    cfg = day_config(settings, day, seed)
    log = open_event_log(settings, read_your_writes=True, instance=name,
                         day=day if day_log else None)  # fmt: skip
    log.create_topics(TOPICS, partitions_for(settings))
    sent_controls: frozenset[str] = frozenset()
    resume_ns = 0
    if resume:
        simulator = members = False
        sent_controls, resume_ns = session_so_far(log)
    elif any(log.end_offsets("orders").values()) or any(log.end_offsets("control").values()):
        log.close()
        raise ValueError(
            "the orders topic already holds a session: drive each session on fresh topics "
            "(another MARKETLAKE_NAMESPACE) so it can be reproduced"
        )
    participants = Participants(log, cfg, simulator=simulator, members=members)
    feedback = participants.feedback
    metrics = metrics or ServiceMetrics(name)
    if stop is None:
        stop = threading.Event()
        on_signals(stop)
    last_cycle = time.monotonic()
    server = serve_http(port, metrics, lambda: time.monotonic() - last_cycle < timeout)
    counted = 0

    def settle(written: dict[tuple[str, int], int]) -> None:
        nonlocal last_cycle, counted
        metrics.produced("orders", participants.sent - counted)
        counted = participants.sent
        deadline = time.monotonic() + timeout
        warn_at = time.monotonic() + 10
        pending = dict(written)
        while pending:
            if stop.is_set():
                raise SessionStopped
            by_topic = {t: log.committed(MatcherService.group, t) for t in {t for t, _ in pending}}
            pending = {tp: off for tp, off in pending.items() if by_topic[tp[0]][tp[1]] < off}
            if not pending:
                break
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(
                    f"the matcher has not processed {sorted(pending)} in {timeout:.0f}s: "
                    "is `marketlake sidecar matcher` running on the same event log?"
                )
            if now > warn_at:
                logger.warning("waiting for the matcher", pending=len(pending))
                warn_at = now + 10
            time.sleep(0.001)
        log.settle(ParticipantsService.inputs)
        while n := log.step(ParticipantsService.group, ParticipantsService.inputs, feedback):
            metrics.consumed.inc(n)
        last_cycle = time.monotonic()

    if clock is None and speed > 0:  # the simulated clock may not run ahead of the wall clock
        clock = ExchangeClock(participants.open_ns, speed)
    start_ns = clock.now_ns() if clock is not None and clock.speed else None
    if resume:
        start_ns = max(start_ns or 0, resume_ns)

    def alive() -> None:  # waiting for the clock is not being stuck
        nonlocal last_cycle
        last_cycle = time.monotonic()

    def pace(ts: int) -> None:
        if clock is None:
            return
        if clock.wall_seconds_until(ts) > 10:
            logger.info("waiting for the clock", until_ns=ts, wall_s=clock.wall_seconds_until(ts))
        if not clock.sleep_until(ts, stop, tick=alive):
            raise SessionStopped

    logger.info("session starting", day=day.isoformat(), seed=seed, namespace=settings.namespace)
    try:
        paced = clock is not None and clock.speed > 0
        sent = participants.run(settle, start_ns=start_ns, pace=pace, sent_controls=sent_controls,
                                slice_ns=PACED_SLICE_NS if paced else None)  # fmt: skip
    finally:
        server.shutdown()
        log.close()
    logger.info("session closed", day=day.isoformat(), orders=sent)
    return sent


def run_all(
    settings: Settings,
    day: date,
    seed: int,
    port: int,
    matchers: int = 1,
    speed: float = 0.0,
) -> int:
    """Every service as its own process; returns once the session is fully processed."""
    stop = threading.Event()
    on_signals(stop)
    return supervised_session(
        settings, port, matchers, "simulator", stop,
        lambda metrics: drive_session(settings, day, seed, port, speed=speed, stop=stop,
                                      metrics=metrics),
    )  # fmt: skip


def supervised_session(
    settings: Settings,
    port: int,
    matchers: int,
    name: str,
    stop: threading.Event,
    drive: Callable[[ServiceMetrics], int],
    session: date | None = None,
) -> int:
    """``drive`` a session while the matcher(s) and the bar builder run as supervised children.

    ``session``: the services serve that day's log (``exchange run``), else the live
    log of settings (``sidecar all``). Returns what ``drive`` returns, once the
    matcher and the bars have consumed everything; the children are stopped then.
    """
    logger = get_logger(f"sidecar.{name}")
    log = open_event_log(settings, day=session)
    log.create_topics(TOPICS, partitions_for(settings))
    env = {**os.environ, **_settings_env(settings)}
    base = [sys.executable, "-m", "orchestration.cli", "sidecar"]
    on_log = ["--session", session.isoformat()] if session is not None else []
    children: dict[str, list[str]] = {}
    for i in range(matchers):
        args = ["matcher", *on_log, "--port", str(port + 1 + i)]
        if matchers > 1:
            args += ["--shared", "--instance", f"m{i}"]
        children[f"matcher-{i}"] = [*base, *args]
    children["bars"] = [*base, "bars", *on_log, "--port", str(port + 1 + matchers)]
    metrics = ServiceMetrics(name)
    supervisor = Supervisor(children, env, metrics.registry)
    supervisor.start()
    logger.info("children started", pids=supervisor.pids())
    try:
        sent = drive(metrics)
        for group, inputs in ((MatcherService.group, MatcherService.inputs),
                              (BarService.group, BarService.inputs)):  # fmt: skip
            wait_caught_up(log, group, inputs, stop)
        return sent
    finally:
        supervisor.stop()
        log.close()


def wait_caught_up(
    log: EventLog, group: str, inputs: tuple[str, ...], stop: threading.Event
) -> None:
    log.settle(inputs)
    while not stop.is_set() and not caught_up(log, group, inputs):
        time.sleep(0.1)


def _settings_env(settings: Settings) -> dict[str, str]:
    """The settings as MARKETLAKE_ variables, so child processes see the same ones.

    Secrets (the Kafka password) travel here, in the children's environment,
    never on their command lines; dicts and lists as JSON, as settings parse them.
    """
    env: dict[str, str] = {}
    for field, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, dict | list):
            value = json.dumps(value)
        if value is not None:
            env[f"MARKETLAKE_{field.upper()}"] = str(value)
    return env
