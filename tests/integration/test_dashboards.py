"""Dashboards as code on the real stack: the bundle deployed into Superset over Trino.

Two simulated days are landed into the stack's lake (``marketlake demo`` with
the lake on MinIO, recorded news for the intelligence tables); Superset runs
with its metadata on the stack's PostgreSQL; ``marketlake dashboards deploy``
runs as a user runs it. Then: every chart's data comes back through Superset's
chart data API; one figure per dashboard equals Trino's own reading of the
lake; Superset queried Trino as the read-only principal only; deploying again
keeps every id; a bundle with a broken dataset is refused naming the dataset,
its chart and its dashboard, and nothing of it is imported; exporting gives
back the committed bundle unchanged. The fixtures (in conftest.py) are shared
with the browser test, test_dashboards_browser.py.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import yaml

from assets.platform import stack
from dashboards.provisioning import SupersetClient, SupersetLogin
from dashboards.superset_bundle import BUNDLE_DIR, dump
from deploy.superset.superset_service import SupersetService
from streaming.events import PRICE_SCALE
from tests.support import free_port
from tests.support.dashboards import DAYS, FAILED_RUN_ERROR, dashboards_cli, stack_settings

pytestmark = pytest.mark.integration

# empty on a simulated day: nothing breaks in recon, and the day's recommendations
# reach members only in the next session
EXPECTED_EMPTY = {"Recon breaks", "Member decisions"}


@pytest.fixture
def env(dashboards_env) -> dict[str, str]:
    return dashboards_env


@pytest.fixture
def superset(dashboards_superset) -> SupersetService:
    return dashboards_superset


@pytest.fixture
def deployed(dashboards_deployed) -> dict[str, Any]:
    return dashboards_deployed


@pytest.fixture
def client(superset) -> Iterator[SupersetClient]:
    login = SupersetLogin(superset.url, superset.admin_user, superset.admin_password)
    with SupersetClient(login) as c:
        yield c


@pytest.fixture
def trino(env) -> Iterator[Any]:
    engine = stack.trino_engine(stack.trino(stack_settings(env)))
    yield engine
    engine.close()


def _days_sql() -> str:
    return ", ".join(f"DATE '{d}'" for d in DAYS)


def _chart_data(client: SupersetClient, deployed: dict[str, Any], name: str) -> list[dict]:
    """The chart's saved query run for this module's days only (the dashboard's day filter)."""
    (chart_id,) = [c["id"] for c in deployed["charts"] if c["name"] == name]
    context = json.loads(client.get(f"/api/v1/chart/{chart_id}")["result"]["query_context"])
    for query in context["queries"]:
        query["time_range"] = f"{DAYS[0]} : {DAYS[-1] + timedelta(days=1)}"
    context["force"] = True
    (result,) = client.post("/api/v1/chart/data", context)["result"]
    assert not result.get("error"), result
    assert {"column": "trading_day"} in result["applied_filters"]
    rows: list[dict] = result["data"]
    return rows


def _one(trino: Any, sql: str) -> Any:
    (row,) = trino.query(sql).to_pylist()
    return next(iter(row.values()))


def test_every_chart_returns_rows_through_superset(deployed):
    assert [c for c in deployed["checks"] if c["error"] or c["rows"] is None] == []
    checks = {c["name"]: c for c in deployed["checks"] if c["kind"] == "chart"}
    assert len(checks) == len(deployed["charts"]) == 26
    assert {n for n, c in checks.items() if c["rows"] == 0} <= EXPECTED_EMPTY
    # every select filter lists its values through Superset, as the filter bar does
    filters = {c["name"]: c["rows"] for c in deployed["checks"] if c["kind"] == "filter"}
    assert filters["Trend window (Intelligence)"] == 5
    assert filters["Symbol (Market)"] == filters["Company (Intelligence)"] == 24
    assert filters["Member (Clearing and settlement)"] == 10
    titles = {d["title"] for d in deployed["dashboards"]}
    assert titles == {"Market", "Clearing and settlement", "Intelligence", "Platform health"}
    assert deployed["queries_added"]  # the written charts got the query their parameters mean


def test_market_traded_notional_equals_trino(deployed, client, trino):
    (row,) = _chart_data(client, deployed, "Traded notional")
    notional = _one(
        trino, f"SELECT sum(price * qty) FROM raw.trades WHERE trading_day IN ({_days_sql()})"
    )
    assert notional > 0
    assert row["traded notional"] == pytest.approx(notional / PRICE_SCALE, abs=1e-6)


def test_clearing_pnl_per_member_equals_trino(deployed, client, trino):
    rows = _chart_data(client, deployed, "Realised and unrealised P&L per member")
    lake = trino.query(f"""
        SELECT member, sum(realized_pnl) AS realised, sum(unrealized_pnl) AS unrealised
        FROM core.clearing_members WHERE trading_day IN ({_days_sql()}) GROUP BY member
    """).to_pylist()  # fmt: skip
    assert len(rows) == len(lake) > 1
    by_member = {r["member"]: r for r in rows}
    for member in lake:
        shown = by_member[member["member"]]
        assert shown["realised"] == pytest.approx(member["realised"] / PRICE_SCALE, abs=1e-6)
        assert shown["unrealised"] == pytest.approx(member["unrealised"] / PRICE_SCALE, abs=1e-6)


def test_intelligence_documents_per_source_equal_trino(deployed, client, trino):
    rows = _chart_data(client, deployed, "Documents per source and day")
    shown: dict[str, float] = {}
    for row in rows:  # one row per day, one column per source (pivoted)
        for source, n in row.items():
            if source != "trading_day" and n is not None:
                shown[source] = shown.get(source, 0) + n
    lake = trino.query(f"""
        SELECT source_id, count(*) AS n FROM intel.documents
        WHERE trading_day IN ({_days_sql()}) GROUP BY source_id
    """).to_pylist()  # fmt: skip
    assert lake and shown == {r["source_id"]: r["n"] for r in lake}


def test_platform_dead_letters_equal_trino(deployed, client, trino):
    (row,) = _chart_data(client, deployed, "Dead letters")
    count = _one(trino, f"SELECT count(*) FROM raw.dlq WHERE trading_day IN ({_days_sql()})")
    assert row["dead letters"] == count > 0


def test_a_failed_dagster_run_shows_on_platform_health(deployed, client, dashboards_landed):
    """The run that failed before the days landed is on the dashboard: its job, the day it
    computed, the failed step and the error, as Dagster's run storage has them."""
    rows = _chart_data(client, deployed, "Dagster run failures")
    (row,) = [r for r in rows if r["run_id"] == dashboards_landed["failed_run"]["run_id"]]
    assert row["partition"] == DAYS[0].isoformat()
    assert row["steps"] == "fetch_news"
    assert FAILED_RUN_ERROR in row["message"]
    assert row["job"] == "__ephemeral_asset_job__"  # an ad-hoc asset run, as materialize() names it
    # a time (Superset sends temporal columns as epoch milliseconds), not raw nanoseconds:
    # the run failed while this session's fixtures were being built
    assert 0 < time.time() - row["failed_at"] / 1000 < 3 * 3600


def test_superset_reads_the_lake_as_the_read_only_principal(deployed, client, env):
    trino_svc = stack.trino(stack_settings(env))
    reader, _ = trino_svc.principal(reader=True)
    (database,) = client.get("/api/v1/database/")["result"]
    uri = client.get(f"/api/v1/database/{database['id']}/connection")["result"]["sqlalchemy_uri"]
    assert uri.startswith(f"trino://{reader}:XXXXXXXXXX@") and uri.endswith("/iceberg_ro")
    writer = stack.trino_engine(trino_svc, writer=True)
    try:
        users = writer.query(
            "SELECT DISTINCT \"user\" FROM system.runtime.queries WHERE source = 'Apache Superset'"
        ).column("user").to_pylist()  # fmt: skip
    finally:
        writer.close()
    assert users == [reader]


def test_deploying_again_keeps_every_id(deployed, env, client):
    counts = {
        k: client.get(f"/api/v1/{k}/")["count"]
        for k in ("dashboard", "chart", "dataset", "database")
    }
    proc = dashboards_cli(env, "deploy", "--json", "--no-verify")
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads(proc.stdout)
    assert again["dashboards"] == deployed["dashboards"]
    assert again["charts"] == deployed["charts"]
    assert {k: client.get(f"/api/v1/{k}/")["count"] for k in counts} == counts
    assert counts == {"dashboard": 4, "chart": 26, "dataset": again["datasets"], "database": 1}


def test_a_broken_dataset_is_refused_naming_it_and_its_chart(deployed, env, client, tmp_path):
    broken = tmp_path / "bundle"
    shutil.copytree(BUNDLE_DIR, broken)
    lake_file = broken / "datasets" / "lake" / "marts.fct_trades.yaml"
    lake_file.write_text(
        lake_file.read_text().replace("table_name: fct_trades", "table_name: no_such_table")
    )
    chart_file = broken / "charts" / "market_traded_notional.yaml"
    chart_file.write_text(
        chart_file.read_text().replace("slice_name: Traded notional", "slice_name: Renamed")
    )
    before = client.get("/api/v1/chart/", q="(filters:!((col:slice_name,opr:eq,value:Renamed)))")

    proc = dashboards_cli(env, "deploy", "--bundle", str(broken))
    assert proc.returncode == 1
    message = " ".join(proc.stderr.split())
    assert "datasets/lake/marts.fct_trades.yaml" in message
    assert "dataset 'no_such_table'" in message and "'Renamed'" in message
    assert "dashboards 'Market'" in message and "TABLE_NOT_FOUND" in message
    after = client.get("/api/v1/chart/", q="(filters:!((col:slice_name,opr:eq,value:Renamed)))")
    assert before["count"] == after["count"] == 0  # nothing of the bundle was imported


def test_what_leaves_the_bundle_leaves_superset_and_nothing_else(deployed, env, client, tmp_path):
    """A chart deployed once and then taken out of the bundle is deleted at the next deploy;
    a chart a person made in Superset's UI (never deployed) stays."""
    grown = tmp_path / "bundle"
    shutil.copytree(BUNDLE_DIR, grown)
    extra = yaml.safe_load((grown / "charts" / "market_vwap.yaml").read_text())
    extra.update(uuid=str(uuid.uuid4()), slice_name="Scratch chart from the bundle")
    (grown / "charts" / "scratch.yaml").write_text(dump(extra))
    dataset = client.listing("dataset", ("id", "table_name"))[0]
    by_hand = client.post("/api/v1/chart/", {
        "slice_name": "Made in the UI", "viz_type": "table", "datasource_id": dataset["id"],
        "datasource_type": "table", "params": "{}",
    })["id"]  # fmt: skip

    def names() -> set[str]:
        return {c["slice_name"] for c in client.listing("chart", ("slice_name",))}

    try:
        proc = dashboards_cli(env, "deploy", "--bundle", str(grown), "--no-verify", "--json")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert json.loads(proc.stdout)["removed"] == []
        assert {"Scratch chart from the bundle", "Made in the UI"} <= names()

        proc = dashboards_cli(env, "deploy", "--no-verify", "--json")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert json.loads(proc.stdout)["removed"] == ["chart Scratch chart from the bundle"]
        assert "Scratch chart from the bundle" not in names()
        assert "Made in the UI" in names()
        assert len(names()) == len(deployed["charts"]) + 1
    finally:
        client.delete(f"/api/v1/chart/{by_hand}")


def test_export_gives_back_the_committed_bundle(deployed, env, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(BUNDLE_DIR, copy)
    proc = dashboards_cli(env, "export", "--bundle", str(copy))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wrote charts/market_intraday.yaml" in proc.stdout
    committed = {p.relative_to(BUNDLE_DIR): p.read_bytes() for p in BUNDLE_DIR.rglob("*.yaml")}
    exported = {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*.yaml")}
    assert exported.keys() == committed.keys()
    assert [str(p) for p in committed if exported[p] != committed[p]] == []


def test_deploy_without_superset_says_how_to_start_it(env):
    proc = dashboards_cli({**env, "MARKETLAKE_SUPERSET_PORT": str(free_port())}, "deploy")
    assert proc.returncode == 1
    assert "marketlake stack up superset" in " ".join(proc.stderr.split())  # rich wraps lines
