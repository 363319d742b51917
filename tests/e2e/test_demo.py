"""``marketlake demo`` as a user runs it: a whole day published into the lake, its summary, twice.

Then ``marketlake query`` reads the published day back, and the day's
recorded news is followed to the next session's recommendations topic.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from dagster import DagsterInstance
from pyiceberg.expressions import EqualTo

from assets.platform.lake_engines import catalog
from lake.tables import PARTITION_COLUMN, TOPIC_TABLES
from settings import Settings

pytestmark = pytest.mark.e2e

RAW_TABLES = sorted(set(TOPIC_TABLES.values()))  # what the demo lands

DAY = "2026-11-20"  # a Friday
COUNT_KEYS = ["orders", "executions", "trades", "bbo", "bars", "control", "dlq", "decisions"]


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MARKETLAKE_DATA_DIR": str(data_dir),
           "DAGSTER_HOME": str(data_dir / "dagster")}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def _demo(data_dir: Path, seed: int) -> dict[str, Any]:
    proc = _run(data_dir, "demo", "--date", DAY, "--seed", str(seed), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _day_table(data_dir: Path, identifier: str) -> pa.Table:
    """``identifier``'s partition for DAY, rows in a canonical order (every scalar column)."""
    lake = catalog(Settings(data_dir=data_dir))
    scan = lake.load_table(identifier).scan(
        row_filter=EqualTo(PARTITION_COLUMN, date.fromisoformat(DAY))
    )
    table = scan.to_arrow()
    keys = [
        f.name
        for f in table.schema
        if not (pa.types.is_list(f.type) or pa.types.is_large_list(f.type))
    ]
    return table.sort_by([(k, "ascending") for k in keys])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo")
    return data, _demo(data, 7)


@pytest.fixture(scope="module")
def day_tables(demo_run) -> dict[str, list[dict[str, Any]]]:
    data, _ = demo_run
    return {
        name: _day_table(data, f"raw.{name}").to_pylist()
        for name in ("orders", "executions", "trades", "bars")
    }


def test_summary_covers_every_symbol_and_member(demo_run):
    _, summary = demo_run
    assert summary["date"] == DAY
    assert len(summary["symbols"]) >= 20
    assert all(s["trades"] > 0 and s["low"] <= s["vwap"] <= s["high"] for s in summary["symbols"])
    members = summary["members"]
    assert [m["member"] for m in members] == [f"USR{i:02d}" for i in range(1, 11)]
    for m in members:
        assert m["obligation_met"] == (m["securities_traded"] >= 20)
        assert m["cash"] >= 0  # capital is checked before every order
        assert m["net_worth"] == pytest.approx(m["cash"] + m["holdings_value"], abs=0.01)
    assert all(m["obligation_met"] for m in members)


def test_the_day_is_published_into_every_raw_table(demo_run):
    data, summary = demo_run
    assert list(summary["counts"]) == COUNT_KEYS
    # no news reaches the demo's session (nothing recommended the day before), so no decisions
    assert all(summary["counts"][k] > 0 for k in COUNT_KEYS if k != "decisions")
    assert summary["counts"]["decisions"] == 0
    lake = summary["lake"]
    assert lake["warehouse"] == (data / "warehouse").resolve().as_uri()
    assert str(data / "catalog.sqlite") in lake["catalog"]
    assert lake["tables"] == {f"raw.{k}": summary["counts"][k] for k in COUNT_KEYS}
    assert set(lake["tables"]) == set(RAW_TABLES)
    # row counts in the lake are the summary's, and the event log stays next to the day
    for identifier, rows in lake["tables"].items():
        assert _day_table(data, identifier).num_rows == rows, identifier
    assert (data / "sessions" / f"{DAY}.sqlite").is_file()
    # no Parquet files outside the lake's warehouse
    assert not list((data / "sessions").rglob("*.parquet"))


def test_the_day_runs_through_every_asset_in_dagster(demo_run):
    data, summary = demo_run
    run = summary["dagster"]
    assert {"simulated_session", "raw_tables", "core__market_daily", "clearing",
            "core__recon_breaks", "dbt_marts", "marts__settlement_report"} <= set(run["steps"])  # fmt: skip
    assert run["dagster_home"] == str(data / "dagster")
    instance = DagsterInstance.from_config(str(data / "dagster"))
    recorded = instance.get_run_by_id(run["run_id"])
    assert recorded is not None and recorded.is_success
    assert summary["marts"]["marts.fct_trades"] == summary["counts"]["trades"]
    assert summary["marts"]["marts.fct_member_daily_pnl"] == len(summary["members"])
    page = Path(summary["report"]).read_text()
    assert "EOD settlement report" in page and DAY in page and page.count("<svg") == 2


def test_tables_agree_with_each_other_and_the_summary(demo_run, day_tables):
    _, summary = demo_run
    trades, execs, bars, orders = (
        day_tables["trades"], day_tables["executions"], day_tables["bars"], day_tables["orders"],
    )  # fmt: skip
    assert len(trades) == summary["counts"]["trades"]
    assert len(orders) == summary["counts"]["orders"]
    assert len(execs) == summary["counts"]["executions"]
    assert len(bars) == summary["counts"]["bars"]
    # the summary's per-symbol figures are the published trades'
    per_symbol: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for t in trades:
        per_symbol[t["symbol"]][0] += 1
        per_symbol[t["symbol"]][1] += t["qty"]
    assert {s["symbol"]: [s["trades"], s["volume"]] for s in summary["symbols"]} == per_symbol
    # every trade has exactly two fills of its quantity
    fills = defaultdict(list)
    for e in execs:
        if e["exec_type"] == "trade":
            fills[(e["symbol"], e["trade_id"])].append(e["last_qty"])
    assert len(fills) == len(trades)
    assert all(fills[(t["symbol"], t["trade_id"])] == [t["qty"], t["qty"]] for t in trades)
    # bars of every interval add up to the traded volume per symbol and interval window
    for interval in ("1s", "1m", "3m", "5m", "15m"):
        per = defaultdict(int)
        for b in bars:
            if b["interval"] == interval:
                per[b["symbol"]] += b["volume"]
        assert per == {sym: vol for sym, (_, vol) in per_symbol.items()}, interval
    one_minute = [b for b in bars if b["interval"] == "1m"]
    traded = defaultdict(int)
    for t in trades:
        traded[(t["symbol"], t["ts"] // 60_000_000_000)] += t["qty"]
    assert {(b["symbol"], b["start"] // 60_000_000_000): b["volume"] for b in one_minute} == traded
    # every order request got exactly one first answer
    firsts = [e for e in execs if e["request"] is not None]
    assert len(firsts) == len(orders)


def test_the_recorded_news_becomes_the_next_sessions_recommendations(demo_run):
    from assets.platform.resources import PlatformResource
    from tests.support import sent_recommendations

    data, summary = demo_run
    intel = summary["intelligence"]
    assert intel["news"] == "recorded"
    assert intel["next_session"] == "2026-11-23"  # the Monday after
    tables = intel["tables"]
    assert tables["intel.documents"] == tables["intel.extractions"] > 10
    assert tables["intel.trends"] == 24 * 5  # every company, every window
    recs = {r["symbol"]: r for r in intel["recommendations"]}
    assert len(recs) == 24
    # company news strong enough to act on, one each way; the lawsuit filed after
    # the close is not part of the day's view of Apple
    assert recs["AAPL"]["action"] == "buy" and recs["AAPL"]["signal"] > 0.5
    assert recs["BA"]["action"] == "sell" and recs["BA"]["signal"] < -0.5
    for sym in ("AAPL", "BA"):
        assert recs[sym]["mode"] != "informational" and recs[sym]["driver"] == "company"
    # a rival's trouble reaches a competitor, but only as information
    assert recs["AMD"]["driver"] == "competitive" and recs["AMD"]["mode"] == "informational"
    assert recs["TSLA"]["action"] == "watch"  # good and bad news the same day
    # the recommendations wait in the next session's log for the members that follow them
    sent = sent_recommendations(PlatformResource(data_dir=str(data)), date(2026, 11, 23))
    assert {r.symbol for r in sent} == set(recs)
    assert next(r for r in sent if r.symbol == "AAPL").action == "buy"


def test_same_date_and_seed_give_identical_tables(demo_run, tmp_path):
    first_dir, summary = demo_run
    again = _demo(tmp_path, 7)
    where = ("lake", "dagster", "report")  # where it ran differs; what it computed must not
    assert {k: v for k, v in again.items() if k not in where} == {
        k: v for k, v in summary.items() if k not in where
    }
    assert again["lake"]["tables"] == summary["lake"]["tables"]
    for identifier in RAW_TABLES:
        assert _day_table(tmp_path, identifier).equals(_day_table(first_dir, identifier)), (
            identifier
        )


def test_another_seed_gives_other_trades(demo_run, tmp_path):
    first_dir, summary = demo_run
    other = _demo(tmp_path, 8)
    assert other["seed"] == 8
    assert other["symbols"] != summary["symbols"]
    assert not _day_table(tmp_path, "raw.trades").equals(_day_table(first_dir, "raw.trades"))


def test_query_reads_the_published_day(demo_run):
    data, summary = demo_run
    trades = summary["counts"]["trades"]
    sql = "SELECT count(*) AS n FROM raw.trades"
    as_json = _run(data, "query", sql, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [{"n": trades}]
    as_csv = _run(data, "query", sql, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [["n"], [str(trades)]]


def test_query_on_a_missing_table_names_it(demo_run):
    data, _ = demo_run
    proc = _run(data, "query", "SELECT count(*) FROM raw.nope", "--format", "json")
    assert proc.returncode != 0
    assert "nope" in proc.stderr
    assert proc.stdout == ""


def test_a_weekend_is_refused_with_a_reason(tmp_path):
    proc = _run(tmp_path, "demo", "--date", "2026-11-21")
    assert proc.returncode == 2
    assert "not a trading day" in proc.stderr
