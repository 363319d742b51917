"""Recon: the day's breaks between matcher trades, member fills and clearing.

The breaks table is published for every day (empty when clean), and an asset
check fails when it has rows, so a break blocks nothing silently: it shows
red in the UI and in the EOD report.
"""

from collections.abc import Iterator
from datetime import date

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.platform.partitions import ONE_DAY_PER_RUN, TRADING_DAYS
from assets.platform.resources import PlatformResource
from lake.batch.reconciliation import REASONS, reconcile
from lake.raw_landing import SESSION_SOURCE
from lake.row_filters import equal_to
from lake.tables import PARTITION_COLUMN, TABLES
from lake.writer import day_session, publish

BREAKS = AssetKey(["core", "recon_breaks"])


@asset(
    key=BREAKS,
    deps=[AssetKey(["raw", "trades"]), AssetKey(["raw", "executions"]),
          AssetKey(["core", "clearing_positions"])],
    partitions_def=TRADING_DAYS,
    backfill_policy=ONE_DAY_PER_RUN,
    group_name="recon",
    kinds={"iceberg", "duckdb"},
    check_specs=[AssetCheckSpec("no_breaks", asset=BREAKS,
                                description="trades, fills and clearing agree")],
)  # fmt: skip
def recon_breaks(
    context: AssetExecutionContext, platform: PlatformResource
) -> Iterator[MaterializeResult[None] | AssetCheckResult]:
    """Per member, symbol and side: what disagrees between trades, fills and clearing."""
    day = date.fromisoformat(context.partition_key)
    catalog = platform.catalog()
    only = equal_to(PARTITION_COLUMN, day)
    trades = catalog.load_table("raw.trades").scan(row_filter=only).to_arrow()
    fills = (
        catalog.load_table("raw.executions")
        .scan(
            row_filter=only,
            selected_fields=("member", "symbol", "side", "exec_type", "last_qty", "last_price"),
        )
        .to_arrow()
    )
    clearing = (
        catalog.load_table("core.clearing_positions")
        .scan(row_filter=only, selected_fields=("member", "symbol", "bought", "sold"))
        .to_arrow()
    )
    breaks = reconcile(trades, fills, clearing)
    publish(
        catalog, TABLES["core.recon_breaks"], day, breaks, day_session(catalog, SESSION_SOURCE, day)
    )
    by_reason: dict[str, int] = {}
    for reason in breaks["reason"].to_pylist():
        by_reason[reason] = by_reason.get(reason, 0) + 1
    yield MaterializeResult(
        metadata={"breaks": breaks.num_rows, "trades": trades.num_rows,
                  "fills": fills.num_rows, "by_reason": MetadataValue.json(by_reason)},
    )  # fmt: skip
    yield AssetCheckResult(
        check_name="no_breaks",
        passed=breaks.num_rows == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"breaks": breaks.num_rows,
                  "reasons": MetadataValue.json({REASONS[r]: n for r, n in by_reason.items()})},
    )  # fmt: skip
