"""The EOD settlement report: a lake table and an HTML page with plots, per day."""

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
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
from pyiceberg.catalog import Catalog

from assets.platform.partitions import ONE_DAY_PER_RUN, TRADING_DAYS
from assets.platform.resources import PlatformResource
from dashboards.eod_report import pnl_markdown
from dashboards.eod_report import settlement_report as build_report
from lake.quality import day_sessions, session_disagreements
from lake.raw_landing import SESSION_SOURCE
from lake.row_filters import equal_to
from lake.tables import PARTITION_COLUMN, TABLES, TOPIC_TABLES
from lake.writer import day_session, publish


@asset(
    key=AssetKey(["marts", "settlement_report"]),
    deps=[AssetKey(["core", "clearing_members"]), AssetKey(["core", "clearing_positions"]),
          AssetKey(["core", "recon_breaks"]), AssetKey(["raw", "bars"]),
          AssetKey(["marts", "fct_member_daily_pnl"])],
    partitions_def=TRADING_DAYS,
    backfill_policy=ONE_DAY_PER_RUN,
    group_name="reports",
    kinds={"iceberg", "html"},
    check_specs=[AssetCheckSpec("one_session", asset=AssetKey(["marts", "settlement_report"]),
                                description="every raw, core and marts table of the day records "
                                            "the same session as raw.orders (none mixes two runs)")],
)  # fmt: skip
def settlement_report(
    context: AssetExecutionContext, platform: PlatformResource
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster accepts only the bare class here
    """Per member: cash, P&L, fees, obligation, positions and breaks; the HTML page with plots."""
    day = date.fromisoformat(context.partition_key)
    catalog = platform.catalog()
    only = equal_to(PARTITION_COLUMN, day)

    def read(identifier: str, *fields: str) -> pa.Table:
        scan = catalog.load_table(identifier).scan(
            row_filter=only, selected_fields=fields or ("*",)
        )
        return scan.to_arrow()

    trades = read("raw.trades", "price", "qty")
    notional = pc.sum(pc.multiply(trades["price"], trades["qty"])).as_py() or 0
    members = read("core.clearing_members")
    table, html = build_report(
        day, platform.calendar().exchange, members,
        read("core.clearing_positions"), read("core.recon_breaks"),
        read("raw.bars", "symbol", "interval", "start", "close"), trades.num_rows, notional,
        read("marts.fct_member_daily_pnl", "member", "net_worth_change", "day_return"),
    )  # fmt: skip
    pub = publish(
        catalog,
        TABLES["marts.settlement_report"],
        day,
        table,
        day_session(catalog, SESSION_SOURCE, day),
    )
    path = platform.settings().data_dir / "reports" / f"settlement-{day.isoformat()}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html)
    failed = [r["member"] for r in table.to_pylist() if not r["obligation_met"]]
    return MaterializeResult(
        check_results=[one_session(catalog, day)],
        metadata={
            "rows": pub.rows,
            "report": MetadataValue.path(str(path)),
            "obligations_failed": MetadataValue.json(failed),
            "breaks": sum(table["breaks"].to_pylist()),
            "pnl_plot": MetadataValue.md(pnl_markdown(members)),
        },
    )


SESSION_TABLES = sorted(
    set(TOPIC_TABLES.values()) | {i for i, t in TABLES.items() if t.namespace in ("core", "marts")}
)
"""Every table computed from the day's session (intelligence tables are not)."""


def one_session(catalog: Catalog, day: date) -> AssetCheckResult:
    """Do all the day's tables come from one session? A rerun of the day heals a failure."""
    sessions = day_sessions(catalog, day, SESSION_TABLES)
    wrong = session_disagreements(sessions, SESSION_SOURCE)
    return AssetCheckResult(
        asset_key=AssetKey(["marts", "settlement_report"]),
        check_name="one_session",
        passed=not wrong,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "session": MetadataValue.text(sessions.get(SESSION_SOURCE) or "none"),
            "tables_checked": len(sessions),
            "disagreeing": MetadataValue.json(wrong),
        },
    )
