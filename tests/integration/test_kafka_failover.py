"""Matcher processes on a real broker when something else goes wrong: a second instance of the
service starts, or the broker restarts. The committed output stays that of one uninterrupted
run: every order processed exactly once, no trade id twice.

- Two matchers without ``--shared`` on one namespace (instances a and b): the transactional
  id belongs to the service, not the instance, so the second fences the first, which exits
  with "another instance of 'matcher' took over (fenced)" instead of trading every order again.
- A broker stopped and started again under a connected, idle matcher: the matcher rides out
  the outage (transient errors are retried) and processes the orders sent after the restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from datetime import time as clock

import pytest

from streaming.calendar import TradingCalendar
from streaming.events import DeadLetter, Trade, decode_as
from streaming.refdata import load_members
from streaming.services.day import DayConfig, run_day
from streaming.topics import TOPICS
from streaming.transport.base import Output
from streaming.transport.kafka import KafkaEventLog
from streaming.transport.namespace import NamespacedEventLog
from streaming.transport.sqlite import SqliteEventLog
from tests.support import free_port, health_status

pytestmark = pytest.mark.integration

HALF_HOUR = TradingCalendar("MLX", "Europe/Berlin", clock(9, 0), clock(9, 30))
COMPARED = ("executions", "trades", "bbo")


def _values(log, topic: str) -> list[bytes]:
    return [r.value for r in log.read(topic)]


def _dead_letters(log) -> list[DeadLetter]:
    out = []
    for r in log.read("dlq"):
        letter = decode_as(r.value, DeadLetter)
        if letter.source_topic in ("orders", "control"):  # the matcher's, not the bar builder's
            letter.offset = None  # offsets differ between transports (transaction markers)
            out.append(letter)
    return out


class Session:
    """A seeded session run embedded, and its inputs on the broker in two parts."""

    def __init__(self, kafka, tmp_path, securities, seed: int) -> None:
        self.tmp_path = tmp_path
        cfg = DayConfig(date(2026, 11, 20), seed, securities, load_members(), HALF_HOUR)
        self.embedded = SqliteEventLog(tmp_path / "embedded.sqlite")
        run_day(self.embedded, cfg)
        self.ns = f"fo{uuid.uuid4().hex[:6]}"
        self.kafka = kafka
        broker = KafkaEventLog(
            kafka.bootstrap, client_id=f"{self.ns}-test", security=kafka.client_config()
        )
        self.log = NamespacedEventLog(broker, self.ns)
        self.log.create_topics(TOPICS, 1)
        orders = list(self.embedded.read("orders"))
        control = list(self.embedded.read("control"))
        # split where event time strictly advances, so the halves are a prefix and the rest
        cut = len(orders) // 2
        while orders[cut].timestamp == orders[cut - 1].timestamp:
            cut += 1
        split = orders[cut - 1].timestamp
        self.parts = [
            ([r for r in control if r.timestamp <= split], orders[:cut]),
            ([r for r in control if r.timestamp > split], orders[cut:]),
        ]
        # the second part's control (the close) comes after its orders in event time
        assert all(r.timestamp >= orders[-1].timestamp for r in self.parts[1][0])
        self.sent: dict[str, int] = {}

    def send(self, part: int) -> None:
        """Orders first, then control: a running matcher must not see the close before the
        orders it follows (each produce is visible to readers before the next starts)."""
        control, orders = self.parts[part]
        for topic, records in (("orders", orders), ("control", control)):
            if records:
                self.log.produce([Output(topic, r.key, r.value, r.timestamp) for r in records])
        self.sent = {t: list(self.log.read(t))[-1].offset for t in ("control", "orders")}

    def processed(self) -> bool:
        """Has the matcher group committed past everything sent so far?"""
        return all(self.log.committed("matcher", t)[0] > off for t, off in self.sent.items())

    def matcher(self, instance: str, port: int) -> subprocess.Popen[bytes]:
        """A matcher process; its stderr goes to a file (a broker outage makes librdkafka
        log a line per reconnect, which would fill a pipe and block the process)."""
        env = {**os.environ, **self.kafka.env(), "MARKETLAKE_NAMESPACE": self.ns}
        cmd = [sys.executable, "-m", "orchestration.cli", "sidecar", "matcher",
               "--instance", instance, "--port", str(port), "--max-records", "200"]  # fmt: skip
        with (self.tmp_path / f"matcher-{instance}.log").open("w") as err:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        proc.log = self.tmp_path / f"matcher-{instance}.log"  # type: ignore[attr-defined]
        return proc

    def assert_equals_embedded(self) -> None:
        for topic in COMPARED:
            assert _values(self.log, topic) == _values(self.embedded, topic), topic
        assert _dead_letters(self.log) == _dead_letters(self.embedded)
        trades = [decode_as(v, Trade) for v in _values(self.log, "trades")]
        ids = [(t.symbol, t.trade_id) for t in trades]  # trade ids count per symbol
        assert ids and len(ids) == len(set(ids)), "a trade id was committed twice"


def _stderr(proc) -> str:
    """What the process logged, without librdkafka's connection chatter."""
    lines = proc.log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if not line.startswith("%"))[-3000:]


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while health_status(port) != 200:
        assert proc.poll() is None, _stderr(proc)
        assert time.monotonic() < deadline, "the matcher did not become healthy"
        time.sleep(0.1)


def _wait(check, what: str, procs, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for proc in procs:
            assert proc.poll() is None, _stderr(proc)
        if time.monotonic() > deadline:
            for proc in procs:
                _stop(proc)
            raise AssertionError(what + "".join(_stderr(p) for p in procs))
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


def test_a_second_matcher_instance_fences_the_first(kafka, tmp_path, securities):
    s = Session(kafka, tmp_path, securities, seed=13)
    s.send(0)
    port_a, port_b = free_port(), free_port()
    a = s.matcher("a", port_a)
    b = None
    try:
        _wait_healthy(a, port_a)
        _wait(s.processed, "matcher a did not process the first half", [a])
        b = s.matcher("b", port_b)
        _wait_healthy(b, port_b)  # b holds the service's transactional id now
        s.send(1)  # both see these orders; only b may commit what it makes of them
        _wait(s.processed, "the second half was not processed", [b])
        assert a.wait(60) == 3  # fenced at its next transaction, or its idle check
        message = _stderr(a)
        assert "another instance of 'matcher' took over (fenced)" in message
        assert "Traceback" not in message
        assert b.poll() is None and health_status(port_b) == 200
        assert _stop(b) == 0
    finally:
        for proc in (a, b):
            if proc is not None:
                _stop(proc)
    s.assert_equals_embedded()
    s.log.close()


def test_a_connected_matcher_keeps_going_across_a_broker_restart(kafka, tmp_path, securities):
    s = Session(kafka, tmp_path, securities, seed=17)
    s.send(0)
    port = free_port()
    proc = s.matcher("0", port)
    try:
        _wait_healthy(proc, port)
        _wait(s.processed, "the first half was not processed", [proc])
        time.sleep(1.0)  # idle, connected, fetching
        kafka.stop()  # same port and data directory when it comes back
        time.sleep(3.0)  # the matcher meets the outage (disconnects, leader epochs)
        assert proc.poll() is None, _stderr(proc)
        kafka.start()
        s.send(1)  # sent after the restart
        _wait(s.processed, "orders sent after the restart were not processed", [proc])
        assert proc.poll() is None
        _wait(lambda: health_status(port) == 200, "the matcher is not healthy again", [proc], 90)
        assert _stop(proc) == 0, _stderr(proc)
    finally:
        _stop(proc)
    s.assert_equals_embedded()
    s.log.close()
