"""Publish one trading day of a table: replace exactly that partition, atomically.

Publishing is an Iceberg overwrite filtered on ``trading_day``: the day's old
data files are removed and the new ones added in one commit, so readers see
the old day or the new day, never both or neither, and publishing a day
again gives the same rows, never duplicates. Two writers publishing
different days race on the catalog's optimistic commit; the loser reloads the
table and retries, so both succeed. A batch whose columns do not match the
registry is refused before anything is written. When the registry has gained
nullable columns, the table's schema is evolved first; older partitions read
those columns as NULL.

Every table of a trading day records which session it was computed from:
``publish(..., session=...)`` writes the session's identity (a fingerprint of
its event log) and the day into the snapshot's summary, and ``day_session``
reads back the identity of the snapshot that last replaced a day. An asset
check compares them across raw, core and marts, so a day can never silently
mix two sessions.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass
from datetime import date

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from sqlalchemy.exc import IntegrityError
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from lake.row_filters import equal_to
from lake.tables import PARTITION_COLUMN, TableDef


class SchemaMismatchError(ValueError):
    """A batch (or an existing table) whose columns differ from the registry's."""


@dataclass(frozen=True)
class Published:
    table: str
    day: date
    rows: int
    seconds: float
    snapshot_id: int | None


def check_schema(tdef: TableDef, data: pa.Schema) -> None:
    """Refuse a batch unless it has exactly the table's columns and types (in any order)."""
    want = {f.name: f.type for f in tdef.schema}
    got = {f.name: f.type for f in data}
    problems = [f"missing column {n!r} ({t})" for n, t in want.items() if n not in got]
    problems += [f"unexpected column {n!r} ({t})" for n, t in got.items() if n not in want]
    problems += [
        f"column {n!r} is {got[n]}, the table has {t}"
        for n, t in want.items()
        if n in got and got[n] != t
    ]
    if problems:
        raise SchemaMismatchError(
            f"refusing to publish into {tdef.identifier}: " + "; ".join(problems)
        )


def _iceberg_columns(table: Table) -> dict[str, pa.DataType]:
    return {f.name: f.type for f in table.schema().as_arrow()}


def ensure_table(catalog: Catalog, tdef: TableDef) -> Table:
    """The table, created with its partition spec and sort order, or evolved to the registry."""
    # concurrent writers race to create: the SQL catalog's unique keys let one win
    with contextlib.suppress(NamespaceAlreadyExistsError, IntegrityError):
        catalog.create_namespace(tdef.namespace)
    try:
        table = catalog.load_table(tdef.identifier)
    except NoSuchTableError:
        try:
            with catalog.create_table_transaction(
                tdef.identifier,
                schema=tdef.stored_schema,
                properties={"comment": tdef.description, "write.parquet.compression-codec": "zstd"},
            ) as txn:
                with txn.update_spec() as spec:
                    spec.add_identity(PARTITION_COLUMN)
                if tdef.sort_by:
                    order = txn.update_sort_order()
                    for column in tdef.sort_by:
                        order = order.asc(column, IdentityTransform())
                    order.commit()
        except (TableAlreadyExistsError, IntegrityError, CommitFailedException):
            if not catalog.table_exists(tdef.identifier):
                raise
            # another writer created it first: theirs has the same definition
        return catalog.load_table(tdef.identifier)
    _evolve(table, tdef)
    return table


def _evolve(table: Table, tdef: TableDef) -> None:
    have = _iceberg_columns(table)
    want = tdef.stored_schema
    added = [f for f in want if f.name not in have]
    changed = [f.name for f in want if f.name in have and not _compatible(have[f.name], f.type)]
    if changed:
        raise SchemaMismatchError(
            f"{tdef.identifier} stores {', '.join(changed)} with other types than the registry"
        )
    if not added:
        return
    if any(not f.nullable for f in added):
        raise SchemaMismatchError(
            f"{tdef.identifier}: only nullable columns can be added to an existing table"
        )
    with table.update_schema() as update:
        update.union_by_name(pa.schema(added))


def _compatible(stored: pa.DataType, wanted: pa.DataType) -> bool:
    # Iceberg reads strings back as large_string; compare what they mean
    norm = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}
    if pa.types.is_list(stored) or pa.types.is_large_list(stored):
        return (pa.types.is_list(wanted) or pa.types.is_large_list(wanted)) and _compatible(
            stored.value_type, wanted.value_type
        )
    return bool(norm.get(stored, stored) == norm.get(wanted, wanted))


SESSION_PROPERTY = "marketlake.session"
DAY_PROPERTY = "marketlake.trading-day"


def day_session(catalog: Catalog, identifier: str, day: date) -> str | None:
    """The session identity of the snapshot that last replaced ``day`` in the table, if any."""
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        return None
    wanted = day.isoformat()
    for snap in sorted(table.snapshots(), key=lambda s: s.sequence_number or 0, reverse=True):
        summary = snap.summary
        if summary is not None and summary[DAY_PROPERTY] == wanted:
            found = summary[SESSION_PROPERTY]
            return str(found) if found else None
    return None


def publish(
    catalog: Catalog, tdef: TableDef, day: date, data: pa.Table, session: str | None = None
) -> Published:
    """Replace ``day``'s partition of ``tdef`` with ``data`` (the day's whole content).

    ``session`` is the identity of the session the rows come from (recorded
    in the snapshot, see ``day_session``).
    """
    started = time.perf_counter()
    check_schema(tdef, data.schema)
    data = data.select(tdef.schema.names).cast(tdef.schema)
    batch = data.append_column(
        pa.field(PARTITION_COLUMN, pa.date32(), nullable=False),
        pa.array([day] * data.num_rows, pa.date32()),
    )
    table = ensure_table(catalog, tdef)
    arrow_schema = table.schema().as_arrow()
    batch = _conform(batch, arrow_schema)
    properties = {DAY_PROPERTY: day.isoformat()}
    if session is not None:
        properties[SESSION_PROPERTY] = session
    snapshot = _overwrite(catalog, tdef, day, batch, properties)
    return Published(tdef.identifier, day, data.num_rows, time.perf_counter() - started, snapshot)


def _conform(batch: pa.Table, schema: pa.Schema) -> pa.Table:
    """The batch in the table's column order and types, NULL for columns it lacks."""
    columns = []
    for f in schema:
        if f.name in batch.column_names:
            columns.append(batch[f.name].cast(f.type))
        else:
            columns.append(pa.nulls(batch.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


@retry(
    retry=retry_if_exception_type(CommitFailedException),
    wait=wait_random_exponential(multiplier=0.05, max=2),
    stop=stop_after_attempt(20),
    reraise=True,
)
def _overwrite(
    catalog: Catalog, tdef: TableDef, day: date, batch: pa.Table, properties: dict[str, str]
) -> int | None:
    table = catalog.load_table(tdef.identifier)  # fresh metadata on every attempt
    with warnings.catch_warnings():  # a fresh partition has nothing to delete
        warnings.filterwarnings(
            "ignore", message="Delete operation did not match any records", category=UserWarning
        )
        table.overwrite(
            batch, overwrite_filter=equal_to(PARTITION_COLUMN, day), snapshot_properties=properties
        )
    current = table.current_snapshot()
    return current.snapshot_id if current is not None else None
