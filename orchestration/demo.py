"""The demo: one simulated trading day on the embedded stack, written as Parquet, summarised.

Everything the command prints comes from what was written, so the summary
and the files always agree; same date and seed give identical files.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from lake.parquet import read_topic, write_events, write_union
from orchestration.settings import Settings
from streaming.events import (
    PRICE_SCALE,
    AmendOrder,
    Bar,
    BookTop,
    CancelOrder,
    DeadLetter,
    ExecutionReport,
    NewOrder,
    OrderRequest,
    Trade,
)
from streaming.refdata import load_calendar, load_members, load_securities
from streaming.services.day import DayConfig, DayResult, run_day
from streaming.transport.sqlite import SqliteEventLog

ORDER_KINDS = (NewOrder, CancelOrder, AmendOrder)
OUTPUT_TABLES: dict[str, tuple[str, type[Any]]] = {
    "executions": ("executions", ExecutionReport),
    "trades": ("trades", Trade),
    "bbo": ("bbo", BookTop),
    "dlq": ("dlq", DeadLetter),
}


def day_dir(settings: Settings, day: date, seed: int) -> Path:
    return settings.data_dir / "demo" / f"{day.isoformat()}_seed{seed}"


def run_demo(
    settings: Settings,
    day: date,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Simulate ``day``, write its topics as Parquet and return the summary."""
    calendar = load_calendar(settings.calendar_toml)
    if not calendar.is_trading_day(day):
        raise ValueError(
            f"{day} is not a trading day on {calendar.exchange}"
            f" (next: {calendar.next_trading_day(day)})"
        )
    out_dir = day_dir(settings, day, seed)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    log = SqliteEventLog(out_dir / "eventlog.sqlite")
    try:
        cfg = DayConfig(
            day=day,
            seed=seed,
            securities=load_securities(settings.securities_csv),
            members=load_members(settings.members_csv),
            calendar=calendar,
            stp=settings.stp_mode,
            band_pct=settings.price_band_pct,
            grace_ns=settings.bar_grace_ms * 1_000_000,
        )
        result = run_day(log, cfg, progress)
        counts = _write_outputs(log, out_dir)
    finally:
        log.close()
    return summarise(result, counts, out_dir)


def _write_outputs(log: SqliteEventLog, out_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    orders = read_topic(log, "orders", OrderRequest)
    write_union(orders, ORDER_KINDS, out_dir / "orders.parquet")
    counts["orders"] = len(orders)
    for name, (topic, kind) in OUTPUT_TABLES.items():
        events = read_topic(log, topic, kind)
        write_events(events, kind, out_dir / f"{name}.parquet")
        counts[name] = len(events)
    bars: list[Bar] = []
    for interval in ("1s", "1m", "3m", "5m", "15m"):
        bars.extend(read_topic(log, f"bars.{interval}", Bar))
    write_events(bars, Bar, out_dir / "bars.parquet")
    counts["bars"] = len(bars)
    return counts


def summarise(result: DayResult, counts: dict[str, int], out_dir: Path) -> dict[str, Any]:
    """Per symbol trades/volume/OHLC (from the matcher's trades) and per member P&L."""
    import pyarrow.parquet as pq

    trades = pq.read_table(out_dir / "trades.parquet", columns=["symbol", "price", "qty"])
    per_symbol: dict[str, dict[str, Any]] = {}
    for sym, price, qty in zip(
        trades["symbol"].to_pylist(),
        trades["price"].to_pylist(),
        trades["qty"].to_pylist(),
        strict=True,
    ):
        row = per_symbol.get(sym)
        if row is None:
            row = per_symbol[sym] = {
                "symbol": sym,
                "trades": 0,
                "volume": 0,
                "turnover": 0,
                "open": price,
                "high": price,
                "low": price,
                "close": price,
            }
        row["trades"] += 1
        row["volume"] += qty
        row["turnover"] += price * qty
        row["high"] = max(row["high"], price)
        row["low"] = min(row["low"], price)
        row["close"] = price
    symbols = []
    for sym in sorted(per_symbol):
        row = per_symbol[sym]
        symbols.append(
            {
                "symbol": sym,
                "trades": row["trades"],
                "volume": row["volume"],
                "open": row["open"] / PRICE_SCALE,
                "high": row["high"] / PRICE_SCALE,
                "low": row["low"] / PRICE_SCALE,
                "close": row["close"] / PRICE_SCALE,
                "vwap": round(row["turnover"] / row["volume"] / PRICE_SCALE, 4),
            }
        )
    cfg = result.config
    return {
        "date": cfg.day.isoformat(),
        "seed": cfg.seed,
        "exchange": cfg.calendar.exchange,
        "session_open_ns": result.open_ns,
        "session_close_ns": result.close_ns,
        "counts": counts,
        "late_trades": result.late_trades,
        "output_dir": str(out_dir),
        "symbols": symbols,
        "members": result.members.summary(cfg.obligation),
    }
