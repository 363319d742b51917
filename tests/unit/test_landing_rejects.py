"""A day always lands: records landing cannot take go to raw.dlq with the reason, the rest lands."""

from __future__ import annotations

from datetime import date

import pytest
from pyiceberg.expressions import EqualTo

from lake.catalog import LakeConfig, open_catalog
from lake.raw_landing import land_day
from lake.tables import PARTITION_COLUMN
from streaming.bars import BarBuilder
from streaming.events import Bar, NewOrder, SessionControl, decode, encode
from streaming.matcher import Matcher
from streaming.refdata import load_securities
from streaming.services.handlers import BarService, MatcherService
from streaming.topics import TOPICS
from streaming.transport.base import Output
from streaming.transport.sqlite import SqliteEventLog
from tests.support.hostile import corpus

pytestmark = pytest.mark.unit

DAY = date(2026, 11, 20)


def _rows(catalog, identifier: str) -> list[dict]:
    scan = catalog.load_table(identifier).scan(row_filter=EqualTo(PARTITION_COLUMN, DAY))
    return scan.to_arrow().to_pylist()


def test_poison_on_every_topic_still_lands_the_day(tmp_path):
    securities = load_securities()
    ref = next(s for s in securities if s.symbol == "AAPL").reference_price
    log = SqliteEventLog(tmp_path / "day.sqlite")
    log.create_topics(TOPICS)
    log.produce([Output("control", None, encode(SessionControl("open", 1)), 1)])
    hostile = corpus(securities, per_category=2)
    log.produce([Output("orders", "AAPL", line, 10 + i) for i, line in enumerate(hostile.mixed)])
    # what a broken producer could write beside the live core: a bar beyond 64 bits
    huge = Bar("AAPL", "1m", 0, 60, ref, ref, ref, ref, 2**63, 2**64, 1.0, 1)
    log.produce([Output("bars.1m", "AAPL", encode(huge), 60), Output("bbo", "AAPL", b"\xff", 61)])
    log.produce([Output("control", None, encode(SessionControl("close", 10**6)), 10**6)])
    matcher = MatcherService(Matcher(securities, None, band_pct=None))
    while log.step("matcher", MatcherService.inputs, matcher):
        pass
    bars = BarService(BarBuilder(grace_ns=0))
    while log.step("bars", BarService.inputs, bars):
        pass

    catalog = open_catalog(LakeConfig.local("t", tmp_path / "cat.sqlite", tmp_path / "wh"))
    published = land_day(log, catalog, DAY)

    assert set(published) >= {"raw.orders", "raw.executions", "raw.trades", "raw.bars", "raw.dlq"}
    orders = _rows(catalog, "raw.orders")
    assert len(orders) > len(hostile.valid)  # the valid orders and every representable reject
    assert len(_rows(catalog, "raw.trades")) > 0
    letters = _rows(catalog, "raw.dlq")
    landing = [d for d in letters if d["reason"].startswith("landing: ")]
    reasons = " ".join(d["reason"] for d in landing)
    assert "does not fit raw.orders" in reasons  # qty 2^63, order id 10^39 ...
    assert "does not fit raw.executions" in reasons  # their rejects echo them
    assert "does not fit raw.bars" in reasons and "undecodable" in reasons
    bbo_letter = next(d for d in landing if d["source_topic"] == "bbo")
    assert bbo_letter["payload"] == b"\xff" and bbo_letter["offset"] is not None
    assert any(d["source_topic"] == "bars.1m" for d in landing)
    # nothing vanished: every order record is landed or dead-lettered by landing
    from_orders = [d for d in landing if d["source_topic"] == "orders"]
    assert len(orders) + len(from_orders) == len(hostile.mixed)
    log.close()


def test_a_clean_day_has_no_landing_letters(tmp_path):
    log = SqliteEventLog(tmp_path / "day.sqlite")
    log.create_topics(TOPICS)
    securities = load_securities()
    ref = next(s for s in securities if s.symbol == "AAPL").reference_price
    log.produce([Output("control", None, encode(SessionControl("open", 1)), 1)])
    log.produce(
        [Output("orders", "AAPL", encode(NewOrder(1, "A", "AAPL", "buy", 1, ref, ts=5)), 5)]
    )
    matcher = MatcherService(Matcher(securities, None, band_pct=None))
    while log.step("matcher", MatcherService.inputs, matcher):
        pass
    catalog = open_catalog(LakeConfig.local("t", tmp_path / "cat.sqlite", tmp_path / "wh"))
    land_day(log, catalog, DAY)
    assert _rows(catalog, "raw.dlq") == []
    assert len(_rows(catalog, "raw.orders")) == 1


def test_control_lands_once_per_event_as_the_audit_table(tmp_path):
    """Control is broadcast to every partition (each shard needs it); the audit table holds
    each event once, with who did it and why, and the matcher applied the operator's actions."""
    from streaming.transport.base import broadcast

    securities = load_securities()
    ref = next(s for s in securities if s.symbol == "AAPL").reference_price
    log = SqliteEventLog(tmp_path / "day.sqlite")
    log.create_topics(TOPICS, partitions=4)
    actions = [
        SessionControl("open", 1, actor="calendar", reason="the trading calendar"),
        SessionControl("halt", 5, "AAPL", actor="ops", reason="news pending"),
        SessionControl("kill", 6, None, actor="ops", reason="runaway algo", member="M01"),
        SessionControl(
            "reference",
            7,
            "AAPL",
            actor="ops",
            reason="new close",
            reference_price=ref,
            band_pct=5.0,
        ),
        SessionControl("resume", 8, "AAPL", actor="ops", reason="news out"),
        SessionControl("close", 10**6, actor="calendar", reason="the trading calendar"),
    ]
    log.produce([Output("orders", "AAPL", encode(NewOrder(1, "M01", "AAPL", "buy", 1, ref)), 2)])
    for ctl in actions:
        log.produce(broadcast("control", encode(ctl), ctl.ts, log.partitions("control")))
    catalog = open_catalog(LakeConfig.local("t", tmp_path / "cat.sqlite", tmp_path / "wh"))
    land_day(log, catalog, DAY)
    rows = sorted(_rows(catalog, "raw.control"), key=lambda r: r["ts"])
    assert len(rows) == len(actions)
    assert [(r["action"], r["symbol"], r["actor"], r["reason"], r["member"]) for r in rows] == [
        (c.action, c.symbol, c.actor, c.reason, c.member) for c in actions
    ]
    assert rows[3]["reference_price"] == ref and rows[3]["band_pct"] == 5.0


def test_control_on_the_orders_topic_is_a_dead_letter_not_an_action(tmp_path):
    """Only the control topic (written by the platform) moves the market: a suspend or a
    kill switch arriving on orders, which gateways and members write, is dead-lettered."""
    securities = load_securities()
    log = SqliteEventLog(tmp_path / "day.sqlite")
    log.create_topics(TOPICS)
    log.produce([Output("control", None, encode(SessionControl("open", 1)), 1)])
    ref = next(s for s in securities if s.symbol == "AAPL").reference_price
    log.produce([
        Output("orders", "AAPL", encode(NewOrder(1, "USR01", "AAPL", "buy", 1, ref, ts=2)), 2),
        Output("orders", None, encode(SessionControl("suspend", 3)), 3),
        Output("orders", None, encode(SessionControl("kill", 4, member="USR01")), 4),
        Output("control", None, encode(NewOrder(2, "USR02", "AAPL", "sell", 1, ref, ts=5)), 5),
    ])  # fmt: skip
    matcher = MatcherService(Matcher(securities, None))
    while log.step("matcher", MatcherService.inputs, matcher):
        pass
    assert matcher.matcher.books["AAPL"].status == "open"
    assert [o.order_id for o in matcher.matcher.books["AAPL"].resting()] == [1]  # not killed
    letters = [decode(r.value) for r in log.read("dlq", 0)]
    assert sorted(d.reason for d in letters) == [  # type: ignore[union-attr]
        "unexpected_event: NewOrder on control",
        "unexpected_event: SessionControl on orders",
        "unexpected_event: SessionControl on orders",
    ]
