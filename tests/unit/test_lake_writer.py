"""The lake writer on the embedded catalog (SQLite + local warehouse), read back by DuckDB.

Partition replace is property-tested: whatever sequence of publishes runs,
each day holds exactly what was last published for it.
"""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lake.catalog import LakeConfig, open_catalog
from lake.query import DuckDBEngine, LakeQueryError
from lake.tables import PARTITION_COLUMN, TABLES, TOPIC_TABLES, TableDef, table
from lake.writer import SchemaMismatchError, publish
from streaming.topics import TOPICS
from tests.support import run_concurrently

pytestmark = pytest.mark.unit

SMALL = TableDef(
    "core",
    "probe",
    pa.schema([pa.field("symbol", pa.string(), nullable=False), pa.field("qty", pa.int64())]),
    sort_by=("symbol",),
)


@pytest.fixture
def catalog(tmp_path):
    return open_catalog(LakeConfig.local("test", tmp_path / "catalog.sqlite", tmp_path / "wh"))


def _day_rows(catalog, tdef: TableDef, day: date) -> list[tuple[str, int]]:
    scan = catalog.load_table(tdef.identifier).scan(row_filter=f"{PARTITION_COLUMN} = '{day}'")
    return sorted((r["symbol"], r["qty"]) for r in scan.to_arrow().to_pylist())


def _batch(rows: list[tuple[str, int]]) -> pa.Table:
    return pa.table(
        {"symbol": [r[0] for r in rows], "qty": [r[1] for r in rows]}, schema=SMALL.schema
    )


def test_every_topic_lands_in_a_registered_table_with_a_partition_column():
    landed = {t for t in TOPICS if t != "recommendations"}  # control: the audit table
    assert set(TOPIC_TABLES) == landed
    for identifier in set(TOPIC_TABLES.values()):
        tdef = table(identifier)
        assert tdef.stored_schema.names[-1] == PARTITION_COLUMN
        assert PARTITION_COLUMN not in tdef.schema.names
    with pytest.raises(KeyError, match=r"raw\.trades"):
        table("raw.nope")


def test_table_has_day_partitions_and_sort_order(catalog):
    publish(catalog, TABLES["raw.trades"], date(2026, 11, 20), TABLES["raw.trades"].to_arrow([]))
    tbl = catalog.load_table("raw.trades")
    (field,) = tbl.spec().fields
    assert field.name == PARTITION_COLUMN and str(field.transform) == "identity"
    sorted_ids = [f.source_id for f in tbl.sort_order().fields]
    assert [tbl.schema().find_column_name(i) for i in sorted_ids] == ["symbol", "ts"]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.lists(st.tuples(st.sampled_from(["AAPL", "MSFT", "SAP"]), st.integers(1, 500)),
                     max_size=6),
        ),
        min_size=1,
        max_size=8,
    )
)  # fmt: skip
def test_each_day_holds_exactly_its_last_publish(tmp_path_factory, publishes):
    path = tmp_path_factory.mktemp("lake")
    catalog = open_catalog(LakeConfig.local("test", path / "c.sqlite", path / "wh"))
    last: dict[date, list[tuple[str, int]]] = {}
    for offset, rows in publishes:
        day = date(2026, 11, 16) + timedelta(days=offset)
        result = publish(catalog, SMALL, day, _batch(rows))
        assert result.rows == len(rows)
        last[day] = sorted(rows)
    for day, rows in last.items():
        assert _day_rows(catalog, SMALL, day) == rows
    total = catalog.load_table(SMALL.identifier).scan().to_arrow().num_rows
    assert total == sum(len(r) for r in last.values())


def test_mismatched_batch_is_refused_and_nothing_changes(catalog):
    day = date(2026, 11, 20)
    publish(catalog, SMALL, day, _batch([("AAPL", 1)]))
    snapshot = catalog.load_table(SMALL.identifier).current_snapshot().snapshot_id
    cases = {
        "missing column 'qty'": pa.table({"symbol": ["AAPL"]}),
        "unexpected column 'venue'": pa.table({"symbol": ["AAPL"], "qty": [1], "venue": ["X"]}),
        "column 'qty' is double": pa.table({"symbol": ["AAPL"], "qty": [1.5]}),
    }
    for reason, bad in cases.items():
        with pytest.raises(SchemaMismatchError, match=reason):
            publish(catalog, SMALL, day, bad)
    assert catalog.load_table(SMALL.identifier).current_snapshot().snapshot_id == snapshot
    assert _day_rows(catalog, SMALL, day) == [("AAPL", 1)]


def test_added_nullable_column_reads_as_null_in_older_partitions(catalog):
    d1, d2 = date(2026, 11, 19), date(2026, 11, 20)
    publish(catalog, SMALL, d1, _batch([("AAPL", 1)]))
    v2 = SMALL.with_column(pa.field("venue", pa.string(), nullable=False))
    assert v2.schema.field("venue").nullable  # added columns are always nullable
    publish(catalog, v2, d2, pa.table({"symbol": ["SAP"], "qty": [2], "venue": ["MLX"]},
                                      schema=v2.schema))  # fmt: skip
    engine = DuckDBEngine(catalog)
    try:
        got = engine.query(f"SELECT {PARTITION_COLUMN}, symbol, venue FROM core.probe ORDER BY 1")
    finally:
        engine.close()
    assert got.to_pylist() == [
        {PARTITION_COLUMN: d1, "symbol": "AAPL", "venue": None},
        {PARTITION_COLUMN: d2, "symbol": "SAP", "venue": "MLX"},
    ]
    # the old definition can no longer publish: its batch lacks the new column
    with pytest.raises(SchemaMismatchError):
        publish(catalog, v2, d1, _batch([("AAPL", 1)]))


def test_duckdb_sees_new_snapshots_and_names_missing_tables(catalog):
    engine = DuckDBEngine(catalog)
    try:
        with pytest.raises(LakeQueryError, match="nope"):
            engine.query("SELECT * FROM core.nope")
        publish(catalog, SMALL, date(2026, 11, 20), _batch([("AAPL", 1)]))
        assert engine.query("SELECT count(*) AS n FROM core.probe").to_pylist() == [{"n": 1}]
        publish(catalog, SMALL, date(2026, 11, 20), _batch([("AAPL", 1), ("SAP", 3)]))
        assert engine.query("SELECT sum(qty) AS q FROM core.probe").to_pylist()[0]["q"] == 4
    finally:
        engine.close()


def test_concurrent_publishers_of_different_days_all_land_on_sqlite(catalog):
    days = [date(2026, 11, 16) + timedelta(days=i) for i in range(4)]

    def write(day: date) -> None:
        publish(catalog, SMALL, day, _batch([("AAPL", day.day), ("SAP", day.day)]))

    assert not run_concurrently(write, days)
    for day in days:
        assert _day_rows(catalog, SMALL, day) == [("AAPL", day.day), ("SAP", day.day)]
