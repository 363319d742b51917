"""The event log interface every transport implements (embedded SQLite log, Kafka).

It is deliberately the subset of Kafka the live core needs: keyed topics with
partitions and offsets, consumer-group positions, and one atomic
consume-process-produce ``step`` (Kafka: a transaction with the consumed
offsets sent to it; SQLite: one database transaction). Services are written
against this interface only, so the same code runs on both.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import msgspec

TOPICS: tuple[str, ...] = (
    "orders",
    "executions",
    "trades",
    "bbo",
    "bars.1s",
    "bars.1m",
    "bars.3m",
    "bars.5m",
    "bars.15m",
    "control",
    "recommendations",
    "dlq",
)
"""Every topic of the live core (DESIGN.md); keyed by symbol."""


class Record(msgspec.Struct, frozen=True, gc=False):
    """One stored message; ``timestamp`` is the event time in ns."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    timestamp: int


class Output(msgspec.Struct, frozen=True, gc=False):
    """A message to produce: the partition follows from ``key``."""

    topic: str
    key: str | None
    value: bytes
    timestamp: int


Handler = Callable[[list[Record]], Sequence[Output]]


def partition_for(key: str | None, partitions: int) -> int:
    """Stable key -> partition mapping (CRC32), the same in every process and run."""
    if key is None or partitions <= 1:
        return 0
    return zlib.crc32(key.encode()) % partitions


class UnknownTopicError(KeyError):
    """A topic that was never created; the message names it."""


class EventLog(Protocol):
    """Keyed, partitioned, offset-addressed topics with atomic processing steps."""

    def create_topics(self, topics: Iterable[str], partitions: int = 1) -> None:
        """Create missing topics (idempotent)."""
        ...

    def produce(self, outputs: Sequence[Output]) -> None:
        """Append messages atomically (all or none), outside any consumer group."""
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
        """Consume-process-produce exactly once.

        Reads up to ``max_records`` after the group's positions (in topic order,
        then partition, then offset), calls ``handler`` once with them, and
        commits its outputs together with the new positions in one atomic unit.
        If the handler raises, nothing is committed. Returns how many records
        were consumed (0: nothing new).
        """
        ...

    def close(self) -> None: ...
