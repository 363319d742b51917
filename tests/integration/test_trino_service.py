"""Trino as deploy/ runs it: installed once, healthy, answers SQL, lists the catalogs it is given.

Besides a ``memory`` catalog the node gets an ``iceberg`` catalog on the JDBC
catalog pointing at a port where nothing listens: Trino builds every catalog at
start and refuses a property it does not know, so a start that succeeds proves
the generated Iceberg/S3 property names are right for the installed version,
without PostgreSQL or MinIO.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deploy.trino.trino_service import (
    TRINO_VERSION,
    TrinoService,
    iceberg_jdbc_catalog,
    java_for_trino,
    memory_catalog,
)
from settings import Settings
from tests.support import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def trino(tmp_path_factory) -> Iterator[TrinoService]:
    """One Trino node for this module (installed once into the shared cache)."""
    nowhere = free_port()  # nothing listens here: the catalog is only configured, not used
    svc = TrinoService(
        home=tmp_path_factory.mktemp("trino"),
        cache=Settings().cache_dir,
        port=free_port(),
        heap_mb=2048,
        java=java_for_trino(),
        catalogs={
            "scratch": memory_catalog(),
            "iceberg": iceberg_jdbc_catalog(
                catalog_name="marketlake",
                jdbc_url=f"jdbc:postgresql://127.0.0.1:{nowhere}/lake",
                jdbc_user="lake",
                jdbc_password="not-used",
                warehouse="s3://lake/warehouse",
                s3_endpoint=f"http://127.0.0.1:{nowhere}",
                s3_access_key="not-used",
                s3_secret_key="not-used",
            ),
        },
    )
    svc.start()
    yield svc
    svc.stop()


def test_install_is_cached(trino):
    root = trino.install()
    assert (root / ".complete").read_text() == TRINO_VERSION
    assert (root / "plugin" / "iceberg").is_dir() and (root / "plugin" / "memory").is_dir()
    assert trino.install() == root  # second install: nothing to do


def test_healthy_and_select_1(trino):
    assert trino.healthy()
    info = trino.info()
    assert info is not None and info["starting"] is False
    assert info["nodeVersion"]["version"] == TRINO_VERSION
    assert trino.execute("SELECT 1") == [[1]]


def test_status(trino):
    st = trino.status()
    assert st["service"] == "trino"
    assert st["state"] == "healthy"
    assert st["address"] == f"127.0.0.1:{trino.port}"
    assert st["pid"] == trino.process.pid() and st["pid"] is not None
    assert st["data_dir"] == str(trino.data_dir)
    assert st["log"] == str(trino.process.log_file)
    assert st["installed"] is True
    assert "SERVER STARTED" in trino.process.log_file.read_text()


def test_catalogs_passed_in_are_listed_and_usable(trino):
    catalogs = {row[0] for row in trino.execute("SHOW CATALOGS")}
    assert catalogs == {"scratch", "iceberg", "system"}  # nothing else by default
    trino.execute("CREATE TABLE scratch.default.t AS SELECT 7 AS x")
    assert trino.execute("SELECT x FROM scratch.default.t") == [[7]]
    secret = (trino.catalog_dir / "iceberg.properties").stat().st_mode & 0o777
    assert secret == 0o600  # catalog files carry credentials


def test_stop_stops(trino):
    pid = trino.process.pid()
    assert pid is not None
    assert trino.stop() is True
    st = trino.status()
    assert st["state"] == "stopped" and st["pid"] is None
    assert not trino.healthy()
    assert trino.stop() is False  # nothing left to stop
