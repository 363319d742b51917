"""The local stack: every real service, built from settings, in start order.

Kafka carries the live core; PostgreSQL holds the Iceberg catalog (and
Dagster's storage later); MinIO holds the lake's files; Trino queries the lake
through Iceberg's JDBC catalog on that PostgreSQL with its files on MinIO.
Starting Trino starts what it reads first and prepares the lake (bucket,
catalog tables), since Trino neither creates buckets nor catalog tables.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from deploy.kafka.service import KafkaService, java_for_kafka
from deploy.minio.service import MinioService
from deploy.postgres.service import PostgresService
from deploy.trino.service import TrinoService, iceberg_jdbc_catalog
from lake.catalog import LakeConfig, S3Config
from orchestration.settings import Settings

SYSTEM_DIR = Path("/var/lib/marketlake")
"""Where PostgreSQL lives when we are root and its user cannot reach the stack dir."""


class Service(Protocol):
    name: str

    def install(self) -> object: ...
    def start(self) -> None: ...
    def stop(self) -> bool: ...
    def status(self) -> dict[str, object]: ...


def _reachable_by_others(path: Path) -> bool:
    """Can an unprivileged user traverse every parent of ``path``?"""
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def postgres_home(settings: Settings) -> Path:
    """PostgreSQL's home: refuses root, so as root it must be reachable by ``postgres``."""
    if settings.postgres_dir is not None:
        return settings.postgres_dir
    home = settings.stack_home / "postgres"
    if os.geteuid() != 0 or _reachable_by_others(home.parent):
        return home
    tag = hashlib.sha256(str(settings.stack_home.resolve()).encode()).hexdigest()[:8]
    return SYSTEM_DIR / f"postgres-{tag}"


def postgres(settings: Settings) -> PostgresService:
    return PostgresService(
        home=postgres_home(settings), cache=settings.cache_dir, port=settings.postgres_port
    )


def minio(settings: Settings) -> MinioService:
    return MinioService(
        home=settings.stack_home / "minio",
        cache=settings.cache_dir,
        port=settings.minio_port,
        console_port=settings.minio_console_port,
    )


def lake_config(settings: Settings, pg: PostgresService, store: MinioService) -> LakeConfig:
    """The stack's lake: catalog on PostgreSQL, warehouse in the MinIO bucket."""
    return LakeConfig(
        settings.lake_catalog,
        pg.sqlalchemy_url,
        f"s3://{settings.lake_bucket}/warehouse",
        S3Config(store.endpoint, store.access_key, store.secret_key, store.region),
    )


def prepare_lake(settings: Settings, pg: PostgresService, store: MinioService) -> LakeConfig:
    """Bucket and catalog tables, so both pyiceberg and Trino find them (idempotent)."""
    from lake.catalog import open_catalog

    store.ensure_bucket(settings.lake_bucket)
    config = lake_config(settings, pg, store)
    open_catalog(config)  # pyiceberg creates its catalog tables on first use
    return config


def trino_catalogs(
    settings: Settings, pg: PostgresService, store: MinioService
) -> dict[str, dict[str, str]]:
    return {
        "iceberg": iceberg_jdbc_catalog(
            catalog_name=settings.lake_catalog,
            jdbc_url=f"jdbc:postgresql://{pg.host}:{pg.port}/{pg.database}",
            jdbc_user=pg.user,
            jdbc_password=pg.password,
            warehouse=f"s3://{settings.lake_bucket}/warehouse",
            s3_endpoint=store.endpoint,
            s3_access_key=store.access_key,
            s3_secret_key=store.secret_key,
            s3_region=store.region,
        )
    }


@dataclass
class LakeTrino:
    """Trino with the lake's ``iceberg`` catalog: starts PostgreSQL and MinIO first."""

    settings: Settings
    pg: PostgresService
    store: MinioService
    trino: TrinoService
    name = "trino"

    def install(self) -> object:
        return self.trino.install()

    def start(self) -> None:
        for dependency in (self.pg, self.store):
            dependency.start()
        prepare_lake(self.settings, self.pg, self.store)
        self.trino.catalogs = trino_catalogs(self.settings, self.pg, self.store)
        self.trino.start()

    def stop(self) -> bool:
        return self.trino.stop()

    def status(self) -> dict[str, object]:
        return self.trino.status()


def services(settings: Settings) -> dict[str, Service]:
    """Name -> service, in the order they start (and the reverse of how they stop)."""
    pg, store = postgres(settings), minio(settings)
    trino = TrinoService(
        home=settings.stack_home / "trino",
        cache=settings.cache_dir,
        port=settings.trino_port,
        heap_mb=settings.trino_heap_mb,
    )
    return {
        "kafka": KafkaService(
            home=settings.stack_home / "kafka",
            cache=settings.cache_dir,
            port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            heap_mb=settings.kafka_heap_mb,
            java=java_for_kafka(),
        ),
        "postgres": pg,
        "minio": store,
        "trino": LakeTrino(settings, pg, store, trino),
    }
