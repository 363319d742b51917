"""Behaviour of the matching engine, asserting the exact reports and trades.

Prices are in units of 1/10,000 (AAPL: tick 100 = 0.01, lot 1, reference
1_954_000; KO: lot 10). Timestamps are small integers, increasing per request.
"""

from __future__ import annotations

from typing import Any

import pytest

from streaming.events import (
    AmendOrder,
    CancelOrder,
    Event,
    ExecutionReport,
    NewOrder,
    SessionControl,
    Trade,
)
from streaming.limits import BOUNDS_REASONS
from streaming.matcher import REJECT_REASONS, STP_MODES, Matcher
from streaming.refdata import load_securities
from streaming.session import SessionError

pytestmark = pytest.mark.unit

SECURITIES = load_securities()
SEC = {s.symbol: s for s in SECURITIES}
P = SEC["AAPL"].reference_price  # 195.40
T = SEC["AAPL"].tick  # 0.01
MEMBERS = ("A", "B", "C", "D")


# -- helpers -------------------------------------------------------------------
def matcher(stp: Any = "cancel_resting", status: Any = "open", **kw: Any) -> Matcher:
    return Matcher(SECURITIES, MEMBERS, stp=stp, status=status, **kw)


def new(
    oid: int,
    member: str,
    side: Any,
    qty: Any,
    price: Any = None,
    *,
    symbol: str = "AAPL",
    order_type: Any = None,
    tif: Any = "day",
    ts: int | None = None,
) -> NewOrder:
    if order_type is None:
        order_type = "market" if price is None else "limit"
    return NewOrder(
        oid, member, symbol, side, qty, price, order_type, tif, oid if ts is None else ts
    )


def report(
    seq: int,
    oid: int,
    member: str,
    side: Any,
    exec_type: str,
    *,
    ts: int,
    status: str | None = None,
    request: Any = None,
    reason: str | None = None,
    price: Any = None,
    last_qty: int = 0,
    last_price: int | None = None,
    leaves: int = 0,
    cum: int = 0,
    trade_id: int | None = None,
    symbol: str = "AAPL",
) -> ExecutionReport:
    return ExecutionReport(
        exec_id=seq,
        order_id=oid,
        member=member,
        symbol=symbol,
        side=side,
        exec_type=exec_type,
        status=status or exec_type,
        request=request,
        reason=reason,
        price=price,
        last_qty=last_qty,
        last_price=last_price,
        leaves_qty=leaves,
        cum_qty=cum,
        trade_id=trade_id,
        ts=ts,
    )


def ack(seq: int, oid: int, member: str, side: str, qty: int, price: int | None, ts: int,
        symbol: str = "AAPL") -> ExecutionReport:  # fmt: skip
    """The ``new`` acknowledgement."""
    return report(seq, oid, member, side, "new", request="new", price=price, leaves=qty, ts=ts,
                  symbol=symbol)  # fmt: skip


def fill(seq: int, oid: int, member: str, side: str, price: int | None, qty: int, at: int,
         leaves: int, cum: int, tid: int, ts: int, symbol: str = "AAPL") -> ExecutionReport:  # fmt: skip
    """A ``trade`` report: ``qty`` at price ``at``; ``price`` is the order's own limit."""
    status = "partially_filled" if leaves else "filled"
    return report(seq, oid, member, side, "trade", status=status, price=price, last_qty=qty,
                  last_price=at, leaves=leaves, cum=cum, trade_id=tid, ts=ts, symbol=symbol)  # fmt: skip


def trade(tid: int, price: int, qty: int, aggressor: str, buy: tuple[int, str],
          sell: tuple[int, str], ts: int, symbol: str = "AAPL") -> Trade:  # fmt: skip
    """A ``Trade``; ``buy``/``sell`` are (order id, member)."""
    return Trade(tid, symbol, price, qty, aggressor, buy[0], sell[0], buy[1], sell[1], ts)


def expired(seq: int, oid: int, member: str, side: str, price: int | None, cum: int,
            reason: str, ts: int, symbol: str = "AAPL") -> ExecutionReport:  # fmt: skip
    return report(seq, oid, member, side, "expired", reason=reason, price=price, cum=cum, ts=ts,
                  symbol=symbol)  # fmt: skip


def canceled(seq: int, oid: int, member: str, side: str, price: int, cum: int, ts: int, *,
             request: Any = "cancel", reason: str | None = None) -> ExecutionReport:  # fmt: skip
    return report(seq, oid, member, side, "canceled", request=request, reason=reason, price=price,
                  cum=cum, ts=ts)  # fmt: skip


def replaced(seq: int, oid: int, member: str, side: str, price: int, leaves: int, cum: int,
             ts: int) -> ExecutionReport:  # fmt: skip
    return report(seq, oid, member, side, "replaced", request="amend", price=price,
                  leaves=leaves, cum=cum, ts=ts)  # fmt: skip


def rejected(seq: int, oid: int, member: str, side: Any, request: str, reason: str,
             price: Any, ts: int, symbol: str = "AAPL") -> ExecutionReport:  # fmt: skip
    return report(seq, oid, member, side, "rejected", request=request, reason=reason,
                  price=price, ts=ts, symbol=symbol)  # fmt: skip


def resting(m: Matcher, symbol: str = "AAPL") -> list[tuple[int, str, int, int, int]]:
    """(order_id, side, price, qty, cum) of live orders, bids best first then asks."""
    return [(o.order_id, o.side, o.price, o.qty, o.cum) for o in m.books[symbol].resting()]


def levels(m: Matcher, symbol: str = "AAPL") -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    return m.books[symbol].depth(100)


def run(m: Matcher, *requests: Any) -> list[Event]:
    out: list[Event] = []
    for r in requests:
        m.process(r, out)
    return out


# -- price-time priority, partial fills, sweeping ----------------------------------
def test_price_time_priority_resting_price_partial_fill_and_sweep() -> None:
    m = matcher()
    assert m.submit(new(1, "A", "sell", 5, P + T)) == [ack(1, 1, "A", "sell", 5, P + T, 1)]
    assert m.submit(new(2, "B", "sell", 5, P)) == [ack(2, 2, "B", "sell", 5, P, 2)]
    assert m.submit(new(3, "C", "sell", 5, P)) == [ack(3, 3, "C", "sell", 5, P, 3)]
    assert m.submit(new(4, "A", "sell", 5, P + 2 * T)) == [ack(4, 4, "A", "sell", 5, P + 2 * T, 4)]
    # a buy limit at P+2T sweeps P (B then C, time priority) and part of P+T
    out = m.submit(new(5, "D", "buy", 12, P + 2 * T))
    assert out == [
        ack(5, 5, "D", "buy", 12, P + 2 * T, 5),
        trade(1, P, 5, "buy", (5, "D"), (2, "B"), 5),
        fill(6, 5, "D", "buy", P + 2 * T, 5, P, 7, 5, 1, 5),
        fill(7, 2, "B", "sell", P, 5, P, 0, 5, 1, 5),
        trade(2, P, 5, "buy", (5, "D"), (3, "C"), 5),
        fill(8, 5, "D", "buy", P + 2 * T, 5, P, 2, 10, 2, 5),
        fill(9, 3, "C", "sell", P, 5, P, 0, 5, 2, 5),
        trade(3, P + T, 2, "buy", (5, "D"), (1, "A"), 5),
        fill(10, 5, "D", "buy", P + 2 * T, 2, P + T, 0, 12, 3, 5),
        fill(11, 1, "A", "sell", P + T, 2, P + T, 3, 2, 3, 5),
    ]
    assert resting(m) == [(1, "sell", P + T, 5, 2), (4, "sell", P + 2 * T, 5, 0)]
    assert levels(m) == ([], [(P + T, 3), (P + 2 * T, 5)])


def test_trade_at_resting_price_for_sell_aggressor() -> None:
    m = matcher()
    run(m, new(1, "A", "buy", 4, P), new(2, "B", "buy", 4, P + 3 * T))
    out = m.submit(new(3, "C", "sell", 6, P - 5 * T))
    assert out == [
        ack(3, 3, "C", "sell", 6, P - 5 * T, 3),
        trade(1, P + 3 * T, 4, "sell", (2, "B"), (3, "C"), 3),
        fill(4, 3, "C", "sell", P - 5 * T, 4, P + 3 * T, 2, 4, 1, 3),
        fill(5, 2, "B", "buy", P + 3 * T, 4, P + 3 * T, 0, 4, 1, 3),
        trade(2, P, 2, "sell", (1, "A"), (3, "C"), 3),
        fill(6, 3, "C", "sell", P - 5 * T, 2, P, 0, 6, 2, 3),
        fill(7, 1, "A", "buy", P, 2, P, 2, 2, 2, 3),
    ]
    assert resting(m) == [(1, "buy", P, 4, 2)]


def test_partially_filled_aggressor_rests_at_its_limit() -> None:
    m = matcher()
    run(m, new(1, "A", "sell", 3, P))
    out = m.submit(new(2, "B", "buy", 10, P + T))
    assert out == [
        ack(2, 2, "B", "buy", 10, P + T, 2),
        trade(1, P, 3, "buy", (2, "B"), (1, "A"), 2),
        fill(3, 2, "B", "buy", P + T, 3, P, 7, 3, 1, 2),
        fill(4, 1, "A", "sell", P, 3, P, 0, 3, 1, 2),
    ]
    assert resting(m) == [(2, "buy", P + T, 10, 3)]
    assert levels(m) == ([(P + T, 7)], [])


def test_non_crossing_limit_does_not_trade() -> None:
    m = matcher()
    run(m, new(1, "A", "sell", 3, P + T))
    assert m.submit(new(2, "B", "buy", 3, P)) == [ack(2, 2, "B", "buy", 3, P, 2)]
    assert levels(m) == ([(P, 3)], [(P + T, 3)])


# -- time in force and order types ------------------------------------------------
def test_limit_day_rests() -> None:
    m = matcher()
    assert m.submit(new(1, "A", "buy", 7, P, tif="day")) == [ack(1, 1, "A", "buy", 7, P, 1)]
    assert resting(m) == [(1, "buy", P, 7, 0)]
    assert m.books["AAPL"].top(0).bid_price == P


def test_ioc_fills_then_expires_remainder() -> None:
    m = matcher()
    run(m, new(1, "A", "sell", 5, P))
    out = m.submit(new(2, "B", "buy", 8, P + T, tif="ioc"))
    assert out == [
        ack(2, 2, "B", "buy", 8, P + T, 2),
        trade(1, P, 5, "buy", (2, "B"), (1, "A"), 2),
        fill(3, 2, "B", "buy", P + T, 5, P, 3, 5, 1, 2),
        fill(4, 1, "A", "sell", P, 5, P, 0, 5, 1, 2),
        expired(5, 2, "B", "buy", P + T, 5, "unfilled_remainder", 2),
    ]
    assert resting(m) == []


def test_ioc_without_liquidity_expires_whole() -> None:
    m = matcher()
    run(m, new(1, "A", "sell", 5, P + T))
    out = m.submit(new(2, "B", "buy", 8, P, tif="ioc"))
    assert out == [
        ack(2, 2, "B", "buy", 8, P, 2),
        expired(3, 2, "B", "buy", P, 0, "unfilled_remainder", 2),
    ]
    assert resting(m) == [(1, "sell", P + T, 5, 0)]


def test_ioc_fully_filled_has_no_expiry() -> None:
    m = matcher()
    run(m, new(1, "A", "sell", 5, P))
    out = m.submit(new(2, "B", "buy", 5, P, tif="ioc"))
    assert [type(e).__name__ for e in out] == [
        "ExecutionReport",
        "Trade",
        "ExecutionReport",
        "ExecutionReport",
    ]
    assert out[2] == fill(3, 2, "B", "buy", P, 5, P, 0, 5, 1, 2)


def test_fok_not_fillable_expires_without_trading_or_changing_book() -> None:
    m = matcher()
    run(m, new(1, "A", "sell", 5, P), new(2, "B", "sell", 3, P + T))
    before = m.snapshot()
    out = m.submit(new(3, "C", "buy", 9, P + T, tif="fok"))
    assert out == [
        ack(3, 3, "C", "buy", 9, P + T, 3),
        expired(4, 3, "C", "buy", P + T, 0, "fok_not_fillable", 3),
    ]
    after = m.snapshot()
    assert after["AAPL"]["orders"] == before["AAPL"]["orders"]
    assert after["AAPL"]["trade_seq"] == before["AAPL"]["trade_seq"] == 0
    # enough quantity in the book, but not within the limit
    out = m.submit(new(4, "C", "buy", 8, P, tif="fok"))
    assert out == [
        ack(5, 4, "C", "buy", 8, P, 4),
        expired(6, 4, "C", "buy", P, 0, "fok_not_fillable", 4),
    ]
    assert m.snapshot()["AAPL"]["orders"] == before["AAPL"]["orders"]


def test_fok_fills_fully_across_levels() -> None:
    m = matcher()
    run(m, new(1, "A", "sell", 5, P), new(2, "B", "sell", 3, P + T))
    out = m.submit(new(3, "C", "buy", 8, P + T, tif="fok"))
    assert out == [
        ack(3, 3, "C", "buy", 8, P + T, 3),
        trade(1, P, 5, "buy", (3, "C"), (1, "A"), 3),
        fill(4, 3, "C", "buy", P + T, 5, P, 3, 5, 1, 3),
        fill(5, 1, "A", "sell", P, 5, P, 0, 5, 1, 3),
        trade(2, P + T, 3, "buy", (3, "C"), (2, "B"), 3),
        fill(6, 3, "C", "buy", P + T, 3, P + T, 0, 8, 2, 3),
        fill(7, 2, "B", "sell", P + T, 3, P + T, 0, 3, 2, 3),
    ]
    assert resting(m) == []


def test_market_fok() -> None:
    m = matcher()
    run(m, new(1, "A", "buy", 5, P))
    out = m.submit(new(2, "B", "sell", 6, None, tif="fok"))
    assert out == [
        ack(2, 2, "B", "sell", 6, None, 2),
        expired(3, 2, "B", "sell", None, 0, "fok_not_fillable", 2),
    ]
    out = m.submit(new(3, "B", "sell", 5, None, tif="fok"))
    assert out == [
        ack(4, 3, "B", "sell", 5, None, 3),
        trade(1, P, 5, "sell", (1, "A"), (3, "B"), 3),
        fill(5, 3, "B", "sell", None, 5, P, 0, 5, 1, 3),
        fill(6, 1, "A", "buy", P, 5, P, 0, 5, 1, 3),
    ]


@pytest.mark.parametrize("tif", ["day", "ioc"])
def test_market_order_never_rests(tif: str) -> None:
    m = matcher()
    run(m, new(1, "A", "sell", 5, P), new(2, "B", "sell", 3, P + 50 * T))
    out = m.submit(new(3, "C", "buy", 10, None, tif=tif))
    assert out == [
        ack(3, 3, "C", "buy", 10, None, 3),
        trade(1, P, 5, "buy", (3, "C"), (1, "A"), 3),
        fill(4, 3, "C", "buy", None, 5, P, 5, 5, 1, 3),
        fill(5, 1, "A", "sell", P, 5, P, 0, 5, 1, 3),
        trade(2, P + 50 * T, 3, "buy", (3, "C"), (2, "B"), 3),
        fill(6, 3, "C", "buy", None, 3, P + 50 * T, 2, 8, 2, 3),
        fill(7, 2, "B", "sell", P + 50 * T, 3, P + 50 * T, 0, 3, 2, 3),
        expired(8, 3, "C", "buy", None, 8, "unfilled_remainder", 3),
    ]
    assert resting(m) == []
    # into an empty book: accepted, then expires whole
    out = m.submit(new(4, "C", "sell", 2, None, tif=tif))
    assert out == [
        ack(9, 4, "C", "sell", 2, None, 4),
        expired(10, 4, "C", "sell", None, 0, "unfilled_remainder", 4),
    ]
    assert resting(m) == []


# -- cancel ---------------------------------------------------------------------------
def test_cancel_then_unknown_order_and_not_owner() -> None:
    m = matcher()
    run(m, new(1, "A", "buy", 5, P), new(2, "B", "sell", 2, P))  # 1 is partially filled
    assert m.submit(CancelOrder(1, "B", "AAPL", 3)) == [
        rejected(5, 1, "B", "buy", "cancel", "not_owner", P, 3)
    ]
    assert resting(m) == [(1, "buy", P, 5, 2)]
    assert m.submit(CancelOrder(1, "A", "AAPL", 4)) == [canceled(6, 1, "A", "buy", P, 2, 4)]
    assert resting(m) == []
    assert levels(m) == ([], [])
    assert m.submit(CancelOrder(1, "A", "AAPL", 5)) == [
        rejected(7, 1, "A", None, "cancel", "unknown_order", None, 5)
    ]


def test_cancel_filled_order_is_unknown() -> None:
    m = matcher()
    run(m, new(1, "A", "buy", 5, P), new(2, "B", "sell", 5, P))
    assert m.submit(CancelOrder(1, "A", "AAPL", 3)) == [
        rejected(5, 1, "A", None, "cancel", "unknown_order", None, 3)
    ]


def test_cancel_middle_of_queue_keeps_others_in_order() -> None:
    m = matcher()
    run(m, *(new(i, "ABC"[i % 3], "sell", 1, P) for i in range(1, 6)))
    run(m, CancelOrder(3, "A", "AAPL", 10))
    assert levels(m) == ([], [(P, 4)])
    out = m.submit(new(6, "D", "buy", 4, P, ts=11))
    assert [e.sell_order_id for e in out if isinstance(e, Trade)] == [1, 2, 4, 5]
    assert levels(m) == ([], [])


def test_many_cancels_at_one_level_compact_lazily() -> None:
    m = matcher()
    run(m, *(new(i, "A", "buy", 1, P) for i in range(1, 101)))
    run(m, *(CancelOrder(i, "A", "AAPL", 200 + i) for i in range(1, 101) if i % 5))
    book = m.books["AAPL"]
    assert book.bids[P].qty == 20
    assert len(book.bids[P].queue) < 100  # compacted at least once
    assert [o.order_id for o in book.resting()] == list(range(5, 101, 5))
    out = m.submit(new(1000, "B", "sell", 20, P, ts=1000))
    assert [e.buy_order_id for e in out if isinstance(e, Trade)] == list(range(5, 101, 5))
    assert book.bids == {}


# -- amend ------------------------------------------------------------------------------
def test_amend_quantity_down_keeps_priority() -> None:
    m = matcher()
    run(m, new(1, "A", "sell", 10, P), new(2, "B", "sell", 10, P))
    assert m.submit(AmendOrder(1, "A", "AAPL", 4, None, 10)) == [
        replaced(3, 1, "A", "sell", P, 4, 0, 10)
    ]
    assert levels(m) == ([], [(P, 14)])
    out = m.submit(new(3, "C", "buy", 6, P, ts=11))
    assert out == [
        ack(4, 3, "C", "buy", 6, P, 11),
        trade(1, P, 4, "buy", (3, "C"), (1, "A"), 11),
        fill(5, 3, "C", "buy", P, 4, P, 2, 4, 1, 11),
        fill(6, 1, "A", "sell", P, 4, P, 0, 4, 1, 11),
        trade(2, P, 2, "buy", (3, "C"), (2, "B"), 11),
        fill(7, 3, "C", "buy", P, 2, P, 0, 6, 2, 11),
        fill(8, 2, "B", "sell", P, 2, P, 8, 2, 2, 11),
    ]


def test_amend_quantity_down_with_explicit_same_price_keeps_priority() -> None:
    m = matcher()
    run(m, new(1, "A", "sell", 10, P), new(2, "B", "sell", 10, P))
    assert m.submit(AmendOrder(1, "A", "AAPL", 4, P, 10)) == [
        replaced(3, 1, "A", "sell", P, 4, 0, 10)
    ]
    assert resting(m) == [(1, "sell", P, 4, 0), (2, "sell", P, 10, 0)]
    assert m.books["AAPL"].orders[1].ts == 1  # priority timestamp unchanged


def test_amend_quantity_up_loses_priority() -> None:
    m = matcher()
    run(m, new(1, "A", "sell", 10, P), new(2, "B", "sell", 10, P))
    assert m.submit(AmendOrder(1, "A", "AAPL", 12, None, 10)) == [
        replaced(3, 1, "A", "sell", P, 12, 0, 10)
    ]
    assert resting(m) == [(2, "sell", P, 10, 0), (1, "sell", P, 12, 0)]
    assert levels(m) == ([], [(P, 22)])
    assert m.books["AAPL"].orders[1].ts == 10  # priority timestamp is the amend's
    out = m.submit(new(3, "C", "buy", 11, P, ts=11))
    assert out == [
        ack(4, 3, "C", "buy", 11, P, 11),
        trade(1, P, 10, "buy", (3, "C"), (2, "B"), 11),
        fill(5, 3, "C", "buy", P, 10, P, 1, 10, 1, 11),
        fill(6, 2, "B", "sell", P, 10, P, 0, 10, 1, 11),
        trade(2, P, 1, "buy", (3, "C"), (1, "A"), 11),
        fill(7, 3, "C", "buy", P, 1, P, 0, 11, 2, 11),
        fill(8, 1, "A", "sell", P, 1, P, 11, 1, 2, 11),
    ]


def test_amend_price_change_loses_priority() -> None:
    m = matcher()
    run(m, new(1, "A", "sell", 10, P + T), new(2, "B", "sell", 10, P))
    assert m.submit(AmendOrder(1, "A", "AAPL", 10, P, 10)) == [
        replaced(3, 1, "A", "sell", P, 10, 0, 10)
    ]
    assert resting(m) == [(2, "sell", P, 10, 0), (1, "sell", P, 10, 0)]
    assert levels(m) == ([], [(P, 20)])  # the old level is gone
    out = m.submit(new(3, "C", "buy", 10, P, ts=11))
    assert [(e.sell_order_id, e.qty) for e in out if isinstance(e, Trade)] == [(2, 10)]
    # a price change with a smaller quantity loses priority too
    run(m, new(4, "B", "sell", 5, P + T, ts=12))
    assert m.submit(AmendOrder(1, "A", "AAPL", 8, P + T, 13)) == [
        replaced(8, 1, "A", "sell", P + T, 8, 0, 13)
    ]
    assert resting(m) == [(4, "sell", P + T, 5, 0), (1, "sell", P + T, 8, 0)]


def test_amend_to_crossing_price_trades_and_rests_remainder() -> None:
    m = matcher()
    run(m, new(1, "B", "buy", 5, P), new(2, "A", "sell", 10, P + T))
    out = m.submit(AmendOrder(2, "A", "AAPL", 10, P, 10))
    assert out == [
        replaced(3, 2, "A", "sell", P, 10, 0, 10),
        trade(1, P, 5, "sell", (1, "B"), (2, "A"), 10),
        fill(4, 2, "A", "sell", P, 5, P, 5, 5, 1, 10),
        fill(5, 1, "B", "buy", P, 5, P, 0, 5, 1, 10),
    ]
    assert resting(m) == [(2, "sell", P, 10, 5)]
    assert levels(m) == ([], [(P, 5)])


def test_amend_partially_filled_order() -> None:
    m = matcher()
    run(m, new(1, "A", "sell", 10, P), new(2, "B", "buy", 4, P))  # seq 1..5
    assert resting(m) == [(1, "sell", P, 10, 4)]
    for q in (4, 3):
        assert m.submit(AmendOrder(1, "A", "AAPL", q, None, 10)) == [
            rejected(
                m.books["AAPL"].exec_seq, 1, "A", "sell", "amend", "qty_not_above_filled", None, 10
            )
        ]
    assert m.submit(AmendOrder(1, "A", "AAPL", 10, None, 11)) == [
        rejected(7, 1, "A", "sell", "amend", "amend_no_change", None, 11)
    ]
    assert m.submit(AmendOrder(1, "A", "AAPL", 10, P, 12)) == [
        rejected(8, 1, "A", "sell", "amend", "amend_no_change", P, 12)
    ]
    assert m.submit(AmendOrder(1, "A", "AAPL", 6, None, 13)) == [
        replaced(9, 1, "A", "sell", P, 2, 4, 13)
    ]
    assert levels(m) == ([], [(P, 2)])
    assert m.submit(AmendOrder(1, "A", "AAPL", 9, P + T, 14)) == [
        replaced(10, 1, "A", "sell", P + T, 5, 4, 14)
    ]
    assert resting(m) == [(1, "sell", P + T, 9, 4)]
    assert levels(m) == ([], [(P + T, 5)])
    # the amended order keeps its cumulative quantity when it trades again
    out = m.submit(new(3, "C", "buy", 5, P + T, ts=15))
    assert out[-1] == fill(13, 1, "A", "sell", P + T, 5, P + T, 0, 9, 2, 15)
    assert resting(m) == []


def test_amend_rejections_leave_order_unchanged() -> None:
    m = matcher()
    run(m, new(1, "A", "buy", 10, P))
    before = m.snapshot()
    assert m.submit(AmendOrder(1, "B", "AAPL", 5, None, 3))[0].reason == "not_owner"
    assert m.submit(AmendOrder(9, "A", "AAPL", 5, None, 4))[0].reason == "unknown_order"
    after = m.snapshot()
    assert after["AAPL"]["orders"] == before["AAPL"]["orders"]


# -- self-trade prevention --------------------------------------------------------------
def _stp_book(stp: str) -> Matcher:
    m = matcher(stp=stp)
    run(m, new(1, "A", "sell", 5, P), new(2, "B", "sell", 5, P))
    return m


def test_stp_cancel_resting_is_default() -> None:
    assert Matcher(SECURITIES).stp == "cancel_resting"
    with pytest.raises(ValueError):
        Matcher(SECURITIES, stp="bogus")


def test_stp_cancel_resting() -> None:
    m = _stp_book("cancel_resting")
    out = m.submit(new(3, "A", "buy", 8, P))
    assert out == [
        ack(3, 3, "A", "buy", 8, P, 3),
        canceled(4, 1, "A", "sell", P, 0, 3, request=None, reason="self_trade_prevention"),
        trade(1, P, 5, "buy", (3, "A"), (2, "B"), 3),
        fill(5, 3, "A", "buy", P, 5, P, 3, 5, 1, 3),
        fill(6, 2, "B", "sell", P, 5, P, 0, 5, 1, 3),
    ]
    assert resting(m) == [(3, "buy", P, 8, 5)]
    assert levels(m) == ([(P, 3)], [])


def test_stp_cancel_aggressor() -> None:
    m = _stp_book("cancel_aggressor")
    before = m.snapshot()["AAPL"]["orders"]
    out = m.submit(new(3, "A", "buy", 8, P))
    assert out == [
        ack(3, 3, "A", "buy", 8, P, 3),
        expired(4, 3, "A", "buy", P, 0, "self_trade_prevention", 3),
    ]
    assert m.snapshot()["AAPL"]["orders"] == before
    # trades before meeting its own order are kept; only the remainder is cancelled
    m = matcher(stp="cancel_aggressor")
    run(m, new(1, "B", "sell", 2, P), new(2, "A", "sell", 5, P))
    out = m.submit(new(3, "A", "buy", 8, P))
    assert out == [
        ack(3, 3, "A", "buy", 8, P, 3),
        trade(1, P, 2, "buy", (3, "A"), (1, "B"), 3),
        fill(4, 3, "A", "buy", P, 2, P, 6, 2, 1, 3),
        fill(5, 1, "B", "sell", P, 2, P, 0, 2, 1, 3),
        expired(6, 3, "A", "buy", P, 2, "self_trade_prevention", 3),
    ]
    assert resting(m) == [(2, "sell", P, 5, 0)]


def test_stp_cancel_both() -> None:
    m = _stp_book("cancel_both")
    out = m.submit(new(3, "A", "buy", 8, P))
    assert out == [
        ack(3, 3, "A", "buy", 8, P, 3),
        canceled(4, 1, "A", "sell", P, 0, 3, request=None, reason="self_trade_prevention"),
        expired(5, 3, "A", "buy", P, 0, "self_trade_prevention", 3),
    ]
    assert resting(m) == [(2, "sell", P, 5, 0)]
    assert levels(m) == ([], [(P, 5)])


def test_stp_cancel_both_leaves_no_empty_level() -> None:
    m = matcher(stp="cancel_both")
    run(m, new(1, "A", "sell", 5, P), new(2, "B", "sell", 5, P + T))
    out = m.submit(new(3, "A", "buy", 8, P + T))
    assert out == [
        ack(3, 3, "A", "buy", 8, P + T, 3),
        canceled(4, 1, "A", "sell", P, 0, 3, request=None, reason="self_trade_prevention"),
        expired(5, 3, "A", "buy", P + T, 0, "self_trade_prevention", 3),
    ]
    book = m.books["AAPL"]
    assert levels(m) == ([], [(P + T, 5)])
    assert book.best_ask() == P + T
    assert book.touch() == (None, 0, P + T, 5)


def test_stp_none_trades_with_itself() -> None:
    m = _stp_book("none")
    out = m.submit(new(3, "A", "buy", 8, P))
    assert out == [
        ack(3, 3, "A", "buy", 8, P, 3),
        trade(1, P, 5, "buy", (3, "A"), (1, "A"), 3),
        fill(4, 3, "A", "buy", P, 5, P, 3, 5, 1, 3),
        fill(5, 1, "A", "sell", P, 5, P, 0, 5, 1, 3),
        trade(2, P, 3, "buy", (3, "A"), (2, "B"), 3),
        fill(6, 3, "A", "buy", P, 3, P, 0, 8, 2, 3),
        fill(7, 2, "B", "sell", P, 3, P, 2, 3, 2, 3),
    ]


def test_stp_applies_to_amend_that_crosses() -> None:
    m = matcher(stp="cancel_aggressor")
    run(m, new(1, "A", "buy", 5, P), new(2, "A", "sell", 5, P + T))
    out = m.submit(AmendOrder(2, "A", "AAPL", 5, P, 10))
    assert out == [
        replaced(3, 2, "A", "sell", P, 5, 0, 10),
        expired(4, 2, "A", "sell", P, 0, "self_trade_prevention", 10),
    ]
    assert resting(m) == [(1, "buy", P, 5, 0)]
    assert m.submit(CancelOrder(2, "A", "AAPL", 11))[0].reason == "unknown_order"


def test_stp_does_not_apply_between_members() -> None:
    for stp in STP_MODES:
        m = matcher(stp=stp)
        run(m, new(1, "A", "sell", 5, P))
        out = m.submit(new(2, "B", "buy", 5, P))
        assert [type(e) for e in out] == [ExecutionReport, Trade, ExecutionReport, ExecutionReport]


def test_fok_with_stp_cancel_resting() -> None:
    m = matcher(stp="cancel_resting")
    run(m, new(1, "A", "sell", 5, P), new(2, "B", "sell", 5, P + T))
    before = m.snapshot()["AAPL"]["orders"]
    # own order does not count: only 5 fillable
    out = m.submit(new(3, "A", "buy", 10, P + T, tif="fok"))
    assert out == [
        ack(3, 3, "A", "buy", 10, P + T, 3),
        expired(4, 3, "A", "buy", P + T, 0, "fok_not_fillable", 3),
    ]
    assert m.snapshot()["AAPL"]["orders"] == before  # own order not cancelled
    out = m.submit(new(4, "A", "buy", 5, P + T, tif="fok"))
    assert out == [
        ack(5, 4, "A", "buy", 5, P + T, 4),
        canceled(6, 1, "A", "sell", P, 0, 4, request=None, reason="self_trade_prevention"),
        trade(1, P + T, 5, "buy", (4, "A"), (2, "B"), 4),
        fill(7, 4, "A", "buy", P + T, 5, P + T, 0, 5, 1, 4),
        fill(8, 2, "B", "sell", P + T, 5, P + T, 0, 5, 1, 4),
    ]
    assert resting(m) == []


@pytest.mark.parametrize("stp", ["cancel_aggressor", "cancel_both"])
def test_fok_with_stp_cancelling_the_aggressor(stp: str) -> None:
    m = matcher(stp=stp)
    run(m, new(1, "A", "sell", 5, P), new(2, "B", "sell", 5, P + T))
    before = m.snapshot()["AAPL"]["orders"]
    out = m.submit(new(3, "A", "buy", 5, P + T, tif="fok"))
    assert out == [
        ack(3, 3, "A", "buy", 5, P + T, 3),
        expired(4, 3, "A", "buy", P + T, 0, "fok_not_fillable", 3),
    ]
    assert m.snapshot()["AAPL"]["orders"] == before
    # filled completely before reaching its own order: trades
    m = matcher(stp=stp)
    run(m, new(1, "B", "sell", 5, P), new(2, "A", "sell", 5, P + T))
    out = m.submit(new(3, "A", "buy", 5, P + T, tif="fok"))
    assert out == [
        ack(3, 3, "A", "buy", 5, P + T, 3),
        trade(1, P, 5, "buy", (3, "A"), (1, "B"), 3),
        fill(4, 3, "A", "buy", P + T, 5, P, 0, 5, 1, 3),
        fill(5, 1, "B", "sell", P, 5, P, 0, 5, 1, 3),
    ]
    assert resting(m) == [(2, "sell", P + T, 5, 0)]


def test_fok_with_stp_none_counts_own_orders() -> None:
    m = matcher(stp="none")
    run(m, new(1, "A", "sell", 5, P), new(2, "B", "sell", 5, P + T))
    out = m.submit(new(3, "A", "buy", 10, P + T, tif="fok"))
    trades = [e for e in out if isinstance(e, Trade)]
    assert [(t.sell_order_id, t.sell_member, t.qty) for t in trades] == [(1, "A", 5), (2, "B", 5)]
    assert resting(m) == []


# -- validation -----------------------------------------------------------------------
def test_reject_reasons_are_unique() -> None:
    assert len(set(REJECT_REASONS)) == len(REJECT_REASONS)


def _closed(status: str) -> Matcher:
    m = matcher(status="pre_open")
    actions = {
        "open": ["open"],
        "pre_open": [],
        "suspended": ["open", "suspend"],
        "closed": ["open", "close"],
    }
    for a in actions[status]:
        m.submit(SessionControl(a, 0))
    assert m.books["AAPL"].status == status
    return m


NEW_REJECTS: list[tuple[str, NewOrder, str]] = [
    ("unknown_symbol", new(1, "A", "buy", 1, P, symbol="ZZZZ"), "open"),
    ("unknown_member", new(1, "Z", "buy", 1, P), "open"),
    ("session_pre_open", new(1, "A", "buy", 1, P), "pre_open"),
    ("session_suspended", new(1, "A", "buy", 1, P), "suspended"),
    ("session_closed", new(1, "A", "buy", 1, P), "closed"),
    ("invalid_side", new(1, "A", "hold", 1, P), "open"),
    ("invalid_tif", new(1, "A", "buy", 1, P, tif="gtc"), "open"),
    ("invalid_order_type", new(1, "A", "buy", 1, P, order_type="stop"), "open"),
    ("invalid_quantity", new(1, "A", "buy", 0, P), "open"),
    ("invalid_quantity", new(1, "A", "buy", -5, P), "open"),
    ("invalid_quantity", new(1, "A", "buy", 1.5, P), "open"),
    ("invalid_quantity", new(1, "A", "buy", True, P), "open"),
    ("lot_size", new(1, "A", "buy", 15, SEC["KO"].reference_price, symbol="KO"), "open"),
    ("missing_price", new(1, "A", "buy", 1, None, order_type="limit"), "open"),
    ("unexpected_price", new(1, "A", "buy", 1, P, order_type="market"), "open"),
    ("invalid_price", new(1, "A", "buy", 1, 0), "open"),
    ("invalid_price", new(1, "A", "buy", 1, -P), "open"),
    ("invalid_price", new(1, "A", "buy", 1, 195.4), "open"),
    ("tick_size", new(1, "A", "buy", 1, P + T // 2), "open"),
    ("tick_size", new(1, "A", "buy", 1, SEC["META"].reference_price + 100, symbol="META"), "open"),
    ("price_band", new(1, "A", "buy", 1, P + P // 10 + T), "open"),
    ("price_band", new(1, "A", "sell", 1, P - P // 10 - T), "open"),
]


@pytest.mark.parametrize(
    ("reason", "order", "status"),
    NEW_REJECTS,
    ids=[f"{r[0]}-{i}" for i, r in enumerate(NEW_REJECTS)],
)
def test_new_order_rejects(reason: str, order: NewOrder, status: str) -> None:
    m = _closed(status)
    before = m.snapshot()
    out = m.submit(order)
    seq = 0 if reason == "unknown_symbol" else before.get(order.symbol, {}).get("exec_seq", 0) + 1
    assert out == [
        rejected(
            seq, 1, order.member, order.side, "new", reason, order.price, order.ts, order.symbol
        )
    ]
    after = m.snapshot()
    for sym in after:
        assert after[sym]["orders"] == before[sym]["orders"]
    # a rejected id is not burnt: once valid, it is accepted
    if status == "open" and reason not in ("unknown_symbol",):
        ok = m.submit(
            new(
                1,
                "A",
                "buy",
                SEC[order.symbol].lot,
                SEC[order.symbol].reference_price,
                symbol=order.symbol,
            )
        )
        assert ok[0].exec_type == "new"


def test_band_edges_are_inclusive() -> None:
    m = matcher()
    lo, hi = P - P // 10, P + P // 10
    assert m.submit(new(1, "A", "buy", 1, lo))[0].exec_type == "new"
    assert m.submit(new(2, "A", "sell", 1, hi))[0].exec_type == "new"
    m = matcher(band_pct=None)
    assert m.submit(new(1, "A", "buy", 1, 10 * P))[0].exec_type == "new"


def test_lot_multiple_is_accepted() -> None:
    m = matcher()
    ko = SEC["KO"]
    assert ko.lot == 10
    assert m.submit(new(1, "A", "buy", 30, ko.reference_price, symbol="KO")) == [
        ack(1, 1, "A", "buy", 30, ko.reference_price, 1, symbol="KO")
    ]


def test_open_membership_accepts_any_member() -> None:
    m = Matcher(SECURITIES, None, status="open")
    assert m.submit(new(1, "anyone", "buy", 1, P))[0].exec_type == "new"


def test_duplicate_order_id() -> None:
    m = matcher()
    run(m, new(7, "A", "buy", 1, P), new(8, "B", "sell", 1, P))  # 7 fully filled: id still used
    assert m.submit(new(7, "C", "sell", 2, P + T, ts=9)) == [
        rejected(5, 7, "C", "sell", "new", "duplicate_order_id", P + T, 9)
    ]
    m.submit(CancelOrder(7, "A", "AAPL", 10))
    assert m.submit(new(8, "C", "sell", 2, P + T, ts=11))[0].reason == "duplicate_order_id"
    # ids are per symbol
    msft = SEC["MSFT"].reference_price
    assert m.submit(new(7, "C", "sell", 2, msft, symbol="MSFT"))[0].exec_type == "new"


AMEND_REJECTS: list[tuple[str, AmendOrder]] = [
    ("unknown_symbol", AmendOrder(1, "A", "ZZZZ", 5, None, 10)),
    ("unknown_order", AmendOrder(99, "A", "AAPL", 5, None, 10)),
    ("not_owner", AmendOrder(1, "B", "AAPL", 5, None, 10)),
    ("invalid_quantity", AmendOrder(1, "A", "AAPL", 0, None, 10)),
    ("invalid_quantity", AmendOrder(1, "A", "AAPL", -3, None, 10)),
    ("lot_size", AmendOrder(2, "A", "KO", 25, None, 10)),
    ("qty_not_above_filled", AmendOrder(1, "A", "AAPL", 2, None, 10)),
    ("invalid_price", AmendOrder(1, "A", "AAPL", 8, 0, 10)),
    ("invalid_price", AmendOrder(1, "A", "AAPL", 8, -P, 10)),
    ("tick_size", AmendOrder(1, "A", "AAPL", 8, P - T // 4, 10)),
    ("price_band", AmendOrder(1, "A", "AAPL", 8, 2 * P, 10)),
    ("amend_no_change", AmendOrder(1, "A", "AAPL", 8, None, 10)),
    ("amend_no_change", AmendOrder(1, "A", "AAPL", 8, P - T, 10)),
]


@pytest.mark.parametrize(
    ("reason", "amend"), AMEND_REJECTS, ids=[f"{r[0]}-{i}" for i, r in enumerate(AMEND_REJECTS)]
)
def test_amend_rejects(reason: str, amend: AmendOrder) -> None:
    m = matcher()
    ko = SEC["KO"].reference_price
    # AAPL 1: buy 8 @ P-T, 2 filled; KO 2: buy 20
    run(
        m,
        new(1, "A", "buy", 8, P - T),
        new(5, "B", "sell", 2, P - T),
        new(2, "A", "buy", 20, ko, symbol="KO"),
    )
    before = m.snapshot()
    out = m.submit(amend)
    book_before = before.get(amend.symbol, {})
    seq = 0 if reason == "unknown_symbol" else book_before["exec_seq"] + 1
    side = "buy" if reason not in ("unknown_symbol", "unknown_order") else None
    assert out == [
        rejected(
            seq, amend.order_id, amend.member, side, "amend", reason, amend.price, 10, amend.symbol
        )
    ]
    after = m.snapshot()
    for sym in after:
        assert after[sym]["orders"] == before[sym]["orders"]


@pytest.mark.parametrize("status", ["pre_open", "suspended", "closed"])
def test_amend_rejected_when_book_not_open(status: str) -> None:
    m = matcher()
    run(m, new(1, "A", "buy", 8, P))
    actions = {"pre_open": ["close", "pre_open"], "suspended": ["suspend"], "closed": ["close"]}
    for a in actions[status]:
        m.submit(SessionControl(a, 5, "AAPL"))
    out = m.submit(AmendOrder(1, "A", "AAPL", 5, None, 10))
    seq = m.books["AAPL"].exec_seq
    if status == "suspended":
        assert out == [rejected(seq, 1, "A", "buy", "amend", "session_suspended", None, 10)]
        assert resting(m) == [(1, "buy", P, 8, 0)]
    else:  # the close expired the order: nothing to amend any more
        assert out == [rejected(seq, 1, "A", None, "amend", "unknown_order", None, 10)]


CANCEL_REJECTS: list[tuple[str, CancelOrder]] = [
    ("unknown_symbol", CancelOrder(1, "A", "ZZZZ", 10)),
    ("unknown_order", CancelOrder(99, "A", "AAPL", 10)),
    ("not_owner", CancelOrder(1, "B", "AAPL", 10)),
]


@pytest.mark.parametrize(("reason", "cancel"), CANCEL_REJECTS, ids=[r[0] for r in CANCEL_REJECTS])
def test_cancel_rejects(reason: str, cancel: CancelOrder) -> None:
    m = matcher()
    run(m, new(1, "A", "buy", 8, P))
    out = m.submit(cancel)
    if reason == "unknown_symbol":
        expected = rejected(0, cancel.order_id, "A", None, "cancel", reason, None, 10, "ZZZZ")
    elif reason == "unknown_order":
        expected = rejected(2, 99, "A", None, "cancel", reason, None, 10)
    else:
        expected = rejected(2, 1, "B", "buy", "cancel", reason, P, 10)
    assert out == [expected]
    assert resting(m) == [(1, "buy", P, 8, 0)]


def test_every_applicable_reject_reason_is_covered() -> None:
    covered = (
        {r for r, *_ in NEW_REJECTS}
        | {r for r, _ in AMEND_REJECTS}
        | {r for r, _ in CANCEL_REJECTS}
    )
    covered |= {"duplicate_order_id", "session_suspended", "symbol_halted"}  # dedicated tests
    covered |= set(BOUNDS_REASONS)  # tests/unit/test_limits.py
    assert covered == set(REJECT_REASONS)


def test_process_rejects_non_requests() -> None:
    m = matcher()
    with pytest.raises(TypeError):
        m.process(trade(1, P, 1, "buy", (1, "A"), (2, "B"), 0), [])


# -- session ------------------------------------------------------------------------------
def test_suspended_book_rejects_new_and_amend_accepts_cancel() -> None:
    m = matcher()
    run(m, new(1, "A", "buy", 5, P), new(2, "B", "sell", 5, P + T))
    assert m.submit(SessionControl("suspend", 3)) == []
    assert m.submit(new(3, "C", "sell", 5, P, ts=4)) == [
        rejected(3, 3, "C", "sell", "new", "session_suspended", P, 4)
    ]
    assert m.submit(CancelOrder(1, "A", "AAPL", 5)) == [canceled(4, 1, "A", "buy", P, 0, 5)]
    assert m.submit(SessionControl("resume", 6)) == []
    assert m.submit(new(3, "C", "buy", 5, P + T, ts=7))[1] == trade(
        1, P + T, 5, "buy", (3, "C"), (2, "B"), 7
    )


def test_close_expires_every_resting_order_in_priority_order() -> None:
    m = matcher()
    run(
        m,
        new(1, "A", "buy", 5, P - T),
        new(2, "B", "buy", 5, P),
        new(3, "C", "sell", 4, P + 2 * T),
        new(4, "D", "sell", 6, P + T),
        new(5, "A", "buy", 3, P),
        new(6, "C", "buy", 2, P + T),  # partially fills 4
    )
    seq = m.books["AAPL"].exec_seq
    msft = SEC["MSFT"].reference_price
    m.submit(new(1, "A", "sell", 1, msft, symbol="MSFT", ts=7))
    out = m.submit(SessionControl("close", 100))
    assert out == [
        expired(seq + 1, 2, "B", "buy", P, 0, "session_closed", 100),
        expired(seq + 2, 5, "A", "buy", P, 0, "session_closed", 100),
        expired(seq + 3, 1, "A", "buy", P - T, 0, "session_closed", 100),
        expired(seq + 4, 4, "D", "sell", P + T, 2, "session_closed", 100),
        expired(seq + 5, 3, "C", "sell", P + 2 * T, 0, "session_closed", 100),
        expired(2, 1, "A", "sell", msft, 0, "session_closed", 100, symbol="MSFT"),
    ]
    assert all(b.status == "closed" for b in m.books.values())
    assert resting(m) == [] and levels(m) == ([], [])
    # closed: new orders rejected, cancels answered (nothing left to cancel)
    assert m.submit(new(9, "A", "buy", 1, P, ts=101))[0].reason == "session_closed"
    assert m.submit(CancelOrder(2, "B", "AAPL", 102))[0].reason == "unknown_order"
    # the next day: pre_open, open, trading resumes on a clean book
    m.submit(SessionControl("pre_open", 200))
    m.submit(SessionControl("open", 201))
    out = m.submit(new(10, "A", "buy", 1, P, ts=202))
    assert out == [ack(m.books["AAPL"].exec_seq, 10, "A", "buy", 1, P, 202)]
    assert levels(m) == ([(P, 1)], [])


def test_illegal_transition_raises_and_changes_nothing() -> None:
    m = matcher()
    run(m, new(1, "A", "buy", 5, P))
    m.submit(SessionControl("suspend", 1, "MSFT"))
    before = m.snapshot()
    for ctl in (
        SessionControl("resume", 2),  # AAPL is open, MSFT suspended: all-or-nothing
        SessionControl("open", 2),
        SessionControl("suspend", 2),  # MSFT already suspended
        SessionControl("pre_open", 2, "AAPL"),
        SessionControl("resume", 2, "AAPL"),
        SessionControl("open", 2, "ZZZZ"),
    ):
        with pytest.raises(SessionError):
            m.submit(ctl)
        assert m.snapshot() == before


def test_control_with_symbol_only_affects_that_book() -> None:
    m = matcher()
    msft = SEC["MSFT"].reference_price
    run(m, new(1, "A", "buy", 5, P), new(1, "A", "buy", 5, msft, symbol="MSFT"))
    out = m.submit(SessionControl("close", 5, "AAPL"))
    assert out == [expired(2, 1, "A", "buy", P, 0, "session_closed", 5)]
    assert m.books["AAPL"].status == "closed"
    assert {b.status for s, b in m.books.items() if s != "AAPL"} == {"open"}
    assert resting(m, "MSFT") == [(1, "buy", msft, 5, 0)]
    assert m.submit(new(2, "B", "sell", 5, msft, symbol="MSFT"))[1] == trade(
        1, msft, 5, "sell", (1, "A"), (2, "B"), 2, symbol="MSFT"
    )
    m.submit(SessionControl("suspend", 6, "MSFT"))
    assert m.books["MSFT"].status == "suspended"
    assert m.books["AMZN"].status == "open"


def test_a_halt_stops_one_symbol_until_resumed_and_survives_market_wide_actions() -> None:
    m = matcher()
    msft = SEC["MSFT"].reference_price
    run(m, new(1, "A", "buy", 5, P), new(2, "B", "sell", 5, P + T))
    assert m.submit(SessionControl("halt", 3, "AAPL", actor="op1", reason="news pending")) == []
    assert m.books["AAPL"].status == "halted" and m.books["MSFT"].status == "open"
    # nothing enters or changes; orders rest and can be canceled
    assert m.submit(new(3, "C", "sell", 5, P, ts=4))[0].reason == "symbol_halted"
    assert m.submit(AmendOrder(1, "A", "AAPL", 4, None, 5))[0].reason == "symbol_halted"
    assert m.submit(CancelOrder(2, "B", "AAPL", 6))[0].exec_type == "canceled"
    # other symbols trade; a market-wide suspend and resume leave the halt in place
    assert m.submit(new(4, "C", "buy", 1, msft, symbol="MSFT", ts=7))[0].exec_type == "new"
    m.submit(SessionControl("suspend", 8))
    assert m.books["MSFT"].status == "suspended" and m.books["AAPL"].status == "halted"
    m.submit(SessionControl("resume", 9))
    assert m.books["MSFT"].status == "open" and m.books["AAPL"].status == "halted"
    # the halt is lifted per symbol; order 1 rested through it and trades
    m.submit(SessionControl("resume", 10, "AAPL"))
    assert m.submit(new(5, "C", "sell", 5, P, ts=11))[1] == trade(
        1, P, 5, "sell", (1, "A"), (5, "C"), 11
    )
    with pytest.raises(SessionError, match="names its symbol"):
        m.submit(SessionControl("halt", 12))


def test_a_close_ends_a_halt() -> None:
    m = matcher()
    run(m, new(1, "A", "buy", 5, P))
    m.submit(SessionControl("halt", 2, "AAPL"))
    out = m.submit(SessionControl("close", 3))
    assert [(e.order_id, e.exec_type) for e in out] == [(1, "expired")]
    assert {b.status for b in m.books.values()} == {"closed"}


def test_the_kill_switch_cancels_exactly_that_members_open_orders() -> None:
    m = matcher()
    msft = SEC["MSFT"].reference_price
    run(
        m,
        new(1, "A", "buy", 5, P),
        new(2, "B", "buy", 5, P - T),
        new(3, "A", "sell", 5, P + 2 * T),
        new(4, "C", "sell", 3, P + T),
        new(5, "A", "buy", 2, P + T),  # fills 2 of C's order 4: nothing of A's left resting
        new(1, "A", "buy", 5, msft, symbol="MSFT"),
    )
    seq = m.books["AAPL"].exec_seq
    out = m.submit(SessionControl("kill", 10, "AAPL", actor="op1", reason="runaway", member="A"))
    assert out == [
        canceled(seq + 1, 1, "A", "buy", P, 0, 10, request=None, reason="kill_switch"),
        canceled(seq + 2, 3, "A", "sell", P + 2 * T, 0, 10, request=None, reason="kill_switch"),
    ]
    assert sorted(o[0] for o in resting(m)) == [2, 4]  # B's and C's untouched
    assert resting(m, "MSFT") == [(1, "buy", msft, 5, 0)]  # only the named symbol
    out = m.submit(SessionControl("kill", 11, None, member="A"))  # everywhere
    assert [(e.symbol, e.order_id, e.reason) for e in out] == [("MSFT", 1, "kill_switch")]
    assert m.submit(SessionControl("kill", 12, None, member="A")) == []  # nothing left
    # the member is not barred: the kill switch cancels, the member may trade again
    assert m.submit(new(6, "A", "buy", 1, P, ts=13))[0].exec_type == "new"
    for bad in (SessionControl("kill", 14), SessionControl("kill", 14, member="NOPE")):
        with pytest.raises(SessionError):
            m.submit(bad)


def test_a_reference_price_moves_the_band() -> None:
    m = matcher()  # band 10 % around the reference
    far = P * 13 // 10 // T * T  # 30 % above: outside the band
    assert m.submit(new(1, "A", "buy", 1, far))[0].reason == "price_band"
    m.submit(SessionControl("reference", 2, "AAPL", actor="op1", reason="new info",
                            reference_price=far))  # fmt: skip
    assert m.reference["AAPL"] == far
    assert m.submit(new(2, "A", "buy", 1, far, ts=3))[0].exec_type == "new"
    assert m.submit(new(3, "A", "buy", 1, P, ts=4))[0].reason == "price_band"  # now far below
    m.submit(SessionControl("reference", 5, "AAPL", reference_price=far, band_pct=50.0))
    assert m.submit(new(4, "A", "buy", 1, P, ts=6))[0].exec_type == "new"
    before = m.snapshot()
    for bad in (
        SessionControl("reference", 7, None, reference_price=far),
        SessionControl("reference", 7, "AAPL"),
        SessionControl("reference", 7, "AAPL", reference_price=far + 1),  # off tick
        SessionControl("reference", 7, "AAPL", reference_price=-T),
        SessionControl("reference", 7, "AAPL", reference_price=far, band_pct=0.0),
        SessionControl("reference", 7, "AAPL", reference_price=far, band_pct=101.0),
    ):
        with pytest.raises(SessionError):
            m.submit(bad)
        assert m.snapshot() == before and m.reference["AAPL"] == far


def test_pre_open_book_rejects_until_opened() -> None:
    m = Matcher(SECURITIES, MEMBERS)  # default status: pre_open
    assert m.submit(new(1, "A", "buy", 5, P))[0].reason == "session_pre_open"
    m.submit(SessionControl("open", 1))
    assert m.submit(new(1, "A", "buy", 5, P)) == [ack(2, 1, "A", "buy", 5, P, 1)]


# -- reporting invariants ----------------------------------------------------------------------
def test_every_request_gets_exactly_one_first_report_and_exec_ids_increase() -> None:
    m = matcher()
    msft = SEC["MSFT"].reference_price
    requests: list[Any] = [
        new(1, "A", "sell", 5, P),
        new(2, "B", "sell", 5, P + T),
        new(1, "A", "buy", 3, msft, symbol="MSFT"),
        new(3, "C", "buy", 7, P + T, tif="ioc"),
        new(3, "C", "buy", 7, P + T),  # duplicate
        new(4, "Z", "buy", 7, P + T),  # unknown member
        CancelOrder(2, "B", "AAPL", 7),
        CancelOrder(2, "B", "AAPL", 8),
        AmendOrder(1, "A", "MSFT", 2, None, 9),
        AmendOrder(1, "A", "MSFT", 4, msft - 100, 10),
        new(5, "D", "sell", 10, None, symbol="MSFT"),
        new(6, "D", "sell", 10, P, tif="fok"),
        new(7, "A", "buy", 1, P, symbol="NOPE"),
        CancelOrder(7, "A", "NOPE", 11),
        AmendOrder(7, "A", "NOPE", 1, None, 12),
    ]
    last: dict[str, int] = {}
    for req in requests:
        out = m.submit(req)
        assert out, req
        first = out[0]
        assert isinstance(first, ExecutionReport)
        assert first.exec_type in ("new", "canceled", "replaced", "rejected")
        assert (
            first.request
            == {NewOrder: "new", CancelOrder: "cancel", AmendOrder: "amend"}[type(req)]
        )
        assert (first.order_id, first.symbol, first.ts) == (req.order_id, req.symbol, req.ts)
        assert all(e.request is None for e in out[1:] if isinstance(e, ExecutionReport))
        for e in out:
            if isinstance(e, ExecutionReport) and e.symbol in m.books:
                assert e.exec_id > last.get(e.symbol, 0)
                last[e.symbol] = e.exec_id
    assert last == {"AAPL": m.books["AAPL"].exec_seq, "MSFT": m.books["MSFT"].exec_seq}
