"""A local HTTP server that replays recorded responses: the stand-in for remote APIs.

The network is closed here, and a mocked transport would not exercise what
breaks in practice (timeouts, a peer hanging up mid-body, conditional
requests), so ingestion runs real httpx against this server on 127.0.0.1:
the tests, with recorded provider responses, and ``marketlake demo``, with
the recorded news of ``intelligence/ingest/recorded_news.yml``. Routes map a
path to a list of responses served in turn (the last one repeats) or to a
function of the request; every request is recorded with its headers so a
test can assert what the client sent (User-Agent, If-None-Match, ...).

Scenario helpers build the failure modes ingestion must survive: 429 with
Retry-After then 200, 5xx then 200, a response slower than the client's
timeout, a truncated body, a wrong content type, non-UTF-8 bytes, ETag and
Last-Modified with 304 on a match, and a source that always fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Response:
    """One recorded response. ``content_length`` overrides the header (a truncated body);
    ``close`` hangs up after sending, ``delay_s`` waits before answering."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content_length: int | None = None
    close: bool = False


@dataclass(frozen=True)
class Request:
    """What the client sent: method, target (path and query), headers (lower-case names), body."""

    method: str
    target: str
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path


Handler = Callable[[Request], Response]


@dataclass
class _Route:
    responses: list[Response | Handler]
    served: int = 0

    def next(self, request: Request) -> Response:
        item = self.responses[min(self.served, len(self.responses) - 1)]
        self.served += 1
        return item(request) if callable(item) else item


class ReplayServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 with a route table; use as a context manager."""

    def __init__(self) -> None:
        self._routes: dict[str, _Route] = {}
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # lifecycle

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a delay
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, target: str) -> str:
        return self.base_url + target

    # routes and records

    def add(self, target: str, *responses: Response | Handler) -> None:
        """Serve ``responses`` in turn at ``target`` (the last repeats).

        A target with a query matches that exact query; without one it matches
        the path with any query.
        """
        if not responses:
            raise ValueError("a route needs at least one response")
        with self._lock:
            self._routes[target] = _Route(list(responses))

    def requests(self, path: str | None = None) -> list[Request]:
        """Requests received so far (for one path, if given), oldest first."""
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def _route_for(self, target: str) -> _Route | None:
        with self._lock:
            return self._routes.get(target) or self._routes.get(urlsplit(target).path)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._serve(send_body=True)

            def do_HEAD(self) -> None:
                self._serve(send_body=False)

            def do_POST(self) -> None:
                self._serve(send_body=True)

            def _serve(self, send_body: bool) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    target=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    at=time.monotonic(),
                    body=self.rfile.read(length) if length else b"",
                )
                with server._lock:
                    server._requests.append(request)
                route = server._route_for(self.path)
                if route is None:
                    resp = Response(404, b"no route", {"Content-Type": "text/plain"})
                else:
                    with server._lock:
                        resp = route.next(request)
                if resp.delay_s and server._stopping.wait(resp.delay_s):
                    self.close_connection = True
                    return
                try:
                    self.send_response(resp.status)
                    names = {k.lower() for k in resp.headers}
                    for k, v in resp.headers.items():
                        self.send_header(k, v)
                    sent_length = resp.content_length
                    if sent_length is None:
                        sent_length = len(resp.body)
                    if "content-length" not in names and resp.status not in (204, 304):
                        self.send_header("Content-Length", str(sent_length))
                    if resp.close:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    if send_body and resp.status not in (204, 304):
                        self.wfile.write(resp.body)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)
                if resp.close:
                    self.close_connection = True

        return _Handler

    # scenarios

    def retry_after_then_ok(
        self,
        target: str,
        body: bytes,
        content_type: str,
        *,
        retry_after: str = "1",
        status: int = 429,
        times: int = 1,
    ) -> None:
        """``times`` answers of 429 (or 503) with Retry-After, then the payload."""
        busy = Response(
            status, b"slow down", {"Retry-After": retry_after, "Content-Type": "text/plain"}
        )
        self.add(target, *([busy] * times), ok(body, content_type))

    def errors_then_ok(
        self, target: str, body: bytes, content_type: str, statuses: Sequence[int] = (500, 502)
    ) -> None:
        """Server errors in turn (no Retry-After), then the payload."""
        errors = [Response(s, b"oops", {"Content-Type": "text/plain"}) for s in statuses]
        self.add(target, *errors, ok(body, content_type))

    def slow(
        self, target: str, delay_s: float, body: bytes = b"late", content_type: str = "text/plain"
    ) -> None:
        """Answers only after ``delay_s``: longer than the client's timeout, it is a timeout."""
        self.add(target, Response(200, body, {"Content-Type": content_type}, delay_s=delay_s))

    def truncated(
        self, target: str, body: bytes, content_type: str, *, claimed: int | None = None
    ) -> None:
        """Announces ``claimed`` bytes (default twice the body), sends ``body``, hangs up."""
        self.add(
            target,
            Response(
                200,
                body,
                {"Content-Type": content_type},
                content_length=claimed if claimed is not None else 2 * len(body) + 1,
                close=True,
            ),
        )

    def wrong_content_type(
        self,
        target: str,
        body: bytes = b"<html><body>Sign in</body></html>",
        content_type: str = "text/html; charset=utf-8",
    ) -> None:
        """A payload under the wrong media type (a login wall instead of a feed, say)."""
        self.add(target, ok(body, content_type))

    def sequence(self, target: str, bodies: Sequence[bytes], content_type: str) -> None:
        """Different payloads on successive fetches (e.g. two feeds sharing some articles)."""
        self.add(target, *(ok(b, content_type) for b in bodies))

    def conditional(
        self,
        target: str,
        body: bytes,
        content_type: str,
        *,
        etag: str | None = '"v1"',
        last_modified: str | None = "Wed, 21 Oct 2026 07:28:00 GMT",
    ) -> None:
        """200 with ETag/Last-Modified; 304 when If-None-Match or If-Modified-Since matches."""

        def handle(req: Request) -> Response:
            validators = {}
            if etag:
                validators["ETag"] = etag
            if last_modified:
                validators["Last-Modified"] = last_modified
            inm = req.headers.get("if-none-match")
            ims = req.headers.get("if-modified-since")
            if etag and inm is not None:
                if etag in {t.strip() for t in inm.split(",")} or inm.strip() == "*":
                    return Response(304, b"", validators)
            elif last_modified and ims is not None:
                try:
                    if parsedate_to_datetime(ims) >= parsedate_to_datetime(last_modified):
                        return Response(304, b"", validators)
                except (TypeError, ValueError):
                    pass
            return Response(200, body, {"Content-Type": content_type, **validators})

        self.add(target, handle)

    def always_fail(self, target: str, status: int = 500) -> None:
        """A source that never works."""
        self.add(target, Response(status, b"down", {"Content-Type": "text/plain"}))


def ok(body: bytes, content_type: str, **headers: str) -> Response:
    """A 200 with a body and its media type."""
    return Response(200, body, {"Content-Type": content_type, **headers})


def http_date(epoch_s: float) -> str:
    """An IMF-fixdate (``Wed, 21 Oct 2026 07:28:00 GMT``) for Retry-After or Last-Modified."""
    from datetime import UTC, datetime

    return format_datetime(datetime.fromtimestamp(epoch_s, UTC), usegmt=True)
