"""The day's event streams for the gateways' subscribers: numbered, resumable, never blocking.

The venue's follower thread publishes every book top, trade, bar, session
change and order update here, each numbered in the order it was read (one
sequence per day). A subscriber (a WebSocket, a screen) names symbols and
channels; it gets what matches, and a member's order updates only if they
are its own. A reconnecting subscriber passes the last number it saw and is
given what it missed from a bounded backlog, with no duplicate; if that is
older than the backlog it is told so (a ``gap``) and starts from a snapshot.

Publishing never waits for a subscriber: book tops are conflated per symbol
(a slow reader gets the latest, not every one), and a subscriber whose queue
of other events overflows is cut off with a notice (it can resume from its
last number). The core's pace is never a reader's.

A paced subscriber (a screen: it wants the book a few times a second, not at
the matcher's rate) costs the publisher nothing for book tops: the hub keeps
the latest top per symbol, and the reader collects the ones newer than what it
sent when its interval comes round (its first collection is the whole market's
tops, a snapshot). Only its other channels are offered to it event by event.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Channel = Literal["bbo", "trades", "bars.1s", "bars.1m", "bars.5m", "bars.15m", "bars.3m",
                  "orders", "session"]  # fmt: skip
CHANNELS: frozenset[str] = frozenset(Channel.__args__)  # type: ignore[attr-defined]
CONFLATED = frozenset({"bbo"})
"""Channels where only the latest event per symbol matters to a reader that fell behind."""


@dataclass(frozen=True)
class StreamEvent:
    seq: int
    channel: str
    symbol: str | None  # None: the whole market (session changes)
    member: str | None  # set: only that member may see it (its order updates)
    data: object
    # the event as sent, encoded once for every reader (filled by the first to send it)
    wire: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class Subscriber:
    """One reader: what it wants, what waits for it, and how to wake it."""

    member: str | None
    symbols: frozenset[str]
    channels: frozenset[str]
    wake: Callable[[], object] = lambda: None
    max_pending: int = 10_000
    pending: deque[StreamEvent] = field(default_factory=deque)
    latest: dict[tuple[str, str | None], StreamEvent] = field(default_factory=dict)
    overflowed: bool = False
    closed: bool = False
    woken: bool = False  # woken and not yet taken: a burst of events wakes the reader once
    paced: bool = False  # collects conflated channels from the hub (see StreamHub.take)
    sent: dict[tuple[str, str | None], int] = field(default_factory=dict)  # paced: seq sent
    floor: int = 0  # paced: nothing at or below this number (the resume point) is collected

    def wants(self, ev: StreamEvent) -> bool:
        if ev.channel not in self.channels:
            return False
        if ev.member is not None and ev.member != self.member:
            return False
        return ev.symbol is None or ev.symbol in self.symbols

    def offer(self, ev: StreamEvent) -> None:
        """Queue ``ev`` if wanted (the publisher's thread; never blocks)."""
        if self.overflowed or self.closed or not self.wants(ev):
            return
        if ev.channel in CONFLATED:
            self.latest[(ev.channel, ev.symbol)] = ev
        elif len(self.pending) >= self.max_pending:
            self.overflowed = True
            self.pending.clear()
            self.latest.clear()
        else:
            self.pending.append(ev)
        if not self.woken:
            self.woken = True
            self.wake()


class StreamHub:
    """The day's numbered events, a backlog for resumes, and the subscribers."""

    def __init__(self, backlog: int = 50_000, epoch: int | None = None) -> None:
        # numbers are the process's own: a reader resuming across a gateway restart (another
        # epoch) cannot trust them and is told it has a gap
        self.epoch = epoch if epoch is not None else time.time_ns()
        self._lock = threading.Lock()
        self._backlog: deque[StreamEvent] = deque(maxlen=backlog)
        self._subscribers: list[Subscriber] = []
        self._by_channel: dict[str, list[Subscriber]] = {}  # who is offered each channel
        self._latest: dict[tuple[str, str | None], StreamEvent] = {}  # conflated channels
        self.seq = 0

    def publish(self, channel: str, symbol: str | None, data: object,
                member: str | None = None) -> StreamEvent:  # fmt: skip
        with self._lock:
            self.seq += 1
            ev = StreamEvent(self.seq, channel, symbol, member, data)
            self._backlog.append(ev)
            if channel in CONFLATED:
                self._latest[(channel, symbol)] = ev
            for sub in self._by_channel.get(channel, ()):
                sub.offer(ev)
        return ev

    def _offered(self, sub: Subscriber) -> set[str]:
        return set(sub.channels - CONFLATED) if sub.paced else set(sub.channels)

    def subscribe(
        self, sub: Subscriber, since: int | None = None, epoch: int | None = None
    ) -> int | None:
        """Add ``sub``; with ``since``, queue what it missed after that number first.

        Returns None if resumed (or nothing asked), else the oldest number still
        kept: the events between ``since`` and it are gone (the reader starts over).
        ``epoch``: the one the reader's numbers came from (another one is a gap).
        """
        with self._lock:
            gap = None
            oldest_kept = self._backlog[0].seq if self._backlog else self.seq + 1
            if since is not None and ((epoch is not None and epoch != self.epoch)
                                      or since > self.seq):  # fmt: skip
                gap = oldest_kept
            elif since is not None and since < self.seq:
                oldest = self._backlog[0].seq if self._backlog else self.seq + 1
                if since + 1 < oldest:
                    gap = oldest
                else:
                    for ev in self._backlog:
                        if ev.seq > since and not (sub.paced and ev.channel in CONFLATED):
                            sub.offer(ev)
            if sub.paced and since is not None and gap is None:
                sub.floor = since
            self._subscribers.append(sub)
            for channel in self._offered(sub):
                self._by_channel.setdefault(channel, []).append(sub)
            return gap

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)
                for channel in self._offered(sub):
                    self._by_channel[channel].remove(sub)

    def take(self, sub: Subscriber) -> list[StreamEvent]:
        """Everything waiting for ``sub``, in sequence order (conflated tops included; for a
        paced reader, the latest of each it follows that is newer than what it was sent)."""
        with self._lock:
            out = list(sub.pending) + list(sub.latest.values())
            if sub.paced:
                for key, ev in self._latest.items():
                    if ev.seq > max(sub.floor, sub.sent.get(key, 0)) and sub.wants(ev):
                        out.append(ev)
                        sub.sent[key] = ev.seq
            sub.pending.clear()
            sub.latest.clear()
            sub.woken = False
        return sorted(out, key=lambda ev: ev.seq)

    def close(self) -> None:
        """The day is over: every subscriber is woken to find itself closed."""
        with self._lock:
            subs, self._subscribers = self._subscribers, []
            self._by_channel.clear()
        for sub in subs:
            sub.closed = True
            sub.wake()
