"""The event log interface every transport implements (embedded SQLite log, Kafka).

It is deliberately the subset of Kafka the live core needs: keyed topics with
partitions and offsets, consumer-group positions, and one atomic
consume-process-produce ``step`` (Kafka: a transaction with the consumed
offsets sent to it; SQLite: one database transaction). Services are written
against this interface only, so the same code runs on both.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol

import msgspec


class Record(msgspec.Struct, frozen=True, gc=False):
    """One stored message; ``timestamp`` is the event time in ns."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    timestamp: int


class Output(msgspec.Struct, frozen=True, gc=False):
    """A message to produce: the partition follows from ``key`` unless ``partition`` is given."""

    topic: str
    key: str | None
    value: bytes
    timestamp: int
    partition: int | None = None  # explicit: broadcasts (one copy per partition)


Handler = Callable[[list[Record]], Sequence[Output]]


def partition_for(key: str | None, partitions: int) -> int:
    """Stable key -> partition mapping (CRC32), the same in every process and run."""
    if key is None or partitions <= 1:
        return 0
    return zlib.crc32(key.encode()) % partitions


def target_partition(out: Output, partitions: int) -> int:
    """Where ``out`` goes: its explicit partition (checked), else its key's."""
    if out.partition is None:
        return partition_for(out.key, partitions)
    if not 0 <= out.partition < partitions:
        raise ValueError(f"{out.topic} has {partitions} partitions, not {out.partition + 1}")
    return out.partition


def broadcast(topic: str, value: bytes, timestamp: int, partitions: int) -> list[Output]:
    """One copy of a message in every partition of ``topic``.

    Session control is broadcast: each partition of ``orders`` is a shard with
    its own matcher, and a shard must see every open and close; topics that are
    co-partitioned (same count) keep shard p's control and orders together.
    """
    return [Output(topic, None, value, timestamp, p) for p in range(partitions)]


def align(reads: Sequence[Sequence[Record]], bound: int | None) -> list[Record]:
    """Cut per-partition reads so no input runs ahead of another in event time.

    ``reads`` holds what was read from each input partition (offset order);
    ``bound`` is the earliest last timestamp among partitions whose read hit
    the cap (they may hold more), or None when every partition was read to its
    end. Each partition keeps its longest prefix with timestamps <= bound, so a
    ``close`` on one topic is never processed before earlier orders still
    unread on another. Batch boundaries then do not change any result.
    """
    if bound is None:
        return [rec for read in reads for rec in read]
    kept: list[Record] = []
    for read in reads:
        for rec in read:
            if rec.timestamp > bound:
                break
            kept.append(rec)
    if not kept:  # timestamps out of order inside a partition: never stall
        return [rec for read in reads for rec in read]
    return kept


def caught_up(log: EventLog, group: str, topics: Sequence[str]) -> bool:
    """Has ``group`` committed every readable record of ``topics``?

    Exact on both transports: Kafka's end offsets count transaction markers,
    so what lies between a committed position and the end is read, not counted.
    """
    for topic in topics:
        done = log.committed(group, topic)
        for part, end in log.end_offsets(topic).items():
            start = done.get(part, 0)
            if start < end:
                unread = log.read(topic, part, start, end)
                try:
                    if next(iter(unread), None) is not None:
                        return False
                finally:
                    close = getattr(unread, "close", None)
                    if close is not None:
                        close()
    return True


class InstanceConflictError(RuntimeError):
    """Another instance of this service already owns its input: this one must not run."""


class FencedError(InstanceConflictError):
    """A newer instance of ``service`` took over its input (Kafka: its transactional id)."""

    def __init__(self, service: str) -> None:
        super().__init__(f"another instance of {service!r} took over (fenced)")
        self.service = service


class UnknownTopicError(KeyError):
    """A topic that was never created; the message names it."""


class Tail(Protocol):
    """A reader that follows partitions as they grow (a gateway's view of the day)."""

    def poll(self, timeout: float) -> list[Record]:
        """What arrived since the last poll, in offset order per partition; waits at most
        ``timeout`` for the first record."""
        ...

    def close(self) -> None: ...


class PollingTail:
    """A tail over any log: end offsets, then reads of what is new, every ``interval`` s.

    ``version``: a cheap token that changes whenever the log may have changed
    (SQLite's data_version); while it stays the same a poll asks nothing else.
    """

    def __init__(
        self,
        log: EventLog,
        starts: Mapping[tuple[str, int], int],
        interval: float = 0.002,
        version: Callable[[], object] | None = None,
    ) -> None:
        self.log = log
        self.positions = dict(starts)
        self.interval = interval
        self._version = version
        self._seen: object = None  # the version at which nothing was new
        self._closed = threading.Event()

    def poll(self, timeout: float) -> list[Record]:
        deadline = time.monotonic() + timeout
        while True:
            out = self._new()
            if out or time.monotonic() >= deadline or self._closed.wait(self.interval):
                return out

    def _new(self) -> list[Record]:
        version = self._version() if self._version is not None else None
        if version is not None and version == self._seen:
            return []
        out: list[Record] = []
        ends = {topic: self.log.end_offsets(topic) for topic in {t for t, _ in self.positions}}
        for (topic, part), start in list(self.positions.items()):
            end = ends[topic].get(part, 0)
            if start < end:
                out.extend(self.log.read(topic, part, start, end))
                self.positions[(topic, part)] = end
        if not out:
            self._seen = version
        return out

    def close(self) -> None:
        self._closed.set()


class EventLog(Protocol):
    """Keyed, partitioned, offset-addressed topics with atomic processing steps."""

    def create_topics(self, topics: Iterable[str], partitions: int = 1) -> None:
        """Create missing topics (idempotent)."""
        ...

    def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has (UnknownTopicError if it does not exist)."""
        ...

    def produce(self, outputs: Sequence[Output]) -> dict[tuple[str, int], int]:
        """Append messages atomically (all or none), outside any consumer group.

        Returns, per partition written, the offset just after its last new
        message: a consumer whose committed position reaches it has them all.
        """
        ...

    def read(
        self, topic: str, partition: int = 0, start: int = 0, end: int | None = None
    ) -> Iterator[Record]:
        """Messages of one partition with ``start <= offset < end``, in offset order."""
        ...

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Next offset to be written, per partition."""
        ...

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """The group's committed position (next offset to read), per partition."""
        ...

    def step(
        self, group: str, topics: Sequence[str], handler: Handler, max_records: int = 10_000
    ) -> int:
        """Consume-process-produce exactly once, aligned on event time.

        Reads up to ``max_records`` per input partition after the group's
        positions, keeps what ``align`` allows (so no input runs ahead of
        another in event time), calls ``handler`` once with them (topic order,
        then partition, then offset), and commits its outputs together with the
        new positions in one atomic unit. If the handler raises, nothing is
        committed. Returns how many records were consumed (0: nothing new).
        """
        ...

    def assignment(self, group: str, topics: Sequence[str]) -> frozenset[tuple[str, int]]:
        """The input partitions this instance of ``group`` owns now.

        Every partition of every topic, unless several instances share the
        group (Kafka consumer-group mode), where the broker splits them and
        ``step`` follows its rebalances.
        """
        ...

    def settle(self, topics: Sequence[str], timeout: float = 30.0) -> None:
        """Wait until no transaction is open on ``topics`` (all written is readable)."""
        ...

    def discard(self, topics: Sequence[str], groups: Sequence[str]) -> None:
        """Delete every record of ``topics`` and every committed position of ``groups``.

        What is left of an interrupted session before it is run again from
        the start: the topics stay (empty, same partitions), the groups read
        every topic from offset 0 again.
        """
        ...

    def tail(self, starts: Mapping[tuple[str, int], int]) -> Tail:
        """Follow these partitions from these offsets (read committed, outside any group)."""
        ...

    def close(self) -> None: ...
