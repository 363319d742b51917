"""The lake chosen by settings: catalog, warehouse and query engine for this mode."""

from __future__ import annotations

from pyiceberg.catalog import Catalog

from lake.catalog import LakeConfig, open_catalog
from lake.query import DuckDBEngine, QueryEngine, TrinoEngine
from orchestration.settings import Settings


def lake_config(settings: Settings) -> LakeConfig:
    """Local directory + SQLite catalog, or the stack's MinIO bucket + PostgreSQL catalog."""
    if settings.storage == "local":
        return LakeConfig.local(
            settings.lake_catalog, settings.catalog_path, settings.warehouse_dir
        )
    from orchestration import stack

    return stack.lake_config(settings, stack.postgres(settings), stack.minio(settings))


def catalog(settings: Settings) -> Catalog:
    return open_catalog(lake_config(settings))


def query_engine(
    settings: Settings, engine: str | None = None, *, allow_writes: bool = False
) -> QueryEngine:
    """DuckDB over the catalog's tables, or Trino's ``iceberg`` catalog; read-only by default.

    ``allow_writes`` lifts the engines' statement filter (queries only); DuckDB's
    file access stays limited to the warehouse either way (see ``lake.query``).
    """
    chosen = engine or settings.engine
    if chosen == "duckdb":
        config = lake_config(settings)
        return DuckDBEngine(
            open_catalog(config), config.s3, allow_writes=allow_writes, warehouse=config.warehouse
        )
    if chosen == "trino":
        return TrinoEngine("127.0.0.1", settings.trino_port, allow_writes=allow_writes)
    raise ValueError(f"unknown engine {chosen!r}: duckdb or trino")
