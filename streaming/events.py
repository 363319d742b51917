"""Every event of the live core, defined once.

Topics, files, the lake and the tests all use these Structs and the one JSON
encoding below, so a message means the same thing wherever it is read. Prices
are integers in price units of 1/10,000 of the currency (``PRICE_SCALE``),
the LOBSTER convention; a security's tick size is a multiple of that unit.
Timestamps are integer nanoseconds since the Unix epoch (UTC), event time.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, TypeVar, get_args

import msgspec

PRICE_SCALE = 10_000
"""Price units per currency unit: price 1_012_500 means 101.25."""

Side = Literal["buy", "sell"]
OrderType = Literal["limit", "market"]
TimeInForce = Literal["day", "ioc", "fok"]
ExecType = Literal["new", "rejected", "trade", "canceled", "replaced", "expired"]
OrderStatus = Literal[
    "new", "partially_filled", "filled", "canceled", "rejected", "expired", "replaced"
]
RequestKind = Literal["new", "cancel", "amend"]
ControlAction = Literal[
    "pre_open", "open", "suspend", "resume", "close", "halt",  # the session state machine
    "kill", "reference",  # operator actions on orders and prices
]  # fmt: skip
CONTROL_ACTIONS: tuple[str, ...] = get_args(ControlAction)
Interval = Literal["1s", "1m", "3m", "5m", "15m"]

_BASE: dict[str, Any] = {"tag_field": "type", "kw_only": False, "gc": False}
# Order requests come from outside: a field we do not know is refused, never ignored
# (a participant who misspells a field must hear about it, not trade on defaults).


class NewOrder(msgspec.Struct, tag="new", forbid_unknown_fields=True, **_BASE):
    """A participant's request to enter an order; ``price`` is None for MARKET."""

    order_id: int
    member: str
    symbol: str
    side: Side
    qty: int
    price: int | None = None
    order_type: OrderType = "limit"
    tif: TimeInForce = "day"
    ts: int = 0


class CancelOrder(msgspec.Struct, tag="cancel", forbid_unknown_fields=True, **_BASE):
    """Cancel the remaining quantity of a resting order."""

    order_id: int
    member: str
    symbol: str
    ts: int = 0


class AmendOrder(msgspec.Struct, tag="amend", forbid_unknown_fields=True, **_BASE):
    """Replace a resting order's total quantity and/or price.

    ``qty`` is the new total order quantity (FIX OrderQty semantics, filled
    quantity included); ``price`` None keeps the current price. Quantity down at
    the same price keeps time priority; a price change or quantity up loses it.
    """

    order_id: int
    member: str
    symbol: str
    qty: int
    price: int | None = None
    ts: int = 0


OrderRequest = NewOrder | CancelOrder | AmendOrder

GATEWAY_ID_BASE = 5 * 10**15
"""Where gateway order ids start: above the members' (``i * 10**10``) and the
simulator's (``10**12`` on), below the bound of valid ids (``2**63 - 1``). An
order id from here on came from outside the seeded simulation."""


class ExecutionReport(msgspec.Struct, tag="exec", **_BASE):
    """The exchange's answer to a request, or a fill/expiry of a resting order.

    Every request gets exactly one ``new``/``canceled``/``replaced`` or
    ``rejected`` report first (``request`` says which request it answers), then
    ``trade`` reports, then possibly ``expired`` for an unfilled IOC/FOK/MARKET
    remainder. ``exec_id`` is a per-symbol sequence.
    """

    exec_id: int
    order_id: int
    member: str
    symbol: str
    side: Side | None
    exec_type: ExecType
    status: OrderStatus
    request: RequestKind | None
    reason: str | None
    price: int | None
    last_qty: int
    last_price: int | None
    leaves_qty: int
    cum_qty: int
    trade_id: int | None
    ts: int


class Trade(msgspec.Struct, tag="trade", **_BASE):
    """One match between an incoming (aggressor) and a resting order."""

    trade_id: int
    symbol: str
    price: int
    qty: int
    aggressor_side: Side
    buy_order_id: int
    sell_order_id: int
    buy_member: str
    sell_member: str
    ts: int


class BookTop(msgspec.Struct, tag="bbo", **_BASE):
    """Best bid and offer with aggregated depth (price, quantity) per level."""

    symbol: str
    ts: int
    bid_price: int | None
    bid_qty: int
    ask_price: int | None
    ask_qty: int
    bids: list[tuple[int, int]] = msgspec.field(default_factory=list)
    asks: list[tuple[int, int]] = msgspec.field(default_factory=list)


class Bar(msgspec.Struct, tag="bar", **_BASE):
    """OHLCV over ``[start, end)`` in event time; ``turnover`` is sum(price*qty)."""

    symbol: str
    interval: Interval
    start: int
    end: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    turnover: int
    vwap: float
    trades: int


class SessionControl(msgspec.Struct, tag="control", **_BASE):
    """An action on the market, on the log like every order: the session, halts, operators.

    Session actions (``pre_open`` .. ``close``, ``halt``) move the state machine
    of one book or, ``symbol`` None, of every book (a halt always names one).
    Operator actions: ``kill`` cancels every open order of ``member`` (on
    ``symbol`` or everywhere); ``reference`` sets a symbol's reference price
    and, if given, its band (percent either side). ``actor`` and ``reason``
    say who did it and why (the calendar's scheduler is ``calendar``); they
    are what the audit table keeps. Fields after ``session_date`` have
    defaults, so control events written before them still decode.
    """

    action: ControlAction
    ts: int
    symbol: str | None = None
    session_date: str | None = None
    actor: str = ""
    reason: str = ""
    member: str | None = None
    reference_price: int | None = None
    band_pct: float | None = None


RecAction = Literal["buy", "sell", "hold", "watch"]
RecMode = Literal["informational", "paper_eligible", "live_eligible"]


class Recommendation(msgspec.Struct, tag="recommendation", **_BASE):
    """A batch-side view on a security, published into the live core.

    One Struct travels from the lake to the ``recommendations`` topic to the
    members that follow it, so every field after ``thesis`` has a default and
    payloads written before they existed still decode. ``evidence`` holds the
    links (URLs, else document ids) the thesis rests on; ``driver`` names the
    layer that moved the signal and ``reason`` why the mode was forced, if it was.
    """

    rec_id: str
    symbol: str
    action: RecAction
    confidence: float
    mode: RecMode
    ts: int
    thesis: str = ""
    session_date: str | None = None
    signal: float = 0.0
    window: str = ""
    driver: str = ""
    sector: str = ""
    reason: str = ""
    evidence: list[str] = msgspec.field(default_factory=list)


class StrategyDecision(msgspec.Struct, tag="decision", **_BASE):
    """What a member following recommendations did with one: act (an order) or skip, and why.

    ``reason`` is the first pre-trade check that failed for a skip, or the
    limit that bound the size for an act; ``order_id`` is the order an act sent.
    """

    decision_id: str
    member: str
    rec_id: str
    symbol: str
    action: RecAction
    outcome: Literal["act", "skip"]
    reason: str
    side: Side | None
    qty: int
    price: int | None
    order_id: int | None
    confidence: float
    ts: int


class DeadLetter(msgspec.Struct, tag="dead_letter", **_BASE):
    """Anything that failed decoding or validation, with why and where from."""

    reason: str
    source_topic: str
    ts: int
    partition: int | None = None
    offset: int | None = None
    payload: bytes = b""


Event = (
    NewOrder
    | CancelOrder
    | AmendOrder
    | ExecutionReport
    | Trade
    | BookTop
    | Bar
    | SessionControl
    | Recommendation
    | StrategyDecision
    | DeadLetter
)

_encoder = msgspec.json.Encoder()
event_decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)
"""Every event type; ``streaming.limits.decode_untrusted`` bounds it for input from outside."""
_request_decoder: msgspec.json.Decoder[OrderRequest] = msgspec.json.Decoder(OrderRequest)

T = TypeVar("T")


def encode(event: Event) -> bytes:
    """The one JSON encoding: a compact object with a ``type`` tag."""
    return _encoder.encode(event)


def decode(data: bytes | str) -> Event:
    """Decode any event; raises ``msgspec.ValidationError`` with the field at fault."""
    return event_decoder.decode(data)


def decode_request(data: bytes | str) -> OrderRequest:
    """Decode an order entry request (new, cancel or amend)."""
    return _request_decoder.decode(data)


def decode_as(data: bytes | str, kind: type[T]) -> T:
    """Decode into one known event type."""
    return msgspec.json.decode(data, type=kind)


def to_price(value: Decimal | str | float) -> int:
    """Decimal currency amount -> integer price units (exact for tick multiples)."""
    return int((Decimal(str(value)) * PRICE_SCALE).to_integral_value())


def from_price(units: int) -> Decimal:
    """Integer price units -> Decimal for display at the edges."""
    return Decimal(units) / PRICE_SCALE
