"""``sidecar all`` on the embedded log: kill -9 its matcher child mid-session, twice; the
supervisor restarts it and the session still equals the in-process run byte for byte."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from streaming.refdata import load_calendar, load_members
from streaming.services.day import DayConfig, run_day
from streaming.transport.sqlite import SqliteEventLog
from tests.support import free_port, health_status, short_calendar

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 20)
COMPARED = ("orders", "executions", "trades", "bbo", "bars.1s", "bars.1m", "dlq")


def _children(pid: int) -> dict[int, str]:
    """Child processes of ``pid``: their command lines."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out[int(entry.name)] = cmdline
    return out


def _matcher_pid(pid: int) -> int | None:
    return next((p for p, cmd in _children(pid).items() if "sidecar matcher" in cmd), None)


def test_a_killed_matcher_child_is_restarted_and_nothing_is_lost(tmp_path, securities):
    calendar = short_calendar(tmp_path, close="10:30")
    embedded = SqliteEventLog(tmp_path / "embedded.sqlite")
    run_day(embedded, DayConfig(DAY, 9, securities, load_members(), load_calendar(calendar)))

    data = tmp_path / "data"
    env = {**os.environ, "MARKETLAKE_DATA_DIR": str(data), "MARKETLAKE_CALENDAR_TOML": str(calendar),
           "MARKETLAKE_LOG_JSON": "1"}  # fmt: skip
    errors = (tmp_path / "stderr.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "sidecar", "all", "--date", DAY.isoformat(),
         "--seed", "9", "--port", str(free_port())],
        env=env, stdout=subprocess.DEVNULL, stderr=errors,
    )  # fmt: skip
    killed: list[int] = []
    deadline = time.monotonic() + 300
    while len(killed) < 2 and proc.poll() is None and time.monotonic() < deadline:
        pid = _matcher_pid(proc.pid)
        path = data / "eventlog.sqlite"
        if pid is not None and pid not in killed and path.exists():
            log = SqliteEventLog(path)
            try:
                log.create_topics(["orders"])
                done = log.committed("matcher", "orders")[0]
            finally:
                log.close()
            if done > 2_000 * (len(killed) + 1):  # mid-session, with some of it committed
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.05)
    proc.wait(300)
    errors.close()
    err = (tmp_path / "stderr.log").read_text()
    assert proc.returncode == 0, err[-3000:]
    assert len(killed) == 2, "the session ended before both kills"
    assert err.count("child exited; restarting") >= 2

    live = SqliteEventLog(data / "eventlog.sqlite")
    for topic in COMPARED:
        assert [r.value for r in live.read(topic)] == [r.value for r in embedded.read(topic)], topic
    live.close()
    embedded.close()


def test_a_second_matcher_on_the_same_log_is_refused(tmp_path, securities):
    calendar = short_calendar(tmp_path)
    data = tmp_path / "data"
    log = SqliteEventLog(data / "eventlog.sqlite")
    run_day(log, DayConfig(DAY, 4, securities, load_members(), load_calendar(calendar)))
    log.close()
    env = {**os.environ, "MARKETLAKE_DATA_DIR": str(data), "MARKETLAKE_LOG_JSON": "1"}

    def matcher(name: str, port: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "orchestration.cli", "sidecar", "matcher", "--instance", name,
             "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip

    port = free_port()
    first = matcher("a", port)
    try:
        deadline = time.monotonic() + 60
        while health_status(port) != 200:  # healthy: it holds the group and has rebuilt
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        second = matcher("b", free_port())
        _, err = second.communicate(timeout=60)
        assert second.returncode == 3
        assert f"(pid {first.pid}) already consumes as group 'matcher'" in err.decode()
        assert first.poll() is None  # the first keeps running
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
