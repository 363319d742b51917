"""Real services for integration tests, started through deploy/ on free ports."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from assets.platform import stack
from assets.platform.stack import LakeTrino
from deploy.kafka.kafka_service import KafkaService, java_for_kafka
from deploy.minio.minio_service import MinioService
from deploy.postgres.postgres_service import PostgresService
from deploy.superset.superset_service import SupersetService
from deploy.trino.trino_service import TrinoService, java_for_trino
from lake.catalog import LakeConfig, open_catalog
from lake.query import DuckDBEngine, TrinoEngine
from orchestration.bench.dashboards_bench import land_days, landing_env
from settings import Settings
from streaming.refdata import load_calendar
from tests.support import free_port, short_calendar
from tests.support.dashboards import DAYS, SEEDS, dashboards_cli, fail_a_run, stack_settings


@pytest.fixture(scope="session")
def kafka(tmp_path_factory) -> Iterator[KafkaService]:
    """One Kafka node for the whole test session (installed once into the shared cache)."""
    svc = KafkaService(
        home=tmp_path_factory.mktemp("kafka"),
        cache=Settings().cache_dir,
        port=free_port(),
        controller_port=free_port(),
        heap_mb=768,
        java=java_for_kafka(),
    )
    svc.start()
    yield svc
    svc.stop()


@dataclass
class LakeStack:
    """PostgreSQL + MinIO + Trino wired as the stack wires them, on free ports."""

    config: LakeConfig
    trino: TrinoService
    env: dict[str, str]  # MARKETLAKE_* settings that point a process at these services

    def duckdb(self) -> DuckDBEngine:
        return DuckDBEngine(open_catalog(self.config), self.config.s3)

    def trino_engine(self, writer: bool = False) -> TrinoEngine:
        """Trino as the read-only principal (queries), or as the platform's writer."""
        return stack.trino_engine(self.trino, writer=writer)


@pytest.fixture(scope="session")
def lake_stack(tmp_path_factory) -> Iterator[LakeStack]:
    """The lake on real services for the whole session (installed once into the shared cache)."""
    settings = Settings()
    # as root PostgreSQL runs as 'postgres', which cannot enter pytest's private temp base
    pg_home = Path(tempfile.mkdtemp(prefix="marketlake-pg-"))
    pg = PostgresService(home=pg_home, cache=settings.cache_dir, port=free_port())
    stack_dir = tmp_path_factory.mktemp("stack")  # laid out as assets.platform.stack expects
    store = MinioService(
        home=stack_dir / "minio",
        cache=settings.cache_dir,
        port=free_port(),
        console_port=free_port(),
    )
    trino = TrinoService(
        home=stack_dir / "trino",
        cache=settings.cache_dir,
        port=free_port(),
        heap_mb=2048,
        java=java_for_trino(),
    )
    lake = LakeTrino(settings, pg, store, trino)
    try:
        lake.start()
        env = {
            "MARKETLAKE_STACK_DIR": str(stack_dir),
            "MARKETLAKE_POSTGRES_DIR": str(pg_home),
            "MARKETLAKE_POSTGRES_PORT": str(pg.port),
            "MARKETLAKE_MINIO_PORT": str(store.port),
            "MARKETLAKE_MINIO_CONSOLE_PORT": str(store.console_port),
            "MARKETLAKE_TRINO_PORT": str(trino.port),
            "MARKETLAKE_LAKE_CATALOG": settings.lake_catalog,
            "MARKETLAKE_LAKE_BUCKET": settings.lake_bucket,
        }
        yield LakeStack(stack.lake_config(settings, pg, store), trino, env)
    finally:
        for svc in (trino, store, pg):
            svc.stop()
        shutil.rmtree(pg_home, ignore_errors=True)


# -- the stack's Superset with the dashboards deployed on two landed days (session-wide:
# tests/integration/test_dashboards.py and the browser test share one) ---------------------


@pytest.fixture(scope="session")
def dashboards_env(lake_stack, tmp_path_factory) -> dict[str, str]:
    """What points ``marketlake`` at this session's stack, with Superset on a free port and
    the platform's accounts (whose operators and viewers log in to Superset) in a data
    directory of the session's."""
    return {
        **os.environ, **lake_stack.env, "MARKETLAKE_SUPERSET_PORT": str(free_port()),
        "MARKETLAKE_DATA_DIR": str(tmp_path_factory.mktemp("dashboards-data")),
    }  # fmt: skip


@pytest.fixture(scope="session")
def dashboards_landed(dashboards_env, tmp_path_factory) -> dict[Any, dict[str, Any]]:
    """Two simulated days, every asset materialised, in the stack's lake (MinIO + PostgreSQL),
    as ``marketlake demo`` lands them in stack mode; a Dagster run computing the first day
    failed before (``failed_run`` in the result: its run id), so Platform health has one."""
    work = tmp_path_factory.mktemp("dashboards-days")
    calendar = short_calendar(work)
    assert all(load_calendar(calendar).is_trading_day(d) for d in DAYS)
    failed = fail_a_run(landing_env(dashboards_env, work, calendar), DAYS[0])
    landed: dict[Any, dict[str, Any]] = land_days(
        dashboards_env, list(zip(DAYS, SEEDS, strict=True)), work, calendar
    )
    landed["failed_run"] = {"run_id": failed}
    return landed


@pytest.fixture(scope="session")
def dashboards_superset(dashboards_env) -> Iterator[SupersetService]:
    """The stack's Superset (home under the stack dir), metadata on the session's PostgreSQL."""
    settings = stack_settings(dashboards_env)
    svc = stack.superset(settings, stack.postgres(settings))
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def dashboards_deployed(dashboards_env, dashboards_landed, dashboards_superset) -> dict[str, Any]:
    """``marketlake dashboards deploy --json`` after the days landed: its report."""
    proc = dashboards_cli(dashboards_env, "deploy", "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report: dict[str, Any] = json.loads(proc.stdout)
    return report
