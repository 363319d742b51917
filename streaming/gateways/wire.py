"""Prices at the gateways' edge: decimal text outside, integer units inside.

Both gateways (HTTP and FIX) read and write prices here, so ``"195.40"`` means
the same on either wire. Parsing is strict: ASCII digits and one point only
(``Decimal`` alone would read full-width digits or ``1e2`` as numbers), no
more decimals than the price scale has, positive and finite.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from streaming.events import PRICE_SCALE, from_price, to_price

_DECIMAL = re.compile(r"[0-9]{1,12}(\.[0-9]{1,12})?")


def parse_price(value: str | float | int | None) -> int | None:
    """A decimal price -> integer units; refuses what is not a finite, positive decimal."""
    if value is None:
        return None
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        # ASCII digits only: Decimal would read "１９５" (full-width) or "1e2" as numbers
        raise ValueError("a price is a decimal string of ASCII digits such as 195.40")
    try:
        dec = Decimal(value)
    except InvalidOperation:
        raise ValueError("a price is a decimal such as 195.40") from None
    if not dec.is_finite() or dec <= 0:
        raise ValueError("a price is a positive decimal")
    if dec * PRICE_SCALE != (dec * PRICE_SCALE).to_integral_value():
        raise ValueError(f"a price has at most {len(str(PRICE_SCALE)) - 1} decimals")
    return to_price(dec)


def format_price(units: int) -> str:
    """Integer price units as a plain decimal string."""
    return f"{from_price(units).normalize():f}"


def format_avg_price(notional: int, qty: int) -> str:
    """An average price as a plain decimal (at most 6 places, no trailing zeros)."""
    value = (Decimal(notional) / qty / PRICE_SCALE).quantize(Decimal("0.000001"))
    return f"{value.normalize():f}"
