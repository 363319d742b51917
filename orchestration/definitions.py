"""Every asset, check, job, schedule and sensor of the batch platform, in one Definitions.

Resources are built from settings, so the same definitions run embedded
(SQLite, local lake, DuckDB) and on the stack (Kafka, MinIO, Trino).
"""

from __future__ import annotations

import warnings

from dagster import (
    AssetsDefinition,
    AssetSpec,
    BetaWarning,
    Definitions,
    SourceAsset,
    in_process_executor,
    load_assets_from_modules,
)

# Our assets use two beta parameters on purpose (``backfill_policy``,
# ``allow_nonexistent_upstream_partitions``); Dagster warns at each use when the
# asset modules load, which would bury a user's output. Only that category is
# silenced, only while the definitions are built.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", BetaWarning)
    from assets.clearing import clearing_assets
    from assets.dbt import dbt_assets
    from assets.dbt.dbt_assets import REFDATA, dbt_resource
    from assets.health import health_assets
    from assets.intelligence import intelligence_assets
    from assets.landing import raw_assets
    from assets.market import market_assets
    from assets.platform.resources import PlatformResource
    from assets.recon import recon_assets
    from assets.reports import report_assets
    from orchestration.schedules import (
        daily_job,
        eod_settlement,
        intel_ingest_job,
        intel_new_fetches,
        intel_process_job,
        intraday_landing,
        landing_job,
        polling_sensors,
        record_run_failures,
        session_closed,
    )

ALL_ASSETS: list[AssetsDefinition | AssetSpec | SourceAsset] = [
    *(
        a
        for a in load_assets_from_modules(
            [
                raw_assets,
                market_assets,
                clearing_assets,
                recon_assets,
                dbt_assets,
                report_assets,
                health_assets,
                intelligence_assets,
            ]
        )
        if isinstance(a, AssetsDefinition | AssetSpec | SourceAsset)  # all of ours are
    ),
    *REFDATA,
]


def resources_for(platform: PlatformResource) -> dict[str, object]:
    """The resources every asset needs, around ``platform`` (tests and the backfill use it)."""
    return {"platform": platform, "dbt": dbt_resource()}


defs = Definitions(
    assets=ALL_ASSETS,
    jobs=[daily_job, landing_job, intel_ingest_job, intel_process_job],
    schedules=[eod_settlement, intraday_landing],
    sensors=[session_closed, *polling_sensors, intel_new_fetches, record_run_failures],
    resources=resources_for(PlatformResource()),
    # Every run executes its steps in the run's own process, one after another. Dagster's
    # default starts a process per step, and each imports these definitions (about 7 s
    # here): 13 steps a day cost more than the steps, which are I/O-bound or run dbt and
    # DuckDB (themselves multi-threaded) on a two-core machine. `marketlake backfill`
    # (materialize) always ran in process; the UI, schedules and the daemon now do too.
    executor=in_process_executor,
)
