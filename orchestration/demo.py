"""The demo: one seeded trading day through the live core, then every asset through Dagster.

The session runs on the embedded event log as the day's live data
(``<data dir>/sessions/<day>.sqlite``, replaced if it exists); then one Dagster
run materialises landing -> market -> clearing -> recon -> dbt marts -> the
settlement report for that day, recorded in the instance ``marketlake ui``
shows. The same run fetches the day's news: by default the recorded stories
of ``intelligence/ingest/recorded_news.yml``, served by a local
Polygon-compatible endpoint (no network or key needed), so documents, trends
and the next session's recommendations appear too. Everything the command
prints is read back from the lake, so the summary and the lake always agree;
the same date and seed give identical tables.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

from pyiceberg.catalog import Catalog

from assets.platform.event_logs import session_log_path
from assets.platform.lake_engines import catalog as lake_catalog
from assets.platform.lake_engines import lake_config
from assets.platform.resources import PlatformResource, day_config
from lake.row_filters import equal_to
from lake.tables import PARTITION_COLUMN, TOPIC_TABLES
from orchestration.backfill import DayRun, backfill
from settings import Settings
from streaming.events import PRICE_SCALE
from streaming.refdata import load_calendar
from streaming.services.day import DayResult, run_day

INTEL_TABLES = ("intel.documents", "intel.extractions", "intel.trends", "intel.recommendations")
MARTS = ("fct_trades", "fct_daily_bars", "dim_members", "fct_member_daily_pnl", "fct_settlement")


class DemoError(RuntimeError):
    """The day's Dagster run failed; the message says which step and where to look."""


def run_demo(
    settings: Settings,
    day: date,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    session_done: Callable[[], None] | None = None,
    recorded_news: bool = True,
) -> dict[str, Any]:
    """Simulate ``day``, materialise every asset for it through Dagster, return the summary.

    ``progress(done, total)`` follows the session's cycles; ``session_done()``
    is called when the session is over and the Dagster run starts.
    ``recorded_news``: the day's news comes from the recorded stories, fetched
    from a local server with the platform's clock at the day's close (as if
    the run were that evening); otherwise from the configured providers.
    """
    calendar = load_calendar(settings.calendar_toml)
    if not calendar.is_trading_day(day):
        raise ValueError(
            f"{day} is not a trading day on {calendar.exchange}"
            f" (next: {calendar.next_trading_day(day)})"
        )
    platform = PlatformResource(data_dir=str(settings.data_dir))
    session = session_log_path(settings, day)
    for stale in (session, session.with_name(session.name + "-wal"),
                  session.with_name(session.name + "-shm")):  # fmt: skip
        stale.unlink(missing_ok=True)
    log = platform.session_log(day)
    try:
        cfg = day_config(settings, day, seed)
        result = run_day(log, cfg, progress)
    finally:
        log.close()
    if session_done is not None:
        session_done()
    _, close_ns = calendar.session_bounds(day)
    with _news(recorded_news, close_ns) as news:
        (run,) = backfill(settings, day, day, **news)
    if not run.success:
        raise DemoError(
            f"the Dagster run {run.run_id} for {day} failed; see it with `marketlake ui` "
            f"(steps done: {', '.join(run.steps) or 'none'})"
        )
    catalog = lake_catalog(settings)
    rows = {t: day_rows(catalog, t, day) for t in dict.fromkeys(TOPIC_TABLES.values())}
    summary = summarise(result, catalog, rows, lake_info(settings, rows))
    summary["dagster"] = dagster_info(run)
    summary["intelligence"] = intelligence_info(
        catalog, day, calendar.next_trading_day(day), recorded_news
    )
    summary["marts"] = {f"marts.{m}": day_rows(catalog, f"marts.{m}", day) for m in MARTS}
    report = settings.data_dir / "reports" / f"settlement-{day.isoformat()}.html"
    summary["report"] = str(report.resolve())
    return summary


@contextlib.contextmanager
def _news(recorded: bool, close_ns: int) -> Iterator[dict[str, Any]]:
    """Serve the recorded stories for the run's length; yields the backfill's arguments.

    The platform's clock a minute after the close, settings that point the
    news provider at the local server, and op config that limits the day's
    fetch to news APIs. Nothing when the news comes from the providers.
    """
    if not recorded:
        yield {}
        return
    from deploy.recorded_http import ReplayServer, Request, Response
    from intelligence.ingest.recorded_news import load_stories, polygon_news_page

    stories = load_stories()

    def news(request: Request) -> Response:
        body = polygon_news_page(stories, close_ns, request.target)
        return Response(200, body, {"Content-Type": "application/json"})

    with ReplayServer() as server:
        server.add("/v2/reference/news", news)
        yield {
            "now": datetime.fromtimestamp(close_ns / 1e9 + 60, UTC).isoformat(),
            "overrides": {
                "intel_base_urls": {"polygon": server.base_url},
                "polygon_api_key": "recorded-news",
                "ingest_rate_limits": {"news_api": 100.0},
            },
            "ops": {"intel_fetches": {"config": {"source_types": ["news_api"]}}},
        }


def intelligence_info(
    catalog: Catalog, day: date, next_session: date, recorded: bool
) -> dict[str, Any]:
    """The day's intelligence: rows per table and the recommendations, strongest first
    (they reach ``next_session``: the demo's run is after the close)."""
    rows = {t: day_rows(catalog, t, day) for t in INTEL_TABLES}
    recs: list[dict[str, Any]] = []
    if rows["intel.recommendations"]:
        table = catalog.load_table("intel.recommendations").scan(
            row_filter=equal_to(PARTITION_COLUMN, day),
            selected_fields=("symbol", "action", "mode", "confidence", "signal", "driver",
                             "thesis"),
        ).to_arrow()  # fmt: skip
        recs = sorted(table.to_pylist(), key=lambda r: (-abs(r["signal"]), r["symbol"]))
    return {"news": "recorded" if recorded else "providers", "tables": rows,
            "next_session": next_session.isoformat(), "recommendations": recs}  # fmt: skip


def day_rows(catalog: Catalog, identifier: str, day: date) -> int:
    """Rows of ``identifier``'s partition for ``day`` (0 when the table does not exist)."""
    if not catalog.table_exists(identifier):
        return 0
    return catalog.load_table(identifier).scan(row_filter=equal_to(PARTITION_COLUMN, day)).count()


def dagster_info(run: DayRun) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "seconds": round(run.seconds, 2),
        "steps": {step: round(s, 2) for step, s in run.steps.items()},
        "dagster_home": os.environ.get("DAGSTER_HOME", ""),
    }


def lake_info(settings: Settings, rows: dict[str, int]) -> dict[str, Any]:
    """Where the day went: warehouse, catalog (password hidden) and rows per table."""
    from sqlalchemy.engine import make_url

    config = lake_config(settings)
    return {
        "warehouse": config.warehouse,
        "catalog": make_url(config.catalog_uri).render_as_string(hide_password=True),
        "tables": dict(rows),
    }


def summarise(
    result: DayResult, catalog: Catalog, rows: dict[str, int], lake: dict[str, Any]
) -> dict[str, Any]:
    """Per symbol trades/volume/OHLC/VWAP (as ``core.market_daily`` published them) and
    per member P&L."""
    cfg = result.config
    market = (
        catalog.load_table("core.market_daily")
        .scan(
            row_filter=equal_to(PARTITION_COLUMN, cfg.day),
            selected_fields=("symbol", "trades", "volume", "open", "high", "low", "close", "vwap"),
        )
        .to_arrow()
        .sort_by("symbol")
    )
    symbols = [
        {
            "symbol": row["symbol"],
            "trades": row["trades"],
            "volume": row["volume"],
            "open": row["open"] / PRICE_SCALE,
            "high": row["high"] / PRICE_SCALE,
            "low": row["low"] / PRICE_SCALE,
            "close": row["close"] / PRICE_SCALE,
            "vwap": round(row["vwap"] / PRICE_SCALE, 4),
        }
        for row in market.to_pylist()
        if row["trades"]  # a symbol quoted all day without a trade has no OHLC
    ]
    counts = {identifier.split(".", 1)[1]: n for identifier, n in rows.items()}
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
