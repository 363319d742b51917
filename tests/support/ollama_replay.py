"""A local HTTP server that speaks enough of Ollama's API to replay recorded answers.

The real ``ollama`` client talks to it over real sockets, so the tests exercise
what breaks in practice (a refused connection, a read timeout, a 500, a body
that is not what the schema says) without a model. ``/api/chat`` answers come
from a queue (the last one repeats); every request body is kept so a test can
assert what the client sent (model, messages, the ``format`` schema, options).

The recordings under ``tests/fixtures/ollama/`` came from the server that
``deploy/ollama`` builds; ``python -m tests.support.ollama_replay URL DIR``
records them again against a running server.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ollama"


@dataclass(frozen=True)
class Reply:
    """One answer: status, JSON-able body (or raw bytes), and a delay before sending it."""

    status: int = 200
    body: Any = None
    delay_s: float = 0.0

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class Received:
    """A request the server got: method, path and the decoded JSON body (None if not JSON)."""

    method: str
    path: str
    body: Any


def recorded(name: str) -> dict[str, Any]:
    """A recorded ``/api/chat`` response from ``tests/fixtures/ollama/<name>.json``."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())["response"]
    return data


def chat_reply(
    content: str, *, model: str = "marketlake-gemma3", done_reason: str = "stop"
) -> Reply:
    """A well-formed ``/api/chat`` response whose message content is ``content``."""
    return Reply(
        200,
        {
            "model": model,
            "created_at": "2026-01-02T03:04:05.000000Z",
            "message": {"role": "assistant", "content": content},
            "done_reason": done_reason,
            "done": True,
        },
    )


@dataclass
class OllamaReplay:
    """A threaded HTTP/1.1 server on 127.0.0.1 replaying ``/api/chat``; a context manager."""

    chat: Sequence[Reply | Callable[[Received], Reply]] = ()
    models: tuple[str, ...] = ("marketlake-gemma3",)

    def __post_init__(self) -> None:
        self.received: list[Received] = []
        self._served = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> OllamaReplay:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()  # wakes handlers sleeping in a delay
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def chats(self) -> list[Any]:
        """Bodies of the ``/api/chat`` requests received, oldest first."""
        with self._lock:
            return [r.body for r in self.received if r.path == "/api/chat"]

    def _reply(self, request: Received) -> Reply:
        if request.path == "/api/version":
            return Reply(200, {"version": "0.11.4"})
        if request.path == "/api/tags":
            return Reply(200, {"models": [{"name": f"{m}:latest", "model": f"{m}:latest"}
                                          for m in self.models]})  # fmt: skip
        if request.path != "/api/chat" or not self.chat:
            return Reply(404, {"error": "not found"})
        with self._lock:
            item = self.chat[min(self._served, len(self.chat) - 1)]
            self._served += 1
        return item(request) if callable(item) else item

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._serve(b"")

            def do_POST(self) -> None:
                self._serve(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _serve(self, raw: bytes) -> None:
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                request = Received(self.command, self.path, body)
                with server._lock:
                    server.received.append(request)
                reply = server._reply(request)
                if reply.delay_s and server._stopping.wait(reply.delay_s):
                    self.close_connection = True
                    return
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        return _Handler


# --- recording ---------------------------------------------------------------------------------

RECORD_TEXTS = {
    "chat_company_positive": ("Apple shares jump after record iPhone sales beat estimates", ()),
    "chat_company_negative": ("Tesla recalls 2 million cars over autopilot defect", ("TSLA",)),
    "chat_macro": ("Fed raises interest rates by half a point to fight inflation", ()),
}


def record(host: str, directory: Path, model: str = "marketlake-gemma3") -> list[Path]:
    """POST the extractor's own requests to a real server and keep request and response."""
    import httpx

    from assets.intelligence.ollama_extractor import (
        KEEP_ALIVE,
        NUM_PREDICT,
        SEED,
        answer_schema,
        build_messages,
        default_vocabulary,
    )

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with httpx.Client(base_url=host, timeout=300, trust_env=False) as client:
        version = client.get("/api/version").json()["version"]
        for name, (text, tickers) in RECORD_TEXTS.items():
            request = {
                "model": model,
                "messages": build_messages(text, tickers),
                "format": answer_schema(default_vocabulary()),
                "options": {"temperature": 0.0, "seed": SEED, "num_predict": NUM_PREDICT},
                "keep_alive": KEEP_ALIVE,
                "stream": False,
            }
            response = client.post("/api/chat", json=request)
            response.raise_for_status()
            path = directory / f"{name}.json"
            path.write_text(
                json.dumps(
                    {"server_version": version, "text": text, "tickers": list(tickers),
                     "response": response.json()},
                    indent=2,
                )
                + "\n"
            )  # fmt: skip
            written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m tests.support.ollama_replay OLLAMA_URL OUT_DIR")
    for p in record(sys.argv[1], Path(sys.argv[2])):
        print(p)
