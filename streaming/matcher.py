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
from typing import Literal, get_args

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
from streaming.session import SessionError, transition

StpMode = Literal["cancel_resting", "cancel_aggressor", "cancel_both", "none"]
STP_MODES: tuple[StpMode, ...] = get_args(StpMode)

REJECT_REASONS = (
    "unknown_symbol",
    "unknown_member",
    "session_pre_open",
    "session_suspended",
    "session_closed",
    "symbol_halted",
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
    "halted": "symbol_halted",
}

KILL_SWITCH = "kill_switch"
"""The reason on the cancel reports of orders an operator's kill switch removed."""

ER = ExecutionReport  # positional construction in the hot path


# -- reports ------------------------------------------------------------------------
# One function per kind of report, so a call site reads as what it reports; the
# positional ExecutionReport construction (the fastest) is written out only here.
# Each report takes the book's next execution id.


def _ack(book: Book, out: list[Event], o: NewOrder) -> None:
    seq = book.exec_seq = book.exec_seq + 1
    out.append(
        ER(seq, o.order_id, o.member, o.symbol, o.side, "new", "new", "new", None, o.price,
           0, None, o.qty, 0, None, o.ts)
    )  # fmt: skip


def _reject(
    book: Book | None,
    out: list[Event],
    oid: int,
    member: str,
    symbol: str,
    side: Side | None,
    request: RequestKind,
    reason: str,
    price: int | None,
    ts: int,
) -> None:
    if book is None:
        seq = 0  # no book: the symbol is unknown, nothing to sequence against
    else:
        seq = book.exec_seq = book.exec_seq + 1
    out.append(
        ER(seq, oid, member, symbol, side, "rejected", "rejected", request, reason, price,
           0, None, 0, 0, None, ts)
    )  # fmt: skip


def _canceled(
    book: Book,
    out: list[Event],
    order: RestingOrder,
    request: RequestKind | None,
    reason: str | None,
    ts: int,
) -> None:
    seq = book.exec_seq = book.exec_seq + 1
    out.append(
        ER(seq, order.order_id, order.member, book.security.symbol, order.side, "canceled",
           "canceled", request, reason, order.price, 0, None, 0, order.cum, None, ts)
    )  # fmt: skip


def _replaced(book: Book, out: list[Event], order: RestingOrder, ts: int) -> None:
    seq = book.exec_seq = book.exec_seq + 1
    out.append(
        ER(seq, order.order_id, order.member, book.security.symbol, order.side, "replaced",
           "replaced", "amend", None, order.price, 0, None, order.qty - order.cum, order.cum,
           None, ts)
    )  # fmt: skip


def _expired(
    book: Book, out: list[Event], order: RestingOrder, price: int | None, reason: str, ts: int
) -> None:
    """Report the remainder expired and leave ``order`` without leaves, so no caller can
    go on to match or rest what was just reported gone."""
    seq = book.exec_seq = book.exec_seq + 1
    out.append(
        ER(seq, order.order_id, order.member, book.security.symbol, order.side, "expired",
           "expired", None, reason, price, 0, None, 0, order.cum, None, ts)
    )  # fmt: skip
    order.qty = order.cum


def _trade(
    book: Book,
    out: list[Event],
    agg: RestingOrder,
    rest: RestingOrder,
    qty: int,
    price: int,
    limit: int | None,
    ts: int,
) -> None:
    """The trade, then its two fills, aggressor first (both orders already carry the fill).

    One function for all three because they are always emitted together, in
    this order, and the trade id ties them.
    """
    tid = book.trade_seq = book.trade_seq + 1
    symbol = book.security.symbol
    if agg.side == "buy":
        out.append(
            Trade(tid, symbol, price, qty, agg.side, agg.order_id, rest.order_id, agg.member,
                  rest.member, ts)
        )  # fmt: skip
    else:
        out.append(
            Trade(tid, symbol, price, qty, agg.side, rest.order_id, agg.order_id, rest.member,
                  agg.member, ts)
        )  # fmt: skip
    seq = book.exec_seq
    leaves = agg.qty - agg.cum
    out.append(
        ER(seq + 1, agg.order_id, agg.member, symbol, agg.side, "trade",
           "partially_filled" if leaves else "filled", None, None, limit,
           qty, price, leaves, agg.cum, tid, ts)
    )  # fmt: skip
    leaves = rest.qty - rest.cum
    out.append(
        ER(seq + 2, rest.order_id, rest.member, symbol, rest.side, "trade",
           "partially_filled" if leaves else "filled", None, None, rest.price,
           qty, price, leaves, rest.cum, tid, ts)
    )  # fmt: skip
    book.exec_seq = seq + 2


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
        self._band_pct: dict[str, float | None] = {}
        self.reference: dict[str, int] = {}
        for sec in securities:
            self.books[sec.symbol] = Book(sec, status)
            self._set_band(sec.symbol, sec.reference_price, band_pct)

    def _set_band(self, symbol: str, reference: int, band_pct: float | None) -> None:
        self.reference[symbol] = reference
        self._band_pct[symbol] = band_pct
        if band_pct is None:
            self._bands[symbol] = (1, 1 << 62)
        else:
            # exact rational arithmetic: the edges are inclusive and never off by a unit
            width = Fraction(reference) * Fraction(str(band_pct)) / 100
            self._bands[symbol] = (
                max(1, math.ceil(reference - width)),
                math.floor(reference + width),
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
        """Apply a control event: a session transition or an operator action.

        Raises ``SessionError`` (the event goes to the dead-letter topic with
        it) on an illegal transition or an incomplete operator action, leaving
        every book as it was; on ``close`` every resting order expires with a
        report, on ``kill`` the member's open orders are canceled with one.
        """
        if ctl.symbol is not None:
            if ctl.symbol not in self.books:
                raise SessionError(f"unknown symbol {ctl.symbol!r} in control event")
            books = [self.books[ctl.symbol]]
        else:
            books = list(self.books.values())
        if ctl.action == "kill":
            return self._kill(ctl, books, out)
        if ctl.action == "reference":
            return self._reference(ctl)
        moves = transition({b.security.symbol: b.status for b in books}, ctl.action, ctl.symbol)
        for symbol, target in moves.items():  # all validated before any book changes
            book = self.books[symbol]
            book.status = target
            if target == "closed":
                self._expire_all(book, ctl.ts, out)

    def _kill(self, ctl: SessionControl, books: list[Book], out: list[Event]) -> None:
        """Cancel every open order of ``ctl.member`` (in ``books``), oldest first per book."""
        member = ctl.member
        if not member:
            raise SessionError("kill names the member whose orders are canceled")
        if self.members is not None and member not in self.members:
            raise SessionError(f"unknown member {member!r} in kill")
        for book in books:
            for order in sorted(
                (o for o in book.resting() if o.member == member), key=lambda o: o.order_id
            ):
                book.remove(order)
                _canceled(book, out, order, None, KILL_SWITCH, ctl.ts)

    def _reference(self, ctl: SessionControl) -> None:
        """Set one symbol's reference price (and band, if given): later limits are judged
        against it; resting orders stay (they were valid when entered)."""
        price, pct = ctl.reference_price, ctl.band_pct
        if ctl.symbol is None:
            raise SessionError("reference names its symbol")
        if type(price) is not int or price <= 0 or price > MAX_PRICE:
            raise SessionError(f"reference_price must be 1..{MAX_PRICE} price units, not {price!r}")
        if price % self.books[ctl.symbol].security.tick:
            raise SessionError(f"reference_price {price} is not a multiple of the tick")
        if pct is not None and not (isinstance(pct, int | float) and 0 < pct <= 100):
            raise SessionError(f"band_pct must be in (0, 100], not {pct!r}")
        self._set_band(ctl.symbol, price, self._band_pct[ctl.symbol] if pct is None else pct)

    # -- validation ------------------------------------------------------------------
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

    def _price_reason(self, book: Book, price: int, qty: int) -> str | None:
        """Why a limit price cannot trade at ``qty``, or None.

        New orders and amends share it so that a price is judged the same way
        whichever request carries it. ``qty`` must already be a valid quantity
        (the notional needs it).
        """
        if type(price) is not int or price <= 0:
            return "invalid_price"
        if price > MAX_PRICE:
            return "price_too_large"
        sec = book.security
        if price % sec.tick:
            return "tick_size"
        if price * qty > MAX_NOTIONAL:
            return "notional_too_large"
        lo, hi = self._bands[sec.symbol]
        if price < lo or price > hi:
            return "price_band"
        return None

    # -- new order -----------------------------------------------------------
    def _new(self, o: NewOrder, out: list[Event]) -> None:
        book = self.books.get(o.symbol)
        oid, member, side, qty, price, ts = o.order_id, o.member, o.side, o.qty, o.price, o.ts
        if book is None:
            why = request_bounds_reason(oid, member, o.symbol, ts) or "unknown_symbol"
            return _reject(None, out, oid, member, o.symbol, side, "new", why, price, ts)
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
            reason = "missing_price" if price is None else self._price_reason(book, price, qty)
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
            return _reject(book, out, oid, member, o.symbol, side, "new", reason, price, ts)
        book.seen_ids.add(oid)
        _ack(book, out, o)
        order = RestingOrder(oid, member, side, price if price is not None else 0, qty, 0, ts)
        if tif == "fok" and not self._fok_fillable(book, order, price):
            return _expired(book, out, order, price, "fok_not_fillable", ts)
        level = book.crossing(side, price)
        if level is not None:
            self._match(book, order, level, price, ts, out)
            if order.qty <= order.cum:
                return None
        if tif == "day" and price is not None:
            return book.add(order)
        return _expired(book, out, order, price, "unfilled_remainder", ts)

    # -- matching --------------------------------------------------------------
    def _match(
        self,
        book: Book,
        agg: RestingOrder,
        level: Level,
        limit: int | None,
        ts: int,
        out: list[Event],
    ) -> None:
        """Match ``agg`` against ``level``, then every next level still crossing ``limit``
        (None: any price).

        The first level comes from the caller, who had to ask ``book.crossing``
        anyway to learn whether the order trades at all; asking twice would tax
        every passive order.
        """
        stp = self.stp
        member = agg.member
        side = agg.side
        while True:
            price = level.price
            # a level with nothing live left is already out of the book (fill, cancel_front)
            while agg.qty > agg.cum and level.qty > 0:
                rest = level.queue[0]
                rleaves = rest.qty - rest.cum
                if rleaves <= 0:
                    level.skip_dead()
                    continue
                if rest.member == member and stp != "none":
                    if stp == "cancel_resting" or stp == "cancel_both":
                        _canceled(book, out, book.cancel_front(level), None,
                                  "self_trade_prevention", ts)  # fmt: skip
                    if stp == "cancel_aggressor" or stp == "cancel_both":
                        return _expired(book, out, agg, limit, "self_trade_prevention", ts)
                    continue
                fill = agg.qty - agg.cum
                if rleaves < fill:
                    fill = rleaves
                agg.cum += fill
                book.fill(level, rest, fill)
                _trade(book, out, agg, rest, fill, price, limit, ts)
            if agg.qty <= agg.cum:
                return None
            next_level = book.crossing(side, limit)
            if next_level is None:
                return None
            level = next_level

    def _fok_fillable(self, book: Book, agg: RestingOrder, limit: int | None) -> bool:
        """Would ``agg`` fill completely, STP applied, without changing the book?"""
        buy = agg.side == "buy"
        need = agg.qty
        for level in book.levels("sell" if buy else "buy"):
            price = level.price
            if limit is not None and (price > limit if buy else price < limit):
                return False
            for rest in level.queue:
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

    def _expire_all(self, book: Book, ts: int, out: list[Event]) -> None:
        for order in book.resting():
            _expired(book, out, order, order.price, "session_closed", ts)
        book.clear()

    # -- cancel / amend ------------------------------------------------------------
    def _cancel(self, c: CancelOrder, out: list[Event]) -> None:
        book = self.books.get(c.symbol)
        oid, member, ts = c.order_id, c.member, c.ts
        if book is None:
            why = request_bounds_reason(oid, member, c.symbol, ts) or "unknown_symbol"
            return _reject(None, out, oid, member, c.symbol, None, "cancel", why, None, ts)
        order = book.get(oid)
        reason = self._bounds(oid, member, c.symbol, ts)
        if reason is None and order is None:
            reason = "unknown_order"
        if reason is not None:
            return _reject(book, out, oid, member, c.symbol, None, "cancel", reason, None, ts)
        assert order is not None
        if order.member != member:
            return _reject(
                book, out, oid, member, c.symbol, order.side, "cancel", "not_owner", order.price, ts
            )
        book.remove(order)
        return _canceled(book, out, order, "cancel", None, ts)

    def _amend(self, a: AmendOrder, out: list[Event]) -> None:
        book = self.books.get(a.symbol)
        oid, member, qty, price, ts = a.order_id, a.member, a.qty, a.price, a.ts
        if book is None:
            why = request_bounds_reason(oid, member, a.symbol, ts) or "unknown_symbol"
            return _reject(None, out, oid, member, a.symbol, None, "amend", why, price, ts)
        order = book.get(oid)
        reason = self._bounds(oid, member, a.symbol, ts)
        if reason is not None:
            pass
        elif order is None:
            reason = "unknown_order"
        elif order.member != member:
            reason = "not_owner"
        elif book.status != "open":
            reason = _CLOSED_REASON[book.status]
        elif type(qty) is not int or qty <= 0:
            reason = "invalid_quantity"
        elif qty % book.security.lot:  # before the size cap, unlike a new order: as released
            reason = "lot_size"
        elif qty > MAX_QTY:
            reason = "qty_too_large"
        elif qty <= order.cum:
            reason = "qty_not_above_filled"
        elif price is not None:
            reason = self._price_reason(book, price, qty)
        if (
            reason is None
            and order is not None
            and qty == order.qty
            and (price is None or price == order.price)
        ):
            reason = "amend_no_change"
        if reason is None and order is not None and order.price * qty > MAX_NOTIONAL:
            reason = "notional_too_large"  # quantity up at the resting price
        if reason is not None or order is None:
            side = order.side if order is not None else None
            why = reason or "unknown_order"
            return _reject(book, out, oid, member, a.symbol, side, "amend", why, price, ts)
        new_price = order.price if price is None else price
        if new_price == order.price and qty < order.qty:
            # quantity down at the same price: in place, priority kept
            book.reduce(order, qty)
            return _replaced(book, out, order, ts)
        # price change or quantity up: loses priority, may now cross
        book.remove(order)
        replacement = RestingOrder(oid, member, order.side, new_price, qty, order.cum, ts)
        _replaced(book, out, replacement, ts)
        level = book.crossing(replacement.side, new_price)
        if level is not None:
            self._match(book, replacement, level, new_price, ts, out)
        if replacement.qty > replacement.cum:
            book.add(replacement)
        return None

    # -- views --------------------------------------------------------------------
    def snapshot(self) -> dict[str, dict[str, object]]:
        """Every book's comparable picture (recovery and parity tests)."""
        return {symbol: book.snapshot() for symbol, book in sorted(self.books.items())}
