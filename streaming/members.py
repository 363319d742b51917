"""Clearing members: accounts, the market as they see it, and their trading strategies.

Ten members (USR01-USR10) start the day with capital and must trade at least
``obligation`` distinct securities. Every order is checked against the
member's free cash (cash minus what open buy orders reserve) and free holdings
(no short selling) before it is sent. Fills update cash, holdings, average
cost and realized P&L. Money is integer price units (1/10,000 of the currency)
times quantity, so accounts add up exactly.

Members whose ``strategy`` is ``advice`` follow recommendations first (see
``streaming.advice``): every recommendation they receive is decided once, act
or skip with the reason, and otherwise they trade by the rules, so their
daily obligation is still met. With no recommendations they behave exactly
like rule-based members.

Pure: decisions take the event time and each member's own seeded RNG.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from streaming.advice import AdviceConfig, evaluate, window_opens
from streaming.events import (
    PRICE_SCALE,
    BookTop,
    CancelOrder,
    ExecutionReport,
    NewOrder,
    OrderRequest,
    Recommendation,
    Side,
    StrategyDecision,
)
from streaming.portfolio import Account, MarketView, OpenOrder
from streaming.refdata import Member, RiskTier, Security

DEFAULT_OBLIGATION = 20


class Strategy(Protocol):
    name: str

    def decide(
        self, account: Account, market: MarketView, rng: random.Random, ts: int
    ) -> list[tuple[str, Side, int, int]]:
        """Orders to send as (symbol, side, qty, price), already checked by the caller."""
        ...


@dataclass
class RuleBasedStrategy:
    """Keep holdings between 20% and 60% of net worth, trading near the BBO mid.

    Under ``low`` it buys, over ``high`` it sells, in between it does either;
    it prefers securities not yet traded today so the obligation is met.
    """

    low: float = 0.20
    high: float = 0.60
    ticket: tuple[float, float] = (0.02, 0.06)  # share of net worth per order
    obligation: int = DEFAULT_OBLIGATION
    name: str = "rules"

    def decide(
        self, account: Account, market: MarketView, rng: random.Random, ts: int
    ) -> list[tuple[str, Side, int, int]]:
        marks = market.marks()
        worth = account.net_worth(marks)
        if worth <= 0:
            return []
        ratio = account.holdings_value(marks) / worth
        sellable = [s for s, p in sorted(account.positions.items()) if p.qty > 0]
        if ratio < self.low:
            side: Side = "buy"
        elif ratio > self.high and sellable:
            side = "sell"
        else:
            side = "sell" if sellable and rng.random() < 0.5 else "buy"
        quoted = [s for s in market.securities if market.mid(s) is not None]
        pool = quoted if side == "buy" else [s for s in sellable if s in quoted]
        if not pool:
            return []
        fresh = [s for s in pool if s not in account.traded_symbols]
        symbol = rng.choice(fresh if fresh and rng.random() < 0.8 else pool)
        sec = market.securities[symbol]
        mid = market.mid(symbol)
        assert mid is not None
        tick, lot = sec.tick, sec.lot
        k = rng.randint(0, 2)
        if side == "buy":
            price = min(market.ask[symbol], -(-mid // tick) * tick + k * tick)
        else:
            price = max(market.bid[symbol], (mid // tick) * tick - k * tick)
        target = worth * rng.uniform(*self.ticket)
        qty = max(lot, int(target // (price * lot)) * lot)
        return [(symbol, side, qty, price)]


class Members:
    """All clearing members: their accounts, the shared market view and decisions."""

    def __init__(
        self,
        members: Sequence[Member],
        securities: Sequence[Security],
        seed: int,
        strategy: Strategy | None = None,
        act_probability: float = 0.5,
        stale_after_ns: int = 60 * 1_000_000_000,
        advice: AdviceConfig | None = None,
        session: tuple[int, int] = (0, 2**63 - 1),
    ) -> None:
        clearing = [m for m in members if m.kind == "clearing"]
        self.market = MarketView(securities)
        self.strategy: Strategy = strategy or RuleBasedStrategy()
        self.act_probability = act_probability
        self.stale_after_ns = stale_after_ns
        self.advice = advice or AdviceConfig()
        self.open_ns, self.close_ns = session
        self.accounts: dict[str, Account] = {}
        self.tiers: dict[str, RiskTier] = {}  # members following recommendations
        self._rngs: dict[str, random.Random] = {}
        self._next_id: dict[str, int] = {}
        self._pending: dict[str, list[Recommendation]] = {}
        self._seen: dict[str, set[str]] = {}  # rec_ids received, decided once each
        self._acted: dict[str, set[tuple[str, str]]] = {}
        self._decisions: list[StrategyDecision] = []
        for i, m in enumerate(clearing, start=1):
            self.accounts[m.member_id] = Account(m.member_id, m.capital, m.capital)
            self._rngs[m.member_id] = random.Random(f"{seed}/{m.member_id}")
            self._next_id[m.member_id] = i * 10**10
            if m.strategy == "advice":
                self.tiers[m.member_id] = m.risk_tier
                self._pending[m.member_id] = []
                self._seen[m.member_id] = set()
                self._acted[m.member_id] = set()
        marks = self.market.marks()
        for acct in self.accounts.values():
            acct.start_value = acct.net_worth(marks)

    def on_execution(self, report: ExecutionReport) -> None:
        if report.exec_type == "trade" and report.last_price is not None:
            self.market.on_trade_price(report.symbol, report.last_price)
        acct = self.accounts.get(report.member)
        if acct is not None:
            acct.apply(report)

    def on_top(self, top: BookTop) -> None:
        self.market.on_top(top)

    def on_recommendation(self, rec: Recommendation) -> None:
        """Queue a recommendation for every follower; one already received is not queued again."""
        for member_id, pending in self._pending.items():
            seen = self._seen[member_id]
            if rec.rec_id not in seen:
                seen.add(rec.rec_id)
                pending.append(rec)

    def decide(self, ts: int) -> list[OrderRequest]:
        """Each member may act once: cancel its stale orders, then maybe one new order.

        A follower first decides the recommendations due by ``ts`` (see
        ``_follow``); if one of them became an order it does nothing else this
        cycle, otherwise it goes on by the rules as every other member does.
        """
        out: list[OrderRequest] = []
        seq = 0
        for member_id, acct in self.accounts.items():
            rng = self._rngs[member_id]
            for oid, oo in sorted(acct.open_orders.items()):
                if ts - oo.placed >= self.stale_after_ns:
                    out.append(CancelOrder(oid, member_id, oo.symbol, ts + seq))
                    seq += 1
            if member_id in self.tiers:
                followed = self._follow(member_id, acct, ts, seq)
                if followed:
                    out.extend(followed)
                    seq += len(followed)
                    continue
            if rng.random() >= self.act_probability:
                continue
            for symbol, side, qty, price in self.strategy.decide(acct, self.market, rng, ts):
                if not self._affordable(acct, symbol, side, qty, price):
                    continue
                out.append(self._new_order(acct, symbol, side, qty, price, ts + seq))
                seq += 1
        return out

    def _new_order(
        self, acct: Account, symbol: str, side: Side, qty: int, price: int, ts: int
    ) -> NewOrder:
        self._next_id[acct.member_id] += 1
        oid = self._next_id[acct.member_id]
        acct.open_orders[oid] = OpenOrder(symbol, side, price, qty, ts)
        acct.orders_sent += 1
        return NewOrder(oid, acct.member_id, symbol, side, qty, price, "limit", "day", ts)

    def _follow(self, member_id: str, acct: Account, ts: int, seq: int) -> list[NewOrder]:
        """Decide the follower's recommendations due by ``ts``; the orders of the acts.

        Nothing is decided before the trading window opens (a recommendation
        published before the session waits for it); after that each one due
        (``rec.ts <= ts``) is decided once, in event-time order, and the
        decision is kept for ``drain_decisions`` at the time of its order.
        """
        pending = self._pending[member_id]
        if not pending or ts < window_opens(self.open_ns, self.advice):
            return []
        due = sorted((r for r in pending if r.ts <= ts), key=lambda r: r.ts)
        if not due:
            return []
        self._pending[member_id] = [r for r in pending if r.ts > ts]
        acted = self._acted[member_id]
        orders: list[NewOrder] = []
        for rec in due:
            at = ts + seq + len(orders)
            decision = evaluate(
                rec, acct, self.market, self.market.securities, at, self.open_ns,
                self.close_ns, self.tiers[member_id], acted, self.advice,
            )  # fmt: skip
            order_id: int | None = None
            if decision.acts and decision.side is not None and decision.price is not None:
                order = self._new_order(
                    acct, rec.symbol, decision.side, decision.qty, decision.price, at
                )
                orders.append(order)
                order_id = order.order_id
                acted.add((rec.symbol, rec.action))
            self._decisions.append(
                StrategyDecision(
                    decision_id=f"{member_id}:{rec.rec_id}",
                    member=member_id,
                    rec_id=rec.rec_id,
                    symbol=rec.symbol,
                    action=rec.action,
                    outcome=decision.outcome,
                    reason=decision.reason,
                    side=decision.side,
                    qty=decision.qty,
                    price=decision.price,
                    order_id=order_id,
                    confidence=rec.confidence,
                    ts=at,
                )
            )
        return orders

    def drain_decisions(self) -> list[StrategyDecision]:
        """The decisions made since the last call, in the order they were made."""
        out, self._decisions = self._decisions, []
        return out

    @staticmethod
    def _affordable(acct: Account, symbol: str, side: str, qty: int, price: int) -> bool:
        if qty <= 0 or price <= 0:
            return False
        if side == "buy":
            return qty * price <= acct.free_cash()
        return qty <= acct.free_qty(symbol)

    def summary(self, obligation: int = DEFAULT_OBLIGATION) -> list[dict[str, object]]:
        """Per member: P&L (realized, unrealized, total) in currency, obligation status."""
        marks = self.market.marks()
        rows: list[dict[str, object]] = []
        for member_id, acct in self.accounts.items():
            worth = acct.net_worth(marks)
            rows.append(
                {
                    "member": member_id,
                    "cash": acct.cash / PRICE_SCALE,
                    "holdings_value": acct.holdings_value(marks) / PRICE_SCALE,
                    "net_worth": worth / PRICE_SCALE,
                    "realized_pnl": acct.realized / PRICE_SCALE,
                    "unrealized_pnl": acct.unrealized(marks) / PRICE_SCALE,
                    "pnl": (worth - acct.start_value) / PRICE_SCALE,
                    "orders": acct.orders_sent,
                    "fills": acct.fills,
                    "rejects": acct.rejects,
                    "securities_traded": len(acct.traded_symbols),
                    "obligation": obligation,
                    "obligation_met": len(acct.traded_symbols) >= obligation,
                }
            )
        return rows
