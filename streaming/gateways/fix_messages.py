"""FIX 4.4 application messages <-> the exchange's requests and reports, without a FIX engine.

The session layer (logon, sequence numbers, resends, checksums, the data
dictionary) is QuickFIX's, in ``fix_acceptor``; this module only says what a
NewOrderSingle, OrderCancelRequest or OrderCancelReplaceRequest asks for, and
what each of our execution reports becomes on the wire. Messages are plain
``(tag, text)`` lists here, so every mapping is a pure function tested without
a socket. Prices go through the same decimal parser as the HTTP API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from streaming.events import BookTop, OrderType, Side, TimeInForce, Trade
from streaming.gateways.order_entry import ClientOrder, Update
from streaming.gateways.wire import format_avg_price, format_price, parse_price

Fields = list[tuple[int, str]]
T = TypeVar("T")

# tags (FIX 4.4)
AVG_PX, CL_ORD_ID, CUM_QTY, EXEC_ID, LAST_PX, LAST_QTY = 6, 11, 14, 17, 31, 32
ORDER_ID, ORDER_QTY, ORD_STATUS, ORD_TYPE, ORIG_CL_ORD_ID, PRICE = 37, 38, 39, 40, 41, 44
SIDE, SYMBOL, TEXT, TIME_IN_FORCE, TRANSACT_TIME = 54, 55, 58, 59, 60
ORD_REJ_REASON, CXL_REJ_REASON, CXL_REJ_RESPONSE_TO = 103, 102, 434
EXEC_TYPE, LEAVES_QTY = 150, 151
MD_REQ_ID, SUBSCRIPTION_REQUEST_TYPE, MARKET_DEPTH, NO_MD_ENTRY_TYPES = 262, 263, 264, 267
NO_MD_ENTRIES, MD_ENTRY_TYPE, MD_ENTRY_PX, MD_ENTRY_SIZE, MD_UPDATE_ACTION = 268, 269, 270, 271, 279
MD_REQ_REJ_REASON, NO_RELATED_SYM = 281, 146

SIDES: dict[str, Side] = {"1": "buy", "2": "sell"}
SIDE_CODES = {v: k for k, v in SIDES.items()}
ORD_TYPES: dict[str, OrderType] = {"1": "market", "2": "limit"}
ORD_TYPE_CODES = {v: k for k, v in ORD_TYPES.items()}
TIFS: dict[str, TimeInForce] = {"0": "day", "3": "ioc", "4": "fok"}
TIF_CODES = {v: k for k, v in TIFS.items()}
EXEC_TYPES = {"new": "0", "trade": "F", "canceled": "4", "replaced": "5", "rejected": "8",
              "expired": "C"}  # fmt: skip
ORD_STATUSES = {"pending_new": "A", "new": "0", "partially_filled": "1", "filled": "2",
                "canceled": "4", "rejected": "8", "expired": "C"}  # fmt: skip
ORD_REJ_REASONS = {
    "unknown_symbol": "1",
    "session_closed": "2",
    "session_suspended": "2",
    "session_pre_open": "2",
    "symbol_halted": "2",
    "insufficient_position": "3",
    "insufficient_cash": "3",
    "duplicate_cl_ord_id": "6",
    "lot_size": "13",
    "invalid_qty": "13",
    "unsupported": "11",
}
"""Our reason codes as OrdRejReason(103); anything else is 99 (other), the code in Text(58)."""
CXL_REJ_REASONS = {"unknown_order": "1", "order_not_open": "0", "duplicate_cl_ord_id": "6"}
MAX_QTY = 10**8


class FixRefusal(ValueError):
    """A request the gateway refuses for its content: a reason code and the text to send."""

    def __init__(self, reason: str, text: str, tag: int | None = None) -> None:
        super().__init__(f"{reason}: {text}")
        self.reason = reason
        self.text = text
        self.tag = tag


@dataclass(frozen=True)
class NewOrderSingle:
    cl_ord_id: str
    symbol: str
    side: Side
    qty: int
    price: int | None
    order_type: OrderType
    tif: TimeInForce


@dataclass(frozen=True)
class CancelRequest:
    cl_ord_id: str
    orig_cl_ord_id: str


@dataclass(frozen=True)
class ReplaceRequest:
    cl_ord_id: str
    orig_cl_ord_id: str
    qty: int
    price: int | None


@dataclass(frozen=True)
class MarketDataRequest:
    req_id: str
    subscription: str  # 0 snapshot, 1 snapshot + updates, 2 unsubscribe
    depth: int  # 0 = the whole book we publish
    entry_types: frozenset[str]  # 0 bid, 1 offer, 2 trade
    symbols: tuple[str, ...]


@dataclass
class Outgoing:
    """One application message to send: its type, body fields and repeating groups."""

    msg_type: str
    fields: Fields
    groups: list[tuple[int, int, list[Fields]]] = field(default_factory=list)
    # (count tag, delimiter tag, entries)


# -- incoming ------------------------------------------------------------------------------------
def _required(f: Mapping[int, str], tag: int) -> str:
    value = f.get(tag)
    if value is None or value == "":
        raise FixRefusal("missing_field", f"tag {tag} is required", tag)
    return value


def parse_qty(text: str, tag: int = ORDER_QTY) -> int:
    """A FIX Qty as whole shares: ``10`` or ``10.0``, not ``10.5``, not ``0``, not ``1e3``."""
    try:
        dec = Decimal(text) if text.replace(".", "", 1).isascii() else Decimal("NaN")
    except InvalidOperation:
        dec = Decimal("NaN")
    if not dec.is_finite() or "e" in text.lower() or dec != dec.to_integral_value():
        raise FixRefusal("invalid_qty", f"quantity {text!r} is not a whole number of shares", tag)
    if not 0 < dec <= MAX_QTY:
        raise FixRefusal("invalid_qty", f"quantity {text} is out of range (1..{MAX_QTY})", tag)
    return int(dec)


def _price(f: Mapping[int, str]) -> int | None:
    text = f.get(PRICE)
    if text is None:
        return None
    try:
        return parse_price(text)
    except ValueError as exc:
        raise FixRefusal("invalid_price", f"price {text!r}: {exc}", PRICE) from None


def _code(f: Mapping[int, str], tag: int, table: Mapping[str, T], default: str | None = None) -> T:
    value = f.get(tag, default)
    if value is None:
        raise FixRefusal("missing_field", f"tag {tag} is required", tag)
    if value not in table:
        raise FixRefusal("unsupported", f"tag {tag}={value} is not supported here "
                         f"(supported: {', '.join(sorted(table))})", tag)  # fmt: skip
    return table[value]


def parse_new_order(f: Mapping[int, str]) -> NewOrderSingle:
    """A NewOrderSingle (D): limit or market; day, IOC or FOK (day when 59 is absent)."""
    order_type = _code(f, ORD_TYPE, ORD_TYPES)
    price = _price(f)
    if order_type == "limit" and price is None:
        raise FixRefusal("missing_price", "a limit order needs Price(44)", PRICE)
    if order_type == "market" and price is not None:
        raise FixRefusal("unsupported", "a market order takes no Price(44)", PRICE)
    return NewOrderSingle(
        cl_ord_id=_required(f, CL_ORD_ID),
        symbol=_required(f, SYMBOL),
        side=_code(f, SIDE, SIDES),
        qty=parse_qty(_required(f, ORDER_QTY)),
        price=price,
        order_type=order_type,
        tif=_code(f, TIME_IN_FORCE, TIFS, "0"),
    )


def parse_cancel(f: Mapping[int, str]) -> CancelRequest:
    """An OrderCancelRequest (F): the order named by OrigClOrdID(41), any id of its chain."""
    return CancelRequest(_required(f, CL_ORD_ID), _required(f, ORIG_CL_ORD_ID))


def parse_replace(f: Mapping[int, str]) -> ReplaceRequest:
    """An OrderCancelReplaceRequest (G): the new total OrderQty(38) and Price(44)."""
    return ReplaceRequest(_required(f, CL_ORD_ID), _required(f, ORIG_CL_ORD_ID),
                          parse_qty(_required(f, ORDER_QTY)), _price(f))  # fmt: skip


def parse_market_data_request(
    f: Mapping[int, str], entry_types: Sequence[str], symbols: Sequence[str]
) -> MarketDataRequest:
    """A MarketDataRequest (V); its groups are read by the engine and passed in."""
    sub = _required(f, SUBSCRIPTION_REQUEST_TYPE)
    if sub not in ("0", "1", "2"):
        raise FixRefusal("unsupported", f"SubscriptionRequestType {sub}", SUBSCRIPTION_REQUEST_TYPE)
    depth_text = f.get(MARKET_DEPTH, "0")
    if not depth_text.isascii() or not depth_text.isdigit():
        raise FixRefusal("invalid_depth", f"MarketDepth {depth_text!r}", MARKET_DEPTH)
    unknown = set(entry_types) - {"0", "1", "2"}
    if unknown:
        raise FixRefusal("unsupported", f"MDEntryType {sorted(unknown)}: bids (0), offers (1) "
                         "and trades (2) are published", MD_ENTRY_TYPE)  # fmt: skip
    return MarketDataRequest(_required(f, MD_REQ_ID), sub, int(depth_text),
                             frozenset(entry_types or ("0", "1", "2")), tuple(symbols))  # fmt: skip


# -- outgoing ------------------------------------------------------------------------------------
def transact_time(ts_ns: int) -> str:
    """UTCTimestamp with milliseconds (FIX 4.4: YYYYMMDD-HH:MM:SS.sss)."""
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(ts_ns // 1_000_000_000, UTC)
    return f"{moment:%Y%m%d-%H:%M:%S}.{(ts_ns // 1_000_000) % 1000:03d}"


def _order_fields(o: ClientOrder) -> Fields:
    out: Fields = [
        (ORDER_ID, str(o.order_id)),
        (SYMBOL, o.symbol),
        (SIDE, SIDE_CODES[o.side]),
        (ORDER_QTY, str(o.qty)),
        (ORD_TYPE, ORD_TYPE_CODES[o.order_type]),
        (TIME_IN_FORCE, TIF_CODES[o.tif]),
        (LEAVES_QTY, str(o.leaves_qty)),
        (CUM_QTY, str(o.cum_qty)),
        (AVG_PX, format_avg_price(o.notional, o.cum_qty) if o.cum_qty else "0"),
    ]
    if o.price is not None:
        out.append((PRICE, format_price(o.price)))
    return out


def rej_reason(reason: str | None) -> str:
    return ORD_REJ_REASONS.get(reason or "", "99")


def execution_report(update: Update, exec_id: str) -> Outgoing:
    """One of our reports as the owner's ExecutionReport (8), or OrderCancelReject (9).

    A refused cancel or replace is an OrderCancelReject naming the request and
    the order as it still stands; everything else is an ExecutionReport whose
    OrdStatus, CumQty, LeavesQty and AvgPx are the order's after the report.
    """
    o, er = update.order, update.report
    if update.refused is not None:
        return cancel_reject(update.cl_ord_id, update.orig_cl_ord_id or o.cl_ord_ids[0],
                             update.refused.kind, er.reason or "refused", o)  # fmt: skip
    fields: Fields = [
        (CL_ORD_ID, update.cl_ord_id),
        (EXEC_ID, exec_id),
        (EXEC_TYPE, EXEC_TYPES.get(er.exec_type, "0")),
        (ORD_STATUS, ORD_STATUSES[o.status]),
        *_order_fields(o),
        (TRANSACT_TIME, transact_time(er.ts)),
    ]
    if update.orig_cl_ord_id is not None:
        fields.append((ORIG_CL_ORD_ID, update.orig_cl_ord_id))
    if er.exec_type == "trade":
        fields += [(LAST_QTY, str(er.last_qty)), (LAST_PX, format_price(er.last_price or 0))]
    if er.exec_type == "rejected":
        fields += [(ORD_REJ_REASON, rej_reason(er.reason)), (TEXT, er.reason or "rejected")]
    elif er.reason:
        fields.append((TEXT, er.reason))
    return Outgoing("8", fields)


def refused_new_order(
    req: NewOrderSingle | Mapping[int, str], reason: str, text: str, exec_id: str, ts_ns: int
) -> Outgoing:
    """The gateway's own refusal of a NewOrderSingle: an ExecutionReport, rejected.

    ``req`` is the parsed order, or the raw fields when it could not be parsed
    (what of it is known is echoed; the required fields get neutral values).
    """
    if isinstance(req, NewOrderSingle):
        cl, sym, side, qty = req.cl_ord_id, req.symbol, SIDE_CODES[req.side], str(req.qty)
    else:
        cl, sym = req.get(CL_ORD_ID, "NONE"), req.get(SYMBOL, "NONE")
        side = req.get(SIDE, "1") if req.get(SIDE) in SIDES else "1"
        qty = "0"
    return Outgoing("8", [
        (CL_ORD_ID, cl), (ORDER_ID, "NONE"), (EXEC_ID, exec_id),
        (EXEC_TYPE, "8"), (ORD_STATUS, "8"), (SYMBOL, sym), (SIDE, side),
        (ORDER_QTY, qty), (LEAVES_QTY, "0"), (CUM_QTY, "0"), (AVG_PX, "0"),
        (ORD_REJ_REASON, rej_reason(reason)), (TEXT, f"{reason}: {text}"[:200]),
        (TRANSACT_TIME, transact_time(ts_ns)),
    ])  # fmt: skip


def cancel_reject(
    cl_ord_id: str, orig_cl_ord_id: str, kind: str, reason: str, order: ClientOrder | None,
    text: str | None = None,
) -> Outgoing:  # fmt: skip
    """OrderCancelReject (9) for a refused cancel (F) or replace (G)."""
    status = ORD_STATUSES[order.status] if order is not None else "8"
    return Outgoing("9", [
        (ORDER_ID, str(order.order_id) if order is not None else "NONE"),
        (CL_ORD_ID, cl_ord_id), (ORIG_CL_ORD_ID, orig_cl_ord_id), (ORD_STATUS, status),
        (CXL_REJ_RESPONSE_TO, "2" if kind == "amend" else "1"),
        (CXL_REJ_REASON, CXL_REJ_REASONS.get(reason, "99")),
        (TEXT, (f"{reason}: {text}" if text else reason)[:200]),
    ])  # fmt: skip


Levels = dict[tuple[str, int], int]
"""A published book: (MDEntryType, price) -> size."""


def book_levels(top: BookTop | None, depth: int) -> Levels:
    if top is None:
        return {}
    bids = top.bids or ([(top.bid_price, top.bid_qty)] if top.bid_price is not None else [])
    asks = top.asks or ([(top.ask_price, top.ask_qty)] if top.ask_price is not None else [])
    if depth > 0:
        bids, asks = bids[:depth], asks[:depth]
    return {("0", p): q for p, q in bids} | {("1", p): q for p, q in asks}


def snapshot(req: MarketDataRequest, symbol: str, top: BookTop | None,
             trades: Sequence[Trade]) -> Outgoing:  # fmt: skip
    """MarketDataSnapshotFullRefresh (W): the book's levels and the latest trade."""
    entries: list[Fields] = []
    for (kind, price), size in sorted(book_levels(top, req.depth).items(),
                                      key=lambda kv: (kv[0][0], -kv[0][1] if kv[0][0] == "0"
                                                      else kv[0][1])):  # fmt: skip
        if kind in req.entry_types:
            entries.append([(MD_ENTRY_TYPE, kind), (MD_ENTRY_PX, format_price(price)),
                            (MD_ENTRY_SIZE, str(size))])  # fmt: skip
    if "2" in req.entry_types and trades:
        t = trades[-1]
        entries.append([(MD_ENTRY_TYPE, "2"), (MD_ENTRY_PX, format_price(t.price)),
                        (MD_ENTRY_SIZE, str(t.qty))])  # fmt: skip
    return Outgoing("W", [(MD_REQ_ID, req.req_id), (SYMBOL, symbol)],
                    [(NO_MD_ENTRIES, MD_ENTRY_TYPE, entries)])  # fmt: skip


def book_changes(old: Levels, new: Levels) -> list[tuple[str, str, int, int]]:
    """What turns the book ``old`` into ``new``: (action 0 new/1 change/2 delete, type, px, size)."""
    out = [
        ("2", kind, px, size) for (kind, px), size in sorted(old.items()) if (kind, px) not in new
    ]
    for (kind, px), size in sorted(new.items()):
        if (kind, px) not in old:
            out.append(("0", kind, px, size))
        elif old[(kind, px)] != size:
            out.append(("1", kind, px, size))
    return out


def incremental(req_id: str, symbol: str, changes: Sequence[tuple[str, str, int, int]]) -> Outgoing:
    """MarketDataIncrementalRefresh (X): level changes or trades (action 0, type 2)."""
    entries = [[(MD_UPDATE_ACTION, action), (MD_ENTRY_TYPE, kind), (SYMBOL, symbol),
                (MD_ENTRY_PX, format_price(px)), (MD_ENTRY_SIZE, str(size))]
               for action, kind, px, size in changes]  # fmt: skip
    return Outgoing("X", [(MD_REQ_ID, req_id)], [(NO_MD_ENTRIES, MD_UPDATE_ACTION, entries)])


def md_reject(req_id: str, reason: str, text: str) -> Outgoing:
    """MarketDataRequestReject (Y): 0 unknown symbol, 1 duplicate MDReqID, 8 unsupported type."""
    return Outgoing("Y", [(MD_REQ_ID, req_id), (MD_REQ_REJ_REASON, reason), (TEXT, text[:200])])
