"""Where the lake lives: an Iceberg SQL catalog plus a warehouse, local or on S3.

Embedded: the catalog is a SQLite file and the warehouse a local directory.
Stack: the catalog is PostgreSQL and the warehouse a bucket on any
S3-compatible store (MinIO here); Trino's JDBC catalog reads the same catalog
tables, so ``name`` must equal Trino's ``iceberg.jdbc-catalog.catalog-name``.
Only plain S3 is spoken, and the region is always set (pyarrow would otherwise
go looking for AWS).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyiceberg.catalog.sql import SqlCatalog


@dataclass(frozen=True)
class S3Config:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    session_token: str | None = None  # temporary credentials (STS), e.g. a read-only key

    @property
    def host(self) -> str:
        """``host:port`` without the scheme (DuckDB's S3 secret wants it so)."""
        return self.endpoint.split("://", 1)[-1].rstrip("/")

    @property
    def use_ssl(self) -> bool:
        return self.endpoint.startswith("https://")


@dataclass(frozen=True)
class LakeConfig:
    """Everything needed to open the lake; built from settings by the orchestration layer."""

    name: str
    catalog_uri: str  # SQLAlchemy URL: sqlite:///... or postgresql+psycopg2://...
    warehouse: str  # file:///... or s3://bucket/prefix
    s3: S3Config | None = None

    @classmethod
    def local(cls, name: str, catalog_path: Path, warehouse_dir: Path) -> LakeConfig:
        catalog_path.parent.mkdir(parents=True, exist_ok=True)
        warehouse_dir.mkdir(parents=True, exist_ok=True)
        return cls(name, f"sqlite:///{catalog_path}", warehouse_dir.resolve().as_uri())


def open_catalog(config: LakeConfig) -> SqlCatalog:
    """The pyiceberg catalog (creates its catalog tables on first use)."""
    props: dict[str, str] = {"uri": config.catalog_uri, "warehouse": config.warehouse}
    if config.s3 is not None:
        props.update(
            {
                "s3.endpoint": config.s3.endpoint,
                "s3.access-key-id": config.s3.access_key,
                "s3.secret-access-key": config.s3.secret_key,
                "s3.region": config.s3.region,
                "s3.path-style-access": "true",
            }
        )
        if config.s3.session_token:
            props["s3.session-token"] = config.s3.session_token
    return SqlCatalog(config.name, **props)
