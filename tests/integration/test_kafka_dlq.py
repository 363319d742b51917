"""Poison messages on a real broker go to dlq with the reason, the source position and the bytes."""

from __future__ import annotations

import uuid

import pytest

from streaming.events import (
    DeadLetter,
    ExecutionReport,
    NewOrder,
    SessionControl,
    Trade,
    decode_as,
    encode,
)
from streaming.matcher import Matcher
from streaming.services.handlers import MatcherService
from streaming.topics import TOPICS
from streaming.transport.base import Output
from streaming.transport.kafka import KafkaEventLog
from streaming.transport.namespace import NamespacedEventLog

pytestmark = pytest.mark.integration


def test_poison_messages_are_dead_lettered_and_the_rest_processed(kafka, securities):
    ns = f"dlq{uuid.uuid4().hex[:6]}"
    broker = KafkaEventLog(kafka.bootstrap, client_id=ns, security=kafka.client_config())
    log = NamespacedEventLog(broker, ns)
    log.create_topics(TOPICS, 1)
    price = next(s for s in securities if s.symbol == "AAPL").reference_price
    log.produce([Output("control", None, encode(SessionControl("open", 1)), 1)])
    stream = [
        encode(NewOrder(1, "USR01", "AAPL", "sell", 10, price, ts=10)),
        b"\xff\xfe not json at all",
        encode(Trade(1, "AAPL", price, 1, "buy", 1, 2, "USR01", "USR02", 12)),  # not an order
        b'{"type":"new","order_id":"x","member":"USR02"}',  # fails validation
        encode(NewOrder(2, "USR02", "AAPL", "buy", 5, price + 1, ts=14)),  # off the tick
        encode(NewOrder(3, "USR02", "AAPL", "buy", 4, price, ts=15)),  # trades
    ]
    log.produce([Output("orders", "AAPL", value, 10 + i) for i, value in enumerate(stream)])
    handler = MatcherService(Matcher(securities, ["USR01", "USR02"], band_pct=None))
    while log.step("matcher", MatcherService.inputs, handler, max_records=2):
        pass

    orders = list(log.read("orders"))
    letters = [decode_as(r.value, DeadLetter) for r in log.read("dlq")]
    by_offset = {d.offset: d for d in letters}
    assert [d.reason.split(":")[0] for d in letters] == [
        "undecodable",
        "unexpected_event",
        "undecodable",
        "rejected",
    ]
    for i, rec in enumerate(orders):
        if i in (1, 2, 3, 4):
            letter = by_offset[rec.offset]
            assert letter.payload == rec.value and letter.source_topic == "orders"
            assert letter.partition == rec.partition
    assert "tick_size" in by_offset[orders[4].offset].reason
    trades = [decode_as(r.value, Trade) for r in log.read("trades")]
    assert [(t.qty, t.buy_order_id, t.sell_order_id) for t in trades] == [(4, 3, 1)]
    reports = [decode_as(r.value, ExecutionReport) for r in log.read("executions")]
    assert [(e.order_id, e.exec_type) for e in reports] == [
        (1, "new"),
        (2, "rejected"),
        (3, "new"),
        (3, "trade"),
        (1, "trade"),
    ]
    log.close()
