"""Every asset, check, job, schedule and sensor of the batch platform, in one Definitions.

Resources are built from settings, so the same definitions run embedded
(SQLite, local lake, DuckDB) and on the stack (Kafka, MinIO, Trino).
"""

from __future__ import annotations

from dagster import Definitions, define_asset_job, load_assets_from_modules

from assets import clearing, landing, market, recon, reports
from orchestration.resources import PlatformResource

ALL_ASSETS = load_assets_from_modules([landing, market, clearing, recon, reports])

daily_job = define_asset_job("daily", selection="*")

defs = Definitions(
    assets=ALL_ASSETS,
    jobs=[daily_job],
    resources={"platform": PlatformResource()},
)
