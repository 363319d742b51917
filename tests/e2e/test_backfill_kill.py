"""Kill ``marketlake backfill`` while a day runs, at random points, then run it again:
the day's raw, core and marts tables all carry the one session of its (whole) log."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import date

import pytest

from assets.platform.resources import PlatformResource
from assets.reports.report_assets import SESSION_TABLES, one_session
from lake.writer import day_session
from streaming.services.day import session_fingerprint, session_state
from tests.support import short_calendar

pytestmark = pytest.mark.e2e

DAY = date(2026, 11, 20)


def test_a_day_killed_mid_run_is_one_session_after_the_rerun(tmp_path, monkeypatch):
    calendar = short_calendar(tmp_path, close="09:20")
    data = tmp_path / "data"
    env = {**os.environ, "MARKETLAKE_DATA_DIR": str(data),
           "MARKETLAKE_CALENDAR_TOML": str(calendar), "DAGSTER_HOME": str(tmp_path / "dagster")}  # fmt: skip
    cmd = [sys.executable, "-m", "orchestration.cli", "backfill", "--from", DAY.isoformat(),
           "--to", DAY.isoformat()]  # fmt: skip
    rng = random.Random(3)
    for _ in range(3):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(4.0, 20.0))  # imports take ~4 s; a day takes ~25 s
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    monkeypatch.setenv("MARKETLAKE_CALENDAR_TOML", str(calendar))
    platform = PlatformResource(data_dir=str(data))
    log = platform.session_log(DAY)
    try:
        assert session_state(log) == "complete"
        fingerprint = session_fingerprint(log)
    finally:
        log.close()
    catalog = platform.catalog()
    assert {t: day_session(catalog, t, DAY) for t in SESSION_TABLES} == dict.fromkeys(
        SESSION_TABLES, fingerprint
    )
    assert one_session(catalog, DAY).passed
