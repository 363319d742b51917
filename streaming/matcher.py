"""Price-time matching with full validation; every request gets exactly one answer.

Rules (chosen to match what participants of real venues expect):

- Orders match at the resting order's price, best price first, then FIFO.
- LIMIT orders may rest (``day``); ``ioc`` fills what it can and expires the
  rest; ``fok`` fills completely or expires without trading. MARKET orders
  never rest: an unfilled remainder expires.
- Amend (Eurex T7 style): reducing quantity at the same price keeps time
  priority; a price change or a quantity increase loses it (the order goes to
  the back of its new level and may trade if it now crosses).
- Self-trade prevention (STP), when an incoming order would trade against a
  resting order of the same member: ``cancel_resting`` (default) cancels the
  resting order and keeps matching, ``cancel_aggressor`` cancels the incoming
  remainder, ``cancel_both`` does both, ``none`` lets them trade.
- A book that is not open rejects new orders and amends and accepts cancels;
  closing the session expires every resting (day) order.

Reports come first for the request (``new``/``canceled``/``replaced`` or
``rejected`` with a reason code), then trades with two ``trade`` fills each
(aggressor first), then an ``expired`` remainder if any. Output is a pure
function of the input sequence: no clock, no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction
from heapq import heappop, heappush
from typing import Literal

from streaming.book import Book, BookStatus, Level, RestingOrder
from streaming.events import (
    AmendOrder,
    CancelOrder,
    Event,
    ExecutionReport,
    NewOrder,
    OrderRequest,
    RequestKind,
    SessionControl,
    Side,
    Trade,
)
from streaming.limits import (
    BOUNDS_REASONS,
    MAX_NOTIONAL,
    MAX_ORDER_ID,
    MAX_PRICE,
    MAX_QTY,
    MAX_TS,
    request_bounds_reason,
)
from streaming.refdata import Security
from streaming.session import SessionError, next_status

StpMode = Literal["cancel_resting", "cancel_aggressor", "cancel_both", "none"]
STP_MODES: tuple[StpMode, ...] = ("cancel_resting", "cancel_aggressor", "cancel_both", "none")

REJECT_REASONS = (
    "unknown_symbol",
    "unknown_member",
    "session_pre_open",
    "session_suspended",
    "session_closed",
    "invalid_side",
    "invalid_order_type",
    "invalid_tif",
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
    *BOUNDS_REASONS,
)
"""Every reason code a ``rejected`` report can carry (``limits`` holds the bounds)."""

_CLOSED_REASON = {
    "pre_open": "session_pre_open",
    "suspended": "session_suspended",
    "closed": "session_closed",
}

ER = ExecutionReport  # positional construction in the hot path


class Matcher:
    """Books for every listed symbol, with validation and session state.

    ``band_pct`` is the allowed distance of a limit price from the security's
    reference price (``None`` disables the band); ``members`` None accepts any
    member id (open membership, e.g. for replays of foreign data).
    """

    def __init__(
        self,
        securities: Iterable[Security],
        members: Iterable[str] | None = None,
        *,
        stp: StpMode = "cancel_resting",
        band_pct: float | None = 10.0,
        status: BookStatus = "pre_open",
    ) -> None:
        if stp not in STP_MODES:
            raise ValueError(f"unknown STP mode {stp!r}; choose one of {STP_MODES}")
        self.stp: StpMode = stp
        self.members: frozenset[str] | None = frozenset(members) if members is not None else None
        self.books: dict[str, Book] = {}
        self._admitted: set[str] = set()  # member ids already checked (listed and well-formed)
        self._bands: dict[str, tuple[int, int]] = {}
        for sec in securities:
            self.books[sec.symbol] = Book(sec, status)
            if band_pct is None:
                self._bands[sec.symbol] = (1, 1 << 62)
            else:
                # exact rational arithmetic: the edges are inclusive and never off by a unit
                width = Fraction(sec.reference_price) * Fraction(str(band_pct)) / 100
                self._bands[sec.symbol] = (
                    max(1, math.ceil(sec.reference_price - width)),
                    math.floor(sec.reference_price + width),
                )

    # -- entry points ------------------------------------------------------
    def process(self, request: OrderRequest | SessionControl, out: list[Event]) -> None:
        """Apply one request; append its reports (and trades) to ``out``."""
        if type(request) is NewOrder:
            self._new(request, out)
        elif type(request) is CancelOrder:
            self._cancel(request, out)
        elif type(request) is AmendOrder:
            self._amend(request, out)
        elif type(request) is SessionControl:
            self.control(request, out)
        else:
            raise TypeError(f"not an order request: {type(request).__name__}")

    def submit(self, request: OrderRequest | SessionControl) -> list[Event]:
        """Convenience: process one request and return its events."""
        out: list[Event] = []
        self.process(request, out)
        return out

    def control(self, ctl: SessionControl, out: list[Event]) -> None:
        """Move one book (or all) through the session state machine.

        Raises ``SessionError`` on an illegal transition, leaving every book as
        it was; on ``close`` every resting order expires with a report.
        """
        if ctl.symbol is not None:
            if ctl.symbol not in self.books:
                raise SessionError(f"unknown symbol {ctl.symbol!r} in control event")
            books = [self.books[ctl.symbol]]
        else:
            books = list(self.books.values())
        targets = [next_status(b.status, ctl.action) for b in books]  # validate all first
        for book, target in zip(books, targets, strict=True):
            book.status = target
            if target == "closed":
                self._expire_all(book, ctl.ts, out)

    # -- new order -----------------------------------------------------------
    def _reject(
        self,
        book: Book | None,
        order_id: int,
        member: str,
        symbol: str,
        side: Side | None,
        request: RequestKind,
        reason: str,
        price: int | None,
        ts: int,
        out: list[Event],
    ) -> None:
        if book is None:
            seq = 0  # no book: the symbol is unknown, nothing to sequence against
        else:
            book.exec_seq += 1
            seq = book.exec_seq
        out.append(
            ER(seq, order_id, member, symbol, side, "rejected", "rejected", request, reason, price,
               0, None, 0, 0, None, ts)
        )  # fmt: skip

    def _entry_reason(self, oid: int, member: str, symbol: str, ts: int) -> str | None:
        """Membership and the bounds of ids and time; admits a member id once it passes."""
        if self.members is not None and member not in self.members:
            return "unknown_member"
        reason = request_bounds_reason(oid, member, symbol, ts)
        if reason is None or reason != "invalid_member":
            self._admitted.add(member)
        return reason

    def _bounds(self, oid: int, member: str, symbol: str, ts: int) -> str | None:
        """``request_bounds_reason`` for a listed symbol, skipping the id pattern for a member
        already admitted (the hot path of cancels and amends)."""
        if (
            member in self._admitted
            and type(oid) is int
            and 0 < oid <= MAX_ORDER_ID
            and type(ts) is int
            and 0 <= ts <= MAX_TS
        ):
            return None
        return request_bounds_reason(oid, member, symbol, ts)

    def _new(self, o: NewOrder, out: list[Event]) -> None:
        book = self.books.get(o.symbol)
        oid, member, side, qty, price, ts = o.order_id, o.member, o.side, o.qty, o.price, o.ts
        if book is None:
            why = request_bounds_reason(oid, member, o.symbol, ts) or "unknown_symbol"
            return self._reject(None, oid, member, o.symbol, side, "new", why, price, ts, out)
        reason: str | None = None
        if not (
            member in self._admitted
            and type(oid) is int
            and 0 < oid <= MAX_ORDER_ID
            and type(ts) is int
            and 0 <= ts <= MAX_TS
        ):
            reason = self._entry_reason(oid, member, o.symbol, ts)
        if reason is not None:
            pass
        elif book.status != "open":
            reason = _CLOSED_REASON[book.status]
        elif side != "buy" and side != "sell":
            reason = "invalid_side"
        elif type(qty) is not int or qty <= 0:
            reason = "invalid_quantity"
        elif qty > MAX_QTY:
            reason = "qty_too_large"
        elif qty % book.security.lot:
            reason = "lot_size"
        elif o.order_type == "limit":
            if price is None:
                reason = "missing_price"
            elif type(price) is not int or price <= 0:
                reason = "invalid_price"
            elif price > MAX_PRICE:
                reason = "price_too_large"
            elif price % book.security.tick:
                reason = "tick_size"
            elif price * qty > MAX_NOTIONAL:
                reason = "notional_too_large"
            else:
                lo, hi = self._bands[o.symbol]
                if price < lo or price > hi:
                    reason = "price_band"
        elif o.order_type == "market":
            if price is not None:
                reason = "unexpected_price"
        else:
            reason = "invalid_order_type"
        tif = o.tif
        if reason is None:
            if tif != "day" and tif != "ioc" and tif != "fok":
                reason = "invalid_tif"
            elif oid in book.seen_ids:
                reason = "duplicate_order_id"
        if reason is not None:
            return self._reject(book, oid, member, o.symbol, side, "new", reason, price, ts, out)
        book.seen_ids.add(oid)
        book.exec_seq += 1
        out.append(
            ER(book.exec_seq, oid, member, o.symbol, side, "new", "new", "new", None, price,
               0, None, qty, 0, None, ts)
        )  # fmt: skip
        order = RestingOrder(oid, member, side, price if price is not None else 0, qty, 0, ts)
        if tif == "fok" and not self._fok_fillable(book, order, price):
            book.exec_seq += 1
            out.append(
                ER(book.exec_seq, oid, member, o.symbol, side, "expired", "expired", None,
                   "fok_not_fillable", price, 0, None, 0, 0, None, ts)
            )  # fmt: skip
            return None
        # A stale heap top only understates how good the best opposite price
        # is, so "no cross at the top" is exact and skips the matching loop.
        if price is None:
            self._match(book, order, price, ts, out)
        elif side == "buy":
            if book.ask_heap and book.ask_heap[0] <= price:
                self._match(book, order, price, ts, out)
        elif book.bid_heap and -book.bid_heap[0] >= price:
            self._match(book, order, price, ts, out)
        if order.qty > order.cum:
            if tif == "day" and price is not None:
                self._rest(book, order)
            else:
                self._expire_remainder(book, order, price, ts, "unfilled_remainder", out)
        return None

    # -- matching --------------------------------------------------------------
    def _match(
        self, book: Book, agg: RestingOrder, limit: int | None, ts: int, out: list[Event]
    ) -> None:
        """Match ``agg`` against the opposite side up to ``limit`` (None: any price)."""
        symbol = book.security.symbol
        buy = agg.side == "buy"
        if buy:
            levels, heap, in_heap, sign = book.asks, book.ask_heap, book.ask_in_heap, 1
        else:
            levels, heap, in_heap, sign = book.bids, book.bid_heap, book.bid_in_heap, -1
        stp = self.stp
        member = agg.member
        orders = book.orders
        aid = agg.order_id
        aside = agg.side
        while agg.qty > agg.cum and heap:
            best = heap[0] * sign
            level = levels.get(best)
            if level is None:
                heappop(heap)
                in_heap.discard(best)
                continue
            if limit is not None and (best > limit if buy else best < limit):
                break
            queue = level.queue
            while queue and agg.qty > agg.cum:
                rest = queue[0]
                rleaves = rest.qty - rest.cum
                if rleaves <= 0:
                    queue.popleft()
                    if level.dead:
                        level.dead -= 1
                    continue
                if rest.member == member and stp != "none":
                    if stp == "cancel_resting" or stp == "cancel_both":
                        queue.popleft()
                        level.qty -= rleaves
                        del orders[rest.order_id]
                        rest.qty = rest.cum
                        book.exec_seq += 1
                        out.append(
                            ER(book.exec_seq, rest.order_id, rest.member, symbol, rest.side,
                               "canceled", "canceled", None, "self_trade_prevention", rest.price,
                               0, None, 0, rest.cum, None, ts)
                        )  # fmt: skip
                    if stp == "cancel_aggressor" or stp == "cancel_both":
                        if level.qty <= 0:  # cancel_both may have emptied the level
                            del levels[best]
                        self._expire_remainder(book, agg, limit, ts, "self_trade_prevention", out)
                        return
                    continue
                fill = agg.qty - agg.cum
                if rleaves < fill:
                    fill = rleaves
                agg.cum += fill
                rest.cum += fill
                level.qty -= fill
                book.trade_seq += 1
                tid = book.trade_seq
                if buy:
                    out.append(
                        Trade(
                            tid,
                            symbol,
                            best,
                            fill,
                            aside,
                            aid,
                            rest.order_id,
                            member,
                            rest.member,
                            ts,
                        )
                    )
                else:
                    out.append(
                        Trade(
                            tid,
                            symbol,
                            best,
                            fill,
                            aside,
                            rest.order_id,
                            aid,
                            rest.member,
                            member,
                            ts,
                        )
                    )
                aleaves = agg.qty - agg.cum
                book.exec_seq += 1
                out.append(
                    ER(book.exec_seq, aid, member, symbol, aside, "trade",
                       "partially_filled" if aleaves else "filled", None, None, limit,
                       fill, best, aleaves, agg.cum, tid, ts)
                )  # fmt: skip
                rleaves -= fill
                book.exec_seq += 1
                out.append(
                    ER(book.exec_seq, rest.order_id, rest.member, symbol, rest.side, "trade",
                       "partially_filled" if rleaves else "filled", None, None, rest.price,
                       fill, best, rleaves, rest.cum, tid, ts)
                )  # fmt: skip
                if not rleaves:
                    queue.popleft()
                    del orders[rest.order_id]
            if level.qty <= 0:
                del levels[best]

    def _fok_fillable(self, book: Book, agg: RestingOrder, limit: int | None) -> bool:
        """Would ``agg`` fill completely, STP applied, without changing the book?"""
        buy = agg.side == "buy"
        levels = book.asks if buy else book.bids
        prices = sorted(levels) if buy else sorted(levels, reverse=True)
        need = agg.qty
        for price in prices:
            if limit is not None and (price > limit if buy else price < limit):
                return False
            for rest in levels[price].queue:
                leaves = rest.qty - rest.cum
                if leaves <= 0:
                    continue
                if rest.member == agg.member and self.stp != "none":
                    if self.stp == "cancel_resting":
                        continue
                    return False
                need -= leaves
                if need <= 0:
                    return True
        return False

    def _rest(self, book: Book, order: RestingOrder) -> None:
        price = order.price
        if order.side == "buy":
            level = book.bids.get(price)
            if level is None:
                level = book.bids[price] = Level(price)
                if price not in book.bid_in_heap:
                    book.bid_in_heap.add(price)
                    heappush(book.bid_heap, -price)
        else:
            level = book.asks.get(price)
            if level is None:
                level = book.asks[price] = Level(price)
                if price not in book.ask_in_heap:
                    book.ask_in_heap.add(price)
                    heappush(book.ask_heap, price)
        level.queue.append(order)
        level.qty += order.qty - order.cum
        book.orders[order.order_id] = order

    def _unlink(self, book: Book, order: RestingOrder) -> None:
        """Take a resting order out of its level and the id map; its queue entry dies.

        Afterwards ``order.qty == order.cum`` (no leaves); the entry is skipped
        lazily, and the level is compacted once dead entries pile up.
        """
        levels = book.bids if order.side == "buy" else book.asks
        level = levels[order.price]
        level.qty -= order.qty - order.cum
        order.qty = order.cum
        del book.orders[order.order_id]
        if level.qty <= 0:
            del levels[order.price]
        else:
            level.dead += 1
            if level.dead > 32 and level.dead > len(level.queue) // 2:
                level.compact()

    def _expire_remainder(
        self,
        book: Book,
        order: RestingOrder,
        price: int | None,
        ts: int,
        reason: str,
        out: list[Event],
    ) -> None:
        book.exec_seq += 1
        out.append(
            ER(book.exec_seq, order.order_id, order.member, book.security.symbol, order.side,
               "expired", "expired", None, reason, price, 0, None, 0, order.cum, None, ts)
        )  # fmt: skip
        order.qty = order.cum

    def _expire_all(self, book: Book, ts: int, out: list[Event]) -> None:
        for order in book.resting():
            self._expire_remainder(book, order, order.price, ts, "session_closed", out)
        book.bids.clear()
        book.asks.clear()
        book.orders.clear()

    # -- cancel / amend ------------------------------------------------------------
    def _cancel(self, c: CancelOrder, out: list[Event]) -> None:
        book = self.books.get(c.symbol)
        oid, member, ts = c.order_id, c.member, c.ts
        if book is None:
            why = request_bounds_reason(oid, member, c.symbol, ts) or "unknown_symbol"
            return self._reject(None, oid, member, c.symbol, None, "cancel", why, None, ts, out)
        order = book.orders.get(oid)
        reason = self._bounds(oid, member, c.symbol, ts)
        if reason is None and order is None:
            reason = "unknown_order"
        if reason is not None:
            return self._reject(book, oid, member, c.symbol, None, "cancel", reason, None, ts, out)
        assert order is not None
        if order.member != c.member:
            return self._reject(
                book,
                c.order_id,
                c.member,
                c.symbol,
                order.side,
                "cancel",
                "not_owner",
                order.price,
                c.ts,
                out,
            )
        self._unlink(book, order)
        book.exec_seq += 1
        out.append(
            ER(book.exec_seq, order.order_id, order.member, c.symbol, order.side, "canceled",
               "canceled", "cancel", None, order.price, 0, None, 0, order.cum, None, c.ts)
        )  # fmt: skip
        return None

    def _amend(self, a: AmendOrder, out: list[Event]) -> None:
        book = self.books.get(a.symbol)
        oid, member, ts = a.order_id, a.member, a.ts
        if book is None:
            why = request_bounds_reason(oid, member, a.symbol, ts) or "unknown_symbol"
            return self._reject(None, oid, member, a.symbol, None, "amend", why, a.price, ts, out)
        order = book.orders.get(oid)
        reason = self._bounds(oid, member, a.symbol, ts)
        if reason is not None:
            pass
        elif order is None:
            reason = "unknown_order"
        elif order.member != member:
            reason = "not_owner"
        elif book.status != "open":
            reason = _CLOSED_REASON[book.status]
        elif type(a.qty) is not int or a.qty <= 0:
            reason = "invalid_quantity"
        elif a.qty % book.security.lot:
            reason = "lot_size"
        elif a.qty > MAX_QTY:
            reason = "qty_too_large"
        elif a.qty <= order.cum:
            reason = "qty_not_above_filled"
        elif a.price is not None:
            if type(a.price) is not int or a.price <= 0:
                reason = "invalid_price"
            elif a.price > MAX_PRICE:
                reason = "price_too_large"
            elif a.price % book.security.tick:
                reason = "tick_size"
            elif a.price * a.qty > MAX_NOTIONAL:
                reason = "notional_too_large"
            else:
                lo, hi = self._bands[a.symbol]
                if a.price < lo or a.price > hi:
                    reason = "price_band"
        if (
            reason is None
            and order is not None
            and a.qty == order.qty
            and (a.price is None or a.price == order.price)
        ):
            reason = "amend_no_change"
        if reason is None and order is not None and order.price * a.qty > MAX_NOTIONAL:
            reason = "notional_too_large"  # quantity up at the resting price
        if reason is not None or order is None:
            side = order.side if order is not None else None
            return self._reject(
                book,
                oid,
                member,
                a.symbol,
                side,
                "amend",
                reason or "unknown_order",
                a.price,
                ts,
                out,
            )
        new_price = order.price if a.price is None else a.price
        if new_price == order.price and a.qty < order.qty:
            # quantity down at the same price: in place, priority kept
            levels = book.bids if order.side == "buy" else book.asks
            levels[order.price].qty -= order.qty - a.qty
            order.qty = a.qty
            book.exec_seq += 1
            out.append(
                ER(book.exec_seq, oid, member, a.symbol, order.side, "replaced", "replaced",
                   "amend", None, new_price, 0, None, a.qty - order.cum, order.cum, None, ts)
            )  # fmt: skip
            return None
        # price change or quantity up: loses priority, may now cross
        self._unlink(book, order)
        replacement = RestingOrder(oid, member, order.side, new_price, a.qty, order.cum, ts)
        book.exec_seq += 1
        out.append(
            ER(book.exec_seq, oid, member, a.symbol, order.side, "replaced", "replaced", "amend",
               None, new_price, 0, None, a.qty - replacement.cum, replacement.cum, None, ts)
        )  # fmt: skip
        self._match(book, replacement, new_price, ts, out)
        if replacement.qty > replacement.cum:
            self._rest(book, replacement)
        return None

    # -- views --------------------------------------------------------------------
    def snapshot(self) -> dict[str, dict[str, object]]:
        """Every book's comparable picture (recovery and parity tests)."""
        return {symbol: book.snapshot() for symbol, book in sorted(self.books.items())}
