"""``marketlake demo`` as a user runs it: a whole day, its files, its summary, twice."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.e2e

DAY = "2026-11-20"  # a Friday


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MARKETLAKE_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def _hashes(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.glob("*.parquet"))
    }


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo")
    proc = _run(data, "demo", "--date", DAY, "--seed", "7", "--json")
    assert proc.returncode == 0, proc.stderr
    return data, json.loads(proc.stdout)


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


def test_files_agree_with_each_other_and_the_summary(demo_run):
    _, summary = demo_run
    out = Path(summary["output_dir"])
    trades = pq.read_table(out / "trades.parquet").to_pylist()
    execs = pq.read_table(out / "executions.parquet").to_pylist()
    bars = pq.read_table(out / "bars.parquet").to_pylist()
    orders = pq.read_table(out / "orders.parquet")
    assert len(trades) == summary["counts"]["trades"]
    assert orders.num_rows == summary["counts"]["orders"]
    # every trade has exactly two fills of its quantity
    fills = defaultdict(list)
    for e in execs:
        if e["exec_type"] == "trade":
            fills[(e["symbol"], e["trade_id"])].append(e["last_qty"])
    assert len(fills) == len(trades)
    assert all(fills[(t["symbol"], t["trade_id"])] == [t["qty"], t["qty"]] for t in trades)
    # bars of every interval add up to the traded volume per symbol
    volume = defaultdict(int)
    for t in trades:
        volume[t["symbol"]] += t["qty"]
    for interval in ("1s", "1m", "3m", "5m", "15m"):
        per = defaultdict(int)
        for b in bars:
            if b["interval"] == interval:
                per[b["symbol"]] += b["volume"]
        assert per == volume, interval
    # every order request got exactly one first answer
    firsts = [e for e in execs if e["request"] is not None]
    assert len(firsts) == orders.num_rows


def test_same_date_and_seed_give_identical_files(demo_run, tmp_path):
    _, summary = demo_run
    first = _hashes(Path(summary["output_dir"]))
    proc = _run(tmp_path, "demo", "--date", DAY, "--seed", "7", "--json")
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert _hashes(Path(again["output_dir"])) == first
    assert {k: v for k, v in again.items() if k != "output_dir"} == {
        k: v for k, v in summary.items() if k != "output_dir"
    }


def test_a_weekend_is_refused_with_a_reason(tmp_path):
    proc = _run(tmp_path, "demo", "--date", "2026-11-21")
    assert proc.returncode == 2
    assert "not a trading day" in proc.stderr
