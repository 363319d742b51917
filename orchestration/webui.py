"""The Dagster UI behind marketlake's own login, served by ``marketlake ui``.

``dagster-webserver`` alone trusts whoever reaches its port: it runs GraphQL
mutations over GET and over cross-site ``text/plain`` POSTs and ignores the
Host header, so any page the user visits (or a DNS-rebound one) could wipe
assets or launch backfills. So Dagster's ASGI app is built here from the
same pieces its CLI uses and mounted behind :class:`AuthGate`, which checks
every request before Dagster sees it:

- Host must be ``127.0.0.1:PORT`` or ``localhost:PORT`` (DNS rebinding);
- every request other than GET/HEAD, and every WebSocket, must come from the
  same origin (Origin, else Referer; neither means refused): no CSRF;
- a session, from the login form, in a signed cookie (HttpOnly,
  SameSite=Strict) tied to the account's credential stamp, so a password
  reset or a removed account ends it at the next request;
- operators use the UI fully; viewers read it (Dagster's read-only mode, and
  any mutation refused here too); traders are refused;
- ``/graphql``: no mutation over GET, even logged in; POSTs only as
  ``application/json`` (no form-encoded or ``text/plain`` simple requests);
  its WebSocket carries subscriptions only;
- responses may not be framed (clickjacking).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import json
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestration.logging import get_logger
from streaming.accounts import Account, AccountStore, Role
from streaming.login import SESSION_TTL_S, LoginThrottle, SessionCodec, load_or_create_key

if TYPE_CHECKING:
    from dagster import DagsterInstance

LOGIN_PATH = "/_marketlake/login"
LOGOUT_PATH = "/_marketlake/logout"
OWN_PREFIX = "/_marketlake/"
UI_ROLES = frozenset({Role.OPERATOR, Role.VIEWER})
SAFE_METHODS = frozenset({"GET", "HEAD"})
LOGIN_FORM_TTL_S = 3600
MAX_FORM_BYTES = 16 * 1024
MAX_GRAPHQL_BYTES = 16 * 1024 * 1024
MAX_GRAPHQL_TOKENS = 100_000
ROLE_KEY = "marketlake.role"  # in the ASGI scope: what Dagster's request context reads
ACCOUNT_KEY = "marketlake.account"
FRAME_HEADERS = (
    ("x-frame-options", "DENY"),
    ("content-security-policy", "frame-ancestors 'none'"),
)

log = get_logger("ui")


# -- GraphQL documents ---------------------------------------------------------------------
def operation_types(query: str) -> set[str] | None:
    """The operation kinds (query, mutation, subscription) in a GraphQL document; None if invalid."""
    from graphql import GraphQLError, parse
    from graphql.language import OperationDefinitionNode

    try:
        document = parse(query, no_location=True, max_tokens=MAX_GRAPHQL_TOKENS)
    except (GraphQLError, RecursionError):
        return None
    return {
        d.operation.value for d in document.definitions if isinstance(d, OperationDefinitionNode)
    }


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a path on this server only (no open redirect)."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or any(c in value for c in "\\\r\n\t")
        or value.startswith(OWN_PREFIX)
    ):
        return "/"
    return value


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None if it is larger than ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the app, then defers to the client."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# -- pages ---------------------------------------------------------------------------------
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - marketlake</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; background: #f4f5f7; margin: 0; }}
main {{ max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem;
        border-radius: 8px; box-shadow: 0 1px 4px #0002; }}
h1 {{ font-size: 1.2rem; margin: 0 0 1rem; }}
label {{ display: block; margin: .8rem 0 .2rem; }}
input {{ width: 100%; box-sizing: border-box; padding: .5rem; font: inherit; }}
button {{ margin-top: 1.2rem; width: 100%; padding: .6rem; font: inherit; cursor: pointer; }}
.error {{ color: #a40000; }} .note {{ color: #555; font-size: .9rem; }}
code {{ background: #eee; padding: 0 .2rem; }}
</style></head>
<body><main><h1>{title}</h1>{body}</main></body></html>
"""
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        PAGE.format(title=html.escape(title), body=body),
        status_code=status,
        headers={
            "Content-Security-Policy": PAGE_CSP,
            "Cache-Control": "no-store",
            "Referrer-Policy": "same-origin",
        },
    )


# -- the gate ------------------------------------------------------------------------------
class AuthGate:
    """ASGI middleware: Host and origin checks, login, roles and GraphQL rules before ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        store: AccountStore,
        codec: SessionCodec,
        port: int,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.codec = codec
        self.hosts = frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})
        # cookies ignore ports: the port in the name keeps two UIs (or another local app) apart
        self.session_cookie = f"marketlake_ui_{port}"
        self.form_cookie = f"marketlake_login_{port}"
        self.throttle = throttle or LoginThrottle()
        self._revoked: dict[str, int] = {}  # logged-out sessions: jti -> expiry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, send)
            return
        if kind not in ("http", "websocket"):
            return
        headers = Headers(scope=scope)
        hosts = headers.getlist("host")
        host = hosts[0].lower() if len(hosts) == 1 else ""
        if host not in self.hosts:
            await self._refuse(
                scope, receive, send, 400, "unknown Host: use 127.0.0.1 or localhost"
            )
            return
        same_origin = self._same_origin(headers, host)
        if kind == "websocket":
            await self._websocket(scope, receive, send, headers, host)
            return
        send = self._unframeable(send)
        method = scope["method"]
        if method not in SAFE_METHODS and not same_origin:
            await self._refuse(scope, receive, send, 403, "cross-origin request refused")
            return
        path = scope["path"]
        if path == LOGIN_PATH:
            await self._login(scope, receive, send, headers)
            return
        if path == LOGOUT_PATH:
            await self._logout(scope, receive, send, headers)
            return
        if path.startswith(OWN_PREFIX):
            await self._refuse(scope, receive, send, 404, "not found")
            return
        account = await self._account(self._cookie(headers, self.session_cookie))
        if account is None:
            if method in SAFE_METHODS and "text/html" in headers.get("accept", ""):
                query = scope["query_string"].decode("latin-1")
                target = path + (f"?{query}" if query else "")
                location = f"{LOGIN_PATH}?next={quote(target, safe='')}"
                await RedirectResponse(location, status_code=303)(scope, receive, send)
            else:
                await self._refuse(scope, receive, send, 401, f"login required: {LOGIN_PATH}")
            return
        if account.role not in UI_ROLES:
            await self._refuse(scope, receive, send, 403, _not_for(account))
            return
        scope[ROLE_KEY], scope[ACCOUNT_KEY] = account.role.value, account.name
        if path.rstrip("/") == "/graphql":
            problem, receive = await self._graphql_rules(scope, receive, headers, account)
            if problem is not None:
                await self._refuse(scope, receive, send, *problem)
                return
        elif method not in SAFE_METHODS and account.role is not Role.OPERATOR:
            await self._refuse(scope, receive, send, 403, "read-only account: nothing to change")
            return
        await self.app(scope, receive, send)

    # -- checks ------------------------------------------------------------------------------
    @staticmethod
    def _same_origin(headers: Headers, host: str) -> bool:
        """Origin (or, without it, Referer) names this very server; neither: not same origin."""
        origin = headers.get("origin")
        if origin is not None:
            return origin.lower() == f"http://{host}"
        referer = headers.get("referer")
        if referer is None:
            return False
        parts = urlsplit(referer)
        return parts.scheme == "http" and parts.netloc.lower() == host

    @staticmethod
    def _cookie(headers: Headers, name: str) -> str | None:
        return cookie_parser(headers.get("cookie", "")).get(name)

    async def _account(self, token: str | None) -> Account | None:
        """The account of a valid session token (checked against the store every time)."""
        if not token:
            return None
        session = self.codec.verify(token)
        if session is None or session.jti in self._revoked:
            return None
        found = await run_in_threadpool(self.store.lookup, session.name)
        if found is None or not hmac.compare_digest(found[1], session.stamp):
            return None
        return found[0]

    async def _graphql_rules(
        self, scope: Scope, receive: Receive, headers: Headers, account: Account
    ) -> tuple[tuple[int, str] | None, Receive]:
        """Why a /graphql request is refused (status, reason), or None; and the body's receive."""
        method = scope["method"]
        if method in SAFE_METHODS:
            queries = QueryParams(scope["query_string"]).getlist("query")
            if not queries:
                return None, receive  # GraphiQL's page
            kinds = operation_types(queries[0]) if len(queries) == 1 else None
            if kinds is None:
                return (400, "not one valid GraphQL document"), receive
            if kinds - {"query"}:
                return (
                    405,
                    "GraphQL mutations are not run over GET: POST application/json",
                ), receive
            return None, receive
        if method != "POST":
            return None, receive  # Dagster answers 405
        if _media_type(headers.get("content-type")) != "application/json":
            return (415, "GraphQL over POST takes application/json only"), receive
        if account.role is Role.OPERATOR:
            return None, receive
        body = await _read_body(receive, MAX_GRAPHQL_BYTES)
        if body is None:
            return (413, "request body too large"), receive
        try:
            data = json.loads(body)
            query = data["query"] if isinstance(data, dict) else None
        except (ValueError, KeyError):
            query = None
        kinds = operation_types(query) if isinstance(query, str) else None
        if kinds is None:
            return (400, "not one valid GraphQL document"), _replay(body, receive)
        if kinds - {"query"}:
            return (403, "read-only account: mutations refused"), _replay(body, receive)
        return None, _replay(body, receive)

    # -- responses ---------------------------------------------------------------------------
    @staticmethod
    def _unframeable(send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in FRAME_HEADERS:  # a second CSP header adds to Dagster's
                    headers.append(name, value)
            await send(message)

        return wrapped

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, reason: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
            return
        await JSONResponse({"error": reason}, status_code=status)(scope, receive, send)

    # -- login and logout --------------------------------------------------------------------
    async def _login_form(
        self, next_path: str, error: str = "", status: int = 200, name: str = ""
    ) -> Response:
        token = secrets.token_urlsafe(24)
        note = ""
        if not await run_in_threadpool(self.store.has_role, Role.OPERATOR):
            note = (
                '<p class="note">No operator account yet. Create one on this machine:<br>'
                "<code>marketlake accounts add NAME --role operator</code></p>"
            )
        body = (
            (f'<p class="error">{html.escape(error)}</p>' if error else "")
            + f'<form method="post" action="{LOGIN_PATH}">'
            + f'<input type="hidden" name="csrf" value="{token}">'
            + f'<input type="hidden" name="next" value="{html.escape(next_path)}">'
            + '<label for="name">Account</label>'
            + f'<input id="name" name="name" autocomplete="username" required autofocus value="{html.escape(name)}">'
            + '<label for="password">Password</label>'
            + '<input id="password" name="password" type="password" autocomplete="current-password" required>'
            + '<button type="submit">Log in</button></form>'
            + note
        )
        response = _page("Log in to the Dagster UI", body, status)
        response.set_cookie(
            self.form_cookie, token, max_age=LOGIN_FORM_TTL_S, path=LOGIN_PATH,
            httponly=True, samesite="strict",
        )  # fmt: skip
        return response

    async def _login(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        method = scope["method"]
        if method in SAFE_METHODS:
            next_path = safe_next(QueryParams(scope["query_string"]).get("next"))
            account = await self._account(self._cookie(headers, self.session_cookie))
            if account is not None and account.role in UI_ROLES:
                response: Response = RedirectResponse(next_path, status_code=303)
            else:
                response = await self._login_form(next_path)
            await response(scope, receive, send)
            return
        if method != "POST":
            await self._refuse(scope, receive, send, 405, "method not allowed")
            return
        if _media_type(headers.get("content-type")) != "application/x-www-form-urlencoded":
            await self._refuse(scope, receive, send, 415, "the login form posts form-encoded")
            return
        body = await _read_body(receive, MAX_FORM_BYTES)
        try:
            form = parse_qs((body or b"").decode(), max_num_fields=8)
        except (UnicodeDecodeError, ValueError):
            form = {}

        def field(key: str) -> str:
            return form.get(key, [""])[0]

        name, next_path = field("name").strip(), safe_next(field("next"))
        expected = self._cookie(headers, self.form_cookie) or ""
        if not expected or not hmac.compare_digest(field("csrf").encode(), expected.encode()):
            response = await self._login_form(
                next_path, "The form expired: log in again.", 403, name
            )
            await response(scope, receive, send)
            return
        wait = self.throttle.wait_s(name)
        if wait > 0:
            message = f"Too many failed logins for this account: try again in {wait:.0f} s."
            response = await self._login_form(next_path, message, 429, name)
            await response(scope, receive, send)
            return
        account = await run_in_threadpool(self.store.authenticate, name, field("password"))
        if account is None:
            self.throttle.failed(name)
            log.warning("ui login failed", account=name[:64])
            response = await self._login_form(
                next_path, "Wrong account name or password.", 401, name
            )
            await response(scope, receive, send)
            return
        self.throttle.succeeded(name)
        found = await run_in_threadpool(self.store.lookup, name)
        if account.role not in UI_ROLES or found is None:
            log.warning("ui login refused", account=name, role=account.role.value)
            await _page("Not for this account", html.escape(_not_for(account)), 403)(
                scope, receive, send
            )
            return
        log.info("ui login", account=name, role=account.role.value)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            self.session_cookie, self.codec.issue(name, found[1]), max_age=SESSION_TTL_S,
            path="/", httponly=True, samesite="strict",
        )  # fmt: skip
        response.delete_cookie(self.form_cookie, path=LOGIN_PATH, httponly=True, samesite="strict")
        await response(scope, receive, send)

    async def _logout(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        if scope["method"] in SAFE_METHODS:
            body = (
                f'<form method="post" action="{LOGOUT_PATH}">'
                '<button type="submit">Log out</button></form>'
            )
            await _page("Log out of the Dagster UI", body)(scope, receive, send)
            return
        if scope["method"] != "POST":
            await self._refuse(scope, receive, send, 405, "method not allowed")
            return
        token = self._cookie(headers, self.session_cookie)
        session = self.codec.verify(token) if token else None
        if session is not None:
            now = time.time()
            self._revoked = {j: e for j, e in self._revoked.items() if e > now}
            self._revoked[session.jti] = session.expires
            log.info("ui logout", account=session.name)
        response = RedirectResponse(LOGIN_PATH, status_code=303)
        response.delete_cookie(self.session_cookie, path="/", httponly=True, samesite="strict")
        await response(scope, receive, send)

    # -- WebSocket ---------------------------------------------------------------------------
    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, host: str
    ) -> None:
        """Same origin (browsers always send Origin here), a session, subscriptions only."""
        if (headers.get("origin") or "").lower() != f"http://{host}":
            await self._refuse(scope, receive, send, 403, "cross-origin WebSocket refused")
            return
        token = self._cookie(headers, self.session_cookie)
        account = await self._account(token)
        if account is None or account.role not in UI_ROLES:
            await self._refuse(scope, receive, send, 401, "login required")
            return
        scope[ROLE_KEY], scope[ACCOUNT_KEY] = account.role.value, account.name

        async def guarded() -> Message:
            message = await receive()
            if message["type"] != "websocket.receive":
                return message
            problem = await self._ws_problem(message, token)
            if problem is None:
                return message
            await send({"type": "websocket.close", "code": 1008, "reason": problem})
            return {"type": "websocket.disconnect", "code": 1008}

        await self.app(scope, guarded, send)

    async def _ws_problem(self, message: Message, token: str | None) -> str | None:
        text = message.get("text")
        if text is None:
            text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
        try:
            data = json.loads(text)
        except ValueError:
            return "not JSON"
        if not isinstance(data, dict) or data.get("type") != "start":
            return None
        account = await self._account(token)  # a session ended meanwhile ends the socket
        if account is None or account.role not in UI_ROLES:
            return "session ended"
        payload = data.get("payload")
        query = payload.get("query") if isinstance(payload, dict) else None
        kinds = operation_types(query) if isinstance(query, str) else None
        if kinds is None or kinds - {"subscription"}:
            return "only subscriptions over WebSocket"
        return None


def _not_for(account: Account) -> str:
    return (
        f"{account.name} is a {account.role.value} account: the Dagster UI is for operators "
        "(and viewers, read-only)"
    )


# -- Dagster -------------------------------------------------------------------------------
def _role_aware_workspace(instance: DagsterInstance, working_directory: str) -> Any:
    """Dagster's workspace, whose request contexts are read-only unless an operator asks."""
    from dagster._core.workspace.context import WorkspaceProcessContext, WorkspaceRequestContext
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster_webserver.version import __version__

    class RoleAwareWorkspace(WorkspaceProcessContext):
        def create_request_context(self, source: object | None = None) -> WorkspaceRequestContext:
            read_only = self.read_only
            if source is not None:  # a web request: writable for operators only (fail closed)
                scope = getattr(source, "scope", None) or {}
                read_only = read_only or scope.get(ROLE_KEY) != Role.OPERATOR.value
            return WorkspaceRequestContext(
                instance=self.instance,
                current_workspace=self.get_current_workspace(),
                process_context=self,
                version=self.version,
                source=source,
                read_only=read_only,
            )

    target = ModuleTarget(
        module_name="orchestration.definitions",
        attribute=None,
        working_directory=working_directory,
        location_name=None,
    )
    return RoleAwareWorkspace(instance, workspace_load_target=target, version=__version__)


@contextlib.asynccontextmanager
async def _lifespan(app: object) -> AsyncIterator[None]:
    # as dagster-webserver's: Ctrl-C cancels the lifespan task, which is no error
    with contextlib.suppress(asyncio.CancelledError):
        yield


def run_ui(
    instance: DagsterInstance,
    store: AccountStore,
    key_path: Path,
    port: int,
    stop_reason: Callable[[], str | None] | None = None,
) -> None:
    """Serve the gated Dagster UI on 127.0.0.1:``port`` until interrupted.

    ``stop_reason`` is polled every second; when it returns a reason (say, the
    daemon died) the server shuts down.
    """
    import uvicorn
    from dagster_webserver.app import create_app_from_workspace_process_context

    codec = SessionCodec(load_or_create_key(key_path))
    # as dagster-webserver sets it up for a long-running server
    instance.optimize_for_webserver(statement_timeout=15_000, pool_recycle=3600, max_overflow=20)
    with _role_aware_workspace(instance, os.getcwd()) as workspace:
        dagster_app = create_app_from_workspace_process_context(
            workspace, "", live_data_poll_rate=2000, lifespan=_lifespan
        )
        config = uvicorn.Config(
            AuthGate(dagster_app, store, codec, port), host="127.0.0.1", port=port,
            log_level="warning", proxy_headers=False, server_header=False, lifespan="on",
        )  # fmt: skip
        server = uvicorn.Server(config)
        done = threading.Event()

        def watch() -> None:
            while stop_reason is not None and not done.wait(1.0):
                reason = stop_reason()
                if reason:
                    log.warning("stopping the UI", reason=reason)
                    server.should_exit = True
                    return

        watcher = threading.Thread(target=watch, name="ui-watch", daemon=True)
        watcher.start()
        try:
            server.run()
        finally:
            done.set()
