"""Differential test: the real ``Matcher`` against a deliberately naive reference.

``RefMatcher`` below keeps each book as a plain list of resting orders and
finds the next order to match with a linear scan over (price, arrival); a FOK
order is tried on a throw-away copy of the book. It follows the rules in the
``streaming.matcher`` docstring and the report conventions of ``events.py``:
the request's first report, then per match a ``Trade``, the aggressor's fill
and the resting order's fill, then an ``expired`` remainder; ``exec_id`` and
``trade_id`` are per-symbol sequences. Thousands of seeded random streams must
produce exactly the same events (msgspec Structs compare by value), the same
resting orders in the same priority, the same depth and the same statuses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
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
from streaming.matcher import STP_MODES, Matcher
from streaming.refdata import Security, load_securities
from streaming.session import SessionError

pytestmark = pytest.mark.unit

ALL = {s.symbol: s for s in load_securities()}
# lot 1 / tick 0.01, lot 10, tick 0.05
SYMBOLS = ("AAPL", "KO", "META")
MEMBERS = ("A", "B", "C")
BAND_PCT = 10

# -- the reference -------------------------------------------------------------------------

SESSION = {
    ("closed", "pre_open"): "pre_open",
    ("pre_open", "pre_open"): "pre_open",
    ("pre_open", "open"): "open",
    ("open", "suspend"): "suspended",
    ("suspended", "resume"): "open",
    ("pre_open", "close"): "closed",
    ("open", "close"): "closed",
    ("suspended", "close"): "closed",
}


@dataclass
class ROrder:
    oid: int
    member: str
    side: str
    price: int  # 0 for a market order (never rests)
    qty: int  # total, filled included
    cum: int
    ts: int
    arrival: int = 0  # time priority: smaller is earlier

    @property
    def leaves(self) -> int:
        return self.qty - self.cum


@dataclass
class RBook:
    sec: Security
    status: str
    orders: list[ROrder] = field(default_factory=list)  # live resting orders, any order
    seen: set[int] = field(default_factory=set)
    exec_seq: int = 0
    trade_seq: int = 0
    arrivals: int = 0

    def priority(self, o: ROrder) -> tuple[int, int, int]:
        # bids before asks; best price first; then earliest arrival
        return (0, -o.price, o.arrival) if o.side == "buy" else (1, o.price, o.arrival)

    def in_priority(self) -> list[ROrder]:
        return sorted(self.orders, key=self.priority)

    def find(self, oid: int) -> ROrder | None:
        for o in self.orders:
            if o.oid == oid:
                return o
        return None

    def add(self, o: ROrder) -> None:
        self.arrivals += 1
        o.arrival = self.arrivals
        self.orders.append(o)

    def depth(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        for o in self.orders:
            side = bids if o.side == "buy" else asks
            side[o.price] = side.get(o.price, 0) + o.leaves
        return sorted(bids.items(), reverse=True), sorted(asks.items())


class RefMatcher:
    def __init__(self, securities: list[Security], members: tuple[str, ...], stp: str, status: str):
        self.books = {s.symbol: RBook(s, status) for s in securities}
        self.members = set(members)
        self.stp = stp

    # reports ---------------------------------------------------------------------------------
    def report(self, book: RBook | None, out: list[Event], who: tuple[int, str, str, Any],
               exec_type: str, ts: int, **fields: Any) -> None:  # fmt: skip
        """Append a report; ``who`` is (order id, member, symbol, side)."""
        if book is None:
            seq = 0  # unknown symbol: no book to sequence against
        else:
            book.exec_seq += 1
            seq = book.exec_seq
        leaves = fields.get("leaves", 0)
        status = exec_type
        if exec_type == "trade":
            status = "partially_filled" if leaves else "filled"
        oid, member, symbol, side = who
        out.append(
            ExecutionReport(
                exec_id=seq, order_id=oid, member=member, symbol=symbol, side=side,
                exec_type=exec_type, status=status, request=fields.get("request"),
                reason=fields.get("reason"), price=fields.get("price"),
                last_qty=fields.get("last_qty", 0), last_price=fields.get("last_price"),
                leaves_qty=leaves, cum_qty=fields.get("cum", 0),
                trade_id=fields.get("trade_id"), ts=ts,
            )
        )  # fmt: skip

    def process(self, req: Any, out: list[Event]) -> None:
        if isinstance(req, NewOrder):
            self.new(req, out)
        elif isinstance(req, CancelOrder):
            self.cancel(req, out)
        elif isinstance(req, AmendOrder):
            self.amend(req, out)
        else:
            self.control(req, out)

    # validation --------------------------------------------------------------------------------
    def price_problem(self, sec: Security, price: Any) -> str | None:
        if type(price) is not int or price <= 0:
            return "invalid_price"
        if price % sec.tick != 0:
            return "tick_size"
        if abs(price - sec.reference_price) * 100 > sec.reference_price * BAND_PCT:
            return "price_band"
        return None

    def new_problem(self, book: RBook, o: NewOrder) -> str | None:
        if o.member not in self.members:
            return "unknown_member"
        if book.status != "open":
            return "session_" + book.status
        if o.side not in ("buy", "sell"):
            return "invalid_side"
        if type(o.qty) is not int or o.qty <= 0:
            return "invalid_quantity"
        if o.qty % book.sec.lot != 0:
            return "lot_size"
        if o.order_type == "limit":
            if o.price is None:
                return "missing_price"
            problem = self.price_problem(book.sec, o.price)
            if problem:
                return problem
        elif o.order_type == "market":
            if o.price is not None:
                return "unexpected_price"
        else:
            return "invalid_order_type"
        if o.tif not in ("day", "ioc", "fok"):
            return "invalid_tif"
        if o.order_id in book.seen:
            return "duplicate_order_id"
        return None

    # new order ---------------------------------------------------------------------------------
    def new(self, o: NewOrder, out: list[Event]) -> None:
        book = self.books.get(o.symbol)
        who = (o.order_id, o.member, o.symbol, o.side)
        problem = "unknown_symbol" if book is None else self.new_problem(book, o)
        if problem is not None:
            self.report(
                book, out, who, "rejected", o.ts, request="new", reason=problem, price=o.price
            )
            return
        assert book is not None
        book.seen.add(o.order_id)
        self.report(book, out, who, "new", o.ts, request="new", price=o.price, leaves=o.qty)
        agg = ROrder(o.order_id, o.member, o.side, o.price or 0, o.qty, 0, o.ts)
        if o.tif == "fok" and not self.fok_fillable(book, agg, o.price):
            self.report(book, out, who, "expired", o.ts, reason="fok_not_fillable", price=o.price)
            return
        self.match(book, agg, o.price, o.ts, out)
        if agg.leaves > 0:
            if o.tif == "day" and o.price is not None:
                book.add(agg)
            else:
                self.expire(book, agg, o.price, "unfilled_remainder", o.ts, out)

    def fok_fillable(self, book: RBook, agg: ROrder, limit: int | None) -> bool:
        """Run the match on a copy of the book and see whether it fills completely."""
        trial = replace(book, orders=[replace(x) for x in book.orders], seen=set())
        probe = replace(agg)
        self.match(trial, probe, limit, probe.ts, [])
        return probe.cum == agg.qty

    def expire(
        self, book: RBook, o: ROrder, price: Any, reason: str, ts: int, out: list[Event]
    ) -> None:
        who = (o.oid, o.member, book.sec.symbol, o.side)
        self.report(book, out, who, "expired", ts, reason=reason, price=price, cum=o.cum)
        o.qty = o.cum

    def match(self, book: RBook, agg: ROrder, limit: int | None, ts: int, out: list[Event]) -> None:
        """Trade ``agg`` against the best crossing order, one at a time, until done."""
        symbol = book.sec.symbol

        def crosses(r: ROrder) -> bool:
            if r.side == agg.side:
                return False
            if limit is None:
                return True
            return r.price <= limit if agg.side == "buy" else r.price >= limit

        while agg.leaves > 0:
            candidates = [r for r in book.orders if crosses(r)]
            if not candidates:
                return
            rest = min(candidates, key=book.priority)
            if rest.member == agg.member and self.stp != "none":
                if self.stp in ("cancel_resting", "cancel_both"):
                    book.orders.remove(rest)
                    who = (rest.oid, rest.member, symbol, rest.side)
                    self.report(book, out, who, "canceled", ts, reason="self_trade_prevention",
                                price=rest.price, cum=rest.cum)  # fmt: skip
                if self.stp in ("cancel_aggressor", "cancel_both"):
                    self.expire(book, agg, limit, "self_trade_prevention", ts, out)
                    return
                continue
            qty = min(agg.leaves, rest.leaves)
            agg.cum += qty
            rest.cum += qty
            book.trade_seq += 1
            tid = book.trade_seq
            buy, sell = (agg, rest) if agg.side == "buy" else (rest, agg)
            out.append(
                Trade(
                    trade_id=tid, symbol=symbol, price=rest.price, qty=qty,
                    aggressor_side=agg.side, buy_order_id=buy.oid, sell_order_id=sell.oid,
                    buy_member=buy.member, sell_member=sell.member, ts=ts,
                )
            )  # fmt: skip
            for o, price in ((agg, limit), (rest, rest.price)):  # aggressor first
                self.report(book, out, (o.oid, o.member, symbol, o.side), "trade", ts, price=price,
                            last_qty=qty, last_price=rest.price, leaves=o.leaves, cum=o.cum,
                            trade_id=tid)  # fmt: skip
            if rest.leaves == 0:
                book.orders.remove(rest)

    # cancel / amend ----------------------------------------------------------------------------
    def cancel(self, c: CancelOrder, out: list[Event]) -> None:
        book = self.books.get(c.symbol)
        order = book.find(c.order_id) if book is not None else None
        if book is None or order is None or order.member != c.member:
            if book is None:
                problem = "unknown_symbol"
            else:
                problem = "unknown_order" if order is None else "not_owner"
            side = order.side if order is not None else None
            price = order.price if order is not None else None
            who = (c.order_id, c.member, c.symbol, side)
            self.report(
                book, out, who, "rejected", c.ts, request="cancel", reason=problem, price=price
            )
            return
        book.orders.remove(order)
        who = (order.oid, order.member, c.symbol, order.side)
        self.report(
            book, out, who, "canceled", c.ts, request="cancel", price=order.price, cum=order.cum
        )

    def amend_problem(self, book: RBook, order: ROrder | None, a: AmendOrder) -> str | None:
        if order is None:
            return "unknown_order"
        if order.member != a.member:
            return "not_owner"
        if book.status != "open":
            return "session_" + book.status
        if type(a.qty) is not int or a.qty <= 0:
            return "invalid_quantity"
        if a.qty % book.sec.lot != 0:
            return "lot_size"
        if a.qty <= order.cum:
            return "qty_not_above_filled"
        if a.price is not None:
            problem = self.price_problem(book.sec, a.price)
            if problem:
                return problem
        if a.qty == order.qty and a.price in (None, order.price):
            return "amend_no_change"
        return None

    def amend(self, a: AmendOrder, out: list[Event]) -> None:
        book = self.books.get(a.symbol)
        order = book.find(a.order_id) if book is not None else None
        problem = "unknown_symbol" if book is None else self.amend_problem(book, order, a)
        if problem is not None:
            who = (a.order_id, a.member, a.symbol, order.side if order is not None else None)
            self.report(
                book, out, who, "rejected", a.ts, request="amend", reason=problem, price=a.price
            )
            return
        assert book is not None and order is not None
        who = (order.oid, order.member, a.symbol, order.side)
        price = order.price if a.price is None else a.price
        if price == order.price and a.qty < order.qty:  # keeps priority
            order.qty = a.qty
            self.report(book, out, who, "replaced", a.ts, request="amend", price=price,
                        leaves=order.leaves, cum=order.cum)  # fmt: skip
            return
        book.orders.remove(order)  # loses priority: a new arrival at the new price
        new = ROrder(order.oid, order.member, order.side, price, a.qty, order.cum, a.ts)
        self.report(book, out, who, "replaced", a.ts, request="amend", price=price,
                    leaves=new.leaves, cum=new.cum)  # fmt: skip
        self.match(book, new, price, a.ts, out)
        if new.leaves > 0:
            book.add(new)

    # session -----------------------------------------------------------------------------------
    def control(self, ctl: SessionControl, out: list[Event]) -> None:
        if ctl.symbol is not None and ctl.symbol not in self.books:
            raise SessionError(ctl.symbol)
        books = [self.books[ctl.symbol]] if ctl.symbol is not None else list(self.books.values())
        for book in books:  # all or nothing
            if (book.status, ctl.action) not in SESSION:
                raise SessionError(f"{book.status} {ctl.action}")
        for book in books:
            book.status = SESSION[(book.status, ctl.action)]
            if book.status == "closed":
                for o in book.in_priority():
                    self.expire(book, o, o.price, "session_closed", ctl.ts, out)
                book.orders.clear()

    def state(self) -> dict[str, Any]:
        return {
            symbol: (
                book.status,
                [
                    (o.oid, o.member, o.side, o.price, o.qty, o.cum, o.ts)
                    for o in book.in_priority()
                ],
                book.depth(),
                book.exec_seq,
                book.trade_seq,
            )
            for symbol, book in self.books.items()
        }


def real_state(m: Matcher) -> dict[str, Any]:
    out = {}
    for symbol, book in m.books.items():
        snap = book.snapshot()
        bids, asks = book.depth(1_000)
        touch = book.touch()
        assert touch == (
            bids[0][0] if bids else None,
            bids[0][1] if bids else 0,
            asks[0][0] if asks else None,
            asks[0][1] if asks else 0,
        ), (symbol, touch, bids, asks)
        out[symbol] = (
            snap["status"],
            snap["orders"],
            (bids, asks),
            snap["exec_seq"],
            snap["trade_seq"],
        )
    return out


# -- random streams -----------------------------------------------------------------------------
def random_stream(rng: random.Random, n: int, securities: list[Security]) -> list[Any]:
    """Mostly valid requests over a narrow price range (frequent crossing), some invalid.

    Cancels and amends mostly target recent ids (likely still resting); a
    suspend or close is usually followed a few requests later by the resume or
    pre-open + open that restores trading, and now and then an arbitrary
    (possibly illegal) control event is sent.
    """
    owners: dict[tuple[str, int], str] = {}
    ids: dict[str, list[int]] = {s.symbol: [] for s in securities}
    day: dict[str, list[int]] = {s.symbol: [] for s in securities}  # may be resting
    out: list[Any] = []
    pending: list[tuple[int, Any, str | None]] = []  # (due index, action, symbol)
    next_id = 0
    ts = 0
    for i in range(n):
        ts += rng.randint(1, 3)
        while pending and pending[0][0] <= i:
            _, action, target = pending.pop(0)
            out.append(SessionControl(action, ts, target))
        sec = securities[rng.randrange(len(securities))]
        sym, tick, lot, ref = sec.symbol, sec.tick, sec.lot, sec.reference_price
        member = MEMBERS[rng.randrange(len(MEMBERS))]
        known = ids[sym]
        r = rng.random()
        if r < 0.55 or not known:
            if known and rng.random() < 0.03:
                oid = rng.choice(known)  # duplicate
            else:
                next_id += 1
                oid = next_id
            side: Any = "buy" if rng.random() < 0.5 else "sell"
            order_type: Any = "market" if rng.random() < 0.06 else "limit"
            tif: Any = rng.choice(("day", "day", "day", "day", "ioc", "fok"))
            qty: Any = lot * rng.randint(1, 8)
            offset = rng.randint(-5, 2) if side == "buy" else rng.randint(-2, 5)
            price: Any = None if order_type == "market" else ref + tick * offset
            if rng.random() < 0.04:  # an invalid field of some kind
                what = rng.randrange(10)
                if what == 0:
                    qty = rng.choice((0, -lot, lot + 1 if lot > 1 else 0))
                elif what == 1:
                    price = (ref + tick // 2) if price else ref
                elif what == 2:
                    price = ref * 2 if rng.random() < 0.5 else ref // 2
                elif what == 3:
                    side = "hold"
                elif what == 4:
                    tif = "gtc"
                elif what == 5:
                    order_type = "stop"
                elif what == 6:
                    member = "Z"
                elif what == 7:
                    sym = "NOPE"
                elif what == 8:
                    price = None if price is not None else ref  # missing / unexpected
                else:
                    price = 0 if price is not None else None
            out.append(NewOrder(oid, member, sym, side, qty, price, order_type, tif, ts))
            if sym in ids and oid not in known:
                owners[(sym, oid)] = member
                known.append(oid)
                if tif == "day" and order_type == "limit":
                    day[sym].append(oid)
        elif r < 0.985:
            pool = day[sym] if day[sym] and rng.random() < 0.9 else known
            oid = rng.choice(pool[-rng.randint(1, min(len(pool), 10)) :])
            owner = owners[(sym, oid)]
            who = owner if rng.random() < 0.93 else member
            if r < 0.72:
                out.append(CancelOrder(oid, who, sym, ts))
                continue
            qty = lot * rng.randint(1, 8)
            if rng.random() < 0.03:
                qty = rng.choice((0, lot + 1 if lot > 1 else -1))
            price = None if rng.random() < 0.5 else ref + tick * rng.randint(-4, 4)
            if rng.random() < 0.02:
                price = ref + 1
            out.append(AmendOrder(oid, who, sym, qty, price, ts))
        else:
            target = None if rng.random() < 0.5 else sym
            kind = rng.random()
            if kind < 0.4:
                out.append(SessionControl("suspend", ts, target))
                pending.append((i + rng.randint(1, 6), "resume", target))
            elif kind < 0.8:
                out.append(SessionControl("close", ts, target))
                due = i + rng.randint(1, 6)
                pending += [(due, "pre_open", target), (due + rng.randint(0, 3), "open", target)]
            else:
                action: Any = rng.choice(("pre_open", "open", "suspend", "resume", "close"))
                out.append(SessionControl(action, ts, target))
            pending.sort(key=lambda p: p[0])
    return out


def run_stream(seed: int, n: int) -> int:
    rng = random.Random(seed)
    securities = [ALL[s] for s in rng.sample(SYMBOLS, rng.choice((2, 3)))]
    stp = rng.choice(STP_MODES)
    real = Matcher(securities, MEMBERS, stp=stp, band_pct=BAND_PCT, status="open")
    ref = RefMatcher(securities, MEMBERS, stp, "open")
    requests = random_stream(rng, n, securities)
    events = 0
    for i, req in enumerate(requests):
        got: list[Event] = []
        want: list[Event] = []
        real_error = ref_error = None
        try:
            real.process(req, got)
        except SessionError as e:
            real_error = e
        try:
            ref.process(req, want)
        except SessionError as e:
            ref_error = e
        where = f"seed={seed} stp={stp} request #{i}: {req!r}"
        assert (real_error is None) == (ref_error is None), (
            f"{where}: {real_error!r} vs {ref_error!r}"
        )
        if got != want:
            lines = [f"{where}: events differ"]
            for k in range(max(len(got), len(want))):
                a = got[k] if k < len(got) else None
                b = want[k] if k < len(want) else None
                lines.append(("   " if a == b else "!! ") + f"real={a!r}\n      ref ={b!r}")
            raise AssertionError("\n".join(lines))
        events += len(got)
        if i % 8 == 0 or i == len(requests) - 1:
            assert real_state(real) == ref.state(), where
    return events


# -- tests ------------------------------------------------------------------------------------------
def test_reference_agrees_on_a_hand_written_case() -> None:
    """The reference itself reproduces a documented example (guards the oracle)."""
    aapl = ALL["AAPL"]
    p, t = aapl.reference_price, aapl.tick
    ref = RefMatcher([aapl], MEMBERS, "cancel_resting", "open")
    out: list[Event] = []
    for req in (
        NewOrder(1, "A", "AAPL", "sell", 5, p + t, "limit", "day", 1),
        NewOrder(2, "B", "AAPL", "sell", 5, p, "limit", "day", 2),
        NewOrder(3, "C", "AAPL", "buy", 7, p + t, "limit", "ioc", 3),
    ):
        out.clear()
        ref.process(req, out)
    assert [type(e).__name__ for e in out] == [
        "ExecutionReport",
        "Trade",
        "ExecutionReport",
        "ExecutionReport",
        "Trade",
        "ExecutionReport",
        "ExecutionReport",
    ]
    trades = [e for e in out if isinstance(e, Trade)]
    assert [(tr.sell_order_id, tr.price, tr.qty) for tr in trades] == [(2, p, 5), (1, p + t, 2)]
    assert ref.state()["AAPL"][1] == [(1, "A", "sell", p + t, 5, 2, 1)]


STREAMS = 2_000
REQUESTS = 200
CHUNKS = 4


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_matcher_matches_reference_on_random_streams(chunk: int) -> None:
    per = STREAMS // CHUNKS
    total = 0
    for seed in range(chunk * per, (chunk + 1) * per):
        total += run_stream(seed, REQUESTS)
    assert total > per * REQUESTS  # the streams do produce trades and fills


def test_random_streams_exercise_every_path() -> None:
    """The generator reaches trades, every STP outcome, FOK expiries, amends and closes."""
    seen: set[str] = set()
    for seed in range(200):
        rng = random.Random(seed)
        securities = [ALL[s] for s in rng.sample(SYMBOLS, rng.choice((2, 3)))]
        stp = rng.choice(STP_MODES)
        real = Matcher(securities, MEMBERS, stp=stp, band_pct=BAND_PCT, status="open")
        for req in random_stream(rng, REQUESTS, securities):
            try:
                events = real.submit(req)
            except SessionError:
                seen.add("session_error")
                continue
            for e in events:
                if isinstance(e, ExecutionReport):
                    seen.add(f"{e.exec_type}:{e.reason}")
                    if e.exec_type == "replaced" and any(isinstance(x, Trade) for x in events):
                        seen.add("amend_crossed")
                elif isinstance(e, Trade) and e.buy_member == e.sell_member:
                    seen.add("self_trade")
    expected = {
        "new:None",
        "trade:None",
        "replaced:None",
        "canceled:None",
        "canceled:self_trade_prevention",
        "expired:self_trade_prevention",
        "expired:unfilled_remainder",
        "expired:fok_not_fillable",
        "expired:session_closed",
        "amend_crossed",
        "self_trade",
        "session_error",
    } | {
        f"rejected:{r}"
        for r in (
            "unknown_symbol",
            "unknown_member",
            "session_suspended",
            "session_closed",
            "session_pre_open",
            "invalid_side",
            "invalid_tif",
            "invalid_order_type",
            "invalid_quantity",
            "lot_size",
            "missing_price",
            "unexpected_price",
            "invalid_price",
            "tick_size",
            "price_band",
            "duplicate_order_id",
            "unknown_order",
            "not_owner",
            "qty_not_above_filled",
            "amend_no_change",
        )
    }
    assert expected <= seen, expected - seen
