"""The embedded log: one active instance per consumer group, and no transaction left open."""

from __future__ import annotations

import sqlite3

import pytest

from streaming.transport.base import Output, Record
from streaming.transport.sqlite import GroupBusyError, SqliteEventLog

pytestmark = pytest.mark.unit


def _copy(records: list[Record]) -> list[Output]:
    return [Output("out", r.key, r.value, r.timestamp) for r in records]


def _fill(path) -> SqliteEventLog:
    log = SqliteEventLog(path)
    log.create_topics(["in", "out"])
    log.produce([Output("in", "K", str(i).encode(), i) for i in range(10)])
    return log


def test_a_second_instance_of_a_group_is_refused_with_the_holder(tmp_path):
    path = tmp_path / "log.sqlite"
    first, second = _fill(path), SqliteEventLog(path)
    assert first.step("matcher", ["in"], _copy, max_records=4) == 4
    with pytest.raises(GroupBusyError, match=r"pid \d+.*'matcher'"):
        second.step("matcher", ["in"], _copy)
    with pytest.raises(GroupBusyError):
        second.assignment("matcher", ["in"])  # services claim before they rebuild
    assert second.step("bars", ["in"], lambda r: []) == 10  # another group is free
    first.close()
    while second.step("matcher", ["in"], _copy):  # the holder is gone: it may take over
        pass
    assert [r.value for r in second.read("out")] == [str(i).encode() for i in range(10)]
    second.close()


def test_a_failed_commit_leaves_no_open_transaction(tmp_path):
    log = _fill(tmp_path / "log.sqlite")
    db = log._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full now
    big = [Output("out", "K", b"x" * 100_000, 1)]
    with pytest.raises(sqlite3.Error, match="full"):
        log.step("matcher", ["in"], lambda records: big)
    assert not db.in_transaction
    assert log.committed("matcher", "in") == {0: 0}  # nothing of the step was kept
    db.execute(f"PRAGMA max_page_count = {pages * 100}")  # space again: the step runs
    assert log.step("matcher", ["in"], lambda records: big) == 10
    log.close()
