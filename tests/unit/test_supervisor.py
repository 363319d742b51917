"""The supervisor of ``sidecar all``: crashed children come back, with backoff; loops are reported."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest
from prometheus_client import CollectorRegistry

from orchestration.supervisor import Supervisor

pytestmark = pytest.mark.unit

CRASH = [sys.executable, "-c", "import sys; sys.exit(1)"]
SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


def _value(registry: CollectorRegistry, name: str, child: str) -> float:
    value = registry.get_sample_value(name, {"child": child})
    return 0.0 if value is None else value


def test_a_killed_child_is_restarted_with_a_new_pid():
    registry = CollectorRegistry()
    sup = Supervisor({"svc": SLEEP}, os.environ, registry, first_delay=0.05, interval=0.02)
    sup.start()
    try:
        first = sup.pids()["svc"]
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while sup.pids()["svc"] == first:
            assert time.monotonic() < deadline, "not restarted"
            time.sleep(0.02)
        assert _value(registry, "marketlake_child_restarts_total", "svc") == 1
        assert _value(registry, "marketlake_child_crash_loop", "svc") == 0
    finally:
        sup.stop(5)
    assert all(c.proc is not None and c.proc.poll() is not None for c in sup.children.values())


def test_a_child_that_keeps_crashing_is_a_crash_loop_with_growing_delays():
    registry = CollectorRegistry()
    sup = Supervisor({"bad": CRASH}, os.environ, registry, first_delay=0.02, max_delay=0.16,
                     loop_limit=4, loop_window=60, interval=0.01)  # fmt: skip
    sup.start()
    delays = []
    try:
        deadline = time.monotonic() + 20
        while _value(registry, "marketlake_child_restarts_total", "bad") < 6:
            assert time.monotonic() < deadline
            delays.append(sup.children["bad"].delay)
            time.sleep(0.01)
        assert _value(registry, "marketlake_child_crash_loop", "bad") == 1
    finally:
        sup.stop(5)
    seen = sorted(set(delays) - {0.0})
    assert seen[:4] == [0.02, 0.04, 0.08, 0.16] and max(seen) == 0.16  # doubling, capped


def test_a_child_refused_by_another_instance_is_not_restarted():
    registry = CollectorRegistry()
    refused = [sys.executable, "-c", "import sys; sys.exit(3)"]
    sup = Supervisor({"dup": refused}, os.environ, registry, first_delay=0.01, interval=0.01)
    sup.start()
    try:
        deadline = time.monotonic() + 5
        while not sup.children["dup"].given_up:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.1)
        assert _value(registry, "marketlake_child_restarts_total", "dup") == 0
    finally:
        sup.stop(5)
