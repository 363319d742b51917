"""The stack's Superset with the dashboards deployed on landed days: what the dashboard tests share."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

from settings import Settings

DAYS = (date(2026, 11, 24), date(2026, 11, 25))  # days no other module of the session lands
SEEDS = (11, 12)  # different sessions, so the days' figures differ
FAILED_RUN_ERROR = "the news provider answered 503 three times"

_FAIL_A_RUN = """
import sys
from dagster import DailyPartitionsDefinition, asset, materialize
from orchestration.backfill import instance_for
from settings import get_settings

@asset(partitions_def=DailyPartitionsDefinition(start_date="2026-11-01"))
def fetch_news() -> None:
    raise RuntimeError(sys.argv[2])

result = materialize([fetch_news], partition_key=sys.argv[1], raise_on_error=False,
                     instance=instance_for(get_settings()))
assert not result.success
print(result.run_id)
"""


def fail_a_run(env: dict[str, str], day: date) -> str:
    """A real failed Dagster run computing ``day``, in the instance ``env`` names: its run id."""
    proc = subprocess.run(
        [sys.executable, "-c", _FAIL_A_RUN, day.isoformat(), FAILED_RUN_ERROR],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.split()[-1]


def stack_settings(env: dict[str, str]) -> Settings:
    """The settings ``env`` (MARKETLAKE_* of the session's stack) gives a process."""
    fields = {name: env[f"MARKETLAKE_{name.upper()}"] for name in (
        "stack_dir", "data_dir", "postgres_dir", "postgres_port", "minio_port", "minio_console_port",
        "trino_port", "superset_port", "lake_catalog", "lake_bucket",
    )}  # fmt: skip
    return Settings(_env_file=None, **fields)


def dashboards_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``marketlake dashboards ARGS`` as a user runs it, pointed at the session's stack."""
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "dashboards", *args],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
