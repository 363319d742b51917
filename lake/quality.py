"""Data-quality rules for the daily tables (pure): each returns what violates it.

An empty result means the rule holds; otherwise the rows name what is wrong,
so an asset check can show them instead of a bare "failed".
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog

from lake.writer import day_session
from streaming.bars import INTERVALS
from streaming.events import Trade


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


# -- bars continuous over the session ------------------------------------------------

BAR_VALUES = ("open", "high", "low", "close", "volume")
"""The bar columns a window's trades determine (turnover, vwap and count follow from them)."""
_KEYS = ["symbol", "start"]
_TRADE_ORDER = ("symbol", "ts", "trade_id")


def late_trades(dlq: pa.Table) -> list[tuple[str, int]]:
    """(symbol, trade_id) of every trade the bar builder dead-lettered as late.

    Trade ids are per-symbol sequences, hence the pair. Only ``late_trade``
    rows are decoded, so the day's other dead letters (rejects) cost nothing.
    """
    late = dlq.filter(pc.starts_with(dlq.column("reason"), "late_trade"))
    decode = msgspec.json.Decoder(Trade).decode
    trades = [decode(payload) for payload in late.column("payload").to_pylist()]
    return [(t.symbol, t.trade_id) for t in trades]


def _plain_strings(table: pa.Table) -> pa.Table:
    """``large_string`` columns as ``string``: pyiceberg reads either, depending on the
    file system, and Arrow joins need both sides' keys of one type."""
    schema = pa.schema(
        [f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f for f in table.schema]
    )
    return table.cast(schema)


def bar_continuity_violations(
    trades: pa.Table,
    bars: pa.Table,
    open_ns: int,
    close_ns: int,
    late: Collection[tuple[str, int]] = (),
) -> list[dict[str, Any]]:
    """Where raw.bars is not exactly the bars of raw.trades, window by window.

    The builder emits a bar only for a window that had a trade, so a gap
    between bars is not a fault; continuity means, per symbol and interval:
    the bar windows are exactly the epoch-aligned windows holding a trade
    (``missing``: trades but no bar; ``orphan``: a bar but no trades), one bar
    per window (``duplicate``), each aligned with ``end = start + size``
    (``misaligned``), overlapping the session ``[open_ns, close_ns)``
    (``outside_session``; half-open because orders are sent strictly before
    the close, so a bar starting at the close can only hold after-close
    trades), with the volume (``volume``) and open/high/low/close (``ohlc``)
    of its trades taken in trade order ``(ts, trade_id)``; trade ids are
    per-symbol sequences in arrival order, so this is the builder's
    ``(ts, arrival)`` order. A bar of an interval not built at all is
    ``unknown_interval``.

    Late trades: the builder never folds a trade whose 1s window had closed,
    but the matcher still printed it, so it is in raw.trades and on ``dlq``
    (``late_trade``). Lateness depends on arrival order per log partition,
    which the tables do not keep, so it is not re-derived here: the
    ``(symbol, trade_id)`` pairs in ``late`` (from ``late_trades(dlq)``) are
    left out of the expected bars, and any other trade missing from its bars
    is a violation.

    Each violation is ``{"symbol", "interval", "start", "kind", "detail"}``,
    sorted by interval (1s first), symbol, start and kind. Vectorised: one
    sort of the trades, then per interval a ``reduceat`` grouping and one
    Arrow join, so a full day takes milliseconds.
    """
    trades = _plain_strings(trades.select(["symbol", "ts", "trade_id", "price", "qty"]))
    if late:
        symbols, ids = zip(*late, strict=True)
        excluded = pa.table({"symbol": pa.array(symbols, pa.string()),
                             "trade_id": pa.array(ids, pa.int64())})  # fmt: skip
        trades = trades.join(excluded, keys=["symbol", "trade_id"], join_type="left anti")
    trades = trades.take(pc.sort_indices(trades, [(c, "ascending") for c in _TRADE_ORDER]))
    bars = _plain_strings(bars.select(["symbol", "interval", "start", "end", *BAR_VALUES]))
    found: list[dict[str, Any]] = []
    for name, size in INTERVALS.items():
        have = bars.filter(pc.equal(bars.column("interval"), name))
        found += _bar_shape_violations(have, name, size, open_ns, close_ns)
        unique, duplicates = _first_per_window(have)
        found += _violations(duplicates, name, "duplicate", "more than one bar")
        found += _window_differences(_trade_windows(trades, size), unique, name)
    unknown = bars.filter(pc.invert(pc.is_in(bars.column("interval"), pa.array(list(INTERVALS)))))
    for row in unknown.select(["symbol", "interval", "start"]).to_pylist():
        found.append({**row, "kind": "unknown_interval", "detail": ""})
    order = {name: i for i, name in enumerate(INTERVALS)}
    return sorted(
        found, key=lambda v: (order.get(v["interval"], 99), v["symbol"], v["start"], v["kind"])
    )


def _runs(symbol: pa.ChunkedArray, start: np.ndarray) -> np.ndarray:
    """First row of each run of equal (symbol, start) in rows sorted by both."""
    n = len(start)
    boundary = np.ones(n, dtype=bool)
    if n > 1:
        sym = pa.chunked_array(symbol).combine_chunks()
        same_symbol = pc.equal(sym.slice(1), sym.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        boundary[1:] = ~same_symbol | (start[1:] != start[:-1])
    return np.flatnonzero(boundary)


def _trade_windows(trades: pa.Table, size: int) -> pa.Table:
    """The bar each window of ``trades`` (sorted by symbol, ts, trade_id) should have."""
    ts = trades.column("ts").to_numpy()
    price = trades.column("price").to_numpy()
    qty = trades.column("qty").to_numpy()
    start = ts // size * size
    firsts = _runs(trades.column("symbol"), start)
    if len(firsts) == 0:
        return pa.table({"symbol": pa.array([], pa.string()), "start": pa.array([], pa.int64()),
                         **{f"t_{c}": pa.array([], pa.int64()) for c in BAR_VALUES}})  # fmt: skip
    lasts = np.append(firsts[1:], len(ts)) - 1
    return pa.table({
        "symbol": trades.column("symbol").take(pa.array(firsts)),
        "start": start[firsts],
        "t_open": price[firsts],
        "t_high": np.maximum.reduceat(price, firsts),
        "t_low": np.minimum.reduceat(price, firsts),
        "t_close": price[lasts],
        "t_volume": np.add.reduceat(qty, firsts),
    })  # fmt: skip


def _first_per_window(bars: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(one bar per (symbol, start), the windows having more than one) of one interval."""
    bars = bars.take(pc.sort_indices(bars, [("symbol", "ascending"), ("start", "ascending")]))
    firsts = _runs(bars.column("symbol"), bars.column("start").to_numpy())
    extra = np.ones(bars.num_rows, dtype=bool)
    extra[firsts] = False
    duplicates = bars.filter(pa.array(extra)).group_by(_KEYS).aggregate([])
    unique = bars.take(pa.array(firsts, pa.int64())).select([*_KEYS, *BAR_VALUES])
    return unique.rename_columns([*_KEYS, *(f"b_{c}" for c in BAR_VALUES)]), duplicates


def _bar_shape_violations(
    bars: pa.Table, name: str, size: int, open_ns: int, close_ns: int
) -> list[dict[str, Any]]:
    """Bars of one interval not aligned to it, or not overlapping the session."""
    start = bars.column("start").to_numpy()
    end = bars.column("end").to_numpy()
    misaligned = (start % size != 0) | (end != start + size)
    outside = (end <= open_ns) | (start >= close_ns)
    return _violations(
        bars.filter(pa.array(misaligned)), name, "misaligned", f"not [k*{size}, +{size}) ns"
    ) + _violations(
        bars.filter(pa.array(outside)), name, "outside_session", f"session [{open_ns}, {close_ns})"
    )


def _window_differences(expected: pa.Table, actual: pa.Table, name: str) -> list[dict[str, Any]]:
    """Windows with trades but no bar, bars without trades, and bars that differ from trades."""
    joined = expected.join(actual, keys=_KEYS, join_type="full outer")
    found = _violations(joined.filter(pc.is_null(joined.column("b_volume"))), name, "missing",
                        "trades but no bar")  # fmt: skip
    found += _violations(joined.filter(pc.is_null(joined.column("t_volume"))), name, "orphan",
                         "a bar but no trades")  # fmt: skip
    both = joined.filter(
        pc.and_(pc.is_valid(joined.column("t_volume")), pc.is_valid(joined.column("b_volume")))
    )
    differs = {c: pc.not_equal(both.column(f"t_{c}"), both.column(f"b_{c}")) for c in BAR_VALUES}
    volume = both.filter(differs["volume"])
    for row in volume.select([*_KEYS, "t_volume", "b_volume"]).to_pylist():
        detail = f"bar {row['b_volume']}, trades {row['t_volume']}"
        found.append(_violation(row, name, "volume", detail))
    ohlc = pc.or_(
        pc.or_(differs["open"], differs["high"]), pc.or_(differs["low"], differs["close"])
    )
    for row in both.filter(ohlc).to_pylist():
        detail = ", ".join(
            f"{c} bar {row[f'b_{c}']} trades {row[f't_{c}']}"
            for c in ("open", "high", "low", "close")
            if row[f"b_{c}"] != row[f"t_{c}"]
        )
        found.append(_violation(row, name, "ohlc", detail))
    return found


def _violations(rows: pa.Table, name: str, kind: str, detail: str) -> list[dict[str, Any]]:
    return [_violation(r, name, kind, detail) for r in rows.select(_KEYS).to_pylist()]


def _violation(row: dict[str, Any], name: str, kind: str, detail: str) -> dict[str, Any]:
    return {"symbol": row["symbol"], "interval": name, "start": row["start"], "kind": kind,
            "detail": detail}  # fmt: skip


def bar_coverage(
    bars: pa.Table, open_ns: int, close_ns: int, symbols: Collection[str]
) -> dict[str, float]:
    """Per interval, the share of (symbol, session window) pairs that have a bar.

    Informational, not a rule: a quiet symbol legitimately leaves windows
    without a bar. Session windows are the aligned windows overlapping
    ``[open_ns, close_ns)``; only bars of ``symbols`` count.
    """
    listed = bars.filter(pc.is_in(bars.column("symbol"), pa.array(sorted(symbols), pa.string())))
    out: dict[str, float] = {}
    for name, size in INTERVALS.items():
        first, last = open_ns // size * size, (close_ns - 1) // size * size
        windows = ((last - first) // size + 1) * len(symbols)
        have = listed.filter(
            pc.and_(
                pc.equal(listed.column("interval"), name),
                pc.and_(
                    pc.greater_equal(listed.column("start"), first),
                    pc.less_equal(listed.column("start"), last),
                ),
            )
        )
        covered = have.group_by(_KEYS).aggregate([]).num_rows
        out[name] = covered / windows if windows > 0 else 0.0
    return out


def day_sessions(catalog: Catalog, day: date, identifiers: Iterable[str]) -> dict[str, str | None]:
    """The session each table recorded for ``day`` (None: none recorded, or no such day)."""
    return {identifier: day_session(catalog, identifier, day) for identifier in identifiers}


def session_disagreements(sessions: dict[str, str | None], reference: str) -> dict[str, str | None]:
    """The tables whose session is not the ``reference`` table's (or is missing)."""
    expected = sessions.get(reference)
    return {t: s for t, s in sessions.items() if s is None or s != expected}
