"""The backfill on the stack: sessions on Kafka, the lake on MinIO and PostgreSQL, runs in
dagster-postgres, and the EOD report checked against Trino's reading of the lake.

``marketlake backfill`` runs as a user runs it, with settings pointing at the
services the test session started (mode ``stack``). Running it again changes
nothing that Trino reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from confluent_kafka.admin import AdminClient
from dagster import DagsterInstance, RunsFilter

from tests.support import short_calendar

pytestmark = pytest.mark.integration

FIRST, LAST = "2026-11-12", "2026-11-13"  # Thursday, Friday
DAYS = (FIRST, LAST)


def _backfill(env: dict[str, str]) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "backfill", "--from", FIRST, "--to", LAST,
         "--json"],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


def _one(trino, sql: str) -> tuple:
    (row,) = trino.query(sql).to_pylist()
    return tuple(row.values())


def _lake_view(trino) -> dict[str, list]:
    """What Trino reads of the two days: report rows, trade counts, mart counts."""
    days = ", ".join(f"DATE '{d}'" for d in DAYS)
    return {
        name: sorted(map(str, trino.query(sql.format(days=days)).to_pylist()))
        for name, sql in {
            "report": "SELECT * FROM marts.settlement_report WHERE trading_day IN ({days})",
            "trades": "SELECT trading_day, count(*) FROM raw.trades WHERE trading_day IN ({days})"
            " GROUP BY 1",
            "settlement": "SELECT trading_day, sum(net_cash), sum(fees) FROM marts.fct_settlement"
            " WHERE trading_day IN ({days}) GROUP BY 1",
        }.items()
    }


def test_backfill_on_kafka_minio_trino_and_dagster_postgres(kafka, lake_stack, tmp_path):
    namespace = f"bf{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **lake_stack.env,
        "MARKETLAKE_MODE": "stack",
        **kafka.env(),
        "MARKETLAKE_NAMESPACE": namespace,
        "MARKETLAKE_DATA_DIR": str(tmp_path / "data"),
        "MARKETLAKE_CALENDAR_TOML": str(short_calendar(tmp_path, close="09:20")),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    runs = _backfill(env)
    assert [r["day"] for r in runs] == list(DAYS) and all(r["success"] for r in runs)

    # the runs are recorded in PostgreSQL, not in SQLite files
    assert "postgres" in (tmp_path / "dagster" / "dagster.yaml").read_text()
    instance = DagsterInstance.from_config(str(tmp_path / "dagster"))
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    recorded = instance.get_runs(RunsFilter(tags={"marketlake/backfill": f"{FIRST}..{LAST}"}))
    assert sorted(r.run_id for r in recorded) == sorted(r["run_id"] for r in runs)
    assert not list((tmp_path / "dagster").rglob("*.db"))

    # each day's session ran on Kafka, under the namespace
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap, **kafka.client_config()})
    topics = admin.list_topics(timeout=10).topics
    for day in DAYS:
        assert f"{namespace}-{day.replace('-', '')}.orders" in topics

    trino = lake_stack.trino_engine()
    try:
        for day in DAYS:
            d = f"DATE '{day}'"
            # the report's totals equal what Trino computes from the landed fills
            cash, fees, traded = _one(trino, f"""
                SELECT sum(closing_cash - opening_cash), sum(fees), sum(securities_traded)
                FROM marts.settlement_report WHERE trading_day = {d}""")  # fmt: skip
            clearing = (f"member IN (SELECT member_id FROM marts.dim_members "
                        f"WHERE trading_day = {d} AND member_kind = 'clearing')")  # fmt: skip
            (flows,) = _one(trino, f"""
                SELECT sum(CASE side WHEN 'sell' THEN last_price * last_qty
                                     ELSE -last_price * last_qty END)
                FROM raw.executions
                WHERE trading_day = {d} AND exec_type = 'trade' AND {clearing}""")  # fmt: skip
            (per_member,) = _one(trino, f"""
                SELECT sum(n) FROM (
                    SELECT member, count(DISTINCT symbol) AS n FROM raw.executions
                    WHERE trading_day = {d} AND exec_type = 'trade' AND {clearing}
                    GROUP BY member)""")  # fmt: skip
            assert cash + fees == flows
            assert traded == per_member
            # the dbt marts agree through Trino too
            fct_fees, fct_cash = _one(trino, f"""
                SELECT sum(fees), sum(net_cash) FROM marts.fct_settlement
                WHERE trading_day = {d}""")  # fmt: skip
            assert fct_fees * 10_000 == fees and fct_cash * 10_000 == cash
            assert _one(
                trino, f"SELECT count(*) FROM core.recon_breaks WHERE trading_day = {d}"
            ) == (0,)
            assert _one(
                trino, f"SELECT count(*) FROM marts.fct_trades WHERE trading_day = {d}"
            ) == _one(trino, f"SELECT count(*) FROM raw.trades WHERE trading_day = {d}")
        before = _lake_view(trino)
        assert all(before.values())

        again = _backfill(env)
        assert all(r["success"] for r in again)
        assert _lake_view(trino) == before
    finally:
        trino.close()
