"""``marketlake replay``: order events in, executions and trades out, bad lines kept."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

LINES = [
    '{"type":"new","order_id":1,"member":"A","symbol":"AAPL","side":"sell","qty":10,"price":1954000}',
    '{"type":"new","order_id":2,"member":"B","symbol":"AAPL","side":"buy","qty":4,"price":1954000}',
    '{"type":"amend","order_id":1,"member":"A","symbol":"AAPL","qty":8}',
    '{"type":"new","order_id":3,"member":"B","symbol":"AAPL","side":"buy","qty":1,"price":1954001}',
    "this is not json",
    '{"type":"cancel","order_id":1,"member":"A","symbol":"AAPL"}',
    '{"type":"new","order_id":4,"member":"C","symbol":"NOPE","side":"buy","qty":1,"price":10000}',
]


def _replay(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "replay", *args],
        capture_output=True, text=True, input=stdin, timeout=60,
    )  # fmt: skip


def test_replay_writes_executions_trades_and_dead_letters(tmp_path):
    src = tmp_path / "orders.jsonl"
    src.write_text("\n".join(LINES) + "\n")
    out = tmp_path / "out"
    proc = _replay(str(src), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    execs = [json.loads(x) for x in (out / "executions.jsonl").read_text().splitlines()]
    trades = [json.loads(x) for x in (out / "trades.jsonl").read_text().splitlines()]
    dlq = [json.loads(x) for x in (out / "dlq.jsonl").read_text().splitlines()]
    assert [(t["price"], t["qty"], t["buy_order_id"], t["sell_order_id"]) for t in trades] == [
        (1954000, 4, 2, 1)
    ]
    assert [(e["order_id"], e["exec_type"], e["reason"]) for e in execs] == [
        (1, "new", None),
        (2, "new", None),
        (2, "trade", None),
        (1, "trade", None),
        (1, "replaced", None),
        (3, "rejected", "tick_size"),
        (1, "canceled", None),
        (4, "rejected", "unknown_symbol"),
    ]
    assert execs[4]["leaves_qty"] == 4 and execs[4]["cum_qty"] == 4
    assert [(d["offset"], d["reason"].split(": ")[1]) for d in dlq] == [
        (4, "rejected"),
        (5, "undecodable"),
        (7, "rejected"),
    ]
    assert "line 5" in dlq[1]["reason"] and "tick_size" in dlq[0]["reason"]
    assert base64.b64decode(dlq[1]["payload"]) == LINES[4].encode()  # the original bytes
    assert "2 rejects" in proc.stderr


def test_replay_to_stdout_and_custom_securities(tmp_path):
    secs = tmp_path / "secs.csv"
    secs.write_text("symbol,tick_size,lot_size,reference_price\nXYZ,0.05,100,10.00\n")
    orders = "\n".join(
        [
            '{"type":"new","order_id":1,"member":"A","symbol":"XYZ","side":"buy","qty":100,"price":100000}',
            '{"type":"new","order_id":2,"member":"B","symbol":"XYZ","side":"sell","qty":50,"price":100000}',
            '{"type":"new","order_id":3,"member":"B","symbol":"XYZ","side":"sell","qty":100,"price":100100}',
        ]
    )
    proc = _replay("-", "--securities", str(secs), stdin=orders)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [e["type"] for e in events] == ["exec", "exec", "dead_letter", "exec", "dead_letter"]
    assert [e["reason"] for e in events if e["type"] == "exec"] == [None, "lot_size", "tick_size"]
    assert [e["offset"] for e in events if e["type"] == "dead_letter"] == [2, 3]


def test_replay_missing_file_is_a_clear_error(tmp_path):
    proc = _replay(str(tmp_path / "missing.jsonl"))
    assert proc.returncode == 2
    assert "no such file" in proc.stderr
