"""Plain Parquet output of topics (the embedded demo's files until the Iceberg layer lands).

Columns come from the event Structs (``streaming.schema``), never from a list here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from streaming.events import Event
from streaming.schema import arrow_schema, to_table, union_schema, union_to_table
from streaming.transport.base import EventLog


def read_topic(log: EventLog, topic: str, kind: Any) -> list[Any]:
    """Every message of ``topic`` (all partitions, offset order) decoded as ``kind``."""
    decoder = msgspec.json.Decoder(kind)
    out: list[Any] = []
    for part in sorted(log.end_offsets(topic)):
        out.extend(decoder.decode(rec.value) for rec in log.read(topic, part))
    return out


def write_events(events: list[Any], kind: type[Event], path: Path) -> pa.Table:
    """Write events of one type as a Parquet file (zstd); returns the table written."""
    return _write(to_table(events, kind) if events else arrow_schema(kind).empty_table(), path)


def write_union(events: list[Any], kinds: tuple[type[Event], ...], path: Path) -> pa.Table:
    """Write events of several types as one Parquet file with a ``type`` column."""
    schema = union_schema(kinds)
    return _write(union_to_table(events, kinds) if events else schema.empty_table(), path)


def _write(table: pa.Table, path: Path) -> pa.Table:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return table
