"""Clearing members: accounts add up, checks hold, the strategy follows its rules."""

from __future__ import annotations

import random

import pytest

from streaming.events import BookTop, ExecutionReport, NewOrder
from streaming.members import Members, RuleBasedStrategy
from streaming.portfolio import Account, MarketView
from streaming.refdata import load_members

pytestmark = pytest.mark.unit


def _fill(member: str, oid: int, symbol: str, side: str, qty: int, price: int, leaves: int = 0):
    return ExecutionReport(
        1, oid, member, symbol, side, "trade", "filled" if not leaves else "partially_filled",
        None, None, price, qty, price, leaves, qty, 1, 0,
    )  # fmt: skip


def test_fills_update_cash_holdings_average_cost_and_realized():
    acct = Account("USR01", cash=1_000_000_000, start_cash=1_000_000_000)
    acct.apply(_fill("USR01", 1, "AAPL", "buy", 10, 1_000_000))
    acct.apply(_fill("USR01", 2, "AAPL", "buy", 10, 1_200_000))
    pos = acct.positions["AAPL"]
    assert (pos.qty, pos.cost, pos.avg_cost) == (20, 22_000_000, 1_100_000)
    assert acct.cash == 1_000_000_000 - 22_000_000
    acct.apply(_fill("USR01", 3, "AAPL", "sell", 5, 1_300_000))
    assert acct.realized == 5 * (1_300_000 - 1_100_000)
    assert (pos.qty, pos.cost) == (15, 16_500_000)
    acct.apply(_fill("USR01", 4, "AAPL", "sell", 15, 1_000_000))
    assert (pos.qty, pos.cost) == (0, 0)
    assert acct.realized == 1_000_000 - 1_500_000
    assert acct.cash == 1_000_000_000 + acct.realized
    assert acct.traded_symbols == {"AAPL"} and acct.fills == 4


def _members(securities, **kw) -> Members:
    return Members(load_members(), securities, seed=1, **kw)


def _quote_all(members: Members, securities) -> None:
    for sec in securities:
        bid, ask = sec.reference_price - sec.tick, sec.reference_price + sec.tick
        members.on_top(BookTop(sec.symbol, 0, bid, 100, ask, 100))


def test_only_clearing_members_get_accounts(securities):
    m = _members(securities)
    assert list(m.accounts) == [f"USR{i:02d}" for i in range(1, 11)]
    assert all(a.cash == 100_000 * 10_000 for a in m.accounts.values())


def test_orders_never_exceed_free_cash_or_holdings(securities):
    m = _members(securities, act_probability=1.0)
    _quote_all(m, securities)
    for step in range(300):
        for req in m.decide(step * 1_000_000_000):
            if not isinstance(req, NewOrder):
                continue
            acct = m.accounts[req.member]
            oo = acct.open_orders[req.order_id]
            if req.side == "buy":
                assert acct.free_cash() >= 0, "reserved more cash than held"
            else:
                assert acct.free_qty(req.symbol) >= 0, "would sell short"
            # fill half of the orders at their price
            if step % 2 == 0:
                m.on_execution(
                    _fill(req.member, req.order_id, req.symbol, req.side, req.qty, req.price)
                )
                assert req.order_id not in acct.open_orders
            del oo
    for acct in m.accounts.values():
        assert acct.cash >= 0
        assert all(p.qty >= 0 for p in acct.positions.values())


def _quoted_market(securities) -> MarketView:
    """Every security quoted one tick either side of its reference price."""
    market = MarketView(securities)
    for sec in securities:
        bid, ask = sec.reference_price - sec.tick, sec.reference_price + sec.tick
        market.on_top(BookTop(sec.symbol, 0, bid, 10, ask, 10))
    return market


def test_strategy_buys_when_light_and_sells_when_heavy(securities):
    market = _quoted_market(securities)
    strat = RuleBasedStrategy()
    rng = random.Random(0)
    light = Account("USR01", cash=1_000_000_000, start_cash=1_000_000_000)
    assert {strat.decide(light, market, rng, 0)[0][1] for _ in range(50)} == {"buy"}
    heavy = Account("USR02", cash=10_000_000, start_cash=10_000_000)
    aapl = next(s for s in securities if s.symbol == "AAPL")
    heavy.apply(_fill("USR02", 1, "AAPL", "buy", 100, aapl.reference_price))
    heavy.cash = 10_000_000
    decisions = [strat.decide(heavy, market, rng, 0)[0] for _ in range(50)]
    assert {d[1] for d in decisions} == {"sell"}
    for symbol, _side, _qty, price in decisions:
        assert market.bid[symbol] <= price <= market.mid(symbol)


def test_strategy_prefers_securities_not_yet_traded(securities):
    market = _quoted_market(securities)
    acct = Account("USR01", cash=1_000_000_000, start_cash=1_000_000_000)
    acct.traded_symbols = {s.symbol for s in securities[:-2]}
    rng = random.Random(1)
    picks = [RuleBasedStrategy().decide(acct, market, rng, 0)[0][0] for _ in range(200)]
    fresh = {s.symbol for s in securities[-2:]}
    assert sum(p in fresh for p in picks) / len(picks) > 0.7


def test_obligation_status_in_summary(securities):
    m = _members(securities)
    acct = m.accounts["USR03"]
    acct.traded_symbols = {s.symbol for s in securities[:20]}
    rows = {r["member"]: r for r in m.summary()}
    assert rows["USR03"]["obligation_met"] is True
    assert rows["USR04"]["obligation_met"] is False
    assert rows["USR04"]["securities_traded"] == 0
