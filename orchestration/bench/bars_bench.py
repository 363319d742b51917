"""Throughput of the bar builder: incremental (``BarBuilder``) and batch (``bars_batch``).

The trade stream is seeded and realistic enough to exercise the real paths: a
6.5 h session, symbols with Zipf-like activity, prices as per-symbol random
walks on a 0.01 tick, lot-sized quantities, timestamps mostly in order with a
few percent arriving up to 400 ms early (within the 500 ms grace) and a few
per mille arriving seconds behind (late). Generation is not timed.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from streaming.bars import BarBuilder, bars_batch
from streaming.events import Bar, Event, Trade
from streaming.schema import arrow_schema

SESSION_START = 1_704_205_800_000_000_000  # 2024-01-02 14:30 UTC
SESSION_NS = 23_400_000_000_000  # 6.5 h
GRACE_NS = 500_000_000
BATCH_RUNS = 3
"""The batch figure is the best of this many runs: the first run in a process that
has just built millions of objects pays for first-touch page faults of its arrays
(up to 3x on a small VM), which says little about the code."""


def trade_stream(n: int, seed: int = 1, symbols: int = 20) -> pa.Table:
    """``n`` trades in arrival order as a table with the schema ``arrow_schema(Trade)``."""
    rng = np.random.default_rng(seed)
    names = np.array([f"SYM{i:03d}" for i in range(symbols)])
    weights = 1.0 / np.arange(1, symbols + 1)
    sym = rng.choice(symbols, size=n, p=weights / weights.sum())
    ts = SESSION_START + np.sort(rng.integers(0, SESSION_NS, size=n))
    jitter = rng.random(n)
    ts -= np.where(jitter < 0.05, rng.integers(0, 400_000_000, size=n), 0)  # within grace
    ts -= np.where(jitter > 0.998, rng.integers(2, 10, size=n) * 1_000_000_000, 0)  # late
    ref = rng.integers(1_000, 50_000, size=symbols) * 100  # 10.00 .. 500.00
    steps = rng.choice(np.array([-100, 0, 100]), size=n, p=[0.3, 0.4, 0.3])
    walk = np.zeros(n, dtype=np.int64)
    for s in range(symbols):  # cumulative walk per symbol, floored at one tick
        mask = sym == s
        walk[mask] = np.cumsum(steps[mask])
    price = np.maximum(ref[sym] + walk, 100)
    qty = rng.integers(1, 11, size=n) * 100
    side = np.where(rng.random(n) < 0.5, "buy", "sell")
    columns = {
        "trade_id": np.arange(1, n + 1, dtype=np.int64),
        "symbol": names[sym],
        "price": price,
        "qty": qty,
        "aggressor_side": side,
        "buy_order_id": np.arange(1, 2 * n, 2, dtype=np.int64),
        "sell_order_id": np.arange(2, 2 * n + 1, 2, dtype=np.int64),
        "buy_member": np.full(n, "M01"),
        "sell_member": np.full(n, "M02"),
        "ts": ts,
    }
    schema = arrow_schema(Trade)
    return pa.Table.from_arrays([pa.array(columns[f.name]) for f in schema], schema=schema)


def bench_bars(n: int = 2_000_000, seed: int = 1, symbols: int = 20) -> dict[str, float]:
    """Trades per second of both builders over the same seeded stream (all five intervals).

    Streaming: one pass of ``on_trade`` over ``Trade`` objects plus the final
    ``flush``. Batch: ``bars_batch`` on the Arrow table, best of ``BATCH_RUNS``.
    Both produce every bar of every interval; the counts are cross-checked.
    """
    table = trade_stream(n, seed, symbols)
    columns = [table.column(name).to_pylist() for name in Trade.__struct_fields__]
    trades = [Trade(*row) for row in zip(*columns, strict=True)]

    builder = BarBuilder(GRACE_NS)
    out: list[Event] = []
    on_trade = builder.on_trade
    t0 = time.perf_counter()
    for trade in trades:
        on_trade(trade, out)
    builder.flush(out)
    streaming_s = time.perf_counter() - t0

    batch_s = float("inf")
    for _ in range(BATCH_RUNS):
        t0 = time.perf_counter()
        bars, late = bars_batch(table, GRACE_NS)
        batch_s = min(batch_s, time.perf_counter() - t0)

    streamed = sum(1 for e in out if type(e) is Bar)
    if streamed != bars.num_rows or builder.late_trades != len(late):
        raise AssertionError(
            f"builders disagree: {streamed} vs {bars.num_rows} bars,"
            f" {builder.late_trades} vs {len(late)} late trades"
        )
    return {
        "trades": float(n),
        "streaming_trades_per_s": n / streaming_s,
        "batch_trades_per_s": n / batch_s,
        "bars": float(bars.num_rows),
    }


if __name__ == "__main__":
    for key, value in bench_bars().items():
        print(f"{key:24s} {value:16,.0f}")
