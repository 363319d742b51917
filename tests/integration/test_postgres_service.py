"""PostgreSQL as deploy/ runs it: its own cluster on 127.0.0.1, password auth, data kept."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy

from deploy.postgres.postgres_service import PostgresService
from tests.support import private_postgres

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresService]:
    with private_postgres() as svc:
        yield svc


def _show(svc: PostgresService, setting: str) -> str:
    with svc.connect() as conn:
        row = conn.execute(f"show {setting}").fetchone()
    assert row is not None
    return str(row[0])


def test_install_is_a_noop_and_server_is_healthy(postgres):
    bindir = postgres.install()
    assert (bindir / "postgres").is_file() and (bindir / "initdb").is_file()
    t0 = time.monotonic()
    assert postgres.install() == bindir  # apt installed it: nothing to do
    assert time.monotonic() - t0 < 1.0
    st = postgres.status()
    assert st == {
        "service": "postgres",
        "state": "healthy",
        "address": f"127.0.0.1:{postgres.port}",
        "pid": postgres.process.pid(),
        "data_dir": str(postgres.home / "data"),
        "log": str(postgres.home / "postgres.log"),
        "installed": True,
        "url": None,
        "credentials": str(postgres.credentials_file),
    }
    assert isinstance(st["pid"], int)
    assert (postgres.data_dir / "PG_VERSION").exists()
    assert os.stat(f"/proc/{st['pid']}").st_uid != 0  # never root
    assert f'listening on IPv4 address "127.0.0.1", port {postgres.port}' in (
        postgres.process.log_file.read_text()
    )
    assert _show(postgres, "listen_addresses") == "127.0.0.1"
    assert _show(postgres, "shared_buffers") == "128MB"
    assert _show(postgres, "max_connections") == "100"
    assert _show(postgres, "password_encryption") == "scram-sha-256"


def test_generated_password_works_and_wrong_ones_are_refused(postgres):
    mode = stat.S_IMODE(postgres.password_file.stat().st_mode)
    assert mode == 0o600
    assert len(postgres.password) >= 24
    with psycopg.connect(postgres.dsn) as conn:
        row = conn.execute("select current_user, current_database()").fetchone()
        rules = conn.execute("select distinct auth_method from pg_hba_file_rules").fetchall()
    assert row == ("marketlake", "marketlake")
    assert rules == [("scram-sha-256",)]
    tcp = {"host": "127.0.0.1", "port": postgres.port, "user": "marketlake", "dbname": "postgres"}
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(**tcp, password="not-the-password", connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(**tcp, password="", connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(  # the unix socket asks for the password too
            host=str(postgres.socket_dir), port=postgres.port, user="marketlake",
            dbname="postgres", password="not-the-password", connect_timeout=5,
        )  # fmt: skip


def test_ensure_database_and_sqlalchemy_url_for_pyiceberg(postgres, tmp_path):
    assert postgres.ensure_database("marketlake") is False  # created by start()
    assert postgres.ensure_database("dagster_test") is True
    assert postgres.ensure_database("dagster_test") is False
    with postgres.connect("dagster_test") as conn:
        assert conn.execute("select current_database()").fetchone() == ("dagster_test",)

    url = postgres.sqlalchemy_url
    assert url.startswith("postgresql+psycopg2://marketlake:")
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("select 1")).scalar() == 1
    engine.dispose()

    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("marketlake", uri=url, warehouse=tmp_path.as_uri())
    catalog.create_namespace("raw")
    assert ("raw",) in catalog.list_namespaces()
    catalog.engine.dispose()


def test_stop_then_start_keeps_data_and_password(postgres):
    with postgres.connect() as conn:
        conn.execute("create table kept (id int primary key, note text)")
        conn.execute("insert into kept values (1, 'before stop'), (2, 'also')")
    password = postgres.password
    assert postgres.stop() is True
    st = postgres.status()
    assert st["state"] == "stopped" and st["pid"] is None
    assert not postgres.healthy()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres.dsn, connect_timeout=3)
    assert postgres.stop() is False  # nothing left to stop

    postgres.start()
    assert postgres.healthy()
    assert postgres.password == password  # reused, not regenerated
    with postgres.connect() as conn:
        rows = conn.execute("select id, note from kept order by id").fetchall()
    assert rows == [(1, "before stop"), (2, "also")]


def test_committed_data_survives_kill(postgres):
    with postgres.connect() as conn:
        conn.execute("insert into kept values (3, 'before kill')")
    postgres.kill()
    assert postgres.status()["state"] == "stopped"
    postgres.start()  # crash recovery replays the WAL
    with postgres.connect() as conn:
        assert conn.execute("select note from kept where id = 3").fetchone() == ("before kill",)
