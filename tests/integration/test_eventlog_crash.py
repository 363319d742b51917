"""A process killed in the middle of a step loses nothing and duplicates nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from streaming.transport.base import Output
from streaming.transport.sqlite import SqliteEventLog

pytestmark = pytest.mark.integration

WORKER = textwrap.dedent(
    """
    import os, sys
    from streaming.transport.base import Output
    from streaming.transport.sqlite import SqliteEventLog

    path, crash_at = sys.argv[1], int(sys.argv[2])
    log = SqliteEventLog(path)
    seen = 0

    def handler(records):
        global seen
        outs = []
        for r in records:
            seen += 1
            outs.append(Output("out", r.key, r.value + b"!", r.timestamp))
            if seen == crash_at:
                os._exit(9)  # like kill -9: no cleanup, no commit
        return outs

    while log.step("worker", ["in"], handler, max_records=7):
        pass
    """
)


def test_kill_mid_step_then_restart_gives_exactly_once(tmp_path):
    path = tmp_path / "log.sqlite"
    log = SqliteEventLog(path)
    log.create_topics(["in", "out"])
    log.produce([Output("in", None, f"m{i}".encode(), i) for i in range(100)])
    log.close()
    for crash_at in (5, 13, 30, 8):  # each run dies inside a later batch
        proc = subprocess.run([sys.executable, "-c", WORKER, str(path), str(crash_at)])
        assert proc.returncode == 9
    proc = subprocess.run([sys.executable, "-c", WORKER, str(path), "0"])
    assert proc.returncode == 0
    log = SqliteEventLog(path)
    values = [r.value for r in log.read("out")]
    assert values == [f"m{i}!".encode() for i in range(100)]
    assert log.committed("worker", "in") == {0: 100}
    log.close()
