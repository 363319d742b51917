"""Recommendations in a simulated session: followers decide, act, trade, and the log is reproducible.

Runs whole (half-hour) seeded days on the embedded SQLite log, with
recommendations written to the ``recommendations`` topic before the open.
"""

from __future__ import annotations

from datetime import date, time

import msgspec
import pytest

from streaming.advice import AdviceConfig
from streaming.calendar import TradingCalendar
from streaming.events import (
    DeadLetter,
    NewOrder,
    Recommendation,
    StrategyDecision,
    Trade,
    decode,
    decode_as,
    encode,
)
from streaming.members import Members
from streaming.refdata import load_members
from streaming.services.day import DayConfig, run_day
from streaming.services.handlers import ParticipantsService
from streaming.services.recovery import rebuild
from streaming.topics import TOPICS
from streaming.transport.base import Output
from streaming.transport.sqlite import SqliteEventLog

pytestmark = pytest.mark.unit

DAY = date(2026, 11, 20)
HALF_HOUR = TradingCalendar("MLX", "Europe/Berlin", time(9, 0), time(9, 30))
OPEN_NS, CLOSE_NS = HALF_HOUR.session_bounds(DAY)
BEFORE_OPEN = OPEN_NS - 3_600_000_000_000
FOLLOWERS = {"USR08": "conservative", "USR09": "moderate", "USR10": "aggressive"}


def _rec(rec_id: str, symbol: str, action: str, confidence: float, mode: str, ts: int):
    return Recommendation(rec_id, symbol, action, confidence, mode, ts,
                          thesis=f"{action} {symbol}", session_date=DAY.isoformat())  # fmt: skip


RECS = [
    _rec("r-aapl", "AAPL", "buy", 0.8, "paper_eligible", BEFORE_OPEN),
    _rec("r-msft", "MSFT", "buy", 0.5, "paper_eligible", BEFORE_OPEN),  # only aggressive's gate
    _rec("r-xom", "XOM", "hold", 0.9, "informational", BEFORE_OPEN),
]


def _session(path, securities, recs=RECS, members=None, garbage=False):
    """A seeded half-hour day with ``recs`` on the log before the open."""
    log = SqliteEventLog(path)
    log.create_topics(TOPICS)
    outputs = [Output("recommendations", r.symbol, encode(r), r.ts) for r in recs]
    if garbage:
        outputs.append(Output("recommendations", "AAPL", b'{"type":"recommendation"}', BEFORE_OPEN))
    log.produce(outputs)
    result = run_day(log, DayConfig(DAY, 5, securities, members or load_members(), HALF_HOUR))
    return log, result


def _all(log, topic):
    return [(r.partition, r.key, r.value, r.timestamp) for p in sorted(log.end_offsets(topic))
            for r in log.read(topic, p)]  # fmt: skip


def _decisions(log) -> list[StrategyDecision]:
    return [decode_as(r.value, StrategyDecision) for r in log.read("decisions")]


@pytest.fixture(scope="module")
def session(tmp_path_factory, securities):
    log, result = _session(tmp_path_factory.mktemp("advice") / "log.sqlite", securities,
                           garbage=True)  # fmt: skip
    yield log, result
    log.close()


def test_every_follower_decides_every_recommendation_once(session):
    log, _ = session
    decisions = _decisions(log)
    assert sorted((d.member, d.rec_id) for d in decisions) == sorted(
        (m, r.rec_id) for m in FOLLOWERS for r in RECS
    )
    assert len({d.decision_id for d in decisions}) == len(decisions)
    opens = OPEN_NS + AdviceConfig().open_delay_ns
    assert all(opens <= d.ts < CLOSE_NS for d in decisions)  # not before the window opens


def test_a_buy_recommendation_becomes_an_order_and_a_trade_for_each_follower(session):
    log, result = session
    acts = [d for d in _decisions(log) if d.rec_id == "r-aapl"]
    assert {(d.member, d.outcome, d.side) for d in acts} == {(m, "act", "buy") for m in FOLLOWERS}
    orders = {o.order_id: o for o in map(decode, (r.value for r in log.read("orders")))
              if isinstance(o, NewOrder)}  # fmt: skip
    trades = [decode_as(r.value, Trade) for r in log.read("trades")]
    for d in acts:
        order = orders[d.order_id]
        assert (order.member, order.symbol, order.side, order.qty, order.price, order.ts) == (
            d.member, "AAPL", "buy", d.qty, d.price, d.ts,
        )  # fmt: skip
        filled = [t for t in trades if t.buy_order_id == d.order_id]
        assert filled and all(t.buy_member == d.member and t.symbol == "AAPL" for t in filled)
        assert "AAPL" in result.members.accounts[d.member].traded_symbols
    # bigger tiers buy more (same confidence and net worth at the start)
    qty = {d.member: d.qty for d in acts}
    assert qty["USR08"] < qty["USR09"] < qty["USR10"]


def test_below_gate_and_informational_recommendations_are_skipped_with_the_reason(session):
    log, _ = session
    by = {(d.member, d.rec_id): d for d in _decisions(log)}
    assert (by["USR08", "r-msft"].outcome, by["USR08", "r-msft"].reason) == (
        "skip", "below_confidence_gate",
    )  # fmt: skip
    assert by["USR09", "r-msft"].reason == "below_confidence_gate"
    assert by["USR10", "r-msft"].outcome == "act"
    assert {by[m, "r-xom"].reason for m in FOLLOWERS} == {"no_action"}
    skipped = [d for d in by.values() if d.outcome == "skip"]
    assert all(d.order_id is None and d.qty == 0 and d.side is None for d in skipped)


def test_an_undecodable_recommendation_is_dead_lettered(session):
    log, _ = session
    letters = [decode_as(r.value, DeadLetter) for r in log.read("dlq")]
    bad = [d for d in letters if d.source_topic == "recommendations"]
    assert len(bad) == 1 and bad[0].reason.startswith("undecodable")


def test_the_same_seed_gives_the_same_log_twice(session, tmp_path, securities):
    first, _ = session
    again, _ = _session(tmp_path / "again.sqlite", securities, garbage=True)
    for topic in TOPICS:
        assert _all(again, topic) == _all(first, topic), topic
    again.close()


def test_without_recommendations_followers_trade_exactly_like_rule_members(tmp_path, securities):
    assert {m.member_id: m.risk_tier for m in load_members() if m.strategy == "advice"} == (
        FOLLOWERS
    )
    followers, _ = _session(tmp_path / "followers.sqlite", securities, recs=[])
    rules_only = [msgspec.structs.replace(m, strategy="rules") for m in load_members()]
    rules, _ = _session(tmp_path / "rules.sqlite", securities, recs=[], members=rules_only)
    for topic in TOPICS:
        assert _all(followers, topic) == _all(rules, topic), topic
    assert _all(followers, "decisions") == []
    followers.close()
    rules.close()


def test_participants_rebuild_their_pending_recommendations_from_the_log(tmp_path, securities):
    """A restarted driver replays ``recommendations`` with its other inputs: nothing lost."""
    log = SqliteEventLog(tmp_path / "log.sqlite")
    log.create_topics(TOPICS)
    log.produce([Output("recommendations", r.symbol, encode(r), r.ts) for r in RECS])

    def fresh() -> Members:
        return Members(load_members(), securities, seed=1, session=(OPEN_NS, CLOSE_NS))

    live = fresh()
    while log.step(ParticipantsService.group, ParticipantsService.inputs,
                   ParticipantsService(None, live)):  # fmt: skip
        pass
    restarted = fresh()
    rebuild(log, ParticipantsService.group, ParticipantsService.inputs,
            ParticipantsService(None, restarted))  # fmt: skip
    when = OPEN_NS + AdviceConfig().open_delay_ns
    assert restarted.decide(when) == live.decide(when)
    assert restarted.drain_decisions() == live.drain_decisions() != []
    # a redelivered recommendation is not decided twice
    live.on_recommendation(RECS[0])
    live.decide(when + 1)
    assert live.drain_decisions() == []
    log.close()
