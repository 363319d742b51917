"""Backfill trading days from the command line, recorded in the Dagster instance.

Each day is one run of every asset for that partition, executed in this
process against the instance in ``DAGSTER_HOME`` (SQLite under the data
directory by default), so the runs show in the UI exactly as if launched
there. Assets replace their partition, so backfilling a range again changes
nothing in the lake.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, IntSource, StringSource, materialize
from dagster._config.config_schema import UserConfigSchema
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import get_conn_string

from settings import Settings

# what earlier versions wrote: the whole URL, password included, in the file and so in
# every code server's --instance-ref argument
LITERAL_URL = re.compile(
    r'^( *)postgres:\n\1  postgres_url: "?postgresql\+psycopg2://[^\n]*\n', re.MULTILINE
)


@dataclass
class DayRun:
    day: str
    run_id: str
    success: bool
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)


def instance_for(settings: Settings) -> DagsterInstance:
    """The Dagster instance of ``DAGSTER_HOME``, defaulting to ``<data dir>/dagster``.

    A missing ``dagster.yaml`` is written from settings: SQLite storage in the
    home embedded, the stack's PostgreSQL (database ``dagster``) in the stack.
    The PostgreSQL password is in neither that file nor any command line: the
    file names the service's 0600 password file, which
    :class:`PostgresPasswordFileStorage` reads when an instance loads.
    """
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(settings.data_dir / "dagster")))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(_instance_yaml(settings, home))
        config.chmod(0o600)
    elif settings.mode == "stack":
        _drop_literal_password(config, settings)
    return DagsterInstance.get()


class PostgresPasswordFileStorage(DagsterPostgresStorage):
    """dagster-postgres storage whose password is read from a file when the instance loads.

    Every Dagster process hands the instance (its ``dagster.yaml`` storage
    section) to the code servers it starts on their command line
    (``--instance-ref``), where ``ps`` shows it to every user: so that section
    holds the path of the PostgreSQL password file (mode 0600), never the
    password. Any process loads the instance from the file alone, ``dagster``
    commands run by hand included; no environment variable to pass around.
    """

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {
            "username": StringSource,
            "password_file": StringSource,
            "hostname": StringSource,
            "port": IntSource,
            "db_name": StringSource,
        }

    @classmethod
    def from_config_value(  # type: ignore[override]  # Dagster's base types config_value loosely
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> PostgresPasswordFileStorage:
        password = Path(config_value["password_file"]).read_text().strip()
        # the driver named: SQLAlchemy 2.1 defaults postgresql:// to psycopg 3, on which
        # dagster-postgres's parameterised NOTIFY is a syntax error
        url = get_conn_string(
            username=config_value["username"], password=password,
            hostname=config_value["hostname"], port=str(config_value["port"]),
            db_name=config_value["db_name"], scheme="postgresql+psycopg2",
        )  # fmt: skip
        return cls(postgres_url=url, inst_data=inst_data)


def _instance_yaml(settings: Settings, home: Path) -> str:
    # a self-hosted platform sends nothing home; one run at a time, in the order queued,
    # so the days of a job backfill settle in order (a day opens with the previous close)
    telemetry = "telemetry:\n  enabled: false\nrun_queue:\n  max_concurrent_runs: 1\n"
    if settings.mode != "stack":
        return f"storage:\n  sqlite:\n    base_dir: {home / 'storage'}\n{telemetry}"
    return f"storage:\n{_postgres_storage(settings, '  ')}{telemetry}"


def _postgres_storage(settings: Settings, indent: str) -> str:
    """The storage entry for the stack's PostgreSQL: the password file's path, not its content."""
    from assets.platform.stack import postgres

    pg = postgres(settings)
    pg.ensure_database("dagster")
    lines = [
        "# the stack's PostgreSQL (dagster-postgres); the password stays in its 0600 file",
        "custom:",
        f"  module: {PostgresPasswordFileStorage.__module__}",
        f"  class: {PostgresPasswordFileStorage.__name__}",
        "  config:",
        f"    username: {json.dumps(pg.user)}",
        f"    password_file: {json.dumps(str(pg.password_file.resolve()))}",
        f"    hostname: {json.dumps(pg.host)}",
        f"    port: {pg.port}",
        "    db_name: dagster",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


def _drop_literal_password(config: Path, settings: Settings) -> None:
    """Replace the ``postgres_url`` (password inside) that earlier versions wrote."""
    text = config.read_text()
    found = LITERAL_URL.search(text)
    if found is None:
        return
    config.write_text(text.replace(found.group(0), _postgres_storage(settings, found.group(1))))
    config.chmod(0o600)


def days_between(first: date, last: date) -> list[str]:
    """The trading-day partition keys from ``first`` to ``last`` inclusive."""
    from assets.platform.partitions import TRADING_DAYS

    keys = TRADING_DAYS.get_partition_keys()
    return [k for k in keys if first.isoformat() <= k <= last.isoformat()]


def backfill(
    settings: Settings,
    first: date,
    last: date,
    on_day: Callable[[DayRun], None] | None = None,
    log_level: str = "WARNING",
    now: str | None = None,
    overrides: dict[str, Any] | None = None,
    ops: dict[str, Any] | None = None,
) -> list[DayRun]:
    """Materialise every asset for each trading day in ``[first, last]``; stops at a failure.

    What the steps print (dbt's log lines) is appended to ``<data dir>/logs/backfill.log``;
    the runs themselves, with their events and check results, are in the instance.
    ``now`` (ISO 8601) sets the platform's clock, ``overrides`` are settings
    that take precedence over the environment, ``ops`` is per-op run config
    (``{"intel_fetches": {"config": {...}}}``)."""
    from assets.platform.resources import PlatformResource
    from orchestration.definitions import ALL_ASSETS, resources_for

    instance = instance_for(settings)
    platform = PlatformResource(
        data_dir=str(settings.data_dir), now=now,
        overrides=json.dumps(overrides) if overrides else None,
    )  # fmt: skip
    resources = resources_for(platform)
    runs: list[DayRun] = []
    log_path = settings.data_dir / "logs" / "backfill.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for key in days_between(first, last):
        started = time.perf_counter()
        # what steps print (dbt's progress lines) goes to the log, not over the caller's output
        with log_path.open("a") as log, contextlib.redirect_stdout(log):
            result = materialize(
                ALL_ASSETS, partition_key=key, instance=instance,
                resources=resources,
                tags={"marketlake/backfill": f"{first}..{last}"}, raise_on_error=False,
                run_config={
                    "loggers": {"console": {"config": {"log_level": log_level}}},
                    **({"ops": ops} if ops else {}),
                },
            )  # fmt: skip
        steps = {
            ev.step_key: ev.event_specific_data.duration_ms / 1000  # type: ignore[union-attr]  # a STEP_SUCCESS has it
            for ev in result.all_events
            if ev.event_type_value == "STEP_SUCCESS" and ev.step_key
        }
        run = DayRun(key, result.run_id, result.success, time.perf_counter() - started, steps)
        runs.append(run)
        if on_day is not None:
            on_day(run)
        if not result.success:
            break
    return runs
