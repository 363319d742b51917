"""The local stack: every real service of the platform, built from settings, in start order.

Kafka carries the live core; PostgreSQL holds the Iceberg catalog, Dagster's
storage and Superset's metadata; MinIO holds the lake's files; Trino queries
the lake through Iceberg's JDBC catalog on that PostgreSQL with its files on
MinIO; Superset shows dashboards over Trino; Dagster's UI (behind marketlake's
login) and daemon run the batch platform. Starting a service starts what it
needs first: Trino prepares the lake (bucket, catalog tables), since Trino
neither creates buckets nor catalog tables.

Generated credentials reach the platform from the services' homes, as MinIO's
keys do: ``kafka_security`` logs the platform in to the stack's broker with
the credentials its first start generated (``<stack dir>/kafka/credentials.json``).
Trino's two principals work the same way: ``trino_engine`` connects over HTTPS
as the read-only principal (queries, dashboards) or as the writer (the
platform's own code) with the passwords and certificate its first start made
under ``<stack dir>/trino``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import SecretStr

from deploy.kafka.kafka_service import KafkaService, java_for_kafka, read_credentials, sasl_config
from deploy.local_service import LocalService, fetch
from deploy.minio.minio_service import MinioService
from deploy.postgres.postgres_service import PostgresService
from deploy.superset.superset_service import SupersetService
from deploy.trino.trino_service import TrinoService, iceberg_jdbc_catalog
from settings import Settings

if TYPE_CHECKING:  # pyiceberg is slow to import: the live core's processes need only Kafka
    from lake.catalog import LakeConfig
    from lake.query import TrinoEngine

SYSTEM_DIR = Path("/var/lib/marketlake")
"""Where PostgreSQL lives when we are root and its user cannot reach the stack dir."""


class Service(Protocol):
    @property
    def name(self) -> str: ...

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


def kafka(settings: Settings) -> KafkaService:
    """The stack's broker (its home holds the credentials generated on first start)."""
    return KafkaService(
        home=settings.stack_home / "kafka",
        cache=settings.cache_dir,
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        heap_mb=settings.kafka_heap_mb,
        java=java_for_kafka(),
    )


def kafka_security(settings: Settings) -> dict[str, str] | None:
    """The platform's Kafka login (SASL/SCRAM-SHA-512 settings for every client), or None.

    In order: ``kafka_username`` + ``kafka_password``; ``kafka_credentials_file``;
    with no ``kafka_bootstrap_servers`` (the local stack's broker), the stack's
    generated credentials, once its first start has made them. None: a cluster
    without authentication.
    """
    if settings.kafka_username and settings.kafka_password is not None:
        return sasl_config(settings.kafka_username, settings.kafka_password.get_secret_value())
    path = settings.kafka_credentials_file
    if path is None and settings.kafka_bootstrap_servers is None:
        path = kafka(settings).credentials_file
        if not path.exists():
            return None
    if path is None:
        return None
    creds = read_credentials(path)
    return sasl_config(creds["username"], creds["password"])


def kafka_env(settings: Settings) -> dict[str, str]:
    """MARKETLAKE_* variables that give a child process this platform's broker and login.

    The login travels as the credentials file's path (or, when configured
    that way, as username and password) in the environment, never on a
    command line.
    """
    env = {"MARKETLAKE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap}
    if settings.kafka_username and settings.kafka_password is not None:
        env["MARKETLAKE_KAFKA_USERNAME"] = settings.kafka_username
        env["MARKETLAKE_KAFKA_PASSWORD"] = settings.kafka_password.get_secret_value()
    elif settings.kafka_credentials_file is not None:
        env["MARKETLAKE_KAFKA_CREDENTIALS_FILE"] = str(settings.kafka_credentials_file)
    elif settings.kafka_bootstrap_servers is None:
        env["MARKETLAKE_KAFKA_CREDENTIALS_FILE"] = str(kafka(settings).credentials_file)
    return env


def lake_config(settings: Settings, pg: PostgresService, store: MinioService) -> LakeConfig:
    """The stack's lake: catalog on PostgreSQL, warehouse in the MinIO bucket."""
    from lake.catalog import LakeConfig, S3Config

    return LakeConfig(
        settings.lake_catalog,
        pg.sqlalchemy_url,
        f"s3://{settings.lake_bucket}/warehouse",
        S3Config(store.endpoint, store.access_key, store.secret_key, store.region),
    )


def read_only_lake(settings: Settings, config: LakeConfig, duration_s: int = 3600) -> LakeConfig:
    """``config`` with a temporary S3 key that can only read the lake's bucket.

    For readers (``marketlake query`` on DuckDB): MinIO's STS hands out the key,
    valid ``duration_s`` seconds; raises ``ServiceError`` if MinIO cannot.
    """
    import dataclasses

    from lake.catalog import S3Config

    if config.s3 is None:
        return config
    creds = minio(settings).read_only_credentials(settings.lake_bucket, duration_s)
    s3 = S3Config(
        config.s3.endpoint,
        creds["access_key"],
        creds["secret_key"],
        config.s3.region,
        session_token=creds["session_token"],
    )
    return dataclasses.replace(config, s3=s3)


def prepare_lake(settings: Settings, pg: PostgresService, store: MinioService) -> LakeConfig:
    """Bucket and catalog tables, so both pyiceberg and Trino find them (idempotent)."""
    from lake.catalog import open_catalog

    store.ensure_bucket(settings.lake_bucket)
    config = lake_config(settings, pg, store)
    open_catalog(config)  # pyiceberg creates its catalog tables on first use
    return config


WRITE_CATALOG = "iceberg"
"""Trino's catalog on the lake for the writer principal (everything allowed)."""
READ_CATALOG = "iceberg_ro"
"""The same lake as a catalog whose connector refuses every write (the reader's only one)."""


def trino_catalogs(
    settings: Settings, pg: PostgresService, store: MinioService
) -> dict[str, dict[str, str]]:
    """The lake twice: writable for the writer, read-only in the connector for the reader.

    Trino's file-based access control cannot stop a read-only user's table
    procedures (``ALTER TABLE ... EXECUTE expire_snapshots``, ``rollback_to_snapshot``,
    ``add_files``, ...); the reader's catalog refuses them itself.
    """

    def catalog(read_only: bool) -> dict[str, str]:
        return iceberg_jdbc_catalog(
            catalog_name=settings.lake_catalog,
            jdbc_url=f"jdbc:postgresql://{pg.host}:{pg.port}/{pg.database}",
            jdbc_user=pg.user,
            jdbc_password=pg.password,
            warehouse=f"s3://{settings.lake_bucket}/warehouse",
            s3_endpoint=store.endpoint,
            s3_access_key=store.access_key,
            s3_secret_key=store.secret_key,
            s3_region=store.region,
            read_only=read_only,
        )

    return {WRITE_CATALOG: catalog(read_only=False), READ_CATALOG: catalog(read_only=True)}


def trino(settings: Settings) -> TrinoService:
    """The stack's Trino (its home holds the credentials and certificate made on first start)."""
    return TrinoService(
        home=settings.stack_home / "trino",
        cache=settings.cache_dir,
        port=settings.trino_port,
        heap_mb=settings.trino_heap_mb,
        reader_catalogs=(READ_CATALOG,),
    )


def trino_engine(
    svc: TrinoService, *, writer: bool = False, allow_writes: bool = False
) -> TrinoEngine:
    """A query engine on ``svc``'s lake: as its read-only principal, or as the writer.

    The reader (queries and dashboards: ``marketlake query``) reads the lake's
    read-only catalog, the writer (the platform's own code) the writable one; the
    same ``namespace.table`` names work on both. Over HTTPS, verified against the
    node's own certificate; raises ``ServiceError`` if the node never started (no
    credentials yet).
    """
    from lake.query import TrinoEngine

    user, password = svc.principal(reader=not writer)
    return TrinoEngine(
        svc.host,
        svc.port,
        user,
        WRITE_CATALOG if writer else READ_CATALOG,
        password=password,
        ca_file=svc.ca_file,
        allow_writes=allow_writes,
    )


@dataclass
class LakeTrino:
    """Trino with the lake's catalogs (``iceberg``, ``iceberg_ro``): starts PostgreSQL and MinIO first."""

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
        self.trino.reader_catalogs = (READ_CATALOG,)
        self.trino.start()

    def stop(self) -> bool:
        return self.trino.stop()

    def status(self) -> dict[str, object]:
        return self.trino.status()


@dataclass
class After:
    """A service that starts what it needs first (stopping it leaves those running)."""

    service: Service
    needs: tuple[Service, ...]

    @property
    def name(self) -> str:
        return self.service.name

    def install(self) -> object:
        return self.service.install()

    def start(self) -> None:
        for dependency in self.needs:
            dependency.start()
        self.service.start()

    def stop(self) -> bool:
        return self.service.stop()

    def status(self) -> dict[str, object]:
        return self.service.status()


def superset(settings: Settings, pg: PostgresService) -> SupersetService:
    """The stack's Superset: metadata in its own database on ``pg``, home under the stack dir."""
    return SupersetService(
        home=settings.stack_home / "superset",
        cache=settings.cache_dir,
        port=settings.superset_port,
        accounts=settings.accounts_path,
        postgres=pg,
    )


@dataclass
class DagsterService(LocalService):
    """Dagster's UI (behind marketlake's login) and daemon, as ``marketlake ui`` runs them.

    Not a third-party server but the platform's own command, run detached like
    the others so that ``stack up`` brings up the whole platform and ``stack
    status`` shows it. In the stack its instance stores runs, schedules and
    sensors in PostgreSQL (database ``dagster``): the process runs in stack mode.
    """

    port: int = 3000
    start_timeout: float = 180.0  # the webserver loads every definition (slow on 2 busy cores)
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)  # settings for the process (stack mode)
    accounts: Path | None = None  # the platform accounts its login checks
    instance_dir: Path | None = None  # DAGSTER_HOME (default: <data dir>/dagster)

    name = "dagster"
    title = "Dagster"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def data_dir(self) -> Path:
        """The Dagster instance's home (its dagster.yaml; runs are in PostgreSQL)."""
        return self.instance_dir or self.home / "data"

    @property
    def credentials_file(self) -> Path:
        """Not generated: the platform accounts (``marketlake accounts add NAME --role operator``)."""
        return self.accounts or self.home / "accounts.json"

    def _has_credentials(self) -> bool:
        return self.credentials_file.exists()

    def install(self) -> Path:
        return Path(self.python)  # the platform's own environment: nothing to install

    def installed(self) -> bool:
        return Path(self.python).exists()

    def configure(self) -> None:
        return None  # the instance's dagster.yaml is written by the command itself

    def command(self) -> list[str]:
        return [self.python, "-m", "orchestration.cli", "ui", "--port", str(self.port)]

    def server_env(self) -> dict[str, str]:
        return dict(self.env)

    def _process_marker(self) -> str:
        return f"orchestration.cli ui --port {self.port}"  # the cmdline's NULs read as spaces

    def healthy(self, timeout: float = 3.0) -> bool:
        try:
            fetch(f"{self.url}/_marketlake/login", timeout)  # the login page answers 200
        except OSError:
            return False
        return True


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings given to ``settings`` in code, as the environment a child process reads.

    What came from the environment reaches a child anyway; secrets are never
    passed this way (they stay in their files or the inherited environment).
    """
    env: dict[str, str] = {}
    values = settings.model_dump(mode="json", include=settings.model_fields_set)
    for name, value in values.items():
        if value is None or isinstance(getattr(settings, name), SecretStr):
            continue
        env[f"MARKETLAKE_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def dagster(settings: Settings) -> DagsterService:
    """The stack's Dagster UI and daemon, in stack mode (their instance on PostgreSQL)."""
    return DagsterService(
        home=settings.stack_home / "dagster",
        cache=settings.cache_dir,
        port=settings.dagster_port,
        env={**settings_env(settings), "MARKETLAKE_MODE": "stack"},
        accounts=settings.accounts_path,
        instance_dir=Path(os.environ.get("DAGSTER_HOME", settings.data_dir / "dagster")),
    )


def services(settings: Settings) -> dict[str, Service]:
    """Name -> service, in the order they start (and the reverse of how they stop)."""
    pg, store = postgres(settings), minio(settings)
    lake_trino = LakeTrino(settings, pg, store, trino(settings))
    return {
        "kafka": kafka(settings),
        "postgres": pg,
        "minio": store,
        "trino": lake_trino,
        "superset": After(superset(settings, pg), needs=(pg, lake_trino)),
        "dagster": After(dagster(settings), needs=(pg, store)),
    }
