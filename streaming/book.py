"""One symbol's limit order book: price levels, FIFO queues and best-price heaps.

The book owns its levels and its order index; the matcher decides what trades
and asks the book to change. Keeping every structural change here is what
keeps the invariants (no empty level in the dicts, ``level.qty`` equal to the
live leaves, index equal to the live orders) in one place.

The data layout is chosen for CPython speed: a dict of price -> level per side,
a heap of prices with lazy deletion for the best price, and a deque per level
whose cancelled entries are skipped lazily and compacted when they pile up.
All state of a symbol lives here (ids, sequences, status), so books can be
split across processes by symbol with identical results.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heappop, heappush

import msgspec

from streaming.events import BookTop, Side
from streaming.refdata import Security
from streaming.session import SessionStatus

BookStatus = SessionStatus


class RestingOrder(msgspec.Struct, gc=False, eq=False):
    """A live order in the book; ``leaves == 0`` marks a dead queue entry.

    A Struct because one is built for every accepted order: construction in C
    is several times cheaper than a Python ``__init__``, and with ``gc=False``
    the resting orders (ints and strings only) never feed the cyclic
    collector. ``eq=False`` keeps identity semantics: two orders with equal
    fields are still two queue entries.
    """

    order_id: int
    member: str
    side: Side
    price: int
    qty: int  # total order quantity (filled included)
    cum: int  # filled so far
    ts: int

    @property
    def leaves(self) -> int:
        return self.qty - self.cum


class Level:
    """All orders at one price, in time priority; ``qty`` is the live total."""

    __slots__ = ("dead", "price", "qty", "queue")

    def __init__(self, price: int) -> None:
        self.price = price
        self.queue: deque[RestingOrder] = deque()
        self.qty = 0
        self.dead = 0  # cancelled entries still in the queue

    def compact(self) -> None:
        """Drop cancelled entries once they outnumber live ones (keeps memory bounded)."""
        self.queue = deque(o for o in self.queue if o.qty > o.cum)
        self.dead = 0

    def skip_dead(self) -> None:
        """Drop the dead entry at the front: cancels leave their entry behind for speed,
        and matching is where it is finally paid for."""
        self.queue.popleft()
        if self.dead:
            self.dead -= 1


class Book:
    """Both sides of one symbol plus its per-symbol sequences and trading status.

    ``get`` looks an order up by id: it is the index's own ``dict.get``, bound
    once, so the cancel and amend paths pay no extra Python frame for asking.
    """

    __slots__ = (
        "ask_heap",
        "ask_in_heap",
        "asks",
        "bid_heap",
        "bid_in_heap",
        "bids",
        "exec_seq",
        "get",
        "orders",
        "security",
        "seen_ids",
        "status",
        "trade_seq",
    )

    def __init__(self, security: Security, status: BookStatus = "pre_open") -> None:
        self.security = security
        self.status: BookStatus = status
        self.bids: dict[int, Level] = {}
        self.asks: dict[int, Level] = {}
        self.bid_heap: list[int] = []  # negated prices
        self.ask_heap: list[int] = []
        self.bid_in_heap: set[int] = set()
        self.ask_in_heap: set[int] = set()
        self.orders: dict[int, RestingOrder] = {}
        self.get: Callable[[int], RestingOrder | None] = self.orders.get
        self.seen_ids: set[int] = set()
        self.exec_seq = 0
        self.trade_seq = 0

    # -- changes -----------------------------------------------------------
    def add(self, order: RestingOrder) -> None:
        """Queue ``order`` at the back of its price level: arrival here is its time priority."""
        price = order.price
        if order.side == "buy":
            level = self.bids.get(price)
            if level is None:
                level = self.bids[price] = Level(price)
                if price not in self.bid_in_heap:  # a lazily deleted price may still be there
                    self.bid_in_heap.add(price)
                    heappush(self.bid_heap, -price)
        else:
            level = self.asks.get(price)
            if level is None:
                level = self.asks[price] = Level(price)
                if price not in self.ask_in_heap:
                    self.ask_in_heap.add(price)
                    heappush(self.ask_heap, price)
        level.queue.append(order)
        level.qty += order.qty - order.cum
        self.orders[order.order_id] = order

    def remove(self, order: RestingOrder) -> None:
        """Take a resting order out of its level and the index, wherever it is queued.

        Afterwards ``order.qty == order.cum`` (no leaves); its queue entry is
        skipped lazily, because finding it in the deque would cost a scan, and
        the level is compacted once dead entries pile up.
        """
        levels = self.bids if order.side == "buy" else self.asks
        level = levels[order.price]
        level.qty -= order.qty - order.cum
        order.qty = order.cum
        del self.orders[order.order_id]
        if level.qty <= 0:
            del levels[order.price]
        else:
            level.dead += 1
            if level.dead > 32 and level.dead > len(level.queue) // 2:
                level.compact()

    def reduce(self, order: RestingOrder, qty: int) -> None:
        """Lower a resting order's total quantity in place, so it keeps its time priority."""
        levels = self.bids if order.side == "buy" else self.asks
        levels[order.price].qty -= order.qty - qty
        order.qty = qty

    def fill(self, level: Level, order: RestingOrder, qty: int) -> None:
        """Fill ``qty`` of ``order``, the live front of ``level``; a filled order leaves
        the book, and so does the level once nothing live is left in it."""
        order.cum += qty
        level.qty -= qty
        if order.qty == order.cum:
            level.queue.popleft()
            del self.orders[order.order_id]
            if level.qty <= 0:
                del (self.bids if order.side == "buy" else self.asks)[level.price]

    def cancel_front(self, level: Level) -> RestingOrder:
        """Take the live front of ``level`` out (self-trade prevention cancels it while
        matching); the level goes too once nothing live is left in it."""
        order = level.queue.popleft()
        level.qty -= order.qty - order.cum
        order.qty = order.cum
        del self.orders[order.order_id]
        if level.qty <= 0:
            del (self.bids if order.side == "buy" else self.asks)[level.price]
        return order

    def clear(self) -> None:
        """Forget every resting order (the session closed; they were expired one by one).

        The heaps keep their prices: they are stale entries like any other and
        are dropped lazily.
        """
        self.bids.clear()
        self.asks.clear()
        self.orders.clear()

    # -- best prices -----------------------------------------------------
    def best_bid(self) -> int | None:
        heap, levels = self.bid_heap, self.bids
        while heap:
            price = -heap[0]
            if price in levels:
                return price
            heappop(heap)
            self.bid_in_heap.discard(price)
        return None

    def best_ask(self) -> int | None:
        heap, levels = self.ask_heap, self.asks
        while heap:
            price = heap[0]
            if price in levels:
                return price
            heappop(heap)
            self.ask_in_heap.discard(price)
        return None

    def crossing(self, side: Side, limit: int | None) -> Level | None:
        """The best opposite level an order of ``side`` trades with at ``limit`` (None:
        at any price), or None.

        One call answers both "does it cross?" and "against what?", which keeps
        the common case (a passive order) to a single look at the heap. A stale
        top only understates how good the best opposite price is, so a top
        beyond the limit ends the search exactly, without cleaning the heap.
        """
        if side == "buy":
            heap, levels = self.ask_heap, self.asks
            while heap:
                price = heap[0]
                if limit is not None and price > limit:
                    return None
                level = levels.get(price)
                if level is not None:
                    return level
                heappop(heap)
                self.ask_in_heap.discard(price)
            return None
        heap, levels = self.bid_heap, self.bids
        while heap:
            price = -heap[0]
            if limit is not None and price < limit:
                return None
            level = levels.get(price)
            if level is not None:
                return level
            heappop(heap)
            self.bid_in_heap.discard(price)
        return None

    # -- views -------------------------------------------------------------
    def levels(self, side: Side) -> list[Level]:
        """One side's levels in price priority (best first): sorting on demand is cheaper
        than keeping them sorted, since only FOK checks and views walk them."""
        if side == "buy":
            return [self.bids[p] for p in sorted(self.bids, reverse=True)]
        return [self.asks[p] for p in sorted(self.asks)]

    def depth(self, levels: int = 5) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Aggregated (price, qty) per level, best first, ``levels`` per side."""
        bids = [(p, self.bids[p].qty) for p in sorted(self.bids, reverse=True)[:levels]]
        asks = [(p, self.asks[p].qty) for p in sorted(self.asks)[:levels]]
        return bids, asks

    def top(self, ts: int, levels: int = 5) -> BookTop:
        bids, asks = self.depth(levels)
        bp, bq = bids[0] if bids else (None, 0)
        ap, aq = asks[0] if asks else (None, 0)
        return BookTop(self.security.symbol, ts, bp, bq, ap, aq, bids, asks)

    def touch(self) -> tuple[int | None, int, int | None, int]:
        """(bid, bid qty, ask, ask qty): cheap change detection for BBO publishing."""
        bp = self.best_bid()
        ap = self.best_ask()
        return (
            bp,
            self.bids[bp].qty if bp is not None else 0,
            ap,
            self.asks[ap].qty if ap is not None else 0,
        )

    def resting(self) -> list[RestingOrder]:
        """Live orders in priority order per side (bids best first, then asks)."""
        out: list[RestingOrder] = []
        for level in self.levels("buy") + self.levels("sell"):
            out.extend(o for o in level.queue if o.qty > o.cum)
        return out

    def snapshot(self) -> dict[str, object]:
        """A plain, comparable picture of the book (tests, recovery checks)."""
        return {
            "symbol": self.security.symbol,
            "status": self.status,
            "orders": [
                (o.order_id, o.member, o.side, o.price, o.qty, o.cum, o.ts) for o in self.resting()
            ],
            "exec_seq": self.exec_seq,
            "trade_seq": self.trade_seq,
        }
