"""The lake chosen by settings: catalog, warehouse and query engine for this mode."""

from __future__ import annotations

from pyiceberg.catalog import Catalog

from lake.catalog import LakeConfig, open_catalog
from lake.query import DuckDBEngine, LakeQueryError, QueryEngine
from settings import Settings


def lake_config(settings: Settings) -> LakeConfig:
    """Local directory + SQLite catalog, or the stack's MinIO bucket + PostgreSQL catalog."""
    if settings.storage == "local":
        return LakeConfig.local(
            settings.lake_catalog, settings.catalog_path, settings.warehouse_dir
        )
    from assets.platform import stack

    return stack.lake_config(settings, stack.postgres(settings), stack.minio(settings))


def catalog(settings: Settings) -> Catalog:
    return open_catalog(lake_config(settings))


def query_engine(
    settings: Settings, engine: str | None = None, *, allow_writes: bool = False
) -> QueryEngine:
    """DuckDB over the catalog's tables, or Trino's ``iceberg`` catalog; read-only by default.

    ``allow_writes`` lifts the engines' statement filter (queries only); DuckDB's
    file access stays limited to the warehouse either way (see ``lake.query``).
    Trino is reached over HTTPS as the stack's read-only principal, or as its
    writer when writes are allowed (``marketlake query --write``, an operator's
    command run by the account that owns the stack's credentials file). Likewise
    DuckDB on the stack reads the bucket with a temporary read-only S3 key from
    MinIO's STS, not the root key, unless writes are allowed.
    """
    chosen = engine or settings.engine
    if chosen == "duckdb":
        config = lake_config(settings)
        if settings.storage != "local" and not allow_writes:
            config = _read_only(settings, config)
        return DuckDBEngine(
            open_catalog(config), config.s3, allow_writes=allow_writes, warehouse=config.warehouse
        )
    if chosen == "trino":
        from assets.platform import stack
        from deploy.process import ServiceError

        try:
            return stack.trino_engine(
                stack.trino(settings), writer=allow_writes, allow_writes=allow_writes
            )
        except ServiceError as exc:
            raise LakeQueryError(
                f"trino: {exc} (`marketlake stack up trino` starts it and makes them)"
            ) from exc
    raise ValueError(f"unknown engine {chosen!r}: duckdb or trino")


def _read_only(settings: Settings, config: LakeConfig) -> LakeConfig:
    from assets.platform import stack
    from deploy.process import ServiceError

    try:
        return stack.read_only_lake(settings, config)
    except ServiceError as exc:
        raise LakeQueryError(
            f"duckdb: no read-only key for the lake: {exc} (is MinIO up? `marketlake stack up`)"
        ) from exc
