"""The venue's journal is the promise: a request it accepted reaches the log, even across a crash.

Requests go to the log in batches from a writer thread; the caller hears
"accepted" once the request is journaled. Here the log refuses every write (a
full disk), the venue is abandoned with the request still queued, and a new
venue on the same day writes it from the journal: on the log once, answered
by the matcher, and its client order id still taken.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from streaming.events import NewOrder, decode
from streaming.gateways.order_entry import EntryRejected
from streaming.gateways.venue import Venue
from streaming.refdata import load_members, load_securities
from streaming.transport.base import Output
from streaming.transport.sqlite import SqliteEventLog
from tests.support import open_day_with_matcher

pytestmark = pytest.mark.integration


class FullDisk(SqliteEventLog):
    """A log that refuses every write, as a full disk would."""

    def produce(self, outputs: Sequence[Output]) -> dict[tuple[str, int], int]:
        raise OSError(28, "No space left on device")


def _orders(path: Path) -> list[NewOrder]:
    log = SqliteEventLog(path)
    out = [o for p in sorted(log.end_offsets("orders")) for r in log.read("orders", p)
           if isinstance(o := decode(r.value), NewOrder)]  # fmt: skip
    log.close()
    return out


def test_an_accepted_request_the_log_never_got_is_written_from_the_journal(tmp_path: Path) -> None:
    securities = load_securities()
    capital = {m.member_id: m.capital for m in load_members()}
    path, journal = tmp_path / "day.sqlite", tmp_path / "journal" / "2026-11-20.jsonl"
    clock = itertools.count(10)
    with open_day_with_matcher(path):
        first = Venue("2026-11-20", SqliteEventLog(path), lambda: next(clock), securities, capital,
                      reader=SqliteEventLog(path), journal=journal)  # fmt: skip
        answer = first.submit("USR01", "a-1", "AAPL", "buy", 5, 1_800_000, "limit", "day")
        assert answer is not None
        assert first.result(answer, "USR01", "a-1").order.status == "new"
        first.close()
        stuck = Venue("2026-11-20", FullDisk(path), lambda: next(clock), securities, capital,
                      reader=SqliteEventLog(path), journal=journal)  # fmt: skip
        assert stuck.submit("USR01", "a-2", "AAPL", "buy", 7, 1_790_000, "limit", "day",
                            wait=False) is None  # fmt: skip
        time.sleep(0.3)  # the writer tries, the disk refuses
        assert [o.qty for o in _orders(path)] == [5]
        stuck.close(flush_timeout=0.2)  # abandoned with the request queued: a crash
        again = Venue("2026-11-20", SqliteEventLog(path), lambda: next(clock), securities, capital,
                      reader=SqliteEventLog(path), journal=journal)  # fmt: skip
        try:
            assert [o.qty for o in _orders(path)] == [5, 7]  # written once, at the restart
            deadline = time.monotonic() + 10
            while again.order("USR01", "a-2").status != "new":
                assert time.monotonic() < deadline, again.order("USR01", "a-2")
                time.sleep(0.05)
            with pytest.raises(EntryRejected):  # the id is taken: a resent copy is refused
                again.submit("USR01", "a-2", "AAPL", "buy", 7, 1_790_000, "limit", "day")
        finally:
            again.close()
        # a further restart writes nothing again
        last = Venue("2026-11-20", SqliteEventLog(path), lambda: next(clock), securities, capital,
                     reader=SqliteEventLog(path), journal=journal)  # fmt: skip
        last.close()
        assert [o.qty for o in _orders(path)] == [5, 7]
