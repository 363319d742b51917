"""Properties of the matcher over random order streams (hypothesis).

Streams mix new limit/market orders with every time in force, cancels and
amends of earlier ids (sometimes by the wrong member), and now and then a
close and re-open of one book, over several members and 2-3 symbols in a
narrow price range so that orders cross often. After every request the book
structure and an order ledger derived only from the reports are checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.bench.workload import standard_mix
from streaming.book import Book
from streaming.events import (
    AmendOrder,
    CancelOrder,
    Event,
    ExecutionReport,
    NewOrder,
    SessionControl,
    Trade,
)
from streaming.matcher import STP_MODES, Matcher
from streaming.refdata import Security, load_securities

pytestmark = pytest.mark.unit

ALL = {s.symbol: s for s in load_securities()}
SYMBOLS = ("AAPL", "KO", "META")  # tick 0.01 / lot 1, lot 10, tick 0.05
MEMBERS = ("A", "B", "C")
FIRST = {
    NewOrder: ("new", {"new", "rejected"}),
    CancelOrder: ("cancel", {"canceled", "rejected"}),
    AmendOrder: ("amend", {"replaced", "rejected"}),
}


# -- the ledger: what the reports say about every order -----------------------------------------
@dataclass
class Entry:
    member: str
    side: str
    price: int | None  # current limit (None: market)
    submitted: int  # quantity of the new order
    qty: int  # current total quantity (after amends)
    amended: int = 0  # sum of the quantity changes of accepted amends
    prio_ts: int = 0  # time priority: ts of the new order or of the last amend losing it
    filled: int = 0
    removed: int = 0  # cancelled or expired
    live: bool = True  # resting (or, during a request, still working)


class Checker:
    def __init__(self, matcher: Matcher, stp: str) -> None:
        self.m = matcher
        self.stp = stp
        self.orders: dict[tuple[str, int], Entry] = {}
        self.rejected_qty = 0
        self.new_qty = 0  # sum of quantities of all valid-typed new requests
        self.last_exec: dict[str, int] = {}
        self.trades = 0
        self.traded = {"buy": 0, "sell": 0, "trades": 0}  # quantity per side / per Trade

    def apply(self, req: Any) -> list[Event]:
        events = self.m.submit(req)
        if isinstance(req, SessionControl):
            self.check_control(req, events)
        else:
            self.check_request(req, events)
        for book in self.m.books.values():
            check_book(book)
        self.check_ledger()
        return events

    # -- per request ----------------------------------------------------------------------------
    def check_exec_id(self, e: ExecutionReport) -> None:
        if e.symbol in self.m.books:
            assert e.exec_id > self.last_exec.get(e.symbol, 0), e
            self.last_exec[e.symbol] = e.exec_id
        else:
            assert e.exec_id == 0 and e.reason == "unknown_symbol"

    def check_control(self, ctl: SessionControl, events: list[Event]) -> None:
        if ctl.action == "kill":
            # exactly the member's live orders (on the symbol, or everywhere), each canceled once
            expected = {
                key for key, entry in self.orders.items()
                if entry.live and entry.member == ctl.member
                and (ctl.symbol is None or key[0] == ctl.symbol)
            }  # fmt: skip
            got = set()
            for e in events:
                assert isinstance(e, ExecutionReport)
                assert (e.exec_type, e.reason, e.request, e.leaves_qty) == (
                    "canceled", "kill_switch", None, 0)  # fmt: skip
                assert e.member == ctl.member
                got.add((e.symbol, e.order_id))
                self.check_exec_id(e)
                self.close_out(e)
            assert got == expected and len(got) == len(events)
            return
        if ctl.action in ("halt", "resume"):
            assert events == []  # orders rest through a halt
            return
        for e in events:
            assert isinstance(e, ExecutionReport)
            assert (e.exec_type, e.reason, e.leaves_qty) == ("expired", "session_closed", 0)
            self.check_exec_id(e)
            self.close_out(e)

    def check_request(self, req: Any, events: list[Event]) -> None:
        kind, first_types = FIRST[type(req)]
        assert events, req
        first = events[0]
        assert isinstance(first, ExecutionReport)
        assert first.request == kind and first.exec_type in first_types, (req, first)
        assert (first.order_id, first.symbol, first.ts) == (req.order_id, req.symbol, req.ts)
        assert sum(isinstance(e, ExecutionReport) and e.request is not None for e in events) == 1
        key = (req.symbol, req.order_id)
        self.check_exec_id(first)
        if first.exec_type == "rejected":
            assert len(events) == 1
            halted = self.m.books[req.symbol].status == "halted"
            if kind != "cancel" and first.reason not in ("unknown_order", "not_owner"):
                # nothing enters or changes on a halted symbol; only its halt says so
                assert halted == (first.reason == "symbol_halted"), (first.reason, halted)
            if kind == "new":
                self.rejected_qty += req.qty
                self.new_qty += req.qty
            return
        if kind == "new":
            assert key not in self.orders, "an order id was accepted twice"
            assert (first.leaves_qty, first.cum_qty, first.price) == (req.qty, 0, req.price)
            self.new_qty += req.qty
            self.orders[key] = Entry(
                req.member, req.side, req.price, req.qty, req.qty, prio_ts=req.ts
            )
        elif kind == "cancel":
            entry = self.orders[key]
            assert entry.live and entry.member == req.member
            assert len(events) == 1
            self.close_out(first)
        else:
            entry = self.orders[key]
            assert entry.live and entry.member == req.member
            assert first.cum_qty == entry.filled and first.leaves_qty == req.qty - entry.filled
            if req.qty > entry.qty or req.price not in (None, entry.price):
                entry.prio_ts = req.ts  # quantity up or a new price: priority lost
            entry.amended += req.qty - entry.qty
            entry.qty = req.qty
            if req.price is not None:
                entry.price = req.price
        aggressor = req.order_id
        i = 1
        while i < len(events):
            e = events[i]
            if isinstance(e, Trade):
                assert kind != "cancel"
                self.check_trade(e, events[i + 1], events[i + 2], aggressor, req.symbol)
                i += 3
                continue
            assert isinstance(e, ExecutionReport) and e.request is None
            self.check_exec_id(e)
            if e.exec_type == "canceled":  # self-trade prevention on a resting order
                assert e.reason == "self_trade_prevention" and self.stp in (
                    "cancel_resting",
                    "cancel_both",
                )
                assert e.order_id != aggressor
                assert self.orders[(e.symbol, e.order_id)].member == req.member
            else:
                assert e.exec_type == "expired" and e.order_id == aggressor, e
                assert i == len(events) - 1, "an expiry is the last event"
                if e.reason == "self_trade_prevention":
                    assert self.stp in ("cancel_aggressor", "cancel_both")
                elif e.reason == "fok_not_fillable":
                    assert kind == "new" and req.tif == "fok" and len(events) == 2
                else:
                    assert e.reason == "unfilled_remainder"
                    assert kind == "new" and (req.tif != "day" or req.order_type == "market")
            self.close_out(e)
            i += 1
        entry = self.orders[key]
        if kind == "new" and req.tif == "fok" and entry.filled < entry.qty:
            # all, or nothing and no change at all
            assert len(events) == 2, events
            assert isinstance(events[1], ExecutionReport) and events[1].reason == "fok_not_fillable"
        if entry.live:  # it rests: must be a day limit order (or an amended one)
            assert kind == "amend" or (req.tif == "day" and req.order_type == "limit")

    def check_trade(self, t: Trade, agg: Event, rest: Event, aggressor: int, symbol: str) -> None:
        assert isinstance(agg, ExecutionReport) and isinstance(rest, ExecutionReport)
        self.trades += 1
        assert t.symbol == symbol and t.qty > 0
        for e in (agg, rest):
            self.check_exec_id(e)
            assert e.exec_type == "trade" and e.trade_id == t.trade_id and e.request is None
            assert (e.last_qty, e.last_price, e.symbol, e.ts) == (t.qty, t.price, t.symbol, t.ts)
        # one fill report per side, each for the whole trade quantity, aggressor first
        assert agg.last_qty + rest.last_qty == 2 * t.qty
        self.traded[agg.side] += agg.last_qty
        self.traded[rest.side] += rest.last_qty
        self.traded["trades"] += t.qty
        assert agg.order_id == aggressor and rest.order_id != aggressor
        assert agg.side == t.aggressor_side and rest.side != agg.side
        buy, sell = (agg, rest) if agg.side == "buy" else (rest, agg)
        assert (t.buy_order_id, t.sell_order_id) == (buy.order_id, sell.order_id)
        assert (t.buy_member, t.sell_member) == (buy.member, sell.member)
        if self.stp != "none":
            assert t.buy_member != t.sell_member, "self trade despite STP"
        resting = self.orders[(symbol, rest.order_id)]
        aggr = self.orders[(symbol, aggressor)]
        assert resting.live and aggr.live
        assert t.price == resting.price, "trades happen at the resting order's price"
        if aggr.price is not None:
            assert t.price <= aggr.price if agg.side == "buy" else t.price >= aggr.price
        for e, entry in ((agg, aggr), (rest, resting)):
            entry.filled += t.qty
            assert e.cum_qty == entry.filled and e.leaves_qty == entry.qty - entry.filled >= 0
            assert e.status == ("filled" if e.leaves_qty == 0 else "partially_filled")
            if e.leaves_qty == 0:
                entry.live = False

    def close_out(self, e: ExecutionReport) -> None:
        """A canceled or expired report ends the order; what was left is removed."""
        entry = self.orders[(e.symbol, e.order_id)]
        assert entry.live, e
        assert e.cum_qty == entry.filled and e.leaves_qty == 0 and e.last_qty == 0
        entry.removed = entry.qty - entry.filled
        assert entry.removed > 0
        entry.live = False

    # -- after every request -----------------------------------------------------------------------
    def check_ledger(self) -> None:
        """Quantity conservation: reports (fills, cancels, expiries) plus the book's leaves."""
        resting_total = filled_total = removed_total = amended_total = 0
        live: dict[str, set[int]] = {s: set() for s in self.m.books}
        for (symbol, oid), entry in self.orders.items():
            order = self.m.books[symbol].orders.get(oid)
            resting = order.qty - order.cum if order is not None else 0
            assert entry.live == (order is not None), (symbol, oid, entry)
            assert entry.submitted + entry.amended == entry.filled + resting + entry.removed, (
                symbol,
                oid,
                entry,
                resting,
            )
            if order is not None:
                live[symbol].add(oid)
                assert (order.qty, order.cum, order.member, order.side, order.price, order.ts) == (
                    entry.qty,
                    entry.filled,
                    entry.member,
                    entry.side,
                    entry.price,
                    entry.prio_ts,
                )
            resting_total += resting
            filled_total += entry.filled
            removed_total += entry.removed
            amended_total += entry.amended
        for symbol, book in self.m.books.items():
            assert set(book.orders) == live[symbol], "every order id is accounted for"
        assert self.traded["buy"] == self.traded["sell"] == self.traded["trades"]
        assert filled_total == 2 * self.traded["trades"]
        assert self.new_qty + amended_total == (
            filled_total + resting_total + removed_total + self.rejected_qty
        )


def check_book(book: Book) -> None:
    """Structure: not crossed, no empty levels, level totals, FIFO, ids consistent."""
    live_ids: set[int] = set()
    for side, levels in (("buy", book.bids), ("sell", book.asks)):
        for price, level in levels.items():
            assert level.price == price
            live = [o for o in level.queue if o.qty > o.cum]
            assert live, f"empty {side} level {price} left in the book"
            assert level.qty == sum(o.qty - o.cum for o in live) > 0
            assert all(o.side == side and o.price == price for o in live)
            stamps = [o.ts for o in live]
            assert stamps == sorted(stamps), f"FIFO broken at {side} {price}"
            for o in live:
                assert o.order_id not in live_ids
                live_ids.add(o.order_id)
                assert book.orders[o.order_id] is o
    assert live_ids == set(book.orders)
    best_bid = max(book.bids, default=None)
    best_ask = min(book.asks, default=None)
    assert (book.best_bid(), book.best_ask()) == (best_bid, best_ask)
    if best_bid is not None and best_ask is not None:
        assert best_bid < best_ask, f"crossed book {best_bid} >= {best_ask}"
    if book.status != "open":
        assert book.status != "closed" or not book.orders


# -- random streams ------------------------------------------------------------------------------
@st.composite
def streams(draw: st.DrawFn) -> tuple[str, list[Security], list[Any]]:
    stp = draw(st.sampled_from(STP_MODES))
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=2, max_size=3, unique=True))
    securities = [ALL[s] for s in symbols]
    n = draw(st.integers(1, 60))
    issued: list[tuple[str, int, str]] = []  # (symbol, id, member)
    requests: list[Any] = []
    halted: set[str] = set()
    ts = 0
    for _ in range(n):
        ts += 1
        kind = draw(
            st.sampled_from(("new", "new", "new", "new", "cancel", "amend", "amend", "control",
                             "halt", "kill"))
        )  # fmt: skip
        if kind in ("cancel", "amend") and issued:
            symbol, oid, owner = issued[draw(st.integers(0, len(issued) - 1))]
            member = owner if draw(st.integers(0, 9)) else draw(st.sampled_from(MEMBERS))
            if kind == "cancel":
                requests.append(CancelOrder(oid, member, symbol, ts))
                continue
            sec = ALL[symbol]
            qty = sec.lot * draw(st.integers(1, 8))
            offset = draw(st.one_of(st.none(), st.integers(-3, 3)))
            price = None if offset is None else sec.reference_price + offset * sec.tick
            requests.append(AmendOrder(oid, member, symbol, qty, price, ts))
            continue
        sec = securities[draw(st.integers(0, len(securities) - 1))]
        if kind == "control":
            # close one book (expiring its orders), then a new day on it
            for action in ("close", "pre_open", "open"):
                requests.append(SessionControl(action, ts, sec.symbol))
            halted.discard(sec.symbol)  # the close ended a halt
            continue
        if kind == "halt":
            # halt one symbol, or lift its halt
            action = "resume" if sec.symbol in halted else "halt"
            halted.symmetric_difference_update({sec.symbol})
            requests.append(SessionControl(action, ts, sec.symbol, actor="op", reason="news"))
            continue
        if kind == "kill":
            member = draw(st.sampled_from(MEMBERS))
            symbol = draw(st.one_of(st.none(), st.just(sec.symbol)))
            requests.append(SessionControl("kill", ts, symbol, actor="op", member=member))
            continue
        member = draw(st.sampled_from(MEMBERS))
        side = draw(st.sampled_from(("buy", "sell")))
        lots = draw(st.integers(1, 6))
        qty = sec.lot * lots if draw(st.integers(0, 19)) else lots  # sometimes off-lot (KO)
        offset = draw(st.one_of(st.none(), st.integers(-3, 3), st.integers(-3, 3)))
        tif = draw(st.sampled_from(("day", "day", "ioc", "fok")))
        oid = len(issued) + 1
        if offset is None:
            requests.append(NewOrder(oid, member, sec.symbol, side, qty, None, "market", tif, ts))
        else:
            price = sec.reference_price + offset * sec.tick
            requests.append(NewOrder(oid, member, sec.symbol, side, qty, price, "limit", tif, ts))
        issued.append((sec.symbol, oid, member))
    return stp, securities, requests


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_invariants_hold_after_every_request(stream: tuple[str, list[Security], list[Any]]) -> None:
    stp, securities, requests = stream
    checker = Checker(Matcher(securities, MEMBERS, stp=stp, status="open"), stp)
    for req in requests:
        checker.apply(req)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(STP_MODES), st.integers(0, 2**32))
def test_invariants_hold_on_the_standard_workload(stp: str, seed: int) -> None:
    securities = [ALL[s] for s in SYMBOLS]
    checker = Checker(Matcher(securities, MEMBERS, stp=stp, status="open"), stp)
    for req in standard_mix(securities, MEMBERS, 300, seed=seed):
        checker.apply(req)
    assert checker.trades > 0


@pytest.mark.parametrize("stp", STP_MODES)
def test_self_trades_only_without_stp(stp: str) -> None:
    """One member trading with itself in a busy book: self trades iff stp == none."""
    securities = [ALL["AAPL"]]
    checker = Checker(Matcher(securities, ("A", "B"), stp=stp, status="open"), stp)
    self_trades = 0
    for req in standard_mix(securities, ("A", "A", "A", "B"), 400, seed=7):
        for e in checker.apply(req):
            if isinstance(e, Trade) and e.buy_member == e.sell_member:
                self_trades += 1
    assert (self_trades > 0) == (stp == "none")
