"""The gateways' event streams: filtering, resume without duplicates, conflation, cut-off."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.gateways.streams import StreamHub, Subscriber

pytestmark = pytest.mark.unit


def _sub(**kw) -> Subscriber:
    return Subscriber(kw.pop("member", "USR01"), frozenset(kw.pop("symbols", {"AAPL"})),
                      frozenset(kw.pop("channels", {"trades", "orders", "bbo", "session"})),
                      **kw)  # fmt: skip


def test_a_member_sees_its_own_orders_and_the_symbols_it_asked_for() -> None:
    hub = StreamHub()
    sub = _sub()
    hub.subscribe(sub)
    hub.publish("orders", "AAPL", "mine", member="USR01")
    hub.publish("orders", "AAPL", "bobs", member="USR02")
    hub.publish("trades", "MSFT", "other symbol")
    hub.publish("trades", "AAPL", "t1")
    hub.publish("session", None, "open")
    hub.publish("bars.1m", "AAPL", "not asked")
    assert [e.data for e in hub.take(sub)] == ["mine", "t1", "open"]


def test_book_tops_are_conflated_per_symbol_in_sequence_order() -> None:
    hub = StreamHub()
    sub = _sub(symbols={"AAPL", "MSFT"})
    hub.subscribe(sub)
    for i in range(100):
        hub.publish("bbo", "AAPL", f"a{i}")
        hub.publish("bbo", "MSFT", f"m{i}")
    hub.publish("trades", "AAPL", "t")
    got = hub.take(sub)
    assert [e.data for e in got] == ["a99", "m99", "t"]
    assert [e.seq for e in got] == sorted(e.seq for e in got)


def test_a_reader_that_falls_behind_is_cut_off_and_publishing_never_waits() -> None:
    hub = StreamHub()
    slow, fast = _sub(max_pending=10), _sub(max_pending=10_000)
    hub.subscribe(slow)
    hub.subscribe(fast)
    for i in range(1_000):
        hub.publish("trades", "AAPL", i)
    assert slow.overflowed and not slow.pending
    assert not fast.overflowed and len(hub.take(fast)) == 1_000


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 300), cut=st.integers(0, 300), backlog=st.integers(1, 400))
def test_resume_gives_exactly_what_was_missed_or_says_it_is_gone(n, cut, backlog) -> None:
    """A reader that saw up to ``cut`` and resumes: every later event once, in order, or a
    gap naming the oldest event still kept."""
    hub = StreamHub(backlog=backlog)
    for i in range(n):
        hub.publish("trades", "AAPL", i)
    since = min(cut, n)
    sub = _sub()
    gap = hub.subscribe(sub, since)
    got = [e.seq for e in hub.take(sub)]
    oldest = max(1, n - backlog + 1)
    if since + 1 < oldest:
        assert gap == oldest and got == []
    else:
        assert gap is None and got == list(range(since + 1, n + 1))
    hub.publish("trades", "AAPL", "live")
    assert [e.seq for e in hub.take(sub)] == [n + 1]


def test_closing_the_day_wakes_every_reader() -> None:
    hub = StreamHub()
    woken: list[str] = []
    sub = _sub(wake=lambda: woken.append("x"))
    hub.subscribe(sub)
    hub.close()
    assert sub.closed and woken


def test_a_paced_reader_collects_the_latest_tops_and_costs_the_publisher_nothing() -> None:
    """A screen's reader: its first collection is every followed symbol's top (a snapshot);
    later ones only what changed since, with trades in between, in sequence order. The
    publisher never offers it a top."""
    hub = StreamHub()
    hub.publish("bbo", "AAPL", "a0")
    hub.publish("bbo", "IBM", "not followed")
    sub = _sub(symbols={"AAPL", "MSFT"}, channels={"bbo", "trades"}, paced=True,
               wake=lambda: pytest.fail("a paced reader is not woken for tops"))  # fmt: skip
    hub.subscribe(sub)
    assert [e.data for e in hub.take(sub)] == ["a0"]
    for i in range(1, 50):
        hub.publish("bbo", "AAPL", f"a{i}")
        hub.publish("bbo", "MSFT", f"m{i}")
    assert not sub.latest and not sub.pending
    assert [e.data for e in hub.take(sub)] == ["a49", "m49"]
    assert hub.take(sub) == []  # nothing newer
    sub.wake = lambda: None
    hub.publish("bbo", "MSFT", "m50")
    hub.publish("trades", "AAPL", "t")
    got = hub.take(sub)
    assert [e.data for e in got] == ["m50", "t"]
    hub.unsubscribe(sub)
    hub.publish("trades", "AAPL", "after")
    assert hub.take(sub) == []


@settings(max_examples=200, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from(["bbo", "trades"]),
                                 st.sampled_from(["AAPL", "MSFT"])), max_size=60),
       since=st.integers(0, 60), takes=st.sets(st.integers(0, 60)))  # fmt: skip
def test_a_paced_reader_never_gets_a_number_twice_nor_misses_a_trade_or_the_last_top(
    events, since, takes
) -> None:
    """Resumed after ``since`` and collecting at arbitrary points: every trade after
    ``since`` once, each symbol's last top after ``since``, nothing twice, in order."""
    hub = StreamHub()
    half = len(events) // 2
    for channel, symbol in events[:half]:
        hub.publish(channel, symbol, None)
    since = min(since, hub.seq)
    sub = _sub(symbols={"AAPL", "MSFT"}, channels={"bbo", "trades"}, paced=True)
    assert hub.subscribe(sub, since) is None
    got = hub.take(sub)
    for i, (channel, symbol) in enumerate(events[half:]):
        hub.publish(channel, symbol, None)
        if i in takes:
            got += hub.take(sub)
    got += hub.take(sub)
    seqs = [e.seq for e in got]
    assert seqs == sorted(set(seqs)) and all(s > since for s in seqs)
    published = list(hub._backlog)
    trades = [e.seq for e in published if e.channel == "trades" and e.seq > since]
    assert sorted(s for s, e in zip(seqs, got, strict=True) if e.channel == "trades") == trades
    for symbol in ("AAPL", "MSFT"):
        tops = [e.seq for e in published if e.channel == "bbo" and e.symbol == symbol
                and e.seq > since]  # fmt: skip
        got_tops = [e.seq for e in got if e.channel == "bbo" and e.symbol == symbol]
        assert (got_tops[-1] if got_tops else None) == (tops[-1] if tops else None)
