"""OHLCV bars in event time, built incrementally (``BarBuilder``) or in one batch (``bars_batch``).

Both implementations give identical bars for the same trades; the property
tests hold them to it.

- Intervals 1s, 1m, 3m, 5m and 15m, tumbling and aligned to the epoch: a bar
  covers ``[start, start + size)`` with ``start = floor(ts / size) * size``.
  A bar exists only for a (symbol, window) with at least one trade.
- Hierarchy: trades -> 1s; 1s -> 1m; 1m -> 3m, 5m, 15m. ``open`` is the price
  of the trade with the smallest ``(ts, arrival index)`` (for higher bars: the
  open of the child with the smallest start), ``close`` likewise the largest;
  ``turnover`` is the exact integer sum of ``price * qty`` and
  ``vwap = turnover / volume`` (Python's correctly rounded int division; NaN
  for a zero volume, which real trades never have).
- Event time with grace: the watermark is the largest trade ``ts`` seen (or
  a later ``advance(ts)``). A window closes once ``end + grace_ns <= watermark``;
  closures come out as all 1s bars (by start, then symbol), then 1m, 3m, 5m,
  15m, each closed child folded into its parent before the parent's level is
  evaluated. Out-of-order trades whose 1s window is still open are folded
  normally.
- A trade is late iff its 1s window had already closed when it arrived
  (``floor(ts / 1s) * 1s + 1s + grace_ns <= watermark before it``). It is
  counted in ``late_trades``, reported as a ``DeadLetter`` and never folded.

Pure: no I/O, no clock. The streaming path is tuned for CPython (a 1s window
collects flat ``(ts, price, qty)`` triples and is reduced with builtins when
it closes); the batch path is vectorised numpy over an Arrow table.
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
from operator import mul
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from streaming.events import Bar, DeadLetter, Event, Interval, Trade, encode
from streaming.schema import arrow_schema, to_table

INTERVALS: dict[str, int] = {
    "1s": 1_000_000_000,
    "1m": 60_000_000_000,
    "3m": 180_000_000_000,
    "5m": 300_000_000_000,
    "15m": 900_000_000_000,
}
"""Interval name -> size in ns, in emission order."""

_NAMES: tuple[Interval, ...] = ("1s", "1m", "3m", "5m", "15m")
_SIZES: tuple[int, ...] = tuple(INTERVALS[name] for name in _NAMES)
_BUILT_FROM = (-1, 0, 1, 1, 1)
"""The level whose bars each level is built from (-1: trades)."""
_FEEDS = ((1,), (2, 3, 4), (), (), ())
"""The levels each level's closed bars are folded into (1s -> 1m inline in ``_close_seconds``)."""
_ORDER = {name: i for i, name in enumerate(_NAMES)}

SEC = 1_000_000_000
NO_WATERMARK = -(1 << 63)
"""The watermark before any trade (the int64 minimum, as in the batch path)."""
_NEVER = 1 << 126

I64 = npt.NDArray[np.int64]
_I64_MIN = np.iinfo(np.int64).min
_I64_MAX = np.iinfo(np.int64).max
_EXACT_FLOAT = 1 << 53
_IDX_BITS = 33  # arrival index bits in the batch open/close key (ts offset < 2**30 above)


def _check_grace(grace_ns: int) -> None:
    if type(grace_ns) is not int or grace_ns < 0:
        raise ValueError(f"grace_ns must be a non-negative int, got {grace_ns!r}")


def _vwap(turnover: int, volume: int) -> float:
    return turnover / volume if volume else math.nan


# -- streaming --------------------------------------------------------------------


class BarBuilder:
    """Incremental bars for every symbol; append-to-``out`` style like the matcher.

    State per level is ``start -> {symbol: accumulator}`` plus a heap of open
    starts; ``_due`` is the smallest watermark at which anything closes, so a
    trade that closes nothing costs one comparison. A 1s accumulator is a flat
    list ``[start, ts, price, qty, ts, price, qty, ...]``; higher accumulators
    are ``[open_start, open, close_start, close, high, low, volume, turnover,
    trades]``.
    """

    __slots__ = (
        "_cur",
        "_due",
        "_grace",
        "_heaps",
        "_late_off",
        "_open",
        "late_trades",
        "watermark",
    )

    def __init__(self, grace_ns: int = 0) -> None:
        _check_grace(grace_ns)
        self._grace = grace_ns
        self._late_off = SEC + grace_ns  # 1s window start + this <= watermark: closed
        self.watermark = NO_WATERMARK
        self.late_trades = 0
        self._open: tuple[dict[int, dict[str, list[int]]], ...] = tuple({} for _ in _NAMES)
        self._heaps: tuple[list[int], ...] = tuple([] for _ in _NAMES)
        self._cur: dict[str, list[int]] = {}  # symbol -> its most recently used 1s window
        self._due = _NEVER

    # -- entry points -----------------------------------------------------------
    def on_trade(self, trade: Trade, out: list[Event]) -> None:
        """Fold one trade (or report it late); append any bars it closes to ``out``."""
        ts = trade.ts
        start = ts - ts % 1_000_000_000
        wm = self.watermark
        if start + self._late_off <= wm:
            self._late(trade, start, out)
            return
        w = self._cur.get(trade.symbol)
        if w is None or w[0] != start:
            # a closed window is never current here: its trades would be late
            w = self._window(trade.symbol, start)
        w += (ts, trade.price, trade.qty)
        if ts > wm:
            self.watermark = ts
            if ts >= self._due:
                self._close(ts, out)

    def advance(self, ts: int, out: list[Event]) -> None:
        """Move event time on without a trade (closes a silent symbol's bars)."""
        if ts > self.watermark:
            self.watermark = ts
            if ts >= self._due:
                self._close(ts, out)

    def flush(self, out: list[Event]) -> None:
        """Emit every still-open bar (session close) and make those windows final.

        The watermark moves past the end (plus grace) of the latest window
        flushed at any interval, so a straggler for a flushed window is a
        reported late trade, never a second bar for the same window.
        """
        ends = [max(heap) + _SIZES[level] for level, heap in enumerate(self._heaps) if heap]
        self._close(None, out)
        self._cur.clear()
        if ends:
            self.watermark = max(self.watermark, max(ends) + self._grace)

    # -- internals ------------------------------------------------------------------
    def _late(self, trade: Trade, start: int, out: list[Event]) -> None:
        self.late_trades += 1
        reason = (
            f"late_trade: 1s window [{start}, {start + SEC}) of {trade.symbol} already closed"
            f" at watermark {self.watermark} (grace {self._grace} ns)"
        )
        out.append(DeadLetter(reason, "trades", trade.ts, None, None, encode(trade)))

    def _window(self, symbol: str, start: int) -> list[int]:
        windows = self._open[0].get(start)
        if windows is None:
            windows = self._open[0][start] = {}
            heappush(self._heaps[0], start)
            due = start + self._late_off
            if due < self._due:
                self._due = due
        w = windows.get(symbol)
        if w is None:
            w = windows[symbol] = [start]
        self._cur[symbol] = w
        return w

    def _close(self, wm: int | None, out: list[Event]) -> None:
        """Emit every window with ``end + grace <= wm`` (all of them for None), level by level."""
        grace = self._grace
        heaps = self._heaps
        for level, name in enumerate(_NAMES):
            heap = heaps[level]
            size = _SIZES[level]
            limit = None if wm is None else wm - grace - size  # closed iff start <= limit
            if not heap or (limit is not None and heap[0] > limit):
                continue
            if level == 0:
                self._close_seconds(limit, out)
                continue
            windows = self._open[level]
            closed: list[Bar] = []
            while heap and (limit is None or heap[0] <= limit):
                start = heappop(heap)
                by_symbol = windows.pop(start)
                end = start + size
                for symbol in sorted(by_symbol):
                    a = by_symbol[symbol]
                    closed.append(
                        Bar(symbol, name, start, end, a[1], a[4], a[5], a[3], a[6], a[7],
                            _vwap(a[7], a[6]), a[8])
                    )  # fmt: skip
            out.extend(closed)
            for parent in _FEEDS[level]:
                self._fold(parent, closed)
        self._due = min(
            (heap[0] + _SIZES[level] + grace for level, heap in enumerate(heaps) if heap),
            default=_NEVER,
        )

    def _close_seconds(self, limit: int | None, out: list[Event]) -> None:
        """Reduce the closed 1s windows to bars and fold each into its 1m accumulator.

        The hot part of closing (a 1s bar per few trades), hence written out:
        a window is ``[start, ts, price, qty, ts, price, qty, ...]``.
        """
        heap = self._heaps[0]
        windows = self._open[0]
        minutes = self._open[1]
        minute_heap = self._heaps[1]
        nan = math.nan
        append = out.append
        while heap and (limit is None or heap[0] <= limit):
            start = heappop(heap)
            by_symbol = windows.pop(start)
            end = start + 1_000_000_000
            pstart = start - start % 60_000_000_000
            parents = minutes.get(pstart)
            if parents is None:
                parents = minutes[pstart] = {}
                heappush(minute_heap, pstart)
            for symbol in sorted(by_symbol):
                w = by_symbol[symbol]
                if len(w) == 4:
                    _, _, open_, volume = w
                    high = low = close = open_
                    turnover = open_ * volume
                    n = 1
                else:
                    tss = w[1::3]
                    prices = w[2::3]
                    qtys = w[3::3]
                    n = len(tss)
                    open_ = prices[tss.index(min(tss))]  # smallest ts, earliest arrival
                    last_ts = max(tss)
                    if tss[-1] == last_ts:
                        close = prices[-1]
                    else:  # latest ts, latest arrival among equals
                        close = prices[n - 1 - tss[::-1].index(last_ts)]
                    high = max(prices)
                    low = min(prices)
                    volume = sum(qtys)
                    turnover = sum(map(mul, prices, qtys))
                append(Bar(symbol, "1s", start, end, open_, high, low, close, volume, turnover,
                           turnover / volume if volume else nan, n))  # fmt: skip
                a = parents.get(symbol)
                if a is None:
                    parents[symbol] = [start, open_, start, close, high, low, volume, turnover, n]
                    continue
                if start < a[0]:
                    a[0] = start
                    a[1] = open_
                if start >= a[2]:
                    a[2] = start
                    a[3] = close
                if high > a[4]:
                    a[4] = high
                if low < a[5]:
                    a[5] = low
                a[6] += volume
                a[7] += turnover
                a[8] += n

    def _fold(self, level: int, bars: list[Bar]) -> None:
        """Fold closed bars into the accumulators of ``level`` (their parent interval)."""
        windows = self._open[level]
        heap = self._heaps[level]
        size = _SIZES[level]
        for b in bars:
            start = b.start
            pstart = start - start % size
            by_symbol = windows.get(pstart)
            if by_symbol is None:
                by_symbol = windows[pstart] = {}
                heappush(heap, pstart)
            a = by_symbol.get(b.symbol)
            if a is None:
                by_symbol[b.symbol] = [start, b.open, start, b.close, b.high, b.low, b.volume,
                                       b.turnover, b.trades]  # fmt: skip
                continue
            if start < a[0]:
                a[0] = start
                a[1] = b.open
            if start >= a[2]:
                a[2] = start
                a[3] = b.close
            if b.high > a[4]:
                a[4] = b.high
            if b.low < a[5]:
                a[5] = b.low
            a[6] += b.volume
            a[7] += b.turnover
            a[8] += b.trades


def bars_from_events(bars: list[Bar]) -> pa.Table:
    """Bars (e.g. a builder's output) as a table sorted like ``bars_batch``'s."""
    ordered = sorted(bars, key=lambda b: (_ORDER[b.interval], b.start, b.symbol))
    return to_table(ordered, Bar)


# -- batch ---------------------------------------------------------------------------

_BLOCK_S = _SIZES[-1] // SEC  # the dense 1s grid is aligned to and padded to 15m blocks
_CHUNK = 1 << 16  # rows per pass of the dense path: temporaries stay in cache
_IDX_MASK = (1 << _IDX_BITS) - 1

Codes = npt.NDArray[np.int8]
Columns = list[I64]
"""One interval's bars: [symbol code, start, open, high, low, close, volume, turnover, trades]."""


def bars_batch(trades: pa.Table, grace_ns: int = 0) -> tuple[pa.Table, pa.Array]:
    """Every bar of ``trades`` (in arrival order) and the ``trade_id`` of each late trade.

    Equal to feeding the rows to a ``BarBuilder`` and flushing: the bars table
    has the schema ``arrow_schema(Bar)``, sorted by interval (1s, 1m, 3m, 5m,
    15m), then start, then symbol. Needs columns symbol, price, qty, ts and
    trade_id without nulls; raises ``OverflowError`` where a turnover might not
    fit in int64.
    """
    return _bars_batch(trades, grace_ns, dense=None)


def _bars_batch(trades: pa.Table, grace_ns: int, dense: bool | None) -> tuple[pa.Table, pa.Array]:
    """``bars_batch``; ``dense`` forces the grouping (None: the dense grid when it is small).

    Dense: one bucket per (second, symbol) over the session's span, filled
    chunk by chunk with unbuffered ``ufunc.at`` and rolled up by reshaping.
    Sparse (any span): sort-based groups rolled up with ``reduceat``.
    """
    _check_grace(grace_ns)
    grace_ns = min(grace_ns, 1 << 60)  # same lateness for any real ts, and int64 stays safe
    ts = _int_column(trades, "ts")
    price = _int_column(trades, "price")
    qty = _int_column(trades, "qty")
    trade_ids = _int_column(trades, "trade_id")
    indices, rank, names = _symbols(trades)
    nsym = len(names)
    if len(ts) == 0:
        columns = [np.empty(0, np.int64) for _ in range(9)]
        level: Codes = np.empty(0, np.int8)
        late: I64 = np.empty(0, np.int64)
    else:
        sec0 = int(ts.min()) // SEC // _BLOCK_S * _BLOCK_S
        span = (int(ts.max()) // SEC - sec0) // _BLOCK_S * _BLOCK_S + _BLOCK_S
        if dense is None:
            dense = span * nsym <= max(2 * len(ts), 1 << 21)
        if dense:
            columns, level, late = _dense(ts, price, qty, indices, rank, nsym, sec0, span, grace_ns)
        else:
            columns, level, late = _sparse(ts, price, qty, rank[indices], nsym, grace_ns)
    return _table(columns, level, names), pa.array(trade_ids[late], type=pa.int64())


def _int_column(table: pa.Table, name: str) -> I64:
    column = table.column(name)
    if column.null_count:
        raise ValueError(f"column {name!r} has nulls")
    return np.asarray(column.to_numpy(), dtype=np.int64)


def _symbols(table: pa.Table) -> tuple[npt.NDArray[np.integer[Any]], I64, Any]:
    """(per-row dictionary index, dictionary index -> rank, sorted distinct symbols)."""
    column = table.column("symbol")
    if column.null_count:
        raise ValueError("column 'symbol' has nulls")
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(array.type) and len(pc.unique(array.dictionary)) != len(
        array.dictionary
    ):  # a dictionary may repeat a value: codes must be one per symbol
        array = array.cast(array.type.value_type)
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array)
    dictionary = array.dictionary.cast(pa.string())
    order = np.asarray(pc.array_sort_indices(dictionary).to_numpy(), dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return array.indices.to_numpy(), rank, dictionary.take(pa.array(order))


def _late_mask(ts: I64, start: I64, carry: int, grace_ns: int) -> tuple[npt.NDArray[np.bool_], int]:
    """Late rows of a chunk (1s window closed under the running max ts before them)."""
    before = np.empty_like(ts)
    before[0] = carry
    np.maximum.accumulate(ts[:-1], out=before[1:])
    np.maximum(before, carry, out=before)
    return start + (SEC + grace_ns) <= before, max(int(before[-1]), int(ts[-1]))


def _check_turnover(price: I64, qty: I64, bound: float) -> float:
    """Running bound on every partial sum of price * qty; raise before int64 could wrap."""
    if len(price):
        bound += float(np.abs(price).max()) * float(np.abs(qty).sum(dtype=np.float64))
        if bound >= 0.99 * 2.0**63:
            raise OverflowError("turnover may exceed int64: price * qty sums too large")
    return bound


def _dense(
    ts: I64,
    price: I64,
    qty: I64,
    indices: npt.NDArray[np.integer[Any]],
    rank: I64,
    nsym: int,
    sec0: int,
    span: int,
    grace_ns: int,
) -> tuple[Columns, Codes, I64]:
    """Bars over a (second, symbol) grid; bucket order is (start, symbol) order.

    Late rows go to one extra bucket at the end that is never read, which is
    cheaper than filtering every chunk.
    """
    n_buckets = span * nsym
    size = n_buckets + 1
    first = np.full(size, _I64_MAX, dtype=np.int64)  # packed (ts offset, arrival index)
    last = np.full(size, -1, dtype=np.int64)
    high = np.full(size, _I64_MIN, dtype=np.int64)
    low = np.full(size, _I64_MAX, dtype=np.int64)
    volume = np.zeros(size, dtype=np.int64)
    turnover = np.zeros(size, dtype=np.int64)
    count = np.zeros(size, dtype=np.int64)
    late_rows: list[I64] = []
    carry = _I64_MIN
    bound = 0.0
    for a in range(0, len(ts), _CHUNK):
        t = ts[a : a + _CHUNK]
        sec = t // SEC
        start = sec * SEC
        is_late, carry = _late_mask(t, start, carry, grace_ns)
        row = np.arange(a, a + len(t), dtype=np.int64)
        p, q, code = price[a : a + _CHUNK], qty[a : a + _CHUNK], rank[indices[a : a + _CHUNK]]
        bound = _check_turnover(p, q, bound)
        sec -= sec0
        sec *= nsym
        sec += code  # the bucket
        if is_late.any():
            late_rows.append(row[is_late])
            sec[is_late] = n_buckets
        np.subtract(t, start, out=start)
        start <<= _IDX_BITS
        start |= row  # the open/close key
        np.minimum.at(first, sec, start)
        np.maximum.at(last, sec, start)
        np.maximum.at(high, sec, p)
        np.minimum.at(low, sec, p)
        np.add.at(volume, sec, q)
        np.add.at(turnover, sec, p * q)
        np.add.at(count, sec, 1)
    count = count[:n_buckets]
    nz = np.flatnonzero(count)
    open_ = np.zeros(n_buckets, dtype=np.int64)
    open_[nz] = price[first[nz] & _IDX_MASK]
    close = np.zeros(n_buckets, dtype=np.int64)
    close[nz] = price[last[nz] & _IDX_MASK]
    grid = [open_, high[:n_buckets], low[:n_buckets], close]
    grid += [volume[:n_buckets], turnover[:n_buckets], count]
    grids = [grid]
    for i in range(1, len(_NAMES)):
        grids.append(_rollup_grid(grids[_BUILT_FROM[i]], _SIZES[i] // _SIZES[_BUILT_FROM[i]], nsym))
    # gather the non-empty buckets of every level straight into the output columns
    nonempty = [np.flatnonzero(g[6]) for g in grids]
    total = sum(len(nz) for nz in nonempty)
    out = np.empty((9, total), dtype=np.int64)
    level = np.empty(total, dtype=np.int8)
    pos = 0
    for i, (g, nz) in enumerate(zip(grids, nonempty, strict=True)):
        part = slice(pos, pos + len(nz))
        np.remainder(nz, nsym, out=out[0, part])
        start = out[1, part]
        np.floor_divide(nz, nsym, out=start)
        start *= _SIZES[i]
        start += sec0 * SEC
        for j, column in enumerate(g, 2):
            np.take(column, nz, out=out[j, part])
        level[part] = i
        pos += len(nz)
    late = np.concatenate(late_rows) if late_rows else np.empty(0, np.int64)
    return list(out), level, late


def _rollup_grid(child: Columns, k: int, nsym: int) -> Columns:
    """Parent grid from a child grid: ``k`` consecutive child slots per parent slot."""
    open_, high, low, close, volume, turnover, count = (c.reshape(-1, k, nsym) for c in child)
    has = count > 0
    first = has.argmax(axis=1)[:, None, :]
    last = (k - 1 - has[:, ::-1, :].argmax(axis=1))[:, None, :]
    return [
        np.take_along_axis(open_, first, axis=1).ravel(),
        high.max(axis=1).ravel(),
        low.min(axis=1).ravel(),
        np.take_along_axis(close, last, axis=1).ravel(),
        volume.sum(axis=1).ravel(),
        turnover.sum(axis=1).ravel(),
        count.sum(axis=1).ravel(),
    ]


def _sparse(
    ts: I64, price: I64, qty: I64, codes: I64, nsym: int, grace_ns: int
) -> tuple[Columns, Codes, I64]:
    """Bars for any time span: sort-based 1s groups, ``reduceat`` roll-ups."""
    sec = ts // SEC
    late_mask, _ = _late_mask(ts, sec * SEC, _I64_MIN, grace_ns)
    late = np.flatnonzero(late_mask)
    if len(late):
        keep = ~late_mask
        ts, sec, price, qty, codes = ts[keep], sec[keep], price[keep], qty[keep], codes[keep]
    _check_turnover(price, qty, 0.0)
    levels = [_groups_1s(ts, sec, price, qty, codes)]
    for i in range(1, len(_NAMES)):
        levels.append(_rollup_sorted(levels[_BUILT_FROM[i]], _SIZES[i]))
    for i, columns in enumerate(levels):
        order = _start_symbol_order(columns[0], columns[1], _SIZES[i], nsym)
        levels[i] = [c[order] for c in columns]
    level = np.concatenate([np.full(len(c[0]), i, dtype=np.int8) for i, c in enumerate(levels)])
    return [np.concatenate(parts) for parts in zip(*levels, strict=True)], level, late


def _groups_1s(ts: I64, sec: I64, price: I64, qty: I64, codes: I64) -> Columns:
    """1s bars sorted by (symbol, start); (symbol << 35 | second offset) fits (spans < 2**35 s)."""
    n = len(ts)
    if n == 0:
        return [np.empty(0, np.int64) for _ in range(9)]
    sec0 = int(sec.min())
    keys, group = np.unique((codes << 35) | (sec - sec0), return_inverse=True)
    g = len(keys)
    key = ((ts - sec * SEC) << _IDX_BITS) | np.arange(n, dtype=np.int64)
    first = np.full(g, _I64_MAX, dtype=np.int64)
    np.minimum.at(first, group, key)
    last = np.full(g, -1, dtype=np.int64)
    np.maximum.at(last, group, key)
    high = np.full(g, _I64_MIN, dtype=np.int64)
    np.maximum.at(high, group, price)
    low = np.full(g, _I64_MAX, dtype=np.int64)
    np.minimum.at(low, group, price)
    volume = np.zeros(g, dtype=np.int64)
    np.add.at(volume, group, qty)
    turnover = np.zeros(g, dtype=np.int64)
    np.add.at(turnover, group, price * qty)
    count = np.bincount(group, minlength=g).astype(np.int64)
    start = ((keys & ((1 << 35) - 1)) + sec0) * SEC
    open_, close = price[first & _IDX_MASK], price[last & _IDX_MASK]
    return [keys >> 35, start, open_, high, low, close, volume, turnover, count]


def _rollup_sorted(child: Columns, size: int) -> Columns:
    """Parent bars from child bars sorted by (symbol, start); the result is sorted alike."""
    sym, start, open_, high, low, close, volume, turnover, count = child
    if len(sym) == 0:
        return [c[:0] for c in child]
    pstart = start // size * size
    boundary = np.empty(len(sym), dtype=bool)
    boundary[0] = True
    np.not_equal(sym[1:], sym[:-1], out=boundary[1:])
    boundary[1:] |= pstart[1:] != pstart[:-1]
    firsts = np.flatnonzero(boundary)
    lasts = np.empty_like(firsts)
    lasts[:-1] = firsts[1:] - 1
    lasts[-1] = len(sym) - 1
    return [
        sym[firsts],
        pstart[firsts],
        open_[firsts],
        np.maximum.reduceat(high, firsts),
        np.minimum.reduceat(low, firsts),
        close[lasts],
        np.add.reduceat(volume, firsts),
        np.add.reduceat(turnover, firsts),
        np.add.reduceat(count, firsts),
    ]


def _start_symbol_order(sym: I64, start: I64, size: int, nsym: int) -> I64:
    """Permutation sorting bars of one interval by (start, symbol)."""
    if len(sym) == 0:
        return np.empty(0, dtype=np.int64)
    slot = (start - start.min()) // size
    if int(slot.max()) < (_I64_MAX - nsym) // max(nsym, 1):
        return np.argsort(slot * nsym + sym)
    return np.lexsort((sym, start))


def _table(columns: Columns, level: Codes, names: Any) -> pa.Table:
    """The Bar table from the bars of every interval and each row's interval index."""
    sym, start, open_, high, low, close, volume, turnover, count = columns
    interval = pa.DictionaryArray.from_arrays(pa.array(level), pa.array(list(_NAMES)))
    arrays: list[Any] = [
        names.take(pa.array(sym)),
        interval.cast(pa.string()),
        start,
        start + np.array(_SIZES, dtype=np.int64)[level],
        open_,
        high,
        low,
        close,
        volume,
        turnover,
        _vwap_array(turnover, volume),
        count,
    ]
    return pa.Table.from_arrays(
        [c if isinstance(c, pa.Array) else pa.array(c) for c in arrays], schema=arrow_schema(Bar)
    )


def _vwap_array(turnover: I64, volume: I64) -> npt.NDArray[np.float64]:
    """``turnover / volume`` rounded exactly as Python's int division, NaN for zero volume."""
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = turnover.astype(np.float64) / volume.astype(np.float64)
    vwap[volume == 0] = np.nan
    # beyond 2**53 the float conversion rounds first: redo those rows in Python
    for i in np.flatnonzero((np.abs(turnover) > _EXACT_FLOAT) | (np.abs(volume) > _EXACT_FLOAT)):
        vwap[i] = _vwap(int(turnover[i]), int(volume[i]))
    return vwap
