"""The dbt marts: staged from the day's lake partitions, built and tested by dbt, published back.

dbt's models are assets keyed by their folder (``staging/stg_trades``,
``marts/fct_trades``), its sources are the lake's own assets
(``raw/trades``, ``core/clearing_members``), and its tests are asset checks.
A mart's asset key is the lake table it is published to, so Trino and
``marketlake query`` read ``marts.fct_trades`` as the UI shows it.
"""

import importlib.metadata
import json
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Failure,
    MetadataValue,
    Output,
)
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from packaging import version

from assets.platform.partitions import ONE_DAY_PER_RUN, TRADING_DAYS
from lake.raw_landing import SESSION_SOURCE
from lake.tables import TABLES
from lake.writer import day_session, publish
from assets.dbt.dbt_project import (
    DBT_DIR,
    DUCKDB_FILE,
    build_vars,
    ensure_manifest,
    lake_sources,
    read_mart,
    stage_day,
)
from assets.platform.resources import PlatformResource

MANIFEST_PATH = ensure_manifest()
MANIFEST: dict[str, Any] = json.loads(MANIFEST_PATH.read_text())

REFDATA = [
    AssetSpec(["refdata", "members"], group_name="refdata", kinds={"csv"},
              description="exchange members (streaming/refdata/members.csv or settings)"),
    AssetSpec(["refdata", "securities"], group_name="refdata", kinds={"csv"},
              description="listed securities (streaming/refdata/securities.csv or settings)"),
]  # fmt: skip


class LakeTranslator(DagsterDbtTranslator):
    """Sources keep the lake's keys; models are keyed by their layer, marts by their lake table."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "model":
            layer = dbt_resource_props["fqn"][1]
            return AssetKey([layer, dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "model":
            return "marts" if dbt_resource_props["fqn"][1] == "marts" else "dbt_staging"
        return super().get_group_name(dbt_resource_props)


@dbt_assets(
    manifest=MANIFEST,
    partitions_def=TRADING_DAYS,
    dagster_dbt_translator=LakeTranslator(),
    name="dbt_marts",
    backfill_policy=ONE_DAY_PER_RUN,
)
def dbt_marts(
    context: AssetExecutionContext, dbt: DbtCliResource, platform: PlatformResource
) -> Iterator[Any]:  # dbt's events: Output, AssetMaterialization, AssetCheckResult
    """Stage the day, ``dbt build`` it on DuckDB, publish every mart built to the lake."""
    day = date.fromisoformat(context.partition_key)
    catalog = platform.catalog()
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="marketlake-dbt-") as scratch:
        started = time.perf_counter()
        database = Path(scratch) / DUCKDB_FILE
        staged = stage_day(catalog, day, database, lake_sources(MANIFEST), platform.members(),
                           platform.securities())  # fmt: skip
        seconds["stage"] = time.perf_counter() - started
        context.log.info(f"staged {day} in {seconds['stage']:.2f} s: {staged}")
        started = time.perf_counter()
        invocation = dbt.cli(["build", "--vars", build_vars(day)], context=context,
                             target_path=Path(scratch), raise_on_error=False)  # fmt: skip
        events = list(invocation.stream())
        seconds["dbt_build"] = time.perf_counter() - started
        started = time.perf_counter()
        session = day_session(catalog, SESSION_SOURCE, day)
        for event in events:
            if isinstance(event, Output):
                key = context.asset_key_for_output(event.output_name)
                if key.path[0] == "marts":
                    pub = publish(catalog, TABLES[".".join(key.path)], day,
                                  read_mart(database, key.path[1]), session)  # fmt: skip
                    event = event.with_metadata({**event.metadata, "rows": pub.rows,
                        "lake_table": MetadataValue.text(pub.table),
                        "snapshot_id": MetadataValue.text(str(pub.snapshot_id))})  # fmt: skip
            yield event
        seconds["publish"] = time.perf_counter() - started
        context.log.info("dbt_marts: " + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()))
        if not invocation.is_successful():
            raise Failure(f"dbt build failed for {day}: {invocation.get_error()}")


class EnvironmentDbt(DbtCliResource):
    """dbt-core from this environment, whose version is known without asking it.

    dagster-dbt runs ``dbt --version`` once per resource instance, which is once
    per run here and costs about 2.5 s of a day's budget; the executable is the
    one installed next to this interpreter, so its version is the package's.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))


def dbt_resource() -> DbtCliResource:
    """dbt from this environment (not whatever ``dbt`` is first on PATH), on our project."""
    return EnvironmentDbt(project_dir=str(DBT_DIR), profiles_dir=str(DBT_DIR),
                          dbt_executable=str(Path(sys.executable).parent / "dbt"))  # fmt: skip
