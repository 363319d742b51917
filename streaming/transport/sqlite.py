"""The embedded event log: every topic in one SQLite file (WAL mode).

Same guarantees as the Kafka transport with transactions: a ``step`` writes
its outputs and the consumer group's new positions in one SQLite transaction,
so a crash anywhere leaves either all of a step or none of it. Offsets are
assigned inside the write transaction, so several processes may share a file.

One consumer group has one active instance: the first ``step`` (or
``assignment``) of a group takes an exclusive lock on ``<file>.<group>.lock``
for as long as the log is open, and a second process stepping the same group
on the same file gets ``GroupBusyError`` naming the holder, instead of both
consuming every record. A commit that fails (a full disk) is rolled back, so
the connection is never left inside a transaction.

Polling is cheap when nothing changed: SQLite's ``data_version`` moves only
when another connection commits, so a ``step`` that found nothing, and the
``end_offsets`` it answered, are reused until the file (or this connection)
changes. An idle matcher then takes no write lock on every poll, and a
gateway's tail of nine topics asks the file one question per poll, not nine.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from streaming.transport.base import (
    Handler,
    InstanceConflictError,
    Output,
    PollingTail,
    Record,
    Tail,
    UnknownTopicError,
    align,
    target_partition,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    key TEXT,
    value BLOB NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS positions (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, partition)
);
"""


class GroupBusyError(InstanceConflictError):
    """Another process already consumes as this group on this log file."""


class SqliteEventLog:
    """An ``EventLog`` in one SQLite file (``":memory:"`` for tests)."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)
        self._partitions: dict[str, int] = dict(
            self._db.execute("SELECT name, partitions FROM topics").fetchall()
        )
        self._claims: dict[str, IO[str]] = {}
        self._writes = 0  # transactions of this connection (data_version ignores its own)
        self._idle: dict[tuple[str, tuple[str, ...]], tuple[int, int]] = {}  # found nothing at
        self._ends: dict[str, tuple[tuple[int, int], dict[int, int]]] = {}

    def _version(self) -> tuple[int, int]:
        """Changes whenever any connection, this one included, may have changed the file."""
        (version,) = self._db.execute("PRAGMA data_version").fetchone()
        return int(version), self._writes

    def _claim(self, group: str) -> None:
        """Hold ``group``'s lock file for as long as this log is open (one instance per group)."""
        if group in self._claims or self.path == ":memory:":
            return
        lock = Path(f"{self.path}.{re.sub(r'[^A-Za-z0-9_.-]', '_', group)}.lock")
        handle = lock.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise GroupBusyError(
                f"another process (pid {holder}) already consumes as group {group!r} on "
                f"{self.path}: run one instance of each service per event log"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._claims[group] = handle

    # -- topics ----------------------------------------------------------------
    def create_topics(self, topics: Iterable[str], partitions: int = 1) -> None:
        if partitions < 1:
            raise ValueError("a topic needs at least one partition")
        with self._tx():
            for name in topics:
                self._db.execute(
                    "INSERT OR IGNORE INTO topics(name, partitions) VALUES (?, ?)",
                    (name, partitions),
                )
        self._partitions = dict(self._db.execute("SELECT name, partitions FROM topics").fetchall())

    def partitions(self, topic: str) -> int:
        try:
            return self._partitions[topic]
        except KeyError:
            raise UnknownTopicError(f"unknown topic {topic!r}; create it first") from None

    # -- writing -----------------------------------------------------------------
    def produce(self, outputs: Sequence[Output]) -> dict[tuple[str, int], int]:
        with self._tx():
            return self._append(outputs)

    def _append(self, outputs: Sequence[Output]) -> dict[tuple[str, int], int]:
        if not outputs:
            return {}
        next_offset: dict[tuple[str, int], int] = {}
        rows = []
        for out in outputs:
            part = target_partition(out, self.partitions(out.topic))
            tp = (out.topic, part)
            off = next_offset.get(tp)
            if off is None:
                (last,) = self._db.execute(
                    "SELECT MAX(offset) FROM records WHERE topic = ? AND partition = ?", tp
                ).fetchone()
                off = 0 if last is None else last + 1
            next_offset[tp] = off + 1
            rows.append((out.topic, part, off, out.key, out.value, out.timestamp))
        self._db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)
        return next_offset

    # -- reading -----------------------------------------------------------------
    def read(
        self, topic: str, partition: int = 0, start: int = 0, end: int | None = None
    ) -> Iterator[Record]:
        self.partitions(topic)
        stop = end if end is not None else 1 << 62
        cur = self._db.execute(
            "SELECT offset, key, value, ts FROM records"
            " WHERE topic = ? AND partition = ? AND offset >= ? AND offset < ? ORDER BY offset",
            (topic, partition, start, stop),
        )
        while batch := cur.fetchmany(10_000):
            for off, key, value, ts in batch:
                yield Record(topic, partition, off, key, value, ts)

    def end_offsets(self, topic: str) -> dict[int, int]:
        version = self._version()
        cached = self._ends.get(topic)
        if cached is not None and cached[0] == version:
            return dict(cached[1])
        ends = {p: 0 for p in range(self.partitions(topic))}
        for part, last in self._db.execute(
            "SELECT partition, MAX(offset) FROM records WHERE topic = ? GROUP BY partition",
            (topic,),
        ):
            ends[part] = last + 1
        self._ends[topic] = (version, dict(ends))
        return ends

    def committed(self, group: str, topic: str) -> dict[int, int]:
        pos = {p: 0 for p in range(self.partitions(topic))}
        for part, off in self._db.execute(
            "SELECT partition, offset FROM positions WHERE grp = ? AND topic = ?", (group, topic)
        ):
            pos[part] = off
        return pos

    # -- exactly-once processing ----------------------------------------------------
    def step(
        self, group: str, topics: Sequence[str], handler: Handler, max_records: int = 10_000
    ) -> int:
        self._claim(group)
        version = self._version()
        idle_key = (group, tuple(topics))
        if self._idle.get(idle_key) == version:
            return 0  # nobody committed since this group last found nothing
        with self._tx():
            reads: list[list[Record]] = []
            capped: list[int] = []
            for topic in topics:
                for part, start in self.committed(group, topic).items():
                    rows = self._db.execute(
                        "SELECT offset, key, value, ts FROM records"
                        " WHERE topic = ? AND partition = ? AND offset >= ?"
                        " ORDER BY offset LIMIT ?",
                        (topic, part, start, max_records),
                    ).fetchall()
                    if rows:
                        reads.append([Record(topic, part, o, k, v, t) for o, k, v, t in rows])
                        if len(rows) == max_records:
                            capped.append(rows[-1][3])
            records = align(reads, min(capped) if capped else None)
            if not records:
                self._idle[idle_key] = (version[0], self._writes)
                return 0
            outputs = handler(records)
            self._append(outputs)
            last: dict[tuple[str, int], int] = {}
            for rec in records:
                last[(rec.topic, rec.partition)] = rec.offset + 1
            self._db.executemany(
                "INSERT INTO positions(grp, topic, partition, offset) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(grp, topic, partition) DO UPDATE SET offset = excluded.offset",
                [(group, t, p, o) for (t, p), o in last.items()],
            )
            return len(records)

    def _tx(self) -> _Transaction:
        self._writes += 1
        return _Transaction(self._db)

    def assignment(self, group: str, topics: Sequence[str]) -> frozenset[tuple[str, int]]:
        self._claim(group)
        return frozenset((t, p) for t in topics for p in range(self.partitions(t)))

    def settle(self, topics: Sequence[str], timeout: float = 30.0) -> None:
        return  # a committed SQLite transaction is readable at once

    def discard(self, topics: Sequence[str], groups: Sequence[str]) -> None:
        with self._tx():
            for topic in topics:
                self.partitions(topic)
                self._db.execute("DELETE FROM records WHERE topic = ?", (topic,))
            for group in groups:
                self._db.execute("DELETE FROM positions WHERE grp = ?", (group,))

    def tail(self, starts: Mapping[tuple[str, int], int]) -> Tail:
        return PollingTail(self, starts, version=self._version)

    def close(self) -> None:
        self._db.close()
        for handle in self._claims.values():
            handle.close()  # releases the lock
        self._claims.clear()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self._rollback()  # e.g. SQLITE_FULL at commit: never leave it open
                raise
        else:
            self._rollback()

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
