"""``marketlake backfill`` as a user runs it: days from nothing, recorded in Dagster, idempotent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

import pytest
from dagster import DagsterInstance, RunsFilter

from orchestration.resources import PlatformResource
from tests.support import short_calendar

pytestmark = pytest.mark.e2e


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=600,
    )  # fmt: skip


def _trades(platform: PlatformResource) -> list[str]:
    rows = platform.catalog().load_table("raw.trades").scan().to_arrow().to_pylist()
    return sorted(map(str, rows))


def test_backfill_builds_days_from_nothing_and_again_changes_nothing(tmp_path, monkeypatch):
    calendar = short_calendar(tmp_path, close="09:20")
    data = tmp_path / "data"
    env = {"MARKETLAKE_DATA_DIR": str(data), "MARKETLAKE_CALENDAR_TOML": str(calendar),
           "DAGSTER_HOME": str(tmp_path / "dagster")}  # fmt: skip
    # Friday to Tuesday (past days: partitions end today): the weekend in between is no partition
    proc = _run(env, "backfill", "--from", "2026-11-13", "--to", "2026-11-17", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(proc.stdout)
    assert [r["day"] for r in runs] == ["2026-11-13", "2026-11-16", "2026-11-17"]
    assert all(r["success"] for r in runs)
    assert {"simulated_session", "raw_tables", "core__market_daily"} <= set(runs[0]["steps"])

    monkeypatch.setenv("MARKETLAKE_CALENDAR_TOML", str(calendar))
    platform = PlatformResource(data_dir=str(data))
    days = {r["trading_day"] for r in platform.catalog().load_table("raw.trades").scan(
        selected_fields=("trading_day",)).to_arrow().to_pylist()}  # fmt: skip
    assert days == {date(2026, 11, 13), date(2026, 11, 16), date(2026, 11, 17)}
    before = _trades(platform)

    again = _run(env, "backfill", "--from", "2026-11-13", "--to", "2026-11-17", "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _trades(platform) == before

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    instance = DagsterInstance.get()
    recorded = instance.get_runs(RunsFilter(tags={"marketlake/backfill": "2026-11-13..2026-11-17"}))
    assert len(recorded) == 6 and all(r.is_success for r in recorded)

    empty = _run(env, "backfill", "--from", "2026-11-14", "--to", "2026-11-15")
    assert empty.returncode == 2 and "no trading days" in empty.stderr
