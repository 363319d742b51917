"""Reading day partitions back: what a stage that builds on earlier days needs.

A table nobody has written yet reads as empty with its declared columns, so
the first day of a backfill and a day in the middle take the same code path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import And

from lake.row_filters import at_least, at_most, equal_to
from lake.tables import PARTITION_COLUMN, table


def read_days(
    catalog: Catalog,
    identifier: str,
    first: date,
    last: date | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Rows of ``identifier`` with ``first <= trading_day <= last`` (``last`` None: only ``first``).

    ``columns`` selects fields (``trading_day`` is always included), which
    matters for tables with payload columns. Row order is not defined.
    """
    tdef = table(identifier)
    names = tuple(columns or tdef.schema.names)
    if PARTITION_COLUMN not in names:
        names = (*names, PARTITION_COLUMN)
    if last is None or last == first:
        row_filter = equal_to(PARTITION_COLUMN, first)
    else:
        row_filter = And(at_least(PARTITION_COLUMN, first), at_most(PARTITION_COLUMN, last))
    try:
        tbl = catalog.load_table(identifier)
    except NoSuchTableError:
        return tdef.stored_schema.empty_table().select(list(names))
    return tbl.scan(row_filter=row_filter, selected_fields=names).to_arrow()


def latest_day_through(catalog: Catalog, identifier: str, day: date) -> date | None:
    """The last partition on or before ``day`` that holds rows, or None."""
    try:
        tbl = catalog.load_table(identifier)
    except NoSuchTableError:
        return None
    days = (
        tbl.scan(row_filter=at_most(PARTITION_COLUMN, day), selected_fields=(PARTITION_COLUMN,))
        .to_arrow()
        .column(PARTITION_COLUMN)
        .to_pylist()
    )
    return max(days) if days else None
