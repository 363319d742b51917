"""A member's book-keeping: positions, open orders, cash, and the market as it sees it.

Kept apart from ``streaming.members`` (who decides) and ``streaming.advice``
(what a recommendation asks), which both read it, so neither imports the
other. Money is integer price units (1/10,000 of the currency) times
quantity, so accounts add up exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field, replace

from streaming.events import BookTop, ExecutionReport
from streaming.refdata import Security


@dataclass
class Position:
    qty: int = 0
    cost: int = 0  # price units x qty of the shares held

    @property
    def avg_cost(self) -> float:
        return self.cost / self.qty if self.qty else 0.0


@dataclass(frozen=True)
class OpenOrder:
    symbol: str
    side: str
    price: int
    leaves: int
    placed: int  # event time


class OpenOrders(MutableMapping[int, OpenOrder]):
    """A member's open orders by order id, with what they commit kept as running totals.

    The pre-trade check asks for the cash and shares already committed on every
    order a gateway enters; summing thousands of resting orders each time made
    order entry quadratic in the book's size. Orders are immutable, so every
    change passes through ``__setitem__``/``__delitem__`` and the totals stay exact.
    """

    def __init__(self, orders: dict[int, OpenOrder] | None = None) -> None:
        self._orders: dict[int, OpenOrder] = {}
        self.buy_cash = 0  # price x leaves of the open buys
        self.sell_qty: dict[str, int] = {}  # leaves of the open sells per symbol
        for oid, order in (orders or {}).items():
            self[oid] = order

    def _count(self, order: OpenOrder, sign: int) -> None:
        if order.side == "buy":
            self.buy_cash += sign * order.price * order.leaves
        else:
            self.sell_qty[order.symbol] = self.sell_qty.get(order.symbol, 0) + sign * order.leaves

    def __getitem__(self, oid: int) -> OpenOrder:
        return self._orders[oid]

    def __setitem__(self, oid: int, order: OpenOrder) -> None:
        old = self._orders.get(oid)
        if old is not None:
            self._count(old, -1)
        self._orders[oid] = order
        self._count(order, 1)

    def __delitem__(self, oid: int) -> None:
        self._count(self._orders.pop(oid), -1)

    def __iter__(self) -> Iterator[int]:
        return iter(self._orders)

    def __len__(self) -> int:
        return len(self._orders)

    def __repr__(self) -> str:
        return f"OpenOrders({self._orders!r})"


@dataclass
class Account:
    """One member's money, holdings and open orders for the session."""

    member_id: str
    cash: int  # price units (1/10,000 of the currency)
    start_cash: int
    positions: dict[str, Position] = field(default_factory=dict)
    open_orders: OpenOrders = field(default_factory=OpenOrders)
    realized: int = 0
    traded_symbols: set[str] = field(default_factory=set)
    fills: int = 0
    bought: int = 0  # shares
    sold: int = 0
    orders_sent: int = 0
    rejects: int = 0
    start_value: int = 0  # net worth at the start of the session (marked)

    def reserved_cash(self) -> int:
        return self.open_orders.buy_cash

    def reserved_qty(self, symbol: str) -> int:
        return self.open_orders.sell_qty.get(symbol, 0)

    def free_cash(self) -> int:
        return self.cash - self.reserved_cash()

    def free_qty(self, symbol: str) -> int:
        pos = self.positions.get(symbol)
        return (pos.qty if pos else 0) - self.reserved_qty(symbol)

    def holdings_value(self, marks: dict[str, int]) -> int:
        return sum(p.qty * marks.get(s, 0) for s, p in self.positions.items() if p.qty)

    def net_worth(self, marks: dict[str, int]) -> int:
        return self.cash + self.holdings_value(marks)

    def unrealized(self, marks: dict[str, int]) -> int:
        return sum(p.qty * marks.get(s, 0) - p.cost for s, p in self.positions.items() if p.qty)

    def apply(self, report: ExecutionReport) -> None:
        """Update the account from one of its execution reports."""
        oo = self.open_orders.get(report.order_id)
        if report.exec_type == "trade":
            qty, price = report.last_qty, report.last_price or 0
            pos = self.positions.setdefault(report.symbol, Position())
            if report.side == "buy":
                self.cash -= qty * price
                pos.qty += qty
                pos.cost += qty * price
                self.bought += qty
            else:
                removed = round(pos.cost * qty / pos.qty) if pos.qty else 0
                self.cash += qty * price
                self.realized += qty * price - removed
                pos.qty -= qty
                pos.cost -= removed
                if pos.qty == 0:
                    pos.cost = 0
                self.sold += qty
            self.fills += 1
            self.traded_symbols.add(report.symbol)
            if oo is not None:
                self.open_orders[report.order_id] = oo = replace(oo, leaves=report.leaves_qty)
        elif report.exec_type == "replaced" and oo is not None:
            price = report.price if report.price is not None else oo.price
            self.open_orders[report.order_id] = oo = replace(
                oo, leaves=report.leaves_qty, price=price
            )
        elif report.exec_type == "rejected":
            self.rejects += 1
        if oo is not None and report.leaves_qty == 0 and report.exec_type != "new":
            del self.open_orders[report.order_id]  # filled, canceled, expired or rejected


class MarketView:
    """What members know of the market: the latest top of book per symbol."""

    def __init__(self, securities: Iterable[Security]) -> None:
        self.securities = {s.symbol: s for s in securities}
        self.bid: dict[str, int] = {}
        self.ask: dict[str, int] = {}
        self.last: dict[str, int] = {s: sec.reference_price for s, sec in self.securities.items()}

    def on_top(self, top: BookTop) -> None:
        for book, price in ((self.bid, top.bid_price), (self.ask, top.ask_price)):
            if price is None:
                book.pop(top.symbol, None)
            else:
                book[top.symbol] = price

    def on_trade_price(self, symbol: str, price: int) -> None:
        self.last[symbol] = price

    def mid(self, symbol: str) -> int | None:
        bid, ask = self.bid.get(symbol), self.ask.get(symbol)
        if bid is None or ask is None:
            return None
        return (bid + ask) // 2

    def marks(self) -> dict[str, int]:
        """Valuation prices: last trade, else the reference price."""
        return self.last
