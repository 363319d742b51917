"""Every asset, check, job, schedule and sensor of the batch platform, in one Definitions.

Resources are built from settings, so the same definitions run embedded
(SQLite, local lake, DuckDB) and on the stack (Kafka, MinIO, Trino).
"""

from __future__ import annotations

from dagster import Definitions, load_assets_from_modules

from assets import clearing, landing, market, recon, reports
from orchestration.resources import PlatformResource
from orchestration.schedules import (
    daily_job,
    eod_settlement,
    intraday_landing,
    landing_job,
    record_run_failures,
    session_closed,
)

ALL_ASSETS = load_assets_from_modules([landing, market, clearing, recon, reports])

defs = Definitions(
    assets=ALL_ASSETS,
    jobs=[daily_job, landing_job],
    schedules=[eod_settlement, intraday_landing],
    sensors=[session_closed, record_run_failures],
    resources={"platform": PlatformResource()},
)
