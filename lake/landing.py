"""Land a trading day: read each topic of the event log and publish its raw table.

Each raw table gets the whole day in one partition replace, so landing a day
again (a backfill, a recovery) gives the same rows. Reading is bounded by
event time (the session's ``[start, end)``), so a log holding several days
lands only the one asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import msgspec
from pyiceberg.catalog import Catalog

from lake.tables import TABLES, TOPIC_TABLES
from lake.writer import Published, publish
from streaming.events import (
    Bar,
    BookTop,
    DeadLetter,
    ExecutionReport,
    OrderRequest,
    StrategyDecision,
    Trade,
)
from streaming.transport.base import EventLog

TOPIC_KINDS: dict[str, Any] = {
    "orders": OrderRequest,
    "executions": ExecutionReport,
    "trades": Trade,
    "bbo": BookTop,
    "bars.1s": Bar,
    "bars.1m": Bar,
    "bars.3m": Bar,
    "bars.5m": Bar,
    "bars.15m": Bar,
    "dlq": DeadLetter,
    "decisions": StrategyDecision,
}


def read_day(log: EventLog, topic: str, start_ns: int | None, end_ns: int | None) -> list[Any]:
    """``topic``'s events with ``start_ns <= timestamp < end_ns``, partition by partition.

    Within a partition the log's order is kept; partitions follow each other in
    number order, so the result does not depend on how records interleaved.
    """
    decoder = msgspec.json.Decoder(TOPIC_KINDS[topic])
    out: list[Any] = []
    for part in sorted(log.end_offsets(topic)):
        for rec in log.read(topic, part):
            if (start_ns is None or rec.timestamp >= start_ns) and (
                end_ns is None or rec.timestamp < end_ns
            ):
                out.append(decoder.decode(rec.value))
    return out


def land_day(
    log: EventLog,
    catalog: Catalog,
    day: date,
    start_ns: int | None = None,
    end_ns: int | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Published]:
    """Publish ``day``'s orders, executions, trades, bbo, bars and dead letters."""
    events: dict[str, list[Any]] = {}
    for topic, identifier in TOPIC_TABLES.items():
        events.setdefault(identifier, []).extend(read_day(log, topic, start_ns, end_ns))
    published: dict[str, Published] = {}
    for identifier, rows in events.items():
        tdef = TABLES[identifier]
        published[identifier] = publish(catalog, tdef, day, tdef.to_arrow(rows))
        if progress is not None:
            progress(identifier, len(rows))
    return published
