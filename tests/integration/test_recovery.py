"""Services killed mid-session rebuild their state from the log and lose or repeat nothing.

A seeded session runs once uninterrupted. Its inputs are then replayed into a
second log by services that are thrown away several times along the way
(state lost, as in a crash) and rebuilt from their committed input. Every
output topic must equal the uninterrupted run byte for byte, and the rebuilt
books must equal the uninterrupted books.
"""

from __future__ import annotations

from datetime import date, time

import pytest

from streaming.bars import BarBuilder
from streaming.calendar import TradingCalendar
from streaming.events import DeadLetter, decode_as
from streaming.matcher import Matcher
from streaming.refdata import load_members
from streaming.services.day import DayConfig, run_day
from streaming.services.handlers import BarService, MatcherService
from streaming.services.recovery import rebuild
from streaming.topics import TOPICS
from streaming.transport.base import Output
from streaming.transport.sqlite import SqliteEventLog

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 20)
ONE_HOUR = TradingCalendar("MLX", "Europe/Berlin", time(9, 0), time(10, 0))


@pytest.fixture(scope="module")
def session(tmp_path_factory, securities):
    path = tmp_path_factory.mktemp("recovery") / "uninterrupted.sqlite"
    log = SqliteEventLog(path)
    cfg = DayConfig(DAY, 99, securities, load_members(), ONE_HOUR)
    result = run_day(log, cfg)
    yield log, cfg, result
    log.close()


def _values(log, topic):
    return [r.value for r in log.read(topic)]


def _copy(src, dst, topics):
    for topic in topics:
        dst.produce([Output(topic, r.key, r.value, r.timestamp) for r in src.read(topic)])


def _dlq_from(log, sources):
    return [
        r.value for r in log.read("dlq") if decode_as(r.value, DeadLetter).source_topic in sources
    ]


def _run_with_crashes(log, group, inputs, make_handler, crash_every, batch):
    handler = make_handler()
    crashes = steps = 0
    while True:
        if steps and steps % crash_every == 0:
            handler = make_handler()  # the process died: all in-memory state is gone
            rebuild(log, group, inputs, handler)
            crashes += 1
        if not log.step(group, inputs, handler, max_records=batch):
            return handler, crashes
        steps += 1


def test_matcher_recovers_exactly(session, tmp_path, securities):
    uninterrupted, cfg, result = session
    log = SqliteEventLog(tmp_path / "crashy.sqlite")
    log.create_topics(TOPICS)
    _copy(uninterrupted, log, ["control", "orders"])
    member_ids = [m.member_id for m in cfg.members]

    def fresh() -> MatcherService:
        return MatcherService(Matcher(securities, member_ids, stp=cfg.stp, band_pct=cfg.band_pct))

    handler, crashes = _run_with_crashes(log, "matcher", MatcherService.inputs, fresh, 7, 997)
    assert crashes >= 3
    for topic in ("executions", "trades", "bbo"):
        assert _values(log, topic) == _values(uninterrupted, topic), topic
    assert _dlq_from(log, {"orders", "control"}) == _dlq_from(uninterrupted, {"orders", "control"})
    assert handler.matcher.snapshot() == result.books_snapshot()
    log.close()


def test_bar_builder_recovers_exactly(session, tmp_path):
    uninterrupted, cfg, _ = session
    log = SqliteEventLog(tmp_path / "crashy.sqlite")
    log.create_topics(TOPICS)
    _copy(uninterrupted, log, ["control", "trades"])

    def fresh() -> BarService:
        return BarService(BarBuilder(grace_ns=cfg.grace_ns))

    _, crashes = _run_with_crashes(log, "bars", BarService.inputs, fresh, 3, 211)
    assert crashes >= 3
    for interval in ("1s", "1m", "3m", "5m", "15m"):
        topic = f"bars.{interval}"
        assert _values(log, topic) == _values(uninterrupted, topic), topic
    assert _dlq_from(log, {"trades"}) == _dlq_from(uninterrupted, {"trades"})
    log.close()
