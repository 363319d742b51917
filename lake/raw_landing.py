"""Land a trading day: read each topic of the event log and publish its raw table.

Each raw table gets the whole day in one partition replace, so landing a day
again (a backfill, a recovery) gives the same rows. Reading is bounded by
event time (the session's ``[start, end)``), so a log holding several days
lands only the one asked for.

A day always lands: a record that does not decode, or whose values do not fit
its table's columns, goes to ``raw.dlq`` with the reason (``landing: ...``),
its source topic and position and its bytes, and the rest of the day lands.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import msgspec
import pyarrow as pa
from pyiceberg.catalog import Catalog

from lake.tables import TABLES, TOPIC_TABLES, TableDef
from lake.writer import Published, publish
from streaming.events import (
    DeadLetter,
    encode,
)
from streaming.limits import MalformedMessage, decode_untrusted
from streaming.topics import BROADCAST_TOPICS, TOPIC_SPECS
from streaming.transport.base import EventLog, Record

TOPIC_KINDS: dict[str, Any] = {t.name: t.kind for t in TOPIC_SPECS}


DLQ_TABLE = TOPIC_TABLES["dlq"]
SESSION_SOURCE = TOPIC_TABLES["orders"]
"""The table whose recorded session the day's derived tables (core, marts) inherit."""
_CHUNK = 1_000


def landing_letter(
    reason: str, topic: str, rec: Record | None = None, event: Any = None
) -> DeadLetter:
    """A record landing could not take: why, where from, and its bytes."""
    if rec is not None:
        return DeadLetter(f"landing: {reason}"[:1000], topic, rec.timestamp, rec.partition,
                          rec.offset, rec.value)  # fmt: skip
    ts = getattr(event, "ts", None)
    return DeadLetter(f"landing: {reason}"[:1000], topic, ts if type(ts) is int and 0 <= ts < 1 << 63
                      else 0, None, None, encode(event))  # fmt: skip


def read_day(
    log: EventLog,
    topic: str,
    start_ns: int | None,
    end_ns: int | None,
    rejected: list[DeadLetter] | None = None,
) -> list[Any]:
    """``topic``'s events with ``start_ns <= timestamp < end_ns``, partition by partition.

    Within a partition the log's order is kept; partitions follow each other in
    number order, so the result does not depend on how records interleaved. A
    broadcast topic (``control``) is read from partition 0 alone, which holds
    every event once.
    A record that does not decode is left out and, if ``rejected`` is given,
    added to it as a dead letter.
    """
    decoder = msgspec.json.Decoder(TOPIC_KINDS[topic])
    out: list[Any] = []
    partitions = sorted(log.end_offsets(topic))
    if topic in BROADCAST_TOPICS:
        partitions = partitions[:1]  # the others hold copies of the same events
    for part in partitions:
        for rec in log.read(topic, part):
            if (start_ns is None or rec.timestamp >= start_ns) and (
                end_ns is None or rec.timestamp < end_ns
            ):
                try:
                    out.append(decode_untrusted(rec.value, decoder))
                except MalformedMessage as exc:
                    if rejected is not None:
                        rejected.append(landing_letter(f"undecodable: {exc}", topic, rec))
    return out


def to_arrow_or_reject(
    tdef: TableDef, rows: list[Any], topic_of: Callable[[Any], str], rejected: list[DeadLetter]
) -> pa.Table:
    """``rows`` as ``tdef``'s Arrow table; rows whose values do not fit its columns are rejected.

    The whole day converts in one go unless a value is out of range (an
    integer beyond 64 bits, say); only then are chunks and rows tried alone.
    """
    try:
        return tdef.to_arrow(rows)
    except (OverflowError, pa.ArrowException, TypeError, ValueError):
        pass
    good: list[Any] = []
    for i in range(0, len(rows), _CHUNK):
        chunk = rows[i : i + _CHUNK]
        try:
            tdef.to_arrow(chunk)
            good.extend(chunk)
            continue
        except (OverflowError, pa.ArrowException, TypeError, ValueError):
            pass
        for row in chunk:
            try:
                tdef.to_arrow([row])
                good.append(row)
            except (OverflowError, pa.ArrowException, TypeError, ValueError) as exc:
                why = f"does not fit {tdef.identifier}: {type(exc).__name__}: {exc}"
                rejected.append(landing_letter(why, topic_of(row), event=row))
    return tdef.to_arrow(good)


def land_day(
    log: EventLog,
    catalog: Catalog,
    day: date,
    start_ns: int | None = None,
    end_ns: int | None = None,
    progress: Callable[[str, int], None] | None = None,
    session: str | None = None,
) -> dict[str, Published]:
    """Publish ``day``'s orders, executions, trades, bbo, bars and dead letters.

    ``session`` is the session's identity, recorded in every table published.

    ``raw.dlq`` is published last, so it also holds what landing itself refused.
    """
    events: dict[str, list[Any]] = {}
    topics: dict[str, str] = {}
    rejected: list[DeadLetter] = []
    for topic, identifier in TOPIC_TABLES.items():
        events.setdefault(identifier, []).extend(read_day(log, topic, start_ns, end_ns, rejected))
        topics.setdefault(identifier, topic)

    def topic_of(identifier: str) -> Callable[[Any], str]:
        if identifier == "raw.bars":
            return lambda bar: f"bars.{getattr(bar, 'interval', '1s')}"
        return lambda _: topics[identifier]

    published: dict[str, Published] = {}
    for identifier in sorted(events, key=lambda i: i == DLQ_TABLE):
        tdef = TABLES[identifier]
        rows = events[identifier]
        if identifier == DLQ_TABLE:
            rows = rows + rejected
        table = to_arrow_or_reject(tdef, rows, topic_of(identifier), rejected)
        published[identifier] = publish(catalog, tdef, day, table, session)
        if progress is not None:
            progress(identifier, table.num_rows)
    return published
