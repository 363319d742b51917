"""Trino on the stack refuses strangers and lets the read-only principal only read.

The session's lake stack (PostgreSQL + MinIO + Trino, as ``assets.platform.stack``
wires them) is used as deployed: HTTPS with the node's self-signed certificate,
password-file authentication and file-based access control. Anonymous requests
and wrong passwords get 401; the reader can SELECT, SHOW and DESCRIBE a lake
table, and Trino itself (not the engine's statement filter, which is lifted
here) refuses its CREATE, INSERT, DELETE, DROP and ALTER, leaving the table as
it was; the writer creates and writes. Secrets stay off command lines, in files
only the owner reads, and survive a restart unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
import trino

from assets.platform import stack
from deploy.trino.trino_service import https_session
from lake.catalog import open_catalog
from lake.query import LakeQueryError, TrinoEngine

pytestmark = pytest.mark.integration

SCHEMA = "sec"
EMPTY_SCHEMA = "sec_empty"  # Trino refuses to drop a non-empty schema before asking access control


@pytest.fixture(scope="module")
def table(lake_stack) -> str:
    """A lake table the writer created and filled through Trino."""
    name = f"{SCHEMA}.t_{uuid.uuid4().hex[:8]}"
    svc = lake_stack.trino
    svc.execute(f"CREATE SCHEMA IF NOT EXISTS iceberg.{SCHEMA}")
    svc.execute(f"CREATE SCHEMA IF NOT EXISTS iceberg.{EMPTY_SCHEMA}")
    svc.execute(f"CREATE TABLE iceberg.{name} (id bigint, symbol varchar)")
    svc.execute(f"INSERT INTO iceberg.{name} VALUES (1, 'AAPL'), (2, 'MSFT')")
    return name


def _secrets(svc) -> list[str]:
    return list(json.loads(svc.credentials_file.read_text()).values())


def _snapshot(lake_stack, name: str) -> int:
    snap = open_catalog(lake_stack.config).load_table(name).current_snapshot()
    assert snap is not None
    return snap.snapshot_id


def test_anonymous_and_wrong_passwords_are_refused(lake_stack):
    svc = lake_stack.trino
    session = https_session(svc.ca_file)
    # a new connection for each request: one Trino closed after a refusal could otherwise be
    # reused and fail as "remote end closed connection" (seen once under load), and a
    # request Trino may have read is never retried
    session.headers["Connection"] = "close"
    statement = f"{svc.url}/v1/statement"
    for user in (svc.user, svc.reader_user):
        anonymous = session.post(statement, data="SELECT 1", headers={"X-Trino-User": user})
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.headers.get("WWW-Authenticate", "").startswith("Basic")
        wrong = session.post(
            statement, data="SELECT 1", headers={"X-Trino-User": user}, auth=(user, "wrong")
        )
        assert wrong.status_code == 401, wrong.text
    stranger = session.post(
        statement, data="SELECT 1", headers={"X-Trino-User": "admin"}, auth=("admin", "admin")
    )
    assert stranger.status_code == 401
    # the writer's password does not open the reader's account, nor the reverse
    swapped = session.post(
        statement,
        data="SELECT 1",
        headers={"X-Trino-User": svc.reader_user},
        auth=(svc.reader_user, svc.password),
    )
    assert swapped.status_code == 401
    # the client library sees the refusal too
    with pytest.raises(LakeQueryError, match="401"):
        TrinoEngine(svc.host, svc.port, svc.user, password="wrong", ca_file=svc.ca_file).query(
            "SELECT 1"
        )
    # there is no plain-HTTP listener to try instead
    with pytest.raises(requests.ConnectionError):
        requests.Session().get(f"http://{svc.address}/v1/info", timeout=5)
    # /v1/info stays public (health checks); the node's details are not
    assert session.get(f"{svc.url}/v1/info", timeout=5).status_code == 200
    assert session.get(f"{svc.url}/v1/node", timeout=5).status_code == 401
    reader_nodes = session.get(f"{svc.url}/v1/node", auth=svc.principal(reader=True), timeout=5)
    assert reader_nodes.status_code == 403


def test_the_certificate_is_verified(lake_stack):
    svc = lake_stack.trino
    unverified = requests.Session()
    unverified.trust_env = False  # requests' own CA bundle, which does not know this node
    with pytest.raises(requests.exceptions.SSLError):
        unverified.get(f"{svc.url}/v1/info", timeout=5)


def test_the_reader_reads(lake_stack, table):
    reader = lake_stack.trino_engine()
    try:
        catalogs = set(reader.query("SHOW CATALOGS").column(0).to_pylist())
        assert catalogs == {stack.READ_CATALOG, "system"}  # the writable catalog is hidden
        assert reader.query("SELECT current_user AS u").to_pylist() == [
            {"u": lake_stack.trino.reader_user}
        ]
        rows = reader.query(f"SELECT id, symbol FROM {table} ORDER BY id").to_pylist()
        assert rows == [{"id": 1, "symbol": "AAPL"}, {"id": 2, "symbol": "MSFT"}]
        shown = reader.query(f"SHOW TABLES FROM {SCHEMA}").column(0).to_pylist()
        assert table.split(".")[1] in shown
        described = reader.query(f"DESCRIBE {table}").column(0).to_pylist()
        assert described == ["id", "symbol"]
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("sql", "denied"),
    [
        ("CREATE TABLE {schema}.other (x bigint)", "Cannot create table"),
        ("CREATE TABLE {schema}.copy AS SELECT * FROM {table}", "Cannot create table"),
        ("INSERT INTO {table} VALUES (3, 'IBM')", "Cannot insert into table"),
        ("DELETE FROM {table} WHERE id = 1", "Cannot delete from table"),
        ("UPDATE {table} SET symbol = 'X'", "Cannot update columns"),
        ("DROP TABLE {table}", "Cannot drop table"),
        ("ALTER TABLE {table} ADD COLUMN venue varchar", "Cannot add a column"),
        ("ALTER TABLE {table} RENAME TO {schema}.renamed", "Cannot rename table"),
        ("CREATE SCHEMA sneaky", "Cannot create schema"),
        ("DROP SCHEMA {empty}", "Cannot drop schema"),
        ("ALTER TABLE {table} EXECUTE optimize", "Cannot execute table procedure"),
        (
            "ALTER TABLE {table} EXECUTE expire_snapshots(retention_threshold => '7d')",
            "Cannot execute table procedure",
        ),
        ("CALL system.rollback_to_snapshot('sec', 'x', 1)", "Cannot execute procedure"),
        ("SELECT * FROM iceberg.{table}", "Cannot access catalog iceberg"),
        ("INSERT INTO iceberg.{table} VALUES (3, 'IBM')", "Cannot access catalog iceberg"),
        ("ALTER TABLE iceberg.{table} EXECUTE optimize", "Cannot access catalog iceberg"),
    ],
)
def test_the_reader_cannot_write(lake_stack, table, sql, denied):
    before = _snapshot(lake_stack, table)
    # the statement filter is lifted: Trino itself must refuse
    reader = lake_stack.trino_engine()
    reader.allow_writes = True
    try:
        with pytest.raises(LakeQueryError, match="PERMISSION_DENIED") as info:
            reader.query(sql.format(table=table, schema=SCHEMA, empty=EMPTY_SCHEMA))
    finally:
        reader.close()
    assert denied in str(info.value)
    assert _snapshot(lake_stack, table) == before
    rows = lake_stack.trino.execute(f"SELECT count(*) FROM iceberg.{table}")
    assert rows == [[2]]
    schemas = {row[0] for row in lake_stack.trino.execute("SHOW SCHEMAS FROM iceberg")}
    assert {SCHEMA, EMPTY_SCHEMA} <= schemas and "sneaky" not in schemas


def test_the_reader_cannot_pose_as_the_writer(lake_stack, table):
    svc = lake_stack.trino
    user, password = svc.principal(reader=True)
    conn = trino.dbapi.connect(
        host=svc.host,
        port=svc.port,
        user=svc.user,  # asks to run as the writer, authenticated as the reader
        auth=trino.auth.BasicAuthentication(user, password),
        http_scheme="https",
        http_session=https_session(svc.ca_file),
    )
    try:
        cur = conn.cursor()
        with pytest.raises(trino.exceptions.TrinoUserError, match="cannot impersonate"):
            cur.execute(f"DROP TABLE iceberg.{table}")
            cur.fetchall()
    finally:
        conn.close()
    assert svc.execute(f"SELECT count(*) FROM iceberg.{table}") == [[2]]


def test_the_writer_creates_and_writes(lake_stack):
    name = f"{SCHEMA}.w_{uuid.uuid4().hex[:8]}"
    writer = lake_stack.trino_engine(writer=True)
    writer.allow_writes = True
    try:
        writer.query(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        writer.query(f"CREATE TABLE {name} AS SELECT 1 AS id")
        writer.query(f"INSERT INTO {name} VALUES 2, 3")
        writer.query(f"DELETE FROM {name} WHERE id = 1")
        writer.query(f"ALTER TABLE {name} ADD COLUMN note varchar")
        assert writer.query(f"SELECT id FROM {name} ORDER BY id").column(0).to_pylist() == [2, 3]
        writer.query(f"DROP TABLE {name}")
    finally:
        writer.close()


def test_marketlake_query_runs_as_the_reader(lake_stack, table, tmp_path):
    env = {
        **os.environ,
        **lake_stack.env,
        "MARKETLAKE_MODE": "stack",
        "MARKETLAKE_DATA_DIR": str(tmp_path / "data"),
    }

    def query(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestration.cli", "query", *args],
            capture_output=True, text=True, env=env, timeout=300, check=False,
        )  # fmt: skip

    who = query("SELECT current_user AS u", "--engine", "trino", "--format", "json")
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout) == [{"u": lake_stack.trino.reader_user}]
    count = query(f"SELECT count(*) AS n FROM {table}", "--engine", "trino", "--format", "json")
    assert count.returncode == 0, count.stderr
    assert json.loads(count.stdout) == [{"n": 2}]
    refused = query(f"DROP TABLE {table}", "--engine", "trino")
    assert refused.returncode == 1 and "refused" in refused.stderr
    # an operator's --write runs as the writer
    operator = query("SELECT current_user AS u", "--engine", "trino", "--write", "--format", "json")
    assert operator.returncode == 0, operator.stderr
    assert json.loads(operator.stdout) == [{"u": lake_stack.trino.user}]
    assert lake_stack.trino.execute(f"SELECT count(*) FROM iceberg.{table}") == [[2]]


def test_secrets_stay_off_command_lines_and_in_private_files(lake_stack):
    svc = lake_stack.trino
    pid = svc.process.pid()
    assert pid is not None
    secrets = _secrets(svc)
    assert len(secrets) == 4 and all(len(s) >= 32 for s in secrets)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    for secret in secrets:
        assert secret not in argv
        assert secret not in environ
    # the password file holds hashes, never the passwords
    password_db = (svc.etc_dir / "password.db").read_text()
    for secret in secrets:
        assert secret not in password_db
    for line in password_db.splitlines():
        user, iterations, salt, digest = line.split(":")
        assert user in (svc.user, svc.reader_user) and int(iterations) >= 1000
        password = svc.principal(reader=user == svc.reader_user)[1]
        expected = hashlib.pbkdf2_hmac(
            "sha1", password.encode(), bytes.fromhex(salt), int(iterations), len(digest) // 2
        )
        assert expected.hex() == digest
    assert svc.home.stat().st_mode & 0o777 == 0o700
    for private in (
        svc.credentials_file,
        svc.keystore_file,
        svc.etc_dir / "config.properties",
        svc.etc_dir / "password.db",
        svc.catalog_dir / "iceberg.properties",
    ):
        assert private.stat().st_mode & 0o777 == 0o600, private


def test_credentials_and_certificate_are_reused_on_restart(lake_stack, table):
    svc = lake_stack.trino
    creds = svc.credentials_file.read_text()
    cert = svc.ca_file.read_text()
    old_pid = svc.process.pid()
    svc.restart()
    assert svc.process.pid() not in (None, old_pid)
    assert svc.credentials_file.read_text() == creds
    assert svc.ca_file.read_text() == cert
    assert svc.credentials_file.stat().st_mode & 0o777 == 0o600
    reader = stack.trino_engine(svc)
    try:
        assert reader.query(f"SELECT count(*) AS n FROM {table}").to_pylist() == [{"n": 2}]
    finally:
        reader.close()
