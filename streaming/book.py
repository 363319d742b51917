"""One symbol's limit order book: price levels, FIFO queues and best-price heaps.

The data layout is chosen for CPython speed: a dict of price -> level per side,
a heap of prices with lazy deletion for the best price, and a deque per level
whose cancelled entries are skipped lazily and compacted when they pile up.
All state of a symbol lives here (ids, sequences, status), so books can be
split across processes by symbol with identical results.
"""

from __future__ import annotations

from collections import deque
from heapq import heappop
from typing import Literal

from streaming.events import BookTop, Side
from streaming.refdata import Security

BookStatus = Literal["pre_open", "open", "suspended", "closed"]


class RestingOrder:
    """A live order in the book; ``leaves == 0`` marks a dead queue entry."""

    __slots__ = ("cum", "member", "order_id", "price", "qty", "side", "ts")

    def __init__(
        self, order_id: int, member: str, side: Side, price: int, qty: int, cum: int, ts: int
    ) -> None:
        self.order_id = order_id
        self.member = member
        self.side = side
        self.price = price
        self.qty = qty  # total order quantity (filled included)
        self.cum = cum  # filled so far
        self.ts = ts

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


class Book:
    """Both sides of one symbol plus its per-symbol sequences and trading status."""

    __slots__ = (
        "ask_heap",
        "ask_in_heap",
        "asks",
        "bid_heap",
        "bid_in_heap",
        "bids",
        "exec_seq",
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
        self.seen_ids: set[int] = set()
        self.exec_seq = 0
        self.trade_seq = 0

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

    # -- views -------------------------------------------------------------
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
        for price in sorted(self.bids, reverse=True):
            out.extend(o for o in self.bids[price].queue if o.qty > o.cum)
        for price in sorted(self.asks):
            out.extend(o for o in self.asks[price].queue if o.qty > o.cum)
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
