"""Arrow schemas derived from the event Structs: the one column list for each contract.

The lake, the Parquet files of the demo and the batch bar builder all take
their columns from here, so an event and its table can never drift apart.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

import msgspec
import pyarrow as pa

from streaming.events import Event

_SCALARS: dict[Any, pa.DataType] = {
    int: pa.int64(),
    float: pa.float64(),
    str: pa.string(),
    bool: pa.bool_(),
    bytes: pa.binary(),
}


def _arrow_type(tp: Any) -> tuple[pa.DataType, bool]:
    """(arrow type, nullable) for a Struct field annotation."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = tuple(a for a in get_args(tp) if a is not type(None))
        inner, _ = _arrow_type(args[0] if len(args) == 1 else Union[args])  # noqa: UP007
        return inner, True
    if origin is Literal:
        return _SCALARS[type(get_args(tp)[0])], False
    if origin is list:
        (item,) = get_args(tp)
        inner, _ = _arrow_type(item)
        return pa.list_(inner), False
    if origin is tuple:
        args = get_args(tp)
        inner, _ = _arrow_type(args[0])
        return pa.list_(inner, len(args)), False
    if tp in _SCALARS:
        return _SCALARS[tp], False
    raise TypeError(f"no Arrow type for {tp!r}")


def arrow_schema(kind: type[msgspec.Struct]) -> pa.Schema:
    """The Arrow schema of an event type, fields in declaration order."""
    hints = typing.get_type_hints(kind)
    fields = []
    for name in kind.__struct_fields__:
        dtype, nullable = _arrow_type(hints[name])
        fields.append(pa.field(name, dtype, nullable=nullable))
    return pa.schema(fields)


def to_table(events: list[Any], kind: type[msgspec.Struct]) -> pa.Table:
    """Events of one type -> an Arrow table with the derived schema."""
    schema = arrow_schema(kind)
    columns = {name: [getattr(e, name) for e in events] for name in kind.__struct_fields__}
    return pa.Table.from_pydict(columns, schema=schema)


def from_table(table: pa.Table, kind: type[msgspec.Struct]) -> list[Any]:
    """An Arrow table with an event schema -> the events (round trip of ``to_table``)."""
    return [msgspec.convert(row, kind) for row in table.to_pylist()]


def union_schema(kinds: tuple[type[Event], ...]) -> pa.Schema:
    """One table for several event types: a ``type`` tag column, then every field once.

    A field missing from some kinds is nullable; fields shared by all keep
    their declared nullability. Used for the ``orders`` topic (new, cancel, amend).
    """
    fields: dict[str, pa.Field] = {"type": pa.field("type", pa.string(), nullable=False)}
    present: dict[str, int] = {}
    for kind in kinds:
        for f in arrow_schema(kind):
            present[f.name] = present.get(f.name, 0) + 1
            if f.name not in fields:
                fields[f.name] = f
            elif f.nullable:
                fields[f.name] = fields[f.name].with_nullable(True)
    return pa.schema(
        [
            f if present.get(n, len(kinds)) == len(kinds) else f.with_nullable(True)
            for n, f in fields.items()
        ]
    )


def union_to_table(events: list[Any], kinds: tuple[type[Event], ...]) -> pa.Table:
    """Events of several types -> one table with ``union_schema(kinds)``."""
    schema = union_schema(kinds)
    tags = {k: k.__struct_config__.tag for k in kinds}
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    for e in events:
        columns["type"].append(tags[type(e)])
        for name in schema.names[1:]:
            columns[name].append(getattr(e, name, None))
    return pa.Table.from_pydict(columns, schema=schema)
