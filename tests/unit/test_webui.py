"""The UI's gate in front of a stand-in app: Host, origin, login, roles, GraphQL rules."""

from __future__ import annotations

import re
import stat
import warnings
from pathlib import Path

import pytest
import structlog
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from orchestration.webui import (
    LOGIN_PATH,
    LOGOUT_PATH,
    ROLE_KEY,
    AuthGate,
    operation_types,
    safe_next,
)
from streaming.accounts import AccountStore
from streaming.login import LoginThrottle, SessionCodec, load_or_create_key

with warnings.catch_warnings():  # Starlette prefers httpx2 now; httpx is what we have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.unit

PORT = 3999
BASE = f"http://127.0.0.1:{PORT}"
PASSWORD = "correct horse battery"
MUTATION = "mutation { setNuxSeen }"


async def echo(request: Request) -> JSONResponse:
    """What Dagster would get: the role the gate put in the scope and the body it saw."""
    body = (await request.body()).decode()
    return JSONResponse({"role": request.scope.get(ROLE_KEY), "body": body})


@pytest.fixture(autouse=True)
def _fresh_logging() -> None:
    """A CLI test run before (CliRunner) may leave structlog writing to its closed stream."""
    structlog.reset_defaults()


@pytest.fixture
def store(tmp_path: Path) -> AccountStore:
    s = AccountStore(tmp_path / "accounts.sqlite", hasher=PasswordHasher(1, 1024, 1))
    s.add("olga", "operator", PASSWORD)
    s.add("vera", "viewer", PASSWORD)
    s.add("tom", "trader", PASSWORD, member="USR01")
    return s


@pytest.fixture
def gate(store: AccountStore) -> AuthGate:
    inner = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST", "HEAD"])])
    return AuthGate(inner, store, SessionCodec(b"k" * 32), PORT)


def client(gate: AuthGate, base: str = BASE) -> TestClient:
    return TestClient(gate, base_url=base, headers={"Origin": base}, follow_redirects=False)


def login(c: TestClient, name: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    page = c.get(LOGIN_PATH)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    form = {"csrf": csrf.group(1), "name": name, "password": password, "next": "/runs"}
    return c.post(LOGIN_PATH, data=form)


def test_session_tokens_are_signed_and_expire() -> None:
    now = [1000.0]
    codec = SessionCodec(b"k" * 32, ttl_s=60, clock=lambda: now[0])
    token = codec.issue("olga", "stamp")
    session = codec.verify(token)
    assert session is not None and (session.name, session.stamp) == ("olga", "stamp")
    body, sig = token.split(".")
    assert codec.verify(body[:-2] + "xx." + sig) is None
    assert SessionCodec(b"j" * 32).verify(token) is None
    assert codec.verify("garbage") is None and codec.verify("") is None
    now[0] += 61
    assert codec.verify(token) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/runs/abc?x=1", "/runs/abc?x=1"), (None, "/"), ("", "/"), ("https://evil.example", "/"),
        ("//evil.example/x", "/"), ("/\\evil.example", "/"), ("runs", "/"),
        (LOGOUT_PATH, "/"), ("/a\r\nSet-Cookie: x=1", "/"),
    ],
)  # fmt: skip
def test_next_stays_on_this_server(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_operation_types() -> None:
    assert operation_types("{ version }") == {"query"}
    assert operation_types("query A { version } mutation B { setNuxSeen }") == {
        "query",
        "mutation",
    }
    assert operation_types("subscription { x }") == {"subscription"}
    assert operation_types("mutation {") is None


def test_the_key_file_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ui-session.key"
    key = load_or_create_key(path)
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_bad_host_refused(gate: AuthGate) -> None:
    c = client(gate)
    for host in ("evil.example", f"evil.example:{PORT}", f"127.0.0.1:{PORT + 1}", ""):
        assert c.get(LOGIN_PATH, headers={"Host": host}).status_code == 400, host
    assert client(gate, f"http://localhost:{PORT}").get(LOGIN_PATH).status_code == 200


def test_without_a_session_nothing_passes(gate: AuthGate) -> None:
    c = client(gate)
    r = c.get("/runs", headers={"Accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == f"{LOGIN_PATH}?next=%2Fruns"
    assert c.get("/graphql?query={version}").status_code == 401
    assert c.post("/graphql", json={"query": "{ version }"}).status_code == 401
    c.cookies.set(gate.session_cookie, "forged.token")
    assert c.get("/server_info").status_code == 401


def test_login_needs_the_form_token_and_the_right_password(gate: AuthGate) -> None:
    c = client(gate)
    r = c.post(LOGIN_PATH, data={"name": "olga", "password": PASSWORD})
    assert r.status_code == 403 and gate.session_cookie not in r.cookies
    r = login(c, "olga", "wrong password!")
    assert r.status_code == 401 and "Wrong account name or password" in r.text
    assert gate.session_cookie not in c.cookies
    r = login(c, "nobody")
    assert r.status_code == 401
    r = login(c, "olga")
    assert r.status_code == 303 and r.headers["location"] == "/runs"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert c.get("/runs").json()["role"] == "operator"


def test_cross_origin_login_refused(gate: AuthGate) -> None:
    c = client(gate)
    page = c.get(LOGIN_PATH)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    form = {"csrf": csrf, "name": "olga", "password": PASSWORD}
    r = c.post(LOGIN_PATH, data=form, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403


def test_traders_are_refused(gate: AuthGate) -> None:
    c = client(gate)
    r = login(c, "tom")
    assert r.status_code == 403 and "trader account" in r.text
    assert gate.session_cookie not in c.cookies


def test_graphql_rules_for_an_operator(gate: AuthGate) -> None:
    c = client(gate)
    login(c, "olga")
    assert c.post("/graphql", json={"query": MUTATION}).status_code == 200
    assert c.get("/graphql", params={"query": "{ version }"}).status_code == 200
    assert c.get("/graphql", params={"query": MUTATION}).status_code == 405
    assert c.get("/graphql", params={"query": "query A { version } " + MUTATION}).status_code == 405
    assert c.get("/graphql/", params={"query": MUTATION}).status_code == 405
    assert c.get("/graphql?query={version}&query=" + MUTATION).status_code == 400
    assert c.get("/graphql", params={"query": "mutation {"}).status_code == 400
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        r = c.post(
            "/graphql", content=f'{{"query": "{MUTATION}"}}', headers={"Content-Type": content_type}
        )
        assert r.status_code == 415, content_type
    r = c.post("/graphql", content="{}", headers={"Content-Type": "text/plain; application/json"})
    assert r.status_code == 415


def test_a_viewer_reads_but_changes_nothing(gate: AuthGate) -> None:
    c = client(gate)
    assert login(c, "vera").status_code == 303
    r = c.post("/graphql", json={"query": "{ version }"})
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    assert '"{ version }"' in r.json()["body"]  # the body reaches the app intact
    assert c.post("/graphql", json={"query": MUTATION}).status_code == 403
    assert c.post("/graphql", json=[{"query": "{ version }"}]).status_code == 400
    assert c.post("/report_asset_materialization/x", json={}).status_code == 403


def test_cross_origin_requests_refused(gate: AuthGate) -> None:
    c = client(gate)
    login(c, "olga")
    body = {"query": MUTATION}
    assert (
        c.post("/graphql", json=body, headers={"Origin": "http://evil.example"}).status_code == 403
    )
    assert c.post("/graphql", json=body, headers={"Origin": "null"}).status_code == 403
    assert (
        c.post("/graphql", json=body, headers={"Origin": f"http://localhost:{PORT}"}).status_code
        == 403
    )
    bare = TestClient(gate, base_url=BASE, follow_redirects=False, cookies=c.cookies)
    assert bare.post("/graphql", json=body).status_code == 403  # neither Origin nor Referer
    r = bare.post("/graphql", json=body, headers={"Referer": f"{BASE}/runs"})
    assert r.status_code == 200
    r = bare.post("/graphql", json=body, headers={"Referer": "http://evil.example/"})
    assert r.status_code == 403


def test_logout_and_reset_end_sessions(gate: AuthGate, store: AccountStore) -> None:
    c = client(gate)
    login(c, "olga")
    token = c.cookies[gate.session_cookie]
    assert c.get("/runs").status_code == 200
    r = c.post(LOGOUT_PATH)
    assert r.status_code == 303 and gate.session_cookie not in c.cookies
    c.cookies.set(gate.session_cookie, token)  # the old cookie, kept by an attacker
    assert c.get("/runs").status_code == 401
    v = client(gate)
    login(v, "vera")
    assert v.get("/runs").status_code == 200
    store.set_password("vera", "a brand new secret")
    assert v.get("/runs").status_code == 401
    store.remove("olga")
    o = client(gate)
    assert login(o, "olga").status_code == 401


def test_responses_cannot_be_framed(gate: AuthGate) -> None:
    c = client(gate)
    for r in (c.get(LOGIN_PATH), c.get("/runs")):
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_guessing_is_throttled(store: AccountStore) -> None:
    now = [0.0]
    throttle = LoginThrottle(free=2, clock=lambda: now[0])
    gate = AuthGate(Starlette(), store, SessionCodec(b"k" * 32), PORT, throttle=throttle)
    c = client(gate)
    for _ in range(2):
        assert login(c, "olga", "wrong password!").status_code == 401
    assert login(c, "olga").status_code == 429  # even the right password waits
    now[0] += 2
    assert login(c, "olga").status_code == 303
