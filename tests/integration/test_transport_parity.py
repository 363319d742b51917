"""The same seeded session on the embedded log and on a real Kafka broker gives the same results."""

from __future__ import annotations

from datetime import date, time

import pytest

from streaming.calendar import TradingCalendar
from streaming.events import DeadLetter, decode_as
from streaming.refdata import load_members
from streaming.services.day import DayConfig, run_day
from streaming.topics import TOPICS
from streaming.transport.kafka import KafkaEventLog
from streaming.transport.namespace import NamespacedEventLog
from streaming.transport.sqlite import SqliteEventLog

pytestmark = pytest.mark.integration

HALF_HOUR = TradingCalendar("MLX", "Europe/Berlin", time(9, 0), time(9, 30))
COMPARED = ("orders", "executions", "trades", "bbo", "bars.1s", "bars.1m", "bars.5m", "dlq")


def _topics(log, topics):
    return {
        t: [
            (r.key, r.value, r.timestamp)
            for p in sorted(log.end_offsets(t))
            for r in log.read(t, p)
        ]
        for t in topics
    }


def _without_offsets(rows):
    out = []
    for key, value, ts in rows:
        letter = decode_as(value, DeadLetter)
        letter.offset = None
        out.append((key, letter, ts))
    return out


def test_kafka_and_embedded_runs_are_identical(kafka, tmp_path, securities):
    cfg = DayConfig(date(2026, 11, 20), 5, securities, load_members(), HALF_HOUR)
    embedded = SqliteEventLog(tmp_path / "log.sqlite")
    embedded_result = run_day(embedded, cfg)
    expected = _topics(embedded, COMPARED)
    broker = KafkaEventLog(kafka.bootstrap, client_id="parity", security=kafka.client_config())
    result = run_day(broker, cfg)
    got = _topics(broker, COMPARED)
    broker.close()
    assert len(expected["trades"]) > 100 and len(expected["bars.1m"]) > 100
    for topic in COMPARED[:-1]:
        assert got[topic] == expected[topic], topic
    # dead letters agree on everything but the source offset (Kafka's count transaction markers)
    assert _without_offsets(got["dlq"]) == _without_offsets(expected["dlq"])
    assert len(got["dlq"]) > 0
    assert {m["member"]: m["pnl"] for m in result.members.summary()} == {
        m["member"]: m["pnl"] for m in embedded_result.members.summary()
    }


def _by_key(rows):
    per_key: dict[str | None, list[tuple[bytes, int]]] = {}
    for key, value, ts in rows:
        per_key.setdefault(key, []).append((value, ts))
    return per_key


def test_four_partitions_with_a_matcher_per_partition_equal_one(kafka, tmp_path, securities):
    """Sharding by partition changes nothing a symbol sees: same trades, bars, P&L."""
    cfg = DayConfig(date(2026, 11, 20), 9, securities, load_members(), HALF_HOUR)
    embedded = SqliteEventLog(tmp_path / "log.sqlite")
    embedded_result = run_day(embedded, cfg)
    expected = _topics(embedded, COMPARED[:-1])

    broker = NamespacedEventLog(
        KafkaEventLog(kafka.bootstrap, client_id="parity4", security=kafka.client_config()),
        "parity4",
    )
    broker.create_topics(TOPICS, 4)
    result = run_day(broker, cfg)
    got = _topics(broker, COMPARED[:-1])
    assert len(broker.end_offsets("trades")) == 4
    assert sum(1 for ends in broker.end_offsets("trades").values() if ends > 0) > 1
    broker.close()

    assert len(result.matcher.shards) == 4
    for topic in COMPARED[:-1]:
        assert _by_key(got[topic]) == _by_key(expected[topic]), topic
    assert result.books_snapshot() == embedded_result.books_snapshot()
    assert {m["member"]: m["pnl"] for m in result.members.summary()} == {
        m["member"]: m["pnl"] for m in embedded_result.members.summary()
    }
