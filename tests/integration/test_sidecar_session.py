"""A whole session with every service in its own process on a real broker.

``marketlake sidecar all`` starts two matcher instances sharing one consumer
group (each owns two of the four partitions), the bar builder, and drives the
seeded session as the single writer of orders. Its topics must equal the
in-process run of the same date and seed, symbol by symbol. A second test
kills matcher instances with SIGKILL mid-session: the group rebalances, the
survivor rebuilds the partitions it is given, and still nothing is lost or
duplicated.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import pytest

from streaming.events import DeadLetter, decode_as
from streaming.refdata import load_calendar, load_members
from streaming.services.day import DayConfig, run_day
from streaming.transport.kafka import KafkaEventLog
from streaming.transport.namespace import NamespacedEventLog
from streaming.transport.sqlite import SqliteEventLog
from tests.support import free_port
from tests.support import short_calendar as write_short_calendar

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 20)
COMPARED = ("orders", "executions", "trades", "bbo", "bars.1s", "bars.1m", "bars.5m")


@pytest.fixture(scope="module")
def short_calendar(tmp_path_factory) -> Path:
    """The exchange's calendar with a half-hour session, so a session takes seconds."""
    return write_short_calendar(tmp_path_factory.mktemp("calendar"))


def _per_key(log, topic):
    """Each key's messages in order: what sharding must preserve."""
    out: dict[str | None, list[tuple[bytes, int]]] = {}
    for part in sorted(log.end_offsets(topic)):
        for rec in log.read(topic, part):
            out.setdefault(rec.key, []).append((rec.value, rec.timestamp))
    return out


def _dead_letters(log):
    letters = []
    for part in sorted(log.end_offsets("dlq")):
        for rec in log.read("dlq", part):
            letter = decode_as(rec.value, DeadLetter)
            letter.offset = letter.partition = None  # positions differ between transports
            letters.append(letter)
    return sorted(letters, key=lambda d: (d.ts, d.reason, d.payload))


def _embedded(tmp_path, securities, calendar_path, seed):
    cfg = DayConfig(DAY, seed, securities, load_members(), load_calendar(calendar_path))
    log = SqliteEventLog(tmp_path / "embedded.sqlite")
    run_day(log, cfg)
    return log


def _env(kafka, ns, calendar_path):
    return {
        **os.environ,
        **kafka.env(),
        "MARKETLAKE_KAFKA_PARTITIONS": "4",
        "MARKETLAKE_NAMESPACE": ns,
        "MARKETLAKE_CALENDAR_TOML": str(calendar_path),
        "MARKETLAKE_LOG_JSON": "1",
    }


def _assert_same_session(broker, embedded):
    for topic in COMPARED:
        assert _per_key(broker, topic) == _per_key(embedded, topic), topic
    assert _dead_letters(broker) == _dead_letters(embedded)


def test_sidecar_all_equals_the_in_process_session(kafka, tmp_path, securities, short_calendar):
    embedded = _embedded(tmp_path, securities, short_calendar, seed=3)
    ns = f"all{uuid.uuid4().hex[:6]}"
    cmd = [sys.executable, "-m", "orchestration.cli", "sidecar", "all", "--date", DAY.isoformat(),
           "--seed", "3", "--matchers", "2", "--port", str(free_port())]  # fmt: skip
    proc = subprocess.run(
        cmd, env=_env(kafka, ns, short_calendar), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "order requests" in proc.stdout
    assert proc.stderr.count('"partitions assigned"') >= 3  # both matchers, then the bars

    broker = NamespacedEventLog(
        KafkaEventLog(kafka.bootstrap, client_id=f"{ns}-check", security=kafka.client_config()),
        ns,
    )
    assert len(broker.end_offsets("orders")) == 4
    assert sum(len(v) for v in _per_key(broker, "trades").values()) > 100
    _assert_same_session(broker, embedded)
    broker.close()


def test_matcher_instances_killed_mid_session_rebalance_without_loss(
    kafka, tmp_path, securities, short_calendar
):
    embedded = _embedded(tmp_path, securities, short_calendar, seed=8)
    ns = f"kill{uuid.uuid4().hex[:6]}"
    env = _env(kafka, ns, short_calendar)
    base = [sys.executable, "-m", "orchestration.cli", "sidecar"]

    def matcher(name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*base, "matcher", "--shared", "--instance", name, "--port", str(free_port()),
             "--max-records", "300"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    bars = subprocess.Popen([*base, "bars", "--port", str(free_port())], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    matchers = {"m0": matcher("m0"), "m1": matcher("m1")}
    driver = subprocess.Popen(
        [*base, "simulator", "--date", DAY.isoformat(), "--seed", "8", "--port", str(free_port())],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    rng = random.Random(5)
    kills = 0
    try:
        for _ in range(3):
            time.sleep(rng.uniform(3.0, 6.0))
            if driver.poll() is not None:
                break
            victim = rng.choice(sorted(matchers))
            matchers[victim].send_signal(signal.SIGKILL)
            matchers[victim].wait(10)
            kills += 1
            matchers[victim] = matcher(victim)  # same instance id: fences the dead one
        _, errs = driver.communicate(timeout=600)
        assert driver.returncode == 0, errs[-3000:]
    finally:
        for proc in (*matchers.values(), bars):
            proc.send_signal(signal.SIGTERM)
        for proc in (*matchers.values(), bars):
            proc.wait(30)
    assert kills >= 2

    broker = NamespacedEventLog(
        KafkaEventLog(kafka.bootstrap, client_id=f"{ns}-check", security=kafka.client_config()),
        ns,
    )
    for topic in ("orders", "executions", "trades", "bbo"):
        assert _per_key(broker, topic) == _per_key(embedded, topic), topic
    broker.close()
