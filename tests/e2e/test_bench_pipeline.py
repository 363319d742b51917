"""``marketlake bench pipeline`` as a user runs it: days end to end, timed per asset."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support import short_calendar

pytestmark = pytest.mark.e2e

DAILY_STEPS = {"simulated_session", "raw_tables", "core__market_daily"}
"""Step keys every daily run has (multi-assets are one step; more assets add more)."""


def test_bench_pipeline_times_every_asset_of_each_day(tmp_path):
    calendar = short_calendar(tmp_path, close="09:20")
    env = {**os.environ, "MARKETLAKE_CALENDAR_TOML": str(calendar)}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "bench", "pipeline", "--days", "2", "--json"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)

    assert result["benchmark"] == "pipeline"
    assert result["days"] == result["days_planned"] == 2 and result["success"]
    assert [d["day"] for d in result["per_day"]] == [result["first_day"], result["last_day"]]
    assert all(d["success"] and d["seconds"] > 0 for d in result["per_day"])
    per_asset = result["per_asset"]
    assert set(per_asset) >= DAILY_STEPS
    for step in per_asset.values():
        assert step["runs"] == 2 and step["total_s"] > 0
        assert step["mean_s"] == pytest.approx(step["total_s"] / 2)
    # steps run one after the other inside a day's run, which also has set-up and teardown
    assert sum(s["total_s"] for s in per_asset.values()) <= result["total_s"]
    assert result["total_s"] == pytest.approx(sum(d["seconds"] for d in result["per_day"]))
    assert 0 < result["day_mean_s"] <= result["day_max_s"] <= result["total_s"] <= result["wall_s"]
    assert result["target_day_s"] == 30
    assert result["target_met"] == (result["day_mean_s"] < 30)
