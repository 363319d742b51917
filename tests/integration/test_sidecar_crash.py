"""kill -9 the matcher process mid-session, again and again: no trade lost, none duplicated.

The orders and control events of a seeded session are put on a real Kafka
broker; the matcher runs as its own process (``marketlake sidecar matcher``)
and is killed with SIGKILL at random points, then restarted. Its committed
output must equal the uninterrupted embedded run byte for byte.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import date
from datetime import time as clock

import pytest

from streaming.calendar import TradingCalendar
from streaming.events import DeadLetter, decode_as
from streaming.refdata import load_members
from streaming.services.day import DayConfig, run_day
from streaming.topics import TOPICS
from streaming.transport.base import Output
from streaming.transport.kafka import KafkaEventLog
from streaming.transport.namespace import NamespacedEventLog
from streaming.transport.sqlite import SqliteEventLog
from tests.support import free_port

pytestmark = pytest.mark.integration

HALF_HOUR = TradingCalendar("MLX", "Europe/Berlin", clock(9, 0), clock(9, 30))


def _values(log, topic):
    return [r.value for r in log.read(topic)]


def _dead_letters(log):
    out = []
    for r in log.read("dlq"):
        letter = decode_as(r.value, DeadLetter)
        if letter.source_topic not in ("orders", "control"):
            continue  # the bar builder's late trades: not the matcher's
        letter.offset = None  # offsets differ between transports (transaction markers)
        out.append(letter)
    return out


def _get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, resp.read().decode()
    except OSError:
        return None, ""


def test_matcher_killed_repeatedly_loses_and_duplicates_nothing(kafka, tmp_path, securities):
    cfg = DayConfig(date(2026, 11, 20), 11, securities, load_members(), HALF_HOUR)
    embedded = SqliteEventLog(tmp_path / "embedded.sqlite")
    run_day(embedded, cfg)

    ns = f"crash{uuid.uuid4().hex[:6]}"
    broker = KafkaEventLog(kafka.bootstrap, client_id=f"{ns}-test", security=kafka.client_config())
    log = NamespacedEventLog(broker, ns)
    log.create_topics(TOPICS, 1)
    for topic in ("control", "orders"):
        log.produce([Output(topic, r.key, r.value, r.timestamp) for r in embedded.read(topic)])
    last = {t: list(log.read(t))[-1].offset for t in ("control", "orders")}

    port = free_port()
    env = {
        **os.environ,
        **kafka.env(),
        "MARKETLAKE_NAMESPACE": ns,
        "MARKETLAKE_LOG_JSON": "1",
    }
    cmd = [sys.executable, "-m", "orchestration.cli", "sidecar", "matcher",
           "--port", str(port), "--max-records", "250"]  # fmt: skip

    def start():
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def done() -> bool:
        return log.committed("matcher", "orders")[0] > last["orders"]

    done()  # the first look at a group's offsets connects a reader: take that time now
    rng = random.Random(7)
    kills_mid_session = 0
    for _ in range(4):
        proc = start()
        deadline = time.monotonic() + 60
        while _get(port, "/health")[0] != 200 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.1)
        # kill soon after it is up: a matcher that has caught a backlog up commits it
        # in one large transaction, which a later kill would find finished
        time.sleep(rng.uniform(0.0, 0.2))
        kills_mid_session += not done()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    proc = start()
    deadline = time.monotonic() + 180
    while not done():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "matcher did not finish the session"
        time.sleep(0.2)
    while (answer := _get(port, "/health"))[0] is None:  # the last start may still be importing
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    status, body = answer
    assert status == 200 and json.loads(body)["healthy"] is True
    status, metrics = _get(port, "/metrics")
    assert status == 200 and "marketlake_consumed_total" in metrics
    assert "marketlake_rebuilt_records" in metrics
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.stderr.read().decode()[-2000:]

    assert kills_mid_session >= 2
    for topic in ("executions", "trades", "bbo"):
        assert _values(log, topic) == _values(embedded, topic), topic
    assert _dead_letters(log) == _dead_letters(embedded)
    log.close()
