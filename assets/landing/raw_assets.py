"""Landing: a day's session on the event log -> the raw lake tables.

``simulated_session`` fills a day that has no live data with the seeded
simulator, so a backfill builds history from nothing; a day whose log
already holds a whole session (its close consumed by every service) is left
as it is, and one that an interrupted run left truncated is simulated again
from its seed (``streaming.services.day.ensure_session``). ``raw_tables`` reads each topic
bounded by the session's event time and replaces the day's partition of every
raw table, so landing a day again changes nothing. Its check
``bars_continuous`` holds the landed bars to the landed trades, window by
window (``lake.quality.bar_continuity_violations``).
"""

from collections.abc import Iterator
from datetime import date

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
    asset,
    multi_asset,
)
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import And

from assets.platform.partitions import ONE_DAY_PER_RUN, TRADING_DAYS
from assets.platform.resources import PlatformResource
from lake.quality import bar_continuity_violations, bar_coverage, late_trades
from lake.raw_landing import land_day
from lake.row_filters import equal_to, starts_with
from lake.tables import PARTITION_COLUMN, TOPIC_TABLES
from streaming.services.day import PRE_OPEN_NS, ensure_session, session_fingerprint

RAW_TABLES = sorted(set(TOPIC_TABLES.values()))
HOUR_NS = 3_600 * 1_000_000_000
BARS = AssetKey(["raw", "bars"])
SHOWN_VIOLATIONS = 20


def raw_key(identifier: str) -> AssetKey:
    return AssetKey(identifier.split("."))


PREVIOUS_RECOMMENDATIONS = AssetDep(
    AssetKey(["intel", "recommendations"]),
    partition_mapping=TimeWindowPartitionMapping(
        start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
    ),
)
"""The previous day's recommendations are sent into this day's log before it is simulated,
so the members following them act on them (and a backfill runs the days in that order)."""


@asset(
    deps=[PREVIOUS_RECOMMENDATIONS],
    partitions_def=TRADING_DAYS,
    backfill_policy=ONE_DAY_PER_RUN,
    group_name="landing",
    kinds={"python"},
)
def simulated_session(
    context: AssetExecutionContext, platform: PlatformResource
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster accepts only the bare class here
    """The day's session on the event log: simulated (seeded) unless it already holds one."""
    day = date.fromisoformat(context.partition_key)
    log = platform.session_log(day)
    cfg = platform.day_config(day)
    try:
        state, result = ensure_session(log, cfg)
        if result is None:
            existing = sum(log.end_offsets("orders").values())
            return MaterializeResult(metadata={"orders": existing, "simulated": False})
    finally:
        log.close()
    if state == "truncated":
        context.log.warning(f"{day}: the log held an interrupted session; simulated it again")
    met = sum(1 for m in result.members.summary(cfg.obligation) if m["obligation_met"])
    return MaterializeResult(
        metadata={
            "orders": result.orders_sent,
            "simulated": True,
            "replaced_truncated_log": state == "truncated",
            "seed": cfg.seed,
            "members_meeting_obligation": met,
        }
    )


@multi_asset(
    specs=[
        AssetSpec(raw_key(t), deps=[simulated_session], group_name="landing", kinds={"iceberg"},
                  description=f"the day's {t.split('.')[1]}, landed from the event log")
        for t in RAW_TABLES
    ],
    check_specs=[
        AssetCheckSpec("bars_continuous", asset=BARS,
                       description="per symbol and interval, a bar for exactly the session's "
                                   "windows with trades, each with those trades' OHLC and volume"),
    ],
    partitions_def=TRADING_DAYS,
    backfill_policy=ONE_DAY_PER_RUN,
)  # fmt: skip
def raw_tables(
    context: AssetExecutionContext, platform: PlatformResource
) -> Iterator[MaterializeResult[None] | AssetCheckResult]:
    """Every topic of the day's log -> its raw table (one partition replace each)."""
    day = date.fromisoformat(context.partition_key)
    open_ns, close_ns = platform.calendar().session_bounds(day)
    log = platform.session_log(day)
    try:
        session = session_fingerprint(log)
        published = land_day(log, platform.catalog(), day, open_ns - PRE_OPEN_NS - HOUR_NS,
                             close_ns + HOUR_NS, session=session)  # fmt: skip
    finally:
        log.close()
    for identifier, pub in published.items():
        yield MaterializeResult(
            asset_key=raw_key(identifier),
            metadata={"rows": pub.rows, "seconds": round(pub.seconds, 3),
                      "snapshot_id": str(pub.snapshot_id), "session": session},
        )  # fmt: skip
    symbols = [s.symbol for s in platform.securities()]
    yield bars_continuous(platform.catalog(), day, open_ns, close_ns, symbols)


def bars_continuous(
    catalog: Catalog, day: date, open_ns: int, close_ns: int, symbols: list[str]
) -> AssetCheckResult:
    """The day's landed bars against its landed trades, read back as any consumer reads them.

    Read from the lake rather than from the landed events, so the check also
    covers what the partition replace wrote. Late trades are taken from the
    dead letters (see ``bar_continuity_violations``).
    """
    on_day = equal_to(PARTITION_COLUMN, day)
    trades = (
        catalog.load_table("raw.trades")
        .scan(row_filter=on_day, selected_fields=("symbol", "ts", "trade_id", "price", "qty"))
        .to_arrow()
    )
    bars = catalog.load_table("raw.bars").scan(
        row_filter=on_day,
        selected_fields=("symbol", "interval", "start", "end", "open", "high", "low", "close",
                         "volume"),
    ).to_arrow()  # fmt: skip
    dlq = (
        catalog.load_table("raw.dlq")
        .scan(
            row_filter=And(on_day, starts_with("reason", "late_trade")),
            selected_fields=("reason", "payload"),
        )
        .to_arrow()
    )
    late = late_trades(dlq)
    violations = bar_continuity_violations(trades, bars, open_ns, close_ns, late)
    missing = sum(1 for v in violations if v["kind"] == "missing")
    coverage = bar_coverage(bars, open_ns, close_ns, symbols)
    return AssetCheckResult(
        asset_key=BARS,
        check_name="bars_continuous",
        passed=not violations,
        metadata={
            "violations": MetadataValue.json(violations[:SHOWN_VIOLATIONS]),
            "violation_count": len(violations),
            "windows_checked": bars.num_rows + missing,  # every bar, and windows lacking one
            "late_trades_excluded": len(late),
            **{f"coverage_{name}": round(share, 4) for name, share in coverage.items()},
        },
    )
