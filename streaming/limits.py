"""What the exchange accepts from outside: one definition for every entry point.

Anything that reaches the live core from a participant (the ``orders`` topic,
a replay file, later the FIX and REST gateways) passes the same two gates:

1. **The envelope** (``decode_untrusted``): at most ``MAX_MESSAGE_BYTES``,
   nested at most ``MAX_NESTING`` deep (both checked before parsing, so a
   hostile line can neither exhaust memory nor the parser's recursion),
   valid UTF-8 (never repaired), then a msgspec decode. Every failure is a
   ``MalformedMessage`` with a reason code: the caller dead-letters the
   original bytes with it and goes on. No other exception escapes.
2. **The bounds** (``request_bounds_reason``): quantities, prices, notional,
   order ids and timestamps within maxima that fit the lake's 64-bit columns
   with room to spare (a bar's turnover sums up to ~900,000 maximal trades
   before it could overflow), and member and symbol ids that are short
   printable identifiers. A request outside them is rejected with its own
   reason code (``qty_too_large``, ...), answered like any other reject.

The limits are documented in the README ("Security and failure behaviour").
"""

from __future__ import annotations

import re
from typing import Any, Final, TypeVar

import msgspec

MAX_MESSAGE_BYTES: Final = 64 * 1024
"""Largest message accepted from a participant (an order is about 150 bytes)."""

MAX_NESTING: Final = 32
"""Deepest nesting of JSON objects and arrays (an order has 1, a book top 3)."""

MAX_QTY: Final = 100_000_000
"""Largest order quantity: 10^8 shares."""

MAX_PRICE: Final = 1_000_000_000
"""Largest price in price units (1/10,000): 100,000.00 per share."""

MAX_NOTIONAL: Final = 10_000_000_000_000
"""Largest limit order value, price units x quantity: 1,000,000,000.00 (10^9)."""

MAX_ORDER_ID: Final = (1 << 63) - 1
"""Order ids are positive and fit a signed 64-bit column."""

MAX_TS: Final = (1 << 63) - 1
"""Timestamps (ns since the epoch) are non-negative and fit a signed 64-bit column."""

MAX_ID_LENGTH: Final = 32
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,31}")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")

BOUNDS_REASONS: Final = (
    "invalid_order_id",
    "invalid_member",
    "invalid_symbol",
    "invalid_timestamp",
    "qty_too_large",
    "price_too_large",
    "notional_too_large",
)
"""The reject reason codes of the bounds (the matcher's other codes are in ``matcher``)."""

T = TypeVar("T")


class MalformedMessage(ValueError):
    """A message that is not a valid event; ``code`` says which gate refused it."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def nesting_depth(data: bytes) -> int:
    """How deep JSON objects and arrays nest in ``data`` (brackets inside strings ignored)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub(b"", data)):
        if bracket in (b"{", b"["):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def check_envelope(data: bytes) -> None:
    """Size and nesting, before any parsing; raises ``MalformedMessage``."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise MalformedMessage("too_large", f"{len(data)} bytes, at most {MAX_MESSAGE_BYTES}")
    # fast path: fewer opening brackets than the limit cannot nest deeper than it
    if data.count(b"{") + data.count(b"[") > MAX_NESTING:
        depth = nesting_depth(data)
        if depth > MAX_NESTING:
            raise MalformedMessage("too_deep", f"nested {depth} deep, at most {MAX_NESTING}")


def decode_untrusted(data: bytes | str, decoder: msgspec.json.Decoder[T]) -> T:
    """Decode one message from outside, or raise ``MalformedMessage`` (and nothing else)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    check_envelope(raw)
    try:
        return decoder.decode(raw)
    except UnicodeDecodeError as exc:
        raise MalformedMessage("invalid_utf8", f"byte {exc.start}: {exc.reason}") from None
    except msgspec.ValidationError as exc:
        raise MalformedMessage("invalid_fields", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise MalformedMessage("malformed_json", str(exc)) from None
    except (RecursionError, MemoryError, ValueError, TypeError, OverflowError) as exc:
        raise MalformedMessage("undecodable", f"{type(exc).__name__}: {exc}") from None


def valid_id(value: Any) -> bool:
    """A member or symbol id: 1-32 printable ASCII letters, digits, '.', '_' or '-'."""
    return type(value) is str and len(value) <= MAX_ID_LENGTH and _ID.fullmatch(value) is not None


def request_bounds_reason(
    order_id: Any, member: Any, symbol: Any, ts: Any, qty: Any = None, price: Any = None
) -> str | None:
    """The first bound an order request breaks, as a reject reason code, or None.

    ``qty`` and ``price`` are checked only when given and already known to be
    positive integers (the matcher's own ``invalid_quantity`` and
    ``invalid_price`` come first); the notional needs both.
    """
    if type(order_id) is not int or not 0 < order_id <= MAX_ORDER_ID:
        return "invalid_order_id"
    if not valid_id(member):
        return "invalid_member"
    if not valid_id(symbol):
        return "invalid_symbol"
    if type(ts) is not int or not 0 <= ts <= MAX_TS:
        return "invalid_timestamp"
    if qty is not None and qty > MAX_QTY:
        return "qty_too_large"
    if price is not None:
        if price > MAX_PRICE:
            return "price_too_large"
        if qty is not None and price * qty > MAX_NOTIONAL:
            return "notional_too_large"
    return None
