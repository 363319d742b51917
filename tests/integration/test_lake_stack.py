"""The lake on the real stack: pyiceberg writes into MinIO + PostgreSQL, DuckDB and Trino read.

Two simulated sessions are landed, then the same SQL runs on both engines and
must give the same answer: row counts, OHLC, VWAP and volume per symbol and
day, top members by notional. Publishing is idempotent and concurrent
publishers of different days both win; a bad batch changes nothing; an added
column leaves older partitions readable (as NULL) by both engines.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest

from lake.catalog import open_catalog
from lake.query import LakeQueryError
from lake.raw_landing import land_day
from lake.tables import TABLES, TableDef
from lake.writer import SchemaMismatchError, publish
from streaming.refdata import load_calendar, load_members
from streaming.services.day import DayConfig, run_day
from streaming.transport.sqlite import SqliteEventLog
from tests.support import run_concurrently, short_calendar

pytestmark = pytest.mark.integration

DAYS = (date(2026, 11, 19), date(2026, 11, 20))

QUERIES = {
    "row counts": """
        SELECT trading_day, count(*) AS n FROM raw.trades
        WHERE trading_day IN (DATE '2026-11-19', DATE '2026-11-20')  -- this module's days: other
        -- modules (the dashboards) land later days into the same session-wide stack
        GROUP BY trading_day ORDER BY trading_day
    """,
    "ohlc, vwap and volume per symbol and day": """
        SELECT trading_day, symbol,
               min_by(price, trade_id) AS open, max(price) AS high,
               min(price) AS low, max_by(price, trade_id) AS close,
               sum(qty) AS volume,
               round(CAST(sum(price * qty) AS DOUBLE) / sum(qty), 4) AS vwap
        FROM raw.trades GROUP BY trading_day, symbol ORDER BY trading_day, symbol
    """,
    "top members by notional": """
        SELECT member, sum(notional) AS notional FROM (
            SELECT buy_member AS member, price * qty AS notional FROM raw.trades
            UNION ALL
            SELECT sell_member AS member, price * qty AS notional FROM raw.trades
        ) AS sides GROUP BY member ORDER BY notional DESC, member LIMIT 5
    """,
    "bars per interval": """
        SELECT trading_day, interval, count(*) AS bars, sum(volume) AS volume
        FROM raw.bars GROUP BY trading_day, interval ORDER BY trading_day, interval
    """,
    "orders by type": """
        SELECT type, count(*) AS n FROM raw.orders GROUP BY type ORDER BY type
    """,
}


def _rows(table: pa.Table) -> list[tuple[object, ...]]:
    """Rows with engine-specific number types made comparable (DuckDB sums are decimals)."""

    def norm(v: object) -> object:
        if isinstance(v, Decimal):
            return int(v) if v == v.to_integral_value() else float(v)
        return v

    return [tuple(norm(v) for v in row.values()) for row in table.to_pylist()]


@pytest.fixture(scope="module")
def landed(lake_stack, tmp_path_factory, securities):
    """Two half-hour sessions, simulated and landed into the stack's lake."""
    cal_path = short_calendar(tmp_path_factory.mktemp("cal"))
    calendar = load_calendar(cal_path)
    catalog = open_catalog(lake_stack.config)
    counts = {}
    for i, day in enumerate(DAYS):
        log = SqliteEventLog(tmp_path_factory.mktemp("log") / "log.sqlite")
        run_day(log, DayConfig(day, 20 + i, securities, load_members(), calendar))
        published = land_day(log, catalog, day)
        counts[day] = {k: v.rows for k, v in published.items()}
        log.close()
    return catalog, counts


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_duckdb_and_trino_agree(lake_stack, landed, name):
    _, counts = landed
    duck, trino = lake_stack.duckdb(), lake_stack.trino_engine()
    try:
        on_duckdb = _rows(duck.query(QUERIES[name]))
        on_trino = _rows(trino.query(QUERIES[name]))
    finally:
        duck.close()
        trino.close()
    assert on_duckdb, name
    assert on_duckdb == on_trino
    if name == "row counts":
        assert on_duckdb == [(day, counts[day]["raw.trades"]) for day in DAYS]


def test_publishing_a_day_again_replaces_it(lake_stack, landed):
    catalog, counts = landed
    tdef = TABLES["raw.trades"]
    table = catalog.load_table(tdef.identifier)
    day = DAYS[0]
    before = sorted(table.scan(row_filter=f"trading_day = '{day}'").to_arrow().to_pylist(),
                    key=lambda r: (r["symbol"], r["trade_id"]))  # fmt: skip
    data = pa.Table.from_pylist(before, schema=tdef.stored_schema).drop_columns(["trading_day"])
    for _ in range(3):
        publish(catalog, tdef, day, data)
    table = catalog.load_table(tdef.identifier)
    after = sorted(table.scan(row_filter=f"trading_day = '{day}'").to_arrow().to_pylist(),
                   key=lambda r: (r["symbol"], r["trade_id"]))  # fmt: skip
    assert after == before and len(after) == counts[day]["raw.trades"]
    trino = lake_stack.trino_engine()
    try:
        got = _rows(
            trino.query(f"SELECT count(*) FROM raw.trades WHERE trading_day = DATE '{day}'")
        )
    finally:
        trino.close()
    assert got == [(len(before),)]


def test_two_days_published_concurrently_both_land(lake_stack):
    catalog = open_catalog(lake_stack.config)
    tdef = TableDef("core", f"concurrent_{uuid.uuid4().hex[:6]}", TABLES["raw.trades"].schema)
    template = TABLES["raw.trades"].schema
    days = [date(2026, 11, d) for d in (16, 17, 18, 19)]

    def write(day: date) -> None:
        rows = [{"trade_id": i, "symbol": "AAPL", "price": 1_000_000 + i, "qty": day.day,
                 "aggressor_side": "buy", "buy_order_id": i, "sell_order_id": i + 1,
                 "buy_member": "USR01", "sell_member": "USR02", "ts": i}
                for i in range(100)]  # fmt: skip
        publish(catalog, tdef, day, pa.Table.from_pylist(rows, schema=template))

    assert not run_concurrently(write, days)
    duck = lake_stack.duckdb()
    try:
        got = _rows(duck.query(f"SELECT trading_day, count(*), min(qty) FROM {tdef.identifier} "
                               "GROUP BY 1 ORDER BY 1"))  # fmt: skip
    finally:
        duck.close()
    assert got == [(d, 100, d.day) for d in days]


def test_schema_mismatch_is_refused_and_the_table_unchanged(landed):
    catalog, _ = landed
    tdef = TABLES["raw.trades"]
    snapshot = catalog.load_table(tdef.identifier).current_snapshot().snapshot_id
    bad = pa.table({"trade_id": [1], "symbol": ["AAPL"], "price": [1.5]})  # float price, missing
    with pytest.raises(SchemaMismatchError, match=r"raw\.trades") as info:
        publish(catalog, tdef, DAYS[0], bad)
    assert "price" in str(info.value) and "missing column 'qty'" in str(info.value)
    assert catalog.load_table(tdef.identifier).current_snapshot().snapshot_id == snapshot


def test_missing_table_error_names_it(lake_stack):
    trino, duck = lake_stack.trino_engine(), lake_stack.duckdb()
    try:
        for engine in (trino, duck):
            with pytest.raises(LakeQueryError, match="nope"):
                engine.query("SELECT * FROM raw.nope")
    finally:
        trino.close()
        duck.close()


def test_added_column_keeps_older_partitions_readable_on_both_engines(lake_stack):
    catalog = open_catalog(lake_stack.config)
    v1 = TableDef("core", f"evolving_{uuid.uuid4().hex[:6]}", pa.schema(
        [pa.field("symbol", pa.string(), nullable=False), pa.field("qty", pa.int64())]
    ))  # fmt: skip
    publish(catalog, v1, DAYS[0], pa.table({"symbol": ["AAPL"], "qty": [5]}, schema=v1.schema))
    v2 = v1.with_column(pa.field("venue", pa.string()))
    publish(catalog, v2, DAYS[1], pa.table(
        {"symbol": ["MSFT"], "qty": [7], "venue": ["MLX"]}, schema=v2.schema
    ))  # fmt: skip
    sql = f"SELECT trading_day, symbol, qty, venue FROM {v2.identifier} ORDER BY trading_day"
    expected = [(DAYS[0], "AAPL", 5, None), (DAYS[1], "MSFT", 7, "MLX")]
    duck, trino = lake_stack.duckdb(), lake_stack.trino_engine()
    try:
        assert _rows(duck.query(sql)) == expected
        assert _rows(trino.query(sql)) == expected
    finally:
        duck.close()
        trino.close()
