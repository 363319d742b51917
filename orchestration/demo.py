"""The demo: one simulated trading day on the embedded event log, published into the lake.

The day's topics are landed into the raw Iceberg tables (one partition replace
per table, ``trading_day`` = the day), and everything the command prints comes
from what was published, so the summary and the lake always agree; the same
date and seed give identical table contents.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lake.landing import land_day
from lake.tables import PARTITION_COLUMN
from lake.writer import Published
from orchestration.lake import catalog as lake_catalog
from orchestration.lake import lake_config
from orchestration.settings import Settings
from streaming.events import PRICE_SCALE
from streaming.refdata import load_calendar, load_members, load_securities
from streaming.services.day import DayConfig, DayResult, run_day
from streaming.transport.sqlite import SqliteEventLog


def day_dir(settings: Settings, day: date, seed: int) -> Path:
    """Where the day's event log is kept: ``<data dir>/demo/<day>_seed<seed>/``."""
    return settings.data_dir / "demo" / f"{day.isoformat()}_seed{seed}"


def run_demo(
    settings: Settings,
    day: date,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    landed: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Simulate ``day``, publish its topics into the lake and return the summary.

    ``progress(done, total)`` follows the session's cycles; ``landed(table,
    rows)`` is called as each raw table's partition is published.
    """
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
        catalog = lake_catalog(settings)
        published = land_day(log, catalog, day, progress=landed)
    finally:
        log.close()
    return summarise(result, catalog, published, lake_info(settings, published))


def lake_info(settings: Settings, published: dict[str, Published]) -> dict[str, Any]:
    """Where the day went: warehouse, catalog (password hidden) and rows per table."""
    from sqlalchemy.engine import make_url

    config = lake_config(settings)
    return {
        "warehouse": config.warehouse,
        "catalog": make_url(config.catalog_uri).render_as_string(hide_password=True),
        "tables": {identifier: p.rows for identifier, p in published.items()},
    }


def day_trades(catalog: Catalog, day: date) -> pa.Table:
    """The day's partition of ``raw.trades`` in trading order (ts, then trade id)."""
    table = catalog.load_table("raw.trades")
    trades = table.scan(
        row_filter=EqualTo(PARTITION_COLUMN, day),
        selected_fields=("symbol", "price", "qty", "ts", "trade_id"),
    ).to_arrow()
    return trades.sort_by([("ts", "ascending"), ("trade_id", "ascending")])


def summarise(
    result: DayResult, catalog: Catalog, published: dict[str, Published], lake: dict[str, Any]
) -> dict[str, Any]:
    """Per symbol trades/volume/OHLC (from the published trades) and per member P&L."""
    cfg = result.config
    trades = day_trades(catalog, cfg.day)
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
    counts = {identifier.split(".", 1)[1]: p.rows for identifier, p in published.items()}
    return {
        "date": cfg.day.isoformat(),
        "seed": cfg.seed,
        "exchange": cfg.calendar.exchange,
        "session_open_ns": result.open_ns,
        "session_close_ns": result.close_ns,
        "counts": counts,
        "late_trades": result.late_trades,
        "lake": lake,
        "symbols": symbols,
        "members": result.members.summary(cfg.obligation),
    }
