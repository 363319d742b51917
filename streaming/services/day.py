"""Run one simulated trading day through the live core on an event log.

A simulated clock steps through the session: at each step the simulator and
the members send their orders to ``orders``, then the matcher, the bar builder
and the participants' feedback each run one exactly-once step on the log. The
same services run as separate processes on Kafka; here they share a process
and a clock so a whole 6.5 h day takes seconds. Same date, seed and reference
data give the same log, byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import msgspec

from streaming.advice import AdviceConfig
from streaming.calendar import TradingCalendar
from streaming.events import GATEWAY_ID_BASE, ControlAction, OrderRequest, SessionControl, encode
from streaming.limits import MalformedMessage, decode_untrusted
from streaming.matcher import StpMode
from streaming.members import DEFAULT_OBLIGATION, Members
from streaming.refdata import Member, Security
from streaming.services.handlers import (
    BarService,
    MatcherService,
    ParticipantsService,
    Sharded,
    bar_builders,
    matchers,
    shard_count,
    sharded_bars,
    sharded_matcher,
)
from streaming.simulator import MarketSimulator, SimulatorConfig
from streaming.topics import TOPICS
from streaming.transport.base import EventLog, Handler, Output, broadcast, caught_up

CALENDAR_ACTOR = "calendar"
"""The actor of the control events the calendar schedules (operators act under their name)."""
PRE_OPEN_NS = 15 * 60 * 1_000_000_000


def session_seed(base_seed: int, day: date) -> int:
    """A day's simulation seed: fixed per day, so a day can be simulated again the same."""
    return base_seed * 100_000_000 + int(day.strftime("%Y%m%d"))


@dataclass(frozen=True)
class DayConfig:
    day: date
    seed: int
    securities: Sequence[Security]
    members: Sequence[Member]
    calendar: TradingCalendar
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    stp: StpMode = "cancel_resting"
    band_pct: float | None = 20.0
    grace_ns: int = 2_000_000_000
    member_act_probability: float = 0.5
    obligation: int = DEFAULT_OBLIGATION
    advice: AdviceConfig = field(default_factory=AdviceConfig)


@dataclass
class DayResult:
    config: DayConfig
    open_ns: int
    close_ns: int
    matcher: Sharded
    bars: Sharded
    members: Members
    simulator: MarketSimulator
    orders_sent: int

    def books_snapshot(self) -> dict[str, dict[str, object]]:
        """Every book at the end of the day, over all shards (recovery and parity tests)."""
        books: dict[str, dict[str, object]] = {}
        for shard in matchers(self.matcher):
            books.update(shard.snapshot())
        return dict(sorted(books.items()))

    @property
    def late_trades(self) -> int:
        return sum(b.late_trades for b in bar_builders(self.bars))


def _pump(log: EventLog, group: str, topics: Sequence[str], handler: Handler) -> int:
    total = 0
    while n := log.step(group, topics, handler, max_records=50_000):
        total += n
    return total


class Participants:
    """The simulator and the members: the one writer of ``orders``, on a simulated clock.

    A single writer sequences every order, so a seeded session gives the same
    log however its consumers are deployed. Each cycle it sends the orders for
    ``[t, t + cycle)``, then ``settle`` must return only once the matcher has
    processed them and the participants have seen the resulting executions and
    book tops, which is what makes the next cycle's decisions reproducible.
    The followers' decisions on recommendations go to ``decisions`` in the
    same atomic write as the orders they caused, at their event time; only
    the ``orders`` positions are handed to ``settle`` (no service consumes
    ``decisions`` in the session).
    """

    def __init__(
        self, log: EventLog, cfg: DayConfig, simulator: bool = True, members: bool = True
    ) -> None:
        self.log = log
        self.cfg = cfg
        self.open_ns, self.close_ns = cfg.calendar.session_bounds(cfg.day)
        self.simulator = MarketSimulator(cfg.securities, cfg.seed, cfg.simulator)
        self.members = Members(
            cfg.members,
            cfg.securities,
            cfg.seed,
            act_probability=cfg.member_act_probability,
            advice=cfg.advice,
            session=(self.open_ns, self.close_ns),
        )
        self.with_simulator, self.with_members = simulator, members
        self.feedback = ParticipantsService(
            self.simulator if simulator else None, self.members if members else None
        )
        self.now_ns = self.open_ns - PRE_OPEN_NS  # the simulated clock
        self.sent = 0

    def steps(self) -> int:
        cycle_ns = self.cfg.simulator.cycle_ms * 1_000_000
        return max(1, -(-(self.close_ns - self.open_ns) // cycle_ns))

    def control(self, action: ControlAction, ts: int) -> dict[tuple[str, int], int]:
        self.now_ns = ts
        ctl = SessionControl(action, ts, None, self.cfg.day.isoformat(), actor=CALENDAR_ACTOR,
                             reason="the trading calendar")  # fmt: skip
        return self.log.produce(
            broadcast("control", encode(ctl), ts, self.log.partitions("control"))
        )

    def run(
        self,
        settle: Callable[[dict[tuple[str, int], int]], None],
        progress: Callable[[int, int], None] | None = None,
        start_ns: int | None = None,
        pace: Callable[[int], None] | None = None,
        sent_controls: frozenset[str] = frozenset(),
        slice_ns: int | None = None,
    ) -> int:
        """Drive the whole session; ``settle(positions)`` runs after every write.

        ``pace(ts)`` runs before each write of what happens from ``ts`` on (a
        live exchange waits there for its clock). ``start_ns`` (a live exchange
        started during the session): the cycles before it send nothing, so the
        session starts late instead of sending the morning's orders in a burst.
        ``sent_controls``: the calendar's actions already on the log (a resumed
        session), not sent again. ``slice_ns`` (a paced exchange with other writers):
        a cycle's orders are written in slices of that much exchange time, each when
        the clock reaches it. Written at once, a cycle's orders ran up to a cycle
        (15 s) ahead of the clock, so an outside order stamped at the clock traded
        behind the bars' watermark and its trade was dead-lettered as late. The
        log holds the same records in the same order either way.
        """
        wait = pace or (lambda _: None)
        if "pre_open" not in sent_controls:
            wait(self.open_ns - PRE_OPEN_NS)
            settle(self.control("pre_open", self.open_ns - PRE_OPEN_NS))
        if "open" not in sent_controls:
            wait(self.open_ns)
            settle(self.control("open", self.open_ns))
        if not (self.with_simulator or self.with_members):
            # the calendar alone (external participants trade): no cycles to run, no feedback
            # to consume between them; the day is the open, the clock, the close
            wait(self.close_ns)
            settle(self.control("close", self.close_ns))
            return self.sent
        cycle_ns = self.cfg.simulator.cycle_ms * 1_000_000
        schedule = iter(self.simulator.schedule(self.open_ns, self.close_ns))
        pending = next(schedule, None)
        steps = self.steps()
        for step in range(steps):
            t = self.now_ns = self.open_ns + step * cycle_ns
            if start_ns is not None and t + cycle_ns <= start_ns:
                while pending is not None and pending[0] < t + cycle_ns:
                    pending = next(schedule, None)
                continue
            wait(t)
            requests: list[OrderRequest] = list(self.members.decide(t)) if self.with_members else []
            decisions = self.members.drain_decisions() if self.with_members else []
            while pending is not None and pending[0] < t + cycle_ns:
                ts, symbol = pending
                cycle = self.simulator.cycle(symbol, ts)
                if self.with_simulator:
                    requests.extend(cycle)
                pending = next(schedule, None)
            requests.sort(key=lambda r: r.ts)  # stable: same-time requests keep their order
            outputs = [Output("decisions", d.symbol, encode(d), d.ts) for d in decisions]
            for at, part in _slices(requests, t, slice_ns):
                if at > t:
                    wait(at)
                written = self.log.produce(
                    outputs + [Output("orders", r.symbol, encode(r), r.ts) for r in part]
                )
                outputs = []
                self.sent += len(part)
                settle({tp: end for tp, end in written.items() if tp[0] == "orders"})
            if progress is not None:
                progress(step + 1, steps)
        wait(self.close_ns)
        settle(self.control("close", self.close_ns))
        return self.sent


def _slices(
    requests: list[OrderRequest], start: int, slice_ns: int | None
) -> list[tuple[int, list[OrderRequest]]]:
    """Time-ordered ``requests`` cut at every ``slice_ns`` from ``start``: (slice start,
    requests); one slice at ``start`` without ``slice_ns``, and always at least one."""
    if not slice_ns or not requests:
        return [(start, requests)]
    out: list[tuple[int, list[OrderRequest]]] = []
    for r in requests:
        at = start + max(0, r.ts - start) // slice_ns * slice_ns
        if out and out[-1][0] == at:
            out[-1][1].append(r)
        else:
            out.append((at, [r]))
    return out


def run_day(
    log: EventLog,
    cfg: DayConfig,
    progress: Callable[[int, int], None] | None = None,
) -> DayResult:
    """Simulate ``cfg.day`` on ``log`` (which should hold no other session), in one process.

    The matcher, the bar builder and the participants' feedback each run
    their exactly-once steps after every write, on the simulated clock.
    """
    log.create_topics(TOPICS)
    partitions = shard_count(log)
    member_ids = [m.member_id for m in cfg.members]
    matcher = sharded_matcher(
        cfg.securities, member_ids, partitions, stp=cfg.stp, band_pct=cfg.band_pct
    )
    bars = sharded_bars(cfg.grace_ns)
    participants = Participants(log, cfg)
    services: list[tuple[str, tuple[str, ...], Handler]] = [
        (MatcherService.group, MatcherService.inputs, matcher),
        (BarService.group, BarService.inputs, bars),
        (ParticipantsService.group, ParticipantsService.inputs, participants.feedback),
    ]

    def run_services(_: dict[tuple[str, int], int]) -> None:
        for group, topics, handler in services:
            _pump(log, group, topics, handler)

    sent = participants.run(run_services, progress)
    return DayResult(
        cfg,
        participants.open_ns,
        participants.close_ns,
        matcher,
        bars,
        participants.members,
        participants.simulator,
        sent,
    )


def replay_session(source: EventLog, target: EventLog, cfg: DayConfig) -> None:
    """The day's matcher and bar builder again over ``source``'s control and orders, on ``target``.

    The log is the truth: whoever wrote ``orders`` (simulator, members,
    gateways) and however the live services interleaved them, the outputs on
    ``target`` must equal ``source``'s byte for byte. Both logs keep each
    partition's records in their order.
    """
    target.create_topics(TOPICS, source.partitions("orders"))
    for topic in ("control", "orders"):
        for part in range(source.partitions(topic)):
            records = list(source.read(topic, part))
            if records:
                target.produce([Output(topic, r.key, r.value, r.timestamp, part)
                                for r in records])  # fmt: skip
    members = [m.member_id for m in cfg.members]
    partitions = shard_count(target)
    matcher = sharded_matcher(cfg.securities, members, partitions, stp=cfg.stp,
                              band_pct=cfg.band_pct)  # fmt: skip
    _pump(target, MatcherService.group, MatcherService.inputs, matcher)
    _pump(target, BarService.group, BarService.inputs, sharded_bars(cfg.grace_ns))


SessionState = Literal["empty", "complete", "truncated"]
_CONTROL = msgspec.json.Decoder(SessionControl)
SESSION_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (MatcherService.group, MatcherService.inputs),
    (BarService.group, BarService.inputs),
    (ParticipantsService.group, ParticipantsService.inputs),
)
"""The consumer groups of a session and their inputs: all must have consumed the close."""
SESSION_TOPICS = tuple(t for t in TOPICS if t != "recommendations")
"""What a session writes; ``recommendations`` come from the day before and are kept."""


def session_state(log: EventLog) -> SessionState:
    """Is the day's log empty, a whole session, or what an interrupted run left?

    A session is complete only when its log holds the close (for every book)
    and every service of the session has consumed everything, the close
    included: then its executions, trades and bars are all there. Anything
    else that holds orders or control events is truncated.
    """
    log.create_topics(TOPICS)
    if not any(log.end_offsets("control").values()) and not any(log.end_offsets("orders").values()):
        return "empty"
    closed = False
    for part in range(log.partitions("control")):
        for rec in log.read("control", part):
            try:
                ctl = decode_untrusted(rec.value, _CONTROL)
            except MalformedMessage:
                continue
            closed |= ctl.action == "close" and ctl.symbol is None
    if closed and all(caught_up(log, group, inputs) for group, inputs in SESSION_GROUPS):
        return "complete"
    return "truncated"


class SessionKept(RuntimeError):
    """An interrupted session holds what a simulation cannot give again; it is not discarded."""


_ORDER = msgspec.json.Decoder(OrderRequest)


def outside_activity(log: EventLog) -> int:
    """How many of the day's orders and control events came from outside its seeded simulation.

    Gateway orders (ids from ``GATEWAY_ID_BASE``) and operators' control
    (any actor but the calendar) were sent by people and programs; simulating
    the day again from its seed cannot give them back.
    """
    count = 0
    for part in range(log.partitions("orders")):
        for rec in log.read("orders", part):
            try:
                count += decode_untrusted(rec.value, _ORDER).order_id >= GATEWAY_ID_BASE
            except MalformedMessage:
                continue
    for rec in log.read("control", 0):  # broadcast: partition 0 holds each event once
        try:
            count += decode_untrusted(rec.value, _CONTROL).actor != CALENDAR_ACTOR
        except MalformedMessage:
            continue
    return count


def session_so_far(log: EventLog) -> tuple[frozenset[str], int]:
    """The calendar's actions already on a day's log, and just after the time of its last event
    (where an interrupted session picks up, or is closed)."""
    actions: set[str] = set()
    last = 0
    for topic in ("control", "orders"):
        for part in range(log.partitions(topic)):
            for rec in log.read(topic, part):
                last = max(last, rec.timestamp)
                if topic == "control" and part == 0:  # broadcast: partition 0 has each once
                    try:
                        ctl = decode_untrusted(rec.value, _CONTROL)
                    except MalformedMessage:
                        continue
                    if ctl.actor == CALENDAR_ACTOR:
                        actions.add(ctl.action)
    return frozenset(actions), last + 1


def ensure_session(
    log: EventLog, cfg: DayConfig, progress: Callable[[int, int], None] | None = None
) -> tuple[SessionState, DayResult | None]:
    """The day's whole session on ``log``: kept if complete, else simulated from its seed.

    A truncated log (a run killed mid-session) is discarded, its consumer
    groups too, and the day simulated again from the start; the seeded
    simulation then gives exactly the log an uninterrupted run gives. Unless
    the log holds orders or control from outside the simulation (the live
    exchange's gateways and operators): those are never discarded, and
    ``SessionKept`` says how to close the day as it stands.
    Returns the state found and, if it simulated, the day's result.
    """
    state = session_state(log)
    if state == "complete":
        return state, None
    if state == "truncated":
        if outside := outside_activity(log):
            raise SessionKept(
                f"the session of {cfg.day} was interrupted before its close and holds {outside} "
                "orders or control events from outside the simulation, which are kept: close the "
                f"day as it stands with `marketlake exchange run --from {cfg.day} --days 1`"
            )
        log.discard(SESSION_TOPICS, [group for group, _ in SESSION_GROUPS])
    return state, run_day(log, cfg, progress)


def session_fingerprint(log: EventLog) -> str:
    """The session's identity: a hash of what drives it (``control`` and ``orders``).

    Everything else in the log follows from these two by the deterministic
    services, so two logs with the same fingerprint hold the same session.
    Keys, values and event times count; offsets do not, so the same session
    has the same fingerprint on SQLite and on Kafka.
    """
    digest = hashlib.sha256()
    for topic in ("control", "orders"):
        for part in range(log.partitions(topic)):
            digest.update(f"{topic}/{part}\n".encode())
            for rec in log.read(topic, part):
                key = (rec.key or "").encode()
                digest.update(len(key).to_bytes(4, "big") + key)
                digest.update(rec.timestamp.to_bytes(8, "big", signed=True))
                digest.update(len(rec.value).to_bytes(4, "big") + rec.value)
    return digest.hexdigest()[:20]
