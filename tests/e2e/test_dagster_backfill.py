"""A backfill launched in Dagster (not by ``marketlake backfill``), run by the daemon.

``dagster job backfill`` queues one run per day, as the UI's partition backfill
does; the daemon that ``marketlake ui`` starts dequeues them. The instance we
write runs one at a time in queue order, so day two opens with day one's close.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from pyiceberg.expressions import EqualTo

from assets.platform.resources import PlatformResource
from orchestration.backfill import instance_for
from settings import Settings
from tests.support import short_calendar

pytestmark = pytest.mark.e2e

DAYS = ("2026-11-16", "2026-11-17")
DONE = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def test_a_job_backfill_runs_day_by_day_in_order(tmp_path, monkeypatch):
    calendar = short_calendar(tmp_path, close="09:20")
    env = {"MARKETLAKE_DATA_DIR": str(tmp_path / "data"), "MARKETLAKE_CALENDAR_TOML": str(calendar),
           "DAGSTER_HOME": str(tmp_path / "dagster")}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    instance_for(Settings())  # writes dagster.yaml as the CLI does
    bin_dir = Path(sys.executable).parent
    target = ["-m", "orchestration.definitions"]
    launched = subprocess.run(
        [str(bin_dir / "dagster"), "job", "backfill", *target, "-j", "daily",
         "--partitions", ",".join(DAYS), "--noprompt"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=300,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr[-3000:]
    instance = DagsterInstance.get()
    assert len(instance.get_runs()) == 2  # queued, not run: the daemon runs them
    daemon = subprocess.Popen([str(bin_dir / "dagster-daemon"), "run", *target],
                              env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if all(r.status in DONE for r in instance.get_runs()):
                break
            time.sleep(2)
    finally:
        daemon.terminate()
        daemon.wait(60)
    records = sorted(instance.get_run_records(), key=lambda r: r.start_time or 0)
    assert [r.dagster_run.tags["dagster/partition"] for r in records] == list(DAYS)
    assert all(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in records)
    first, second = records
    assert first.end_time is not None and second.start_time is not None
    assert first.end_time <= second.start_time  # one at a time

    catalog = PlatformResource(data_dir=env["MARKETLAKE_DATA_DIR"]).catalog()
    members = catalog.load_table("core.clearing_members")

    def day(d: str) -> dict[str, dict]:
        rows = members.scan(row_filter=EqualTo("trading_day", date.fromisoformat(d))).to_arrow()
        return {r["member"]: r for r in rows.to_pylist()}

    one, two = day(DAYS[0]), day(DAYS[1])
    assert one and {m: r["opening_cash"] for m, r in two.items()} == {
        m: r["closing_cash"] for m, r in one.items()
    }
