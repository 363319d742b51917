"""`marketlake query` is read-only by default, on a real embedded lake (SQLite + warehouse).

Two layers are checked separately: the statement filter (only queries run unless
writes are allowed, on DuckDB and, before anything is sent, on Trino) and
DuckDB's own lock-down (no file or URL outside the warehouse, configuration
locked), which must hold even with the filter lifted.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

import settings as settings_module
from lake.catalog import LakeConfig, S3Config, open_catalog
from lake.query import (
    DuckDBEngine,
    LakeQueryError,
    ReadOnlyError,
    TrinoEngine,
    check_read_only,
    warehouse_prefix,
)
from lake.tables import TableDef
from lake.writer import publish
from orchestration.cli import app

pytestmark = pytest.mark.unit

TRADES = TableDef(
    "raw",
    "trades",
    pa.schema([pa.field("symbol", pa.string(), nullable=False), pa.field("qty", pa.int64())]),
    sort_by=("symbol",),
)
DAY = date(2026, 3, 2)
ROWS = [{"symbol": "AAPL", "qty": 5}, {"symbol": "MSFT", "qty": 7}, {"symbol": "SAP", "qty": 3}]


def _build_lake(data_dir: Path) -> LakeConfig:
    """Laid out as the embedded settings expect: data/catalog.sqlite and data/warehouse."""
    config = LakeConfig.local("marketlake", data_dir / "catalog.sqlite", data_dir / "warehouse")
    catalog = open_catalog(config)
    publish(catalog, TRADES, DAY, pa.Table.from_pylist(ROWS, schema=TRADES.schema))
    return config


@pytest.fixture
def lake(tmp_path: Path) -> LakeConfig:
    return _build_lake(tmp_path / "data")


def _data_files(config: LakeConfig) -> list[Path]:
    files = open_catalog(config).load_table("raw.trades").inspect.files()
    return [Path(p.removeprefix("file://")) for p in files.column("file_path").to_pylist()]


def _state(config: LakeConfig) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The table's rows (through pyiceberg, not DuckDB) and a digest of each data file."""
    rows = open_catalog(config).load_table("raw.trades").scan().to_arrow().to_pylist()
    digests = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in _data_files(config)}
    return sorted(rows, key=lambda r: r["symbol"]), digests


@pytest.fixture
def duck(lake: LakeConfig):
    engine = DuckDBEngine(open_catalog(lake), lake.s3)
    yield engine
    engine.close()


@pytest.fixture
def duck_rw(lake: LakeConfig):
    engine = DuckDBEngine(open_catalog(lake), lake.s3, allow_writes=True)
    yield engine
    engine.close()


# -- what runs --------------------------------------------------------------------------


def test_queries_and_table_listing_run_read_only(duck):
    assert duck.query("SELECT sum(qty) AS q FROM raw.trades").to_pylist() == [{"q": 15}]
    assert duck.query(
        "WITH t AS (SELECT * FROM raw.trades WHERE qty > 4) SELECT symbol FROM t ORDER BY 1"
    ).column("symbol").to_pylist() == ["AAPL", "MSFT"]
    assert duck.query("VALUES (1, 'a')").num_rows == 1
    assert duck.query("SHOW TABLES FROM raw").column("name").to_pylist() == ["trades"]
    assert "raw" in duck.query("SHOW SCHEMAS").column("schema_name").to_pylist()
    described = duck.query("DESCRIBE raw.trades").column("column_name").to_pylist()
    assert described == ["symbol", "qty", "trading_day"]
    assert duck.query("EXPLAIN SELECT * FROM raw.trades").num_rows >= 1
    assert duck.query("EXPLAIN ANALYZE SELECT count(*) FROM raw.trades").num_rows >= 1
    assert duck.query("-- a comment\nSELECT count(*) AS n FROM raw.trades;").to_pylist() == [
        {"n": 3}
    ]


# -- what is refused, and the lake is unchanged afterwards ------------------------------

REFUSED = [
    ("COPY (SELECT 1 AS symbol) TO '{data_file}' (FORMAT parquet)", "COPY"),
    ("COPY raw.trades TO '{tmp}/out.csv'", "COPY"),
    ("ATTACH '{tmp}/other.duckdb' AS other", "ATTACH"),
    ("DETACH memory", "DETACH"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "LOAD"),
    ("CREATE TABLE evil AS SELECT * FROM raw.trades", "CREATE"),
    ("CREATE OR REPLACE VIEW raw.trades AS SELECT 'X' AS symbol, 0 AS qty", "CREATE"),
    ("INSERT INTO raw.trades VALUES ('X', 1, DATE '2026-03-02')", "INSERT"),
    ("UPDATE raw.trades SET qty = 0", "UPDATE"),
    ("DELETE FROM raw.trades", "DELETE"),
    ("DROP VIEW raw.trades", "DROP"),
    ("ALTER VIEW raw.trades RENAME TO gone", "ALTER"),
    ("SET enable_external_access = true", "SET"),
    ("RESET lock_configuration", "RESET"),
    ("PRAGMA version", "PRAGMA"),
    ("EXPORT DATABASE '{tmp}/export'", "EXPORT"),
    ("IMPORT DATABASE '{tmp}'", "IMPORT"),
    ("CALL pragma_version()", "CALL"),
    ("CHECKPOINT", "CHECKPOINT"),
    ("SELECT 1; DROP VIEW raw.trades", "2 statements (SELECT; DROP)"),
    ("SELECT * FROM raw.trades; COPY raw.trades TO '{tmp}/out.csv'", "2 statements"),
    ("WITH t AS (SELECT 'X', 1, DATE '2026-03-02') INSERT INTO raw.trades SELECT * FROM t",
     "INSERT"),
    ("EXPLAIN ANALYZE COPY raw.trades TO '{tmp}/out.csv'", "EXPLAIN of COPY"),
    ("/* SELECT */ DROP VIEW raw.trades", "DROP"),
    ("   ", "an empty statement"),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "kind"), REFUSED, ids=[k for _, k in REFUSED])
def test_other_statements_are_refused_and_the_lake_is_unchanged(duck, lake, tmp_path, sql, kind):
    before = _state(lake)
    text = sql.format(data_file=_data_files(lake)[0], tmp=tmp_path)
    with pytest.raises(ReadOnlyError, match=rf"^duckdb: {re.escape(kind)}.* refused: .*read-only"):
        duck.query(text)
    assert _state(lake) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no file written
    # the engine still answers, from the unchanged view
    assert duck.query("SELECT count(*) AS n, sum(qty) AS q FROM raw.trades").to_pylist() == [
        {"n": 3, "q": 15}
    ]


def test_refusal_is_a_lake_query_error_naming_the_kind(duck):
    with pytest.raises(LakeQueryError, match="COPY statement refused"):
        duck.query("copy raw.trades to 'x.csv'")


# -- DuckDB's lock-down, with the statement filter lifted -------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd', header = false)",
        "SELECT * FROM read_text('file:///etc/passwd')",
        "SELECT * FROM read_blob('{warehouse}/../catalog.sqlite')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_text('http://127.0.0.1:9/secret')",
    ],
)
def test_files_outside_the_warehouse_cannot_be_read(duck_rw, lake, sql):
    warehouse = warehouse_prefix(lake.warehouse).rstrip("/")
    with pytest.raises(LakeQueryError, match="Permission Error") as raised:
        duck_rw.query(sql.format(warehouse=warehouse))
    assert "root:" not in str(raised.value)


def test_files_outside_the_warehouse_cannot_be_written_or_attached(duck_rw, lake, tmp_path):
    before = _state(lake)
    attempts = [
        f"COPY raw.trades TO '{tmp_path}/out.csv'",
        f"COPY (SELECT 1) TO '{tmp_path}/out.parquet' (FORMAT parquet)",
        f"ATTACH '{tmp_path}/other.duckdb' AS other",
        f"EXPORT DATABASE '{tmp_path}/export'",
        "CREATE PERSISTENT SECRET leak (TYPE s3, KEY_ID 'k', SECRET 's')",
    ]
    for sql in attempts:
        with pytest.raises(LakeQueryError, match=r"Permission Error|[Pp]ersistent"):
            duck_rw.query(sql)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert _state(lake) == before


@pytest.mark.parametrize(
    "sql",
    [
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "RESET lock_configuration",
        "SET allow_unredacted_secrets = true",
        "SET autoload_known_extensions = true",
    ],
)
def test_configuration_is_locked(duck_rw, sql):
    with pytest.raises(LakeQueryError, match="configuration has been locked"):
        duck_rw.query(sql)
    with pytest.raises(LakeQueryError, match="Permission Error"):
        duck_rw.query("SELECT * FROM read_text('/etc/passwd')")


def test_extensions_cannot_be_installed_or_loaded_from_files(duck_rw, tmp_path):
    fake = tmp_path / "evil.duckdb_extension"
    fake.write_bytes(b"\0" * 64)
    for sql in (f"INSTALL '{fake}'", f"LOAD '{fake}'", "INSTALL spatial"):
        with pytest.raises(LakeQueryError, match="Permission Error"):
            duck_rw.query(sql)


def test_writes_allowed_lift_only_the_statement_filter(duck_rw, lake):
    duck_rw.query("CREATE TABLE scratch AS SELECT symbol, qty * 2 AS q FROM raw.trades")
    assert duck_rw.query("SELECT sum(q) AS s FROM scratch").to_pylist() == [{"s": 30}]
    assert duck_rw.query("SELECT count(*) AS n FROM raw.trades").to_pylist() == [{"n": 3}]


def test_warehouse_prefix_keeps_sibling_directories_out(tmp_path):
    assert warehouse_prefix((tmp_path / "wh").as_uri()) == f"{tmp_path.resolve()}/wh/"
    assert warehouse_prefix(str(tmp_path / "wh")) == f"{tmp_path.resolve()}/wh/"
    assert warehouse_prefix("s3://marketlake/warehouse") == "s3://marketlake/warehouse/"


def test_a_sibling_of_the_warehouse_is_out_of_reach(tmp_path):
    config = _build_lake(tmp_path / "data")
    sibling = tmp_path / "data" / "warehouse2"
    sibling.mkdir()
    (sibling / "x.csv").write_text("a\n1\n")
    engine = DuckDBEngine(open_catalog(config), allow_writes=True)
    try:
        with pytest.raises(LakeQueryError, match="Permission Error"):
            engine.query(f"SELECT * FROM read_csv('{sibling}/x.csv')")
    finally:
        engine.close()


def test_s3_warehouse_is_the_only_bucket_prefix_in_reach(tmp_path):
    """Stack mode's shape (S3 secret, s3:// warehouse) without a server: the lock-down
    comes after the secret, refuses other buckets and prefixes, and keeps the key hidden."""
    empty = LakeConfig.local("marketlake", tmp_path / "catalog.sqlite", tmp_path / "unused")
    s3 = S3Config("http://127.0.0.1:9", "lake-key-id", "lake-secret-value")
    engine = DuckDBEngine(
        open_catalog(empty), s3, allow_writes=True, warehouse="s3://marketlake/warehouse"
    )
    try:
        assert engine.allowed == ["s3://marketlake/warehouse/"]
        for url in ("s3://other/x.json", "s3://marketlake/warehouse2/x.json"):
            with pytest.raises(LakeQueryError, match="Permission Error"):
                engine.query(f"SELECT * FROM read_text('{url}')")
        with pytest.raises(LakeQueryError, match="Permission Error"):
            engine.query("COPY (SELECT 1) TO 's3://other/x.csv'")
        with pytest.raises(LakeQueryError) as inside:  # allowed, only the server is missing
            engine.query("SELECT * FROM read_text('s3://marketlake/warehouse/x.json')")
        assert "Permission Error" not in str(inside.value)
        secrets = engine.query("SELECT secret_string FROM duckdb_secrets()").to_pylist()
        assert "lake-secret-value" not in str(secrets)
    finally:
        engine.close()


def test_a_table_outside_the_warehouse_is_out_of_reach(lake, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    engine = DuckDBEngine(open_catalog(lake), warehouse=elsewhere.as_uri())
    try:
        with pytest.raises(LakeQueryError, match="Permission Error"):
            engine.query("SELECT count(*) FROM raw.trades")
    finally:
        engine.close()


# -- Trino: classified before anything is sent ------------------------------------------


class _Cursor:
    def __init__(self, sent: list[str]) -> None:
        self.sent = sent
        self.description = [("n",)]

    def execute(self, sql: str) -> None:
        self.sent.append(sql)

    def fetchall(self) -> list[tuple[int]]:
        return [(1,)]


class _Connection:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def cursor(self) -> _Cursor:
        return _Cursor(self.sent)

    def close(self) -> None:
        pass


def _trino(allow_writes: bool = False) -> tuple[TrinoEngine, _Connection]:
    engine = TrinoEngine("127.0.0.1", 9, allow_writes=allow_writes)  # never connected
    engine.conn.close()
    fake = _Connection()
    engine.conn = fake  # type: ignore[assignment]
    return engine, fake


TRINO_READS = [
    "SELECT symbol, count(*) FROM raw.trades GROUP BY 1",
    "SHOW TABLES FROM raw",
    "SHOW SCHEMAS FROM iceberg",
    "SHOW CREATE TABLE raw.trades",
    "SHOW COLUMNS FROM raw.trades",
    "DESCRIBE raw.trades",
    "EXPLAIN (TYPE DISTRIBUTED) SELECT * FROM raw.trades",
    "EXPLAIN ANALYZE VERBOSE SELECT count(*) FROM raw.trades",
    "SELECT * FROM raw.trades FOR VERSION AS OF 123",
    'SELECT * FROM raw."trades$snapshots"',
]
TRINO_REFUSED = [
    ("INSERT INTO raw.trades VALUES ('X', 1, DATE '2026-03-02')", "INSERT"),
    ("DELETE FROM raw.trades", "DELETE"),
    ("DROP TABLE raw.trades", "DROP"),
    ("CREATE TABLE raw.x AS SELECT * FROM raw.trades", "CREATE"),
    ("ALTER TABLE raw.trades EXECUTE optimize", "ALTER"),
    ("CALL iceberg.system.rollback_to_snapshot('raw', 'trades', 1)", "CALL"),
    ("GRANT SELECT ON raw.trades TO bob", "GRANT"),
    ("SET SESSION query_max_run_time = '1s'", "SET"),
    ("TRUNCATE TABLE raw.trades", "TRUNCATE"),
    ("EXPLAIN ANALYZE INSERT INTO raw.trades SELECT * FROM raw.trades", "EXPLAIN of INSERT"),
    ("EXPLAIN (TYPE IO) DELETE FROM raw.trades", "EXPLAIN of DELETE"),
    ("SELECT 1; DROP TABLE raw.trades", "2 statements"),
]


@pytest.mark.parametrize("sql", TRINO_READS)
def test_trino_reads_are_sent(sql):
    engine, fake = _trino()
    assert engine.query(sql).to_pylist() == [{"n": 1}]
    assert fake.sent == [sql]


@pytest.mark.parametrize(("sql", "kind"), TRINO_REFUSED, ids=[k for _, k in TRINO_REFUSED])
def test_trino_writes_are_refused_before_sending(sql, kind):
    engine, fake = _trino()
    with pytest.raises(ReadOnlyError, match=rf"^trino: {re.escape(kind)}.* refused"):
        engine.query(sql)
    assert fake.sent == []
    writer, fake = _trino(allow_writes=True)
    writer.query(sql)
    assert fake.sent == [sql]


def test_trino_only_syntax_with_a_second_statement_is_not_sent():
    engine, fake = _trino()
    with pytest.raises(LakeQueryError):
        engine.query("SELECT * FROM raw.trades FOR VERSION AS OF 1; DROP TABLE raw.trades")
    assert fake.sent == []


def test_check_read_only_names_the_statement_kind():
    check_read_only("SELECT 1")
    for sql, kind in [("COPY t TO 'x'", "COPY"), ("ATTACH 'x'", "ATTACH"), ("LOAD x", "LOAD")]:
        with pytest.raises(ReadOnlyError, match=rf"^duckdb: {kind} statement refused"):
            check_read_only(sql)


# -- the command ------------------------------------------------------------------------


@pytest.fixture
def cli_lake(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for name, value in {
        "MARKETLAKE_DATA_DIR": str(data),
        "MARKETLAKE_MODE": "embedded",
        "MARKETLAKE_LAKE_STORAGE": "local",
        "MARKETLAKE_QUERY_ENGINE": "duckdb",
        "MARKETLAKE_LAKE_CATALOG": "marketlake",
    }.items():
        monkeypatch.setenv(name, value)
    settings_module.get_settings.cache_clear()
    config = _build_lake(data)
    yield config
    settings_module.get_settings.cache_clear()


def test_command_refuses_writes_unless_asked(cli_lake, tmp_path):
    runner = CliRunner()
    before = _state(cli_lake)
    data_file = _data_files(cli_lake)[0]
    copy = f"COPY (SELECT 'X' AS symbol) TO '{data_file}' (FORMAT parquet)"
    refused = runner.invoke(app, ["query", copy])
    assert refused.exit_code == 1
    assert "COPY statement refused" in refused.output
    assert _state(cli_lake) == before

    listed = runner.invoke(app, ["query", "SHOW TABLES FROM raw", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout.splitlines()[-1]) == [{"name": "trades"}]

    passwd = runner.invoke(app, ["query", "--write", "SELECT * FROM read_text('/etc/passwd')"])
    assert passwd.exit_code == 1
    assert "Permission Error" in passwd.output and "root:" not in passwd.output

    allowed = runner.invoke(
        app, ["query", "--write", "CREATE TABLE t AS SELECT 1 AS a; SELECT a FROM t", "--format",
              "json"],
    )  # fmt: skip
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout.splitlines()[-1]) == [{"a": 1}]


def test_command_help_explains_write():
    result = CliRunner().invoke(app, ["query", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--write" in result.output
    assert "operators" in result.output
    assert "read-only" in result.output
