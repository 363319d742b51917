"""Platform health: Dagster's failed runs of each day, published to the lake.

The run-failure sensor publishes a failing run's day at once; this asset
publishes every day the daily job runs (empty when nothing failed), so the
table exists from the first landed day and a day is complete again after a
backfill even if the lake was unreachable when a run failed.
"""

from datetime import date

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, asset

from assets.health.run_failures import run_failure_rows
from assets.platform.partitions import ONE_DAY_PER_RUN, TRADING_DAYS
from assets.platform.resources import PlatformResource
from lake.tables import TABLES
from lake.writer import publish

RUN_FAILURES = AssetKey(["raw", "run_failures"])


@asset(
    key=RUN_FAILURES,
    partitions_def=TRADING_DAYS,
    backfill_policy=ONE_DAY_PER_RUN,
    group_name="health",
    kinds={"iceberg", "dagster"},
)
def run_failures(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster accepts only the bare class here
    """The day's failed Dagster runs (job, partition, failed steps, error) from run storage."""
    day = date.fromisoformat(context.partition_key)
    rows = run_failure_rows(context.instance, day, platform.calendar().tz)
    publish(platform.catalog(), TABLES["raw.run_failures"], day, rows)
    return MaterializeResult(
        metadata={"failed_runs": rows.num_rows, "jobs": sorted(set(rows["job"].to_pylist()))}
    )
