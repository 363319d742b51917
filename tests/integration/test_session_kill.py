"""Kill the simulation of a day at random points: every rerun gives the uninterrupted day.

A killed run leaves a log without the close (or with a close some service has
not consumed); the next run finds it truncated, discards it and simulates the
day again from its seed, so the log ends byte-identical to a run that was
never interrupted. The previous day's recommendations, kept in the same log,
survive the discard.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest

from streaming.events import Recommendation, encode
from streaming.services.day import ensure_session, session_state
from streaming.topics import TOPICS
from streaming.transport.base import Output
from streaming.transport.sqlite import SqliteEventLog
from tests.support.session_run import config

pytestmark = pytest.mark.integration

SEED = 5
ADVICE = Recommendation("r1", "AAPL", "buy", 0.9, "paper_eligible", 1, session_date="2026-11-20")


def _contents(path) -> dict[str, list[tuple[int, int, str | None, bytes, int]]]:
    log = SqliteEventLog(path)
    try:
        return {
            t: [
                (r.partition, r.offset, r.key, r.value, r.timestamp)
                for p in range(log.partitions(t))
                for r in log.read(t, p)
            ]
            for t in TOPICS
        }
    finally:
        log.close()


def _fresh(path) -> None:
    log = SqliteEventLog(path)
    log.create_topics(TOPICS)
    log.produce([Output("recommendations", "AAPL", encode(ADVICE), 1)])
    log.close()


def test_killed_simulations_rerun_to_the_uninterrupted_day(tmp_path):
    reference = tmp_path / "reference.sqlite"
    _fresh(reference)
    log = SqliteEventLog(reference)
    started = time.monotonic()
    assert ensure_session(log, config(SEED))[0] == "empty"
    full = time.monotonic() - started
    log.close()
    expected = _contents(reference)
    assert len(expected["orders"]) > 1_000 and expected["recommendations"]

    rng = random.Random(12)
    kills = truncated = 0
    for round_ in range(10):
        path = tmp_path / f"round{round_}.sqlite"
        _fresh(path)
        for _ in range(2):  # killed, then killed again while redoing it
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.session_run", str(path), str(SEED)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            assert proc.stdout is not None and proc.stdout.readline() == b"simulating\n"
            time.sleep(rng.uniform(0.05, full * 1.2))
            proc.kill()
            proc.wait(10)
            kills += 1
        log = SqliteEventLog(path)
        state = session_state(log)
        truncated += state == "truncated"
        found, _ = ensure_session(log, config(SEED))
        assert found == state
        log.close()
        assert _contents(path) == expected, f"round {round_} ({state}) differs"
    assert kills == 20 and truncated >= 5  # most kills land mid-session
