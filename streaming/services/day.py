"""Run one simulated trading day through the live core on an event log.

A simulated clock steps through the session: at each step the simulator and
the members send their orders to ``orders``, then the matcher, the bar builder
and the participants' feedback each run one exactly-once step on the log. The
same services run as separate processes on Kafka; here they share a process
and a clock so a whole 6.5 h day takes seconds. Same date, seed and reference
data give the same log, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from streaming.bars import BarBuilder
from streaming.calendar import TradingCalendar
from streaming.events import ControlAction, OrderRequest, SessionControl, encode
from streaming.matcher import Matcher, StpMode
from streaming.members import DEFAULT_OBLIGATION, Members
from streaming.refdata import Member, Security
from streaming.services.handlers import BarService, MatcherService, ParticipantsService
from streaming.simulator import MarketSimulator, SimulatorConfig
from streaming.transport.base import TOPICS, EventLog, Handler, Output

PRE_OPEN_NS = 15 * 60 * 1_000_000_000


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


@dataclass
class DayResult:
    config: DayConfig
    open_ns: int
    close_ns: int
    matcher: Matcher
    bars: BarBuilder
    members: Members
    simulator: MarketSimulator
    orders_sent: int


def _pump(log: EventLog, group: str, topics: Sequence[str], handler: Handler) -> int:
    total = 0
    while n := log.step(group, topics, handler, max_records=50_000):
        total += n
    return total


def run_day(
    log: EventLog,
    cfg: DayConfig,
    progress: Callable[[int, int], None] | None = None,
) -> DayResult:
    """Simulate ``cfg.day`` on ``log`` (which should hold no other session)."""
    open_ns, close_ns = cfg.calendar.session_bounds(cfg.day)
    log.create_topics(TOPICS)
    member_ids = [m.member_id for m in cfg.members]
    matcher = Matcher(cfg.securities, member_ids, stp=cfg.stp, band_pct=cfg.band_pct)
    builder = BarBuilder(grace_ns=cfg.grace_ns)
    simulator = MarketSimulator(cfg.securities, cfg.seed, cfg.simulator)
    members = Members(
        cfg.members, cfg.securities, cfg.seed, act_probability=cfg.member_act_probability
    )
    services: list[tuple[str, tuple[str, ...], Handler]] = [
        (MatcherService.group, MatcherService.inputs, MatcherService(matcher)),
        (BarService.group, BarService.inputs, BarService(builder)),
        (
            ParticipantsService.group,
            ParticipantsService.inputs,
            ParticipantsService(simulator, members),
        ),
    ]

    def run_services() -> None:
        for group, topics, handler in services:
            _pump(log, group, topics, handler)

    session = cfg.day.isoformat()

    def control(action: ControlAction, ts: int) -> None:
        ctl = SessionControl(action, ts, None, session)
        log.produce([Output("control", None, encode(ctl), ts)])
        run_services()

    control("pre_open", open_ns - PRE_OPEN_NS)
    control("open", open_ns)

    cycle_ns = cfg.simulator.cycle_ms * 1_000_000
    schedule = iter(simulator.schedule(open_ns, close_ns))
    pending = next(schedule, None)
    steps = max(1, -(-(close_ns - open_ns) // cycle_ns))
    sent = 0
    for step in range(steps):
        t = open_ns + step * cycle_ns
        requests: list[OrderRequest] = list(members.decide(t))
        while pending is not None and pending[0] < t + cycle_ns:
            ts, symbol = pending
            requests.extend(simulator.cycle(symbol, ts))
            pending = next(schedule, None)
        requests.sort(key=lambda r: r.ts)  # stable: same-time requests keep their order
        log.produce([Output("orders", r.symbol, encode(r), r.ts) for r in requests])
        sent += len(requests)
        run_services()
        if progress is not None:
            progress(step + 1, steps)

    control("close", close_ns)
    return DayResult(cfg, open_ns, close_ns, matcher, builder, members, simulator, sent)
