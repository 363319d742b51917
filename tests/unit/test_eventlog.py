"""The embedded event log: offsets, partitions, positions and the atomic step."""

from __future__ import annotations

import pytest

from streaming.transport.base import Output, Record, UnknownTopicError, partition_for
from streaming.transport.sqlite import SqliteEventLog

pytestmark = pytest.mark.unit


@pytest.fixture
def log(tmp_path):
    log = SqliteEventLog(tmp_path / "log.sqlite")
    log.create_topics(["in", "out"])
    log.create_topics(["keyed"], partitions=4)
    yield log
    log.close()


def _out(topic: str, key: str | None, value: bytes, ts: int = 0) -> Output:
    return Output(topic, key, value, ts)


def test_offsets_are_dense_per_partition_and_reads_are_ordered(log):
    log.produce([_out("in", None, b"a", 1), _out("in", None, b"b", 2)])
    log.produce([_out("in", None, b"c", 3)])
    recs = list(log.read("in"))
    assert [(r.offset, r.value, r.timestamp) for r in recs] == [
        (0, b"a", 1),
        (1, b"b", 2),
        (2, b"c", 3),
    ]
    assert log.end_offsets("in") == {0: 3}
    assert [r.value for r in log.read("in", start=1, end=2)] == [b"b"]


def test_keys_map_to_stable_partitions(log):
    keys = [f"SYM{i}" for i in range(20)]
    log.produce([_out("keyed", k, k.encode()) for k in keys])
    for part in range(4):
        for rec in log.read("keyed", part):
            assert partition_for(rec.key, 4) == part
    assert sum(log.end_offsets("keyed").values()) == 20
    assert partition_for("AAPL", 4) == partition_for("AAPL", 4)


def test_unknown_topic_is_a_clear_error(log):
    with pytest.raises(UnknownTopicError, match="nope"):
        log.produce([_out("nope", None, b"x")])
    with pytest.raises(UnknownTopicError, match="nope"):
        list(log.read("nope"))


def _upper(records: list[Record]) -> list[Output]:
    return [_out("out", r.key, r.value.upper(), r.timestamp) for r in records]


def test_step_consumes_each_record_exactly_once(log):
    log.produce([_out("in", None, bytes([97 + i])) for i in range(10)])
    assert log.step("g", ["in"], _upper, max_records=4) == 4
    assert log.committed("g", "in") == {0: 4}
    while log.step("g", ["in"], _upper, max_records=4):
        pass
    assert log.step("g", ["in"], _upper) == 0
    assert [r.value for r in log.read("out")] == [bytes([65 + i]) for i in range(10)]
    # another group has its own position
    assert log.step("h", ["in"], lambda recs: []) == 10


def test_failed_handler_commits_nothing(log):
    log.produce([_out("in", None, b"x"), _out("in", None, b"y")])

    def boom(records: list[Record]) -> list[Output]:
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        log.step("g", ["in"], boom)
    assert log.committed("g", "in") == {0: 0}
    assert log.end_offsets("out") == {0: 0}
    assert log.step("g", ["in"], _upper) == 2
    assert [r.value for r in log.read("out")] == [b"X", b"Y"]


def test_reopened_log_continues_offsets_and_positions(tmp_path):
    path = tmp_path / "log.sqlite"
    log = SqliteEventLog(path)
    log.create_topics(["in", "out"])
    log.produce([_out("in", None, b"a"), _out("in", None, b"b")])
    log.step("g", ["in"], _upper, max_records=1)
    log.close()
    again = SqliteEventLog(path)
    again.produce([_out("in", None, b"c")])
    assert again.end_offsets("in") == {0: 3}
    assert again.committed("g", "in") == {0: 1}
    while again.step("g", ["in"], _upper):
        pass
    assert [r.value for r in again.read("out")] == [b"A", b"B", b"C"]
    again.close()


def test_a_step_never_lets_one_input_run_ahead_in_event_time(log):
    # a control event at t=100 must wait until the orders before it were consumed
    log.create_topics(["ctl"])
    log.produce([_out("ctl", None, b"close", 100)])
    log.produce([_out("in", None, bytes([97 + i]), i * 20) for i in range(10)])
    batches: list[list[tuple[str, int]]] = []

    def record(records: list[Record]) -> list[Output]:
        batches.append([(r.topic, r.timestamp) for r in records])
        return []

    while log.step("g", ["ctl", "in"], record, max_records=3):
        pass
    flat = [ts for batch in batches for _, ts in batch]
    assert sorted(flat) == sorted([i * 20 for i in range(10)] + [100])  # each record once
    close_batch = next(b for b in batches if ("ctl", 100) in b)
    assert all(
        ("in", ts) in [x for b in batches[: batches.index(close_batch) + 1] for x in b]
        for ts in (0, 20, 40, 60, 80)
    )
    assert batches[0] == [("in", 0), ("in", 20), ("in", 40)]
