"""A FIX member on the running exchange, trading against the simulator's liquidity.

``exchange run`` with the simulator and the FIX gateway, on its paced clock:
the member logs on, follows AAPL's market data (a snapshot, then incremental
refreshes as the simulator's orders move the book), and marketable orders
trade against the simulator; its reports say what the matcher's say, and its
trades are in the bars like the simulator's.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from streaming.accounts import AccountStore
from streaming.events import ExecutionReport, decode
from streaming.gateways.fix_client import FixClient, all_values, new_order, parse
from streaming.transport.sqlite import SqliteEventLog
from tests.support import exchange_env, free_port, short_calendar

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 19)
PASSWORD = "trades-with-the-simulator"


def test_a_fix_member_trades_against_the_simulator_and_follows_the_book(tmp_path: Path) -> None:
    data = tmp_path / "data"
    AccountStore(data / "accounts.sqlite").add("alice", "trader", PASSWORD, member="USR01")
    env = exchange_env(data, short_calendar(tmp_path))
    fix_port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "exchange", "run", "--from", DAY.isoformat(),
         "--days", "1", "--speed", "60", "--no-members", "--port", str(free_port()),
         "--fix-port", str(fix_port)],
        env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "exchange.err").open("w"),
    )  # fmt: skip
    client = FixClient(tmp_path, fix_port, "USR01", "alice", PASSWORD)
    try:
        client.start(wait=None)
        assert client.logged_on.wait(60), (tmp_path / "exchange.err").read_text()[-3000:]
        deadline = time.monotonic() + 120
        snapshot: dict[int, str] = {}
        while time.monotonic() < deadline:  # until the open, when the simulator's book is there
            client.send("V", (262, f"md-{time.monotonic_ns()}"), (263, "1"), (264, "5"),
                        groups=[(267, 269, [[(269, "0")], [(269, "1")], [(269, "2")]]),
                                (146, 55, [[(55, "AAPL")]])])  # fmt: skip
            raw = client.next(where=lambda m: m[35] in ("W", "Y", "3", "j"))
            assert parse(raw)[35] == "W", parse(raw)
            if "1" in all_values(raw, 269):  # an offer to take
                snapshot = parse(raw)
                break
            time.sleep(1)
        assert snapshot, "no book on AAPL"
        updates = [client.next(where=lambda m: m[35] == "X") for _ in range(5)]
        assert all(all_values(u, 279) for u in updates)  # the simulator moves the book
        for i in range(40):  # the member trades on, both ways, as the simulator does
            client.send("D", *new_order(f"x-{i}", "AAPL", "1" if i % 2 else "2", 1, None,
                                        tif="3"))  # fmt: skip
            time.sleep(0.02)
        client.send("D", *new_order("take-1", "AAPL", "1", 5, None, tif="3"))  # market, IOC
        answers = []
        while not any(parse(a).get(39) in ("2", "4") for a in answers):
            answers.append(client.next(where=lambda m: m.get(11) == "take-1"))
        fills = [parse(a) for a in answers if parse(a)[150] == "F"]
        assert fills and sum(int(f[32]) for f in fills) > 0, answers
        report = fills[-1]
    finally:
        client.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    log = SqliteEventLog(data / "sessions" / f"{DAY}.sqlite")
    ours = [er for p in sorted(log.end_offsets("executions")) for r in log.read("executions", p)
            if isinstance(er := decode(r.value), ExecutionReport)
            and er.order_id == int(report[37]) and er.exec_type == "trade"]  # fmt: skip
    assert ours and (ours[-1].cum_qty, ours[-1].leaves_qty) == (int(report[14]), int(report[151]))
    trades = [decode(r.value) for p in sorted(log.end_offsets("trades"))
              for r in log.read("trades", p)]  # fmt: skip
    mine = [t for t in trades if getattr(t, "buy_order_id", None) == int(report[37])]
    assert mine and all(t.sell_member != "USR01" for t in mine)  # the other side: the simulator
    # the member's trades are in the bars like the simulator's: none came behind the bars'
    # watermark (the simulator's orders go out on the clock, not a cycle ahead of it)
    late = [
        d
        for p in sorted(log.end_offsets("dlq"))
        for r in log.read("dlq", p)
        if (d := decode(r.value)).reason.startswith("late_trade")
    ]  # type: ignore[union-attr]
    assert not late, late[:3]
    bars = [decode(r.value) for p in sorted(log.end_offsets("bars.1s"))
            for r in log.read("bars.1s", p)]  # fmt: skip
    assert sum(b.volume for b in bars) == sum(t.qty for t in trades)  # type: ignore[union-attr]
