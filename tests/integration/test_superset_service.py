"""Superset as deploy/ runs it: its own environment, metadata in PostgreSQL, generated logins."""

from __future__ import annotations

import json
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.postgres.postgres_service import PostgresService
from deploy.superset.superset_service import SUPERSET_VERSION, SupersetService
from settings import Settings
from tests.support import free_port, private_postgres

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresService]:
    with private_postgres() as svc:
        yield svc


@pytest.fixture(scope="module")
def superset(tmp_path_factory, postgres) -> Iterator[SupersetService]:
    """One Superset for this module (installed once into the shared cache)."""
    svc = SupersetService(
        home=tmp_path_factory.mktemp("superset"),
        cache=Settings().cache_dir,
        port=free_port(),
        postgres=postgres,
    )
    svc.start()
    yield svc
    svc.stop()


def _open(request: str | urllib.request.Request) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _login(svc: SupersetService, username: str, password: str) -> tuple[int, dict[str, object]]:
    body = {"username": username, "password": password, "provider": "db", "refresh": False}
    request = urllib.request.Request(
        f"{svc.url}/api/v1/security/login",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    status, payload = _open(request)
    time.sleep(0.3)  # logins are rate-limited (5 a second)
    return status, json.loads(payload or b"{}")


def _api(svc: SupersetService, token: object, path: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"{svc.url}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    status, payload = _open(request)
    assert status == 200, payload[:500]
    result: dict[str, object] = json.loads(payload)
    return result


def _listeners(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (IPv4 and IPv6), from /proc."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def _processes(marker: str) -> list[int]:
    """Pids of live processes whose command line holds ``marker`` (gunicorn master and workers)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            state = (proc / "stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if marker.encode() in cmdline and state != "Z":
            pids.append(int(proc.name))
    return pids


def test_installed_once_into_its_own_environment_and_healthy(superset):
    venv = superset.install()
    assert venv == superset.venv and (venv / "bin" / "python").is_file()
    assert (venv.parent / ".complete").read_text() == superset.install_key
    assert superset.install_key.startswith(f"{SUPERSET_VERSION}-")
    assert venv.is_relative_to(Settings().cache_dir)  # outside the repository
    t0 = time.monotonic()
    assert superset.install() == venv  # second install: nothing to do
    assert time.monotonic() - t0 < 1.0
    st = superset.status()
    assert st == {
        "service": "superset",
        "state": "healthy",
        "address": f"127.0.0.1:{superset.port}",
        "pid": superset.process.pid(),
        "data_dir": str(superset.home / "data"),
        "log": str(superset.home / "superset.log"),
        "installed": True,
        "version": SUPERSET_VERSION,
        "url": f"http://127.0.0.1:{superset.port}",
        "credentials": str(superset.credentials_file),
    }
    assert _open(f"{superset.url}/health") == (200, b"OK")
    assert superset.access_log.is_file()
    assert "GET /health" in superset.access_log.read_text()


def test_login_page_renders_with_csp_and_its_own_session_cookie(superset):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{superset.url}/login/", timeout=30) as resp:
        assert resp.status == 200
        page = resp.read().decode()
        csp = resp.headers["Content-Security-Policy"]  # Talisman
        cookies = resp.headers.get_all("Set-Cookie") or []
    assert "default-src 'self'" in csp
    assert any(c.startswith("superset_session=") and "HttpOnly" in c for c in cookies), cookies
    assert "<html" in page.lower()


def test_binds_loopback_only(superset):
    assert _listeners(superset.port) == {"0100007F"}  # 127.0.0.1, nothing on 0.0.0.0 or ::


def test_credentials_and_config_are_private_and_generated(superset):
    assert stat.S_IMODE(superset.home.stat().st_mode) == 0o700
    for path in (superset.credentials_file, superset.config_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    creds = json.loads(superset.credentials_file.read_text())
    assert set(creds) == {"secret_key", "admin_password", "metadata_password"}
    assert superset.admin_password == creds["admin_password"] != "admin"
    assert len(creds["secret_key"]) >= 48 and len(creds["admin_password"]) >= 18
    config = superset.config_file.read_text()
    assert repr(creds["secret_key"]) in config
    assert "postgresql+psycopg2://superset:" in config
    assert "WTF_CSRF_ENABLED = True" in config


def test_generated_admin_logs_in_and_admin_admin_is_refused(superset):
    status, body = _login(superset, "admin", superset.admin_password)
    assert status == 200, body
    token = body["access_token"]
    me = _api(superset, token, "/api/v1/me/")["result"]
    assert isinstance(me, dict) and me["username"] == "admin"
    # no example data: no database connection, no dashboard
    assert _api(superset, token, "/api/v1/database/")["count"] == 0
    assert _api(superset, token, "/api/v1/dashboard/")["count"] == 0
    # Trino (the lake) can be added as a database: its SQLAlchemy driver is installed
    engines = _api(superset, token, "/api/v1/database/available/")["databases"]
    assert isinstance(engines, list)
    trino = [e for e in engines if e["engine"] == "trino"]
    assert trino and trino[0]["available_drivers"], engines

    for password in ("admin", "not-the-password", ""):
        status, body = _login(superset, "admin", password)
        assert status in (400, 401), (password, status, body)
    assert _login(superset, "admin", "admin")[0] == 401


def test_metadata_in_postgres_under_its_own_role(superset, postgres):
    with postgres.connect(superset.metadata_database) as conn:
        owner = conn.execute(
            "select pg_get_userbyid(datdba) from pg_database where datname = current_database()"
        ).fetchone()
        role = conn.execute(
            "select rolsuper, rolcreatedb, rolcreaterole from pg_roles where rolname = 'superset'"
        ).fetchone()
        tables = conn.execute(
            "select tableowner from pg_tables where tablename in ('ab_user', 'dashboards')"
        ).fetchall()
        admins = conn.execute("select count(*) from ab_user where username = 'admin'").fetchone()
    assert owner == ("superset",)
    assert role == (False, False, False)
    assert tables == [("superset",), ("superset",)]
    assert admins == (1,)


def test_stop_leaves_no_process_and_restart_reuses_everything(superset, postgres):
    with postgres.connect(superset.metadata_database) as conn:  # as if changed in the UI
        conn.execute("update ab_user set password = 'not-a-hash' where username = 'admin'")
    creds = superset.credentials_file.read_text()
    config = superset.config_file.read_text()
    marker = str(superset.access_log)
    assert len(_processes(marker)) == 1 + superset.workers  # gunicorn master and its workers

    assert superset.stop() is True
    assert _processes(marker) == []
    assert _listeners(superset.port) == set()
    st = superset.status()
    assert st["state"] == "stopped" and st["pid"] is None
    assert not superset.healthy()
    assert superset.stop() is False  # nothing left to stop

    superset.start()
    assert superset.healthy()
    assert superset.credentials_file.read_text() == creds  # reused, not regenerated
    assert superset.config_file.read_text() == config
    assert stat.S_IMODE(superset.credentials_file.stat().st_mode) == 0o600
    setup = superset.setup_log.read_text()
    assert setup.count("--- db upgrade") == 1  # migrations and init ran on the first start only
    assert setup.count("--- admin user") == 2
    assert "set the password of 'admin' back to the stored one" in setup
    status, _ = _login(superset, "admin", superset.admin_password)
    assert status == 200
