"""SQL over the lake, on DuckDB (embedded) or Trino (stack), behind one interface.

The same query text runs on both: tables are named ``namespace.table``
(``raw.trades``). Trino resolves that in its ``iceberg`` catalog; DuckDB gets a
view per catalog table over ``iceberg_scan`` of the table's current metadata,
so it reads exactly the snapshot pyiceberg committed, with Iceberg's schema
evolution. DuckDB's extensions come from their PyPI packages (installed from
the package directory, never downloaded at run time).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
from pyiceberg.catalog import Catalog

from lake.catalog import S3Config


class LakeQueryError(RuntimeError):
    """A query that failed; the message is the engine's, prefixed with the engine's name."""


class QueryEngine(Protocol):
    name: str

    def query(self, sql: str) -> pa.Table: ...

    def close(self) -> None: ...


def _extension_file(name: str) -> Path:
    import duckdb

    package = importlib.import_module(f"duckdb_extension_{name}")
    root = Path(package.__file__ or "").parent / "extensions" / f"v{duckdb.__version__}"
    found = sorted(root.glob(f"{name}.duckdb_extension"))
    if not found:
        raise LakeQueryError(
            f"duckdb: extension {name} for DuckDB {duckdb.__version__} not found in the "
            f"duckdb-extension-{name} package; its version must equal DuckDB's"
        )
    return found[0]


class DuckDBEngine:
    """DuckDB in process, one view per Iceberg table of the catalog."""

    name = "duckdb"

    def __init__(self, catalog: Catalog, s3: S3Config | None = None) -> None:
        import duckdb

        self.catalog = catalog
        self.con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                          "autoload_known_extensions": False})  # fmt: skip
        for ext in ("avro", "iceberg", "httpfs"):
            self.con.install_extension(str(_extension_file(ext)))
            self.con.load_extension(ext)
        if s3 is not None:
            self.con.execute(
                "CREATE OR REPLACE SECRET lake (TYPE s3, KEY_ID ?, SECRET ?, REGION ?, "
                "ENDPOINT ?, URL_STYLE 'path', USE_SSL ?)",
                [s3.access_key, s3.secret_key, s3.region, s3.host, s3.use_ssl],
            )
        self._views: dict[str, str] = {}

    def refresh(self) -> None:
        """Point every view at its table's current snapshot (new tables included)."""
        for (namespace,) in self.catalog.list_namespaces():
            self.con.execute(f'CREATE SCHEMA IF NOT EXISTS "{namespace}"')
            for ident in self.catalog.list_tables(namespace):
                name = ".".join(ident)
                location = self.catalog.load_table(ident).metadata_location
                if self._views.get(name) == location:
                    continue
                quoted = ".".join(f'"{part}"' for part in ident)
                self.con.execute(
                    f"CREATE OR REPLACE VIEW {quoted} AS SELECT * FROM iceberg_scan('{location}')"
                )
                self._views[name] = location

    def query(self, sql: str) -> pa.Table:
        import duckdb

        self.refresh()
        try:
            return self.con.execute(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise LakeQueryError(f"duckdb: {exc}") from exc

    def close(self) -> None:
        self.con.close()


class TrinoEngine:
    """Trino over its ``iceberg`` catalog (the same JDBC catalog pyiceberg writes)."""

    name = "trino"

    def __init__(
        self, host: str, port: int, user: str = "marketlake", catalog: str = "iceberg"
    ) -> None:
        import trino

        self.conn = trino.dbapi.connect(
            host=host, port=port, user=user, catalog=catalog, request_timeout=300
        )

    def query(self, sql: str) -> pa.Table:
        import trino

        cur = self.conn.cursor()
        try:
            cur.execute(sql)
            rows = cur.fetchall()
        except trino.exceptions.TrinoQueryError as exc:
            raise LakeQueryError(f"trino: {exc.error_name}: {exc.message}") from exc
        except trino.exceptions.Error as exc:
            raise LakeQueryError(f"trino: {exc}") from exc
        names = [d[0] for d in cur.description or []]
        columns: dict[str, list[Any]] = {n: [r[i] for r in rows] for i, n in enumerate(names)}
        return pa.table(columns) if names else pa.table({})

    def close(self) -> None:
        self.conn.close()
