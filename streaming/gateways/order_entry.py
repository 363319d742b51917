"""Client order entry: what a gateway keeps per member between a program and the matcher.

A trading program names its orders with its own ids (FIX ClOrdID, the REST
API's client order id) and refers to earlier ones when it cancels or
replaces (OrigClOrdID); the matcher knows only integer order ids per book.
This module is that translation and nothing else, pure so that the FIX
acceptor and the HTTP API share it and a test can drive it without either:

- exchange order ids come from the gateway's own range, so they never meet
  the simulator's or the members' in a book;
- a client id is used once per member and trading day (a second use is
  refused with ``duplicate_cl_ord_id``), and a chain of replaces keeps every
  id of the order (a cancel may name any of them, as FIX allows);
- a member only ever finds its own orders: lookups are per member, so
  another member's id is simply unknown (``unknown_order``), never "not yours";
- every execution report of the matcher maps back to the client's view of
  the order (status, cumulative and leaves quantity, average price) and, for
  a cancel or replace, to the request that caused it, so a refused one can be
  answered as FIX's OrderCancelReject.

State is rebuilt after a restart by feeding the day's own requests and
reports back in log order (:meth:`OrderEntry.replay`): the log is the truth.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from streaming.events import (
    GATEWAY_ID_BASE,
    PRICE_SCALE,
    AmendOrder,
    CancelOrder,
    ExecutionReport,
    NewOrder,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)
from streaming.portfolio import Account

MAX_CL_ORD_ID = 64
"""Longest client order id kept (FIX leaves it open; venues cap it around here)."""

EntryReason = Literal[
    "duplicate_cl_ord_id",
    "invalid_cl_ord_id",
    "unknown_order",
    "order_not_open",
    "insufficient_position",
    "insufficient_cash",
]
ClientStatus = Literal[
    "pending_new", "new", "partially_filled", "filled", "canceled", "rejected", "expired"
]


class EntryRejected(ValueError):
    """A request refused by the gateway before it reaches the matcher, with its reason code."""

    def __init__(self, reason: EntryReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: EntryReason = reason
        self.detail = detail


@dataclass
class ClientOrder:
    """One order as its owner sees it: every client id of its chain and where it stands."""

    member: str
    order_id: int
    cl_ord_ids: list[str]  # the chain, first to latest (the latest names the order now)
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    qty: int  # current total quantity (after accepted replaces)
    price: int | None
    status: ClientStatus = "pending_new"
    cum_qty: int = 0
    leaves_qty: int = 0
    notional: int = 0  # sum of fill price x quantity: the average price's numerator
    reason: str | None = None  # of the reject or the last cancel/expiry
    origin: str = "api"  # the gateway that entered it ("api", "fix")

    @property
    def cl_ord_id(self) -> str:
        return self.cl_ord_ids[-1]

    @property
    def avg_px(self) -> float:
        """Average fill price in price units (0.0 before the first fill)."""
        return self.notional / self.cum_qty if self.cum_qty else 0.0

    @property
    def open(self) -> bool:
        return self.status in ("pending_new", "new", "partially_filled")


@dataclass(frozen=True)
class Pending:
    """A cancel or replace sent and not yet answered: which client id it carries."""

    kind: Literal["cancel", "amend"]
    cl_ord_id: str
    orig_cl_ord_id: str
    qty: int | None = None
    price: int | None = None


@dataclass(frozen=True)
class Update:
    """What one execution report means to the order's owner.

    ``cl_ord_id`` is the id the report answers (the cancel's or replace's own
    id for those, else the order's current one); ``refused`` is set when it
    refused a cancel or replace (FIX: OrderCancelReject, the order unchanged).
    """

    order: ClientOrder
    report: ExecutionReport
    cl_ord_id: str
    orig_cl_ord_id: str | None = None
    refused: Pending | None = None


@dataclass
class _Member:
    by_cl_ord_id: dict[str, ClientOrder] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)  # every client id ever sent, cancels included


class OrderEntry:
    """Client ids to exchange ids and back, for every member one gateway serves."""

    def __init__(self, id_base: int = GATEWAY_ID_BASE) -> None:
        self.next_id = id_base
        self._members: dict[str, _Member] = {}
        self._by_order: dict[tuple[str, int], ClientOrder] = {}
        self._pending: dict[tuple[str, int], deque[Pending]] = {}

    # -- requests ------------------------------------------------------------------------------
    def new(
        self,
        member: str,
        cl_ord_id: str,
        symbol: str,
        side: Side,
        qty: int,
        price: int | None,
        order_type: OrderType,
        tif: TimeInForce,
        ts: int,
        origin: str = "api",
    ) -> NewOrder:
        """The matcher's request for a new client order (``EntryRejected`` if the id is used).

        ``origin``: the gateway it came through, which sends its reports back.
        """
        book = self._member(member)
        self._fresh(book, cl_ord_id)
        self.next_id += 1
        order = ClientOrder(member, self.next_id, [cl_ord_id], symbol, side, order_type, tif, qty,
                            price, leaves_qty=qty, origin=origin)  # fmt: skip
        book.used.add(cl_ord_id)
        book.by_cl_ord_id[cl_ord_id] = order
        self._by_order[(symbol, order.order_id)] = order
        return NewOrder(order.order_id, member, symbol, side, qty, price, order_type, tif, ts)

    def cancel(self, member: str, cl_ord_id: str, orig_cl_ord_id: str, ts: int) -> CancelOrder:
        """Cancel the order ``orig_cl_ord_id`` names (any id of its chain) under ``cl_ord_id``."""
        book = self._member(member)
        order = self._find(book, orig_cl_ord_id)
        self._fresh(book, cl_ord_id)
        book.used.add(cl_ord_id)
        self._queue(order).append(Pending("cancel", cl_ord_id, orig_cl_ord_id))
        return CancelOrder(order.order_id, member, order.symbol, ts)

    def amend(
        self,
        member: str,
        cl_ord_id: str,
        orig_cl_ord_id: str,
        qty: int,
        price: int | None,
        ts: int,
    ) -> AmendOrder:
        """Replace quantity and/or price of the order ``orig_cl_ord_id`` names."""
        book = self._member(member)
        order = self._find(book, orig_cl_ord_id)
        self._fresh(book, cl_ord_id)
        book.used.add(cl_ord_id)
        self._queue(order).append(Pending("amend", cl_ord_id, orig_cl_ord_id, qty, price))
        return AmendOrder(order.order_id, member, order.symbol, qty, price, ts)

    # -- lookups -------------------------------------------------------------------------------
    def order(self, member: str, cl_ord_id: str) -> ClientOrder:
        """The member's order any id of its chain names (``EntryRejected`` if none)."""
        return self._find(self._member(member), cl_ord_id, need_open=False)

    def orders(self, member: str, open_only: bool = False) -> list[ClientOrder]:
        """The member's orders in the order they were entered (each once)."""
        seen: dict[int, ClientOrder] = {}
        for o in self._member(member).by_cl_ord_id.values():
            if not open_only or o.open:
                seen.setdefault(o.order_id, o)
        return sorted(seen.values(), key=lambda o: o.order_id)

    def owns(self, symbol: str, order_id: int) -> bool:
        return (symbol, order_id) in self._by_order

    # -- reports -------------------------------------------------------------------------------
    def on_report(self, er: ExecutionReport) -> Update | None:
        """Apply one of the matcher's reports; None if it is not about one of our orders."""
        order = self._by_order.get((er.symbol, er.order_id))
        if order is None or er.member != order.member:
            return None
        if er.request in ("cancel", "amend"):
            return self._answer(order, er)
        if er.exec_type == "new":
            order.status, order.leaves_qty = "new", er.leaves_qty
        elif er.exec_type == "rejected":
            order.status, order.reason, order.leaves_qty = "rejected", er.reason, 0
        elif er.exec_type == "trade":
            order.cum_qty, order.leaves_qty = er.cum_qty, er.leaves_qty
            order.notional += er.last_qty * (er.last_price or 0)
            order.status = "filled" if er.leaves_qty == 0 else "partially_filled"
        elif er.exec_type == "canceled" or er.exec_type == "expired":
            # self-trade prevention, the kill switch, an IOC/FOK/market remainder, the close
            order.status, order.reason, order.leaves_qty = er.exec_type, er.reason, 0
        return Update(order, er, order.cl_ord_id)

    def _answer(self, order: ClientOrder, er: ExecutionReport) -> Update:
        """A report answering a cancel or replace: the oldest pending one of that kind."""
        queue = self._queue(order)
        pending = next((p for p in queue if p.kind == er.request), None)
        if pending is None:  # a request another writer sent for this id (none should)
            return Update(order, er, order.cl_ord_id)
        queue.remove(pending)
        if er.exec_type == "rejected":
            return Update(order, er, pending.cl_ord_id, pending.orig_cl_ord_id, refused=pending)
        if er.exec_type == "canceled":
            order.status, order.reason, order.leaves_qty = "canceled", er.reason, 0
        else:  # replaced: the chain moves on to the replace's id
            order.qty = er.leaves_qty + er.cum_qty
            order.leaves_qty = er.leaves_qty
            if pending.price is not None:
                order.price = pending.price
            order.status = "partially_filled" if order.cum_qty else "new"
        self._member(order.member).by_cl_ord_id[pending.cl_ord_id] = order
        if er.exec_type == "replaced":
            order.cl_ord_ids.append(pending.cl_ord_id)
        return Update(order, er, pending.cl_ord_id, pending.orig_cl_ord_id)

    # -- recovery ------------------------------------------------------------------------------
    def replay(
        self,
        sent: list[tuple[OrderRequest, str, str | None]],
        reports: list[ExecutionReport],
        origins: dict[int, str] | None = None,
    ) -> list[Update]:
        """Rebuild from the day's log: our requests (with their client ids) and the reports.

        ``sent`` holds (request, cl_ord_id, orig_cl_ord_id) in the order they
        were written, ``reports`` the matcher's in theirs. A report carries
        its request's time, so merging by time (requests first) puts every
        answer after its request, as it happened; the next order id continues
        after the highest seen. Returns the updates the reports made, in order.
        """
        timeline = sorted(
            [(item[0].ts, 0, i) for i, item in enumerate(sent)]
            + [(er.ts, 1, i) for i, er in enumerate(reports)]
        )
        updates: list[Update] = []
        for _, is_report, i in timeline:
            if is_report:
                update = self.on_report(reports[i])
                if update is not None:
                    updates.append(update)
                continue
            request, cl_ord_id, orig = sent[i]
            if isinstance(request, NewOrder):
                self.next_id = max(self.next_id, request.order_id - 1)
                self.new(request.member, cl_ord_id, request.symbol, request.side, request.qty,
                         request.price, request.order_type, request.tif, request.ts,
                         (origins or {}).get(request.order_id, "api"))  # fmt: skip
            elif isinstance(request, CancelOrder) and orig is not None:
                self.cancel(request.member, cl_ord_id, orig, request.ts)
            elif isinstance(request, AmendOrder) and orig is not None:
                self.amend(request.member, cl_ord_id, orig, request.qty, request.price, request.ts)
        return updates

    # -- helpers -------------------------------------------------------------------------------
    def _member(self, member: str) -> _Member:
        return self._members.setdefault(member, _Member())

    def _fresh(self, book: _Member, cl_ord_id: str) -> None:
        if not isinstance(cl_ord_id, str) or not cl_ord_id or len(cl_ord_id) > MAX_CL_ORD_ID:
            raise EntryRejected(
                "invalid_cl_ord_id", f"a client order id is 1..{MAX_CL_ORD_ID} characters"
            )
        if not cl_ord_id.isprintable() or cl_ord_id.strip() != cl_ord_id:
            raise EntryRejected("invalid_cl_ord_id", "a client order id is printable, unpadded")
        if cl_ord_id in book.used:
            raise EntryRejected("duplicate_cl_ord_id", f"{cl_ord_id!r} was used today")

    def _find(self, book: _Member, cl_ord_id: str, need_open: bool = True) -> ClientOrder:
        order = book.by_cl_ord_id.get(cl_ord_id)
        if order is None:
            raise EntryRejected("unknown_order", f"no order {cl_ord_id!r} of yours today")
        if need_open and not order.open:
            raise EntryRejected("order_not_open", f"{cl_ord_id!r} is {order.status}")
        return order

    def _queue(self, order: ClientOrder) -> deque[Pending]:
        return self._pending.setdefault((order.symbol, order.order_id), deque())


def check_funds(
    account: Account,
    symbol: str,
    side: Side,
    leaves: int,
    price: int,
    released: int = 0,
    allow_short: bool = False,
) -> None:
    """Pre-trade check of what an order would commit, as a venue's risk gate does.

    ``account`` holds the gateway's orders of one member on top of its opening
    state (the previous close): a sale needs that many shares not already
    offered (clearing refuses shorts unless they are allowed), a purchase that
    much cash not already bid (``price``: the limit, or the best estimate for
    a market order). ``released``: what the order being replaced already
    reserves (shares for a sale, cash for a purchase). ``EntryRejected`` if not.
    """
    if side == "sell":
        free = account.free_qty(symbol) + released
        if leaves > free and not allow_short:
            raise EntryRejected(
                "insufficient_position",
                f"selling {leaves} {symbol} needs as many shares held and not already offered: "
                f"{max(free, 0)} are",
            )
        return
    need, free = leaves * price, account.free_cash() + released
    if need > free:
        raise EntryRejected(
            "insufficient_cash",
            f"buying {leaves} {symbol} commits {need / PRICE_SCALE:.2f}; the cash not already "
            f"bid is {max(free, 0) / PRICE_SCALE:.2f}",
        )
