"""Clearing: each member's day settled from its fills, opening with the previous close.

The opening state is the latest clearing state before the day in the lake
(a member's first day opens with its capital), so a backfill that starts
anywhere builds history forward. Positions are carried at their cost rounded
to money units (1/10,000 of the currency) from one day to the next.
"""

from collections.abc import Iterator
from datetime import date
from fractions import Fraction

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    multi_asset,
)
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import And

from assets.platform.partitions import ONE_DAY_PER_RUN, TRADING_DAYS
from assets.platform.resources import PlatformResource
from lake.batch.settlement import FeeSchedule, Fill, Holding, MemberState, settle_day
from lake.quality import negative_positions, settlement_differences
from lake.raw_landing import SESSION_SOURCE
from lake.row_filters import equal_to, less_than
from lake.tables import PARTITION_COLUMN, TABLES
from lake.writer import day_session, publish
from streaming.events import PRICE_SCALE

POSITIONS, MEMBERS = "core.clearing_positions", "core.clearing_members"
PREVIOUS_CLOSE = AssetDep(
    AssetKey(["core", "clearing_members"]),
    partition_mapping=TimeWindowPartitionMapping(
        start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
    ),
)
"""A day opens with the previous trading day's close: backfills settle days in order.

On the members asset only: positions are written by the same step, and a multi-asset
may not have one output depend on another that it yields later."""


def _key(identifier: str) -> AssetKey:
    return AssetKey(identifier.split("."))


def opening_state(
    catalog: Catalog, day: date, capital: dict[str, int]
) -> tuple[dict[str, MemberState], date | None]:
    """The latest closing state before ``day`` (and its date), or capital for all."""
    if not catalog.table_exists(MEMBERS):
        return {m: MemberState(Fraction(c)) for m, c in capital.items()}, None
    members = (
        catalog.load_table(MEMBERS)
        .scan(
            row_filter=less_than(PARTITION_COLUMN, day),
            selected_fields=("member", "closing_cash", PARTITION_COLUMN),
        )
        .to_arrow()
    )
    if members.num_rows == 0:
        return {m: MemberState(Fraction(c)) for m, c in capital.items()}, None
    previous = max(members[PARTITION_COLUMN].to_pylist())
    cash = {r["member"]: r["closing_cash"] for r in members.to_pylist()
            if r[PARTITION_COLUMN] == previous}  # fmt: skip
    positions = (
        catalog.load_table(POSITIONS)
        .scan(
            row_filter=equal_to(PARTITION_COLUMN, previous),
            selected_fields=("member", "symbol", "closing_qty", "closing_cost"),
        )
        .to_arrow()
        .to_pylist()
    )
    holdings: dict[str, dict[str, Holding]] = {m: {} for m in capital}
    for r in positions:
        if r["closing_qty"]:
            holdings.setdefault(r["member"], {})[r["symbol"]] = Holding(
                r["closing_qty"], Fraction(r["closing_cost"])
            )
    state = {
        m: MemberState(Fraction(cash.get(m, c)), holdings.get(m, {})) for m, c in capital.items()
    }
    return state, previous


@multi_asset(
    specs=[
        AssetSpec(_key(POSITIONS), group_name="clearing", kinds={"iceberg"},
                  deps=[AssetKey(["raw", "executions"]), AssetKey(["core", "market_daily"])],
                  description=TABLES[POSITIONS].description),
        AssetSpec(_key(MEMBERS), group_name="clearing", kinds={"iceberg"},
                  deps=[AssetKey(["raw", "executions"]), AssetKey(["core", "market_daily"]),
                        PREVIOUS_CLOSE],
                  description=TABLES[MEMBERS].description),
    ],
    check_specs=[
        AssetCheckSpec("no_negative_position", asset=_key(POSITIONS),
                       description="no member closes short unless short selling is enabled"),
        AssetCheckSpec("settlement_equals_trades", asset=_key(MEMBERS),
                       description="settled buy and sell notionals equal the day's trades"),
    ],
    partitions_def=TRADING_DAYS,
    backfill_policy=ONE_DAY_PER_RUN,
)  # fmt: skip
def clearing(
    context: AssetExecutionContext, platform: PlatformResource
) -> Iterator[MaterializeResult[None] | AssetCheckResult]:
    """Per member and symbol positions and P&L, per member cash and obligation."""
    day = date.fromisoformat(context.partition_key)
    settings = platform.settings()
    catalog = platform.catalog()
    capital = {m.member_id: m.capital for m in platform.members() if m.kind == "clearing"}
    opening, previous = opening_state(catalog, day, capital)
    executions = (
        catalog.load_table("raw.executions")
        .scan(
            row_filter=And(equal_to(PARTITION_COLUMN, day), equal_to("exec_type", "trade")),
            selected_fields=(
                "member",
                "symbol",
                "side",
                "last_qty",
                "last_price",
                "ts",
                "trade_id",
            ),
        )
        .to_arrow()
        .to_pylist()
    )
    fills = [
        Fill(r["member"], r["symbol"], r["side"], r["last_qty"], r["last_price"], r["ts"],
             r["trade_id"])
        for r in executions if r["member"] in capital
    ]  # fmt: skip
    market = (
        catalog.load_table("core.market_daily")
        .scan(row_filter=equal_to(PARTITION_COLUMN, day), selected_fields=("symbol", "close"))
        .to_arrow()
        .to_pylist()
    )
    closes = {r["symbol"]: r["close"] for r in market if r["close"] is not None}
    fees = FeeSchedule(
        Fraction(settings.clearing_fee_bps).limit_denominator(10_000),
        round(settings.clearing_fee_per_fill * PRICE_SCALE),
    )
    positions, members, closing = settle_day(
        opening, fills, closes, fees, allow_short=settings.allow_short
    )
    cost = {(m, s): round(h.cost) for m, st in closing.items() for s, h in st.holdings.items()}
    pos_table = pa.Table.from_pylist(
        [{**p.__dict__, "closing_cost": cost.get((p.member, p.symbol), 0)} for p in positions],
        schema=TABLES[POSITIONS].schema,
    )
    mem_table = pa.Table.from_pylist([m.__dict__ for m in members], schema=TABLES[MEMBERS].schema)
    session = day_session(catalog, SESSION_SOURCE, day)
    pub_p = publish(catalog, TABLES[POSITIONS], day, pos_table, session)
    pub_m = publish(catalog, TABLES[MEMBERS], day, mem_table, session)
    lines = ["| member | net worth | realized | unrealized | fees | obligation |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    lines += [
        f"| {m.member} | {m.net_worth / PRICE_SCALE:,.2f} | {m.realized_pnl / PRICE_SCALE:,.2f} | "
        f"{m.unrealized_pnl / PRICE_SCALE:,.2f} | {m.fees / PRICE_SCALE:,.2f} | "
        f"{'met' if m.obligation_met else 'FAILED'} |"
        for m in members
    ]
    opened = previous.isoformat() if previous else "capital"
    trades = (
        catalog.load_table("raw.trades")
        .scan(
            row_filter=equal_to(PARTITION_COLUMN, day),
            selected_fields=("price", "qty", "buy_member", "sell_member"),
        )
        .to_arrow()
    )
    shorts = [] if settings.allow_short else negative_positions(pos_table)
    differences = settlement_differences(mem_table, trades, set(capital))
    yield MaterializeResult(
        asset_key=_key(POSITIONS),
        metadata={"rows": pub_p.rows, "fills": len(fills), "opened_from": opened},
    )
    yield MaterializeResult(
        asset_key=_key(MEMBERS),
        metadata={
            "rows": pub_m.rows,
            "obligations_met": sum(m.obligation_met for m in members),
            "opened_from": opened,
            "members": MetadataValue.md("\n".join(lines)),
        },
    )
    yield AssetCheckResult(
        asset_key=_key(POSITIONS), check_name="no_negative_position", passed=not shorts,
        metadata={"short": MetadataValue.json(shorts)},
    )  # fmt: skip
    yield AssetCheckResult(
        asset_key=_key(MEMBERS), check_name="settlement_equals_trades", passed=not differences,
        metadata={"differences": MetadataValue.json(differences)},
    )  # fmt: skip
