"""The exchange (and its FIX gateway) killed with SIGKILL while a member streams orders.

A QuickFIX initiator sends a steady stream of NewOrderSingles; mid-stream the
exchange's whole process group is killed. Restarted on the same day, the
exchange resumes the session, the gateway rebuilds its client order ids from
its journal and the day's log, and the member's engine reconnects on its own:
FIX sequence numbers go on (no reset), what the gateway never received is
resent by the engine, what it had already entered is not entered twice, and
every order gets its acknowledgement exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from streaming.accounts import AccountStore
from streaming.events import GATEWAY_ID_BASE, NewOrder, decode
from streaming.gateways.fix_client import FixClient, new_order, parse
from streaming.transport.sqlite import SqliteEventLog
from tests.support import exchange_env, free_port, short_calendar

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 20)
PASSWORD = "streams-orders-all-day"
N = 150


def _exchange(env: dict[str, str], fix_port: int, errors: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "exchange", "run", "--from", DAY.isoformat(),
         "--days", "1", "--speed", "60", "--no-simulator", "--no-members",
         "--port", str(free_port()), "--fix-port", str(fix_port)],
        env=env, stdout=subprocess.DEVNULL, stderr=errors.open("w"), text=True,
        start_new_session=True,
    )  # fmt: skip


def test_a_killed_gateway_loses_and_duplicates_no_order(tmp_path: Path) -> None:
    data = tmp_path / "data"
    AccountStore(data / "accounts.sqlite").add("alice", "trader", PASSWORD, member="USR01")
    env = exchange_env(data, short_calendar(tmp_path))
    fix_port = free_port()
    first = _exchange(env, fix_port, tmp_path / "first.err")
    client = FixClient(tmp_path, fix_port, "USR01", "alice", PASSWORD)
    second: subprocess.Popen[str] | None = None
    try:
        client.start(wait=None)
        assert client.logged_on.wait(60), (tmp_path / "first.err").read_text()[-3000:]
        # wait for the open: a probe order is accepted
        deadline = time.monotonic() + 120
        probes_on_log = 0  # probes the matcher answered (before the open it rejects them)
        while True:
            assert time.monotonic() < deadline, "the session did not open"
            probe = f"probe-{time.monotonic_ns()}"
            client.send("D", *new_order(probe, "AAPL", "1", 1, "190.00"))
            # the first requests wait (up to 30 s) for the day's venue while the exchange starts
            answer = parse(client.next(timeout=60, where=lambda m, p=probe: m.get(11) == p))
            probes_on_log += answer.get(37) != "NONE"
            if answer.get(150) == "0":
                break
            time.sleep(0.5)
        logons_before = client.admin.qsize()
        for i in range(N):
            if i == N // 2:
                os.killpg(first.pid, signal.SIGKILL)  # the exchange, its gateway, its services
                first.communicate(timeout=30)
                second = _exchange(env, fix_port, tmp_path / "second.err")
            client.send("D", *new_order(f"c-{i}", "AAPL", "1", 1, "190.00"))
            time.sleep(0.02)
        answers: dict[str, list[dict[int, str]]] = {}
        deadline = time.monotonic() + 120
        while sum(1 for k in answers if k.startswith("c-")) < N and time.monotonic() < deadline:
            try:
                msg = parse(client.next(timeout=5))
            except Exception:
                continue
            answers.setdefault(msg.get(11, ""), []).append(msg)
        logons = [m for m in client.drain_admin() if m.get(35) == "A"]
    finally:
        client.stop()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=120)
    missing = [f"c-{i}" for i in range(N) if f"c-{i}" not in answers]
    assert not missing, (f"no answer to {len(missing)} orders: {missing[:5]}",
                         (tmp_path / "second.err").read_text()[-3000:])  # fmt: skip
    acks = {cl: [m for m in msgs if m.get(150) == "0"] for cl, msgs in answers.items()}
    # each order acknowledged exactly once; a resent copy of one already entered is refused
    # as a duplicate client order id, never entered again
    for cl in (f"c-{i}" for i in range(N)):
        assert len(acks[cl]) == 1, (cl, [(m.get(150), m.get(58), m.get(43)) for m in answers[cl]])
        others = [m for m in answers[cl] if m.get(150) != "0"]
        assert all(m.get(150) == "8" and m.get(103) == "6" for m in others), others
    log = SqliteEventLog(data / "sessions" / f"{DAY}.sqlite")
    entered = [
        o
        for p in sorted(log.end_offsets("orders"))
        for r in log.read("orders", p)
        if isinstance(o := decode(r.value), NewOrder) and o.order_id >= GATEWAY_ID_BASE
    ]
    ids = [o.order_id for o in entered]
    assert len(ids) == len(set(ids))  # no order id twice
    assert len(entered) == N + probes_on_log
    # the FIX session went on: the logon after the restart did not start the numbers over
    assert len(logons) > logons_before or logons, logons
    after = logons[-1]
    assert int(after[34]) > 2 and after.get(141) != "Y", after
