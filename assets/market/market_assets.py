"""Market statistics per symbol and day, from the landed trades and book tops."""

from datetime import date

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.platform.partitions import ONE_DAY_PER_RUN, TRADING_DAYS
from assets.platform.resources import PlatformResource
from lake.batch.daily_market import daily_market
from lake.quality import vwap_outside_range
from lake.raw_landing import SESSION_SOURCE
from lake.row_filters import equal_to
from lake.tables import PARTITION_COLUMN, TABLES
from lake.writer import day_session, publish
from streaming.events import PRICE_SCALE


@asset(
    key=AssetKey(["core", "market_daily"]),
    deps=[AssetKey(["raw", "trades"]), AssetKey(["raw", "bbo"])],
    partitions_def=TRADING_DAYS,
    backfill_policy=ONE_DAY_PER_RUN,
    group_name="market",
    kinds={"iceberg", "duckdb"},
    check_specs=[
        AssetCheckSpec("vwap_within_range", asset=AssetKey(["core", "market_daily"]),
                       description="every traded symbol's VWAP lies within its low..high"),
    ],
)  # fmt: skip
def market_daily(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster accepts only the bare class here
    """OHLCV, VWAP and time-weighted spread per symbol for the day."""
    day = date.fromisoformat(context.partition_key)
    catalog = platform.catalog()
    day_filter = equal_to(PARTITION_COLUMN, day)
    trades = catalog.load_table("raw.trades").scan(row_filter=day_filter).to_arrow()
    bbo = (
        catalog.load_table("raw.bbo")
        .scan(row_filter=day_filter, selected_fields=("symbol", "ts", "bid_price", "ask_price"))
        .to_arrow()
    )
    _, close_ns = platform.calendar().session_bounds(day)
    table = daily_market(trades, bbo, close_ns)
    pub = publish(
        catalog, TABLES["core.market_daily"], day, table, day_session(catalog, SESSION_SOURCE, day)
    )
    preview = table.select(["symbol", "trades", "open", "close", "volume", "vwap"]).to_pylist()
    lines = ["| symbol | trades | open | close | volume | vwap |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['symbol']} | {r['trades']} | {r['open'] / PRICE_SCALE:.2f} | "
        f"{r['close'] / PRICE_SCALE:.2f} | {r['volume']} | {r['vwap'] / PRICE_SCALE:.4f} |"
        for r in preview if r["trades"]
    ]  # fmt: skip
    outside = vwap_outside_range(table)
    return MaterializeResult(
        check_results=[
            AssetCheckResult(
                check_name="vwap_within_range",
                passed=not outside,
                metadata={"violations": MetadataValue.json(outside)},
            )
        ],
        metadata={
            "rows": pub.rows,
            "traded_symbols": sum(1 for r in preview if r["trades"]),
            "preview": MetadataValue.md("\n".join(lines)),
        },
    )
