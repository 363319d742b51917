"""Replay LOBSTER (NASDAQ TotalView-ITCH reconstructions) through our matcher.

LOBSTER ships, per ticker and day, a *message* file (one event per row) and an
*orderbook* file (the top ``N`` price levels after each event). This module
turns message rows into our order requests (:class:`LobsterTranslator`, pure:
no I/O, no clock) and checks that the book our :class:`~streaming.matcher.Matcher`
builds from them shows, after every message, exactly the levels of the
orderbook file (:func:`lobster_match_share`). File access is limited to
:func:`load_zip`, which takes a path, a file object or bytes.

Translation rules. Every order belongs to one member (``LOBSTER_MEMBER``), so
the matcher runs with ``stp="none"``; LOBSTER prices (USD * 10_000) are our
price units; ``ts`` is the LOBSTER time (ns after midnight) plus ``midnight_ns``.

- type 1 (new limit order) -> ``NewOrder`` limit/day with the LOBSTER id.
- type 2 (partial cancel of ``size``) -> ``AmendOrder`` whose ``qty`` is the
  order's total quantity (fills included) minus ``size``: same price, smaller
  quantity, so priority is kept. Cancelling all that is left -> ``CancelOrder``.
- type 3 (deletion) -> ``CancelOrder``.
- type 4 (execution of a visible resting order) -> ``NewOrder`` IOC limit of a
  synthetic aggressor on the other side, at the resting price, for ``size``;
  aggressor ids count up from ``AGGRESSOR_ID_BASE`` (LOBSTER ids are < 1e9).
- types 5 (hidden execution), 6 (cross) and 7 (halt) do not change the
  visible book: skipped and counted.

Orders LOBSTER never shows. A level-``N`` message file only holds events
inside the top ``N`` levels, so besides the orders resting before 09:30 there
are orders entered (and cancelled) while their price was outside the window.
Their quantity is held by *synthetic* orders (ids from ``SYNTHETIC_ID_BASE``):

- Initial book: the first orderbook row with the first message undone
  (:func:`initial_book`); each of its levels becomes one synthetic order.
  Pre-open orders are older than any later one, so these sit at the front.
- Reveal: the previous row pins down every price inside its window (for bids,
  every price at or above its worst shown bid; the whole side if it showed
  fewer than ``N`` levels). When a message moves the window past that (the best
  level emptied, so level ``N + 1`` moves up), the prices that just came into
  view are set from the current row: a synthetic order at the back of a level
  that has too little, a cancel where it has too much (``_choose`` picks whom).
  Prices inside the previous window are never touched, so the comparison
  still checks every one of them against the messages alone.
- A cancel, deletion or execution of an id we do not hold, at price ``p``,
  takes its size from the orders at ``p`` that most likely hold it (``_choose``):
  one order of exactly that size, else stand-ins (synthetic orders), else
  orders not named since their level was last out of view whose sizes add up
  exactly, else those oldest first; orders we know are live come last
  (``unattributed``, zero on the samples).
- Visible orders execute in time priority and LOBSTER ids grow with time, so
  when order ``X`` executes at ``p``, every real order at ``p`` with a smaller
  id must be gone: it becomes a *stand-in* (its quantity kept, but counted as
  belonging to an unknown order).
- An execution must trade against the order LOBSTER names: if our queue has
  other orders ahead of it (a synthetic order's place was a guess), those are
  moved behind (amend up, then back down; ``requeued``) before the aggressor.
- A deletion whose size differs from what we hold for that id (an earlier
  unseen cancel was pinned on the wrong order) is corrected the same way:
  a shortfall is taken from the other orders at the price; a surplus stays in
  the book as a stand-in.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from streaming.book import Book
from streaming.events import (
    AmendOrder,
    CancelOrder,
    Event,
    ExecutionReport,
    NewOrder,
    OrderRequest,
    Trade,
)
from streaming.matcher import Matcher
from streaming.refdata import Security

LOBSTER_MEMBER = "NASDAQ"
"""The one member every replayed order (real, synthetic, aggressor) belongs to."""
AGGRESSOR_ID_BASE = 10**12
"""Order ids of the synthetic aggressors that replay executions (LOBSTER ids are < 1e9)."""
SYNTHETIC_ID_BASE = 2 * 10**12
"""Order ids of synthetic resting orders standing in for orders LOBSTER never showed."""
DUMMY_ASK = 9_999_999_999
DUMMY_BID = -9_999_999_999
NASDAQ_TICK = 100  # $0.01 in price units

SUBMIT, CANCEL, DELETE, EXECUTE, HIDDEN, CROSS, HALT = 1, 2, 3, 4, 5, 6, 7

Levels = list[tuple[int, int]]


class LobsterMessage(NamedTuple):
    """One message row; ``time_ns`` is nanoseconds after midnight."""

    time_ns: int
    kind: int
    order_id: int
    size: int
    price: int
    direction: int  # 1 buy, -1 sell (for executions: the resting order's side)


# -- parsing (bytes in, rows out) ---------------------------------------------------


def _time_ns(text: str) -> int:
    sec, _, frac = text.partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


def parse_messages(data: bytes) -> list[LobsterMessage]:
    """Rows of a LOBSTER message CSV (no header)."""
    out: list[LobsterMessage] = []
    append = out.append
    for line in data.decode("ascii").splitlines():
        if not line:
            continue
        t, k, oid, size, price, d = line.split(",")[:6]
        append(LobsterMessage(_time_ns(t), int(k), int(oid), int(size), int(price), int(d)))
    return out


def parse_orderbook(data: bytes, levels: int) -> npt.NDArray[np.int64]:
    """A LOBSTER orderbook CSV as an ``(rows, 4 * levels)`` int64 array."""
    flat = np.array(data.replace(b",", b" ").split(), dtype=np.int64)
    width = 4 * levels
    if flat.size % width:
        raise ValueError(f"orderbook has {flat.size} values, not a multiple of {width}")
    return flat.reshape(-1, width)


def row_levels(row: Iterable[int], levels: int) -> tuple[Levels, Levels]:
    """(bids, asks) of one orderbook row, best first, dummy levels dropped."""
    values = list(row)
    bids: Levels = []
    asks: Levels = []
    for i in range(levels):
        ap, aq, bp, bq = values[4 * i : 4 * i + 4]
        if ap != DUMMY_ASK:
            asks.append((ap, aq))
        if bp != DUMMY_BID:
            bids.append((bp, bq))
    return bids, asks


def to_row(bids: Levels, asks: Levels, levels: int) -> list[int]:
    """Our depth in LOBSTER's orderbook layout (dummies for empty levels)."""
    row: list[int] = []
    for i in range(levels):
        if i < len(asks):
            row += asks[i]
        else:
            row += (DUMMY_ASK, 0)
        if i < len(bids):
            row += bids[i]
        else:
            row += (DUMMY_BID, 0)
    return row


_NAME = re.compile(
    r"(?P<symbol>[A-Z.]+)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+_"
    r"(?P<kind>message|orderbook)_(?P<levels>\d+)\.csv$"
)
LOBSTER_SAMPLES = {
    f"{sym}_{n}": f"LOBSTER_SampleFile_{sym}_2012-06-21_{n}.zip"
    for sym, n in (("AAPL", 1), ("AMZN", 1), ("AMZN", 5), ("GOOG", 1), ("GOOG", 5), ("GOOG", 10))
}
"""The free LOBSTER sample files (NASDAQ, 2012-06-21): name -> zip file name."""


def session_midnight_ns(date: str, tz: str = "America/New_York") -> int:
    """Unix ns of local midnight on ``date`` (LOBSTER times are seconds after it)."""
    day = datetime.fromisoformat(date).replace(tzinfo=ZoneInfo(tz))
    return int(day.timestamp()) * 1_000_000_000


@dataclass(frozen=True)
class LobsterFiles:
    """The message and orderbook CSVs of one LOBSTER sample, as bytes."""

    symbol: str
    date: str
    levels: int
    message_csv: bytes
    orderbook_csv: bytes


def load_zip(source: str | IO[bytes] | bytes) -> LobsterFiles:
    """Read a LOBSTER sample zip (path, file object or bytes) in memory."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    with zipfile.ZipFile(source) as zf:
        found: dict[str, tuple[str, str, int, bytes]] = {}
        for name in zf.namelist():
            m = _NAME.search(name)
            if m:
                found[m["kind"]] = (m["symbol"], m["date"], int(m["levels"]), zf.read(name))
    if set(found) != {"message", "orderbook"}:
        raise ValueError(f"zip lacks a message or orderbook CSV (found {sorted(found)})")
    symbol, date, levels, messages = found["message"]
    return LobsterFiles(symbol, date, levels, messages, found["orderbook"][3])


# -- the initial book -------------------------------------------------------------


def initial_book(first: LobsterMessage, bids: Levels, asks: Levels) -> tuple[Levels, Levels]:
    """The visible book before the first message: row 0 with message 0 undone.

    A submission is taken out of its level; a cancel, deletion or execution is
    put back (the level may have vanished from row 0). Other kinds leave the
    book unchanged. Levels come back best first.
    """
    if first.kind not in (SUBMIT, CANCEL, DELETE, EXECUTE):
        return list(bids), list(asks)
    side = dict(bids if first.direction == 1 else asks)
    delta = -first.size if first.kind == SUBMIT else first.size
    qty = side.get(first.price, 0) + delta
    if qty > 0:
        side[first.price] = qty
    else:
        side.pop(first.price, None)
    levels = sorted(side.items(), reverse=first.direction == 1)
    return (levels, list(asks)) if first.direction == 1 else (list(bids), levels)


def _exact_subset(values: list[int], target: int) -> list[int] | None:
    """Indices (ascending) of a subset of ``values`` that sums to ``target``, or None."""
    if target <= 0 or sum(values) < target or len(values) > 64:
        return None
    reached: dict[int, tuple[int, int]] = {0: (-1, 0)}  # sum -> (index used, previous sum)
    for i, v in enumerate(values):
        for total in list(reached):
            t = total + v
            if t <= target and t not in reached:
                reached[t] = (i, total)
        if target in reached:
            break
    if target not in reached:
        return None
    out: list[int] = []
    total = target
    while total:
        i, total = reached[total]
        out.append(i)
    return sorted(out)


# -- translation ----------------------------------------------------------------------


class _Order:
    """Our model of one resting order.

    ``stand_in`` marks quantity that belongs to orders we cannot name: the
    synthetic orders, and real orders that the message flow proved gone while
    their quantity is still needed for the level total.
    """

    __slots__ = ("cum", "order_id", "price", "seen", "side", "stand_in", "total")

    def __init__(
        self, order_id: int, side: int, price: int, total: int, stand_in: bool, seen: int
    ) -> None:
        self.order_id = order_id
        self.side = side  # 1 buy, -1 sell
        self.price = price
        self.total = total  # total quantity, fills included (AmendOrder.qty semantics)
        self.cum = 0  # executed so far
        self.stand_in = stand_in
        self.seen = seen  # index of the last message that named this order

    @property
    def leaves(self) -> int:
        return self.total - self.cum


class _Level:
    """Our model of one price level: live orders in time priority."""

    __slots__ = ("orders", "qty", "revealed")

    def __init__(self) -> None:
        self.orders: dict[int, _Order] = {}  # insertion order = priority
        self.qty = 0
        self.revealed = -1  # index of the message after which it last came into view


Take = tuple[_Order, int]


@dataclass
class TranslatorStats:
    """What the translation had to do besides a one-to-one mapping."""

    skipped: dict[int, int] = field(default_factory=lambda: {HIDDEN: 0, CROSS: 0, HALT: 0})
    unknown_refs: int = 0  # messages naming ids we never held (pre-open / outside the window)
    size_mismatches: int = 0  # known ids whose LOBSTER size differs from our leaves
    stand_ins: int = 0  # real orders the flow proved gone (their quantity kept as stand-in)
    unattributed: int = 0  # quantity taken from orders we had seen since they were visible
    missing_qty: int = 0  # quantity LOBSTER removed that our level did not have
    revealed_levels: int = 0  # levels changed from the orderbook file (newly visible prices)
    requeued: int = 0  # orders moved to the back of their level
    synthetic_orders: int = 0
    requests: int = 0


class LobsterTranslator:
    """LOBSTER messages -> order requests for one symbol.

    Deterministic and free of I/O: the output depends only on the messages and
    orderbook rows fed in. It keeps its own model of every resting order (id,
    price, quantity, fills, queue position) so that partial cancels become
    amends of the total quantity and unknown ids can be mapped to synthetic
    orders; it never looks into the matcher.
    """

    def __init__(self, symbol: str, member: str = LOBSTER_MEMBER, midnight_ns: int = 0) -> None:
        self.symbol = symbol
        self.member = member
        self.midnight_ns = midnight_ns
        self.orders: dict[int, _Order] = {}
        self.sides: dict[int, dict[int, _Level]] = {1: {}, -1: {}}
        self.stats = TranslatorStats()
        self.index = -1  # index of the message being translated
        self._next_aggressor = AGGRESSOR_ID_BASE
        self._next_synthetic = SYNTHETIC_ID_BASE

    # -- model ------------------------------------------------------------------------
    def _add(self, order: _Order) -> None:
        levels = self.sides[order.side]
        level = levels.get(order.price)
        if level is None:
            level = levels[order.price] = _Level()
        level.orders[order.order_id] = order
        level.qty += order.leaves
        self.orders[order.order_id] = order

    def _drop(self, order: _Order, level: _Level) -> None:
        del level.orders[order.order_id]
        del self.orders[order.order_id]
        if not level.orders:
            del self.sides[order.side][order.price]

    def _reduce(self, order: _Order, size: int, ts: int, out: list[OrderRequest]) -> None:
        """Cancel ``size`` of a resting order: amend the total down, or cancel the rest."""
        level = self.sides[order.side][order.price]
        level.qty -= size
        if size >= order.leaves:
            out.append(CancelOrder(order.order_id, self.member, self.symbol, ts))
            self._drop(order, level)
        else:
            order.total -= size
            out.append(AmendOrder(order.order_id, self.member, self.symbol, order.total, None, ts))

    def _synthetic(self, side: int, price: int, qty: int, ts: int, out: list[OrderRequest]) -> None:
        oid = self._next_synthetic
        self._next_synthetic += 1
        self._add(_Order(oid, side, price, qty, True, self.index))
        self.stats.synthetic_orders += 1
        out.append(
            NewOrder(oid, self.member, self.symbol, "buy" if side == 1 else "sell", qty, price,
                     "limit", "day", ts)
        )  # fmt: skip

    def _requeue(self, order: _Order, level: _Level, ts: int, out: list[OrderRequest]) -> None:
        """Move ``order`` to the back of its level: amend up (loses priority), then back."""
        self.stats.requeued += 1
        out.append(AmendOrder(order.order_id, self.member, self.symbol, order.total + 1, None, ts))
        out.append(AmendOrder(order.order_id, self.member, self.symbol, order.total, None, ts))
        del level.orders[order.order_id]
        level.orders[order.order_id] = order

    def _choose(
        self, level: _Level, size: int, exclude: _Order | None = None, front: bool = False
    ) -> tuple[list[Take], int]:
        """Whom to take ``size`` from when LOBSTER does not name a held order.

        Candidates, most likely first: stand-ins; then orders not named since
        their level was last out of view (LOBSTER may have cancelled them
        unseen); last, orders we know are live (counted as ``unattributed``).
        A single order of exactly ``size`` wins (whole cancels are the common
        case), then stand-ins, then a set of unseen orders adding up to
        ``size``, then unseen orders oldest first, then live orders newest
        first. ``front`` takes stand-ins from the front of the queue (for
        executions) instead of the back. Returns the choice and what is left.
        """
        stand: list[_Order] = []
        unseen: list[_Order] = []
        live: list[_Order] = []
        for o in level.orders.values():
            if o is exclude:
                continue
            if o.stand_in:
                stand.append(o)
            elif o.seen < level.revealed:
                unseen.append(o)
            else:
                live.append(o)
        for group in (stand, unseen):
            exact = [o for o in group if o.leaves == size]
            if exact:
                return [(exact[0] if front else exact[-1], size)], 0
        chosen: list[Take] = []
        for o in stand if front else reversed(stand):
            take = min(size, o.leaves)
            chosen.append((o, take))
            size -= take
            if not size:
                return chosen, 0
        subset = _exact_subset([o.leaves for o in unseen], size)
        if subset is not None:
            return chosen + [(unseen[i], unseen[i].leaves) for i in subset], 0
        for group, count in ((unseen, False), (live[::-1], True)):
            for o in group:
                take = min(size, o.leaves)
                chosen.append((o, take))
                if count:
                    self.stats.unattributed += take
                size -= take
                if not size:
                    return chosen, 0
        return chosen, size

    def _take(
        self,
        side: int,
        price: int,
        size: int,
        ts: int,
        out: list[OrderRequest],
        exclude: _Order | None = None,
    ) -> None:
        """Cancel ``size`` at a level without knowing the order (see ``_choose``)."""
        level = self.sides[side].get(price)
        if level is None:
            self.stats.missing_qty += size
            return
        chosen, left = self._choose(level, size, exclude)
        self.stats.missing_qty += left
        for order, qty in chosen:
            self._reduce(order, qty, ts, out)

    # -- the initial book -------------------------------------------------------------
    def seed(self, bids: Levels, asks: Levels, ts: int = 0) -> list[OrderRequest]:
        """One synthetic resting order per visible level of the initial book."""
        out: list[OrderRequest] = []
        for side, levels in ((1, bids), (-1, asks)):
            for price, qty in levels:
                self._synthetic(side, price, qty, ts + self.midnight_ns, out)
        self.stats.requests += len(out)
        return out

    # -- messages ------------------------------------------------------------------------
    def translate(self, msg: LobsterMessage) -> list[OrderRequest]:
        """The requests that replay one message (empty for hidden/cross/halt)."""
        self.index += 1
        out: list[OrderRequest] = []
        kind = msg.kind
        ts = msg.time_ns + self.midnight_ns
        if kind == SUBMIT:
            self._add(_Order(msg.order_id, msg.direction, msg.price, msg.size, False, self.index))
            out.append(
                NewOrder(msg.order_id, self.member, self.symbol,
                         "buy" if msg.direction == 1 else "sell", msg.size, msg.price,
                         "limit", "day", ts)
            )  # fmt: skip
        elif kind in (CANCEL, DELETE):
            self._cancel(msg, ts, out)
        elif kind == EXECUTE:
            self._execute(msg, ts, out)
        elif kind in self.stats.skipped:
            self.stats.skipped[kind] += 1
        else:
            raise ValueError(f"unknown LOBSTER message type {kind}")
        self.stats.requests += len(out)
        return out

    def _held(self, msg: LobsterMessage) -> _Order | None:
        order = self.orders.get(msg.order_id)
        if order is None or order.price != msg.price or order.side != msg.direction:
            self.stats.unknown_refs += 1
            return None
        order.seen = self.index
        return order

    def _cancel(self, msg: LobsterMessage, ts: int, out: list[OrderRequest]) -> None:
        order = self._held(msg)
        if order is None:
            self._take(msg.direction, msg.price, msg.size, ts, out)
            return
        leaves, size = order.leaves, msg.size
        if size == leaves or (size < leaves and msg.kind == CANCEL):
            self._reduce(order, size, ts, out)  # the normal case
            return
        self.stats.size_mismatches += 1
        if size < leaves:
            # a deletion of less than we hold: the rest belongs to someone we cannot name
            self._reduce(order, size, ts, out)
            order.stand_in = True
            self.stats.stand_ins += 1
        else:
            # we took some of this order for an unseen cancel: take it from the others now
            self._take(msg.direction, msg.price, size - leaves, ts, out, exclude=order)
            self._reduce(order, leaves, ts, out)

    def _execute(self, msg: LobsterMessage, ts: int, out: list[OrderRequest]) -> None:
        side, price, size = msg.direction, msg.price, msg.size
        level = self.sides[side].get(price)
        if level is None:
            self.stats.unknown_refs += msg.order_id not in self.orders
            self.stats.missing_qty += size
            return
        # Visible orders execute in time priority and LOBSTER ids grow with time:
        # a real order at this price with a smaller id than the executed one
        # would have executed first, so it is gone; its quantity is someone
        # else's (an order we cannot name).
        for o in level.orders.values():
            if not o.stand_in and o.order_id < msg.order_id and o.order_id < AGGRESSOR_ID_BASE:
                o.stand_in = True
                self.stats.stand_ins += 1
        order = self._held(msg)
        chosen: list[Take] = []
        left = size
        if order is not None:
            chosen.append((order, min(size, order.leaves)))
            left -= chosen[0][1]
            if left:
                self.stats.size_mismatches += 1
        if left:
            more, left = self._choose(level, left, exclude=order, front=True)
            chosen += more
            self.stats.missing_qty += left
        if not chosen:
            return
        # bring the chosen orders to the front, so FIFO matching hits just them;
        # only the last one to be hit may be partly filled
        wanted = [o for o, _ in chosen]
        wanted_ids = {id(o) for o in wanted}
        queue = list(level.orders.values())
        position = {id(o): i for i, o in enumerate(queue)}
        in_queue_order = sorted(wanted, key=lambda o: position[id(o)])
        last, take = chosen[-1]
        if take == last.leaves or in_queue_order[-1] is last:
            # move whatever sits between them to the back
            for o in queue[: position[id(in_queue_order[-1])]]:
                if id(o) not in wanted_ids:
                    self._requeue(o, level, ts, out)
        else:
            target = wanted + [o for o in queue if id(o) not in wanted_ids]
            j = 0
            while queue[j] is target[j]:
                j += 1
            for o in target[j:]:
                self._requeue(o, level, ts, out)
        qty = size - left
        oid = self._next_aggressor
        self._next_aggressor += 1
        out.append(
            NewOrder(oid, self.member, self.symbol, "sell" if side == 1 else "buy", qty, price,
                     "limit", "ioc", ts)
        )  # fmt: skip
        for o, take in chosen:
            o.cum += take
            level.qty -= take
            if not o.leaves:
                self._drop(o, level)

    def resting(self) -> list[tuple[int, int, int, int]]:
        """Our model's live orders as (id, side, price, leaves): bids best first, then asks."""
        out: list[tuple[int, int, int, int]] = []
        for side in (1, -1):
            levels = self.sides[side]
            for price in sorted(levels, reverse=side == 1):
                out.extend(
                    (o.order_id, side, price, o.leaves) for o in levels[price].orders.values()
                )
        return out

    # -- reveal --------------------------------------------------------------------------
    def reveal(
        self,
        side: int,
        known_bound: int | None,
        window_bound: int | None,
        row: Levels,
        ts: int,
    ) -> list[OrderRequest]:
        """Set the part of one side that just came into view to the orderbook row.

        ``known_bound`` is the worst price of the previous row's window (None:
        that row showed the whole side, so nothing is new); ``window_bound`` the
        worst price of this row's window (None: this row shows the whole side).
        Prices strictly beyond ``known_bound`` and within this window are set to
        ``row`` (this row's levels on ``side``), best first.
        """
        out: list[OrderRequest] = []
        if known_bound is None:
            return out
        if window_bound is not None and window_bound * side >= known_bound * side:
            return out  # the window did not move past what we knew
        ts += self.midnight_ns
        levels = self.sides[side]
        want: dict[int, int] = {}
        for p, q in row:
            if p * side < known_bound * side:
                want[p] = q
        for p in list(levels):
            if p * side < known_bound * side and (
                window_bound is None or p * side >= window_bound * side
            ):
                want.setdefault(p, 0)
        for price, qty in want.items():
            level = levels.get(price)
            have = 0
            if level is not None:
                level.revealed = self.index
                have = level.qty
            if have == qty:
                continue
            self.stats.revealed_levels += 1
            if qty > have:
                self._synthetic(side, price, qty - have, ts, out)
            else:
                self._take(side, price, have - qty, ts, out)
        self.stats.requests += len(out)
        return out


# -- the reality check -------------------------------------------------------------------


@dataclass
class LobsterResult:
    """How well our book reproduced one LOBSTER orderbook file."""

    symbol: str
    levels: int
    messages: int
    matched: int = 0  # messages after which our top-N row equals LOBSTER's
    requests: int = 0
    rejected: int = 0  # requests the matcher rejected (0 expected)
    trades: int = 0
    traded_qty: int = 0  # our trade volume
    executed_qty: int = 0  # LOBSTER's visible executions (type 4)
    revealed_rows: int = 0  # rows with a level that came into view from beyond the window
    model_checks: int = 0  # comparisons of the matcher's resting orders with our model
    model_mismatches: int = 0  # ... that differed (order, id, price, leaves, priority)
    seconds: float = 0.0
    stats: TranslatorStats = field(default_factory=TranslatorStats)
    first_mismatches: list[dict[str, object]] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.matched / self.messages if self.messages else 1.0

    def as_dict(self) -> dict[str, object]:
        """Plain values for printing or a CLI."""
        st = self.stats
        return {
            "symbol": self.symbol,
            "levels": self.levels,
            "messages": self.messages,
            "matched": self.matched,
            "share": self.share,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "rejected": self.rejected,
            "trades": self.trades,
            "traded_qty": self.traded_qty,
            "executed_qty": self.executed_qty,
            "revealed_rows": self.revealed_rows,
            "model_checks": self.model_checks,
            "model_mismatches": self.model_mismatches,
            "skipped": {
                "hidden": st.skipped[HIDDEN],
                "cross": st.skipped[CROSS],
                "halt": st.skipped[HALT],
            },
            "unknown_refs": st.unknown_refs,
            "synthetic_orders": st.synthetic_orders,
            "revealed_levels": st.revealed_levels,
            "stand_ins": st.stand_ins,
            "size_mismatches": st.size_mismatches,
            "requeued": st.requeued,
            "unattributed": st.unattributed,
            "missing_qty": st.missing_qty,
            "first_mismatches": self.first_mismatches,
        }


def _bounds(bids: Levels, asks: Levels, levels: int) -> tuple[int | None, int | None]:
    """Worst shown bid and ask of a row; None for a side it shows completely."""
    return (
        bids[-1][0] if len(bids) >= levels else None,
        asks[-1][0] if len(asks) >= levels else None,
    )


def _matcher_orders(book: Book) -> list[tuple[int, int, int, int]]:
    return [
        (o.order_id, 1 if o.side == "buy" else -1, o.price, o.qty - o.cum) for o in book.resting()
    ]


def lobster_match_share(
    message_csv: bytes,
    orderbook_csv: bytes,
    levels: int,
    symbol: str = "LOBSTER",
    *,
    tick: int = NASDAQ_TICK,
    reveal: bool = True,
    midnight_ns: int = 0,
    check_every: int = 1000,
    keep_mismatches: int = 5,
) -> LobsterResult:
    """Replay a LOBSTER day through a Matcher; count messages whose full top-N row matches.

    After every message, our top ``levels`` (price and size per level, both
    sides, dummies for empty levels) are compared with that message's
    orderbook row. Before the comparison, prices beyond the previous row's
    window are set from the row (see the module doc); ``reveal`` False skips
    that (a pure message replay, to show how much of a level-N book the
    message file alone cannot explain). Every ``check_every`` messages and at
    the end, the matcher's resting orders (id, side, price, leaves, priority)
    are also compared with the translator's model (``model_mismatches``).
    """
    started = time.perf_counter()
    messages = parse_messages(message_csv)
    book_rows = parse_orderbook(orderbook_csv, levels)
    if len(book_rows) != len(messages):
        raise ValueError(f"{len(messages)} messages but {len(book_rows)} orderbook rows")
    result = LobsterResult(symbol, levels, len(messages))
    if not messages:
        return result
    row0_bids, row0_asks = row_levels(book_rows[0].tolist(), levels)
    bids0, asks0 = initial_book(messages[0], row0_bids, row0_asks)
    best = bids0[0][0] if bids0 else asks0[0][0] if asks0 else 1_000_000
    security = Security(symbol, tick, 1, max(tick, best - best % tick), currency="USD")
    matcher = Matcher([security], members=None, band_pct=None, status="open", stp="none")
    book = matcher.books[symbol]
    tr = LobsterTranslator(symbol, midnight_ns=midnight_ns)
    result.stats = tr.stats
    out: list[Event] = []
    process = matcher.process

    def run(requests: list[OrderRequest]) -> None:
        for req in requests:
            process(req, out)
        for ev in out:
            if type(ev) is Trade:
                result.trades += 1
                result.traded_qty += ev.qty
            elif type(ev) is ExecutionReport and ev.exec_type == "rejected":
                result.rejected += 1
        out.clear()

    def check_model() -> None:
        result.model_checks += 1
        if tr.resting() != _matcher_orders(book):
            result.model_mismatches += 1

    run(tr.seed(bids0, asks0, messages[0].time_ns))
    # the seeded book is known inside the first row's window (message 0 acts inside it)
    known_bid, known_ask = _bounds(row0_bids, row0_asks, levels)
    matched = 0
    for i, msg in enumerate(messages):
        run(tr.translate(msg))
        if msg.kind == EXECUTE:
            result.executed_qty += msg.size
        theirs = book_rows[i].tolist()
        if reveal:
            bids, asks = row_levels(theirs, levels)
            new_bid, new_ask = _bounds(bids, asks, levels)
            shown = tr.reveal(1, known_bid, new_bid, bids, msg.time_ns)
            shown += tr.reveal(-1, known_ask, new_ask, asks, msg.time_ns)
            if shown:
                result.revealed_rows += 1
                run(shown)
            known_bid, known_ask = new_bid, new_ask
        our_bids, our_asks = book.depth(levels)
        ours = to_row(our_bids, our_asks, levels)
        if ours == theirs:
            matched += 1
        elif len(result.first_mismatches) < keep_mismatches:
            result.first_mismatches.append(
                {"index": i, "message": msg._asdict(), "ours": ours, "theirs": theirs}
            )
        if check_every and i % check_every == check_every - 1:
            check_model()
    check_model()
    result.matched = matched
    result.requests = tr.stats.requests
    result.seconds = time.perf_counter() - started
    return result


def check_lobster_zip(source: str | IO[bytes] | bytes, **options: Any) -> LobsterResult:
    """:func:`lobster_match_share` for one LOBSTER sample zip (path, file object or bytes)."""
    files = load_zip(source)
    options.setdefault("midnight_ns", session_midnight_ns(files.date))
    return lobster_match_share(
        files.message_csv, files.orderbook_csv, files.levels, files.symbol, **options
    )
