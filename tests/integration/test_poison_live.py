"""Poison records on the live log (SQLite file and a real Kafka broker): the matcher process
dead-letters each one, keeps running, trades the valid orders as if alone, and the day lands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date

import pytest

from lake.catalog import LakeConfig, open_catalog
from lake.raw_landing import land_day
from streaming.events import DeadLetter, SessionControl, decode_as, encode
from streaming.matcher import Matcher
from streaming.refdata import load_members
from streaming.services.handlers import MatcherService
from streaming.topics import TOPICS
from streaming.transport.base import Output
from streaming.transport.sqlite import SqliteEventLog
from tests.support import free_port, health_status
from tests.support.hostile import corpus

pytestmark = pytest.mark.integration

KAFKA_MAX_BYTES = 900_000  # the broker refuses larger messages itself (message.max.bytes)


def _clean_trades(securities, valid: list[bytes]) -> list[bytes]:
    log = SqliteEventLog(":memory:")
    log.create_topics(TOPICS)
    log.produce([Output("control", None, encode(SessionControl("open", 1)), 1)])
    log.produce([Output("orders", "AAPL", v, 10 + 2 * i + 1) for i, v in enumerate(valid)])
    members = [m.member_id for m in load_members()]
    handler = MatcherService(Matcher(securities, members, band_pct=20.0))
    while log.step("matcher", MatcherService.inputs, handler):
        pass
    return [r.value for r in log.read("trades")]


@pytest.mark.parametrize("transport", ["sqlite", "kafka"])
def test_the_matcher_process_survives_every_poison_record(transport, request, tmp_path, securities):
    c = corpus(securities, per_category=3)
    mixed = list(c.mixed)
    hostile = {2 * k: line for k, (_, line) in enumerate(c.hostile)}
    env = {**os.environ, "MARKETLAKE_DATA_DIR": str(tmp_path / "data"), "MARKETLAKE_LOG_JSON": "1"}
    if transport == "kafka":
        from streaming.transport.kafka import KafkaEventLog
        from streaming.transport.namespace import NamespacedEventLog

        kafka = request.getfixturevalue("kafka")
        ns = f"poison{uuid.uuid4().hex[:6]}"
        broker = KafkaEventLog(
            kafka.bootstrap, client_id=f"{ns}-test", security=kafka.client_config()
        )
        log = NamespacedEventLog(broker, ns)
        env.update(kafka.env(), MARKETLAKE_NAMESPACE=ns)
        keep = [i for i, line in enumerate(mixed) if len(line) <= KAFKA_MAX_BYTES]
        hostile = {i: hostile[i] for i in keep if i in hostile}
        mixed = [mixed[i] for i in keep]
        index = {old: new for new, old in enumerate(keep)}
        hostile = {index[i]: line for i, line in hostile.items()}
    else:
        log = SqliteEventLog(tmp_path / "data" / "eventlog.sqlite")
    log.create_topics(TOPICS, 1)
    log.produce([Output("control", None, encode(SessionControl("open", 1)), 1)])
    log.produce([Output("orders", "AAPL", line, 10 + i) for i, line in enumerate(mixed)])
    offsets = [r.offset for r in log.read("orders")]
    end = offsets[-1] + 1

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "sidecar", "matcher", "--port", str(port),
         "--max-records", "50"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while log.committed("matcher", "orders")[0] < end:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the matcher did not get through the poison"
            time.sleep(0.2)
        while health_status(port) != 200:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0

    letters = [decode_as(r.value, DeadLetter) for r in log.read("dlq")]
    by_offset: dict[int, list[DeadLetter]] = {}
    for letter in letters:
        assert letter.offset is not None
        by_offset.setdefault(letter.offset, []).append(letter)
    for i, line in hostile.items():
        [letter] = by_offset[offsets[i]]
        assert letter.payload == line and letter.source_topic == "orders"
        assert letter.reason.split(":")[0] in ("undecodable", "rejected", "unexpected_event")
    assert len(letters) == len(hostile)
    assert [r.value for r in log.read("trades")] == _clean_trades(securities, c.valid)

    catalog = open_catalog(LakeConfig.local("t", tmp_path / "cat.sqlite", tmp_path / "wh"))
    published = land_day(log, catalog, date(2026, 11, 20))
    assert published["raw.dlq"].rows >= len(hostile)
    assert published["raw.trades"].rows == len(_clean_trades(securities, c.valid))
    log.close()
