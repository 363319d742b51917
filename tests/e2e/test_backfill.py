"""``marketlake backfill`` as a user runs it: days from nothing across a weekend, recorded in Dagster,
every asset and check of every day, and a second backfill that changes nothing in the lake."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from dagster import DagsterEventType, DagsterInstance, RunsFilter

from assets.platform.resources import PlatformResource
from orchestration.definitions import defs
from tests.support import short_calendar

pytestmark = pytest.mark.e2e


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=600,
    )  # fmt: skip


def _lake(platform: PlatformResource) -> dict[str, list[str]]:
    """Every table of the lake, its rows in a canonical order."""
    catalog = platform.catalog()
    return {
        ".".join(ident): sorted(map(str, catalog.load_table(ident).scan().to_arrow().to_pylist()))
        for (namespace,) in catalog.list_namespaces()
        for ident in catalog.list_tables(namespace)
    }


DAYS = ["2026-11-13", "2026-11-16"]
RANGE = ("--from", "2026-11-13", "--to", "2026-11-16")  # Friday to Monday


def test_backfill_builds_days_from_nothing_and_again_changes_nothing(tmp_path, monkeypatch):
    calendar = short_calendar(tmp_path, close="09:20")
    data = tmp_path / "data"
    env = {"MARKETLAKE_DATA_DIR": str(data), "MARKETLAKE_CALENDAR_TOML": str(calendar),
           "DAGSTER_HOME": str(tmp_path / "dagster")}  # fmt: skip
    # Friday to Monday (past days: partitions end today): the weekend is no partition
    proc = _run(env, "backfill", *RANGE, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(proc.stdout)
    assert [r["day"] for r in runs] == DAYS
    assert all(r["success"] for r in runs)
    assert {"simulated_session", "raw_tables", "core__market_daily", "clearing",
            "core__recon_breaks", "dbt_marts", "marts__settlement_report"} <= set(runs[0]["steps"])  # fmt: skip

    monkeypatch.setenv("MARKETLAKE_CALENDAR_TOML", str(calendar))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    instance = DagsterInstance.get()
    # every asset has every day materialised, and every check passed
    asset_keys = {k for k in defs.get_repository_def().asset_graph.materializable_asset_keys}
    assert len(asset_keys) > 20
    for key in asset_keys:
        assert set(DAYS) <= instance.get_materialized_partitions(key), key.to_user_string()
    for run in runs:
        evaluations = [
            e.dagster_event.event_specific_data
            for e in instance.all_logs(run["run_id"], of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
        ]  # fmt: skip
        assert len(evaluations) > 50
        assert [e.check_name for e in evaluations if not e.passed] == []
    for day in DAYS:
        assert (data / "reports" / f"settlement-{day}.html").is_file()

    platform = PlatformResource(data_dir=str(data))
    lake = _lake(platform)
    days = {r["trading_day"].isoformat() for r in platform.catalog().load_table("raw.trades").scan(
        selected_fields=("trading_day",)).to_arrow().to_pylist()}  # fmt: skip
    assert days == set(DAYS)
    assert lake["core.recon_breaks"] == []  # every day reconciles
    assert len(lake["marts.settlement_report"]) == len(DAYS) * 10
    assert len(lake["marts.fct_member_daily_pnl"]) == len(DAYS) * 10

    again = _run(env, "backfill", *RANGE, "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _lake(platform) == lake  # every table, every row

    recorded = instance.get_runs(RunsFilter(tags={"marketlake/backfill": "2026-11-13..2026-11-16"}))
    assert len(recorded) == 2 * len(DAYS) and all(r.is_success for r in recorded)

    empty = _run(env, "backfill", "--from", "2026-11-14", "--to", "2026-11-15")
    assert empty.returncode == 2 and "no trading days" in empty.stderr
