"""The lake benchmark: publish throughput into Iceberg, then one query on both engines.

1. Publish: ``n`` seeded synthetic trades over a fixed week of trading days
   (one ``lake.writer.publish`` per day, i.e. one partition replace each) into
   ``raw.trades`` of the stack's lake (PostgreSQL catalog, MinIO bucket);
   rows/s = rows / seconds spent inside ``publish``. Generation is not timed.
2. Query: the daily OHLCV per symbol over exactly those days, the same SQL
   text on DuckDB (in process, reading the bucket) and on Trino; the first run
   on each engine is reported as cold, the rest as warm. Cold is the first
   query of a new DuckDB connection, but only the first of this benchmark on
   a Trino that may have run for long: right after Trino starts, its first
   query also pays for the JVM's warm-up (several seconds). Both engines must
   return the same rows, and together exactly the ``n`` trades published.

The days are fixed (the week of ``FIRST_DAY``), far from any simulated day, so
re-running replaces the same partitions and never accumulates rows (the
superseded files stay in the bucket with the table's older snapshots).
"""

from __future__ import annotations

import math
import os
import resource
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from lake.tables import table
from lake.writer import publish
from settings import Settings
from streaming.refdata import Security, load_calendar, load_securities

MEMBERS = [f"USR{i:02d}" for i in range(1, 11)]
FIRST_DAY = date(2024, 1, 8)
"""A Monday; the benchmark's days are the trading days from here."""
DAYS = 5
QUERY_RUNS = 4
"""Runs per engine: the first is reported as cold, the others as warm."""
TABLE = "raw.trades"


def trading_days(count: int = DAYS) -> list[date]:
    cal = load_calendar()
    days = cal.trading_days(FIRST_DAY, date(FIRST_DAY.year + 1, 12, 31))
    return [next(days) for _ in range(count)]


def _strings(codes: np.ndarray, values: list[str]) -> pa.Array:
    """A plain string column from integer codes, built in Arrow (no Python objects)."""
    dictionary = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(values))
    return dictionary.cast(pa.string())


class TradeGenerator:
    """Seeded trades, one trading day at a time; prices walk on across days."""

    def __init__(self, securities: list[Security], seed: int) -> None:
        self.secs = securities
        self.rng = np.random.default_rng(seed)
        self.symbols = [s.symbol for s in securities]
        self.tick = np.array([s.tick for s in securities], dtype=np.int64)
        self.last = np.array([s.reference_price for s in securities], dtype=np.int64)
        weights = 1.0 / np.arange(1, len(securities) + 1) ** 0.8  # Zipf-like activity
        self.weights = weights / weights.sum()
        self.next_id = 1

    def day(self, day: date, n: int) -> pa.Table:
        rng, nsym = self.rng, len(self.secs)
        open_ns, close_ns = load_calendar().session_bounds(day)
        # strictly increasing timestamps inside the session: no two trades share a ts,
        # so "first" and "last" of a symbol are the same on every engine
        arrivals = np.cumsum(rng.exponential(1.0, size=n))
        spread = np.floor(arrivals / arrivals[-1] * (close_ns - open_ns - n - 1))
        ts = open_ns + spread.astype(np.int64) + np.arange(n, dtype=np.int64)
        sym = rng.choice(nsym, size=n, p=self.weights).astype(np.int32)
        # a random walk per symbol in ticks: -2..2 ticks per trade, floored at one tick
        steps = rng.integers(-2, 3, size=n, dtype=np.int64) * self.tick[sym]
        order = np.argsort(sym, kind="stable")
        walk = np.cumsum(steps[order])
        counts = np.bincount(sym, minlength=nsym)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        before = np.where(starts > 0, walk[np.maximum(starts - 1, 0)], 0)
        walk -= np.repeat(before, counts)
        price = np.empty(n, dtype=np.int64)
        price[order] = np.repeat(self.last, counts) + walk
        np.maximum(price, self.tick[sym], out=price)
        ends = np.cumsum(counts) - 1
        has = counts > 0
        self.last[has] = price[order[ends[has]]]
        qty = rng.integers(1, 501, size=n, dtype=np.int64)
        side = rng.integers(0, 2, size=n, dtype=np.int32)
        buyer = rng.integers(0, len(MEMBERS), size=n, dtype=np.int32)
        seller = (buyer + rng.integers(1, len(MEMBERS), size=n, dtype=np.int32)) % len(MEMBERS)
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        return pa.table(
            {
                "trade_id": ids,
                "symbol": _strings(sym, self.symbols),
                "price": price,
                "qty": qty,
                "aggressor_side": _strings(side, ["buy", "sell"]),
                "buy_order_id": 2 * ids,
                "sell_order_id": 2 * ids + 1,
                "buy_member": _strings(buyer, MEMBERS),
                "sell_member": _strings(seller, MEMBERS),
                "ts": ts,
            }
        ).cast(table(TABLE).schema)


OHLCV_SQL = """
SELECT trading_day, symbol,
       count(*) AS trades,
       min_by(price, ts) AS open_price,
       max(price) AS high_price,
       min(price) AS low_price,
       max_by(price, ts) AS close_price,
       CAST(sum(qty) AS BIGINT) AS volume,
       CAST(sum(price * qty) AS DOUBLE) / sum(qty) AS vwap
FROM raw.trades
WHERE trading_day BETWEEN DATE '{first}' AND DATE '{last}'
GROUP BY trading_day, symbol
ORDER BY trading_day, symbol
"""
"""Daily OHLCV per symbol; portable: min_by/max_by and the casts mean the same on both."""


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of another process so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int | None, field: str = "VmRSS") -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def publish_days(settings: Settings, n: int, seed: int, days: list[date]) -> dict[str, Any]:
    """Publish ``n`` trades spread evenly over ``days``, one partition replace per day."""
    import warnings

    from assets.platform.lake_engines import catalog

    cat = catalog(settings)
    tdef = table(TABLE)
    gen = TradeGenerator(load_securities(), seed)
    sizes = [n // len(days) + (i < n % len(days)) for i in range(len(days))]
    per_day: list[float] = []
    cpu = 0.0
    for day, size in zip(days, sizes, strict=True):
        batch = gen.day(day, size)
        cpu_before = time.process_time()
        with warnings.catch_warnings():  # the first publish of a day deletes nothing
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            published = publish(cat, tdef, day, batch)
        cpu += time.process_time() - cpu_before
        per_day.append(published.seconds)
        del batch
    seconds = sum(per_day)
    rest_rows, rest_s = n - sizes[0], sum(per_day[1:])
    return {
        "rows": n,
        "seconds": seconds,
        "rows_per_s": n / seconds,
        # without the first publish, which pays for imports and first-use warm-up
        "later_days_rows_per_s": rest_rows / rest_s if rest_s else None,
        "per_day_s": per_day,
        "cpu_s": cpu,
    }


def time_queries(engine: Any, sql: str, runs: int) -> tuple[dict[str, Any], pa.Table]:
    """Run ``sql`` ``runs`` times; the first is cold, the rest warm."""
    times: list[float] = []
    result = pa.table({})
    for _ in range(runs):
        start = time.perf_counter()
        result = engine.query(sql)
        times.append(time.perf_counter() - start)
    warm = sorted(times[1:]) or times
    return {
        "cold_s": times[0],
        "warm_median_s": warm[len(warm) // 2],
        "warm_min_s": warm[0],
        "warm_max_s": warm[-1],
        "runs_s": times,
    }, result


def compare(a: pa.Table, b: pa.Table) -> list[str]:
    """Differences between two OHLCV results (row order ignored, VWAP to 1e-9 relative)."""

    def rows(t: pa.Table) -> list[dict[str, Any]]:
        return sorted(t.to_pylist(), key=lambda r: (r["trading_day"], r["symbol"]))

    ra, rb = rows(a), rows(b)
    problems: list[str] = []
    if a.column_names != b.column_names:
        problems.append(f"columns differ: {a.column_names} vs {b.column_names}")
    if len(ra) != len(rb):
        problems.append(f"{len(ra)} rows vs {len(rb)} rows")
    for x, y in zip(ra, rb, strict=False):
        for col, vx in x.items():
            vy = y.get(col)
            same = (
                math.isclose(vx, vy, rel_tol=1e-9)
                if isinstance(vx, float) and isinstance(vy, float)
                else vx == vy
            )
            if not same:
                problems.append(f"{x['trading_day']} {x['symbol']} {col}: {vx!r} vs {vy!r}")
    return problems


def bench_lake(settings: Settings, n: int, seed: int, runs: int = QUERY_RUNS) -> dict[str, Any]:
    """Publish ``n`` trades into the stack's lake, then time one OHLCV query per engine.

    Expects the stack's lake running (``services(settings)["trino"].start()``):
    PostgreSQL, MinIO with the bucket, and Trino.
    """
    from assets.platform import stack
    from assets.platform.lake_engines import query_engine

    if n < 1:
        raise ValueError("the lake benchmark needs at least one trade")
    settings = settings.model_copy(update={"lake_storage": "s3"})
    svc = stack.services(settings)
    minio_pid = svc["minio"].process.pid()  # type: ignore[attr-defined]  # a MinioService, typed as Service
    trino_pid = svc["trino"].trino.process.pid()  # type: ignore[attr-defined]  # a LakeTrino, typed as Service
    days = trading_days(DAYS if n >= DAYS else 1)

    minio_cpu = _cpu_seconds(minio_pid)
    published = publish_days(settings, n, seed, days)
    published["minio_cpu_s"] = _cpu_seconds(minio_pid) - minio_cpu

    sql = OHLCV_SQL.format(first=days[0].isoformat(), last=days[-1].isoformat())
    engines: dict[str, dict[str, Any]] = {}
    results: dict[str, pa.Table] = {}
    for name in ("duckdb", "trino"):
        cpu_self, cpu_trino = time.process_time(), _cpu_seconds(trino_pid)
        start = time.perf_counter()
        engine = query_engine(settings, name)
        connect = time.perf_counter() - start
        try:
            figures, results[name] = time_queries(engine, sql, runs)
        finally:
            engine.close()
        figures["connect_s"] = connect
        figures["cpu_s"] = (
            time.process_time() - cpu_self
            if name == "duckdb"
            else _cpu_seconds(trino_pid) - cpu_trino
        )
        engines[name] = figures

    duck = results["duckdb"]
    mismatches = compare(duck, results["trino"])
    counted = sum(duck.column("trades").to_pylist()) if "trades" in duck.column_names else 0
    if counted != n:
        mismatches.insert(0, f"the query counted {counted:,} trades, {n:,} were published")
    return {
        "trades": n,
        "days": [d.isoformat() for d in days],
        "symbols": len(load_securities()),
        "publish": published,
        "query": engines,
        "result_rows": duck.num_rows,
        "engines_agree": not mismatches,
        "mismatches": mismatches[:10],
        "python_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "minio_rss_mb": _rss_mb(minio_pid),
        "trino_rss_mb": _rss_mb(trino_pid),
    }
