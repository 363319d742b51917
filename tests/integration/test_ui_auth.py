"""``marketlake ui`` as a user starts it, in stack mode on a real PostgreSQL: who gets in, and
what never leaks.

One UI (webserver gate + its code server + the daemon + the daemon's code
server) runs for the module on a free port with a temporary data directory and
DAGSTER_HOME, its instance on a PostgreSQL cluster started here. Accounts are
made with ``marketlake accounts add --password-stdin`` while it runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from dagster import DagsterInstance
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol

from deploy.postgres.postgres_service import PostgresService
from tests.support import free_port, private_postgres, stop_group

pytestmark = pytest.mark.integration

LOGIN = "/_marketlake/login"
LOGOUT = "/_marketlake/logout"
ACCOUNTS = {  # name: (role, member, password)
    "olga": ("operator", None, "operator secret 1"),
    "vera": ("viewer", None, "viewer secret 22"),
    "tom": ("trader", "USR01", "trader secret 333"),
}
VERSION = {"query": "{ version }"}
NUX = {"query": "mutation { setNuxSeen }"}  # a mutation whose effect is a file we can look for
PERMISSIONS = {"query": "{ permissions { permission value } }"}
DAEMON = {
    "query": '{ instance { daemonHealth { daemonStatus(daemonType: "SCHEDULER") '
    "{ lastHeartbeatTime } } } }"
}


@dataclass
class UI:
    base: str
    port: int
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path
    dagster_home: Path
    pg_password: str
    startup_output: str


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresService]:
    with private_postgres() as pg:
        yield pg


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService) -> Iterator[UI]:
    """``marketlake ui`` with its daemon, stack mode; the accounts added once it answers."""
    tmp = tmp_path_factory.mktemp("ui")
    port = free_port()
    env = {
        **os.environ,
        "MARKETLAKE_DATA_DIR": str(tmp / "data"),
        "DAGSTER_HOME": str(tmp / "dagster"),
        "MARKETLAKE_MODE": "stack",
        "MARKETLAKE_STACK_DIR": str(tmp / "stack"),
        "MARKETLAKE_POSTGRES_DIR": str(postgres.home),
        "MARKETLAKE_POSTGRES_PORT": str(postgres.port),
    }
    log = tmp / "ui.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestration.cli", "ui", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(base + LOGIN, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"marketlake ui did not come up on {base}:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        startup = log.read_text()
        for name, (role, member, password) in ACCOUNTS.items():
            extra = ["--member", member] if member else []
            _cli(env, "accounts", "add", name, "--role", role, *extra, "--password-stdin",
                 stdin=password + "\n")  # fmt: skip
        yield UI(base, port, proc, env, log, tmp / "dagster", postgres.password, startup)
    finally:
        stop_group(proc)


def _client(ui: UI, cookies: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(base_url=ui.base, headers={"Origin": ui.base}, cookies=cookies, timeout=60)


def _login(ui: UI, name: str, password: str | None = None) -> tuple[httpx.Client, httpx.Response]:
    c = _client(ui)
    page = c.get(LOGIN)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    form = {"csrf": csrf.group(1), "name": name, "password": password or ACCOUNTS[name][2]}
    return c, c.post(LOGIN, data={**form, "next": "/"})


def _permissions(c: httpx.Client) -> dict[str, bool]:
    """What Dagster lets this session do (its own read-only mode for viewers)."""
    data = c.post("/graphql", json=PERMISSIONS).json()["data"]["permissions"]
    return {p["permission"]: p["value"] for p in data}


def _ws(ui: UI, cookie: str | None, origin: str) -> ClientConnection:
    headers = {"Cookie": cookie} if cookie else None
    return connect(
        f"ws://127.0.0.1:{ui.port}/graphql", origin=Origin(origin), additional_headers=headers,
        subprotocols=[Subprotocol("graphql-ws")], open_timeout=30,
    )  # fmt: skip


def test_without_an_operator_ui_says_how_to_create_one(ui):
    assert "marketlake accounts add NAME --role operator" in ui.startup_output
    assert f"http://127.0.0.1:{ui.port}" in ui.startup_output


def test_without_login_everything_is_closed(ui):
    c = _client(ui)
    r = c.get("/", headers={"Accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"].startswith(LOGIN)
    assert c.get("/graphql", params=VERSION).status_code == 401
    assert c.post("/graphql", json=VERSION).status_code == 401
    assert c.get("/server_info").status_code == 401
    assert c.get("/asset-groups").status_code == 401


def test_wrong_password_is_refused(ui):
    c, r = _login(ui, "olga", "not the password")
    assert r.status_code == 401 and "Wrong account name or password" in r.text
    assert c.post("/graphql", json=VERSION).status_code == 401
    _, r = _login(ui, "nobody", "not the password")
    assert r.status_code == 401


def test_traders_are_refused(ui):
    c, r = _login(ui, "tom")
    assert r.status_code == 403 and "trader account" in r.text
    assert c.post("/graphql", json=VERSION).status_code == 401


def test_an_operator_uses_graphql_over_post_json(ui):
    c, r = _login(ui, "olga")
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    r = c.post("/graphql", json=VERSION)
    assert r.status_code == 200 and r.json()["data"]["version"], r.text
    perms = _permissions(c)
    assert perms["launch_pipeline_execution"] and perms["wipe_assets"]
    page = c.get("/asset-groups")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert page.headers["x-frame-options"] == "DENY"


def test_mutations_over_get_are_refused_even_logged_in(ui):
    c, _ = _login(ui, "olga")
    nux = ui.dagster_home / ".nux" / "nux.yaml"
    nux.unlink(missing_ok=True)
    assert c.get("/graphql", params=NUX).status_code == 405
    assert c.get("/graphql", params=VERSION).status_code == 200  # queries still may
    assert not nux.exists()
    # the same mutation, POSTed as JSON by the operator, runs: the refusal was the GET
    r = c.post("/graphql", json=NUX)
    assert r.status_code == 200 and r.json()["data"]["setNuxSeen"] is True, r.text
    assert nux.exists()


def test_simple_cross_site_posts_are_refused(ui):
    c, _ = _login(ui, "olga")
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        r = c.post("/graphql", content=b'{"query": "mutation { setNuxSeen }"}',
                   headers={"Content-Type": content_type})  # fmt: skip
        assert r.status_code == 415, (content_type, r.text)
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{ui.port + 1}"):
        r = c.post("/graphql", json=NUX, headers={"Origin": origin})
        assert r.status_code == 403, origin
    bare = httpx.Client(base_url=ui.base, cookies=c.cookies, timeout=60)
    assert bare.post("/graphql", json=NUX).status_code == 403  # no Origin, no Referer


def test_bad_host_is_refused(ui):
    c, _ = _login(ui, "olga")
    for host in ("evil.example", f"evil.example:{ui.port}", f"127.0.0.1:{ui.port + 1}"):
        assert c.post("/graphql", json=VERSION, headers={"Host": host}).status_code == 400
        assert c.get(LOGIN, headers={"Host": host}).status_code == 400
    assert _client(ui).get(LOGIN, headers={"Host": f"localhost:{ui.port}"}).status_code == 200


def test_a_viewer_reads_but_cannot_mutate(ui):
    c, r = _login(ui, "vera")
    assert r.status_code == 303
    assert c.post("/graphql", json=VERSION).status_code == 200
    perms = _permissions(c)
    assert not perms["launch_pipeline_execution"] and not perms["wipe_assets"]
    assert c.post("/graphql", json=NUX).status_code == 403


def test_websocket_same_origin_and_subscriptions_only(ui):
    c, _ = _login(ui, "olga")
    cookie = f"marketlake_ui_{ui.port}={c.cookies[f'marketlake_ui_{ui.port}']}"
    with pytest.raises(InvalidStatus):
        _ws(ui, cookie, "http://evil.example").close()
    with pytest.raises(InvalidStatus):
        _ws(ui, None, ui.base).close()  # no session
    with _ws(ui, cookie, ui.base) as ws:
        ws.send('{"type": "connection_init"}')
        assert '"connection_ack"' in str(ws.recv(timeout=30))
        ws.send('{"type": "start", "id": "1", "payload": {"query": "mutation { setNuxSeen }"}}')
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_logout_ends_the_session(ui):
    c, _ = _login(ui, "olga")
    token = c.cookies[f"marketlake_ui_{ui.port}"]
    assert c.post("/graphql", json=VERSION).status_code == 200
    assert c.post(LOGOUT).status_code == 303
    stale = _client(ui, cookies={f"marketlake_ui_{ui.port}": token})
    assert stale.post("/graphql", json=VERSION).status_code == 401


def test_no_password_on_any_command_line(ui):
    """Every process `marketlake ui` started: no PostgreSQL password in its argv (what ps shows)."""
    password = ui.pg_password
    assert len(password) >= 16
    secrets = {password, quote(password, safe="")}
    c, _ = _login(ui, "olga")
    # the daemon reaches the same PostgreSQL with the password from its environment
    deadline = time.monotonic() + 120
    while True:
        status = c.post("/graphql", json=DAEMON).json()["data"]["instance"]["daemonHealth"]
        if status["daemonStatus"]["lastHeartbeatTime"]:
            break
        assert time.monotonic() < deadline, "the daemon never wrote a heartbeat"
        time.sleep(2)
    tree = _descendants(ui.proc.pid)
    argv = {pid: _cmdline(pid) for pid in tree}
    assert sum("dagster api grpc" in a for a in argv.values()) >= 2, argv  # two code servers
    assert any("dagster-daemon" in a for a in argv.values()), argv
    for pid, a in argv.items():
        assert not any(s in a for s in secrets), f"password on the command line of {pid}: {a}"
        if "--instance-ref" in a:  # the instance travels with the password file's path
            assert "password_file" in a, a
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not any(s in ps for s in secrets)
    config = (ui.dagster_home / "dagster.yaml").read_text()
    assert not any(s in config for s in secrets) and "password_file" in config
    # any process loads that instance from the file alone (no variable to pass around)
    instance = DagsterInstance.from_config(str(ui.dagster_home))
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert ui.proc.poll() is None, ui.log.read_text()[-3000:]


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [root], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
