"""Landing: a day's session on the event log -> the raw lake tables.

``simulated_session`` fills a day that has no live data with the seeded
simulator, so a backfill builds history from nothing; a day whose log
already holds a session is left as it is. ``raw_tables`` reads each topic
bounded by the session's event time and replaces the day's partition of every
raw table, so landing a day again changes nothing.
"""

from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    asset,
    multi_asset,
)

from assets.partitions import TRADING_DAYS
from lake.landing import land_day
from lake.tables import TOPIC_TABLES
from orchestration.resources import PlatformResource
from streaming.services.day import PRE_OPEN_NS, DayConfig, run_day

RAW_TABLES = sorted(set(TOPIC_TABLES.values()))
HOUR_NS = 3_600 * 1_000_000_000


def raw_key(identifier: str) -> AssetKey:
    return AssetKey(identifier.split("."))


@asset(partitions_def=TRADING_DAYS, group_name="landing", kinds={"python"})
def simulated_session(
    context: AssetExecutionContext, platform: PlatformResource
) -> MaterializeResult:
    """The day's session on the event log: simulated (seeded) unless it already holds one."""
    day = date.fromisoformat(context.partition_key)
    log = platform.session_log(day)
    try:
        log.create_topics(["orders"])
        existing = sum(log.end_offsets("orders").values())
        if existing:
            return MaterializeResult(metadata={"orders": existing, "simulated": False})
        settings = platform.settings()
        cfg = DayConfig(
            day, platform.seed_for(day), platform.securities(), platform.members(),
            platform.calendar(), stp=settings.stp_mode, band_pct=settings.price_band_pct,
            grace_ns=settings.bar_grace_ms * 1_000_000,
        )  # fmt: skip
        result = run_day(log, cfg)
    finally:
        log.close()
    met = sum(1 for m in result.members.summary(cfg.obligation) if m["obligation_met"])
    return MaterializeResult(
        metadata={
            "orders": result.orders_sent,
            "simulated": True,
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
    partitions_def=TRADING_DAYS,
)  # fmt: skip
def raw_tables(context: AssetExecutionContext, platform: PlatformResource):  # type: ignore[no-untyped-def]
    """Every topic of the day's log -> its raw table (one partition replace each)."""
    day = date.fromisoformat(context.partition_key)
    open_ns, close_ns = platform.calendar().session_bounds(day)
    log = platform.session_log(day)
    try:
        published = land_day(log, platform.catalog(), day, open_ns - PRE_OPEN_NS - HOUR_NS,
                             close_ns + HOUR_NS)  # fmt: skip
    finally:
        log.close()
    for identifier, pub in published.items():
        yield MaterializeResult(
            asset_key=raw_key(identifier),
            metadata={"rows": pub.rows, "seconds": round(pub.seconds, 3),
                      "snapshot_id": str(pub.snapshot_id)},
        )  # fmt: skip
