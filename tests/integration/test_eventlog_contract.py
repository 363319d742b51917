"""The EventLog contract, held by both transports: embedded SQLite and a real Kafka broker."""

from __future__ import annotations

import uuid

import pytest

from streaming.transport.base import Output, Record, UnknownTopicError, partition_for
from streaming.transport.kafka import KafkaEventLog
from streaming.transport.sqlite import SqliteEventLog

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "kafka"])
def log(request, tmp_path):
    if request.param == "sqlite":
        log = SqliteEventLog(tmp_path / "log.sqlite")
    else:
        kafka = request.getfixturevalue("kafka")
        log = KafkaEventLog(
            kafka.bootstrap,
            client_id=f"t{uuid.uuid4().hex[:8]}",
            idle_wait=5.0,
            security=kafka.client_config(),
        )
    yield log
    log.close()


@pytest.fixture
def name():
    """Unique topic names: a Kafka broker outlives a test."""
    suffix = uuid.uuid4().hex[:8]
    return lambda base: f"{base}-{suffix}"


def _out(topic, key, value, ts=0):
    return Output(topic, key, value, ts)


def test_produce_and_read_keep_order_keys_and_nanosecond_time(log, name):
    t = name("in")
    log.create_topics([t])
    log.produce([_out(t, "AAPL", b"a", 1_763_629_200_123_456_789), _out(t, None, b"b", 7)])
    log.produce([_out(t, "MSFT", b"c", 3)])
    recs = list(log.read(t))
    assert [(r.key, r.value, r.timestamp) for r in recs] == [
        ("AAPL", b"a", 1_763_629_200_123_456_789),
        (None, b"b", 7),
        ("MSFT", b"c", 3),
    ]
    offsets = [r.offset for r in recs]
    assert offsets == sorted(set(offsets))
    assert log.end_offsets(t)[0] > offsets[-1]
    assert [r.value for r in log.read(t, start=offsets[1], end=offsets[2])] == [b"b"]


def test_keys_land_in_the_same_partition_on_every_transport(log, name):
    t = name("keyed")
    log.create_topics([t], partitions=4)
    keys = [f"SYM{i}" for i in range(24)]
    log.produce([_out(t, k, k.encode()) for k in keys])
    seen = {}
    for part in range(4):
        for rec in log.read(t, part):
            seen[rec.key] = part
    assert seen == {k: partition_for(k, 4) for k in keys}


def test_unknown_topic_is_named(log, name):
    missing = name("missing")
    with pytest.raises(UnknownTopicError, match=missing):
        log.produce([_out(missing, None, b"x")])


def _upper(out_topic):
    def handler(records: list[Record]) -> list[Output]:
        return [_out(out_topic, r.key, r.value.upper(), r.timestamp) for r in records]

    return handler


def test_step_consumes_each_record_exactly_once(log, name):
    src, dst, group = name("in"), name("out"), name("g")
    log.create_topics([src, dst])
    log.produce([_out(src, None, bytes([97 + i]), i) for i in range(25)])
    assert log.step(group, [src], _upper(dst), max_records=10) == 10
    while log.step(group, [src], _upper(dst), max_records=10):
        pass
    assert [r.value for r in log.read(dst)] == [bytes([65 + i]) for i in range(25)]
    assert [r.timestamp for r in log.read(dst)] == list(range(25))
    last = list(log.read(src))[-1].offset
    assert log.committed(group, src) == {0: last + 1}
    log.produce([_out(src, None, b"z", 99)])
    assert log.step(group, [src], _upper(dst)) == 1
    assert log.step(group, [src], _upper(dst)) == 0
    assert [r.value for r in log.read(dst)][-1] == b"Z"


def test_a_failing_handler_commits_nothing(log, name):
    src, dst, group = name("in"), name("out"), name("g")
    log.create_topics([src, dst])
    log.produce([_out(src, None, b"x", 1), _out(src, None, b"y", 2)])

    def boom(records):
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        log.step(group, [src], boom)
    assert log.committed(group, src) == {0: 0}
    assert list(log.read(dst)) == []
    assert log.step(group, [src], _upper(dst)) == 2
    assert [r.value for r in log.read(dst)] == [b"X", b"Y"]


def test_inputs_are_aligned_on_event_time(log, name):
    ctl, src, group = name("ctl"), name("in"), name("g")
    log.create_topics([ctl, src])
    log.produce([_out(ctl, None, b"close", 100)])
    log.produce([_out(src, None, bytes([97 + i]), i * 20) for i in range(10)])
    order: list[int] = []

    def record(records):
        order.extend(r.timestamp for r in sorted(records, key=lambda r: r.timestamp))
        return []

    while log.step(group, [ctl, src], record, max_records=3):
        pass
    assert sorted(order) == sorted([i * 20 for i in range(10)] + [100])
    assert order.index(100) > order.index(80)  # the close never overtakes earlier orders


def test_discard_empties_topics_and_forgets_group_positions(log, name):
    src, out, kept = name("src"), name("out"), name("kept")
    group = name("grp")
    log.create_topics([src, out], partitions=2)
    log.create_topics([kept])
    log.produce([_out(src, f"K{i}", b"x", i) for i in range(10)] + [_out(kept, None, b"k", 1)])

    def copy(records: list[Record]) -> list[Output]:
        return [_out(out, r.key, r.value, r.timestamp) for r in records]

    while log.step(group, [src, kept], copy):
        pass
    assert sum(log.committed(group, src).values()) > 0

    log.discard([src, out], [group])

    assert list(log.read(src, 0)) == list(log.read(src, 1)) == list(log.read(out, 0)) == []
    assert log.partitions(src) == 2 and log.partitions(out) == 2
    assert [r.value for r in log.read(kept)] == [b"k"]
    assert log.committed(group, src) == {0: 0, 1: 0} and log.committed(group, kept) == {0: 0}
    # the topics work as new: the group consumes the kept topic again from the start
    log.produce([_out(src, "K1", b"y", 20)])
    seen: list[bytes] = []

    def collect(records: list[Record]) -> list[Output]:
        seen.extend(r.value for r in records)
        return []

    while log.step(group, [src, kept], collect):
        pass
    assert sorted(seen) == [b"k", b"y"]


def _tail_until(tail, n, seconds=20.0):
    import time

    got: list[Record] = []
    deadline = time.monotonic() + seconds
    while len(got) < n and time.monotonic() < deadline:
        got.extend(tail.poll(0.2))
    return got


def test_a_tail_follows_committed_records_from_its_offsets_and_only_those(log, name):
    a, b = name("a"), name("b")
    log.create_topics([a], partitions=2)
    log.create_topics([b])
    log.produce(
        [Output(a, None, b"a0-0", 1, 0), Output(a, None, b"a1-0", 1, 1), _out(b, None, b"b0")]
    )
    tail = log.tail({(a, 0): 1, (a, 1): 0, (b, 0): 0})  # a-0 from its second record
    try:
        log.produce([Output(a, None, b"a0-1", 2, 0), _out(b, None, b"b1", 2)])
        first = _tail_until(tail, 4)
        assert sorted(r.value for r in first) == [b"a0-1", b"a1-0", b"b0", b"b1"]
        # failed steps commit nothing: the tail never sees their outputs
        with pytest.raises(RuntimeError):
            log.step(name("g"), [b], lambda recs: (_ for _ in ()).throw(RuntimeError("no")) or [])
        log.produce([_out(b, None, b"b2", 3)])
        later = _tail_until(tail, 1)
        assert [(r.topic, r.value) for r in later] == [(b, b"b2")]
        assert tail.poll(0.3) == []
        per_partition = {}
        for r in first + later:
            per_partition.setdefault((r.topic, r.partition), []).append(r.offset)
        assert all(offs == sorted(offs) for offs in per_partition.values())
    finally:
        tail.close()
