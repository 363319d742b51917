"""Several environments on one cluster: every topic and group name gets a prefix.

``NamespacedEventLog(log, "staging")`` stores ``orders`` as ``staging.orders``
and consumes as group ``staging.matcher``, while services keep using the
logical names. Works over any transport.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from streaming.transport.base import EventLog, FencedError, Handler, Output, Record, Tail


class NamespacedEventLog:
    """An ``EventLog`` whose names all live under ``prefix.``."""

    def __init__(self, inner: EventLog, prefix: str) -> None:
        if not prefix or "." in prefix.strip("."):
            raise ValueError(f"a namespace is one non-empty name without dots, not {prefix!r}")
        self.inner = inner
        self.prefix = prefix.strip(".") + "."

    def _p(self, name: str) -> str:
        return self.prefix + name

    def _logical(self, rec: Record) -> Record:
        topic = rec.topic[len(self.prefix) :] if rec.topic.startswith(self.prefix) else rec.topic
        return Record(topic, rec.partition, rec.offset, rec.key, rec.value, rec.timestamp)

    def _physical(self, outputs: Sequence[Output]) -> list[Output]:
        return [Output(self._p(o.topic), o.key, o.value, o.timestamp, o.partition) for o in outputs]

    def create_topics(self, topics: Iterable[str], partitions: int = 1) -> None:
        self.inner.create_topics([self._p(t) for t in topics], partitions)

    def partitions(self, topic: str) -> int:
        return self.inner.partitions(self._p(topic))

    def produce(self, outputs: Sequence[Output]) -> dict[tuple[str, int], int]:
        written = self.inner.produce(self._physical(outputs))
        return {(t[len(self.prefix) :], p): off for (t, p), off in written.items()}

    def read(
        self, topic: str, partition: int = 0, start: int = 0, end: int | None = None
    ) -> Iterator[Record]:
        return (self._logical(r) for r in self.inner.read(self._p(topic), partition, start, end))

    def end_offsets(self, topic: str) -> dict[int, int]:
        return self.inner.end_offsets(self._p(topic))

    def committed(self, group: str, topic: str) -> dict[int, int]:
        return self.inner.committed(self._p(group), self._p(topic))

    def step(
        self, group: str, topics: Sequence[str], handler: Handler, max_records: int = 10_000
    ) -> int:
        def physical(records: list[Record]) -> list[Output]:
            return self._physical(handler([self._logical(r) for r in records]))

        try:
            return self.inner.step(
                self._p(group), [self._p(t) for t in topics], physical, max_records
            )
        except FencedError as exc:  # name the service as its callers know it
            raise FencedError(group) from exc

    def assignment(self, group: str, topics: Sequence[str]) -> frozenset[tuple[str, int]]:
        owned = self.inner.assignment(self._p(group), [self._p(t) for t in topics])
        return frozenset((t[len(self.prefix) :], p) for t, p in owned)

    def settle(self, topics: Sequence[str], timeout: float = 30.0) -> None:
        self.inner.settle([self._p(t) for t in topics], timeout)

    def discard(self, topics: Sequence[str], groups: Sequence[str]) -> None:
        self.inner.discard([self._p(t) for t in topics], [self._p(g) for g in groups])

    def tail(self, starts: Mapping[tuple[str, int], int]) -> Tail:
        return _NamespacedTail(
            self, self.inner.tail({(self._p(t), p): o for (t, p), o in starts.items()})
        )

    def close(self) -> None:
        self.inner.close()


class _NamespacedTail:
    def __init__(self, log: NamespacedEventLog, inner: Tail) -> None:
        self.log = log
        self.inner = inner

    def poll(self, timeout: float) -> list[Record]:
        return [self.log._logical(r) for r in self.inner.poll(timeout)]

    def close(self) -> None:
        self.inner.close()
