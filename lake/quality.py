"""Data-quality rules for the daily tables (pure): each returns what violates it.

An empty result means the rule holds; otherwise the rows name what is wrong,
so an asset check can show them instead of a bare "failed".
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pyarrow as pa


def vwap_outside_range(market: pa.Table) -> list[str]:
    """Symbols whose VWAP is not within their day's low..high."""
    return [
        f"{r['symbol']}: vwap {r['vwap']:.1f} outside {r['low']}..{r['high']}"
        for r in market.to_pylist()
        if r["trades"] and not (r["low"] <= r["vwap"] <= r["high"])
    ]


def negative_positions(positions: pa.Table) -> list[str]:
    """Member/symbol pairs closing short (a violation unless short selling is enabled)."""
    return [
        f"{r['member']} {r['symbol']}: {r['closing_qty']}"
        for r in positions.to_pylist()
        if r["closing_qty"] < 0
    ]


def settlement_differences(
    members: pa.Table, trades: pa.Table, cleared: Collection[str]
) -> dict[str, Any]:
    """Settled buy/sell notionals that differ from the day's trades of cleared members."""
    rows = trades.to_pylist()
    bought = sum(t["price"] * t["qty"] for t in rows if t["buy_member"] in cleared)
    sold = sum(t["price"] * t["qty"] for t in rows if t["sell_member"] in cleared)
    settled_bought = sum(members["bought_notional"].to_pylist())
    settled_sold = sum(members["sold_notional"].to_pylist())
    out: dict[str, Any] = {}
    if settled_bought != bought:
        out["bought"] = {"settled": settled_bought, "traded": bought}
    if settled_sold != sold:
        out["sold"] = {"settled": settled_sold, "traded": sold}
    return out
